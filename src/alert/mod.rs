//! The alert book and the alert itself: what fires, when it repeats, when it resolves, and
//! the JSON every channel receives, and the silences and mute windows that hold pages back.

pub mod book;
pub mod model;
pub mod silence;

pub use book::{AlertBook, Notification, Phase};
pub use model::{Alert, Status, dedup_key};

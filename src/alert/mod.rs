//! The alert book and the alert itself: what fires, when it repeats, when it resolves, and
//! the JSON every channel receives.

pub mod book;
pub mod model;

pub use book::{AlertBook, Notification, Phase};
pub use model::{Alert, Status, dedup_key};

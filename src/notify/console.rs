//! The console channel: each alert as one JSON line on standard output.

use super::{Channel, Rendered};
use crate::alert::Alert;

pub struct ConsoleChannel {
    name: String,
}

impl ConsoleChannel {
    pub fn new(name: &str) -> ConsoleChannel {
        ConsoleChannel {
            name: name.to_string(),
        }
    }
}

impl Channel for ConsoleChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn render(&self, alerts: &[Alert]) -> Rendered {
        let lines: Vec<String> = alerts
            .iter()
            .map(|a| serde_json::to_string(a).expect("alerts serialise"))
            .collect();
        Rendered::Stdout(lines.join("\n"))
    }
}

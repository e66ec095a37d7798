//! The email channel: one message per alert (or per rule's series in a cycle, by default),
//! with a plain-text part, an HTML part and, when the alert carries chart data, an inline PNG
//! of the window's spend against the baseline band. Sent over SMTP by lettre's tokio
//! transport, whose connection pool lives as long as the channel.

use super::words::{against, contributors_line, headline, html_escape, status_word, truncate, usd};
use super::{Channel, Outcome, Rendered, chart};
use crate::alert::Alert;
use crate::alert::model::series_words;
use crate::config::{EmailConfig, SmtpTls};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The content id of the inline chart.
pub const CHART_CID: &str = "spend-chart";

pub struct EmailChannel {
    pub name: String,
    pub config: EmailConfig,
    pub timeout: Duration,
    pub send_resolved: bool,
    /// Built on first use, inside the runtime, since the pool starts a task of its own.
    transport: OnceLock<Arc<Transport>>,
}

/// A message ready for the transport.
pub struct Outgoing {
    pub transport: Arc<Transport>,
    pub message: Message,
}

impl EmailChannel {
    pub fn new(name: &str, config: EmailConfig, timeout: Duration, send_resolved: bool) -> Self {
        EmailChannel {
            name: name.to_string(),
            config,
            timeout,
            send_resolved,
            transport: OnceLock::new(),
        }
    }

    fn transport(&self) -> Result<Arc<Transport>, String> {
        if let Some(t) = self.transport.get() {
            return Ok(t.clone());
        }
        let c = &self.config;
        let builder = match c.tls {
            SmtpTls::Starttls => Transport::starttls_relay(&c.host),
            SmtpTls::Implicit => Transport::relay(&c.host),
            SmtpTls::None => Ok(Transport::builder_dangerous(&c.host)),
        }
        .map_err(|e| format!("SMTP setup for {}: {e}", c.host))?;
        let mut builder = builder.port(c.port).timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(
                user.expose().to_string(),
                password.expose().to_string(),
            ));
        }
        let built = Arc::new(builder.build());
        Ok(self.transport.get_or_init(|| built).clone())
    }

    fn message(&self, alerts: &[Alert]) -> Result<Message, String> {
        let mut sorted: Vec<&Alert> = alerts.iter().collect();
        sorted.sort_by(|a, b| b.observed_usd.total_cmp(&a.observed_usd));
        let png = sorted.iter().find_map(|a| a.chart.as_ref()).map(chart::png);
        let html = html_body(&sorted, png.is_some());
        let html_part = SinglePart::html(html);
        let alternative =
            MultiPart::alternative().singlepart(SinglePart::plain(text_body(&sorted)));
        let body = match png {
            Some(bytes) => {
                alternative.multipart(MultiPart::related().singlepart(html_part).singlepart(
                    Attachment::new_inline(CHART_CID.to_string()).body(
                        bytes,
                        ContentType::parse("image/png").expect("a valid type"),
                    ),
                ))
            }
            None => alternative.singlepart(html_part),
        };
        let mut builder = Message::builder()
            .from(self.config.from.clone())
            .subject(subject(alerts));
        for to in &self.config.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(body)
            .map_err(|e| format!("the message does not build: {e}"))
    }
}

/// `[FIRING] tenant-spike: tenant acme $42.00 (10.8x)`, or for a group the count and the
/// largest series.
pub fn subject(alerts: &[Alert]) -> String {
    let largest = alerts
        .iter()
        .max_by(|a, b| a.observed_usd.total_cmp(&b.observed_usd))
        .expect("a message has at least one alert");
    let word = status_word(largest.status);
    let s = match alerts {
        [one] => format!("[{word}] {}: {}", one.rule, headline(one)),
        many => format!(
            "[{word}] {}: {} series, largest {}",
            largest.rule,
            many.len(),
            headline(largest)
        ),
    };
    truncate(&s, 200)
}

/// The facts of one alert as (label, value) rows, shared by both parts.
fn facts(a: &Alert) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Spent", {
            let mut s = usd(a.observed_usd);
            if let Some(r) = a.ratio {
                s.push_str(&format!(" ({r:.1}x)"));
            }
            s
        }),
        ("Against", against(a)),
        ("Window", format!("{} to {}", a.window_start, a.window_end)),
        ("Who", series_words(a)),
    ];
    if !a.contributors.is_empty() {
        rows.push(("Carried by", contributors_line(a)));
    }
    if !a.sample_request_ids.is_empty() {
        rows.push(("Requests", a.sample_request_ids.join(", ")));
    }
    rows.push(("Severity", format!("{:?}", a.severity).to_lowercase()));
    rows.push(("Dedup key", a.dedup_key.clone()));
    rows
}

fn text_body(alerts: &[&Alert]) -> String {
    let mut out = String::new();
    for a in alerts {
        out.push_str(&format!(
            "{} {}: {}\n\n{}\n\n",
            status_word(a.status),
            a.rule,
            series_words(a),
            a.summary
        ));
        for (k, v) in facts(a) {
            out.push_str(&format!("{k:<11} {v}\n"));
        }
        out.push('\n');
    }
    out.push_str("-- \nspendpager\n");
    out
}

fn html_body(alerts: &[&Alert], with_chart: bool) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif; max-width: 640px\">\n",
    );
    for (i, a) in alerts.iter().enumerate() {
        out.push_str(&format!(
            "<h2>{} {}: {}</h2>\n<p>{}</p>\n",
            status_word(a.status),
            html_escape(&a.rule),
            html_escape(&series_words(a)),
            html_escape(&a.summary)
        ));
        if i == 0 && with_chart {
            out.push_str(&format!(
                "<p><img src=\"cid:{CHART_CID}\" width=\"{}\" height=\"{}\" alt=\"Spend per bucket in the window (bars) against the usual band (green)\"></p>\n",
                chart::WIDTH,
                chart::HEIGHT
            ));
        }
        out.push_str("<table>\n");
        for (k, v) in facts(a) {
            out.push_str(&format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
                html_escape(k),
                html_escape(&v)
            ));
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Sends one message and maps the SMTP result onto the shared outcomes: a 5xx reply is a
/// permanent refusal; 4xx replies, timeouts and connection errors are retried. The server's
/// reply text is kept in the error; credentials never appear in lettre's errors.
pub async fn send(out: &Outgoing) -> Outcome {
    match out.transport.send(out.message.clone()).await {
        Ok(_) => Outcome::Delivered,
        Err(e) if e.is_permanent() => Outcome::Failed {
            error: format!("SMTP refused: {e}"),
        },
        Err(e) => Outcome::Retry {
            after: None,
            error: format!("SMTP: {}", error_chain(&e)),
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

impl Drop for EmailChannel {
    /// lettre's pool spawns its shutdown on the runtime when dropped, and panics without one.
    /// A channel dropped after its runtime is gone (the commands build their runtime for one
    /// delivery pass) has nothing left to shut down: its connections died with the runtime,
    /// so the transport is let go without running its drop.
    fn drop(&mut self) {
        if let Some(transport) = self.transport.take()
            && tokio::runtime::Handle::try_current().is_err()
        {
            std::mem::forget(transport);
        }
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn render(&self, alerts: &[Alert]) -> Rendered {
        let transport = match self.transport() {
            Ok(t) => t,
            Err(e) => return Rendered::Unsendable(e),
        };
        match self.message(alerts) {
            Ok(message) => Rendered::Email(Box::new(Outgoing { transport, message })),
            Err(e) => Rendered::Unsendable(e),
        }
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
}

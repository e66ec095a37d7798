//! Small text helpers the channels share: dollars, truncation, HTML escaping, and the
//! encodings some media need for their headers (hex, base64, RFC 2047 encoded words).

use crate::alert::{Alert, Status};

/// Dollars with cents: `$42.00`.
/// Dollars as the alert text writes them: cents from a dollar up, the exact figure below.
pub fn usd(x: f64) -> String {
    match crate::money::Usd::from_f64(x) {
        Some(u) => format!("${}", u.human()),
        None => format!("${x:.2}"),
    }
}

/// At most `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `FIRING` or `RESOLVED`.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Firing => "FIRING",
        Status::Resolved => "RESOLVED",
    }
}

/// One line for an alert's figures: `tenant acme $42.00 (10.8x)`.
pub fn headline(alert: &Alert) -> String {
    let mut s = format!(
        "{} {}",
        crate::alert::model::series_words(alert),
        usd(alert.observed_usd)
    );
    if let (Status::Firing, Some(r)) = (alert.status, alert.ratio) {
        s.push_str(&format!(" ({r:.1}x)"));
    }
    s
}

/// What the spend is measured against, in words.
pub fn against(alert: &Alert) -> String {
    match (alert.baseline_usd, alert.limit_usd) {
        (_, Some(limit)) => format!("limit {}", usd(limit)),
        (Some(b), None) => format!("usually {}", usd(b)),
        _ => "no baseline".into(),
    }
}

/// The contributors as one compact line: `feature agent $40.10 (usually $2.00, 97%)`.
pub fn contributors_line(alert: &Alert) -> String {
    alert
        .contributors
        .iter()
        .map(|c| {
            format!(
                "{} {} {} (usually {}, {:.0}%)",
                c.dimension,
                c.value.as_deref().unwrap_or("(none)"),
                usd(c.observed_usd),
                usd(c.baseline_usd),
                c.share_of_increase * 100.0
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Text safe inside HTML elements and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A header value that is plain ASCII as it is, or else one RFC 2047 encoded word
/// (`=?UTF-8?B?...?=`), which ntfy and mail readers decode back.
pub fn ascii_header(value: &str) -> String {
    let printable = value.chars().all(|c| c.is_ascii() && !c.is_ascii_control());
    if printable {
        value.to_string()
    } else {
        let clean: String = value.chars().filter(|c| !c.is_control()).collect();
        format!("=?UTF-8?B?{}?=", base64(clean.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn headers_stay_ascii() {
        assert_eq!(ascii_header("FIRING: spike"), "FIRING: spike");
        assert_eq!(ascii_header("Zürich"), "=?UTF-8?B?WsO8cmljaA==?=");
        assert!(ascii_header("a\nb").is_ascii());
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("東京東京", 3), "東京…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}

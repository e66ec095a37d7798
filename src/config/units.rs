//! Small value types that the YAML model reads directly, so that a malformed value is a
//! deserialisation error and carries its line and column.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use std::fmt;

/// A duration written as `90s`, `2m`, `1h 30m`, `14d` or `2w`; held in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub i64);

impl Dur {
    pub const fn seconds(self) -> i64 {
        self.0
    }

    pub const fn minutes(m: i64) -> Dur {
        Dur(m * 60)
    }

    pub const fn hours(h: i64) -> Dur {
        Dur(h * 3600)
    }

    pub const fn days(d: i64) -> Dur {
        Dur(d * 86_400)
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.max(0) as u64)
    }

    /// Parses the forms above; a bare number is refused, since its unit would be a guess.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let mut total: i64 = 0;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("a duration is required, like 5m or 1h".into());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!(
                    "`{text}` is not a duration (expected a number, then s, m, h, d or w)"
                ));
            }
            let n: i64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{text}`: number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == ' ')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let scale = match unit {
                "s" | "sec" | "secs" | "second" | "seconds" => 1,
                "m" | "min" | "mins" | "minute" | "minutes" => 60,
                "h" | "hr" | "hour" | "hours" => 3600,
                "d" | "day" | "days" => 86_400,
                "w" | "week" | "weeks" => 604_800,
                "" => return Err(format!("`{text}` needs a unit (s, m, h, d or w)")),
                other => {
                    return Err(format!(
                        "`{text}`: unknown unit `{other}` (use s, m, h, d or w)"
                    ));
                }
            };
            total = n
                .checked_mul(scale)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("`{text}` is too long"))?;
            rest = rest[unit_len..].trim_start();
        }
        Ok(Dur(total))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if s % size == 0 {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(d)?;
        Dur::parse(&text).map_err(de::Error::custom)
    }
}

/// A time zone named as in the tz database (`UTC`, `Europe/Paris`).
#[derive(Clone, Debug)]
pub struct Zone(pub jiff::tz::TimeZone);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Zone, D::Error> {
        let name = String::deserialize(d)?;
        jiff::tz::TimeZone::get(&name)
            .map(Zone)
            .map_err(|_| de::Error::custom(format!("unknown time zone `{name}`")))
    }
}

/// A money amount in dollars. A negative or unusable number is kept as an error rather than
/// failing the parse, so that the rest of the file is still checked and every error reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Dollars(pub Result<crate::money::Usd, String>);

impl<'de> Deserialize<'de> for Dollars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dollars, D::Error> {
        let v = f64::deserialize(d)?;
        if v < 0.0 {
            return Ok(Dollars(Err(format!("{v} is negative"))));
        }
        Ok(Dollars(
            crate::money::Usd::from_f64(v).ok_or_else(|| format!("{v} is not a usable amount")),
        ))
    }
}

/// One value or a list of them: `feature: chat` and `feature: [chat, agent]` both read.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(Dur::parse("90s").unwrap(), Dur(90));
        assert_eq!(Dur::parse("2m").unwrap(), Dur(120));
        assert_eq!(Dur::parse("1h 30m").unwrap(), Dur(5400));
        assert_eq!(Dur::parse("14d").unwrap(), Dur(14 * 86_400));
        assert_eq!(Dur::parse("1h30m").unwrap(), Dur(5400));
        assert!(Dur::parse("5").unwrap_err().contains("unit"));
        assert!(Dur::parse("5y").unwrap_err().contains("unknown unit"));
        assert!(Dur::parse("m").is_err());
        assert_eq!(Dur(5400).to_string(), "90m");
        assert_eq!(Dur(86_400 * 14).to_string(), "2w");
    }
}

/// A size in bytes, written as a bare count (`1048576`) or with a unit: `B`, `KiB`, `MiB`,
/// `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a size (like 1MiB or 262144)"));
        }
        let n: u64 = t[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: number too large"))?;
        let scale: u64 = match t[digits..].trim() {
            "" | "B" | "b" => 1,
            "KiB" | "k" | "K" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)"
                ));
            }
        };
        n.checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod byte_size_tests {
    use super::ByteSize;

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!(ByteSize::parse("1MiB"), Ok(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("256KiB"), Ok(ByteSize(256 * 1024)));
        assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
        assert_eq!(ByteSize::parse("2 MB"), Ok(ByteSize(2_000_000)));
        assert!(ByteSize::parse("1 parsec").is_err());
        assert!(ByteSize::parse("MiB").is_err());
    }
}

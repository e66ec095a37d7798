//! Money as an exact integer count of nano-dollars.
//!
//! Spend is summed across millions of rows, so it must not drift: ten rows of 0.10 USD reach a
//! 1.00 USD limit exactly, and 1,000 rows of 0.00000105 USD make 0.00105. Floats are used only
//! at the edges (reading a JSON number, printing, statistics on already-summed values).

use serde::{Serialize, Serializer};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

/// Nano-dollars per dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// An amount of US dollars, held as whole nano-dollars (1e-9 USD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

impl Usd {
    pub const ZERO: Usd = Usd(0);

    pub const fn from_nanos(nanos: i64) -> Usd {
        Usd(nanos)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Rounds a dollar amount to the nearest nano-dollar. Returns `None` for NaN, infinities
    /// and amounts too large to hold, so a bad input can never become zero silently.
    pub fn from_f64(usd: f64) -> Option<Usd> {
        if !usd.is_finite() {
            return None;
        }
        let nanos = (usd * NANOS_PER_USD as f64).round();
        if nanos.abs() >= i64::MAX as f64 {
            return None;
        }
        Some(Usd(nanos as i64))
    }

    /// The amount in dollars as a float, for statistics and display only.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }

    /// For people: whole cents from one dollar up (`126.16`), the exact amount below it
    /// (`0.013315`), where cents would hide the figure.
    pub fn human(self) -> String {
        if self.0.abs() >= NANOS_PER_USD {
            format!("{:.2}", self.as_f64())
        } else {
            self.to_string()
        }
    }

    pub fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_sub(rhs.0))
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, |a, b| a + b)
    }
}

/// Prints the exact decimal, without trailing zeros past the cents: `42.00`, `0.005615`.
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / NANOS_PER_USD as u64;
        let frac = abs % NANOS_PER_USD as u64;
        let mut digits = format!("{frac:09}");
        while digits.len() > 2 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{sign}{whole}.{digits}")
    }
}

/// Serialised as a JSON number of dollars, the unit every alert field is named in.
impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_dimes_reach_a_dollar_exactly() {
        let dime = Usd::from_f64(0.10).unwrap();
        let total: Usd = std::iter::repeat_n(dime, 10).sum();
        assert_eq!(total, Usd::from_f64(1.00).unwrap());
        assert!(total >= Usd::from_f64(1.0).unwrap());
    }

    #[test]
    fn a_thousand_tiny_rows_sum_exactly() {
        let tiny = Usd::from_f64(0.00000105).unwrap();
        let total: Usd = std::iter::repeat_n(tiny, 1000).sum();
        assert_eq!(total.nanos(), 1_050_000);
        assert_eq!(total.to_string(), "0.00105");
    }

    #[test]
    fn display_keeps_cents_and_exact_fractions() {
        assert_eq!(Usd::from_f64(42.0).unwrap().to_string(), "42.00");
        assert_eq!(Usd::from_f64(0.005615).unwrap().to_string(), "0.005615");
        assert_eq!(Usd::from_nanos(-1_500_000_000).to_string(), "-1.50");
        assert_eq!(Usd::from_f64(126.1576336).unwrap().human(), "126.16");
        assert_eq!(Usd::from_f64(0.041).unwrap().human(), "0.041");
    }

    #[test]
    fn non_finite_amounts_are_refused() {
        assert_eq!(Usd::from_f64(f64::NAN), None);
        assert_eq!(Usd::from_f64(f64::INFINITY), None);
    }
}

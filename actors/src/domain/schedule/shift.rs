//! The config notation of schedules: shift lengths (`"12h"`, `"1d"`, `"1w"`),
//! hand-off times (`"09:00"`) and IANA time zone names.
//!
//! A shift length is kept as a whole number of hours. Whether it is counted on
//! the local calendar or as elapsed time is decided by that number alone
//! (whole days are calendar days, see the module above), so `"24h"` and `"1d"`
//! are the same length and compare equal; it is written back in the largest
//! unit that divides it (`"168h"` becomes `"1w"`).

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveTime, Timelike};
use serde::{Deserialize, Serialize};

use super::{ScheduleError, Tz};

/// How long each shift of a rotation lasts, in whole hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShiftLength {
    hours: u32,
}

impl ShiftLength {
    /// `n` hours; a multiple of 24 is counted in calendar days.
    pub const fn hours(n: u32) -> Self {
        ShiftLength { hours: n }
    }

    /// `n` local calendar days (saturating).
    pub const fn days(n: u32) -> Self {
        ShiftLength {
            hours: n.saturating_mul(24),
        }
    }

    /// `n` local calendar weeks (saturating).
    pub const fn weeks(n: u32) -> Self {
        ShiftLength {
            hours: n.saturating_mul(24 * 7),
        }
    }

    pub const fn as_hours(self) -> u32 {
        self.hours
    }

    pub const fn is_zero(self) -> bool {
        self.hours == 0
    }

    /// The number of calendar days when the length is a whole number of days
    /// (hand-offs pinned to the local wall clock); `None` for elapsed-time
    /// lengths such as 12 h or 36 h.
    pub const fn whole_days(self) -> Option<u32> {
        if self.hours > 0 && self.hours % 24 == 0 {
            Some(self.hours / 24)
        } else {
            None
        }
    }
}

impl fmt::Display for ShiftLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.hours;
        if h > 0 && h % (24 * 7) == 0 {
            write!(f, "{}w", h / (24 * 7))
        } else if h > 0 && h % 24 == 0 {
            write!(f, "{}d", h / 24)
        } else {
            write!(f, "{h}h")
        }
    }
}

impl FromStr for ShiftLength {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_shift(s)
    }
}

impl TryFrom<String> for ShiftLength {
    type Error = ScheduleError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        parse_shift(&s)
    }
}

impl From<ShiftLength> for String {
    fn from(s: ShiftLength) -> String {
        s.to_string()
    }
}

/// Parses `"<n>h"`, `"<n>d"` or `"<n>w"` with a positive whole `n`.
/// Fractions and compound lengths (`"1.5d"`, `"1d12h"`) are rejected: write
/// `"36h"`.
pub fn parse_shift(s: &str) -> Result<ShiftLength, ScheduleError> {
    let bad = || ScheduleError::InvalidShift(s.to_string());
    let t = s.trim();
    let (digits, unit_hours) = if let Some(n) = t.strip_suffix('h') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 24)
    } else if let Some(n) = t.strip_suffix('w') {
        (n, 24 * 7)
    } else {
        return Err(bad());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit_hours)
        .filter(|&h| h > 0)
        .map(ShiftLength::hours)
        .ok_or_else(bad)
}

/// Parses a local time of day, `"09:00"` or `"09:00:30"`.
pub fn parse_handoff(s: &str) -> Result<NaiveTime, ScheduleError> {
    let t = s.trim();
    NaiveTime::parse_from_str(t, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
        .ok()
        // A leap second (`23:59:60`) is not a time anyone hands off at.
        .filter(|time| time.nanosecond() < 1_000_000_000)
        .ok_or_else(|| ScheduleError::InvalidHandoff(s.to_string()))
}

/// Parses an IANA time zone name (`"Europe/Berlin"`, `"UTC"`), exactly as
/// spelled in the tz database.
pub fn parse_time_zone(s: &str) -> Result<Tz, ScheduleError> {
    s.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone(s.to_string()))
}

/// Hand-off times as `"HH:MM"` (`"HH:MM:SS"` when the seconds are not zero).
pub(super) mod handoff_serde {
    use chrono::{NaiveTime, Timelike};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        let text = if t.second() == 0 && t.nanosecond() == 0 {
            t.format("%H:%M").to_string()
        } else {
            t.format("%H:%M:%S").to_string()
        };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_handoff(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_lengths_parse_in_whole_units() {
        assert_eq!(parse_shift("1d"), Ok(ShiftLength::days(1)));
        assert_eq!(parse_shift("7d"), Ok(ShiftLength::weeks(1)));
        assert_eq!(parse_shift("1w"), Ok(ShiftLength::hours(168)));
        assert_eq!(parse_shift("12h"), Ok(ShiftLength::hours(12)));
        assert_eq!(parse_shift(" 2w "), Ok(ShiftLength::weeks(2)));
        for bad in [
            "",
            "d",
            "0h",
            "0w",
            "1.5d",
            "-1d",
            "+1d",
            "1d12h",
            "1 d",
            "1m",
            "1D",
            "12",
            "h1",
            "99999999999h",
            "1000000000w",
        ] {
            assert_eq!(
                parse_shift(bad),
                Err(ScheduleError::InvalidShift(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn whole_days_are_calendar_lengths() {
        assert_eq!(ShiftLength::hours(24).whole_days(), Some(1));
        assert_eq!(ShiftLength::weeks(2).whole_days(), Some(14));
        assert_eq!(ShiftLength::hours(12).whole_days(), None);
        assert_eq!(ShiftLength::hours(36).whole_days(), None);
        assert_eq!(ShiftLength::hours(0).whole_days(), None);
    }

    #[test]
    fn shift_lengths_display_in_the_largest_unit() {
        for (text, shown) in [
            ("168h", "1w"),
            ("14d", "2w"),
            ("48h", "2d"),
            ("36h", "36h"),
            ("1h", "1h"),
        ] {
            assert_eq!(parse_shift(text).unwrap().to_string(), shown);
        }
        assert_eq!(ShiftLength::hours(0).to_string(), "0h");
    }

    #[test]
    fn handoffs_are_times_of_day() {
        assert_eq!(
            parse_handoff("09:00"),
            Ok(NaiveTime::from_hms_opt(9, 0, 0).unwrap())
        );
        assert_eq!(
            parse_handoff("23:59:30"),
            Ok(NaiveTime::from_hms_opt(23, 59, 30).unwrap())
        );
        for bad in ["24:00", "9", "09:60", "noon", "", "23:59:60"] {
            assert_eq!(
                parse_handoff(bad),
                Err(ScheduleError::InvalidHandoff(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(parse_time_zone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
        assert_eq!(parse_time_zone("UTC"), Ok(Tz::UTC));
        assert_eq!(
            parse_time_zone("Australia/Lord_Howe"),
            Ok(Tz::Australia__Lord_Howe)
        );
        assert_eq!(
            parse_time_zone("Berlin"),
            Err(ScheduleError::UnknownTimeZone("Berlin".into()))
        );
    }
}

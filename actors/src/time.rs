//! Wall-clock instants and the `Clock` port.
//!
//! Deadlines (next escalation step, ack expiry) are stored in snapshots as
//! absolute wall-clock instants so that a restarted actor re-arms exactly the
//! timers it had. Timers themselves run on tokio's clock (`send_after`), so
//! tests drive them with tokio's paused clock; `TokioClock` derives wall time
//! from tokio's clock so both advance together in those tests.
//!
//! The wall clock may jump (NTP stepping it, a VM resumed, `date -s`);
//! tokio's clock does not. An armed timer keeps the wall time and tokio's
//! instant it was armed at, and when it fires its "now" is that wall time
//! plus tokio's elapsed time: a 5-minute step fires 5 minutes later and
//! records the time it would have read, whatever the wall clock did
//! meanwhile (`actors/tests/clock_jumps.rs`). A restart reads deadlines
//! against the wall clock as it is then: that is all a stored wall-clock
//! instant can mean.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, UTC.
///
/// Serialised as an RFC 3339 string in human-readable formats (JSON) and as a
/// plain integer in binary ones (postcard snapshots), so one type serves the
/// API and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The instant `d` after this one (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// Time left from `now` until this instant; zero when it has passed.
    pub fn remaining_from(self, now: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(now.0).max(0) as u64)
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }

    /// Parses RFC 3339 (`2024-01-02T03:04:05.678Z`, any offset).
    pub fn parse_rfc3339(s: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s).map(|dt| Timestamp(dt.timestamp_millis()))
    }

    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(d).map(Timestamp)
        }
    }
}

/// The OpenAPI schema of what serde writes in JSON: an RFC 3339 string (the
/// integer form is postcard's only).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "An instant, RFC 3339. lim writes UTC with milliseconds; \
                 any offset is accepted on input.",
            ))
            .examples(["2024-01-02T03:04:05.678Z"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

/// Where the core reads "now" from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock: what production uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }
}

/// Wall time derived from tokio's clock: `base` plus the tokio time elapsed
/// since construction. Under `tokio::time::pause()` it advances only when the
/// test advances time, which keeps wall-clock deadlines and tokio timers in
/// step.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: Timestamp) -> Self {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.base.plus(self.start.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_rfc3339_and_postcard_is_integer() {
        let t = Timestamp(1_700_000_000_123);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2023-11-14T22:13:20.123Z\""
        );
        let bytes = postcard::to_allocvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Timestamp>(&bytes).unwrap(), t);
        let back: Timestamp = serde_json::from_str("\"2023-11-14T23:13:20.123+01:00\"").unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn remaining_is_zero_when_past() {
        let t = Timestamp(1000);
        assert_eq!(t.remaining_from(Timestamp(5000)), Duration::ZERO);
        assert_eq!(t.remaining_from(Timestamp(400)), Duration::from_millis(600));
    }
}

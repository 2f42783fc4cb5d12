//! The fingerprint: the stable identity of an alert and of the incident it
//! deduplicates into.
//!
//! # Algorithm (frozen: changing it splits every open incident in two)
//!
//! 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`).
//!
//! * **Label set**: labels sorted by name (byte order); for each label feed
//!   the name's UTF-8 bytes, the byte `0xFF`, the value's bytes, the byte
//!   `0xFF`. The empty label set hashes to the offset basis. This is exactly
//!   Prometheus' `model.LabelSet.Fingerprint()`, so a lim fingerprint equals
//!   the one Prometheus and Alertmanager show for the same labels.
//! * **Dedup key** (when the sender supplies one): feed the byte `0xFE`, then
//!   the key's UTF-8 bytes. `0xFE` never starts a UTF-8 label name, so a dedup
//!   key can never be fed the same bytes as a label set.
//!
//! Rendered as 16 lower-case hex digits. The test vectors below pin it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::alert::Labels;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;
const SEPARATOR: u8 = 0xff;
const DEDUP_KEY_TAG: u8 = 0xfe;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

fn feed(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

impl Fingerprint {
    /// Fingerprint of a label set (Prometheus-compatible).
    pub fn of_labels(labels: &Labels) -> Self {
        // `Labels` is a BTreeMap, so iteration is already sorted by name.
        let mut h = OFFSET;
        for (name, value) in labels {
            h = feed(h, name.as_bytes());
            h = feed(h, &[SEPARATOR]);
            h = feed(h, value.as_bytes());
            h = feed(h, &[SEPARATOR]);
        }
        Fingerprint(h)
    }

    /// Fingerprint of a sender-supplied deduplication key.
    pub fn of_dedup_key(key: &str) -> Self {
        let h = feed(OFFSET, &[DEDUP_KEY_TAG]);
        Fingerprint(feed(h, key.as_bytes()))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a fingerprint is 16 hexadecimal digits, got {0:?}")]
pub struct FingerprintParseError(String);

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            return Err(FingerprintParseError(s.to_string()));
        }
        u64::from_str_radix(s, 16)
            .map(Fingerprint)
            .map_err(|_| FingerprintParseError(s.to_string()))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(d).map(Fingerprint)
        }
    }
}

/// The OpenAPI schema of what serde writes in JSON: 16 lower-case hex digits.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Fingerprint {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9a-f]{16}$"))
            .description(Some(
                "A 64-bit FNV-1a fingerprint as 16 lower-case hex digits: of a label set \
                 (equal to Prometheus' and Alertmanager's), or of a dedup key.",
            ))
            .examples(["04269496f970fd8a"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Fingerprint {}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Pinned vectors. If one of these changes, every deployed incident index
    /// breaks: do not "fix" the expected values.
    #[test]
    fn pinned_test_vectors() {
        assert_eq!(
            Fingerprint::of_labels(&Labels::new()).to_string(),
            "cbf29ce484222325"
        );
        // Prometheus' own vector (prometheus/common model/fingerprinting_test.go,
        // TestMetricToFingerprint): the same labels give the same fingerprint.
        assert_eq!(
            Fingerprint::of_labels(&labels(&[
                ("name", "garland, briggs"),
                ("fear", "love is not enough")
            ]))
            .0,
            5799056148416392346
        );
        assert_eq!(
            Fingerprint::of_labels(&labels(&[
                ("alertname", "HighLatency"),
                ("model", "gpt-4o"),
                ("service", "chat"),
                ("severity", "critical"),
            ]))
            .to_string(),
            PINNED_HIGH_LATENCY
        );
        assert_eq!(
            Fingerprint::of_dedup_key("srv01/mysql").to_string(),
            PINNED_DEDUP_KEY
        );
    }

    const PINNED_HIGH_LATENCY: &str = "f2c6d30e9c973005";
    const PINNED_DEDUP_KEY: &str = "84a78725c01b0320";

    #[test]
    fn order_of_insertion_does_not_matter() {
        let a = labels(&[("a", "1"), ("b", "2")]);
        let mut b = Labels::new();
        b.insert("b".into(), "2".into());
        b.insert("a".into(), "1".into());
        assert_eq!(Fingerprint::of_labels(&a), Fingerprint::of_labels(&b));
    }

    #[test]
    fn separator_prevents_concatenation_collisions() {
        let a = labels(&[("ab", "c")]);
        let b = labels(&[("a", "bc")]);
        assert_ne!(Fingerprint::of_labels(&a), Fingerprint::of_labels(&b));
    }

    #[test]
    fn round_trips_through_text_and_json() {
        let f = Fingerprint::of_dedup_key("k");
        assert_eq!(f.to_string().parse::<Fingerprint>().unwrap(), f);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), f);
        assert!("xyz".parse::<Fingerprint>().is_err());
    }
}

//! The snapshot codec: one place that turns an `Incident` into bytes for the
//! store and back. Postcard (serde, compact, maintained) behind a leading
//! format-version byte, so a later format can be read side by side with
//! this one instead of breaking every stored snapshot.

use crate::domain::Incident;

/// The version byte written in front of every snapshot. Version 2 added
/// `Incident::paged`; version 1 snapshots (before any release) are refused
/// as unknown rather than misread, postcard being positional.
pub const SNAPSHOT_FORMAT_V2: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty snapshot")]
    Empty,
    #[error("unknown snapshot format version {0}")]
    UnknownVersion(u8),
    #[error("snapshot encoding: {0}")]
    Postcard(#[from] postcard::Error),
}

pub fn encode_incident(incident: &Incident) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(256);
    out.push(SNAPSHOT_FORMAT_V2);
    Ok(postcard::to_extend(incident, out)?)
}

pub fn decode_incident(bytes: &[u8]) -> Result<Incident, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&SNAPSHOT_FORMAT_V2, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(CodecError::UnknownVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;
    use crate::time::Timestamp;

    fn incident() -> Incident {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), "HighLatency".into());
        labels.insert("model".into(), "gpt-4o".into());
        let alert = Alert {
            labels,
            annotations: [("summary".to_string(), "p99 4.2s".to_string())].into(),
            status: AlertStatus::Firing,
            starts_at: Timestamp(1_700_000_000_000),
            ends_at: Some(Timestamp(1_700_000_300_000)),
            source: "native".into(),
            dedup_key: None,
            extra: None,
        };
        let policy = EscalationPolicy::default_console();
        let (mut i, _) =
            Incident::open(IncidentId(42), alert, &policy, Timestamp(1_700_000_000_000));
        i.fire_escalation(&policy, Timestamp(1_700_000_000_000));
        i.acknowledge(
            Attribution::new("alice", Interface::Api),
            &policy,
            Timestamp(1_700_000_001_000),
        )
        .unwrap();
        i
    }

    #[test]
    fn round_trip() {
        let i = incident();
        let bytes = encode_incident(&i).unwrap();
        assert_eq!(bytes[0], SNAPSHOT_FORMAT_V2);
        assert_eq!(decode_incident(&bytes).unwrap(), i);
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        let mut bytes = encode_incident(&incident()).unwrap();
        bytes[0] = 99;
        assert!(matches!(
            decode_incident(&bytes),
            Err(CodecError::UnknownVersion(99))
        ));
        assert!(matches!(decode_incident(&[]), Err(CodecError::Empty)));
        assert!(decode_incident(&[SNAPSHOT_FORMAT_V2, 0xff, 0xff]).is_err());
    }
}

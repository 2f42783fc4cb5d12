//! Slack's request signing: every request Slack sends carries
//! `X-Slack-Request-Timestamp` and `X-Slack-Signature`, which is `v0=` +
//! hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` keyed with the app's
//! signing secret. [`verify`] checks both headers against the raw body,
//! the signature in constant time, and refuses a timestamp more than
//! [`MAX_SKEW`] away from `now` (a replayed request). `now` is a parameter
//! so tests need no clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// How far a request's timestamp may be from now, either way, in seconds.
pub const MAX_SKEW: i64 = 5 * 60;

type HmacSha256 = Hmac<Sha256>;

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    #[error("X-Slack-Request-Timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("X-Slack-Request-Timestamp is more than 5 minutes from now")]
    Stale,
    #[error("X-Slack-Signature does not match the request")]
    Mismatch,
}

/// `v0=HEX`: the signature of `body` sent at `timestamp` (the header's text).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a request's `timestamp` and `signature` headers (`None` when
/// absent) against its raw `body`, at `now` (Unix seconds).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?.trim();
    let signature = signature.ok_or(SignatureError::MissingSignature)?.trim();
    let at: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if at.abs_diff(now) > MAX_SKEW as u64 {
        return Err(SignatureError::Stale);
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Mismatch)?;
    let expected = mac(secret, timestamp, body);
    if given.len() == expected.len() && bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of Slack's documentation, "Verifying requests from Slack"
    // (docs.slack.dev/authentication/verifying-requests-from-slack). Its
    // command is `/webhook-collect`: the same body with `/webbot`, as it is
    // sometimes quoted, does not give the documented signature.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const NOW: i64 = 1531420618 + 30;

    fn check(
        secret: &str,
        ts: Option<&str>,
        sig: Option<&str>,
        body: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        verify(secret, ts, sig, body.as_bytes(), now)
    }

    #[test]
    fn slacks_documented_example() {
        assert_eq!(sign(SECRET, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
        assert_eq!(
            check(SECRET, Some(TIMESTAMP), Some(SIGNATURE), BODY, NOW),
            Ok(())
        );
    }

    #[test]
    fn tampered_bodies_are_refused() {
        let tampered = [
            BODY.replace("roadrunner", "coyote"),
            BODY.replace("text=", "text=ack+1"),
            format!("{BODY}&x=1"),
            BODY[..BODY.len() - 1].to_string(),
            String::new(),
        ];
        for body in tampered {
            assert_eq!(
                check(SECRET, Some(TIMESTAMP), Some(SIGNATURE), &body, NOW),
                Err(SignatureError::Mismatch),
                "{body}"
            );
        }
    }

    #[test]
    fn wrong_secrets_signatures_and_timestamps_are_refused() {
        fn ok(secret: &str, ts: Option<&str>, sig: Option<&str>) -> Result<(), SignatureError> {
            check(secret, ts, sig, BODY, NOW)
        }
        assert_eq!(
            ok("other", Some(TIMESTAMP), Some(SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        // The same signature under another timestamp: signed over it.
        assert_eq!(
            ok(SECRET, Some("1531420619"), Some(SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            "v0=",
            "v0=zz",
            "v1=a2114d57",
            &SIGNATURE[..SIGNATURE.len() - 2],
            &SIGNATURE.replace("v0=", ""),
        ] {
            assert_eq!(
                ok(SECRET, Some(TIMESTAMP), Some(bad)),
                Err(SignatureError::Mismatch),
                "{bad}"
            );
        }
        assert_eq!(
            ok(SECRET, None, Some(SIGNATURE)),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            ok(SECRET, Some(TIMESTAMP), None),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            ok(SECRET, Some("soon"), Some(SIGNATURE)),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_are_refused() {
        let at = |now| check(SECRET, Some(TIMESTAMP), Some(SIGNATURE), BODY, now);
        let t = 1531420618;
        assert_eq!(at(t + MAX_SKEW), Ok(()));
        assert_eq!(at(t - MAX_SKEW), Ok(()));
        assert_eq!(at(t + MAX_SKEW + 1), Err(SignatureError::Stale));
        assert_eq!(at(t - MAX_SKEW - 1), Err(SignatureError::Stale));
    }
}

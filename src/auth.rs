//! Who may talk to lim: services with their integration keys (ingest) and
//! API tokens with their scopes (the operator API).
//!
//! Secrets are never kept in memory or in config as themselves when it can
//! be helped: API tokens are configured as SHA-256 digests only; integration
//! keys may be written in the clear (senders such as Prometheus must be
//! configured with them anyway) or as digests, and are digested when the
//! config is read. A presented secret is digested and compared with **every**
//! configured digest in constant time (`subtle`), with no early exit, so the
//! time an answer takes says nothing about how close a guess was or which
//! entry it matched. SHA-256 without a salt is enough here: the secrets are
//! long random strings (`lim token new` makes 256-bit ones), not passwords.
//!
//! Open modes: with no integration key configured anywhere, ingest needs no
//! key and alerts belong to the service named by their `service` label (else
//! `default`); with no API token configured, the operator API is open. Both
//! are for loopback use: `config::check_exposure` refuses a non-loopback
//! address while either is open, unless the operator consented.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 digest of a secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// Digests a secret as presented by a client.
    pub fn of(secret: &str) -> Self {
        SecretDigest(Sha256::digest(secret.as_bytes()).into())
    }

    /// Parses a configured digest: 64 hex digits, optionally `sha256:`-prefixed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex_text = text.strip_prefix("sha256:").unwrap_or(text);
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| {
            "expected a SHA-256 digest: 64 hex digits, optionally prefixed with \"sha256:\" \
             (`lim token new` prints one)"
                .to_string()
        })?;
        Ok(SecretDigest(bytes))
    }

    /// `sha256:<hex>`, the form the config accepts.
    pub fn to_config_string(self) -> String {
        format!("sha256:{}", hex::encode(self.0))
    }
}

/// Never print a digest in logs or debug output: a digest of a short key is
/// as good as the key to anyone with a dictionary.
impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(…)")
    }
}

/// An integration key as written in the config: in the clear, or
/// `sha256:`-prefixed digest. Either way only the digest is kept.
pub fn parse_integration_key(text: &str) -> Result<SecretDigest, String> {
    if text.starts_with("sha256:") {
        return SecretDigest::parse(text);
    }
    if text.len() < MIN_KEY_LEN {
        return Err(format!(
            "integration key is too short: at least {MIN_KEY_LEN} characters \
             (`lim token new` makes a random one)"
        ));
    }
    Ok(SecretDigest::of(text))
}

/// Shortest integration key accepted in the clear.
pub const MIN_KEY_LEN: usize = 16;

/// Finds the entry whose digest matches `presented`, comparing with every
/// entry in constant time and without stopping at the first match.
fn find_constant_time<'a, T>(
    entries: impl Iterator<Item = (&'a SecretDigest, T)>,
    presented: &str,
) -> Option<T> {
    let digest = SecretDigest::of(presented);
    let mut found = None;
    for (candidate, value) in entries {
        if bool::from(candidate.0.ct_eq(&digest.0)) && found.is_none() {
            found = Some(value);
        }
    }
    found
}

/// The service every alert belongs to when no service is named.
pub const DEFAULT_SERVICE: &str = "default";

/// A service from `[[services]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub integration_keys: Vec<SecretDigest>,
    pub escalation_policy: String,
    /// Added to every alert that comes in with one of this service's keys;
    /// the alert's own labels win, except `service`, which is this service.
    pub labels: BTreeMap<String, String>,
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// List and read incidents, timelines, silences, heartbeats.
    Read,
    /// Act: acknowledge, resolve, snooze, escalate, notes, silences.
    Write,
}

impl Scope {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            other => Err(format!(
                "unknown scope {other:?}: expected \"read\" or \"write\""
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

/// An API token from `[[api_tokens]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// Who acts with it: the name recorded on the timeline.
    pub user: String,
    pub digest: SecretDigest,
    pub scopes: Vec<Scope>,
}

impl ApiToken {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Every credential lim knows, looked up per request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Shared, so a request that authenticates as one holds it without a copy.
    services: Vec<Arc<Service>>,
    tokens: Vec<ApiToken>,
}

impl Access {
    pub fn new(services: Vec<Service>, tokens: Vec<ApiToken>) -> Self {
        Access {
            services: services.into_iter().map(Arc::new).collect(),
            tokens,
        }
    }

    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// Ingest needs a key once any service has one.
    pub fn ingest_is_open(&self) -> bool {
        self.services.iter().all(|s| s.integration_keys.is_empty())
    }

    /// The operator API needs a token once any is configured.
    pub fn api_is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The service whose integration key this is.
    pub fn service_for_key(&self, key: &str) -> Option<&Arc<Service>> {
        let entries = self
            .services
            .iter()
            .flat_map(|s| s.integration_keys.iter().map(move |k| (k, s)));
        find_constant_time(entries, key)
    }

    /// The API token this is.
    pub fn token(&self, presented: &str) -> Option<&ApiToken> {
        find_constant_time(self.tokens.iter().map(|t| (&t.digest, t)), presented)
    }
}

/// A new random secret (256 bits, hex), for a token or an integration key.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(format!("lim_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, keys: &[&str]) -> Service {
        Service {
            name: name.into(),
            integration_keys: keys.iter().map(|k| SecretDigest::of(k)).collect(),
            escalation_policy: "default".into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn digests_round_trip_through_config_text() {
        let d = SecretDigest::of("hello");
        // The well-known SHA-256 of "hello".
        assert_eq!(
            d.to_config_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(SecretDigest::parse(&d.to_config_string()).unwrap(), d);
        assert_eq!(
            SecretDigest::parse("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
                .unwrap(),
            d
        );
        assert!(SecretDigest::parse("sha256:abc").is_err());
        assert!(SecretDigest::parse(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{d:?}"), "SecretDigest(…)", "never printed");
    }

    #[test]
    fn integration_keys_in_the_clear_or_digested() {
        let clear = parse_integration_key("a-long-enough-key").unwrap();
        assert_eq!(clear, SecretDigest::of("a-long-enough-key"));
        let digested = parse_integration_key(&clear.to_config_string()).unwrap();
        assert_eq!(digested, clear);
        assert!(parse_integration_key("short").is_err());
    }

    #[test]
    fn keys_find_their_service() {
        let access = Access::new(
            vec![
                service("db", &["db-key-0000000000"]),
                service("llm", &["llm-key-1111111111", "llm-key-2222222222"]),
            ],
            vec![],
        );
        assert!(!access.ingest_is_open());
        assert!(access.api_is_open());
        assert_eq!(
            access.service_for_key("llm-key-2222222222").unwrap().name,
            "llm"
        );
        assert_eq!(
            access.service_for_key("db-key-0000000000").unwrap().name,
            "db"
        );
        assert!(access.service_for_key("llm-key-222222222").is_none());
        assert!(access.service_for_key("").is_none());
    }

    #[test]
    fn tokens_and_scopes() {
        let access = Access::new(
            vec![service("default", &[])],
            vec![
                ApiToken {
                    user: "alice".into(),
                    digest: SecretDigest::of("alice-token"),
                    scopes: vec![Scope::Read, Scope::Write],
                },
                ApiToken {
                    user: "dash".into(),
                    digest: SecretDigest::of("dash-token"),
                    scopes: vec![Scope::Read],
                },
            ],
        );
        assert!(access.ingest_is_open(), "no service has a key");
        assert!(!access.api_is_open());
        let dash = access.token("dash-token").unwrap();
        assert_eq!(dash.user, "dash");
        assert!(dash.allows(Scope::Read) && !dash.allows(Scope::Write));
        assert!(access.token("alice-token").unwrap().allows(Scope::Write));
        assert!(access.token("mallory").is_none());
    }

    #[test]
    fn new_secrets_are_random_and_usable_as_keys() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(parse_integration_key(&a).is_ok());
    }
}

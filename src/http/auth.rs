//! Authentication extractors: integration keys for ingest, API tokens with
//! scopes for the operator API. The lookups themselves are in
//! [`crate::auth`]; this is only how requests present them.
//!
//! * [`IngestService`]: `Authorization: Bearer KEY` on the ingest paths. It
//!   names the service the alerts belong to; [`IngestService::stamp`] puts
//!   the service's name and labels on them before they are admitted, so the
//!   size limits see what will be stored. PagerDuty's `/v2/enqueue` carries
//!   its key as `routing_key` in the body instead: [`service_for_routing_key`].
//! * [`CanRead`] / [`CanWrite`]: `Authorization: Bearer TOKEN` on the
//!   operator API, with the token's scope checked. A write is attributed to
//!   the token's user whatever the body's `by` says: attribution that a
//!   client can choose freely is not attribution.
//!
//! Both extract from the request head, so a refused request is answered
//! before its body is read. A missing or wrong credential is 401; a token
//! without the needed scope is 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use incident_actors::domain::Alert;

use std::sync::Arc;

use super::{ApiError, AppState};
use crate::auth::{Access, Scope, Service};
use crate::config::Route;

/// The bearer credential of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
        .filter(|c| !c.is_empty())
}

/// The service an ingest request authenticated as (`None` when ingest is
/// open: no key configured anywhere), and the routing rules that pick a
/// service for alerts no key decided.
pub struct IngestService {
    pub service: Option<Arc<Service>>,
    pub routes: Arc<Vec<Route>>,
}

impl IngestService {
    /// Puts the service on the alerts: the key's service (`service=<name>`
    /// and its labels where the alert has none of that name); without a
    /// key, the first route whose matchers all match sets `service`; with
    /// no route matching, the alert keeps its own `service` label (else it
    /// is in `default`).
    pub fn stamp(&self, alerts: &mut [Alert]) {
        match &self.service {
            Some(service) => stamp(service, alerts),
            None => route(&self.routes, alerts),
        }
    }
}

fn route(routes: &[Route], alerts: &mut [Alert]) {
    for alert in alerts {
        let matched = routes
            .iter()
            .find(|r| r.matchers.iter().all(|m| m.matches(&alert.labels)));
        if let Some(r) = matched {
            alert
                .labels
                .insert("service".to_string(), r.service.clone());
        }
    }
}

/// A sender's dedup key, scoped to the service its integration key names:
/// one service's key cannot join, acknowledge or resolve another service's
/// incident by guessing its dedup key (PagerDuty scopes them the same way).
pub fn scoped_dedup_key(service: &Service, key: &str) -> String {
    format!("{}/{key}", service.name)
}

fn stamp(service: &Service, alerts: &mut [Alert]) {
    for alert in alerts {
        if let Some(key) = &alert.dedup_key {
            alert.dedup_key = Some(scoped_dedup_key(service, key));
        }
        // The service's labels where the alert has none of that name, and
        // `service` always: one rebuild of the compact label set.
        let added: Vec<(&str, &str)> = service
            .labels
            .iter()
            .filter(|(k, _)| !alert.labels.contains_key(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("service", service.name.as_str())])
            .collect();
        alert.labels.extend(added);
    }
}

/// Resolves an integration key presented by an ingest request.
pub fn service_for_key(
    access: &Access,
    key: Option<&str>,
) -> Result<Option<Arc<Service>>, ApiError> {
    if access.ingest_is_open() {
        return Ok(None);
    }
    let Some(key) = key else {
        return Err(ApiError::Unauthorized(
            "an integration key is required: send `Authorization: Bearer <key>`".into(),
        ));
    };
    match access.service_for_key(key) {
        Some(service) => Ok(Some(service.clone())),
        None => Err(ApiError::Unauthorized(
            "the integration key is not valid".into(),
        )),
    }
}

/// PagerDuty Events v2 authenticate with `routing_key` in the body.
pub fn service_for_routing_key(state: &AppState, key: &str) -> Result<IngestService, ApiError> {
    let service = service_for_key(state.access(), Some(key)).map_err(|e| match e {
        ApiError::Unauthorized(_) => {
            ApiError::Unauthorized("the routing_key is not a valid integration key".into())
        }
        other => other,
    })?;
    Ok(IngestService {
        service,
        routes: state.routes(),
    })
}

impl FromRequestParts<AppState> for IngestService {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(IngestService {
            service: service_for_key(state.access(), bearer(&parts.headers))?,
            routes: state.routes(),
        })
    }
}

/// Who is calling the operator API: a token's user, or nobody in
/// particular when the API is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: Option<String>,
}

impl Caller {
    /// Who to record for an action: the token's user; with the API open,
    /// the `by` the client sent.
    pub fn attribute(&self, claimed: Option<String>) -> Option<String> {
        self.user.clone().or(claimed)
    }
}

fn caller(access: &Access, headers: &HeaderMap, scope: Scope) -> Result<Caller, ApiError> {
    if access.api_is_open() {
        return Ok(Caller { user: None });
    }
    let Some(presented) = bearer(headers) else {
        return Err(ApiError::Unauthorized(
            "an API token is required: send `Authorization: Bearer <token>` \
             (the CLI: --token or LIM_TOKEN)"
                .into(),
        ));
    };
    let Some(token) = access.token(presented) else {
        return Err(ApiError::Unauthorized("the API token is not valid".into()));
    };
    if !token.allows(scope) {
        return Err(ApiError::Forbidden(format!(
            "the token of {:?} does not have the {:?} scope",
            token.user,
            scope.as_str()
        )));
    }
    Ok(Caller {
        user: Some(token.user.clone()),
    })
}

/// A caller allowed to read.
pub struct CanRead(pub Caller);

/// A caller allowed to act.
pub struct CanWrite(pub Caller);

impl FromRequestParts<AppState> for CanRead {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(state.access(), &parts.headers, Scope::Read).map(CanRead)
    }
}

impl FromRequestParts<AppState> for CanWrite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(state.access(), &parts.headers, Scope::Write).map(CanWrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ApiToken, SecretDigest};
    use axum::http::HeaderValue;
    use incident_actors::domain::Labels;
    use std::collections::BTreeMap;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn stamping_sets_the_service_and_fills_labels() {
        let service = Service {
            name: "llm".into(),
            integration_keys: vec![SecretDigest::of("k")],
            escalation_policy: "default".into(),
            labels: BTreeMap::from([
                ("team".to_string(), "ml".to_string()),
                ("env".to_string(), "prod".to_string()),
            ]),
        };
        let mut alert = Alert {
            labels: Labels::from([
                ("alertname".to_string(), "X".to_string()),
                ("env".to_string(), "staging".to_string()),
                ("service".to_string(), "other".to_string()),
            ]),
            annotations: Labels::new(),
            status: incident_actors::domain::AlertStatus::Firing,
            starts_at: incident_actors::time::Timestamp(0),
            ends_at: None,
            source: "native".into(),
            dedup_key: None,
            extra: None,
        };
        let ingest = IngestService {
            service: Some(Arc::new(service)),
            routes: Arc::default(),
        };
        ingest.stamp(std::slice::from_mut(&mut alert));
        assert_eq!(
            &alert.labels["service"], "llm",
            "the key decides the service"
        );
        assert_eq!(&alert.labels["team"], "ml");
        assert_eq!(
            &alert.labels["env"], "staging",
            "the alert's own label wins"
        );
    }

    #[test]
    fn scopes_are_enforced() {
        let access = Access::new(
            vec![],
            vec![ApiToken {
                user: "dash".into(),
                digest: SecretDigest::of("t"),
                scopes: vec![Scope::Read],
            }],
        );
        let ok = caller(&access, &headers("Bearer t"), Scope::Read).unwrap();
        assert_eq!(ok.user.as_deref(), Some("dash"));
        assert_eq!(
            ok.attribute(Some("mallory".into())).as_deref(),
            Some("dash")
        );
        let e = caller(&access, &headers("Bearer t"), Scope::Write).unwrap_err();
        assert_eq!(e.code(), "forbidden");
        let e = caller(&access, &headers("Bearer x"), Scope::Read).unwrap_err();
        assert_eq!(e.code(), "unauthorized");
        let e = caller(&access, &HeaderMap::new(), Scope::Read).unwrap_err();
        assert_eq!(e.code(), "unauthorized");
        let open = caller(&Access::default(), &HeaderMap::new(), Scope::Write).unwrap();
        assert_eq!(open.attribute(Some("bob".into())).as_deref(), Some("bob"));
    }
}

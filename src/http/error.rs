//! `ApiError`: every way an HTTP request can fail, and its JSON answer
//! `{"error":{"code","message"}}` with the matching status code.
//!
//! Handlers and extractors return `Result<_, ApiError>`; nothing else in the
//! HTTP layer builds an error response. 503 answers carry `Retry-After` so
//! senders back off and retry.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use incident_actors::domain::TransitionError;
use incident_actors::messages::{CommandError, IngestError};
use incident_actors::ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer: `{"error":{"code","message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "incident 42 not found"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_json`, `invalid_body`,
    /// `invalid_parameter`, `unsupported_media_type`, `payload_too_large`,
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `not_ready`, `unavailable`,
    /// `overloaded` or `internal`.
    #[schema(value_type = String, example = "not_found")]
    pub code: &'static str,
    /// For people: what is wrong, naming the field or parameter.
    pub message: String,
}

impl From<&ApiError> for ErrorBody {
    fn from(e: &ApiError) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all.
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON of the wrong shape, or fails validation.
    #[error("{0}")]
    InvalidBody(String),
    /// A path or query parameter is invalid.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// The body could not be read (connection trouble).
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    /// No credential, or a wrong one.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token without the scope the request needs.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("lim is starting: the incident system is not ready yet")]
    NotReady,
    /// The store or the actor system failed; nothing was committed.
    #[error("{0}")]
    Unavailable(String),
    /// Readiness: the store takes no writes (since when, and its error).
    #[error("the store takes no writes since {since}: {error}")]
    StoreUnavailable { since: String, error: String },
    #[error("too many alerts in flight; retry shortly")]
    Overloaded,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::InvalidBody(_)
            | ApiError::InvalidParameter(_)
            | ApiError::BodyRead(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotReady
            | ApiError::Unavailable(_)
            | ApiError::StoreUnavailable { .. }
            | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::BodyRead(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotReady => "not_ready",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::StoreUnavailable { .. } => "store_unavailable",
            ApiError::Overloaded => "overloaded",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Seconds a client should wait before retrying, for 503 answers.
    fn retry_after(&self) -> Option<&'static str> {
        match self {
            ApiError::Unavailable(_) | ApiError::StoreUnavailable { .. } | ApiError::Overloaded => {
                Some("1")
            }
            ApiError::NotReady => Some("2"),
            _ => None,
        }
    }
}

/// The `code` of an `ApiError` answer, kept in the response's extensions
/// for middleware (the ingest metrics tell `overloaded` from `unavailable`,
/// both 503).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Not-ready and overloaded answers are expected under their
        // conditions (probes poll during start-up): they are not logged.
        if matches!(self, ApiError::Unavailable(_) | ApiError::Internal(_)) {
            tracing::warn!(code = self.code(), error = %self, "request failed");
        }
        let body = Json(ErrorBody::from(&self));
        let mut response = (status, body).into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        response.extensions_mut().insert(ErrorCode(self.code()));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { .. } => ApiError::Internal(e.to_string()),
            StoreError::Unavailable(_) | StoreError::Rejected(_) => {
                ApiError::Unavailable(e.to_string())
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::NotFound(id) => ApiError::NotFound(format!("incident {id} not found")),
            CommandError::NoOpenIncident(_) => ApiError::NotFound(e.to_string()),
            CommandError::Transition(t @ TransitionError::AlreadyResolved(_)) => {
                ApiError::Conflict(t.to_string())
            }
            CommandError::Store(s) => s.into(),
            CommandError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

/// For the parsers' tests: the one-pass decoder and the `Value` path must
/// give the same alerts, or the same error code and message, for `body`.
#[cfg(test)]
pub(crate) fn assert_same_outcome<T: std::fmt::Debug>(
    body: &str,
    once: Result<T, ApiError>,
    twice: Result<T, ApiError>,
) {
    match (once, twice) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{body}"),
        (Err(a), Err(b)) => assert_eq!(
            (a.code(), a.to_string()),
            (b.code(), b.to_string()),
            "{body}"
        ),
        (a, b) => panic!("{body}: {a:?} against {b:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::IncidentId;

    #[test]
    fn command_errors_map_to_statuses() {
        let s = |e: CommandError| ApiError::from(e).status();
        assert_eq!(
            s(CommandError::NotFound(IncidentId(1))),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            s(CommandError::Transition(TransitionError::AlreadyResolved(
                IncidentId(1)
            ))),
            StatusCode::CONFLICT
        );
        assert_eq!(
            s(CommandError::Unavailable("x".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            s(CommandError::Store(StoreError::Unavailable(
                "db down".into()
            ))),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn the_body_is_error_code_message() {
        let body = ErrorBody::from(&ApiError::NotFound("incident 4 not found".into()));
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            serde_json::json!({"error": {"code": "not_found", "message": "incident 4 not found"}})
        );
    }

    #[test]
    fn unavailable_answers_carry_retry_after() {
        let r = ApiError::Overloaded.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = ApiError::NotFound("x".into()).into_response();
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }
}

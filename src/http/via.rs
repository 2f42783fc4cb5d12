//! Which interface a command came through, for the timeline's attribution.
//!
//! `lim`'s CLI sends `X-Lim-Interface: cli` and the web console `web`;
//! anything else is `api`. It is attribution, not authentication: who acted
//! comes from the body (and, with API tokens, from the token).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use incident_actors::domain::Interface;

use super::ApiError;

pub const HEADER: &str = "x-lim-interface";

pub struct Via(pub Interface);

/// The interface named by the header value; unknown values count as `api`.
pub fn interface_of(value: Option<&str>) -> Interface {
    match value.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("cli") => Interface::Cli,
        Some(v) if v.eq_ignore_ascii_case("web") => Interface::Web,
        _ => Interface::Api,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Via {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let value = parts.headers.get(HEADER).and_then(|v| v.to_str().ok());
        Ok(Via(interface_of(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert_eq!(interface_of(Some("cli")), Interface::Cli);
        assert_eq!(interface_of(Some(" WEB ")), Interface::Web);
        assert_eq!(
            interface_of(Some("slack")),
            Interface::Api,
            "slack is only set by lim's own Slack endpoints"
        );
        assert_eq!(interface_of(None), Interface::Api);
    }
}

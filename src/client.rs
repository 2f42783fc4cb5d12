//! A small client of lim's HTTP API, for the CLI (`lim incidents`, `lim ack`,
//! …). It speaks JSON and turns every failure into a [`ClientError`] whose
//! message is one line a person can act on: the server is unreachable, the
//! token was refused, or the API's own `{"error":{"code","message"}}`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The header that tells the server which interface acted (see `http::via`).
const INTERFACE_HEADER: &str = "x-lim-interface";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the lim server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("the server refused the token ({status}): {message}")]
    Refused { status: StatusCode, message: String },
    #[error("{message} ({status})")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("the server at {server} answered something that is not lim's API: {reason}")]
    NotLim { server: String, reason: String },
    /// A command-line value the command cannot use.
    #[error("{0}")]
    Usage(String),
}

pub struct ApiClient {
    server: String,
    /// `server` as messages show it: a password in it (`LIM_SERVER` may
    /// carry basic-auth credentials for a proxy in front of lim) replaced
    /// by `***`, so an error printed to a terminal or a CI log keeps it.
    shown: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// `server` (no trailing `/`: `ApiClient::new` trims it) with the password
/// of its user info, if any, replaced by `***`. A URL that does not parse
/// is shown as given: it has none to hide that reqwest would send (it
/// refuses to send to it at all).
fn redacted(server: &str) -> String {
    match reqwest::Url::parse(server) {
        Ok(mut url) if url.password().is_some() => {
            // Cannot fail: a URL with a password has a host.
            let _ = url.set_password(Some("***"));
            // `Url` writes a bare host's path as `/`.
            url.as_str().trim_end_matches('/').to_string()
        }
        _ => server.to_string(),
    }
}

/// The innermost cause of a transport error, which says the most
/// ("connection refused", "dns error: …").
fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

impl ApiClient {
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        let server = server.trim_end_matches('/').to_string();
        let shown = redacted(&server);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Unreachable {
                server: shown.clone(),
                reason: root_cause(&e),
            })?;
        Ok(ApiClient {
            server,
            shown,
            token: token.filter(|t| !t.is_empty()),
            http,
        })
    }

    /// Sends one request; `Ok` holds the JSON body of a 2xx answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server))
            .query(query)
            .header(INTERFACE_HEADER, "cli");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            server: self.shown.clone(),
            reason: root_cause(&e),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable {
                server: self.shown.clone(),
                reason: root_cause(&e),
            })?;
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::NotLim {
                server: self.shown.clone(),
                reason: format!("{status}, body is not JSON: {e}"),
            })?
        };
        if status.is_success() {
            return Ok(json);
        }
        let code = json["error"]["code"].as_str().unwrap_or("").to_string();
        let message = json["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ClientError::Refused { status, message });
        }
        Err(ClientError::Api {
            status,
            code,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_password_in_the_server_url_is_not_shown() {
        assert_eq!(
            redacted("https://ops:hunter2@lim.example.com:8443/base"),
            "https://ops:***@lim.example.com:8443/base"
        );
        assert_eq!(
            redacted("http://ops:hunter2@127.0.0.1:9"),
            "http://ops:***@127.0.0.1:9"
        );
    }

    #[test]
    fn a_server_url_without_one_is_shown_as_given() {
        for url in [
            "http://127.0.0.1:8080",
            "https://ops@lim.example.com",
            "not a url",
        ] {
            assert_eq!(redacted(url), url);
        }
    }
}

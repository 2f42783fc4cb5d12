//! The web console: a single page served by lim itself at `GET /`.
//!
//! Plain HTML, CSS and an ES module (`src/http/console/`), embedded in the
//! binary with `include_str!`: there is no JavaScript build step and nothing
//! else to run. The page holds no data, so loading it needs no credential;
//! everything it shows comes from the operator API (`/v1/incidents`,
//! `/v1/actors`, …), called by the browser with the API token the operator
//! typed in (kept in `sessionStorage`) as `Authorization: Bearer`, and with
//! `X-Lim-Interface: web` so its actions are attributed to the web
//! interface ([`super::via`]). Same auth as the API, because it *is* the API.
//!
//! Routes (not API operations, so not in the OpenAPI document):
//!
//! | path | what |
//! |---|---|
//! | `/` | `index.html` |
//! | `/console/app.js` | the application (`text/javascript`) |
//! | `/console/app.css` | the style sheet (`text/css`) |
//! | `/console/favicon.svg` | the icon (`image/svg+xml`) |
//!
//! Every answer carries a Content-Security-Policy that allows only `'self'`
//! (no inline script or style, no other origin, no framing), `nosniff`, no
//! referrer, and `Cache-Control: no-cache` so an upgraded server is never
//! paired with a stale script.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// The page's policy: its own origin only, for everything.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");
const FAVICON_SVG: &str = include_str!("console/favicon.svg");

/// The console's routes, merged into [`super::app`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/console/app.js", get(app_js))
        .route("/console/app.css", get(app_css))
        .route("/console/favicon.svg", get(favicon))
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON_SVG)
}

/// One embedded file with its content type and the console's headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn fetch(method: Method, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = crate::http::app(AppState::new())
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_is_html_under_a_self_only_policy_and_needs_no_token() {
        // Not ready and no token: the page still loads (it holds no data).
        let (status, headers, body) = fetch(Method::GET, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert_eq!(csp, CONTENT_SECURITY_POLICY);
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(body.starts_with("<!doctype html>"), "{body}");
        assert!(body.contains(r#"<script type="module" src="/console/app.js">"#));
        assert!(body.contains(r#"href="/console/app.css""#));
        // No inline script or style: the policy would block it.
        assert!(!body.contains("<script>") && !body.contains("<style"));
        assert!(!body.contains(" style="), "no inline style attributes");
    }

    #[tokio::test]
    async fn assets_have_their_content_types() {
        for (path, content_type, needle) in [
            (
                "/console/app.js",
                "text/javascript; charset=utf-8",
                "X-Lim-Interface",
            ),
            (
                "/console/app.css",
                "text/css; charset=utf-8",
                "prefers-color-scheme",
            ),
            ("/console/favicon.svg", "image/svg+xml", "<svg"),
        ] {
            let (status, headers, body) = fetch(Method::GET, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers["content-type"], content_type, "{path}");
            assert_eq!(
                headers["content-security-policy"], CONTENT_SECURITY_POLICY,
                "{path}"
            );
            assert_eq!(headers["cache-control"], "no-cache", "{path}");
            assert!(body.contains(needle), "{path} contains {needle}");
        }
        // HEAD answers too; other methods and unknown assets do not.
        let (status, headers, _) = fetch(Method::HEAD, "/console/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
        let (status, _, _) = fetch(Method::POST, "/").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _, body) = fetch(Method::GET, "/console/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("no such route"), "{body}");
    }

    #[test]
    fn the_script_never_writes_html_from_strings() {
        // Data goes into the page through textContent and attributes only.
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!APP_JS.contains(banned), "app.js uses {banned}");
        }
    }
}

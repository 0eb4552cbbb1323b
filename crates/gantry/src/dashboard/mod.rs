//! The web dashboard `gantry serve` shows: pages rendered on the server (askama templates in
//! `templates/`, checked at compile time, escaping by default), readable without JavaScript;
//! `app.js` only adds live updates. Its stylesheet and script are embedded in the binary and
//! served from `/assets/` (the CSP allows nothing inline and nothing from elsewhere).
//!
//! Every page needs a session ([`session`]); forms that change something carry the session's
//! CSRF token. These routes are not part of the JSON API (`server::ROUTES`, `openapi.json`).

mod ansi;
mod audit;
pub mod dag;
mod deploys;
mod events;
mod live;
mod log;
mod page;
mod rules;
mod run;
mod runners;
mod runs;
mod secrets;
mod services;
pub mod session;
mod settings;
mod timeline;

pub use session::Sessions;
pub use settings::{Configured, GitHubShown};

use crate::server::{ApiError, AppState};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;

const APP_CSS: &str = include_str!("../../assets/app.css");
const APP_JS: &str = include_str!("../../assets/app.js");

/// The dashboard's POST routes: the only ones that take an HTML form's body
/// (`application/x-www-form-urlencoded`), which the guard lets through for them because each
/// checks a CSRF token instead.
pub fn takes_form(path: &str) -> bool {
    if matches!(path, "/login" | "/logout" | "/secrets" | "/secrets/delete") {
        return true;
    }
    if let Some(rest) = path.strip_prefix("/services/") {
        return rest
            .split_once('/')
            .is_some_and(|(name, action)| !name.is_empty() && matches!(action, "start" | "stop"));
    }
    if let Some(rest) = path.strip_prefix("/rules/") {
        let (name, action) = rest.split_once('/').unwrap_or((rest, ""));
        return !name.is_empty() && matches!(action, "" | "delete" | "test");
    }
    let Some(rest) = path.strip_prefix("/runs/") else {
        return false;
    };
    match rest.split_once('/') {
        Some((id, action)) => !id.is_empty() && (action == "cancel" || action == "rerun"),
        None => false,
    }
}

/// The dashboard's routes (merged into the server's router, behind the same guard).
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(runs::list))
        .route("/runs/{id}", get(run::show))
        .route("/runs/{id}/cancel", post(run::cancel))
        .route("/runs/{id}/rerun", post(run::rerun))
        .route("/live", get(live::stream))
        .route("/runs/{id}/timeline", get(timeline::show))
        .route("/runs/{id}/audit", get(audit::show))
        .route("/runs/{id}/jobs/{job}", get(log::show))
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::show))
        .route("/rules", get(rules::list))
        .route("/rules/new", get(rules::new_form).post(rules::create))
        .route("/rules/new/check", get(rules::check))
        .route("/rules/{name}", get(rules::show).post(rules::update))
        .route("/rules/{name}/delete", post(rules::delete))
        .route("/rules/{name}/test", post(rules::test))
        .route("/services", get(services::list))
        .route("/services/{name}", get(services::show))
        .route("/services/{name}/start", post(services::start))
        .route("/services/{name}/stop", post(services::stop))
        .route("/secrets", get(secrets::list).post(secrets::set))
        .route("/secrets/delete", post(secrets::delete))
        .route("/runners", get(runners::list))
        .route("/deploys", get(deploys::list))
        .route("/deploys/{id}", get(deploys::show))
        .route("/settings", get(settings::show))
        .route_layer(middleware::from_fn_with_state(state, session::require));
    Router::new()
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route(
            "/assets/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .merge(pages)
        .layer(middleware::from_fn(headers))
        // Pages are gzipped for browsers that ask (all do): a 1000-job run's page is ~600 KB of
        // HTML and well under a tenth of that on the wire. Event streams are left alone.
        .layer(CompressionLayer::new())
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response();
    page::secure_headers(&mut resp);
    resp
}

/// The security headers on every dashboard response (redirects and refusals too), and
/// `Server-Timing: app;dur=<ms>`: how long the server took to make it (session check, store
/// reads, rendering), which a browser's developer tools show beside the network's time.
async fn headers(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    page::secure_headers(&mut resp);
    let took = format!("app;dur={:.2}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&took) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// Paths of the JSON API and the webhooks: an unknown one gets the API's JSON 404.
fn is_api(path: &str) -> bool {
    [
        "/api/", "/webhook", "/deploy", "/status/", "/test", "/metrics", "/healthz", "/openapi",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// What answers a path no route serves: an HTML page under the dashboard's own prefixes and
/// for browsers (`Accept: text/html`) outside the API's paths; the API's JSON 404 otherwise,
/// so that API clients keep getting JSON for any path.
pub async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    let ours = [
        "/runs/",
        "/events/",
        "/rules/",
        "/services/",
        "/secrets/",
        "/runners/",
        "/deploys/",
        "/settings/",
        "/assets/",
    ]
    .iter()
    .any(|p| path.starts_with(p));
    let browser = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if ours || (browser && !is_api(path)) {
        return page::not_found("There is no such page.");
    }
    ApiError::not_found("no such route").into_response()
}

/// What answers a known path asked with a method it does not take (e.g. a `GET` of a form's
/// `POST` route): 405 as a page under the dashboard's paths and for browsers, as the API's JSON
/// error otherwise. The router adds the `Allow` header.
pub async fn wrong_method(req: Request) -> Response {
    let path = req.uri().path();
    let browser = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let message = format!("{path} does not take {} requests.", req.method());
    if browser && !is_api(path) {
        return page::error(StatusCode::METHOD_NOT_ALLOWED, "Not allowed here", message);
    }
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_dashboards_forms_take_form_bodies() {
        for p in [
            "/login",
            "/logout",
            "/runs/01X/cancel",
            "/runs/01X/rerun",
            "/rules/new",
            "/rules/r1",
            "/rules/r1/delete",
            "/rules/r1/test",
            "/services/auth/start",
            "/services/auth/stop",
            "/secrets",
            "/secrets/delete",
        ] {
            assert!(super::takes_form(p), "{p}");
        }
        for p in [
            "/api/v1/runs/01X/cancel",
            "/runs//cancel",
            "/runs/01X/cancel/x",
            "/runs/01X",
            "/rules//delete",
            "/rules/r1/x",
            "/api/v1/rules/r1",
            "/webhook",
            "/deploy",
            "/services/auth",
            "/services//start",
            "/services/auth/start/x",
            "/services/auth/restart",
            "/secrets/x",
            "/api/v1/secrets",
            "/api/v1/services/auth/start",
            "/runners",
            "/deploys",
            "/settings",
        ] {
            assert!(!super::takes_form(p), "{p}");
        }
        assert!(super::is_api("/api/v1/nope") && !super::is_api("/nope"));
    }
}

//! The HTTP API (`/api/v1`, the webhooks, `/metrics`): routes, authentication, body limits. The
//! only module that knows HTTP; handlers call the engine and the store and nothing else. Every
//! request passes the [`guard`] (Host, Origin, content type) first. The web dashboard's pages
//! ([`crate::dashboard`]) are merged into the same router, behind the same guard, and are not
//! part of [`ROUTES`]; a path no route serves gets an HTML page if a browser asks for it
//! (outside the API's prefixes), the API's JSON 404 otherwise ([`crate::dashboard::fallback`]).

pub(crate) mod agents;
mod bus;
pub(crate) mod deployments;
mod error;
pub mod guard;
mod intake;
mod listen;
mod logs;
mod metrics;
pub mod origin;
mod query;
pub(crate) mod runners;
mod runs;
pub(crate) mod secrets;
pub(crate) mod services;
pub mod signature;

pub use error::ApiError;
pub use guard::Guard;
pub use listen::serve;
pub use metrics::Metrics;
pub use runs::find_run;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use gantry_core::spec::Limits;
use gantry_engine::Engine;
use gantry_engine::pipelines::Pipelines;
use gantry_engine::ports::SecretStore;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The OpenAPI document, kept in the repository and checked by a test against [`ROUTES`].
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Every route, as (method, path template). The router below serves exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/api/v1/runs"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{id}"),
    ("post", "/api/v1/runs/{id}/cancel"),
    ("post", "/api/v1/runs/{id}/rerun"),
    ("get", "/api/v1/runs/{id}/events"),
    ("get", "/api/v1/runs/{id}/jobs/{job}/log"),
    ("post", "/webhooks/github"),
    ("post", "/webhook"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/events"),
    ("get", "/api/v1/events/{id}"),
    ("get", "/api/v1/rules"),
    ("post", "/api/v1/rules"),
    ("get", "/api/v1/rules/{name}"),
    ("put", "/api/v1/rules/{name}"),
    ("delete", "/api/v1/rules/{name}"),
    ("get", "/api/v1/services"),
    ("post", "/api/v1/services/{name}/start"),
    ("post", "/api/v1/services/{name}/stop"),
    ("get", "/api/v1/services/{name}/events"),
    ("get", "/api/v1/runners"),
    ("post", "/api/v1/runners/reconcile"),
    ("get", "/api/v1/runners/{name}"),
    ("post", "/deploy"),
    ("get", "/status/{id}"),
    ("get", "/deployments"),
    ("post", "/test"),
    ("get", "/test-status/{id}"),
    ("post", "/api/v1/deployments"),
    ("get", "/api/v1/deployments"),
    ("get", "/api/v1/deployments/{id}"),
    ("post", "/api/v1/deployments/tests"),
    ("get", "/api/v1/deployments/tests/{id}"),
    ("post", "/api/v1/secrets"),
    ("get", "/api/v1/secrets"),
    ("delete", "/api/v1/secrets/{scope}/{name}"),
    ("post", "/api/v1/agent-tokens"),
    ("get", "/api/v1/agent-tokens"),
    ("delete", "/api/v1/agent-tokens/{name}"),
    ("get", "/api/v1/agents"),
    ("post", "/api/v1/agent/register"),
    ("post", "/api/v1/agent/poll"),
    ("post", "/api/v1/agent/jobs/{id}/heartbeat"),
    ("post", "/api/v1/agent/jobs/{id}/log"),
    ("post", "/api/v1/callbacks/{token}"),
];

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub token: Option<Arc<str>>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub github_secret: Option<signature::Secret>,
    pub webhook_secret: Option<signature::Secret>,
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Push and pull request deliveries start pipelines (when GitHub credentials are set).
    pub pipelines: Option<Pipelines>,
    /// Prefixes a job's clone URL must start with (`GANTRY_GIT_ALLOWED_URL_PREFIXES`).
    pub git_allowed: Arc<Vec<String>>,
    pub bus: Option<gantry_engine::bus::Bus>,
    pub services: Option<Arc<gantry_engine::services::ServiceManager>>,
    /// Ephemeral GitHub Actions runners (`[runners]` in gantry.toml).
    pub runners: Option<gantry_engine::runners::RunnerPools>,
    /// The deployer (`POST /deploy`, `POST /test`): none in a build without the AWS executor.
    pub deployer: Option<Deployer>,
    /// The dashboard's logged-in sessions (kept in memory).
    pub sessions: Arc<crate::dashboard::Sessions>,
    /// What the server was started with, secrets only as set or not (the Settings page).
    pub configured: Arc<crate::dashboard::Configured>,
    /// Agents on other hosts (`runs_on` jobs) and the callback route.
    pub agents: Option<Arc<gantry_engine::agents::Agents>>,
    /// Becomes true when the server stops: long-lived responses (SSE streams) end then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The object store finished runs' logs are archived in, if one is configured.
    pub archive: Option<gantry_engine::archive::LogArchive>,
}

impl AppState {
    /// Makes sure a finished run's log file is here before it is read or the run re-run:
    /// with an object store, a run that another server ran (or whose file was removed) has its
    /// log fetched from the archive. (An unfinished run's log is the stepping server's, and
    /// archived once it ends.) A failure is logged and the log reads as it is here.
    pub async fn log_here(&self, run: &gantry_engine::ports::RunRecord) {
        if let Some(archive) = &self.archive
            && run.status.is_terminal()
            && let Err(e) = archive.restore(&run.id).await
        {
            tracing::warn!(run_id = %run.id, cause = %e, "cannot fetch the run's log from the archive");
        }
    }

    /// [`AppState::log_here`] for a run known by its id (read only with an object store).
    pub async fn log_of_run_here(&self, run_id: &str) {
        if self.archive.is_some()
            && let Ok(Some(run)) = self.engine.store().get_run(run_id).await
        {
            self.log_here(&run).await;
        }
    }

    /// Completes when the server begins to stop.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// What the deployer's requests are checked against before a session starts: the branch in
/// its repository, the stack or function in AWS.
#[derive(Clone)]
pub struct Deployer {
    pub git: Arc<gantry_exec::GitSources>,
    pub targets: Arc<dyn gantry_engine::ports::DeployTargets>,
}

/// The routes behind the guard.
pub fn router(state: AppState, guard: Arc<Guard>) -> Router {
    let body_limit = state.limits.max_bytes + 64 * 1024;
    let api = Router::new()
        .route("/api/v1/runs", post(runs::submit).get(runs::list))
        .route("/api/v1/runs/{id}", get(runs::get_one))
        .route("/api/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/api/v1/runs/{id}/rerun", post(runs::rerun))
        .route("/api/v1/runs/{id}/events", get(runs::events))
        .route("/api/v1/runs/{id}/jobs/{job}/log", get(logs::log))
        .route("/api/v1/events", get(intake::list).post(bus::put_events))
        .route("/api/v1/events/{id}", get(bus::get_event))
        .route("/api/v1/rules", get(bus::list_rules).post(bus::create_rule))
        .route(
            "/api/v1/rules/{name}",
            get(bus::get_rule)
                .put(bus::update_rule)
                .delete(bus::delete_rule),
        )
        .route("/api/v1/services", get(services::list))
        .route("/api/v1/services/{name}/start", post(services::start))
        .route("/api/v1/services/{name}/stop", post(services::stop))
        .route("/api/v1/services/{name}/events", get(services::events))
        .route("/api/v1/runners", get(runners::list))
        .route("/api/v1/runners/reconcile", post(runners::reconcile))
        .route("/api/v1/runners/{name}", get(runners::get_one))
        .route(
            "/deploy",
            post(deployments::deploy).layer(deployments::body_limit()),
        )
        .route("/status/{id}", get(deployments::status))
        .route("/deployments", get(deployments::list))
        .route(
            "/test",
            post(deployments::test).layer(deployments::body_limit()),
        )
        .route("/test-status/{id}", get(deployments::status))
        .route(
            "/api/v1/deployments",
            post(deployments::deploy)
                .layer(deployments::body_limit())
                .get(deployments::list),
        )
        .route("/api/v1/deployments/{id}", get(deployments::status))
        .route(
            "/api/v1/deployments/tests",
            post(deployments::test).layer(deployments::body_limit()),
        )
        .route("/api/v1/deployments/tests/{id}", get(deployments::status))
        .route("/api/v1/secrets", post(secrets::set).get(secrets::list))
        .route("/api/v1/secrets/{scope}/{name}", delete(secrets::delete))
        .route(
            "/api/v1/agent-tokens",
            post(agents::create_token).get(agents::list_tokens),
        )
        .route("/api/v1/agent-tokens/{name}", delete(agents::revoke_token))
        .route("/api/v1/agents", get(agents::list))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/metrics", get(metrics_text))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route(
            "/webhooks/github",
            post(intake::github).layer(DefaultBodyLimit::max(intake::GITHUB_BODY_LIMIT)),
        )
        .route("/webhook", post(intake::orders))
        // Authenticated by agent tokens and callback tokens, not the API token.
        .route("/api/v1/agent/register", post(agents::register))
        .route("/api/v1/agent/poll", post(agents::poll))
        .route("/api/v1/agent/jobs/{id}/heartbeat", post(agents::heartbeat))
        .route("/api/v1/agent/jobs/{id}/log", post(agents::log))
        .route("/api/v1/callbacks/{token}", post(agents::callback))
        .merge(api)
        .merge(crate::dashboard::router(state.clone()))
        .fallback(crate::dashboard::fallback)
        .method_not_allowed_fallback(crate::dashboard::wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render()
            + &state
                .runners
                .as_ref()
                .map(metrics::runners)
                .unwrap_or_default(),
    )
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    state.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v != "application/json")
    {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is larger than the limit",
        )
        .into_response();
    }
    resp
}

/// With a token configured, every API call must carry `Authorization: Bearer <token>`, or,
/// for a GET, the cookie of a dashboard session: the dashboard's script reads the API (runs,
/// a log's event stream) with the cookie its pages already use, and never holds the token.
/// Reads only: nothing a GET does changes state, the cookie is `SameSite=Strict` (other sites'
/// pages never send it) and cross-origin reads are CORS's to refuse. Anything that changes
/// state still needs the bearer token, or goes through a dashboard form with its CSRF token.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token
        && !bearer_matches(req.headers(), token)
        && !(matches!(*req.method(), Method::GET | Method::HEAD)
            && state.sessions.find(req.headers()).is_some())
    {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
pub fn bearer_matches(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

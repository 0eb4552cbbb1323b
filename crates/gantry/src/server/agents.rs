//! Agents on other hosts, over HTTP. For operators (the API token): `/api/v1/agent-tokens`
//! (create — the token shown once —, list, revoke) and `/api/v1/agents`. For agents (their own
//! token, `Authorization: Bearer gat_…`): `/api/v1/agent/register`, `/api/v1/agent/poll`
//! (long poll: a lease or 204), `/api/v1/agent/jobs/{id}/heartbeat` (renew the lease; says
//! whether to stop) and `/api/v1/agent/jobs/{id}/log` (output chunks). For any remote worker:
//! `POST /api/v1/callbacks/{token}`, authenticated by the token itself. Tokens and secrets
//! never appear in logs or errors.

use super::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use gantry_engine::agents::{AgentError, Agents, CallbackError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

fn agents(state: &AppState) -> Result<&Arc<Agents>, ApiError> {
    state.agents.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "this server takes no agents",
        )
    })
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Unauthorized => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
            AgentError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m),
            AgentError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            AgentError::NotFound(m) => ApiError::not_found(m),
            AgentError::Store(s) => ApiError::internal(s),
        }
    }
}

fn bad_body(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_body",
        format!("the body must be {what}"),
    )
}

/// The agent token a request carries (not checked here).
fn agent_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| AgentError::Unauthorized.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

/// `POST /api/v1/agent-tokens` `{"name"}` → 201 `{"name", "token"}`: the only time the token
/// is shown.
pub async fn create_token(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NewToken =
        serde_json::from_slice(&body).map_err(|_| bad_body("a JSON object {\"name\"}"))?;
    let token = agents(&state)?.create_token(&req.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": req.name, "token": token})),
    )
        .into_response())
}

/// `GET /api/v1/agent-tokens`: names, creation and last use.
pub async fn list_tokens(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tokens: Vec<Value> = agents(&state)?
        .list_tokens()
        .await?
        .into_iter()
        .map(|t| {
            json!({"name": t.name, "created_at": crate::view::rfc3339(t.created_at_ms),
                   "last_used_at": t.last_used_ms.map(crate::view::rfc3339)})
        })
        .collect();
    Ok(Json(json!({ "tokens": tokens })).into_response())
}

/// `DELETE /api/v1/agent-tokens/{name}`: refused at once from now on.
pub async fn revoke_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    agents(&state)?.revoke_token(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/agents`: each agent's name, labels, slots, current jobs and last contact.
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all: Vec<Value> = agents(&state)?
        .list()
        .await?
        .into_iter()
        .map(|v| {
            json!({"name": v.agent.name, "token": v.agent.token, "labels": v.agent.labels,
                   "slots": v.agent.slots, "jobs": v.jobs,
                   "last_seen": crate::view::rfc3339(v.agent.last_seen_ms)})
        })
        .collect();
    Ok(Json(json!({ "agents": all })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    name: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default = "one")]
    slots: u32,
}

fn one() -> u32 {
    1
}

/// `POST /api/v1/agent/register` `{"name", "labels", "slots"}` → `{"lease_ms"}`.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let a = agents(&state)?;
    let token = a.authenticate(agent_token(&headers)?).await?;
    let req: Register = serde_json::from_slice(&body)
        .map_err(|_| bad_body("a JSON object {\"name\", \"labels\", \"slots\"}"))?;
    a.register(&token, &req.name, req.labels, req.slots).await?;
    tracing::info!(agent = %req.name, token = %token, "agent registered");
    Ok(Json(json!({"lease_ms": a.lease_ms()})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: String,
}

/// `POST /api/v1/agent/poll` `{"name"}`: a lease (200) when a job comes within the poll
/// time, 204 otherwise.
pub async fn poll(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let a = agents(&state)?;
    let req: Named = serde_json::from_slice(&body).map_err(|_| bad_body("{\"name\"}"))?;
    let token = agent_token(&headers)?;
    let stopped = state.stopped();
    tokio::select! {
        got = a.poll(token, &req.name) => match got? {
            Some(lease) => Ok(Json(lease).into_response()),
            None => Ok(StatusCode::NO_CONTENT.into_response()),
        },
        _ = stopped => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `POST /api/v1/agent/jobs/{id}/heartbeat` `{"name"}` → `{"cancel": bool}`; 409 when the
/// lease is no longer the agent's (it stops the job).
pub async fn heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: Named = serde_json::from_slice(&body).map_err(|_| bad_body("{\"name\"}"))?;
    let cancel = agents(&state)?
        .renew(agent_token(&headers)?, &req.name, &id)
        .await?;
    Ok(Json(json!({ "cancel": cancel })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Chunk {
    name: String,
    /// The output bytes, base64.
    data: String,
}

/// `POST /api/v1/agent/jobs/{id}/log` `{"name", "data"}`: a chunk of output (base64),
/// appended to the attempt's log.
pub async fn log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: Chunk = serde_json::from_slice(&body).map_err(|_| bad_body("{\"name\", \"data\"}"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(req.data.as_bytes())
        .map_err(|_| bad_body("{\"name\", \"data\"} with data in base64"))?;
    agents(&state)?
        .append_log(agent_token(&headers)?, &req.name, &id, &bytes)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/callbacks/{token}` `{"exit_code": N}` or `{"outcome": "failed", "error"}`:
/// an attempt's result, once. 401 forged or malformed, 410 expired, 409 used already or no
/// longer current (with the reason; written to the run's audit trail).
pub async fn callback(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    match agents(&state)?.callback(&token, &body).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(match e {
            CallbackError::Token(r) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_callback", r.to_string())
            }
            CallbackError::Expired(r) => ApiError::new(StatusCode::GONE, "expired", r.to_string()),
            CallbackError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", m),
            CallbackError::NotFound(m) => ApiError::not_found(m),
            CallbackError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "not_current", m),
            CallbackError::Store(s) => ApiError::internal(s),
        }),
    }
}

//! `/api/v1/services`: each service with its tasks, addresses and health; start and stop.

use super::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_engine::ports::Services;
use gantry_engine::services::ServiceManager;
use serde_json::Value;
use std::sync::Arc;

pub(crate) fn manager(state: &AppState) -> Result<&Arc<ServiceManager>, ApiError> {
    state.services.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "no services are configured on this server ([services] in gantry.toml)",
        )
    })
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(manager(&state)?.list().await).into_response())
}

pub(crate) fn known(m: &ServiceManager, name: &str) -> Result<(), ApiError> {
    if m.known(name) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no service `{name}`")))
    }
}

/// `POST /api/v1/services/{name}/start`, optionally `{"overrides": {...}}`.
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let m = manager(&state)?;
    known(m, &name)?;
    let detail: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("the body is not JSON: {e}"),
            )
        })?
    };
    let result = start_one(m, &name, &detail).await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

/// Starts service `name` (known) with `detail`'s overrides: what started, or which step failed
/// (502). `POST /api/v1/services/{name}/start` and the dashboard's start button. The start
/// runs in a task of its own: a client that hangs up does not cut it off half-way (a task
/// started, never recorded nor undone).
pub(crate) async fn start_one(
    m: &Arc<ServiceManager>,
    name: &str,
    detail: &Value,
) -> Result<Value, ApiError> {
    let (m, name, detail) = (m.clone(), name.to_string(), detail.clone());
    match tokio::spawn(async move { m.start(&name, &detail).await }).await {
        Ok(Ok(result)) => Ok(serde_json::from_str::<Value>(&result).unwrap_or_default()),
        Ok(Err(e)) => Err(ApiError::new(StatusCode::BAD_GATEWAY, "start_failed", e)),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "start_failed",
            format!("the start ended abnormally: {e}"),
        )),
    }
}

/// Stops service `name` (known): what stopped, or why not (409). In a task of its own, as a
/// start is: a stop cut off half-way would lose the tasks it had not stopped yet.
pub(crate) async fn stop_one(m: &Arc<ServiceManager>, name: &str) -> Result<Value, ApiError> {
    let (m, name) = (m.clone(), name.to_string());
    match tokio::spawn(async move { m.stop(&name).await }).await {
        Ok(Ok(result)) => Ok(serde_json::from_str::<Value>(&result).unwrap_or_default()),
        Ok(Err(e)) => Err(ApiError::new(StatusCode::CONFLICT, "stop_failed", e)),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "stop_failed",
            format!("the stop ended abnormally: {e}"),
        )),
    }
}

/// Service `name`'s audit trail (every start and stop step), oldest first.
pub(crate) async fn trail(
    state: &AppState,
    name: &str,
) -> Result<Vec<crate::view::AuditView>, ApiError> {
    let trail = state
        .engine
        .store()
        .audit_trail(&format!("service:{name}"))
        .await?;
    Ok(trail.iter().map(Into::into).collect())
}

/// `GET /api/v1/services/{name}/events`: the service's audit trail (every start and stop step).
pub async fn events(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    known(manager(&state)?, &name)?;
    let events = trail(&state, &name).await?;
    Ok(Json(serde_json::json!({ "events": events })).into_response())
}

pub async fn stop(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = manager(&state)?;
    known(m, &name)?;
    Ok(Json(stop_one(m, &name).await?).into_response())
}

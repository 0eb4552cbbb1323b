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

fn manager(state: &AppState) -> Result<&Arc<ServiceManager>, ApiError> {
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

fn known(m: &ServiceManager, name: &str) -> Result<(), ApiError> {
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
    match m.start(&name, &detail).await {
        Ok(result) => Ok((
            StatusCode::CREATED,
            Json(serde_json::from_str::<Value>(&result).unwrap_or_default()),
        )
            .into_response()),
        Err(e) => Err(ApiError::new(StatusCode::BAD_GATEWAY, "start_failed", e)),
    }
}

/// `GET /api/v1/services/{name}/events`: the service's audit trail (every start and stop step).
pub async fn events(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    known(manager(&state)?, &name)?;
    let trail = state
        .engine
        .store()
        .audit_trail(&format!("service:{name}"))
        .await?;
    let events: Vec<crate::view::AuditView> = trail.iter().map(Into::into).collect();
    Ok(Json(serde_json::json!({ "events": events })).into_response())
}

pub async fn stop(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = manager(&state)?;
    known(m, &name)?;
    match m.stop(&name).await {
        Ok(result) => {
            Ok(Json(serde_json::from_str::<Value>(&result).unwrap_or_default()).into_response())
        }
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, "stop_failed", e)),
    }
}

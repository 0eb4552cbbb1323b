//! `/api/v1/runs`: submit (JSON or YAML), list, get, cancel, re-run, and the audit trail.

use super::{ApiError, AppState};
use crate::view::{AuditView, RunView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use gantry_core::RunStatus;
use gantry_core::spec::{self, Format, RunContext};
use gantry_engine::ports::RunFilter;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
pub struct SubmitQuery {
    event: Option<String>,
    branch: Option<String>,
    tag: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = if content_type.starts_with("application/json") {
        Format::Json
    } else if content_type.contains("yaml") {
        Format::Yaml
    } else {
        Format::Auto
    };
    let spec = spec::parse_spec(&body, format, "run", &state.limits)?;
    spec::check_sources(&spec, &state.git_allowed)?;
    let context = RunContext {
        event: Some(q.event.unwrap_or_else(|| "api".into())),
        branch: q.branch,
        tag: q.tag,
        ..RunContext::default()
    };
    let trace = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|tp| tp.split('-').nth(1))
        .map(str::to_string);
    let submitted = state.engine.submit(spec, context, trace).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": submitted.run_id, "trace_id": submitted.trace_id})),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", format!("unknown status `{s}`; expected one of: queued, running, succeeded, failed, cancelled"))
        })?),
    };
    let runs = state
        .engine
        .store()
        .list_runs(RunFilter {
            status,
            limit: super::query::limit(q.limit.as_deref())?,
            ..RunFilter::default()
        })
        .await?;
    let runs: Vec<RunView> = runs.iter().map(RunView::from).collect();
    Ok(Json(json!({ "runs": runs })))
}

/// The run `id`, or a 404 that names it.
pub async fn find_run(
    state: &AppState,
    id: &str,
) -> Result<gantry_engine::ports::RunRecord, ApiError> {
    state
        .engine
        .store()
        .get_run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run `{id}` not found")))
}

pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let run = find_run(&state, &id).await?;
    Ok(Json(RunView::from(&run)))
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    state.engine.cancel(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": id, "status": "cancelling"})),
    ))
}

pub async fn rerun(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    // A re-run appends to the run's log: the earlier attempts' log first, if it is elsewhere.
    state.log_of_run_here(&id).await;
    state.engine.rerun(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": id, "status": "queued"})),
    ))
}

pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let store = state.engine.store();
    find_run(&state, &id).await?;
    let trail = store.audit_trail(&id).await?;
    let events: Vec<AuditView> = trail.iter().map(AuditView::from).collect();
    Ok(Json(json!({ "events": events })))
}

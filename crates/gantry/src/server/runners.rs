//! `/api/v1/runners`: the runner pools (places, waiting jobs) and each job's ephemeral runner
//! (its job, repository, phase, times and container), one runner's audit trail, and a
//! reconciliation on demand. Never a just-in-time config: it is not stored.

use super::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_engine::ports::{RunnerFilter, RunnerRecord};
use gantry_engine::runners::PoolStatus;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `active` (default) or `all`.
    state: Option<String>,
    pool: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/runners`.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let active = match q.state.as_deref() {
        None | Some("active") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("`state` is `active` or `all`, not `{other}`"),
            ));
        }
    };
    let (pools, records) = snapshot(
        &state,
        RunnerFilter {
            active,
            pool: q.pool,
            limit: super::query::limit(q.limit.as_deref())?,
        },
    )
    .await?;
    let runners: Vec<Value> = records.iter().map(runner_json).collect();
    Ok(Json(json!({"pools": pools, "runners": runners})).into_response())
}

/// The configured pools (none without `[runners]`) and the runners `filter` picks, newest
/// first: what `GET /api/v1/runners` and the dashboard's Runners page show.
pub(crate) async fn snapshot(
    state: &AppState,
    filter: RunnerFilter,
) -> Result<(Vec<PoolStatus>, Vec<RunnerRecord>), ApiError> {
    let records = state.engine.store().list_runners(filter).await?;
    let pools = state
        .runners
        .as_ref()
        .map(|r| r.pools())
        .unwrap_or_default();
    Ok((pools, records))
}

/// `GET /api/v1/runners/{name}`: the runner and its audit trail.
pub async fn get_one(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let Some(rec) = state.engine.store().get_runner(&name).await? else {
        return Err(ApiError::not_found(format!("no runner `{name}`")));
    };
    let audit: Vec<Value> = state
        .engine
        .store()
        .audit_trail(&format!("runner:{name}"))
        .await?
        .iter()
        .map(|a| {
            json!({
                "at": crate::view::rfc3339(a.at_ms), "from": a.from, "to": a.to,
                "launch": a.attempt, "note": a.note,
            })
        })
        .collect();
    let mut body = runner_json(&rec);
    body["audit"] = Value::Array(audit);
    Ok(Json(body).into_response())
}

/// `POST /api/v1/runners/reconcile`: lists GitHub's queued jobs and runners now.
pub async fn reconcile(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(runners) = &state.runners else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "no runner pools are configured on this server ([runners] in gantry.toml)",
        ));
    };
    runners.reconcile().await;
    Ok(Json(json!({"reconciled": true})).into_response())
}

fn runner_json(r: &RunnerRecord) -> Value {
    let at = |ms: Option<i64>| ms.map(crate::view::rfc3339);
    json!({
        "name": r.name,
        "pool": r.pool,
        "repository": r.repository,
        "job_id": r.job_id,
        "run_attempt": r.run_attempt,
        "job_name": r.job_name,
        "labels": r.labels,
        "state": r.phase.name(),
        "runner_id": r.phase.runner_id(),
        "container": r.container,
        "launches": r.launches,
        "queued_at": crate::view::rfc3339(r.queued_at_ms),
        "started_at": at(r.started_at_ms),
        "claimed_at": at(r.claimed_at_ms),
        "finished_at": at(r.finished_at_ms),
        "note": r.note,
        "trace_id": r.trace_id,
        "event_id": r.event_id,
    })
}

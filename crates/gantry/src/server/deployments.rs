//! The deployer's API, kept as its contract spells it (`POST /deploy`, `GET /status/{id}`,
//! `GET /deployments`, `POST /test`, `GET /test-status/{id}`) and the same under
//! `/api/v1/deployments…`. A deploy's branch, and a test's stack or function, are looked up
//! before anything starts: what is not there is refused (422). A session is a run of one AWS-executor job: submitted durably (with
//! its record, in one batch) before the 202; its status is the run's, its logs the job's
//! timestamped lines, the rest its record.

use super::{ApiError, AppState, Deployer};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_core::RunStatus;
use gantry_core::deploy::request::{self, DeployRequest, TestRequest};
use gantry_core::spec::RunSpec;
use gantry_engine::deployments;
use gantry_engine::ports::{DeploymentFilter, DeploymentRecord, LookupError};
use serde::Deserialize;
use serde_json::{Value, json};

/// A deployer request is a few names: a body over 64 KiB is refused (413) unread.
pub fn body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(64 * 1024)
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the body is not a valid request: {e}"),
        )
    })
}

fn refused(problems: Vec<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        problems.join("; "),
    )
}

/// What was named is not there (422), or where it lives did not answer (502).
fn not_had(e: LookupError) -> ApiError {
    match e {
        LookupError::Missing(why) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_found", why)
        }
        LookupError::Unreachable(why) => ApiError::new(StatusCode::BAD_GATEWAY, "unreachable", why),
    }
}

pub(crate) fn deployer(state: &AppState) -> Result<&Deployer, ApiError> {
    state.deployer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "no_deployer",
            "this build of Gantry has no deployer (it was built without the `aws` feature)",
        )
    })
}

/// `POST /deploy`: checked, the branch looked up in its repository, then started.
pub async fn deploy(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    let r: DeployRequest = body(&bytes)?;
    let d = request::check_deploy(&r).map_err(refused)?;
    let spec = request::deploy_spec(&d);
    gantry_core::spec::check_sources(&spec, &state.git_allowed)?;
    deployer(&state)?
        .git
        .branch_head(&d.repository, &d.branch)
        .await
        .map_err(not_had)?;
    start(&state, spec, deployments::deploy_record(&d)).await
}

/// `POST /test`.
pub async fn test(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    let r: TestRequest = body(&bytes)?;
    let task = request::check_test(&r).map_err(refused)?;
    deployer(&state)?
        .targets
        .check_test_target(
            r.stack_name.as_deref(),
            r.function_name.as_deref(),
            r.region.as_deref(),
        )
        .await
        .map_err(not_had)?;
    let what = r
        .stack_name
        .clone()
        .or(r.function_name.clone())
        .unwrap_or_default();
    let record = DeploymentRecord {
        kind: "test".into(),
        repository: r.repository.clone(),
        branch: r.branch.clone(),
        commit: r.commit.clone(),
        stack_name: r.stack_name.clone(),
        function_name: r.function_name.clone(),
        region: r.region.clone(),
        ..DeploymentRecord::default()
    };
    start(&state, request::test_spec(task, &what), record).await
}

async fn start(
    state: &AppState,
    spec: RunSpec,
    record: DeploymentRecord,
) -> Result<Response, ApiError> {
    let submitted =
        deployments::start_session(&state.engine, spec, record, None, |_| Vec::new()).await?;
    let body =
        json!({"sessionId": submitted.run_id, "status": "pending", "traceId": submitted.trace_id});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /status/{id}` and `GET /test-status/{id}`.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match session(&state, &id).await? {
        Some((_, out)) => Ok(Json(out).into_response()),
        None => Err(ApiError::not_found(format!("no session `{id}`"))),
    }
}

/// One session's kind (`deploy` or `test`) and the session as `GET /status/{id}` shows it
/// (status, record, timestamped logs), or `None` when there is no such session. The
/// dashboard's session page shows the same.
pub(crate) async fn session(
    state: &AppState,
    id: &str,
) -> Result<Option<(String, Value)>, ApiError> {
    let store = state.engine.store();
    let (Some(rec), Some(run)) = (store.get_deployment(id).await?, store.get_run(id).await?) else {
        return Ok(None);
    };
    state.log_here(&run).await;
    let job = run.jobs.first();
    let logs = job
        .map(|j| {
            state
                .engine
                .logs()
                .read(id, &j.name, j.attempt)
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let mut out = session_json(&rec, run.status);
    out["logs"] = Value::Array(log_lines(
        &String::from_utf8_lossy(&logs),
        run.created_at_ms,
    ));
    if out["error"].is_null() && matches!(run.status, RunStatus::Failed | RunStatus::Cancelled) {
        out["error"] = json!(format!("the session {}", run.status));
    }
    Ok(Some((rec.kind, out)))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    /// The last session of the page before (its `sessionId`).
    after: Option<String>,
}

/// `GET /deployments`: deploy sessions, newest first, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::query::limit(q.limit.as_deref())?;
    let (items, next) = sessions(
        &state,
        "deploy",
        q.status.as_deref(),
        q.after.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(json!({"deployments": items, "next": next})).into_response())
}

/// The statuses a session list is filtered by, as `GET /deployments?status=` names them.
pub(crate) const STATUSES: [&str; 4] = ["pending", "running", "succeeded", "failed"];

/// Sessions of `kind` (`deploy` or `test`), newest first, with `status` (one of [`STATUSES`])
/// and after session `after`: as `GET /deployments` lists them, with the next page's cursor.
pub(crate) async fn sessions(
    state: &AppState,
    kind: &str,
    status: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let statuses = match status {
        None => Vec::new(),
        Some("pending") => vec!["queued".to_string()],
        Some("running") => vec!["running".into()],
        Some("succeeded") => vec!["succeeded".into()],
        Some("failed") => vec!["failed".into(), "cancelled".into()],
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("`status` is pending, running, succeeded or failed, not `{other}`"),
            ));
        }
    };
    let store = state.engine.store();
    let before = match after {
        None => None,
        Some(id) => match store.get_deployment(id).await? {
            Some(r) => Some((r.created_at_ms, r.session_id)),
            None => return Err(ApiError::not_found(format!("no session `{id}`"))),
        },
    };
    let page = store
        .list_deployments(DeploymentFilter {
            kind: kind.into(),
            statuses,
            before,
            limit,
        })
        .await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|(r, _)| r.session_id.clone()))
        .flatten();
    let items = page.iter().map(|(r, s)| session_json(r, *s)).collect();
    Ok((items, next))
}

fn status_name(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Queued => "pending",
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed | RunStatus::Cancelled => "failed",
    }
}

fn session_json(r: &DeploymentRecord, status: RunStatus) -> Value {
    let mut v = json!({
        "sessionId": r.session_id,
        "status": status_name(status),
        "repository": r.repository,
        "branch": r.branch,
        "commit": r.commit,
        "stackName": r.stack_name,
        "region": r.region,
        "createdAt": crate::view::rfc3339(r.created_at_ms),
        "error": r.error,
    });
    if r.kind == "deploy" {
        v["iacType"] = json!(r.iac_type);
        v["deployedResources"] = if r.resources.is_null() {
            json!([])
        } else {
            r.resources.clone()
        };
        v["outputs"] = if r.outputs.is_null() {
            json!({})
        } else {
            r.outputs.clone()
        };
    } else {
        v["functionName"] = json!(r.function_name);
        v["testResults"] = if r.test_results.is_null() {
            json!([])
        } else {
            r.test_results.clone()
        };
    }
    v
}

/// A job log as `[{timestamp, message}]`: the AWS executor's lines start with their time;
/// other lines (a checkout's output) take the time of the line before.
fn log_lines(text: &str, started_ms: i64) -> Vec<Value> {
    let mut last = crate::view::rfc3339(started_ms);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (at, message) = match line.split_once(' ') {
                Some((t, m)) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => {
                    last = t.to_string();
                    (t.to_string(), m.to_string())
                }
                _ => (last.clone(), line.to_string()),
            };
            json!({"timestamp": at, "message": message})
        })
        .collect()
}

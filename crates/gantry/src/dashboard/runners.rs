//! `/runners`: the ephemeral GitHub Actions runner pools (labels, scope, executor, places in
//! use of at most `max_runners`, jobs waiting, runners by phase) and the runners, each with its
//! job, repository, phase, times and last note: active ones by default, every one kept with
//! `?state=all`. The data is `server::runners::snapshot`'s, as `GET /api/v1/runners` shows
//! it. Without `[runners]` a sentence says so and how to configure pools.

use super::page::{self, Page};
use super::runs::short_time;
use super::session::Session;
use crate::server::{AppState, runners as api};
use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gantry_engine::ports::{RunnerFilter, RunnerRecord};
use gantry_engine::runners::PoolStatus;
use serde::Deserialize;

/// Runners on the page at most.
const MOST: u32 = 200;

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// `active` (default) or `all`.
    #[serde(default)]
    pub state: String,
}

/// One pool.
#[derive(Debug)]
pub struct PoolRow {
    pub name: String,
    pub labels: String,
    pub scope: String,
    pub executor: String,
    pub runners: u32,
    pub max_runners: u32,
    pub waiting: u32,
    /// `phase: n`, for the phases with runners.
    pub phases: String,
}

impl PoolRow {
    fn of(p: &PoolStatus) -> PoolRow {
        PoolRow {
            name: p.name.clone(),
            labels: p.labels.join(", "),
            scope: p.scope.clone(),
            executor: p.executor.clone(),
            runners: p.runners,
            max_runners: p.max_runners,
            waiting: p.waiting,
            phases: p
                .by_phase
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// One runner.
#[derive(Debug)]
pub struct RunnerRow {
    pub name: String,
    pub pool: String,
    pub repository: String,
    pub job: String,
    pub labels: String,
    pub state: &'static str,
    pub launches: u32,
    pub queued: String,
    pub finished: String,
    pub note: String,
}

impl RunnerRow {
    fn of(r: &RunnerRecord) -> RunnerRow {
        RunnerRow {
            name: r.name.clone(),
            pool: r.pool.clone(),
            repository: r.repository.clone(),
            job: format!("{} (#{}, attempt {})", r.job_name, r.job_id, r.run_attempt),
            labels: r.labels.join(", "),
            state: r.phase.name(),
            launches: r.launches,
            queued: short_time(r.queued_at_ms),
            finished: r.finished_at_ms.map(short_time).unwrap_or_default(),
            note: r.note.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "runners.html")]
struct RunnersPage {
    page: Page,
    configured: bool,
    all: bool,
    pools: Vec<PoolRow>,
    runners: Vec<RunnerRow>,
}

/// `GET /runners?state=active|all`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(f): Query<Filter>,
) -> Response {
    let all = match f.state.as_str() {
        "" | "active" => false,
        "all" => true,
        _ => return page::bad_request("The state is `active` or `all`."),
    };
    let filter = RunnerFilter {
        active: !all,
        pool: None,
        limit: MOST,
    };
    let (pools, records) = match api::snapshot(&state, filter).await {
        Ok(s) => s,
        Err(e) => return page::from_api(e),
    };
    page::render(
        StatusCode::OK,
        &RunnersPage {
            page: Page::new("Runners", "/runners", &session.csrf),
            configured: state.runners.is_some(),
            all,
            pools: pools.iter().map(PoolRow::of).collect(),
            runners: records.iter().map(RunnerRow::of).collect(),
        },
    )
}

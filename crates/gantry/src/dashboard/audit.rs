//! `/runs/{id}/audit`: the run's audit trail, oldest first — every state change of the run and
//! its jobs (from → to, with the attempt and the reason) and every note, with its time and its
//! offset from the run's creation. The same records as `GET /api/v1/runs/{id}/events`.

use super::page::{self, Page};
use super::run::segment;
use super::runs::short_time;
use super::session::Session;
use crate::server::AppState;
use crate::view::rfc3339;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use gantry_engine::ports::{AuditRecord, RunRecord};

/// One entry of the trail, ready to show.
#[derive(Debug)]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    pub at_short: String,
    pub offset: String,
    /// The job's name, or empty for the run itself.
    pub job: String,
    pub job_path: String,
    pub attempt: String,
    pub from: String,
    pub to: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    page: Page,
    path: String,
    name: String,
    entries: Vec<Entry>,
}

/// The run `id` names and its audit trail, or the error page (404 for an unknown run).
pub async fn run_and_trail(
    state: &AppState,
    id: &str,
) -> Result<(RunRecord, Vec<AuditRecord>), Box<Response>> {
    let run = crate::server::find_run(state, id)
        .await
        .map_err(|e| Box::new(page::from_api(e)))?;
    let trail = state
        .engine
        .store()
        .audit_trail(&run.id)
        .await
        .map_err(|e| Box::new(page::from_api(e.into())))?;
    Ok((run, trail))
}

/// `GET /runs/{id}/audit`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let (run, trail) = match run_and_trail(&state, &id).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let entries = trail
        .into_iter()
        .map(|a| Entry {
            seq: a.seq,
            at: rfc3339(a.at_ms),
            at_short: short_time(a.at_ms),
            offset: format!("+{}", page::duration(a.at_ms - run.created_at_ms)),
            job_path: a.job.as_deref().map(segment).unwrap_or_default(),
            job: a.job.unwrap_or_default(),
            attempt: a.attempt.map(|n| n.to_string()).unwrap_or_default(),
            from: a.from.unwrap_or_default(),
            to: a.to,
            note: a.note.unwrap_or_default(),
        })
        .collect();
    page::render(
        StatusCode::OK,
        &AuditPage {
            page: Page::new(format!("Audit trail of {}", run.name), "/", &session.csrf),
            path: segment(&run.id),
            name: run.name,
            entries,
        },
    )
}

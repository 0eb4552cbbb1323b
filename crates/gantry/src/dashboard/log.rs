//! `/runs/{id}/jobs/{job}`: a job's log (its latest attempt, or `?attempt=N`) as HTML, colours
//! kept ([`super::ansi`]), everything escaped. `app.js` follows a live log through the API's
//! event stream; the raw log is a link to the API's log endpoint.

use super::ansi;
use super::page::{self, Page};
use super::run::segment;
use super::session::Session;
use crate::server::AppState;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::io::Read;

/// The most of a log a page shows (its beginning); the rest is in the raw download.
pub const SHOWN: u64 = 2 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    attempt: Option<u32>,
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    page: Page,
    run_id: String,
    run_path: String,
    run_name: String,
    job: String,
    job_path: String,
    status: String,
    attempt: u32,
    attempts: Vec<u32>,
    live: bool,
    exit_code: String,
    html: String,
    truncated: bool,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((id, job)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let run = match crate::server::find_run(&state, &id).await {
        Ok(r) => r,
        Err(e) => return page::from_api(e),
    };
    let Some(record) = run.jobs.iter().find(|j| j.name == job) else {
        return page::not_found(format!("Run {id} has no job named “{job}”."));
    };
    let attempt = q.attempt.unwrap_or(record.attempt);
    if record.attempt == 0 {
        // Not started yet: nothing to read, the page follows it once it runs.
    } else if attempt == 0 || attempt > record.attempt {
        return page::not_found(format!(
            "Job “{job}” has no attempt {attempt} (the latest is {}).",
            record.attempt
        ));
    }
    let (text, truncated) = if record.attempt == 0 {
        (String::new(), false)
    } else {
        state.log_here(&run).await;
        let logs = state.engine.logs().clone();
        let (rid, jname) = (id.clone(), job.clone());
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<u8>, bool)> {
            let mut buf = Vec::new();
            let mut reader = logs.reader(&rid, &jname, attempt)?.take(SHOWN + 1);
            reader.read_to_end(&mut buf)?;
            let truncated = buf.len() as u64 > SHOWN;
            buf.truncate(SHOWN as usize);
            Ok((buf, truncated))
        })
        .await;
        match read {
            Ok(Ok((buf, t))) => (String::from_utf8_lossy(&buf).into_owned(), t),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
            Ok(Err(e)) => return page::from_api(crate::server::ApiError::internal(e)),
            Err(e) => return page::from_api(crate::server::ApiError::internal(e)),
        }
    };
    let latest = attempt == record.attempt;
    page::render(
        StatusCode::OK,
        &LogPage {
            page: Page::new(format!("{job} · {}", run.name), "/", &session.csrf),
            run_path: segment(&run.id),
            run_id: run.id.clone(),
            run_name: run.name.clone(),
            job_path: segment(&job),
            job: job.clone(),
            status: record.status.to_string(),
            attempt,
            attempts: (1..=record.attempt).collect(),
            live: latest && !record.status.is_terminal(),
            exit_code: if latest {
                record.exit_code.map(|c| c.to_string()).unwrap_or_default()
            } else {
                String::new()
            },
            html: ansi::to_html(&text),
            truncated,
        },
    )
}

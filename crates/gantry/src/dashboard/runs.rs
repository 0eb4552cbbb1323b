//! `/`: the runs, newest first, filtered by status, repository, branch and event (a GET form),
//! a page at a time (the "older" link carries the last id shown: keyset pagination). The
//! statuses update live through `app.js`.

use super::page::{self, Page};
use super::session::Session;
use crate::server::AppState;
use crate::view::rfc3339;
use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gantry_core::RunStatus;
use gantry_engine::ports::{RunFilter, RunRecord};
use serde::Deserialize;

/// Runs on one page.
pub const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub repo: String,
    #[serde(default)]
    pub branch: String,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub before: String,
    /// Runs per page, 1 to 500 ([`PAGE_SIZE`] when not given).
    #[serde(default)]
    pub limit: String,
}

impl Filters {
    /// The query string for the next page: these filters and `before` (none: the first page).
    fn older(&self, last: Option<&str>) -> String {
        let pairs = [
            ("status", self.status.as_str()),
            ("repo", self.repo.as_str()),
            ("branch", self.branch.as_str()),
            ("event", self.event.as_str()),
            ("limit", self.limit.as_str()),
        ];
        let mut q: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        if let Some(last) = last {
            q.push(("before", last));
        }
        serde_urlencoded::to_string(q).unwrap_or_default()
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub status: String,
    pub repo: String,
    pub branch: String,
    pub event: String,
    pub created: String,
    pub created_short: String,
    pub duration: String,
}

/// When a run began and how long it took (so far).
pub fn run_duration(r: &RunRecord, now_ms: i64) -> String {
    match (r.started_at_ms, r.finished_at_ms) {
        (Some(s), Some(f)) => page::duration(f - s),
        (Some(s), None) => page::duration(now_ms - s),
        (None, Some(f)) => page::duration(f - r.created_at_ms),
        (None, None) => String::new(),
    }
}

/// `2026-12-07 13:14:25` (UTC) from ms.
pub fn short_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

impl Row {
    fn of(r: &RunRecord, now_ms: i64) -> Row {
        let c = &r.context;
        Row {
            id: r.id.clone(),
            name: r.name.clone(),
            status: r.status.to_string(),
            repo: c.repo.clone().unwrap_or_default(),
            branch: c
                .branch
                .clone()
                .or_else(|| c.tag.as_ref().map(|t| format!("tag {t}")))
                .unwrap_or_default(),
            event: c.event.clone().unwrap_or_default(),
            created: rfc3339(r.created_at_ms),
            created_short: short_time(r.created_at_ms),
            duration: run_duration(r, now_ms),
        }
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    page: Page,
    rows: Vec<Row>,
    f: Filters,
    statuses: &'static [&'static str],
    /// The query string of the next page, if there is one.
    older: Option<String>,
    /// The query string of the first page with these filters.
    newest: String,
    filtered: bool,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(f): Query<Filters>,
) -> Response {
    let status = match f.status.as_str() {
        "" => None,
        s => match RunStatus::parse(s) {
            Some(s) => Some(s),
            None => return page::bad_request(format!("There is no run status `{s}`.")),
        },
    };
    let size = match f.limit.as_str() {
        "" => PAGE_SIZE,
        l => match l.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => return page::bad_request("The page size must be a whole number from 1 to 500."),
        },
    };
    let filter = RunFilter {
        status,
        limit: size + 1,
        before: some(&f.before),
        repo: some(&f.repo),
        branch: some(&f.branch),
        event: some(&f.event),
    };
    let mut runs = match state.engine.store().list_runs(filter).await {
        Ok(r) => r,
        Err(e) => return page::from_api(e.into()),
    };
    let more = runs.len() > size as usize;
    runs.truncate(size as usize);
    let now = chrono::Utc::now().timestamp_millis();
    let rows: Vec<Row> = runs.iter().map(|r| Row::of(r, now)).collect();
    let newest = f.older(None);
    let older = more
        .then(|| rows.last().map(|r| f.older(Some(&r.id))))
        .flatten();
    let filtered = !(f.status.is_empty()
        && f.repo.is_empty()
        && f.branch.is_empty()
        && f.event.is_empty()
        && f.before.is_empty());
    page::render(
        StatusCode::OK,
        &RunsPage {
            page: Page::new("Runs", "/", &session.csrf),
            rows,
            f,
            statuses: &["queued", "running", "succeeded", "failed", "cancelled"],
            older,
            newest,
            filtered,
        },
    )
}

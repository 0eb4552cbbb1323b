//! `/runs/{id}`: one run — its trigger, its jobs (status, attempt, duration, exit code, a link
//! to each log), its job graph as an inline SVG with the critical path, and the cancel and
//! re-run forms (`POST /runs/{id}/cancel`, `/rerun`, each with the session's CSRF token).

use super::dag::{self, BOX_H, BOX_W};
use super::page::{self, Page};
use super::runs::{run_duration, short_time};
use super::session::{CsrfForm, Session, csrf_refusal};
use crate::server::AppState;
use crate::view::rfc3339;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use gantry_engine::ports::{JobRecord, RunRecord};
use std::collections::HashMap;

#[derive(Debug)]
pub struct JobRow {
    pub name: String,
    /// The job's name percent-encoded for its log page's path.
    pub path: String,
    pub status: String,
    pub attempt: u32,
    pub duration: String,
    pub exit_code: String,
}

/// A box of the graph, ready to draw.
#[derive(Debug)]
pub struct SvgBox {
    pub name: String,
    pub label: String,
    pub path: String,
    pub status: String,
    pub x: i64,
    pub y: i64,
    pub tx: i64,
    pub ty: i64,
    pub critical: bool,
}

#[derive(Debug)]
pub struct Svg {
    pub width: i64,
    pub height: i64,
    pub w: i64,
    pub h: i64,
    pub boxes: Vec<SvgBox>,
    /// The edges off the critical path as one SVG path's data (`M x1 y1L x2 y2` each): one
    /// element for all of them keeps a big run's page small.
    pub edges: String,
    /// The critical path's edges, the same way.
    pub critical_edges: String,
    /// The critical path's job names, in order.
    pub critical: Vec<String>,
}

/// What started the run, as (label, value).
#[derive(Debug)]
pub struct Trigger {
    pub facts: Vec<(&'static str, String)>,
    pub pr_link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    page: Page,
    id: String,
    name: String,
    status: String,
    created: String,
    created_short: String,
    duration: String,
    trace_id: String,
    finished: bool,
    can_rerun: bool,
    jobs: Vec<JobRow>,
    svg: Svg,
    trigger: Trigger,
}

/// A path segment percent-encoded (job names may hold anything a spec allows).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn job_ms(j: &JobRecord, now: i64) -> Option<i64> {
    let s = j.started_at_ms?;
    Some(j.finished_at_ms.unwrap_or(now) - s)
}

fn svg_of(run: &RunRecord, now: i64) -> Svg {
    let spec = &run.spec.jobs;
    // Jobs by name, once: a run of n jobs is drawn in O(n + needs), not O(n²).
    let index: HashMap<&str, usize> = spec
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect();
    let record: HashMap<&str, &JobRecord> = run.jobs.iter().map(|r| (r.name.as_str(), r)).collect();
    let nodes: Vec<dag::Node> = spec
        .iter()
        .map(|j| dag::Node {
            name: j.name.clone(),
            needs: j
                .needs
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect(),
            duration_ms: record
                .get(j.name.as_str())
                .and_then(|r| job_ms(r, now))
                .unwrap_or(0),
        })
        .collect();
    let layout = dag::layout(&nodes);
    let boxes = layout
        .boxes
        .iter()
        .map(|b| {
            let name = &nodes[b.index].name;
            let label = if name.chars().count() > 20 {
                format!("{}…", name.chars().take(19).collect::<String>())
            } else {
                name.clone()
            };
            SvgBox {
                name: name.clone(),
                label,
                path: segment(name),
                status: record
                    .get(name.as_str())
                    .map(|r| r.status.to_string())
                    .unwrap_or_else(|| "pending".into()),
                x: b.x,
                y: b.y,
                tx: b.x + 10,
                ty: b.y + BOX_H / 2 + 5,
                critical: b.critical,
            }
        })
        .collect();
    Svg {
        width: layout.width,
        height: layout.height,
        w: BOX_W,
        h: BOX_H,
        boxes,
        critical: layout
            .critical
            .iter()
            .map(|&i| nodes[i].name.clone())
            .collect(),
        edges: path_data(layout.edges.iter().filter(|e| !e.critical)),
        critical_edges: path_data(layout.edges.iter().filter(|e| e.critical)),
    }
}

/// Straight lines as SVG path data.
fn path_data<'a>(edges: impl Iterator<Item = &'a dag::Edge>) -> String {
    use std::fmt::Write;
    let mut d = String::new();
    for e in edges {
        let _ = write!(d, "M{} {}L{} {}", e.x1, e.y1, e.x2, e.y2);
    }
    d
}

fn trigger_of(run: &RunRecord) -> Trigger {
    let c = &run.context;
    let mut facts = Vec::new();
    let mut add = |label, v: &Option<String>| {
        if let Some(v) = v {
            facts.push((label, v.clone()));
        }
    };
    add("Event", &c.event);
    add("Repository", &c.repo);
    add("Branch", &c.branch);
    add("Tag", &c.tag);
    add("Commit", &c.sha);
    if c.fork {
        facts.push(("Fork", "yes: no secrets".into()));
    }
    let pr = match (&c.repo, c.pr) {
        (Some(repo), Some(n)) => Some((repo.clone(), n)),
        _ => run.spec.pr.as_ref().map(|p| (p.repo.clone(), p.number)),
    };
    // Only `owner/name` repositories make a link, so a strange value cannot make a strange URL.
    let pr_link = pr.filter(|(repo, _)| {
        repo.split('/').count() == 2
            && repo
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | '/'))
    });
    Trigger {
        facts,
        pr_link: pr_link.map(|(repo, n)| {
            (
                format!("https://github.com/{repo}/pull/{n}"),
                format!("{repo}#{n}"),
            )
        }),
    }
}

pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let run = match crate::server::find_run(&state, &id).await {
        Ok(r) => r,
        Err(e) => return page::from_api(e),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let jobs = run
        .jobs
        .iter()
        .map(|j| JobRow {
            name: j.name.clone(),
            path: segment(&j.name),
            status: j.status.to_string(),
            attempt: j.attempt,
            duration: job_ms(j, now).map(page::duration).unwrap_or_default(),
            exit_code: j.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        })
        .collect();
    let finished = run.status.is_terminal();
    let can_rerun = finished
        && run.jobs.iter().any(|j| {
            matches!(
                j.status,
                gantry_core::JobStatus::Failed
                    | gantry_core::JobStatus::TimedOut
                    | gantry_core::JobStatus::Cancelled
                    | gantry_core::JobStatus::Skipped
            )
        });
    page::render(
        StatusCode::OK,
        &RunPage {
            page: Page::new(format!("Run {}", run.name), "/", &session.csrf),
            id: run.id.clone(),
            name: run.name.clone(),
            status: run.status.to_string(),
            created: rfc3339(run.created_at_ms),
            created_short: short_time(run.created_at_ms),
            duration: run_duration(&run, now),
            trace_id: run.trace_id.clone(),
            finished,
            can_rerun,
            jobs,
            svg: svg_of(&run, now),
            trigger: trigger_of(&run),
        },
    )
}

/// `POST /runs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let done = match csrf_refusal(&session, form.csrf.as_deref()) {
        Some(refused) => return refused,
        None => state.engine.cancel(&id).await,
    };
    back_to_run(&id, done)
}

/// `POST /runs/{id}/rerun`.
pub async fn rerun(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let done = match csrf_refusal(&session, form.csrf.as_deref()) {
        Some(refused) => return refused,
        None => {
            state.log_of_run_here(&id).await;
            state.engine.rerun(&id).await
        }
    };
    back_to_run(&id, done)
}

/// After a run's form: back to its page, or the engine's refusal as a page.
fn back_to_run(id: &str, done: Result<(), gantry_engine::EngineError>) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/runs/{}", segment(id))).into_response(),
        Err(e) => page::from_api(e.into()),
    }
}

//! `/runs/{id}/timeline`: when each job attempt ran, as bars on one time axis (an SVG drawn
//! from the run's audit trail, so retries and lost attempts show as bars of their own), with
//! the same facts in a table for screen readers and text browsers.

use super::page::{self, Page};
use super::run::segment;
use super::session::Session;
use crate::server::AppState;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use gantry_core::dag::LOST;

/// What the step's note of a retry after a timeout says.
const TIMED_OUT: &str = "timeout reached";
use gantry_engine::ports::AuditRecord;

/// The drawing's width for the bars, in SVG units (the labels sit left of it).
const AXIS_W: i64 = 720;
/// The labels' column.
const LABEL_W: i64 = 200;
/// One bar's row.
const ROW_H: i64 = 22;

/// One attempt of one job: when it began running and when it stopped (not yet: `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub job: String,
    pub attempt: u32,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// What the attempt became (`running` while it runs).
    pub status: String,
}

/// The attempts in the trail, in the order they started: an attempt starts at its entry
/// `to: running` and ends at the job's next state change (a job runs one attempt at a time).
/// A retry's entry (`running → queued`, already numbered with the next attempt) ends the
/// attempt before it as `failed`, `timed_out`, or `lost` when its server or agent stopped while it ran
/// (as the entry's note says: the step writes the reason there).
pub fn spans(trail: &[AuditRecord]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for a in trail {
        let (Some(job), Some(attempt)) = (&a.job, a.attempt) else {
            continue;
        };
        if a.from.is_none() {
            continue; // a note, not a state change
        }
        let open = out
            .iter_mut()
            .rev()
            .find(|s| &s.job == job && s.end_ms.is_none());
        match open {
            Some(s) => {
                s.end_ms = Some(a.at_ms);
                let note = a.note.as_deref().unwrap_or("");
                s.status = match a.to.as_str() {
                    _ if note.contains(LOST) => "lost".into(),
                    "queued" | "pending" if note.contains(TIMED_OUT) => "timed_out".into(),
                    "queued" | "pending" => "failed".into(),
                    to => to.into(),
                };
            }
            None if a.to == "running" => out.push(Span {
                job: job.clone(),
                attempt,
                start_ms: a.at_ms,
                end_ms: None,
                status: a.to.clone(),
            }),
            None => {}
        }
    }
    out
}

/// A bar ready to draw, and its row in the table.
#[derive(Debug)]
pub struct Bar {
    pub job: String,
    /// The job's name as drawn: cut to fit the labels' column.
    pub label: String,
    pub path: String,
    pub attempt: u32,
    pub status: String,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub ty: i64,
    pub offset: String,
    pub duration: String,
}

#[derive(Template)]
#[template(path = "timeline.html")]
struct TimelinePage {
    page: Page,
    path: String,
    name: String,
    bars: Vec<Bar>,
    width: i64,
    height: i64,
    total: String,
}

/// Places the spans on an axis from `origin` (the run's creation) to the last end (or `now`).
fn bars(spans: &[Span], origin: i64, now: i64) -> (Vec<Bar>, i64) {
    let last = spans
        .iter()
        .map(|s| s.end_ms.unwrap_or(now))
        .max()
        .unwrap_or(origin);
    let total = (last - origin).max(1);
    let bars = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let end = s.end_ms.unwrap_or(now);
            let x = LABEL_W + (s.start_ms - origin) * AXIS_W / total;
            let y = i as i64 * ROW_H + 4;
            let label = if s.job.chars().count() > 24 {
                format!("{}…", s.job.chars().take(23).collect::<String>())
            } else {
                s.job.clone()
            };
            Bar {
                job: s.job.clone(),
                label,
                path: segment(&s.job),
                attempt: s.attempt,
                status: s.status.clone(),
                x,
                y,
                w: ((end - s.start_ms) * AXIS_W / total).max(2),
                ty: y + ROW_H / 2 + 4,
                offset: format!("+{}", page::duration(s.start_ms - origin)),
                duration: page::duration(end - s.start_ms),
            }
        })
        .collect();
    (bars, total)
}

/// `GET /runs/{id}/timeline`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let (run, trail) = match super::audit::run_and_trail(&state, &id).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let spans = spans(&trail);
    let (bars, total) = bars(&spans, run.created_at_ms, now);
    let height = bars.len() as i64 * ROW_H + 8;
    page::render(
        StatusCode::OK,
        &TimelinePage {
            page: Page::new(format!("Timeline of {}", run.name), "/", &session.csrf),
            path: segment(&run.id),
            name: run.name,
            bars,
            width: LABEL_W + AXIS_W + 8,
            height,
            total: page::duration(total),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: i64, job: &str, attempt: u32, from: &str, to: &str) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at_ms: at,
            trace_id: "t".into(),
            run_id: "r".into(),
            job: Some(job.into()),
            attempt: Some(attempt),
            from: (!from.is_empty()).then(|| from.into()),
            to: to.into(),
            note: None,
        }
    }

    #[test]
    fn each_attempt_is_a_span_from_running_to_its_next_state() {
        // As the engine writes a retry: `running → queued` already carries attempt 2.
        let trail = vec![
            rec(0, "a", 1, "pending", "queued"),
            rec(10, "a", 1, "queued", "running"),
            rec(15, "b", 1, "queued", "running"),
            rec(20, "a", 1, "", "note"),
            rec(30, "a", 2, "running", "queued"),
            rec(40, "a", 2, "queued", "running"),
            rec(90, "a", 2, "running", "succeeded"),
        ];
        let got = spans(&trail);
        let view: Vec<_> = got
            .iter()
            .map(|s| {
                (
                    s.job.as_str(),
                    s.attempt,
                    s.start_ms,
                    s.end_ms,
                    s.status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("a", 1, 10, Some(30), "failed"),
                ("b", 1, 15, None, "running"),
                ("a", 2, 40, Some(90), "succeeded"),
            ]
        );
        let (bars, total) = bars(&got, 0, 100);
        assert_eq!(total, 100);
        assert_eq!((bars[0].x, bars[0].w), (LABEL_W + 72, 144));
        assert_eq!(bars[1].w, 612, "a running attempt reaches now");
        assert_eq!(bars[2].offset, "+40ms");
    }

    #[test]
    fn lost_and_timed_out_attempts_are_drawn_as_such() {
        let mut again = rec(50, "a", 2, "running", "queued");
        again.note = Some(format!("attempt 1 {LOST}; running it again"));
        let mut last = rec(90, "a", 2, "running", "failed");
        last.note = Some(LOST.into());
        let mut timed_out = rec(140, "a", 3, "running", "queued");
        timed_out.note = Some("attempt 3 timeout reached; retry 1 of 1 in 1s".into());
        let trail = vec![
            rec(10, "a", 1, "queued", "running"),
            again,
            rec(60, "a", 2, "queued", "running"),
            last,
            rec(100, "a", 3, "queued", "running"),
            timed_out,
        ];
        let got: Vec<_> = spans(&trail).into_iter().map(|s| s.status).collect();
        assert_eq!(got, ["lost", "lost", "timed_out"]);
    }

    #[test]
    fn a_run_with_no_attempts_draws_nothing() {
        assert!(spans(&[]).is_empty());
        let (bars, total) = bars(&[], 5, 5);
        assert!(bars.is_empty());
        assert_eq!(total, 1);
    }
}

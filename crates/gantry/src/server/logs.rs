//! Job logs: the whole log as text, or with `Accept: text/event-stream` a live stream that first
//! replays what was written before the client connected, then follows until the attempt ends.
//! Both stream from the file in bounded pieces: serving a log costs buffers, not its size.

use super::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::Stream;
use gantry_engine::ports::{RunRecord, Write};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::TryRecvError;

/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How much of a log is read at a time (a followed log, a piece of a whole one).
const PIECE: usize = 256 * 1024;
/// A followed line longer than this is sent in pieces of this size.
const MAX_EVENT: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    attempt: Option<u32>,
}

pub async fn log(
    State(state): State<AppState>,
    Path((id, job)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run = super::runs::find_run(&state, &id).await?;
    let record = run
        .jobs
        .iter()
        .find(|j| j.name == job)
        .ok_or_else(|| ApiError::not_found(format!("run `{id}` has no job `{job}`")))?;
    let attempt = q.attempt.unwrap_or(record.attempt);
    if attempt == 0 || attempt > record.attempt {
        return Err(ApiError::not_found(format!(
            "job `{job}` has no attempt {attempt} (latest: {})",
            record.attempt
        )));
    }
    state.log_here(&run).await;
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if wants_stream {
        let stopped = state.stopped();
        // Read with a dashboard session's cookie rather than the token: it ends with the
        // session (a logout stops what the browser still follows).
        let by_session = state
            .token
            .as_ref()
            .is_some_and(|t| !super::bearer_matches(&headers, t));
        let session_over = {
            let sessions = state.sessions.clone();
            async move {
                if by_session {
                    sessions.ended(headers).await
                } else {
                    std::future::pending().await
                }
            }
        };
        let stream = follow(state, run, job, attempt)
            .take_until(stopped)
            .take_until(session_over);
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let reader = state
        .engine
        .logs()
        .reader(&id, &job, attempt)
        .map_err(ApiError::internal)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(pieces(reader)),
    )
        .into_response())
}

/// A log read off the async threads in pieces, each sent once the client has taken the ones
/// before (at most two wait in between).
fn pieces(
    mut reader: impl std::io::Read + Send + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut piece = vec![0u8; PIECE];
            let n = match reader.read(&mut piece) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            piece.truncate(n);
            if tx.blocking_send(Ok(Bytes::from(piece))).is_err() {
                return; // the client went away
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    })
}

/// The attempt's output from `offset` in the run's log on (about [`PIECE`] of it), read off
/// the async threads.
async fn read_from(
    state: &AppState,
    run_id: &str,
    job: &str,
    attempt: u32,
    offset: u64,
) -> std::io::Result<(Vec<u8>, u64)> {
    let logs = state.engine.logs().clone();
    let (run_id, job) = (run_id.to_string(), job.to_string());
    tokio::task::spawn_blocking(move || logs.read_from(&run_id, &job, attempt, offset, PIECE))
        .await
        .map_err(std::io::Error::other)?
}

/// Whether the attempt is over (ended, or a newer attempt started), from the store.
async fn attempt_ended(state: &AppState, run_id: &str, job: &str, attempt: u32) -> bool {
    match state.engine.store().get_run(run_id).await {
        Ok(Some(r)) => r
            .jobs
            .iter()
            .find(|j| j.name == job)
            .is_none_or(|j| j.attempt != attempt || j.status.is_terminal()),
        _ => true,
    }
}

fn follow(
    state: AppState,
    run: RunRecord,
    job: String,
    attempt: u32,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream(move |tx| async move {
        // The attempt's state comes from the journal's committed batches, as it changes: a
        // follower reads the store once here (and again only if it missed batches), not the
        // whole run every poll, so a hundred followers of a big run cost file reads alone.
        let mut committed = state.engine.journal().subscribe();
        let run_id = run.id.clone();
        let mut ended = attempt_ended(&state, &run_id, &job, attempt).await;
        let mut offset = 0u64;
        let mut pending = Vec::new();
        loop {
            // The attempt's state first, then the file: output written before the attempt
            // ended is then always sent before the end event.
            while !ended {
                match committed.try_recv() {
                    Ok(batch) => {
                        ended = batch.iter().any(|w| {
                            matches!(w, Write::UpdateJob { run_id: r, job: j }
                                if *r == run_id && j.name == job
                                    && (j.attempt != attempt || j.status.is_terminal()))
                        });
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Lagged(_)) => {
                        ended = attempt_ended(&state, &run_id, &job, attempt).await;
                    }
                    Err(TryRecvError::Closed) => ended = true,
                }
            }
            let mut more = false;
            if let Ok((buf, next)) = read_from(&state, &run_id, &job, attempt, offset).await {
                // A full piece: there may be more already, read it before waiting.
                more = buf.len() >= PIECE;
                offset = next;
                pending.extend_from_slice(&buf);
            }
            // Whole lines (or 64 KiB of a longer one) go out as events; what is left waits
            // for the next piece. One pass, and one drain per piece.
            let mut start = 0;
            loop {
                let rest = &pending[start..];
                let (line, used) = match rest.iter().position(|b| *b == b'\n') {
                    Some(nl) if nl <= MAX_EVENT => (&rest[..nl], nl + 1),
                    _ if rest.len() > MAX_EVENT => (&rest[..MAX_EVENT], MAX_EVENT),
                    _ => break,
                };
                let text = String::from_utf8_lossy(line).into_owned();
                start += used;
                if tx
                    .send(Event::default().event("log").data(text))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            pending.drain(..start);
            if more {
                continue;
            }
            if ended {
                if !pending.is_empty() {
                    let text = String::from_utf8_lossy(&pending).into_owned();
                    let _ = tx.send(Event::default().event("log").data(text)).await;
                }
                let status = state
                    .engine
                    .store()
                    .get_run(&run_id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.jobs.into_iter().find(|j| j.name == job))
                    .map(|j| j.status.to_string())
                    .unwrap_or_default();
                let _ = tx
                    .send(Event::default().event("end").data(
                        serde_json::json!({"status": status, "attempt": attempt}).to_string(),
                    ))
                    .await;
                return;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    })
}

/// A stream fed by a task through a channel.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

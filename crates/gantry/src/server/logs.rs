//! Job logs: the whole log as text, or with `Accept: text/event-stream` a live stream that first
//! replays what was written before the client connected, then follows until the attempt ends.

use super::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::Stream;
use gantry_engine::ports::RunRecord;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

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
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if wants_stream {
        let stream = follow(state, run, job, attempt);
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let (bytes, _) = read_from(&state, &id, &job, attempt, 0)
        .await
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

/// The attempt's output from `offset` in the run's log on, read off the async threads.
async fn read_from(
    state: &AppState,
    run_id: &str,
    job: &str,
    attempt: u32,
    offset: u64,
) -> std::io::Result<(Vec<u8>, u64)> {
    let logs = state.engine.logs().clone();
    let (run_id, job) = (run_id.to_string(), job.to_string());
    tokio::task::spawn_blocking(move || logs.read_from(&run_id, &job, attempt, offset))
        .await
        .map_err(std::io::Error::other)?
}

fn follow(
    state: AppState,
    run: RunRecord,
    job: String,
    attempt: u32,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream(move |tx| async move {
        let mut offset = 0u64;
        let mut pending = Vec::new();
        let run_id = run.id.clone();
        loop {
            // Read the attempt's state first, then the file: output written before the attempt
            // ended is then always sent before the end event.
            let ended = match state.engine.store().get_run(&run_id).await {
                Ok(Some(r)) => r
                    .jobs
                    .iter()
                    .find(|j| j.name == job)
                    .is_none_or(|j| j.attempt != attempt || j.status.is_terminal()),
                _ => true,
            };
            if let Ok((buf, next)) = read_from(&state, &run_id, &job, attempt, offset).await {
                offset = next;
                pending.extend_from_slice(&buf);
            }
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                if tx
                    .send(Event::default().event("log").data(text))
                    .await
                    .is_err()
                {
                    return;
                }
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

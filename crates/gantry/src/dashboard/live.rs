//! `/live`: a Server-Sent Events stream that tells the dashboard's pages when runs change. Each
//! committed batch that touched a run (created, its status, a job's state) becomes one `change`
//! event, `{"runs": [ids]}`; with `?run=ID`, only batches that touched that run. Batches that
//! arrive together are sent as one event. A client too slow to keep up gets
//! `{"runs": [], "all": true}`: anything may have changed. The stream ends when the server
//! stops, and (with a token) once the session is over.
//!
//! The stream says *when*, not *what*: the pages then fetch what they show (the page itself or
//! the JSON API), so what they draw comes from one place.

use crate::server::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use gantry_engine::ports::Write;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    run: Option<String>,
}

/// The run ids a batch touched (each once, in first-touched order), or only `only`.
pub fn touched(batch: &[Write], only: Option<&str>, out: &mut Vec<String>) {
    for w in batch {
        let id = match w {
            Write::InsertRun(r) => &r.id,
            Write::UpdateRun { id, .. } => id,
            Write::UpdateJob { run_id, .. } => run_id,
            _ => continue,
        };
        if only.is_none_or(|o| o == id) && !out.iter().any(|seen| seen == id) {
            out.push(id.clone());
        }
    }
}

/// What a client is sent next: the runs the next batches touched (those waiting included),
/// `None` when it fell behind (anything may have changed), or the end of the stream.
async fn next_change(
    rx: &mut Receiver<Arc<Vec<Write>>>,
    only: Option<&str>,
) -> Option<Option<Vec<String>>> {
    let mut ids = Vec::new();
    loop {
        match rx.recv().await {
            Ok(batch) => touched(&batch, only, &mut ids),
            Err(RecvError::Lagged(_)) => return Some(None),
            Err(RecvError::Closed) => return None,
        }
        loop {
            match rx.try_recv() {
                Ok(batch) => touched(&batch, only, &mut ids),
                Err(TryRecvError::Lagged(_)) => return Some(None),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if !ids.is_empty() {
            return Some(Some(ids));
        }
    }
}

/// `GET /live[?run=ID]`. The stream ends when the server stops and, when a token guards the
/// dashboard, at the first change after the session has ended (logged out or expired).
pub async fn stream(
    State(state): State<AppState>,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
) -> Response {
    let rx = state.engine.journal().subscribe();
    let stopped = state.stopped();
    let guarded = state.token.is_some();
    let sessions = state.sessions.clone();
    let events = futures_util::stream::unfold((rx, q.run), move |(mut rx, only)| {
        let sessions = sessions.clone();
        let headers = headers.clone();
        async move {
            let change = next_change(&mut rx, only.as_deref()).await?;
            if guarded && sessions.find(&headers).is_none() {
                return None;
            }
            let data = match change {
                Some(ids) => serde_json::json!({ "runs": ids }),
                None => serde_json::json!({ "runs": [], "all": true }),
            };
            let event = Event::default().event("change").data(data.to_string());
            Some((Ok::<_, Infallible>(event), (rx, only)))
        }
    });
    Sse::new(events.take_until(stopped))
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_core::RunStatus;

    fn update(id: &str) -> Write {
        Write::UpdateRun {
            id: id.into(),
            status: RunStatus::Running,
            cancel_requested: false,
            started_at_ms: None,
            finished_at_ms: None,
        }
    }

    #[test]
    fn a_batch_names_each_run_it_touched_once() {
        let batch = [update("a"), update("b"), update("a")];
        let mut ids = Vec::new();
        touched(&batch, None, &mut ids);
        assert_eq!(ids, ["a", "b"]);
        let mut only = Vec::new();
        touched(&batch, Some("b"), &mut only);
        assert_eq!(only, ["b"]);
        let mut none = Vec::new();
        touched(&batch, Some("c"), &mut none);
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn batches_waiting_together_are_one_change_and_a_laggard_hears_all() {
        let (tx, mut rx) = tokio::sync::broadcast::channel(4);
        tx.send(Arc::new(vec![update("a")])).unwrap();
        tx.send(Arc::new(vec![update("x")])).unwrap();
        tx.send(Arc::new(vec![update("b")])).unwrap();
        assert_eq!(
            next_change(&mut rx, None).await,
            Some(Some(vec!["a".to_string(), "x".into(), "b".into()]))
        );
        tx.send(Arc::new(vec![update("x")])).unwrap();
        tx.send(Arc::new(vec![update("b")])).unwrap();
        assert_eq!(
            next_change(&mut rx, Some("b")).await,
            Some(Some(vec!["b".to_string()]))
        );
        for _ in 0..6 {
            tx.send(Arc::new(vec![update("a")])).unwrap();
        }
        assert_eq!(next_change(&mut rx, None).await, Some(None));
        drop(tx);
        // What was still held is sent; then the stream ends.
        assert_eq!(
            next_change(&mut rx, None).await,
            Some(Some(vec!["a".to_string()]))
        );
        assert_eq!(next_change(&mut rx, None).await, None);
    }
}

//! Attempts run by remote workers that are not agents — an ECS task, a CodeBuild build, a
//! Lambda function — reporting through the same signed, single-use callback URL as agents
//! (`POST /api/v1/callbacks/{token}`). The attempt gets an entry in the agents' queue that is
//! `Taken` from the start by its worker (`aws:ecs`, `aws:codebuild`, `aws:lambda`: names no
//! agent can have, so no agent takes, renews or logs to it); the callback route then takes its
//! result exactly as an agent's, once. The executor that watches the service itself closes
//! the entry with what the service says: whichever of the two comes first is the result, and
//! the other is refused (the callback with 409, audited) or ignored.

use super::{Agents, lock, now_ms};
use crate::ports::{Launch, QueueState, QueuedJob, StoreError};
use gantry_core::agents::Report;
use gantry_core::callback::{Claim, sign};
use std::sync::Arc;
use tokio::sync::Notify;

/// A callback token is good for the attempt's timeout and this long after it (a worker that
/// ends at its deadline can still report).
pub const CALLBACK_GRACE_MS: u64 = 60_000;

/// One remote attempt's entry and its callback.
pub struct RemoteAttempt {
    agents: Arc<Agents>,
    id: String,
    notify: Arc<Notify>,
    path: String,
}

impl Agents {
    /// Opens a remote attempt for `launch`, run by `worker`: its entry is durable on return,
    /// and its callback path is good until the attempt's timeout plus [`CALLBACK_GRACE_MS`].
    pub async fn remote_attempt(
        self: &Arc<Self>,
        launch: &Launch,
        worker: &str,
    ) -> Result<RemoteAttempt, StoreError> {
        let now = now_ms();
        let expires_at_ms = now + (launch.timeout_ms + CALLBACK_GRACE_MS) as i64;
        let id = crate::ids::new_run_id().to_ascii_lowercase();
        let entry = QueuedJob {
            id: id.clone(),
            run_id: launch.run_id.clone(),
            job: launch.job.clone(),
            attempt: launch.attempt,
            trace_id: launch.trace_id.clone(),
            labels: Vec::new(),
            task: "{}".into(),
            state: QueueState::Taken,
            agent: Some(worker.to_string()),
            lease_expires_ms: Some(expires_at_ms),
            cancel_requested: false,
            result: None,
            created_at_ms: now,
        };
        let notify = Arc::new(Notify::new());
        lock(&self.waiting).insert(id.clone(), notify.clone());
        if let Err(e) = self.queue.enqueue(&entry).await {
            lock(&self.waiting).remove(&id);
            return Err(e);
        }
        let claim = Claim {
            run_id: launch.run_id.clone(),
            job: launch.job.clone(),
            attempt: launch.attempt,
            expires_at_ms,
        };
        Ok(RemoteAttempt {
            agents: self.clone(),
            id,
            notify,
            path: format!("/api/v1/callbacks/{}", sign(&self.key, &claim)),
        })
    }
}

impl RemoteAttempt {
    /// `/api/v1/callbacks/{token}`: where the worker reports, once.
    pub fn callback_path(&self) -> &str {
        &self.path
    }

    /// Resolves when a callback may have come (in this process: at once); then read
    /// [`RemoteAttempt::reported`]. Cancel-safe.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    /// The result a callback reported, if one did.
    pub async fn reported(&self) -> Result<Option<Report>, StoreError> {
        let Some(q) = self.agents.queue.get(&self.id).await? else {
            return Ok(None);
        };
        Ok(match q.state {
            QueueState::Done => q
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            _ => None,
        })
    }

    /// Closes the attempt with what the service said, unless a callback came first: the
    /// report that stands (a later callback is refused).
    pub async fn close(&self, report: &Report) -> Result<Report, StoreError> {
        let json = serde_json::to_string(report).expect("a report is JSON");
        if self
            .agents
            .queue
            .finish(&self.id, QueueState::Taken, QueueState::Done, Some(&json))
            .await?
        {
            return Ok(report.clone());
        }
        Ok(self.reported().await?.unwrap_or_else(|| report.clone()))
    }

    /// Closes the attempt as cancelled (stopped on a cancel or its timeout): a later
    /// callback is refused. Whether it was still open (no callback came first).
    pub async fn cancel(&self) -> Result<bool, StoreError> {
        self.agents
            .queue
            .finish(&self.id, QueueState::Taken, QueueState::Cancelled, None)
            .await
    }
}

impl Drop for RemoteAttempt {
    fn drop(&mut self) {
        lock(&self.agents.waiting).remove(&self.id);
    }
}

//! The `Executor` of `ExecutorKind::Agent`: an attempt is put in the agents' queue (durable
//! first) and this waits — woken at once by the routes in this process — until its result
//! comes back through the callback, its agent's lease expires (`Outcome::Lost`: the
//! orchestrator runs it again as the next attempt), or the run is cancelled (the agent hears
//! it when it next renews its lease, and stops the job).

use super::{Agents, Task, lock, now_ms};
use crate::ports::{CancelSignal, Executor, Launch, QueueState, QueuedJob, Store};
use async_trait::async_trait;
use gantry_core::agents::Report;
use gantry_core::dag::Outcome;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Runs `runs_on` jobs on agents.
#[derive(Clone)]
pub struct AgentExecutor {
    agents: Arc<Agents>,
    store: Arc<dyn Store>,
    /// This server's lease holder name.
    owner: String,
}

impl AgentExecutor {
    /// `store` gives an attempt's `runs_on` (from its run's spec); `owner` is this server's
    /// lease holder name.
    pub fn new(agents: Arc<Agents>, store: Arc<dyn Store>, owner: &str) -> AgentExecutor {
        AgentExecutor {
            agents,
            store,
            owner: owner.to_string(),
        }
    }

    /// The attempt's `runs_on` and its run's repository.
    async fn labels_of(&self, launch: &Launch) -> Result<(Vec<String>, Option<String>), String> {
        let run = self
            .store
            .get_run(&launch.run_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its run is not stored")?;
        run.spec
            .jobs
            .iter()
            .find(|j| j.name == launch.job)
            .map(|j| (j.runs_on.clone(), run.context.repo.clone()))
            .ok_or_else(|| "its job is not in its run's spec".to_string())
    }
}

/// Removes an entry's in-memory parts when its attempt ends, however it ends.
struct Forget<'a>(&'a Agents, String);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.0.waiting).remove(&self.1);
        lock(&self.0.logs).remove(&self.1);
    }
}

#[async_trait]
impl Executor for AgentExecutor {
    async fn execute(&self, launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let a = &*self.agents;
        let (labels, repo) = match self.labels_of(&launch).await {
            Ok(l) => l,
            Err(e) => {
                launch
                    .log
                    .note(&format!("gantry: cannot queue the job for agents: {e}"));
                return Outcome::Failed { exit_code: None };
            }
        };
        let task = Task {
            commands: launch.commands.clone(),
            env: launch.env.clone(),
            timeout_ms: launch.timeout_ms,
            image: launch.image.clone(),
            container: launch.container.clone(),
            // The secrets the preparation found for it (none when withheld from a fork);
            // their values are looked up again when an agent takes the job.
            secret_names: launch.secrets.iter().map(|(k, _)| k.clone()).collect(),
            secrets_repo: repo,
            checkout: launch
                .checkout
                .as_ref()
                .map(|c| (c.url.clone(), c.git_ref.clone())),
        };
        let id = crate::ids::new_run_id().to_ascii_lowercase();
        let entry = QueuedJob {
            id: id.clone(),
            run_id: launch.run_id.clone(),
            job: launch.job.clone(),
            attempt: launch.attempt,
            trace_id: launch.trace_id.clone(),
            labels: labels.clone(),
            task: serde_json::to_string(&task).expect("a task is JSON"),
            state: QueueState::Queued,
            agent: None,
            lease_expires_ms: None,
            cancel_requested: false,
            result: None,
            created_at_ms: now_ms(),
        };
        let notify = Arc::new(Notify::new());
        lock(&a.waiting).insert(id.clone(), notify.clone());
        lock(&a.logs).insert(id.clone(), launch.log.clone());
        let _forget = Forget(a, id.clone());
        for n in &launch.notes {
            launch.log.note(n);
        }
        if let Err(e) = a.queue.enqueue(&entry).await {
            launch
                .log
                .note(&format!("gantry: cannot queue the job for agents: {e}"));
            return Outcome::Failed { exit_code: None };
        }
        let wanted = if labels.is_empty() {
            "any agent".to_string()
        } else {
            format!("an agent with labels {}", labels.join(", "))
        };
        launch.log.note(&format!("gantry: waiting for {wanted}"));
        match a.queue.list_agents().await {
            Ok(agents)
                if !agents
                    .iter()
                    .any(|g| gantry_core::agents::matches(&g.labels, &labels)) =>
            {
                launch.log.note(&format!(
                    "gantry: no registered agent has these labels; the job waits for {wanted}"
                ));
            }
            _ => {}
        }
        a.work.notify_waiters();
        let mut seen_taken = false;
        let mut cancel_sent = false;
        loop {
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let q = match a.queue.get(&id).await {
                Ok(Some(q)) => q,
                Ok(None) => return Outcome::Lost,
                Err(e) => {
                    tracing::warn!(cause = %e, "cannot read the agents' queue; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut wait = Duration::from_secs(5);
            match q.state {
                QueueState::Queued => {
                    if cancel.is_cancelled()
                        && let Ok(true) = a
                            .queue
                            .finish(&id, QueueState::Queued, QueueState::Cancelled, None)
                            .await
                    {
                        launch
                            .log
                            .note("gantry: cancelled before an agent took the job");
                        return Outcome::Cancelled;
                    }
                }
                QueueState::Taken => {
                    if !seen_taken {
                        seen_taken = true;
                        launch.log.note(&format!(
                            "gantry: running on agent {}",
                            q.agent.as_deref().unwrap_or("?")
                        ));
                    }
                    if cancel.is_cancelled() && !cancel_sent {
                        cancel_sent = true;
                        let _ = a.queue.request_cancel(&id).await;
                    }
                    let left = q.lease_expires_ms.unwrap_or(0) - now_ms();
                    if left <= 0 {
                        if let Ok(true) = a.queue.expire(&id, now_ms()).await {
                            let agent = q.agent.as_deref().unwrap_or("?");
                            let note = format!(
                                "agent `{agent}` stopped renewing its lease ({} ms); attempt {} is lost and the job runs again",
                                a.lease_ms, q.attempt
                            );
                            launch.log.note(&format!("gantry: {note}"));
                            tracing::warn!(agent, attempt = q.attempt, "agent lease expired");
                            a.audit(&q, "lease_expired", note).await;
                            return Outcome::Lost;
                        }
                        continue;
                    }
                    wait = Duration::from_millis(left as u64 + 5);
                }
                QueueState::Done => return finished(&q, cancel_sent, &launch),
                QueueState::Lost => return Outcome::Lost,
                QueueState::Cancelled => return Outcome::Cancelled,
            }
            let cancelled = cancel.is_cancelled();
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled(), if !cancelled => {}
            }
        }
    }

    /// At start: what an earlier life left queued or held is over (recovery finds those
    /// attempts lost and runs them again); another server's runs keep theirs.
    async fn reap_orphans(&self) -> usize {
        match self.agents.queue.abandon_open(&self.owner, now_ms()).await {
            Ok(n) => n as usize,
            Err(e) => {
                tracing::warn!(cause = %e, "cannot close the agents' queue of an earlier life");
                0
            }
        }
    }
}

fn finished(q: &QueuedJob, cancel_sent: bool, launch: &Launch) -> Outcome {
    let report: Option<Report> = q
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    let Some(report) = report else {
        launch
            .log
            .note("gantry: the agent's result could not be read");
        return Outcome::Failed { exit_code: None };
    };
    if let Some(e) = &report.error {
        launch.log.note(&format!("gantry: the agent reported: {e}"));
    }
    match report.outcome() {
        Ok(Outcome::Succeeded) => Outcome::Succeeded,
        Ok(_) if cancel_sent => Outcome::Cancelled,
        Ok(o) => o,
        Err(_) => Outcome::Failed { exit_code: None },
    }
}

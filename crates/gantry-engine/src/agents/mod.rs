//! Agents on other hosts: the server's side. Attempts of `runs_on` jobs wait in the durable
//! [`AgentQueue`]; agents (authenticated by their own tokens, stored hashed) long-poll for the
//! jobs their labels allow, hold them under a lease they renew, send the output in chunks and
//! report the result through the attempt's signed, single-use callback token
//! ([`gantry_core::callback`]). Within one process, long-polls and the waiting
//! [`AgentExecutor`] are woken at once (`Notify`), so handing out a job costs milliseconds.

mod callback;
mod executor;
mod remote;
mod tokens;

pub use callback::CallbackError;
pub use executor::AgentExecutor;
pub use remote::{CALLBACK_GRACE_MS, RemoteAttempt};
pub use tokens::{TOKEN_PREFIX, load_or_create_key};

use crate::journal::Journal;
use crate::logs::{AttemptLog, Logs};
use crate::ports::{AgentQueue, AgentRecord, QueueState, QueuedJob, SecretStore, StoreError};
use gantry_core::callback::{Claim, sign};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// How long an agent holds a job without renewing its lease, unless configured.
pub const DEFAULT_LEASE_MS: u64 = 60_000;
/// How long a poll waits for a job before answering "none".
pub const DEFAULT_POLL_MS: u64 = 20_000;

/// Why an agent's request is refused.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("missing, unknown or revoked agent token")]
    Unauthorized,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an agent runs: the attempt's work without secret values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub commands: Vec<String>,
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub container: Option<gantry_core::spec::ContainerOpts>,
    /// Names of the secrets the job gets (their values are resolved when an agent takes the
    /// job, and sent only in its lease).
    #[serde(default)]
    pub secret_names: Vec<String>,
    /// The repository whose scope the secrets are looked up in (then global).
    #[serde(default)]
    pub secrets_repo: Option<String>,
    /// The job's `source`: a clone URL and the commit, branch or tag to check out.
    #[serde(default)]
    pub checkout: Option<(String, String)>,
}

/// A job handed to an agent: what to run, its secrets, its lease, and where its result goes.
#[derive(Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub run_id: String,
    pub job: String,
    pub attempt: u32,
    pub trace_id: String,
    pub task: Task,
    /// Only the secrets this job names.
    pub secrets: Vec<(String, String)>,
    pub lease_ms: u64,
    /// How often to renew the lease (and hear whether to stop).
    pub heartbeat_ms: u64,
    /// `/api/v1/callbacks/{token}`: where the result goes, once.
    pub callback: String,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("run_id", &self.run_id)
            .field("job", &self.job)
            .field("attempt", &self.attempt)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

/// An agent as the API shows it, with the jobs it holds.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    #[serde(flatten)]
    pub agent: AgentRecord,
    pub jobs: Vec<String>,
}

/// The server's agents: queue, tokens, wake-ups and the callback key. Cheap to share.
pub struct Agents {
    queue: Arc<dyn AgentQueue>,
    key: Vec<u8>,
    lease_ms: u64,
    poll_ms: u64,
    /// A job was queued, or a token revoked: polls look again.
    work: Notify,
    /// Per queue entry: its executor, waiting for a change.
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
    /// Where secret values come from when an agent takes a job.
    secrets: Option<Arc<dyn SecretStore>>,
    /// Per queue entry: the attempt's log.
    logs: Mutex<HashMap<String, AttemptLog>>,
    journal: OnceLock<Journal>,
    all_logs: OnceLock<Logs>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Agents {
    /// `key` signs callback tokens; `lease_ms` is how long a job is held without renewal;
    /// `secrets` resolves the secrets a job names when an agent takes it.
    pub fn new(
        queue: Arc<dyn AgentQueue>,
        key: Vec<u8>,
        lease_ms: u64,
        secrets: Option<Arc<dyn SecretStore>>,
    ) -> Arc<Agents> {
        Arc::new(Agents {
            queue,
            key,
            lease_ms: lease_ms.max(500),
            poll_ms: DEFAULT_POLL_MS,
            work: Notify::new(),
            waiting: Mutex::default(),
            secrets,
            logs: Mutex::default(),
            journal: OnceLock::new(),
            all_logs: OnceLock::new(),
        })
    }

    /// The engine's journal (audit notes) and logs, once the engine is up.
    pub fn attach(&self, journal: Journal, logs: Logs) {
        let _ = self.journal.set(journal);
        let _ = self.all_logs.set(logs);
    }

    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }

    pub fn queue(&self) -> &Arc<dyn AgentQueue> {
        &self.queue
    }

    /// Records (or refreshes) an agent: its labels and slots.
    pub async fn register(
        &self,
        token: &str,
        name: &str,
        labels: Vec<String>,
        slots: u32,
    ) -> Result<(), AgentError> {
        gantry_core::agents::check_label(name)
            .map_err(|e| AgentError::Invalid(format!("agent name: {e}")))?;
        for l in &labels {
            gantry_core::agents::check_label(l).map_err(AgentError::Invalid)?;
        }
        let record = AgentRecord {
            name: name.to_string(),
            token: token.to_string(),
            labels,
            slots: slots.max(1),
            last_seen_ms: now_ms(),
        };
        self.queue.put_agent(&record).await?;
        self.work.notify_waiters();
        Ok(())
    }

    /// Every agent with the jobs it holds.
    pub async fn list(&self) -> Result<Vec<AgentView>, AgentError> {
        let agents = self.queue.list_agents().await?;
        let open = self.queue.open(10_000).await?;
        Ok(agents
            .into_iter()
            .map(|agent| {
                let jobs = open
                    .iter()
                    .filter(|q| q.agent.as_deref() == Some(agent.name.as_str()))
                    .map(|q| format!("{}/{}#{}", q.run_id, q.job, q.attempt))
                    .collect();
                AgentView { agent, jobs }
            })
            .collect())
    }

    /// Waits up to the poll time for a job agent `name` (authenticated by `token_plain`) may
    /// take, and takes it. A token revoked meanwhile ends the wait with `Unauthorized`.
    pub async fn poll(&self, token_plain: &str, name: &str) -> Result<Option<Lease>, AgentError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.poll_ms);
        loop {
            let woken = self.work.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let token = self.authenticate(token_plain).await?;
            let agent = self
                .queue
                .list_agents()
                .await?
                .into_iter()
                .find(|a| a.name == name && a.token == token)
                .ok_or_else(|| AgentError::NotFound(format!("agent `{name}` is not registered")))?;
            self.queue
                .put_agent(&AgentRecord {
                    last_seen_ms: now_ms(),
                    ..agent.clone()
                })
                .await?;
            if let Some(lease) = self.take(&agent).await? {
                return Ok(Some(lease));
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    async fn take(&self, agent: &AgentRecord) -> Result<Option<Lease>, AgentError> {
        for q in self.queue.open(1_000).await? {
            if q.state != QueueState::Queued
                || !gantry_core::agents::matches(&agent.labels, &q.labels)
            {
                continue;
            }
            let now = now_ms();
            if !self
                .queue
                .take(&q.id, &agent.name, now + self.lease_ms as i64)
                .await?
            {
                continue; // another agent was first
            }
            let task: Task = serde_json::from_str(&q.task)
                .map_err(|e| StoreError::Corrupt(format!("agent task {}: {e}", q.id)))?;
            let secrets = match self.resolve(&task).await {
                Ok(s) => s,
                Err(why) => {
                    // The job cannot run as it is: it fails, saying why (no value is named).
                    let report = serde_json::json!({"outcome": "failed", "error": why});
                    self.queue
                        .finish(
                            &q.id,
                            QueueState::Taken,
                            QueueState::Done,
                            Some(&report.to_string()),
                        )
                        .await?;
                    self.wake(&q.id);
                    continue;
                }
            };
            let claim = Claim {
                run_id: q.run_id.clone(),
                job: q.job.clone(),
                attempt: q.attempt,
                expires_at_ms: now + task.timeout_ms as i64 + 2 * self.lease_ms as i64 + 60_000,
            };
            let callback = format!("/api/v1/callbacks/{}", sign(&self.key, &claim));
            self.wake(&q.id);
            tracing::info!(run_id = %q.run_id, trace_id = %q.trace_id, job = %q.job,
                attempt = q.attempt, agent = %agent.name, "agent took a job");
            return Ok(Some(Lease {
                id: q.id,
                run_id: q.run_id,
                job: q.job,
                attempt: q.attempt,
                trace_id: q.trace_id,
                task,
                secrets,
                lease_ms: self.lease_ms,
                heartbeat_ms: (self.lease_ms / 4).clamp(200, 5_000),
                callback,
            }));
        }
        Ok(None)
    }

    /// The values of the secrets a task names, looked up now (never stored in the queue).
    async fn resolve(&self, task: &Task) -> Result<Vec<(String, String)>, String> {
        if task.secret_names.is_empty() {
            return Ok(Vec::new());
        }
        let store = self
            .secrets
            .as_ref()
            .ok_or("the job names secrets and this server has no secret store")?;
        let resolved = store
            .resolve(&task.secret_names, task.secrets_repo.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        if !resolved.missing.is_empty() {
            return Err(format!(
                "secrets not set when an agent took the job: {}",
                resolved.missing.join(", ")
            ));
        }
        Ok(resolved
            .values
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_string()))
            .collect())
    }

    /// Renews the lease agent `name` holds on entry `id`: whether it must stop the job.
    pub async fn renew(&self, token: &str, name: &str, id: &str) -> Result<bool, AgentError> {
        self.authenticate(token).await?;
        match self
            .queue
            .renew(id, name, now_ms() + self.lease_ms as i64)
            .await?
        {
            Some(cancel) => {
                self.queue.touch_agent(name, now_ms()).await?;
                Ok(cancel)
            }
            None => Err(AgentError::Conflict(format!(
                "lease {id} is not held by agent `{name}` any more"
            ))),
        }
    }

    /// Appends a chunk of output to the attempt's log (entry `id`, held by agent `name`).
    pub async fn append_log(
        &self,
        token: &str,
        name: &str,
        id: &str,
        bytes: &[u8],
    ) -> Result<(), AgentError> {
        self.authenticate(token).await?;
        let q = self.held(id, name).await?;
        let log = lock(&self.logs).get(id).cloned().or_else(|| {
            self.all_logs
                .get()
                .map(|l| l.attempt(&q.run_id, &q.job, q.attempt))
        });
        if let Some(log) = log {
            log.append(bytes)
                .map_err(|e| StoreError::Database(format!("cannot append to the log: {e}")))?;
        }
        Ok(())
    }

    async fn held(&self, id: &str, name: &str) -> Result<QueuedJob, AgentError> {
        match self.queue.get(id).await? {
            Some(q) if q.state == QueueState::Taken && q.agent.as_deref() == Some(name) => Ok(q),
            Some(_) => Err(AgentError::Conflict(format!(
                "lease {id} is not held by agent `{name}` any more"
            ))),
            None => Err(AgentError::NotFound(format!("no lease {id}"))),
        }
    }

    fn wake(&self, id: &str) {
        if let Some(n) = lock(&self.waiting).get(id) {
            n.notify_one();
        }
    }

    /// Appends an audit note about an attempt through the journal (durable on return).
    async fn audit(&self, q: &QueuedJob, to: &str, note: String) {
        let Some(journal) = self.journal.get() else {
            return;
        };
        let record = crate::ports::AuditRecord {
            seq: 0,
            at_ms: now_ms(),
            trace_id: q.trace_id.clone(),
            run_id: q.run_id.clone(),
            job: Some(q.job.clone()),
            attempt: Some(q.attempt),
            from: None,
            to: to.to_string(),
            note: Some(note),
        };
        if let Err(e) = journal
            .append_durable(vec![crate::ports::Write::Audit(record)])
            .await
        {
            tracing::error!(cause = %e, run_id = %q.run_id, trace_id = %q.trace_id, "cannot write an audit note");
        }
    }
}

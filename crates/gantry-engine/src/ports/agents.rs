//! The `AgentQueue` port: agents' tokens (stored hashed), the agents that registered, and the
//! queue of attempts waiting for or held by agents. Every change is durable before it
//! returns, so any server replica can hand out a job or take its result later. Taking a job
//! and finishing one are compare-and-set: two agents never get the same attempt, and an
//! attempt's result is taken once.

use super::StoreResult;
use async_trait::async_trait;
use serde::Serialize;

/// An agent token as listed (never the token, nor its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentToken {
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_ms: Option<i64>,
}

/// An agent as it last registered or polled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    pub name: String,
    /// The token it authenticated with.
    pub token: String,
    pub labels: Vec<String>,
    pub slots: u32,
    pub last_seen_ms: i64,
}

/// Where an attempt for agents is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Waiting for an agent with its labels.
    Queued,
    /// Held by an agent until its lease expires (renewed while the job runs).
    Taken,
    /// Its result came back (the result is kept).
    Done,
    /// Its agent stopped renewing the lease: the attempt is over, the job runs again.
    Lost,
    /// Cancelled before an agent took it.
    Cancelled,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Queued => "queued",
            QueueState::Taken => "taken",
            QueueState::Done => "done",
            QueueState::Lost => "lost",
            QueueState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<QueueState> {
        Some(match s {
            "queued" => QueueState::Queued,
            "taken" => QueueState::Taken,
            "done" => QueueState::Done,
            "lost" => QueueState::Lost,
            "cancelled" => QueueState::Cancelled,
            _ => return None,
        })
    }
}

/// One attempt in the queue. `task` is what the agent runs (JSON, without secret values:
/// those are resolved when an agent takes the job and go only into its lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// The lease id agents use in their requests.
    pub id: String,
    pub run_id: String,
    pub job: String,
    pub attempt: u32,
    pub trace_id: String,
    /// The job's `runs_on`.
    pub labels: Vec<String>,
    pub task: String,
    pub state: QueueState,
    pub agent: Option<String>,
    pub lease_expires_ms: Option<i64>,
    pub cancel_requested: bool,
    /// The result reported (JSON), once `Done`.
    pub result: Option<String>,
    pub created_at_ms: i64,
}

#[async_trait]
pub trait AgentQueue: Send + Sync + 'static {
    /// Stores a new token's hash; false when a token of that name exists.
    async fn create_token(&self, name: &str, hash: &[u8], now_ms: i64) -> StoreResult<bool>;
    /// Every token's name and hash (compared by the caller in constant time).
    async fn token_hashes(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;
    async fn list_tokens(&self) -> StoreResult<Vec<AgentToken>>;
    /// Deletes a token; false when there was none of that name.
    async fn revoke_token(&self, name: &str) -> StoreResult<bool>;
    async fn touch_token(&self, name: &str, now_ms: i64) -> StoreResult<()>;
    /// Creates or replaces an agent's record.
    async fn put_agent(&self, agent: &AgentRecord) -> StoreResult<()>;
    async fn list_agents(&self) -> StoreResult<Vec<AgentRecord>>;
    /// An agent was heard from (a lease renewed) at `now_ms`.
    async fn touch_agent(&self, name: &str, now_ms: i64) -> StoreResult<()>;
    async fn enqueue(&self, job: &QueuedJob) -> StoreResult<()>;
    async fn get(&self, id: &str) -> StoreResult<Option<QueuedJob>>;
    /// The queue's entry for one attempt.
    async fn find(&self, run_id: &str, job: &str, attempt: u32) -> StoreResult<Option<QueuedJob>>;
    /// Entries in `Queued` or `Taken`, oldest first.
    async fn open(&self, limit: u32) -> StoreResult<Vec<QueuedJob>>;
    /// `Queued` → `Taken` by `agent` until `lease_until_ms`; false when it was not queued.
    async fn take(&self, id: &str, agent: &str, lease_until_ms: i64) -> StoreResult<bool>;
    /// Extends a lease `agent` holds: whether a cancel was asked, or `None` when the entry
    /// is not `Taken` by it any more.
    async fn renew(&self, id: &str, agent: &str, lease_until_ms: i64) -> StoreResult<Option<bool>>;
    /// `from` → `to`, keeping `result`; false when the entry was not in `from`.
    async fn finish(
        &self,
        id: &str,
        from: QueueState,
        to: QueueState,
        result: Option<&str>,
    ) -> StoreResult<bool>;
    /// `Taken` → `Lost` when its lease expired before `now_ms`; false otherwise.
    async fn expire(&self, id: &str, now_ms: i64) -> StoreResult<bool>;
    async fn request_cancel(&self, id: &str) -> StoreResult<()>;
    /// At start: every `Queued` or `Taken` entry of an earlier life of server `holder`
    /// becomes `Lost` (their attempts are recovered as lost): those of runs no other server
    /// holds a live lease on at `now_ms` (another server's runs keep theirs). Returns how many.
    async fn abandon_open(&self, holder: &str, now_ms: i64) -> StoreResult<u64>;
    /// Deletes entries that are over (done, lost, cancelled) and were queued before
    /// `before_ms`. Returns how many.
    async fn sweep(&self, before_ms: i64) -> StoreResult<u64>;
}

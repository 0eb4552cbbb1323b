//! The `Store` port: durable state (runs, jobs, the audit trail, leases, events). Writes come in
//! ordered batches, each applied in one transaction; see [`crate::journal`] for how batches
//! are formed.

use async_trait::async_trait;
use gantry_core::spec::{RunContext, RunSpec};
use gantry_core::{JobStatus, RunStatus};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A run as stored, with its jobs in spec order.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub name: String,
    pub status: RunStatus,
    pub trace_id: String,
    /// Immutable once the run exists; shared, not copied, between the engine and writes.
    pub spec: Arc<RunSpec>,
    pub context: RunContext,
    pub cancel_requested: bool,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub jobs: Vec<JobRecord>,
}

impl RunRecord {
    /// Follows run `run_id` through one committed batch: `run` becomes the record the batch
    /// inserts for it, and then takes every later write about it (see [`RunRecord::apply`]).
    /// Returns how many writes of the batch were applied.
    pub fn follow(run: &mut Option<RunRecord>, run_id: &str, batch: &[Write]) -> usize {
        let mut applied = 0;
        for w in batch {
            match (w, run.as_mut()) {
                (Write::InsertRun(r), None) if r.id == run_id => *run = Some((**r).clone()),
                (w, Some(r)) => applied += usize::from(r.apply(w)),
                _ => {}
            }
        }
        applied
    }

    /// Applies one write the way the store does, if it is about this run: what a reader of
    /// committed batches folds over the inserted record to know the stored run without
    /// reading it back. Returns whether the write was about this run.
    pub fn apply(&mut self, write: &Write) -> bool {
        match write {
            Write::UpdateRun {
                id,
                status,
                cancel_requested,
                started_at_ms,
                finished_at_ms,
            } if *id == self.id => {
                self.status = *status;
                self.cancel_requested = *cancel_requested;
                self.started_at_ms = *started_at_ms;
                self.finished_at_ms = *finished_at_ms;
                true
            }
            Write::UpdateJob { run_id, job } if *run_id == self.id => {
                match self.jobs.get_mut(job.index as usize) {
                    Some(slot) => *slot = job.clone(),
                    None => return false,
                }
                true
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub index: u32,
    pub name: String,
    pub status: JobStatus,
    pub attempt: u32,
    pub exit_code: Option<i32>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub not_before_ms: Option<i64>,
    /// Retries taken since the first attempt or the last re-run.
    pub retries_used: u32,
    /// Lost attempts run again for free since then.
    pub lost_reruns: u32,
    /// The queued attempt is claimed: it may start the moment a slot frees, and counts as
    /// lost after a crash (`gantry_core::dag::JobState::claimed`).
    pub claimed: bool,
}

impl JobRecord {
    /// A job of a new run: pending, first attempt.
    pub fn pending(index: usize, name: &str) -> JobRecord {
        JobRecord {
            index: index as u32,
            name: name.to_string(),
            status: JobStatus::Pending,
            attempt: 1,
            exit_code: None,
            started_at_ms: None,
            finished_at_ms: None,
            not_before_ms: None,
            retries_used: 0,
            lost_reruns: 0,
            claimed: false,
        }
    }
}

/// One entry of the append-only audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at_ms: i64,
    pub trace_id: String,
    pub run_id: String,
    pub job: Option<String>,
    pub attempt: Option<u32>,
    pub from: Option<String>,
    pub to: String,
    pub note: Option<String>,
}

/// An event as received: stored (and its sender answered) before anything acts on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub id: String,
    /// `github`, `gantry.webhook`, or an EventBridge-style source such as `custom.app`.
    pub source: String,
    /// The event name (`X-GitHub-Event`) or EventBridge `detail-type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Deduplication key (`X-GitHub-Delivery`); a second delivery with the same key is not stored.
    pub delivery_id: Option<String>,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub installation_id: Option<i64>,
    /// The payload as received (JSON text).
    #[serde(skip)]
    pub payload: String,
    pub trace_id: String,
    pub received_at_ms: i64,
    pub rules_matched: Vec<String>,
    /// What became of it: the run it started, or why nothing ran. `None` until decided.
    pub outcome: Option<String>,
}

/// What a commit reports back beyond success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Ids of `InsertEvent` records not stored because their delivery id already was.
    pub duplicate_events: std::collections::HashSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub source: Option<String>,
    pub event_type: Option<String>,
    /// Only events older than this one (keyset pagination: the last id of the previous page);
    /// an id the store does not hold selects nothing.
    pub before: Option<String>,
    pub limit: u32,
}

/// A state change to persist. Batches are applied in order, all or nothing.
#[derive(Debug, Clone)]
pub enum Write {
    InsertRun(Box<RunRecord>),
    UpdateRun {
        id: String,
        status: RunStatus,
        cancel_requested: bool,
        started_at_ms: Option<i64>,
        finished_at_ms: Option<i64>,
    },
    UpdateJob {
        run_id: String,
        job: JobRecord,
    },
    Audit(AuditRecord),
    /// Stores an event; one whose `delivery_id` is already stored is ignored.
    InsertEvent(Box<EventRecord>),
    /// Records what became of an event (in the batch that does it, e.g. with the run).
    SetEventOutcome {
        id: String,
        outcome: String,
    },
    /// Takes or extends leases for `holder` until `expires_at_ms` (the holder already owns them).
    RenewLeases {
        names: Vec<String>,
        holder: String,
        expires_at_ms: i64,
    },
    ReleaseLease {
        name: String,
        holder: String,
    },
    /// Creates or replaces a rule (keeping its creation time).
    PutRule(RuleRecord),
    DeleteRule {
        name: String,
    },
    /// Creates or updates one delivery of an event to a rule's target.
    PutDelivery(DeliveryRecord),
    /// A schedule rule fired (for the due time `at_ms`).
    SetScheduleFire {
        rule: String,
        at_ms: i64,
    },
    /// Creates or replaces a job's runner record.
    PutRunner(Box<super::RunnerRecord>),
    /// Creates or replaces a deployer session's record (its run must exist).
    PutDeployment(Box<super::DeploymentRecord>),
}

/// A rule as stored: its definition as written (JSON) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRecord {
    pub name: String,
    pub body: String,
    /// `config` (gantry.toml) or `api`.
    pub origin: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One matched event on its way to one rule's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub rule: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub next_at_ms: i64,
    /// What the target did (`started run …`) or the last error.
    pub result: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub limit: u32,
    /// Only runs whose id sorts before this one (keyset pagination: the last id of a page).
    pub before: Option<String>,
    /// Only runs of this repository (`owner/name`, the run context's `repo`).
    pub repo: Option<String>,
    /// Only runs whose context names this branch.
    pub branch: Option<String>,
    /// Only runs started by this event (`push`, `api`, …).
    pub event: Option<String>,
}

/// How long each kind of data is kept before the janitor removes it.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished runs and their jobs.
    pub working_ms: i64,
    pub audit_ms: i64,
    pub logs_ms: i64,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: i64 = 86_400_000;
        Retention {
            working_ms: DAY,
            audit_ms: 90 * DAY,
            logs_ms: 7 * DAY,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub runs: u64,
    pub audit_events: u64,
    /// Stored events (working data, like runs).
    pub events: u64,
    pub locks: u64,
    /// Event payloads deleted from the object store: the expired events', and any that no
    /// event points to (an upload whose commit never came).
    pub payload_blobs: u64,
}

/// How far a commit must reach before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// Handed to the operating system: it survives this process's crash (`kill -9`) and reaches
    /// the disk with the next [`Durability::Disk`] commit (the store's order is kept, so the
    /// disk always holds a prefix). Enough before a job starts, where nobody outside is told.
    Os,
    /// On the disk: it survives a power cut too. Anything acknowledged to someone outside.
    Disk,
}

/// What [`Store::prepare`] started for a batch, handed back to [`Store::commit_prepared`].
/// Opaque: only the store that made it knows what is inside.
#[derive(Default)]
pub struct Prepared(pub Option<Box<dyn std::any::Any + Send>>);

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies a batch in one transaction; on the disk when this returns `Ok`. Says which
    /// event inserts were no-ops because their delivery id was already stored.
    async fn commit(&self, batch: &[Write]) -> StoreResult<Committed> {
        self.commit_prepared(batch, self.prepare(batch), Durability::Disk)
            .await
    }
    /// Starts the part of committing `batch` that may overlap the commit of the batch before
    /// it, because nothing can see it until this batch commits (e.g. writing large payloads
    /// where no row points yet). The default starts nothing.
    fn prepare(&self, _batch: &[Write]) -> Prepared {
        Prepared::default()
    }
    /// [`Store::commit`], finishing what [`Store::prepare`] started for the same batch, durable
    /// as far as `durability` says.
    async fn commit_prepared(
        &self,
        batch: &[Write],
        prepared: Prepared,
        durability: Durability,
    ) -> StoreResult<Committed>;
    /// Makes everything committed so far reach the disk, as a [`Durability::Disk`] commit
    /// would (a store whose every commit reaches the disk has nothing to do).
    async fn sync(&self) -> StoreResult<()>;
    /// Runs not yet finished, with their jobs (for recovery at start-up).
    async fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>>;
    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>>;
    /// Newest first.
    async fn list_runs(&self, filter: RunFilter) -> StoreResult<Vec<RunRecord>>;
    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>>;
    /// Unfinished runs no server holds (no `run:<id>` lease, or an expired one), oldest
    /// first, at most `limit`: what a server adopts from one that stopped renewing.
    async fn orphaned_runs(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<RunRecord>>;
    /// Extends the leases of runs `run_ids` that `holder` still holds to `expires_at_ms`, and
    /// says which of those runs it lost: their lease is another server's now (taken after it
    /// lapsed), or the run has ended (another server finished it). A run whose lease row is
    /// not there (its creating batch not yet committed, or removed after it lapsed) is not
    /// lost.
    async fn renew_run_leases(
        &self,
        run_ids: &[String],
        holder: &str,
        expires_at_ms: i64,
    ) -> StoreResult<Vec<String>>;
    /// Records a request to cancel run `run_id` for the server stepping it (another one), if
    /// the run is unfinished; says whether it is.
    async fn request_cancel(&self, run_id: &str, at_ms: i64) -> StoreResult<bool>;
    /// Takes (removes) the cancel requests for any of `run_ids`; the runs they name.
    async fn take_cancel_requests(&self, run_ids: &[String]) -> StoreResult<Vec<String>>;
    /// Takes the lease `name` for `holder` if it is free, expired, or already `holder`'s.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// The stored event with this delivery id, if any.
    async fn event_by_delivery(&self, delivery_id: &str) -> StoreResult<Option<EventRecord>>;
    /// Stored events, newest first (payloads not included).
    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>>;
    /// One event, with its payload.
    async fn get_event(&self, id: &str) -> StoreResult<Option<EventRecord>>;
    async fn list_rules(&self) -> StoreResult<Vec<RuleRecord>>;
    /// Deliveries still pending, soonest first.
    async fn pending_deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>>;
    async fn deliveries_of(&self, event_id: &str) -> StoreResult<Vec<DeliveryRecord>>;
    /// Each schedule rule's last fire time.
    async fn schedule_fires(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Stored events of `source` and one of `types` that have no outcome yet, oldest first,
    /// with their payloads (to finish what a crash interrupted).
    async fn undecided_events(
        &self,
        source: &str,
        types: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Runner records, newest first.
    async fn list_runners(
        &self,
        filter: super::RunnerFilter,
    ) -> StoreResult<Vec<super::RunnerRecord>>;
    async fn get_runner(&self, name: &str) -> StoreResult<Option<super::RunnerRecord>>;
    async fn get_deployment(
        &self,
        session_id: &str,
    ) -> StoreResult<Option<super::DeploymentRecord>>;
    /// Sessions with their run's status, newest first.
    async fn list_deployments(
        &self,
        filter: super::DeploymentFilter,
    ) -> StoreResult<Vec<(super::DeploymentRecord, RunStatus)>>;
    /// Deletes finished runs, events (their payloads in the object store too), audit events
    /// and leases older than the retention allows, and payloads in the object store that no
    /// event points to.
    async fn expire(&self, retention: &Retention, now_ms: i64) -> StoreResult<Expired>;
}

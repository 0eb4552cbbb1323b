//! Ephemeral GitHub Actions runners: each queued `workflow_job` that a pool serves gets a
//! just-in-time runner, registered with GitHub under one name per job and attempt, started on
//! the pool's host, and removed when the job ends.
//!
//! One task (the dispatcher, `dispatcher.rs`) owns every runner not yet done. It steps each
//! one with the pure lifecycle (`gantry_core::runners::lifecycle`), writes the new phase and
//! an audit record to the journal, and only once that is written performs what the phase
//! asks (`effects.rs`: check the job, register, start, remove), so that after a crash the
//! recorded phase says what may have happened. A pool runs at most `max_runners` at once;
//! the rest wait in queue order. A reconciler (`reconcile.rs`) finds what webhooks missed:
//! queued jobs without a runner, runners GitHub lists that no record owns, hosted runners
//! whose record is done, runners whose container stopped.

mod dispatcher;
mod effects;
mod reconcile;

use crate::journal::Journal;
use crate::ports::{Actions, Clock, RunnerHost, Store, StoreResult};
use gantry_core::runners::PoolDef;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use dispatcher::MAX_LAUNCHES;

/// The runner pools of `gantry.toml` and how often to reconcile.
#[derive(Debug, Clone)]
pub struct RunnersConfig {
    pub pools: BTreeMap<String, PoolDef>,
    /// How often the reconciler lists GitHub's queued jobs and runners (1 minute).
    pub reconcile_every: Duration,
    /// How long to wait before asking GitHub again after a failed call (5 s).
    pub retry_after: Duration,
}

impl RunnersConfig {
    pub fn new(pools: BTreeMap<String, PoolDef>) -> RunnersConfig {
        RunnersConfig {
            pools,
            reconcile_every: Duration::from_secs(60),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// A `workflow_job` delivery (or a queued job the reconciler found), as the dispatcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNotice {
    /// The stored event, whose outcome is written with what the notice did.
    pub event_id: Option<String>,
    pub trace_id: String,
    /// `queued`, `in_progress`, `completed`, `waiting`.
    pub action: String,
    /// `owner/name`.
    pub repository: String,
    pub job_id: u64,
    pub run_attempt: u32,
    pub job_name: String,
    pub labels: Vec<String>,
    /// The runner that took the job (from `in_progress` on).
    pub runner_name: Option<String>,
    pub conclusion: Option<String>,
}

impl JobNotice {
    /// The notice of a parsed `workflow_job` delivery stored as event `event_id`; `None` for
    /// another event.
    pub fn of_delivery(
        event_id: &str,
        trace_id: &str,
        delivery: &gantry_core::forge::github::Delivery,
    ) -> Option<JobNotice> {
        let gantry_core::forge::github::GitHubEvent::WorkflowJob {
            action,
            job_id,
            run_attempt,
            name,
            labels,
            runner_name,
            conclusion,
            ..
        } = &delivery.event
        else {
            return None;
        };
        Some(JobNotice {
            event_id: Some(event_id.to_string()),
            trace_id: trace_id.to_string(),
            action: action.clone(),
            repository: delivery.repository.clone().unwrap_or_default(),
            job_id: u64::try_from(*job_id).unwrap_or_default(),
            run_attempt: *run_attempt,
            job_name: name.clone().unwrap_or_default(),
            labels: labels.clone(),
            runner_name: runner_name.clone(),
            conclusion: conclusion.clone(),
        })
    }
}

/// A pool as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub name: String,
    pub labels: Vec<String>,
    pub scope: String,
    pub executor: String,
    pub max_runners: u32,
    /// Runners holding a place (registering to removal).
    pub runners: u32,
    /// Jobs waiting for a place.
    pub waiting: u32,
    /// Runners by phase.
    pub by_phase: BTreeMap<String, u32>,
}

/// Queue → start latency (a queued job's notice to its runner running), for `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyHistogram {
    /// Upper bounds in seconds, and how many were at most each (cumulative).
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_s: f64,
}

/// Bucket bounds, seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

impl LatencyHistogram {
    fn observe(&mut self, seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = BUCKETS.iter().map(|b| (*b, 0)).collect();
        }
        for (bound, n) in &mut self.buckets {
            if seconds <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum_s += seconds;
    }
}

/// What the dispatcher shares with readers (the API, `/metrics`), refreshed after each change.
#[derive(Debug, Default)]
struct Shared {
    pools: Vec<PoolStatus>,
    latency: LatencyHistogram,
}

enum Msg {
    Notice(JobNotice, oneshot::Sender<String>),
    Effect(String, effects::Done),
    Reconciled(reconcile::Found),
    Reconcile(Option<oneshot::Sender<()>>),
}

/// The handle on the dispatcher.
#[derive(Clone)]
pub struct RunnerPools {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for RunnerPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerPools").finish_non_exhaustive()
    }
}

/// What the dispatcher works with.
pub struct RunnerPorts {
    pub store: Arc<dyn Store>,
    pub journal: Journal,
    pub actions: Arc<dyn Actions>,
    /// By executor name (`docker`, `local`).
    pub hosts: BTreeMap<String, Arc<dyn RunnerHost>>,
    pub clock: Arc<dyn Clock>,
}

impl RunnerPools {
    /// Starts the dispatcher: takes back the runners not yet done (finding out what became
    /// of each), then serves notices and reconciles on the configured interval.
    pub async fn start(config: RunnersConfig, ports: RunnerPorts) -> StoreResult<RunnerPools> {
        let active = ports
            .store
            .list_runners(crate::ports::RunnerFilter {
                active: true,
                ..Default::default()
            })
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let d = dispatcher::Dispatcher::new(config, ports, tx.clone(), shared.clone(), active);
        tokio::spawn(d.run(rx));
        Ok(RunnerPools { tx, shared })
    }

    /// Acts on a `workflow_job` delivery; what it did (also written as the event's outcome).
    pub async fn notice(&self, notice: JobNotice) -> String {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Msg::Notice(notice, reply)).is_err() {
            return "not acted on: the runner dispatcher has stopped".into();
        }
        answer
            .await
            .unwrap_or_else(|_| "not acted on: the runner dispatcher has stopped".into())
    }

    /// Takes up `workflow_job` deliveries stored but not acted on before a restart; how many.
    pub async fn resume(&self, store: &dyn Store) -> StoreResult<usize> {
        let pending = store
            .undecided_events("github", &["workflow_job"], 1000)
            .await?;
        let mut n = 0;
        for e in pending {
            let notice = gantry_core::forge::github::parse("workflow_job", e.payload.as_bytes())
                .ok()
                .and_then(|d| JobNotice::of_delivery(&e.id, &e.trace_id, &d));
            if let Some(notice) = notice {
                self.notice(notice).await;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Reconciles now and waits until the reconciler's findings are acted on (for tests and
    /// `POST /api/v1/runners/reconcile`).
    pub async fn reconcile(&self) {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Msg::Reconcile(Some(reply))).is_ok() {
            let _ = done.await;
        }
    }

    pub fn pools(&self) -> Vec<PoolStatus> {
        self.lock().pools.clone()
    }

    pub fn latency(&self) -> LatencyHistogram {
        self.lock().latency.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

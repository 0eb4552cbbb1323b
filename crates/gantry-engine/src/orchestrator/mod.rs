//! The orchestrator, the engine's core: one task that owns the in-memory state of every active
//! run, steps runs with the pure [`gantry_core::dag::step`], hands dispatched attempts to
//! executors, and records every transition through the [`Journal`].
//!
//! Ownership of a run is a lease in the store (`run:<id>`), taken when the run is adopted
//! (submitted, recovered or re-run), renewed by the watchdog tick, released when the run ends;
//! every step happens while it is held. A run whose server stops renewing is adopted by another
//! (`takeover.rs`). The step is triggered by each result, by the watchdog and at start-up
//! (recovery), and is idempotent.

mod active;
mod prepare;
mod recovery;
mod start;
mod step;
mod submit;
mod takeover;

pub use prepare::{ForkJobs, Preparation};

use crate::journal::Journal;
use crate::layout::Layout;
use crate::logs::Logs;
use crate::ports::{Clock, Executor, RunRecord, Store, StoreError, Write};
use active::ActiveRun;
use gantry_core::dag::{Outcome, RetryPolicy};
use gantry_core::spec::ExecutorKind;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("run `{0}` not found")]
    RunNotFound(String),
    #[error("run `{0}` has already finished")]
    RunFinished(String),
    #[error("cannot re-run `{id}`: {why}")]
    CannotRerun { id: String, why: String },
    #[error("the engine has stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// Most attempts running at once, across all runs.
    pub max_parallel: usize,
    /// Lease holder name; stable across restarts of the same server so it can re-take its runs.
    pub owner: String,
    /// Recover unfinished runs at start (the server), or only drive what is submitted (`gantry run`).
    pub recover: bool,
    pub lease_ttl_ms: i64,
    /// How often the watchdog looks for overdue attempts and stuck runs.
    pub watchdog_interval: Duration,
    /// How far past its timeout an attempt may go before the watchdog stops it; the executor
    /// enforces the timeout itself, so this only catches executors that fail to.
    pub watchdog_grace_ms: i64,
    /// Where workspaces go, if not `data_dir/work`.
    pub work_dir: Option<PathBuf>,
    /// How many committed batches a follower of the journal may fall behind before it is told
    /// it lagged (and reads the store instead). Every slot is made at start.
    pub committed_backlog: usize,
    /// Bytes of output each attempt's log keeps; the rest is dropped (the log says so).
    pub log_limit: u64,
}

impl EngineConfig {
    pub fn new(data_dir: PathBuf, max_parallel: usize, owner: String) -> Self {
        EngineConfig {
            data_dir,
            max_parallel: max_parallel.max(1),
            owner,
            recover: true,
            // Renewed every watchdog tick; a server that stops renewing has its runs adopted
            // by another within about this long.
            lease_ttl_ms: 8_000,
            watchdog_interval: Duration::from_secs(1),
            watchdog_grace_ms: 10_000,
            work_dir: None,
            committed_backlog: 4096,
            log_limit: crate::logs::DEFAULT_LOG_LIMIT,
        }
    }
}

/// Which executor runs which kind of job.
pub type Executors = HashMap<ExecutorKind, Arc<dyn Executor>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub run_id: String,
    pub trace_id: String,
}

enum Command {
    Submit {
        record: Box<RunRecord>,
        /// Written in the same batch as the run (e.g. the event's outcome).
        extra: Vec<Write>,
        reply: oneshot::Sender<()>,
    },
    Cancel {
        id: String,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    Adopt {
        record: Box<RunRecord>,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    Ended {
        run_id: String,
        job: usize,
        attempt: u32,
        outcome: Outcome,
    },
    Watchdog,
    /// Runs whose leases another server holds now (see `takeover.rs`).
    LeasesLost {
        run_ids: Vec<String>,
    },
    /// Runs whose leases this server just took from one that stopped.
    Orphans {
        records: Vec<RunRecord>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A handle on the running engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::UnboundedSender<Command>,
    journal: Journal,
    store: Arc<dyn Store>,
    layout: Layout,
    logs: Logs,
    clock: Arc<dyn Clock>,
    /// The lease holder name and lease time (for the singletons of `crate::lease`).
    owner: Arc<str>,
    lease_ttl_ms: i64,
}

impl Engine {
    /// Starts the orchestrator (and recovers unfinished runs when `config.recover`).
    pub async fn start(
        config: EngineConfig,
        store: Arc<dyn Store>,
        executors: Executors,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, EngineError> {
        Engine::start_with(config, store, executors, clock, Preparation::default()).await
    }

    /// Starts the engine with the ports jobs are prepared with (secrets).
    pub async fn start_with(
        config: EngineConfig,
        store: Arc<dyn Store>,
        executors: Executors,
        clock: Arc<dyn Clock>,
        preparation: Preparation,
    ) -> Result<Engine, EngineError> {
        let (journal, _writer) = Journal::start(store.clone(), config.committed_backlog);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut layout = Layout::new(&config.data_dir);
        if let Some(work) = &config.work_dir {
            layout = layout.with_work_dir(work);
        }
        let logs = Logs::with_limit(layout.logs_dir(), config.log_limit);
        let mut actor = Actor {
            config: config.clone(),
            store: store.clone(),
            journal: journal.clone(),
            executors,
            preparation: Arc::new(preparation),
            clock: clock.clone(),
            layout: layout.clone(),
            logs: logs.clone(),
            tx: tx.clone(),
            runs: BTreeMap::new(),
            running: 0,
            dirty: Vec::new(),
            results: Vec::new(),
            keeping: Arc::default(),
            last_mark: 0,
        };
        if config.recover {
            actor.recover().await?;
        }
        tokio::spawn(actor.run(rx));
        let ticker = tx.clone();
        let every = config.watchdog_interval;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if ticker.send(Command::Watchdog).is_err() {
                    break;
                }
            }
        });
        Ok(Engine {
            tx,
            journal,
            store,
            layout,
            logs,
            clock,
            owner: config.owner.as_str().into(),
            lease_ttl_ms: config.lease_ttl_ms,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every run's job logs.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// The engine's clock, in milliseconds since the epoch.
    pub fn clock_now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Cancels a run: running attempts are stopped, the rest become `cancelled`.
    pub async fn cancel(&self, id: &str) -> Result<(), EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Cancel {
                id: id.to_string(),
                reply,
            })
            .map_err(|_| EngineError::Stopped)?;
        match rx.await.map_err(|_| EngineError::Stopped)? {
            // Not stepped here: another server on the same database steps it, and cancels it
            // on its next tick once the request is stored.
            Err(EngineError::RunNotFound(id)) => match self.store.get_run(&id).await? {
                Some(r) if r.status.is_terminal() => Err(EngineError::RunFinished(id)),
                Some(_) if self.store.request_cancel(&id, self.clock.now_ms()).await? => Ok(()),
                Some(_) => Err(EngineError::RunFinished(id)),
                None => Err(EngineError::RunNotFound(id)),
            },
            other => other,
        }
    }

    /// Re-runs a finished run's unsuccessful jobs as a new attempt, keeping succeeded ones.
    pub async fn rerun(&self, id: &str) -> Result<(), EngineError> {
        let record = self
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::RunNotFound(id.to_string()))?;
        if record.status.is_terminal() {
            takeover::claim_for_rerun(self, id).await?;
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Adopt {
                record: Box::new(record),
                reply,
            })
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Waits until the run has finished (durably) and returns it.
    pub async fn wait_finished(&self, id: &str) -> Result<RunRecord, EngineError> {
        let mut sub = self.journal.subscribe();
        loop {
            if let Some(r) = self.store.get_run(id).await? {
                if r.status.is_terminal() {
                    return Ok(r);
                }
            } else {
                return Err(EngineError::RunNotFound(id.to_string()));
            }
            loop {
                match sub.recv().await {
                    Ok(batch) => {
                        let done = batch.iter().any(|w| matches!(w, Write::UpdateRun { id: rid, status, .. } if rid == id && status.is_terminal()));
                        if done {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Err(EngineError::Stopped);
                    }
                }
            }
        }
    }

    /// Asks the watchdog to look now (besides its timer).
    pub fn poke_watchdog(&self) {
        let _ = self.tx.send(Command::Watchdog);
    }

    /// This server's lease holder name, and how long its leases last.
    pub fn lease_holder(&self) -> (&str, i64) {
        (&self.owner, self.lease_ttl_ms)
    }

    /// Whether the engine has stopped (after [`Engine::shutdown`]): what its background
    /// loops (the scheduler, the bus's deliveries) look at to stop too.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// Stops taking work and waits until every recorded change is durable. Running attempts
    /// are left to recovery.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { reply }).is_ok() {
            let _ = rx.await;
        }
        let _ = self.journal.flush().await;
    }
}

struct Actor {
    config: EngineConfig,
    store: Arc<dyn Store>,
    journal: Journal,
    executors: Executors,
    preparation: Arc<Preparation>,
    clock: Arc<dyn Clock>,
    layout: Layout,
    logs: Logs,
    tx: mpsc::UnboundedSender<Command>,
    /// Active runs by id; ULIDs sort by creation, so iteration is oldest first (fair dispatch).
    runs: BTreeMap<String, ActiveRun>,
    running: usize,
    dirty: Vec<String>,
    /// Writes of results taken since the last step, appended just before the step's own (so
    /// a burst of results costs one journal entry).
    results: Vec<Write>,
    keeping: Arc<takeover::LeaseKeeping>,
    /// The last journal mark given to a batch that claims attempts (`step.rs`).
    last_mark: u64,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        self.step_dirty();
        loop {
            // Sleep until the next command, or until a retry backoff ends.
            let wake = self.runs.values().filter_map(|r| r.wake_at_ms).min();
            let wait =
                wake.map(|at| Duration::from_millis((at - self.clock.now_ms()).max(0) as u64));
            let cmd = tokio::select! {
                c = rx.recv() => c,
                _ = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {
                    let now = self.clock.now_ms();
                    let due = self.runs.values().filter(|r| r.wake_at_ms.is_some_and(|w| w <= now));
                    self.dirty.extend(due.map(|r| r.id.clone()).collect::<Vec<_>>());
                    self.step_dirty();
                    continue;
                }
            };
            let Some(cmd) = cmd else { break };
            if !self.handle(cmd) {
                break;
            }
            // Take everything already waiting before stepping, so a burst costs one step.
            while let Ok(cmd) = rx.try_recv() {
                if !self.handle(cmd) {
                    return;
                }
            }
            self.step_dirty();
        }
    }

    /// Returns false on shutdown.
    fn handle(&mut self, cmd: Command) -> bool {
        let now = self.clock.now_ms();
        match cmd {
            Command::Submit {
                record,
                extra,
                reply,
            } => {
                // A new run's record is its state: it is written as submitted.
                let run = ActiveRun::from_record(&record);
                let mut writes = vec![Write::InsertRun(record), self.lease_write(&run.id, now)];
                writes.extend(extra);
                if let Some(group) = &run.ctx.concurrency_group {
                    // A newer run of the group supersedes the older ones still going.
                    for older in self.runs.values_mut() {
                        if older.ctx.concurrency_group.as_ref() == Some(group)
                            && older.state.request_cancel()
                        {
                            writes.push(older.run_write());
                            writes.push(older.note(
                                None,
                                "cancel_requested",
                                format!(
                                    "superseded by run {} (concurrency group `{group}`)",
                                    run.id
                                ),
                                now,
                            ));
                            self.dirty.push(older.id.clone());
                        }
                    }
                }
                writes.push(run.note(
                    None,
                    "created",
                    format!(
                        "run `{}` created with {} jobs",
                        run.name,
                        run.spec.jobs.len()
                    ),
                    now,
                ));
                let durable = self.append_acked(writes);
                let id = run.id.clone();
                self.dirty.push(id.clone());
                self.runs.insert(id, run);
                tokio::spawn(async move {
                    if durable.wait().await.is_ok() {
                        let _ = reply.send(());
                    }
                });
            }
            Command::Cancel { id, reply } => {
                let result = match self.runs.get_mut(&id) {
                    None => Err(EngineError::RunNotFound(id)),
                    Some(run) => {
                        if run.state.request_cancel() {
                            let writes = vec![
                                run.run_write(),
                                run.note(None, "cancel_requested", "cancel requested".into(), now),
                            ];
                            self.append(writes);
                            self.dirty.push(id);
                        }
                        Ok(())
                    }
                };
                let durable = self.append_acked(Vec::new());
                tokio::spawn(async move {
                    let _ = durable.wait().await;
                    let _ = reply.send(result);
                });
            }
            Command::Adopt { record, reply } => {
                if self.runs.contains_key(&record.id) {
                    let _ = reply.send(Err(EngineError::CannotRerun {
                        id: record.id.clone(),
                        why: "the run has not finished yet".into(),
                    }));
                    return true;
                }
                let mut run = ActiveRun::from_record(&record);
                match run.state.rerun() {
                    Err(why) => {
                        let _ = reply.send(Err(EngineError::CannotRerun {
                            id: run.id.clone(),
                            why: why.into(),
                        }));
                    }
                    Ok(transitions) => {
                        let mut writes = vec![self.lease_write(&run.id, now)];
                        for t in &transitions {
                            run.writes_for(t, now, &mut writes);
                        }
                        let durable = self.append_acked(writes);
                        self.dirty.push(run.id.clone());
                        self.runs.insert(run.id.clone(), run);
                        tokio::spawn(async move {
                            let _ = reply
                                .send(durable.wait().await.map(|_| ()).map_err(EngineError::from));
                        });
                    }
                }
            }
            Command::Ended {
                run_id,
                job,
                attempt,
                outcome,
            } => self.on_ended(&run_id, job, attempt, outcome, now),
            Command::Watchdog => self.watchdog(now),
            Command::LeasesLost { run_ids } => self.leases_lost(run_ids),
            Command::Orphans { records } => self.adopt_orphans(records, now),
            Command::Shutdown { reply } => {
                self.append(Vec::new());
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    /// Appends `writes` to the journal, after the results waiting for the next step.
    fn append(&mut self, writes: Vec<Write>) {
        let all = self.after_results(writes);
        self.journal.append(all);
    }

    /// [`Actor::append`], acknowledged once durable.
    fn append_acked(&mut self, writes: Vec<Write>) -> crate::journal::Durable {
        let all = self.after_results(writes);
        self.journal.append_acked(all)
    }

    /// The results waiting for the next step, then `writes`.
    fn after_results(&mut self, writes: Vec<Write>) -> Vec<Write> {
        let mut all = std::mem::take(&mut self.results);
        all.extend(writes);
        all
    }

    fn lease_write(&self, run_id: &str, now: i64) -> Write {
        Write::RenewLeases {
            names: vec![format!("run:{run_id}")],
            holder: self.config.owner.clone(),
            expires_at_ms: now + self.config.lease_ttl_ms,
        }
    }

    fn on_ended(&mut self, run_id: &str, job: usize, attempt: u32, outcome: Outcome, now: i64) {
        let Some(run) = self.runs.get_mut(run_id) else {
            return;
        };
        let policy = RetryPolicy::of(&run.spec.jobs[job]);
        if run.state.jobs[job].attempt == attempt && run.cancels.remove(&job).is_some() {
            self.running -= 1;
            // A freed slot may let other runs' queued jobs go.
            let starved: Vec<String> = self
                .runs
                .values()
                .filter(|r| r.starved)
                .map(|r| r.id.clone())
                .collect();
            self.dirty.extend(starved);
        }
        let Some(run) = self.runs.get_mut(run_id) else {
            return;
        };
        if let Some(t) = run.state.on_result(job, attempt, outcome, policy, now) {
            run.writes_for(&t, now, &mut self.results);
            self.dirty.push(run_id.to_string());
        }
    }

    fn watchdog(&mut self, now: i64) {
        let grace = self.config.watchdog_grace_ms;
        let mut overdue = Vec::new();
        for run in self.runs.values() {
            for (i, j) in run.state.jobs.iter().enumerate() {
                let limit = run.spec.jobs[i].timeout_ms as i64 + grace;
                if j.status == gantry_core::JobStatus::Running
                    && j.started_at_ms.is_some_and(|s| now - s > limit)
                {
                    overdue.push((run.id.clone(), i, j.attempt));
                }
            }
        }
        for (run_id, job, attempt) in overdue {
            if let Some(run) = self.runs.get_mut(&run_id) {
                warn!(run_id, trace_id = %run.trace_id, job = %run.spec.jobs[job].name, "attempt is past its timeout and its executor did not stop it; stopping it");
                if let Some(cancel) = run.cancels.get(&job) {
                    let _ = cancel.send(true);
                }
            }
            self.on_ended(&run_id, job, attempt, Outcome::TimedOut, now);
        }
        if self.config.recover {
            self.keep_leases(now);
        }
        // Step everything: a run can only be stuck if something above has a bug, and a step of a
        // healthy run changes nothing.
        self.dirty.extend(self.runs.keys().cloned());
    }
}

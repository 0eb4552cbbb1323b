//! The dispatcher: the one task that owns every runner not yet done. Notices (deliveries,
//! the reconciler's findings) and effects' reports come in as messages; each is applied to
//! the runner's phase with the pure lifecycle, the new phase and an audit record are
//! appended to the journal, and what the phase asks for is spawned to run once that is
//! written. Pools' places are given out in queue order. `notices.rs`: what deliveries do.

mod notices;

use notices::{GAVE_UP, gave_up};

use super::effects::{self, Ctx, Done, Registration, Removal, Target, Work};
use super::reconcile::{self, Found};
use super::{Msg, PoolStatus, RunnerPorts, RunnersConfig, Shared};
use crate::journal::{Durable, Journal};
use crate::ports::runners::JobStatus;
use crate::ports::{
    AuditRecord, Clock, ForgeError, RunnerHost, RunnerRecord, Scope, SecretString, Store, Write,
};
use gantry_core::runners::PoolDef;
use gantry_core::runners::lifecycle::{self, Action, Event, Phase};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// Runners started for one job before giving up (each failed start is removed first).
pub const MAX_LAUNCHES: u32 = 3;

/// How often timers (boot timeouts, retries) are looked at.
const TICK: Duration = Duration::from_millis(250);

struct Entry {
    rec: RunnerRecord,
    /// An effect is in flight for it: nothing else is started until it reports.
    pending: bool,
    /// Its job is being checked, which holds one of the pool's places.
    checking: bool,
    /// Not before this time (after a failed call).
    retry_at: Option<i64>,
    /// Queue it again once removed (its start failed before the job was claimed).
    again: bool,
    /// The just-in-time config between registration and start; memory only.
    jit: Option<SecretString>,
}

pub(super) struct Dispatcher {
    cfg: RunnersConfig,
    scopes: BTreeMap<String, Scope>,
    store: Arc<dyn Store>,
    journal: Journal,
    hosts: BTreeMap<String, Arc<dyn RunnerHost>>,
    clock: Arc<dyn Clock>,
    ctx: Ctx,
    shared: Arc<Mutex<Shared>>,
    active: BTreeMap<String, Entry>,
    /// Runners done in this life: how many launches they took, and whether they gave up (a
    /// new notice for one is a repeat unless it never launched).
    done: HashMap<String, (u32, bool)>,
    reconciling: bool,
    reconcile_waiters: Vec<oneshot::Sender<()>>,
}

impl Dispatcher {
    pub(super) fn new(
        cfg: RunnersConfig,
        ports: RunnerPorts,
        tx: mpsc::UnboundedSender<Msg>,
        shared: Arc<Mutex<Shared>>,
        active: Vec<RunnerRecord>,
    ) -> Dispatcher {
        let scopes = cfg
            .pools
            .iter()
            .filter_map(|(n, p)| Scope::parse(&p.scope).ok().map(|s| (n.clone(), s)))
            .collect();
        let active = active
            .into_iter()
            .filter(|r| cfg.pools.contains_key(&r.pool))
            .map(|rec| (rec.name.clone(), Entry::new(rec)))
            .collect();
        Dispatcher {
            cfg,
            scopes,
            store: ports.store,
            journal: ports.journal,
            hosts: ports.hosts,
            clock: ports.clock,
            ctx: Ctx {
                actions: ports.actions,
                tx,
            },
            shared,
            active,
            done: HashMap::new(),
            reconciling: false,
            reconcile_waiters: Vec::new(),
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        // Taken back after a restart: what became of each is found out before anything else
        // is done for it (a registration is asked again: a taken name means it happened).
        let names: Vec<String> = self.active.keys().cloned().collect();
        for name in names {
            self.resume(&name);
        }
        self.pump_all();
        self.publish();
        let mut tick = tokio::time::interval(TICK);
        let mut reconcile = tokio::time::interval(self.cfg.reconcile_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick(),
                _ = reconcile.tick() => self.start_reconcile(None),
            }
            self.publish();
        }
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Notice(n, reply) => {
                let outcome = self.on_notice(n).await;
                let _ = reply.send(outcome);
            }
            Msg::Effect(name, done) => self.on_effect(&name, done),
            Msg::Reconcile(reply) => self.start_reconcile(reply),
            Msg::Reconciled(found) => self.on_reconciled(found).await,
        }
    }

    // ---- stepping ----

    /// Applies `event` to runner `name`: the new phase and its audit record go to the journal
    /// and what the phase asks for is spawned behind them. Whether anything changed.
    fn apply(&mut self, name: &str, event: Event, note: Option<String>) -> bool {
        let now = self.clock.now_ms();
        let Some(entry) = self.active.get_mut(name) else {
            return false;
        };
        let before = entry.rec.phase;
        let Some((next, actions)) = lifecycle::step(before, &event) else {
            return false;
        };
        if lifecycle::needs_another(before, &event) {
            entry.again = true;
        }
        let mut note = note;
        if next == Phase::Done && entry.again {
            note = Some(format!("{GAVE_UP} {} failed start(s)", entry.rec.launches));
        }
        // The lifecycle asks for at most one thing per step; it waits for the phase's write.
        debug_assert!(actions.len() <= 1);
        let mut written = self.set_phase(name, next, note, now);
        for action in actions {
            self.spawn_action(name, action, written.take());
        }
        true
    }

    /// Records runner `name` in phase `next` (with `note`); the handle on that write, if
    /// anything changed.
    fn set_phase(
        &mut self,
        name: &str,
        next: Phase,
        note: Option<String>,
        now: i64,
    ) -> Option<Durable> {
        let entry = self.active.get_mut(name)?;
        let before = entry.rec.phase;
        let rec = &mut entry.rec;
        rec.phase = next;
        let mut latency = None;
        match next {
            Phase::Starting { .. } if !matches!(before, Phase::Starting { .. }) => {
                rec.launches += 1
            }
            Phase::Running { .. } if rec.started_at_ms.is_none() => {
                rec.started_at_ms = Some(now);
                latency = Some((now - rec.queued_at_ms).max(0) as f64 / 1000.0);
            }
            Phase::Busy { .. } if rec.claimed_at_ms.is_none() => rec.claimed_at_ms = Some(now),
            Phase::Done => rec.finished_at_ms = Some(now),
            _ => {}
        }
        if note.is_some() {
            rec.note = note.clone();
        }
        if before == next && note.is_none() {
            return None;
        }
        let writes = vec![
            Write::PutRunner(Box::new(rec.clone())),
            audit(rec, now, Some(before), note),
        ];
        let pool = rec.pool.clone();
        let written = self.journal.append_written(writes);
        if let Some(seconds) = latency {
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.latency.observe(seconds);
        }
        if next == Phase::Done
            && let Some(e) = self.active.remove(name)
        {
            self.done
                .insert(name.to_string(), (e.rec.launches, gave_up(&e.rec)));
        }
        if !next.holds_capacity() {
            self.pump(&pool);
        }
        Some(written)
    }

    fn target(&self, name: &str) -> Option<Target> {
        let e = self.active.get(name)?;
        let pool = self.cfg.pools.get(&e.rec.pool)?;
        let host = self.hosts.get(&pool.executor)?;
        Some(Target {
            name: name.to_string(),
            pool_name: e.rec.pool.clone(),
            pool: pool.clone(),
            host: host.clone(),
        })
    }

    fn spawn_action(&mut self, name: &str, action: Action, written: Option<Durable>) {
        let Some(target) = self.target(name) else {
            warn!(runner = %name, "no host for the runner's pool; nothing done");
            return;
        };
        let scope = self.scopes.get(&target.pool_name).cloned();
        let Some(entry) = self.active.get_mut(name) else {
            return;
        };
        let work = match action {
            Action::CheckJob => {
                entry.checking = true;
                Work::Check {
                    repo: entry.rec.repository.clone(),
                    job_id: entry.rec.job_id,
                }
            }
            Action::Register => Work::Register {
                scope: match scope {
                    Some(s) => s,
                    None => return,
                },
                labels: target.pool.labels.clone(),
            },
            Action::Start { .. } => match entry.jit.take() {
                Some(jit) => Work::Start { jit },
                None => Work::Probe,
            },
            Action::Remove { runner_id } => Work::Remove {
                scope: match scope {
                    Some(s) => s,
                    None => return,
                },
                runner_id,
            },
        };
        entry.pending = true;
        let trace = entry.rec.trace_id.clone();
        effects::spawn(&self.ctx, target, written, work, &trace);
    }

    /// Performs, again, what runner `name`'s phase is waiting on (after a restart or a
    /// failed call).
    fn resume(&mut self, name: &str) {
        let Some(entry) = self.active.get(name) else {
            return;
        };
        let action = match entry.rec.phase {
            Phase::Waiting | Phase::Done => return, // places are given out by `pump`
            Phase::Registering => Some(Action::Register),
            Phase::Removing { runner_id } => Some(Action::Remove { runner_id }),
            Phase::Starting { .. } | Phase::Running { .. } | Phase::Busy { .. } => None,
        };
        match action {
            Some(a) => self.spawn_action(name, a, None),
            None => self.spawn_probe(name),
        }
    }

    fn spawn_probe(&mut self, name: &str) {
        let Some(target) = self.target(name) else {
            return;
        };
        if let Some(entry) = self.active.get_mut(name) {
            entry.pending = true;
            let trace = entry.rec.trace_id.clone();
            effects::spawn(&self.ctx, target, None, Work::Probe, &trace);
        }
    }

    /// A failed call: tried again after `retry_after`.
    fn fail(&mut self, name: &str, why: String) {
        let retry_at = self.clock.now_ms() + self.cfg.retry_after.as_millis() as i64;
        if let Some(entry) = self.active.get_mut(name) {
            warn!(runner = %name, trace_id = %entry.rec.trace_id, cause = %why, "will try again");
            entry.retry_at = Some(retry_at);
            entry.rec.note = Some(why);
        }
    }

    fn on_effect(&mut self, name: &str, done: Done) {
        let now = self.clock.now_ms();
        let Some(entry) = self.active.get_mut(name) else {
            return;
        };
        entry.pending = false;
        if let Done::Checked(job_id, _) = &done {
            entry.checking = false;
            if *job_id != entry.rec.job_id {
                // It stands for another job now (its own was taken): that one is checked.
                let pool = entry.rec.pool.clone();
                self.pump(&pool);
                return;
            }
        }
        let (again, launches) = (entry.again, entry.rec.launches);
        match done {
            Done::NotWritten => self.fail(name, "its phase could not be written".into()),
            Done::Checked(_, Ok(Some(JobStatus::Queued))) => {
                self.apply(name, Event::StillQueued(true), None);
            }
            Done::Checked(_, Ok(Some(status))) => {
                let note = format!("the job is {} at GitHub: no runner needed", label(&status));
                self.apply(name, Event::StillQueued(false), Some(note));
            }
            Done::Checked(_, Ok(None)) => {
                let note = "GitHub has no such job".to_string();
                self.apply(name, Event::StillQueued(false), Some(note));
            }
            Done::Checked(_, Err(e)) => {
                self.fail(name, format!("cannot check the job: {e}"));
                self.pump_pool_of(name);
            }
            Done::Registered(Ok(Registration::New { runner_id, jit })) => {
                entry.jit = Some(jit);
                self.apply(name, Event::Registered { runner_id }, None);
            }
            Done::Registered(Ok(Registration::Taken { runner_id, running })) => {
                let note = format!("registered before as runner {runner_id}");
                self.apply(name, Event::NameTaken { runner_id, running }, Some(note));
            }
            Done::Registered(Ok(Registration::Vanished)) => entry.retry_at = Some(now),
            Done::Registered(Err(ForgeError::Transient(e))) => {
                self.fail(name, format!("cannot register: {e}"))
            }
            Done::Registered(Err(e)) => {
                let note = format!("GitHub refused the registration: {e}");
                self.apply(name, Event::Refused, Some(note));
            }
            Done::Started(Ok(container)) => {
                entry.rec.container = Some(container);
                self.apply(name, Event::Started, None);
            }
            Done::Started(Err(e)) => {
                self.apply(name, Event::StartFailed, Some(format!("cannot start: {e}")));
            }
            Done::Removed(Ok(Removal::Removed)) if again && launches < MAX_LAUNCHES => {
                entry.again = false;
                entry.rec.container = None;
                let note = format!("queued again after failed start {launches} of {MAX_LAUNCHES}");
                self.set_phase(name, Phase::Waiting, Some(note), now);
            }
            Done::Removed(Ok(Removal::Removed)) => {
                self.apply(name, Event::Removed, None);
            }
            Done::Removed(Ok(Removal::StillBusy)) => {
                let note = "GitHub says it is running a job: left to finish".to_string();
                self.apply(name, Event::StillBusy, Some(note));
            }
            Done::Removed(Err(e)) => self.fail(name, e),
            Done::Probed(Ok(running)) => {
                self.apply(name, Event::Recovered { running }, None);
            }
            Done::Probed(Err(e)) => self.fail(name, format!("cannot look for it: {e}")),
        }
    }

    fn pump_pool_of(&mut self, name: &str) {
        if let Some(pool) = self.active.get(name).map(|e| e.rec.pool.clone()) {
            self.pump(&pool);
        }
    }

    // ---- places and timers ----

    fn pump_all(&mut self) {
        let pools: Vec<String> = self.cfg.pools.keys().cloned().collect();
        for p in pools {
            self.pump(&p);
        }
    }

    /// Gives the pool's free places to its waiting jobs, oldest first.
    fn pump(&mut self, pool: &str) {
        let Some(max) = self.cfg.pools.get(pool).map(|p| p.max_runners as usize) else {
            return;
        };
        let now = self.clock.now_ms();
        let mut used = 0;
        let mut waiting = Vec::new();
        for (name, e) in &self.active {
            if e.rec.pool != pool {
                continue;
            }
            if e.rec.phase.holds_capacity() || e.checking {
                used += 1;
            } else if e.rec.phase == Phase::Waiting
                && !e.pending
                && e.retry_at.is_none_or(|t| t <= now)
            {
                waiting.push((e.rec.queued_at_ms, name.clone()));
            }
        }
        waiting.sort();
        for (_, name) in waiting.into_iter().take(max.saturating_sub(used)) {
            if let Some(e) = self.active.get_mut(&name) {
                e.retry_at = None;
            }
            self.apply(&name, Event::Capacity, None);
        }
    }

    fn on_tick(&mut self) {
        let now = self.clock.now_ms();
        let mut due = Vec::new();
        let mut timed_out = Vec::new();
        for (name, e) in &self.active {
            if e.pending {
                continue;
            }
            if e.retry_at.is_some_and(|t| t <= now) && e.rec.phase != Phase::Waiting {
                due.push(name.clone());
            }
            if let (Phase::Running { .. }, Some(started)) = (e.rec.phase, e.rec.started_at_ms)
                && let Some(pool) = self.cfg.pools.get(&e.rec.pool)
                && now - started >= pool.boot_timeout_ms() as i64
            {
                timed_out.push((name.clone(), pool.boot_timeout.clone()));
            }
        }
        for name in due {
            if let Some(e) = self.active.get_mut(&name) {
                e.retry_at = None;
            }
            self.resume(&name);
        }
        for (name, limit) in timed_out {
            let note = format!("no job claimed within boot_timeout ({limit})");
            self.apply(&name, Event::BootTimedOut, Some(note));
        }
        self.pump_all();
    }

    // ---- reconciling ----

    fn start_reconcile(&mut self, reply: Option<oneshot::Sender<()>>) {
        self.reconcile_waiters.extend(reply);
        if self.reconciling {
            return;
        }
        self.reconciling = true;
        reconcile::spawn(
            self.ctx.clone(),
            self.scopes.clone(),
            self.hosts.clone(),
            self.cfg.pools.keys().cloned().collect(),
        );
    }

    async fn on_reconciled(&mut self, found: Found) {
        self.reconciling = false;
        for n in found.queued {
            let outcome = self.on_queued(&n).await;
            if outcome.starts_with("queued") {
                info!(job = n.job_id, repository = %n.repository, "a queued job without a runner: {outcome}");
            }
        }
        for (scope, runner) in found.registered {
            if !self.active.contains_key(&runner.name) && !runner.busy {
                reconcile::delete_orphan(self.ctx.clone(), scope, runner);
            }
        }
        for (executor, name) in found.hosted {
            if !self.active.contains_key(&name)
                && let Some(host) = self.hosts.get(&executor)
            {
                reconcile::remove_hosted(host.clone(), name);
            }
        }
        // A runner whose container or process stopped without a `completed` delivery.
        let running: Vec<String> = self
            .active
            .iter()
            .filter(|(_, e)| {
                !e.pending && matches!(e.rec.phase, Phase::Running { .. } | Phase::Busy { .. })
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in running {
            self.spawn_probe(&name);
        }
        for w in self.reconcile_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    /// Pools' places and phases, for readers.
    fn publish(&self) {
        let mut pools: Vec<PoolStatus> = self
            .cfg
            .pools
            .iter()
            .map(|(name, p)| status(name, p))
            .collect();
        for e in self.active.values() {
            if let Some(p) = pools.iter_mut().find(|p| p.name == e.rec.pool) {
                *p.by_phase
                    .entry(e.rec.phase.name().to_string())
                    .or_default() += 1;
                if e.rec.phase.holds_capacity() || e.checking {
                    p.runners += 1;
                } else {
                    p.waiting += 1;
                }
            }
        }
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).pools = pools;
    }
}

impl Entry {
    fn new(rec: RunnerRecord) -> Entry {
        Entry {
            rec,
            pending: false,
            checking: false,
            retry_at: None,
            again: false,
            jit: None,
        }
    }
}

fn status(name: &str, p: &PoolDef) -> PoolStatus {
    PoolStatus {
        name: name.to_string(),
        labels: p.labels.clone(),
        scope: p.scope.clone(),
        executor: p.executor.clone(),
        max_runners: p.max_runners,
        runners: 0,
        waiting: 0,
        by_phase: BTreeMap::new(),
    }
}

fn label(status: &JobStatus) -> &str {
    match status {
        JobStatus::Queued => "queued",
        JobStatus::InProgress => "in progress",
        JobStatus::Completed => "completed",
        JobStatus::Other(s) => s,
    }
}

fn audit(rec: &RunnerRecord, now: i64, from: Option<Phase>, note: Option<String>) -> Write {
    Write::Audit(AuditRecord {
        seq: 0,
        at_ms: now,
        trace_id: rec.trace_id.clone(),
        run_id: format!("runner:{}", rec.name),
        job: Some(rec.pool.clone()),
        attempt: Some(rec.launches),
        from: from.map(|p| p.name().to_string()),
        to: rec.phase.name().to_string(),
        note,
    })
}

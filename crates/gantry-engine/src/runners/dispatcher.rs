//! The dispatcher: the one task that owns every runner not yet done. Notices (deliveries,
//! the reconciler's findings) and effects' reports come in as messages; each is applied to
//! the runner's phase with the pure lifecycle, the new phase and an audit record are
//! appended to the journal, and what the phase asks for is spawned to run once that is
//! written. Pools' places are given out in queue order.

use super::effects::{self, Ctx, Done, Registration, Removal, Target, Work};
use super::reconcile::{self, Found};
use super::{JobNotice, Msg, PoolStatus, RunnerPorts, RunnersConfig, Shared};
use crate::journal::{Durable, Journal};
use crate::ports::runners::JobStatus;
use crate::ports::{
    AuditRecord, Clock, ForgeError, RunnerHost, RunnerRecord, Scope, SecretString, Store, Write,
};
use gantry_core::runners::lifecycle::{self, Action, Event, Phase};
use gantry_core::runners::{PoolDef, pool_for, runner_name};
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

    // ---- notices ----

    async fn on_notice(&mut self, n: JobNotice) -> String {
        let outcome = match n.action.as_str() {
            "queued" => self.on_queued(&n).await,
            "in_progress" => self.on_in_progress(&n),
            "completed" => self.on_completed(&n),
            other => format!("not a launch: workflow_job action `{other}`"),
        };
        if let Some(id) = &n.event_id {
            self.journal.append(vec![Write::SetEventOutcome {
                id: id.clone(),
                outcome: outcome.clone(),
            }]);
        }
        outcome
    }

    async fn on_queued(&mut self, n: &JobNotice) -> String {
        let Some((pool_name, _)) = pool_for(&self.cfg.pools, &n.repository, &n.labels) else {
            return format!(
                "no runner pool serves a job of {} with labels {:?}",
                n.repository, n.labels
            );
        };
        let pool_name = pool_name.to_string();
        let base = runner_name(&pool_name, n.job_id, n.run_attempt);
        let mut name = base.clone();
        if n.event_id.is_none() {
            // Found queued at GitHub by the reconciler: the job needs a runner unless one is
            // for it already (its first may have taken another job without Gantry hearing).
            if let Some(o) = self.entry_for_job(&job_of(n), None) {
                return format!("runner {o} is already for this job");
            }
            for k in 1..=MAX_REPLACEMENTS + 1 {
                match self.name_state(&name).await {
                    Ok(Taken::Free) => break,
                    Ok(Taken::GaveUp) => return format!("runner {name} gave up on this job"),
                    Ok(Taken::Used) if k <= MAX_REPLACEMENTS => name = format!("{base}-r{k}"),
                    Ok(Taken::Used) => return format!("no runner name left for this job ({base})"),
                    Err(e) => return format!("not acted on: cannot read runner {name}: {e}"),
                }
            }
        } else {
            if let Some(e) = self.active.get(&name) {
                return format!("runner {name} is already {}", e.rec.phase.name());
            }
            match self.name_state(&name).await {
                Ok(Taken::Free) => {}
                Ok(_) => return format!("runner {name} already ran for this job"),
                Err(e) => return format!("not acted on: cannot read runner {name}: {e}"),
            }
        }
        let now = self.clock.now_ms();
        let rec = RunnerRecord {
            name: name.clone(),
            pool: pool_name.clone(),
            repository: n.repository.clone(),
            job_id: n.job_id,
            run_attempt: n.run_attempt,
            job_name: n.job_name.clone(),
            labels: n.labels.clone(),
            phase: Phase::Waiting,
            container: None,
            trace_id: n.trace_id.clone(),
            event_id: n.event_id.clone(),
            queued_at_ms: now,
            started_at_ms: None,
            claimed_at_ms: None,
            finished_at_ms: None,
            launches: 0,
            note: None,
        };
        let why = match &n.event_id {
            Some(e) => format!("queued by event {e}"),
            None => "found queued by the reconciler".to_string(),
        };
        self.journal.append(vec![
            Write::PutRunner(Box::new(rec.clone())),
            audit(&rec, now, None, Some(why)),
        ]);
        self.done.remove(&name);
        self.active.insert(name.clone(), Entry::new(rec));
        info!(runner = %name, trace_id = %n.trace_id, "queued for a runner");
        self.pump(&pool_name);
        format!("queued for a runner of pool {pool_name} as {name}")
    }

    fn on_in_progress(&mut self, n: &JobNotice) -> String {
        let by = n.runner_name.clone().unwrap_or_default();
        let job = job_of(n);
        if let Some(e) = self.active.get(&by) {
            let mut said = format!("runner {by} is busy");
            if key(&e.rec) != job {
                said = self.took_another(&by, n);
            }
            self.apply(&by, Event::InProgress, None);
            return said;
        }
        // A runner not of Gantry's took the job: its own runner is not needed, if not
        // launched yet.
        if let Some(own) = self.entry_for_job(&job, None)
            && self
                .active
                .get(&own)
                .is_some_and(|e| e.rec.phase == Phase::Waiting)
        {
            let note = format!("the job was taken by runner {by}");
            self.apply(&own, Event::StillQueued(false), Some(note));
        }
        format!("in progress on runner {by}")
    }

    /// Runner `by`, started for one job, took job `n` instead: GitHub gives a queued job to
    /// any idle runner with its labels. `by` now stands for `n`'s job, and the job it was
    /// started for needs another runner: `n`'s own runner in the same pool (not yet busy)
    /// takes it over, or else a new one is queued for it under the name `n`'s job would have
    /// had in that pool.
    fn took_another(&mut self, by: &str, n: &JobNotice) -> String {
        let now = self.clock.now_ms();
        let Some(e) = self.active.get_mut(by) else {
            return String::new();
        };
        let left = e.rec.clone();
        e.rec.repository = n.repository.clone();
        e.rec.job_id = n.job_id;
        e.rec.run_attempt = n.run_attempt;
        e.rec.job_name = n.job_name.clone();
        let note = format!(
            "took job {} of {} (started for job {})",
            n.job_id, n.repository, left.job_id
        );
        let rec = e.rec.clone();
        self.journal.append(vec![
            Write::PutRunner(Box::new(rec.clone())),
            audit(&rec, now, Some(rec.phase), Some(note)),
        ]);
        let other = self
            .active
            .iter()
            .find(|(name, e)| {
                name.as_str() != by
                    && e.rec.pool == left.pool
                    && key(&e.rec) == job_of(n)
                    && !matches!(e.rec.phase, Phase::Busy { .. })
            })
            .map(|(name, _)| name.clone());
        if let Some(o) = other {
            let e = self.active.get_mut(&o).expect("found above");
            e.rec.repository = left.repository.clone();
            e.rec.job_id = left.job_id;
            e.rec.run_attempt = left.run_attempt;
            e.rec.job_name = left.job_name.clone();
            e.rec.labels = left.labels.clone();
            let note = format!(
                "now for job {} (its own job was taken by runner {by})",
                left.job_id
            );
            let rec = e.rec.clone();
            self.journal.append(vec![
                Write::PutRunner(Box::new(rec.clone())),
                audit(&rec, now, Some(rec.phase), Some(note)),
            ]);
            return format!(
                "runner {by} took this job; {o} is now for job {}",
                left.job_id
            );
        }
        // A replacement for the job `by` was started for: `…-r<n>` of that job's name.
        let base = runner_name(&left.pool, left.job_id, left.run_attempt);
        let Some(name) = (1..=MAX_REPLACEMENTS)
            .map(|k| format!("{base}-r{k}"))
            .find(|n| !self.active.contains_key(n) && !self.done.contains_key(n))
        else {
            warn!(runner = %by, job = left.job_id, "no name left for the job's new runner");
            return format!("runner {by} took this job");
        };
        let rec = RunnerRecord {
            name: name.clone(),
            phase: Phase::Waiting,
            container: None,
            queued_at_ms: now,
            started_at_ms: None,
            claimed_at_ms: None,
            finished_at_ms: None,
            launches: 0,
            note: None,
            ..left.clone()
        };
        let why = format!(
            "queued for job {}, whose runner {by} took another",
            left.job_id
        );
        self.journal.append(vec![
            Write::PutRunner(Box::new(rec.clone())),
            audit(&rec, now, None, Some(why)),
        ]);
        self.active.insert(name.clone(), Entry::new(rec));
        self.pump(&left.pool);
        format!(
            "runner {by} took this job; {name} queued for job {}",
            left.job_id
        )
    }

    fn on_completed(&mut self, n: &JobNotice) -> String {
        let conclusion = n.conclusion.as_deref().unwrap_or("completed");
        let by = n.runner_name.as_deref().unwrap_or("");
        let mut said = Vec::new();
        if let Some(e) = self.active.get(by) {
            if key(&e.rec) != job_of(n) {
                // It took this job without Gantry hearing of it: the job it was for needs
                // another runner.
                said.push(self.took_another(by, n));
            }
            self.apply(by, Event::Completed, Some(format!("job {conclusion}")));
            said.push(format!("runner {by} removed"));
        }
        if let Some(own) = self.entry_for_job(&job_of(n), Some(by))
            && let Some(e) = self.active.get(&own)
            && !matches!(e.rec.phase, Phase::Busy { .. })
        {
            let note = match by {
                "" => format!("job {conclusion} before a runner took it"),
                by => format!("job {conclusion} on runner {by}"),
            };
            if e.rec.phase == Phase::Waiting {
                said.push(format!("{own} no longer needed"));
            } else {
                said.push(format!("runner {own} removed"));
            }
            self.apply(&own, Event::Completed, Some(note));
        }
        if said.is_empty() {
            format!("job {conclusion}: no runner of Gantry's to remove")
        } else {
            said.join("; ")
        }
    }

    /// Whether runner name `name` may be given to a new runner.
    async fn name_state(&self, name: &str) -> Result<Taken, crate::ports::StoreError> {
        if self.active.contains_key(name) {
            return Ok(Taken::Used);
        }
        let done = match self.done.get(name) {
            Some(d) => Some(*d),
            None => self
                .store
                .get_runner(name)
                .await?
                .map(|r| (r.launches, gave_up(&r))),
        };
        Ok(match done {
            None | Some((0, _)) => Taken::Free,
            Some((_, true)) => Taken::GaveUp,
            Some(_) => Taken::Used,
        })
    }

    /// The active runner for `job` (other than `except`).
    fn entry_for_job(&self, job: &JobKey, except: Option<&str>) -> Option<String> {
        self.active
            .iter()
            .find(|(name, e)| Some(name.as_str()) != except && key(&e.rec) == *job)
            .map(|(name, _)| name.clone())
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

/// What became of a runner name.
enum Taken {
    /// Never launched: a new runner may have it.
    Free,
    /// Launched (or running): a job that needs another runner gets another name.
    Used,
    /// Its job's runners failed to start [`MAX_LAUNCHES`] times.
    GaveUp,
}

/// Replacement runners (named `…-rN`) the reconciler may queue for one job.
const MAX_REPLACEMENTS: u32 = 5;

const GAVE_UP: &str = "gave up after";

fn gave_up(r: &RunnerRecord) -> bool {
    r.note.as_deref().is_some_and(|n| n.starts_with(GAVE_UP))
}

/// A job: its repository, id and attempt.
type JobKey = (String, u64, u32);

fn key(r: &RunnerRecord) -> JobKey {
    (r.repository.clone(), r.job_id, r.run_attempt)
}

fn job_of(n: &JobNotice) -> JobKey {
    (n.repository.clone(), n.job_id, n.run_attempt)
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

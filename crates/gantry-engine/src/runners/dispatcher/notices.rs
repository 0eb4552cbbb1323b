//! Notices: `workflow_job` deliveries and the reconciler's findings, applied to the runners.
//! `queued` makes a runner for the job (one per job and attempt, by name); `in_progress` and
//! `completed` move the runner that took the job, and since GitHub gives a queued job to any
//! idle runner with its labels, a runner that took another job than its own hands its own to
//! that job's runner, or to a replacement (`…-r<n>`).

use super::{Dispatcher, Entry, audit};
use crate::ports::{RunnerRecord, Write};
use crate::runners::JobNotice;
use gantry_core::runners::lifecycle::{Event, Phase};
use gantry_core::runners::{pool_for, runner_name};
use tracing::{info, warn};

impl Dispatcher {
    pub(super) async fn on_notice(&mut self, n: JobNotice) -> String {
        let outcome = match n.action.as_str() {
            "queued" => self.on_queued(&n).await,
            "in_progress" => self.on_in_progress(&n),
            "completed" => self.on_completed(&n),
            other => format!("not a launch: workflow_job action `{other}`"),
        };
        if let Some(id) = &n.event_id {
            self.journal.append_unsynced(vec![Write::SetEventOutcome {
                id: id.clone(),
                outcome: outcome.clone(),
            }]);
        }
        outcome
    }

    pub(super) async fn on_queued(&mut self, n: &JobNotice) -> String {
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
        self.journal.append_unsynced(vec![
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
        self.journal.append_unsynced(vec![
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
            self.journal.append_unsynced(vec![
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
        self.journal.append_unsynced(vec![
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
    pub(super) fn entry_for_job(&self, job: &JobKey, except: Option<&str>) -> Option<String> {
        self.active
            .iter()
            .find(|(name, e)| Some(name.as_str()) != except && key(&e.rec) == *job)
            .map(|(name, _)| name.clone())
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

pub(super) const GAVE_UP: &str = "gave up after";

pub(super) fn gave_up(r: &RunnerRecord) -> bool {
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

//! The DAG step and the run state machine it drives.
//!
//! [`step`] looks at a run's jobs and returns the [`Action`]s that move it forward: skip jobs
//! whose needs ended the wrong way, queue jobs whose needs ended the right way, dispatch queued
//! jobs within the free concurrency slots, finish the run when every job has ended. It decides
//! and does nothing; [`RunState::apply`] performs an action on the in-memory state and returns the
//! [`Transition`] to persist and audit. Running [`step`] again on the resulting state returns
//! nothing new: the step is idempotent.

use crate::spec::{JobGraph, JobSpec, RunContext, RunSpec};
use crate::status::{JobStatus, RunStatus};

/// A job's mutable state within a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub status: JobStatus,
    /// 1 for the first attempt; grows with each retry and re-run.
    pub attempt: u32,
    /// A retried job waits until then before it is dispatched again.
    pub not_before_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Retries taken since the job's first attempt (or its last re-run).
    pub retries_used: u32,
    /// Lost attempts run again for free since then (at most one).
    pub lost_reruns: u32,
    /// The queued attempt was claimed: recorded, ahead of a free slot, as one that may start
    /// the moment a slot frees, so that its start need not wait for a commit. After a crash a
    /// claimed attempt counts as lost (it may have started). Only jobs that allow a lost
    /// attempt to run again (`rerun_lost`) are claimed.
    pub claimed: bool,
}

impl JobState {
    pub fn new() -> Self {
        JobState {
            status: JobStatus::Pending,
            attempt: 1,
            not_before_ms: None,
            exit_code: None,
            started_at_ms: None,
            finished_at_ms: None,
            retries_used: 0,
            lost_reruns: 0,
            claimed: false,
        }
    }
}

impl Default for JobState {
    fn default() -> Self {
        Self::new()
    }
}

/// A run's mutable state: what the step reads and what actions change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub status: RunStatus,
    pub cancel_requested: bool,
    pub jobs: Vec<JobState>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// What the step decided should happen next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `queued → running` for the run, before its first dispatch.
    StartRun,
    /// `pending → skipped`: needs ended so that this job's `when` does not hold.
    Skip { job: usize, reason: SkipReason },
    /// `pending → queued`: needs ended and the condition holds.
    Queue { job: usize },
    /// `queued → running`: hand the job to its executor now.
    Dispatch { job: usize },
    /// A due queued job left for lack of a free slot is claimed: it stays queued, recorded as
    /// the attempt that goes when a slot frees (see [`JobState::claimed`]).
    Claim { job: usize },
    /// `pending/queued → cancelled` because the run is being cancelled.
    Cancel { job: usize },
    /// Stop a running job because the run is being cancelled; its result comes back `cancelled`.
    Kill { job: usize },
    /// Every job has ended: the run ends with this status.
    FinishRun { status: RunStatus },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A need failed (or was skipped) and the job does not run on failure.
    NeedsNotSucceeded,
    /// All needs succeeded but the job runs only on failure.
    NoFailure,
    /// `when.event` / `when.branch` does not match the run's context.
    ConditionFalse,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::NeedsNotSucceeded => "a need did not succeed",
            SkipReason::NoFailure => "runs only on failure, and nothing failed",
            SkipReason::ConditionFalse => "`when` condition does not match the run",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The earliest time a queued job waiting for its retry backoff becomes dispatchable.
    pub wake_at_ms: Option<i64>,
    /// Queued jobs that could go now were left waiting for a free slot.
    pub starved: bool,
}

/// The slots a step may fill: `free` ones to dispatch into now, and how many more queued
/// attempts it may claim for the slots that free next (`ahead`: the claims allowed less those
/// held; dispatching a claimed attempt gives its claim back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slots {
    pub free: usize,
    pub ahead: usize,
}

impl Slots {
    /// `free` slots to dispatch into, and no claims.
    pub fn free(free: usize) -> Slots {
        Slots { free, ahead: 0 }
    }

    /// Whether a queued job visited now can be dispatched or claimed.
    fn any(&self) -> bool {
        self.free > 0 || self.ahead > 0
    }
}

impl Plan {
    /// A queued job the step comes to: it waits for its retry time (the plan wakes for the
    /// earliest), or goes if a slot is free (the run starts with its first dispatch), or is left
    /// for lack of one, and then claimed if it may be and the step may claim more. True if it
    /// was dispatched.
    fn visit_queued(
        &mut self,
        job: usize,
        state: &JobState,
        claimable: bool,
        now_ms: i64,
        slots: &mut Slots,
        run: RunStatus,
    ) -> bool {
        match state.not_before_ms {
            Some(t) if t > now_ms => {
                self.wake_at_ms = Some(self.wake_at_ms.map_or(t, |w| w.min(t)));
                false
            }
            _ if slots.free > 0 => {
                if run == RunStatus::Queued && !self.actions.contains(&Action::StartRun) {
                    self.actions.push(Action::StartRun);
                }
                self.actions.push(Action::Dispatch { job });
                slots.free -= 1;
                // Its claim, if it had one, may go to another job.
                slots.ahead += usize::from(state.claimed);
                true
            }
            _ => {
                self.starved = true;
                // Only an attempt whose loss would run it again for free: a claimed attempt lost to
                // a crash may never have started.
                if slots.ahead > 0 && claimable && state.lost_reruns == 0 && !state.claimed {
                    self.actions.push(Action::Claim { job });
                    slots.ahead -= 1;
                }
                false
            }
        }
    }
}

/// A state change, to be persisted and recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Run {
        from: RunStatus,
        to: RunStatus,
    },
    Job {
        job: usize,
        from: JobStatus,
        to: JobStatus,
        attempt: u32,
        note: Option<String>,
    },
    /// A queued attempt was claimed (no change of status: persisted, not audited).
    Claimed {
        job: usize,
    },
}

/// How an attempt ended, as its executor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed {
        exit_code: Option<i32>,
    },
    TimedOut,
    Cancelled,
    /// The attempt was running when the server stopped (found at recovery): it may or may
    /// not have run to its end. Executors report what they saw instead (a process or
    /// container they lost track of has `Failed`).
    Lost,
}

/// How a job's unsuccessful attempts are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed or timed-out attempts tried again, at most.
    pub retries: u32,
    /// The wait before the first retry, doubled for each one after.
    pub backoff_ms: u64,
    /// An attempt lost to a crash runs once more without counting against `retries`.
    pub rerun_lost: bool,
}

impl RetryPolicy {
    pub fn of(job: &JobSpec) -> RetryPolicy {
        RetryPolicy {
            retries: job.retries,
            backoff_ms: job.retry_backoff_ms,
            rerun_lost: job.rerun_lost,
        }
    }
}

/// Why a lost attempt is not run again.
pub const LOST: &str = "lost: its server or agent stopped while it ran";

/// Decides what happens next in a run. Pure and idempotent.
pub fn step(
    spec: &RunSpec,
    graph: &JobGraph,
    ctx: &RunContext,
    run: &RunState,
    now_ms: i64,
    slots: Slots,
) -> Plan {
    let mut plan = Plan {
        actions: Vec::new(),
        wake_at_ms: None,
        starved: false,
    };
    if run.status.is_terminal() {
        return plan;
    }
    let mut status: Vec<JobStatus> = run.jobs.iter().map(|j| j.status).collect();
    let mut all_ended = true;

    if run.cancel_requested {
        for (i, s) in status.iter_mut().enumerate() {
            match *s {
                JobStatus::Pending | JobStatus::Queued => {
                    plan.actions.push(Action::Cancel { job: i });
                    *s = JobStatus::Cancelled;
                }
                JobStatus::Running => plan.actions.push(Action::Kill { job: i }),
                _ => {}
            }
        }
        all_ended = status.iter().all(|s| s.is_terminal());
    } else {
        // One pass in topological order: a job's needs come before it, so their statuses are
        // final for this step when it is decided, and a job queued here can be dispatched at
        // once (dispatch goes in topological order, as it would in a pass of its own).
        // `failed_upstream[j]`: something failed at or above j (a skip passes failure on).
        let mut failed_upstream = vec![false; status.len()];
        let mut slots = slots;
        for &j in &graph.topo {
            let needs = &graph.needs[j];
            let ready =
                status[j] == JobStatus::Pending && needs.iter().all(|&d| status[d].is_terminal());
            // Only a job being decided, or a skipped one passing failure on, looks at its needs'
            // failures: each step passes over every job, and most have ended or must wait.
            let upstream_failure = (ready || status[j] == JobStatus::Skipped)
                && needs.iter().any(|&d| failed_upstream[d]);
            if ready {
                let all_ok = needs.iter().all(|&d| status[d] == JobStatus::Succeeded);
                let decision = decide(
                    spec.jobs[j].when.conditions(),
                    all_ok,
                    upstream_failure,
                    ctx,
                );
                match decision {
                    None => {
                        plan.actions.push(Action::Queue { job: j });
                        status[j] = JobStatus::Queued;
                    }
                    Some(reason) => {
                        plan.actions.push(Action::Skip { job: j, reason });
                        status[j] = JobStatus::Skipped;
                    }
                }
            }
            if status[j] == JobStatus::Queued
                && plan.visit_queued(
                    j,
                    &run.jobs[j],
                    spec.jobs[j].rerun_lost,
                    now_ms,
                    &mut slots,
                    run.status,
                )
            {
                status[j] = JobStatus::Running;
            }
            failed_upstream[j] =
                status[j].is_failure() || (status[j] == JobStatus::Skipped && upstream_failure);
            all_ended &= status[j].is_terminal();
        }
    }

    if all_ended {
        let final_status = if run.cancel_requested {
            RunStatus::Cancelled
        } else if status.iter().any(|s| s.is_failure()) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        plan.actions.push(Action::FinishRun {
            status: final_status,
        });
    }
    plan
}

/// Whether a pending job whose needs have all ended runs (`None`) or is skipped, and why: its
/// `when` conditions (any one suffices) against how its needs ended and the run's context.
fn decide(
    any: &[crate::spec::Condition],
    all_ok: bool,
    upstream_failure: bool,
    ctx: &RunContext,
) -> Option<SkipReason> {
    let by_status = |c: &&crate::spec::Condition| c.status_matches(all_ok, upstream_failure);
    if any.iter().filter(by_status).any(|c| c.context_matches(ctx)) {
        None
    } else if any.iter().any(|c| by_status(&c)) {
        Some(SkipReason::ConditionFalse)
    } else if all_ok {
        Some(SkipReason::NoFailure)
    } else {
        Some(SkipReason::NeedsNotSucceeded)
    }
}

/// How long a job waits before retry number `attempt` (the attempt that just failed): the
/// job's base backoff doubled per earlier retry, at most an hour.
pub fn retry_delay_ms(base_ms: u64, failed_attempt: u32) -> u64 {
    let shift = failed_attempt.saturating_sub(1).min(20);
    base_ms.saturating_mul(1u64 << shift).min(3_600_000)
}

impl RunState {
    pub fn new(jobs: usize) -> Self {
        RunState {
            status: RunStatus::Queued,
            cancel_requested: false,
            jobs: vec![JobState::new(); jobs],
            started_at_ms: None,
            finished_at_ms: None,
        }
    }

    fn set_job(&mut self, job: usize, to: JobStatus, note: Option<String>) -> Transition {
        let j = &mut self.jobs[job];
        let from = j.status;
        debug_assert!(from.can_become(to), "illegal job transition {from} -> {to}");
        j.status = to;
        // A claim holds only while its attempt waits, queued, for a slot.
        j.claimed &= to == JobStatus::Queued;
        Transition::Job {
            job,
            from,
            to,
            attempt: j.attempt,
            note,
        }
    }

    fn set_run(&mut self, to: RunStatus) -> Transition {
        let from = self.status;
        debug_assert!(from.can_become(to), "illegal run transition {from} -> {to}");
        self.status = to;
        Transition::Run { from, to }
    }

    /// Performs one action of a [`Plan`]. `Kill` changes nothing here: the job's result does.
    pub fn apply(&mut self, action: Action, now_ms: i64) -> Option<Transition> {
        match action {
            Action::StartRun => {
                self.started_at_ms.get_or_insert(now_ms);
                Some(self.set_run(RunStatus::Running))
            }
            Action::Skip { job, reason } => {
                self.jobs[job].finished_at_ms = Some(now_ms);
                Some(self.set_job(job, JobStatus::Skipped, Some(reason.describe().into())))
            }
            Action::Queue { job } => Some(self.set_job(job, JobStatus::Queued, None)),
            Action::Dispatch { job } => {
                let j = &mut self.jobs[job];
                j.started_at_ms = Some(now_ms);
                j.finished_at_ms = None;
                j.exit_code = None;
                j.not_before_ms = None;
                Some(self.set_job(job, JobStatus::Running, None))
            }
            Action::Cancel { job } => {
                self.jobs[job].finished_at_ms = Some(now_ms);
                Some(self.set_job(job, JobStatus::Cancelled, Some("run cancelled".into())))
            }
            Action::Claim { job } => {
                self.jobs[job].claimed = true;
                Some(Transition::Claimed { job })
            }
            Action::Kill { .. } => None,
            Action::FinishRun { status } => {
                self.finished_at_ms = Some(now_ms);
                Some(self.set_run(status))
            }
        }
    }

    /// Records how attempt `attempt` of `job` ended. Returns `None` (and changes nothing) when
    /// that attempt is not the one running: a result is written once, later copies are ignored.
    /// A failure with retries left goes back to `queued` with a backoff. A lost attempt (its
    /// server stopped while it ran) goes back to `queued` at once, once, without counting
    /// against the retries, unless the job says `rerun_lost: false`; lost again, it is a
    /// failure like any other. A claimed attempt (still queued) can only be lost.
    pub fn on_result(
        &mut self,
        job: usize,
        attempt: u32,
        outcome: Outcome,
        policy: RetryPolicy,
        now_ms: i64,
    ) -> Option<Transition> {
        let j = &self.jobs[job];
        let claim_lost = outcome == Outcome::Lost && j.status == JobStatus::Queued && j.claimed;
        if (j.status != JobStatus::Running && !claim_lost) || j.attempt != attempt {
            return None;
        }
        if outcome == Outcome::Lost
            && policy.rerun_lost
            && j.lost_reruns == 0
            && !self.cancel_requested
        {
            let j = &mut self.jobs[job];
            j.lost_reruns += 1;
            let note =
                format!("attempt {attempt} {LOST}; running it again (not counted against retries)");
            return Some(self.again(job, now_ms, None, now_ms, note));
        }
        let (to, exit_code, note) = match outcome {
            Outcome::Succeeded => (JobStatus::Succeeded, Some(0), None),
            Outcome::Failed { exit_code } => (JobStatus::Failed, exit_code, None),
            Outcome::TimedOut => (
                JobStatus::TimedOut,
                None,
                Some("timeout reached".to_string()),
            ),
            Outcome::Cancelled => (JobStatus::Cancelled, None, None),
            Outcome::Lost => (JobStatus::Failed, None, Some(LOST.to_string())),
        };
        let retryable = matches!(to, JobStatus::Failed | JobStatus::TimedOut)
            && !self.cancel_requested
            && (outcome != Outcome::Lost || policy.rerun_lost);
        let j = &mut self.jobs[job];
        if retryable && j.retries_used < policy.retries {
            j.retries_used += 1;
            let retry = j.retries_used;
            let delay = retry_delay_ms(policy.backoff_ms, retry);
            let why = note.unwrap_or_else(|| {
                format!(
                    "{to}{}",
                    exit_code
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default()
                )
            });
            let note = format!(
                "attempt {attempt} {why}; retry {retry} of {} in {}",
                policy.retries,
                crate::duration::format_duration_ms(delay)
            );
            return Some(self.again(job, now_ms, exit_code, now_ms + delay as i64, note));
        }
        let j = &mut self.jobs[job];
        j.exit_code = exit_code;
        j.finished_at_ms = Some(now_ms);
        Some(self.set_job(job, to, note))
    }

    /// The job's attempt ended and it goes back to `queued` as its next attempt, to be
    /// dispatched from `not_before_ms`.
    fn again(
        &mut self,
        job: usize,
        now_ms: i64,
        exit_code: Option<i32>,
        not_before_ms: i64,
        note: String,
    ) -> Transition {
        let j = &mut self.jobs[job];
        j.exit_code = exit_code;
        j.finished_at_ms = Some(now_ms);
        j.attempt += 1;
        j.not_before_ms = Some(not_before_ms);
        j.claimed = false;
        let from = j.status;
        j.status = JobStatus::Queued;
        Transition::Job {
            job,
            from,
            to: JobStatus::Queued,
            attempt: j.attempt,
            note: Some(note),
        }
    }

    /// Asks the run to stop. Returns false when it has already finished.
    pub fn request_cancel(&mut self) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        self.cancel_requested = true;
        true
    }

    /// Re-runs a finished, unsuccessful run: its failed, timed-out, cancelled and skipped jobs
    /// go back to `pending` as a new attempt; succeeded jobs keep their result.
    pub fn rerun(&mut self) -> Result<Vec<Transition>, &'static str> {
        match self.status {
            RunStatus::Failed | RunStatus::Cancelled => {}
            RunStatus::Succeeded => return Err("the run succeeded: there is nothing to re-run"),
            _ => return Err("the run has not finished yet"),
        }
        let mut out = vec![self.set_run(RunStatus::Queued)];
        self.cancel_requested = false;
        self.finished_at_ms = None;
        for i in 0..self.jobs.len() {
            if self.jobs[i].status != JobStatus::Succeeded {
                let j = &mut self.jobs[i];
                j.attempt += 1;
                j.exit_code = None;
                j.not_before_ms = None;
                j.started_at_ms = None;
                j.finished_at_ms = None;
                j.retries_used = 0;
                j.lost_reruns = 0;
                j.claimed = false;
                out.push(self.set_job(i, JobStatus::Pending, Some("re-run".into())));
            }
        }
        Ok(out)
    }
}

mod stepper;
pub use stepper::Stepper;

#[cfg(test)]
mod tests;

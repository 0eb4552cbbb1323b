//! [`Stepper`]: the step of [`super::step`], kept from one step of a run to the next so that a
//! step looks only at the jobs that can move.
//!
//! `step` passes over every job of the run, which for a run of N jobs makes N steps cost N²
//! (a 1000-job DAG: ~6 µs a step, ~6 ms a run). The stepper remembers, between steps, each
//! job's status as the plans left it, how many of each job's needs have not ended, the pending
//! jobs whose needs have all ended, the queued jobs and the running ones. A step first takes in
//! the results of the jobs it left running (the only jobs that change between steps), then
//! decides the ready jobs and dispatches the queued ones in topological order, exactly as
//! `step` would: a property test runs both side by side on random runs and compares every plan.

use super::{Action, Plan, RunState, Slots, step};
use crate::spec::{JobGraph, RunContext, RunSpec};
use crate::status::{JobStatus, RunStatus};
use std::collections::BTreeSet;

/// Steps one run, remembering what lets each step cost what changed since the last one.
///
/// Every step gets the spec and graph it was made with. The caller applies every action of a
/// plan (with [`RunState::apply`]) before the next step, and otherwise changes jobs only through [`RunState::on_result`]. Anything else the stepper
/// notices (a job it left running that is neither running nor ended nor re-queued, a finished
/// run going again after a re-run) makes it start over from the run's state; a cancelled run is
/// stepped by [`step`] itself.
#[derive(Debug, Clone)]
pub struct Stepper {
    /// Each job's place in the topological order.
    pos: Vec<usize>,
    /// Each job's status as the last plan left it.
    status: Vec<JobStatus>,
    /// How many of each job's needs have not ended.
    unmet: Vec<usize>,
    /// Whether something failed at or above each ended job (a skip passes failure on).
    failed_upstream: Vec<bool>,
    /// Pending jobs whose needs have all ended, by place.
    ready: BTreeSet<usize>,
    /// Queued jobs with no retry time, by place.
    queued: BTreeSet<usize>,
    /// Queued jobs waiting for a retry time (`not_before`), by place.
    backing_off: BTreeSet<usize>,
    /// Jobs the last plans dispatched that have not been seen ended.
    running: Vec<usize>,
    /// Jobs not ended.
    unended: usize,
    /// Some job ended as a failure.
    any_failure: bool,
    /// Built for a run that then ended, or the run was cancelled: start over if it goes again.
    stale: bool,
    /// How many times it started over (the tests check a plain run never makes it).
    pub(super) starts_over: u32,
}

impl Stepper {
    /// A stepper for `run` as it is now.
    pub fn new(graph: &JobGraph, run: &RunState) -> Stepper {
        let n = run.jobs.len();
        let mut pos = vec![0; n];
        for (p, &j) in graph.topo.iter().enumerate() {
            pos[j] = p;
        }
        let status: Vec<JobStatus> = run.jobs.iter().map(|j| j.status).collect();
        let mut failed_upstream = vec![false; n];
        for &j in &graph.topo {
            let s = status[j];
            failed_upstream[j] = s.is_failure()
                || (s == JobStatus::Skipped && graph.needs[j].iter().any(|&d| failed_upstream[d]));
        }
        let mut me = Stepper {
            unmet: (0..n)
                .map(|j| {
                    graph.needs[j]
                        .iter()
                        .filter(|&&d| !status[d].is_terminal())
                        .count()
                })
                .collect(),
            pos,
            failed_upstream,
            ready: BTreeSet::new(),
            queued: BTreeSet::new(),
            backing_off: BTreeSet::new(),
            running: Vec::new(),
            unended: status.iter().filter(|s| !s.is_terminal()).count(),
            any_failure: status.iter().any(|s| s.is_failure()),
            stale: run.status.is_terminal(),
            starts_over: 0,
            status,
        };
        for j in 0..n {
            match me.status[j] {
                JobStatus::Pending if me.unmet[j] == 0 => {
                    me.ready.insert(me.pos[j]);
                }
                JobStatus::Queued => me.enqueue(j, run),
                JobStatus::Running => me.running.push(j),
                _ => {}
            }
        }
        me
    }

    fn enqueue(&mut self, job: usize, run: &RunState) {
        if run.jobs[job].not_before_ms.is_some() {
            self.backing_off.insert(self.pos[job]);
        } else {
            self.queued.insert(self.pos[job]);
        }
    }

    /// `job` ended as `status`; `upstream_failure` is whether a need failed (for a skip).
    fn ended(&mut self, graph: &JobGraph, job: usize, status: JobStatus, upstream_failure: bool) {
        self.status[job] = status;
        self.unended -= 1;
        self.any_failure |= status.is_failure();
        self.failed_upstream[job] =
            status.is_failure() || (status == JobStatus::Skipped && upstream_failure);
        for &d in &graph.dependents[job] {
            self.unmet[d] -= 1;
            if self.unmet[d] == 0 && self.status[d] == JobStatus::Pending {
                self.ready.insert(self.pos[d]);
            }
        }
    }

    /// Takes in what happened to the jobs it left running. False if something else happened.
    fn take_in_results(&mut self, graph: &JobGraph, run: &RunState) -> bool {
        let mut i = 0;
        while i < self.running.len() {
            let j = self.running[i];
            match run.jobs[j].status {
                JobStatus::Running => i += 1,
                JobStatus::Queued => {
                    self.running.swap_remove(i);
                    self.status[j] = JobStatus::Queued;
                    self.enqueue(j, run);
                }
                s if s.is_terminal() && s != JobStatus::Skipped => {
                    self.running.swap_remove(i);
                    self.ended(graph, j, s, false);
                }
                _ => return false,
            }
        }
        true
    }

    /// The plan [`step`] would return, for the same arguments.
    pub fn step(
        &mut self,
        spec: &RunSpec,
        graph: &JobGraph,
        ctx: &RunContext,
        run: &RunState,
        now_ms: i64,
        slots: Slots,
    ) -> Plan {
        if run.status.is_terminal() || run.cancel_requested {
            // Nothing moves forward in either; the next step of a re-run starts over.
            self.stale = true;
            return step(spec, graph, ctx, run, now_ms, slots);
        }
        if self.stale || !self.take_in_results(graph, run) {
            let starts_over = self.starts_over + 1;
            *self = Stepper::new(graph, run);
            self.starts_over = starts_over;
        }
        let mut plan = Plan {
            actions: Vec::new(),
            wake_at_ms: None,
            starved: false,
        };
        let mut slots = slots;
        let mut cursor = 0;
        // Where the slots (and claims) ran out: queued jobs from there on are summed up, not
        // visited.
        let mut out_of_slots_at = None;
        loop {
            if !slots.any() && out_of_slots_at.is_none() {
                out_of_slots_at = Some(cursor);
            }
            let next_ready = self.ready.range(cursor..).next().copied();
            let next_queued = if slots.any() {
                let a = self.queued.range(cursor..).next().copied();
                let b = self.backing_off.range(cursor..).next().copied();
                a.into_iter().chain(b).min()
            } else {
                None
            };
            let Some(p) = next_ready.into_iter().chain(next_queued).min() else {
                break;
            };
            cursor = p + 1;
            let j = graph.topo[p];
            if self.ready.remove(&p) {
                self.decide(spec, graph, ctx, run, j, &mut plan);
            }
            if self.status[j] == JobStatus::Queued
                && plan.visit_queued(
                    j,
                    &run.jobs[j],
                    spec.jobs[j].rerun_lost,
                    now_ms,
                    &mut slots,
                    run.status,
                )
            {
                self.queued.remove(&p);
                self.backing_off.remove(&p);
                self.status[j] = JobStatus::Running;
                self.running.push(j);
            }
        }
        if let Some(from) = out_of_slots_at {
            // As `step` visits them: due ones are starved, others say when to wake.
            if self.queued.range(from..).next().is_some() {
                plan.starved = true;
            }
            for &p in self.backing_off.range(from..) {
                let j = graph.topo[p];
                let none = &mut Slots::default();
                plan.visit_queued(j, &run.jobs[j], false, now_ms, none, run.status);
            }
        }
        if self.unended == 0 {
            self.stale = true;
            plan.actions.push(Action::FinishRun {
                status: if self.any_failure {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                },
            });
        }
        plan
    }

    /// Queues or skips a pending job whose needs have all ended, as `step` decides it.
    fn decide(
        &mut self,
        spec: &RunSpec,
        graph: &JobGraph,
        ctx: &RunContext,
        run: &RunState,
        j: usize,
        plan: &mut Plan,
    ) {
        let needs = &graph.needs[j];
        let upstream_failure = needs.iter().any(|&d| self.failed_upstream[d]);
        let all_ok = needs
            .iter()
            .all(|&d| self.status[d] == JobStatus::Succeeded);
        let decision = super::decide(
            spec.jobs[j].when.conditions(),
            all_ok,
            upstream_failure,
            ctx,
        );
        match decision {
            None => {
                plan.actions.push(Action::Queue { job: j });
                self.status[j] = JobStatus::Queued;
                self.enqueue(j, run);
            }
            Some(reason) => {
                plan.actions.push(Action::Skip { job: j, reason });
                self.ended(graph, j, JobStatus::Skipped, upstream_failure);
            }
        }
    }
}

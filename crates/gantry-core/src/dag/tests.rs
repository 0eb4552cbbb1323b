//! The step checked against a brute-force oracle on random DAGs, plus examples.

use super::*;
use crate::spec::{Condition, ExecutorKind, JobSpec, StatusCondition, When};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    needs: Vec<Vec<usize>>,
    status_cond: Vec<(bool, bool)>,
    on_push_only: Vec<bool>,
    /// Outcome of each attempt (true = success); retries = len - 1.
    attempts: Vec<Vec<bool>>,
    max_parallel: usize,
    /// How many queued attempts may be claimed ahead of free slots.
    ahead: usize,
    /// Each job's `rerun_lost` (only such jobs are claimed).
    rerun_lost: Vec<bool>,
    /// Picks which running job finishes next.
    picks: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=9)
        .prop_flat_map(|n| {
            let needs = (0..n)
                .map(|j| proptest::sample::subsequence((0..j).collect::<Vec<_>>(), 0..=j.min(3)))
                .collect::<Vec<_>>();
            let cond = prop::collection::vec(
                prop_oneof![Just((true, false)), Just((false, true)), Just((true, true))],
                n,
            );
            let push = prop::collection::vec(prop::bool::weighted(0.15), n);
            let attempts =
                prop::collection::vec(prop::collection::vec(prop::bool::weighted(0.7), 1..=3), n);
            let rerun_lost = prop::collection::vec(prop::bool::weighted(0.8), n);
            (
                needs,
                cond,
                push,
                attempts,
                (1usize..=3, 0usize..=3),
                rerun_lost,
                prop::collection::vec(0usize..100, 64),
            )
        })
        .prop_map(
            |(
                needs,
                status_cond,
                on_push_only,
                attempts,
                (max_parallel, ahead),
                rerun_lost,
                picks,
            )| {
                Case {
                    needs,
                    status_cond,
                    on_push_only,
                    attempts,
                    max_parallel,
                    ahead,
                    rerun_lost,
                    picks,
                }
            },
        )
}

fn spec_of(c: &Case) -> RunSpec {
    let jobs = (0..c.needs.len())
        .map(|j| JobSpec {
            name: format!("j{j}"),
            run: vec!["true".into()],
            needs: c.needs[j].iter().map(|d| format!("j{d}")).collect(),
            when: When {
                any: vec![Condition {
                    status: StatusCondition {
                        success: c.status_cond[j].0,
                        failure: c.status_cond[j].1,
                    },
                    event: if c.on_push_only[j] {
                        vec!["push".into()]
                    } else {
                        vec![]
                    },
                    ..Condition::default()
                }],
            },
            timeout_ms: 1000,
            retries: (c.attempts[j].len() - 1) as u32,
            retry_backoff_ms: 10,
            rerun_lost: c.rerun_lost[j],
            env: Default::default(),
            secrets: vec![],
            image: None,
            executor: ExecutorKind::Local,
            runs_on: Vec::new(),
            source: None,
            container: None,
            aws: None,
            artifacts: vec![],
            cache: None,
        })
        .collect();
    RunSpec {
        name: "prop".into(),
        jobs,
        ..RunSpec::default()
    }
}

/// What each job must end as, computed directly from the definitions (no stepping).
fn oracle(c: &Case) -> (Vec<JobStatus>, RunStatus) {
    let n = c.needs.len();
    let mut out = vec![JobStatus::Pending; n];
    let mut fail_flag = vec![false; n];
    for j in 0..n {
        let needs = &c.needs[j];
        let all_ok = needs.iter().all(|&d| out[d] == JobStatus::Succeeded);
        let upstream = needs.iter().any(|&d| fail_flag[d]);
        let (s, f) = c.status_cond[j];
        let by_status = match (s, f) {
            (true, true) => true, // always
            (true, false) => all_ok,
            (false, true) => upstream,
            (false, false) => unreachable!("validation requires a status"),
        };
        let runs = by_status && !c.on_push_only[j]; // the context's event is `manual`
        out[j] = if !runs {
            JobStatus::Skipped
        } else if c.attempts[j].iter().any(|ok| *ok) {
            JobStatus::Succeeded
        } else {
            JobStatus::Failed
        };
        fail_flag[j] = out[j].is_failure() || (out[j] == JobStatus::Skipped && upstream);
    }
    let run = if out.iter().any(|s| s.is_failure()) {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    (out, run)
}

struct Sim {
    spec: RunSpec,
    graph: JobGraph,
    ctx: RunContext,
    run: RunState,
    now: i64,
    history: Vec<Transition>,
    /// Stepped side by side with `step`: every plan must be the same.
    stepper: Stepper,
    /// Claims allowed ahead of free slots, in all.
    ahead: usize,
}

impl Sim {
    fn new(c: &Case) -> Sim {
        let spec = spec_of(c);
        let graph = JobGraph::new(&spec);
        let run = RunState::new(spec.jobs.len());
        Sim {
            stepper: Stepper::new(&graph, &run),
            spec,
            graph,
            ctx: RunContext {
                event: Some("manual".into()),
                ..RunContext::default()
            },
            run,
            now: 0,
            history: vec![],
            ahead: c.ahead,
        }
    }

    fn claimed(&self) -> usize {
        self.run.jobs.iter().filter(|j| j.claimed).count()
    }

    /// The slots a step may fill: the free ones, and the claims not held yet.
    fn slots(&self, max_parallel: usize) -> Slots {
        Slots {
            free: max_parallel - self.running().len(),
            ahead: self.ahead.saturating_sub(self.claimed()),
        }
    }

    fn running(&self) -> Vec<usize> {
        (0..self.run.jobs.len())
            .filter(|&j| self.run.jobs[j].status == JobStatus::Running)
            .collect()
    }

    /// One step, applied, with invariant checks; then the step must be a no-op.
    fn step(&mut self, max_parallel: usize) -> Plan {
        let slots = self.slots(max_parallel);
        let plan = step(
            &self.spec,
            &self.graph,
            &self.ctx,
            &self.run,
            self.now,
            slots,
        );
        let kept = self.stepper.step(
            &self.spec,
            &self.graph,
            &self.ctx,
            &self.run,
            self.now,
            slots,
        );
        assert_eq!(kept, plan, "the stepper's plan differs from the step's");
        for &a in &plan.actions {
            if let Action::Dispatch { job } = a {
                for &d in &self.graph.needs[job] {
                    assert!(
                        self.run.jobs[d].status.is_terminal(),
                        "j{job} dispatched before need j{d} ended"
                    );
                }
            }
            if let Action::Claim { job } = a {
                let j = &self.run.jobs[job];
                assert!(
                    j.status == JobStatus::Queued && !j.claimed,
                    "j{job} claimed as {}",
                    j.status
                );
                assert!(
                    j.not_before_ms.is_none_or(|t| t <= self.now),
                    "j{job} claimed early"
                );
                assert!(
                    self.spec.jobs[job].rerun_lost,
                    "j{job} says rerun_lost: false"
                );
                assert_eq!(j.lost_reruns, 0, "j{job} already ran a lost attempt again");
            }
            if let Some(t) = self.run.apply(a, self.now) {
                self.history.push(t);
            }
        }
        assert!(
            self.running().len() <= max_parallel,
            "more than {max_parallel} running"
        );
        assert!(self.claimed() <= self.ahead, "more claims than allowed");
        assert!(
            self.run
                .jobs
                .iter()
                .all(|j| !j.claimed || j.status == JobStatus::Queued),
            "a claim outlived its queued attempt"
        );
        let due_left = self.run.jobs.iter().any(|j| {
            j.status == JobStatus::Queued && j.not_before_ms.is_none_or(|t| t <= self.now)
        });
        assert_eq!(
            plan.starved, due_left,
            "starved must say whether due jobs were left for lack of a slot"
        );
        let none = Slots {
            free: 0,
            ahead: self.ahead.saturating_sub(self.claimed()),
        };
        let again = step(
            &self.spec,
            &self.graph,
            &self.ctx,
            &self.run,
            self.now,
            none,
        );
        let kept = self.stepper.step(
            &self.spec,
            &self.graph,
            &self.ctx,
            &self.run,
            self.now,
            none,
        );
        assert_eq!(kept, again, "the stepper's plan differs from the step's");
        assert!(
            again
                .actions
                .iter()
                .all(|a| matches!(a, Action::Kill { .. })),
            "step not idempotent: {again:?}"
        );
        plan
    }

    fn finish(&mut self, job: usize, ok: bool) {
        let spec = &self.spec.jobs[job];
        let attempt = self.run.jobs[job].attempt;
        let outcome = if ok {
            Outcome::Succeeded
        } else {
            Outcome::Failed { exit_code: Some(1) }
        };
        let t = self
            .run
            .on_result(job, attempt, outcome, RetryPolicy::of(spec), self.now);
        assert!(t.is_some());
        // A second copy of the same result is ignored.
        assert!(
            self.run
                .on_result(job, attempt, outcome, RetryPolicy::of(spec), self.now)
                .is_none()
        );
        self.history.extend(t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn step_matches_oracle(c in case()) {
        let mut sim = Sim::new(&c);
        let mut picks = c.picks.iter().cycle();
        for _ in 0..10_000 {
            let plan = sim.step(c.max_parallel);
            if sim.run.status.is_terminal() {
                break;
            }
            let running = sim.running();
            if running.is_empty() {
                // Only a retry backoff can leave nothing running in an unfinished run.
                let wake = plan.wake_at_ms.expect("stuck: nothing running and nothing to wait for");
                sim.now = wake;
                continue;
            }
            let job = running[picks.next().unwrap() % running.len()];
            let attempt = sim.run.jobs[job].attempt as usize;
            let ok = c.attempts[job][attempt - 1];
            sim.now += 1;
            sim.finish(job, ok);
        }
        prop_assert_eq!(sim.stepper.starts_over, 0, "the stepper followed the run without starting over");
        let (want_jobs, want_run) = oracle(&c);
        let got: Vec<JobStatus> = sim.run.jobs.iter().map(|j| j.status).collect();
        prop_assert_eq!(got, want_jobs);
        prop_assert_eq!(sim.run.status, want_run);
        // Every job reached exactly one terminal state, once.
        for j in 0..c.needs.len() {
            let terminal = sim.history.iter().filter(|t| matches!(t, Transition::Job { job, to, .. } if *job == j && to.is_terminal())).count();
            prop_assert_eq!(terminal, 1, "job j{} ended {} times", j, terminal);
        }
    }

    #[test]
    fn cancel_ends_everything(c in case(), cancel_after in 0usize..6) {
        let mut sim = Sim::new(&c);
        let mut picks = c.picks.iter().cycle();
        let mut steps = 0;
        while !sim.run.status.is_terminal() && steps < 10_000 {
            if steps == cancel_after {
                sim.run.request_cancel();
            }
            steps += 1;
            let plan = sim.step(c.max_parallel);
            if sim.run.cancel_requested {
                let moved = plan.actions.iter().any(|a| matches!(a, Action::Queue { .. } | Action::Dispatch { .. }));
                prop_assert!(!moved, "queued or dispatched after cancel: {:?}", plan);
            }
            let running = sim.running();
            if running.is_empty() {
                if let Some(w) = plan.wake_at_ms { sim.now = w; }
                continue;
            }
            let job = running[picks.next().unwrap() % running.len()];
            let attempt = sim.run.jobs[job].attempt;
            sim.now += 1;
            let spec = &sim.spec.jobs[job];
            let outcome = if sim.run.cancel_requested { Outcome::Cancelled } else if c.attempts[job][attempt as usize - 1] { Outcome::Succeeded } else { Outcome::Failed { exit_code: Some(2) } };
            let t = sim.run.on_result(job, attempt, outcome, RetryPolicy::of(spec), sim.now);
            sim.history.extend(t);
        }
        prop_assert!(sim.run.status.is_terminal());
        prop_assert!(sim.run.jobs.iter().all(|j| j.status.is_terminal()));
        if cancel_after < steps && sim.run.cancel_requested {
            prop_assert_eq!(sim.run.status, RunStatus::Cancelled);
        }
    }
}

fn chain(conds: &[(bool, bool)]) -> Case {
    let n = conds.len();
    Case {
        needs: (0..n)
            .map(|j| if j == 0 { vec![] } else { vec![j - 1] })
            .collect(),
        status_cond: conds.to_vec(),
        on_push_only: vec![false; n],
        attempts: vec![vec![true]; n],
        max_parallel: 2,
        ahead: 2,
        rerun_lost: vec![true; n],
        picks: vec![0],
    }
}

#[test]
fn failure_handler_runs_after_a_failed_need_and_run_still_fails() {
    let mut c = chain(&[(true, false), (true, false), (false, true)]);
    c.needs[2] = vec![0, 1];
    c.attempts[0] = vec![false];
    let (jobs, run) = oracle(&c);
    assert_eq!(
        jobs,
        vec![JobStatus::Failed, JobStatus::Skipped, JobStatus::Succeeded]
    );
    assert_eq!(run, RunStatus::Failed);
}

#[test]
fn always_jobs_run_after_a_need_skipped_by_its_condition() {
    // deploy is skipped by its condition; cleanup ([success, failure]) still runs, notify
    // ([success]) does not, and the run succeeds.
    let mut c = chain(&[(true, false), (true, true), (true, false)]);
    c.on_push_only[0] = true;
    c.needs[2] = vec![0];
    let (jobs, run) = oracle(&c);
    assert_eq!(
        jobs,
        vec![JobStatus::Skipped, JobStatus::Succeeded, JobStatus::Skipped]
    );
    assert_eq!(run, RunStatus::Succeeded);
    let mut sim = Sim::new(&c);
    while !sim.run.status.is_terminal() {
        sim.step(2);
        if let Some(&j) = sim.running().first() {
            sim.finish(j, true);
        }
    }
    let got: Vec<JobStatus> = sim.run.jobs.iter().map(|j| j.status).collect();
    assert_eq!(got, jobs);
}

#[test]
fn retry_waits_with_exponential_backoff() {
    assert_eq!(retry_delay_ms(1000, 1), 1000);
    assert_eq!(retry_delay_ms(1000, 2), 2000);
    assert_eq!(retry_delay_ms(1000, 4), 8000);
    assert_eq!(retry_delay_ms(1000, 40), 3_600_000);

    let mut c = chain(&[(true, false)]);
    c.attempts[0] = vec![false, true];
    let mut sim = Sim::new(&c);
    sim.step(1);
    sim.now = 100;
    sim.finish(0, false);
    assert_eq!(sim.run.jobs[0].status, JobStatus::Queued);
    assert_eq!(sim.run.jobs[0].attempt, 2);
    let plan = sim.step(1);
    assert_eq!(plan.actions, vec![]);
    assert_eq!(plan.wake_at_ms, Some(110));
    sim.now = 110;
    let plan = sim.step(1);
    assert_eq!(plan.actions, vec![Action::Dispatch { job: 0 }]);
}

#[test]
fn rerun_keeps_succeeded_jobs() {
    let mut c = chain(&[(true, false), (true, false), (true, false)]);
    c.attempts[1] = vec![false];
    let mut sim = Sim::new(&c);
    while !sim.run.status.is_terminal() {
        sim.step(1);
        if let Some(&j) = sim.running().first() {
            let ok = c.attempts[j][0];
            sim.finish(j, ok);
        }
    }
    assert_eq!(sim.run.status, RunStatus::Failed);
    let t = sim.run.rerun().unwrap();
    assert_eq!(t.len(), 3, "run + two jobs: {t:?}");
    assert_eq!(sim.run.jobs[0].status, JobStatus::Succeeded);
    assert_eq!(sim.run.jobs[1].attempt, 2);
    let plan = sim.step(2);
    assert_eq!(
        plan.actions,
        vec![
            Action::Queue { job: 1 },
            Action::StartRun,
            Action::Dispatch { job: 1 }
        ]
    );
    assert!(
        RunState {
            status: RunStatus::Succeeded,
            ..RunState::new(1)
        }
        .rerun()
        .is_err()
    );
}

/// A run of one job, its first attempt running.
fn running_job() -> RunState {
    let mut run = RunState::new(1);
    run.apply(Action::StartRun, 0);
    run.apply(Action::Queue { job: 0 }, 0);
    run.apply(Action::Dispatch { job: 0 }, 0);
    run
}

/// Ends the running attempt of job 0 with `outcome`; dispatches the next one if it is queued.
fn end(run: &mut RunState, outcome: Outcome, policy: RetryPolicy, now: i64) -> Transition {
    let attempt = run.jobs[0].attempt;
    let t = run.on_result(0, attempt, outcome, policy, now).unwrap();
    if run.jobs[0].status == JobStatus::Queued {
        run.apply(Action::Dispatch { job: 0 }, now);
    }
    t
}

#[test]
fn a_lost_attempt_runs_again_once_without_counting_against_retries() {
    let policy = RetryPolicy {
        retries: 1,
        backoff_ms: 10,
        rerun_lost: true,
    };
    let mut run = running_job();
    // Lost: queued again at once as attempt 2, no retry used.
    let t = end(&mut run, Outcome::Lost, policy, 5);
    let Transition::Job { to, note, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!(*to, JobStatus::Queued);
    assert!(
        note.as_deref()
            .unwrap()
            .contains("not counted against retries")
    );
    assert_eq!(run.jobs[0].attempt, 2);
    assert_eq!((run.jobs[0].retries_used, run.jobs[0].lost_reruns), (0, 1));
    // Its one retry is still there for a failure.
    end(&mut run, Outcome::Failed { exit_code: Some(1) }, policy, 6);
    assert_eq!(run.jobs[0].attempt, 3);
    assert_eq!(run.jobs[0].retries_used, 1);
    // Lost again: the free re-run was used and so were the retries: the job fails, saying why.
    let t = end(&mut run, Outcome::Lost, policy, 7);
    assert_eq!(run.jobs[0].status, JobStatus::Failed);
    let Transition::Job { note, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!(note.as_deref(), Some(LOST));
}

#[test]
fn a_second_lost_attempt_counts_against_retries() {
    let policy = RetryPolicy {
        retries: 1,
        backoff_ms: 10,
        rerun_lost: true,
    };
    let mut run = running_job();
    end(&mut run, Outcome::Lost, policy, 1);
    end(&mut run, Outcome::Lost, policy, 2);
    assert_eq!(run.jobs[0].status, JobStatus::Running);
    assert_eq!(run.jobs[0].attempt, 3);
    assert_eq!((run.jobs[0].retries_used, run.jobs[0].lost_reruns), (1, 1));
}

#[test]
fn a_job_that_says_rerun_lost_false_fails_when_lost_even_with_retries() {
    let policy = RetryPolicy {
        retries: 3,
        backoff_ms: 10,
        rerun_lost: false,
    };
    let mut run = running_job();
    let t = end(&mut run, Outcome::Lost, policy, 1);
    assert_eq!(run.jobs[0].status, JobStatus::Failed);
    assert_eq!(run.jobs[0].attempt, 1);
    let Transition::Job { note, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!(
        note.as_deref(),
        Some("lost: its server or agent stopped while it ran")
    );
}

#[test]
fn a_rerun_starts_the_retry_count_over() {
    let policy = RetryPolicy {
        retries: 1,
        backoff_ms: 10,
        rerun_lost: true,
    };
    let mut run = running_job();
    end(&mut run, Outcome::Failed { exit_code: Some(1) }, policy, 1);
    end(&mut run, Outcome::Failed { exit_code: Some(1) }, policy, 2);
    run.apply(
        Action::FinishRun {
            status: RunStatus::Failed,
        },
        3,
    );
    assert_eq!(run.jobs[0].attempt, 2);
    run.rerun().unwrap();
    run.apply(Action::Queue { job: 0 }, 4);
    run.apply(Action::StartRun, 4);
    run.apply(Action::Dispatch { job: 0 }, 4);
    assert_eq!(run.jobs[0].attempt, 3);
    // The re-run's first attempt fails: its one retry follows.
    end(&mut run, Outcome::Failed { exit_code: Some(1) }, policy, 5);
    assert_eq!(run.jobs[0].status, JobStatus::Running);
    assert_eq!(run.jobs[0].attempt, 4);
}

#[test]
fn a_claimed_attempt_can_only_be_lost_and_then_runs_again_once() {
    let policy = RetryPolicy {
        retries: 0,
        backoff_ms: 10,
        rerun_lost: true,
    };
    let mut run = RunState::new(1);
    run.apply(Action::StartRun, 0);
    run.apply(Action::Queue { job: 0 }, 0);
    assert_eq!(
        run.apply(Action::Claim { job: 0 }, 0),
        Some(Transition::Claimed { job: 0 })
    );
    assert!(run.jobs[0].claimed);
    // Nothing but a loss ends a claimed attempt: it has not been seen running.
    assert!(run.on_result(0, 1, Outcome::Succeeded, policy, 1).is_none());
    // Lost (the server stopped; it may have started): attempt 2, queued, unclaimed.
    let t = run.on_result(0, 1, Outcome::Lost, policy, 2).unwrap();
    assert!(matches!(
        t,
        Transition::Job {
            from: JobStatus::Queued,
            to: JobStatus::Queued,
            ..
        }
    ));
    assert_eq!(run.jobs[0].attempt, 2);
    assert!(!run.jobs[0].claimed);
    // Claimed and lost again: the free re-run is used, so it fails from queued, saying why.
    run.apply(Action::Claim { job: 0 }, 3);
    let t = run.on_result(0, 2, Outcome::Lost, policy, 4).unwrap();
    let Transition::Job { from, to, note, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!((*from, *to), (JobStatus::Queued, JobStatus::Failed));
    assert_eq!(note.as_deref(), Some(LOST));
    assert!(!run.jobs[0].claimed);
}

#[test]
fn a_dispatch_ends_the_claim_and_claims_go_only_to_due_jobs_that_may_rerun() {
    let c = Case {
        needs: vec![vec![], vec![], vec![], vec![]],
        status_cond: vec![(true, false); 4],
        on_push_only: vec![false; 4],
        attempts: vec![vec![true]; 4],
        max_parallel: 1,
        ahead: 2,
        rerun_lost: vec![true, false, true, true],
        picks: vec![0],
    };
    let mut sim = Sim::new(&c);
    let plan = sim.step(1);
    // j0 goes; j1 may not be claimed (a lost attempt of it must not run again), j2 and j3 are.
    assert!(plan.actions.contains(&Action::Dispatch { job: 0 }));
    assert!(plan.actions.contains(&Action::Claim { job: 2 }));
    assert!(plan.actions.contains(&Action::Claim { job: 3 }));
    assert!(!plan.actions.contains(&Action::Claim { job: 1 }));
    sim.finish(0, true);
    let plan = sim.step(1);
    // In topological order j1 goes first; the claims stay, and no more are made.
    assert!(plan.actions.contains(&Action::Dispatch { job: 1 }));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Claim { .. }))
    );
    sim.finish(1, true);
    sim.step(1);
    assert_eq!(sim.run.jobs[2].status, JobStatus::Running);
    assert!(!sim.run.jobs[2].claimed);
    assert!(sim.run.jobs[3].claimed);
}

//! What the fuzz targets share: what Gantry does with a spec once it parses (`exercise_spec`),
//! checked for the properties every valid spec must have.

use gantry_core::dag::{Action, Outcome, RetryPolicy, RunState, Slots, Stepper, step};
use gantry_core::spec::{RunContext, RunSpec, check_sources};

/// Clone URL prefixes, as the server's default.
pub fn allowed_prefixes() -> Vec<String> {
    vec!["https://github.com/".to_string()]
}

/// The contexts a run is started in: a push to a branch, a tag, a pull request from a fork, a
/// webhook, an API call; and pushes whose branch, tag and changed files are the spec's own
/// commands, so that the fuzzer writes both sides of every glob the filters and `when:` match.
pub fn contexts(spec: &RunSpec) -> Vec<(RunContext, Option<&'static str>)> {
    let push = RunContext {
        event: Some("push".into()),
        branch: Some("release/2024/feature-login-page".into()),
        repo: Some("acme/web".into()),
        sha: Some("6113728f27ae82c7b1a177c8d03f9e96e0adf246".into()),
        changed_files: Some(vec![
            "src/app/login/page.rs".into(),
            "docs/README.md".into(),
        ]),
        ..RunContext::default()
    };
    let tag = RunContext {
        event: Some("push".into()),
        tag: Some("v1.2.3".into()),
        repo: Some("acme/web".into()),
        ..RunContext::default()
    };
    let pr = RunContext {
        event: Some("pull_request".into()),
        branch: Some("main".into()),
        repo: Some("acme/web".into()),
        pr: Some(42),
        fork: true,
        changed_files: None,
        ..RunContext::default()
    };
    let commands: Vec<String> = spec.jobs.iter().flat_map(|j| j.run.clone()).collect();
    let own_branch = RunContext {
        event: Some("push".into()),
        branch: commands.first().cloned(),
        repo: Some("acme/web".into()),
        changed_files: Some(commands.clone()),
        ..RunContext::default()
    };
    let own_tag = RunContext {
        event: Some("push".into()),
        tag: commands.last().cloned(),
        repo: Some("acme/web".into()),
        ..RunContext::default()
    };
    vec![
        (push, None),
        (tag, None),
        (own_branch, None),
        (own_tag, None),
        (pr, Some("synchronize")),
        (RunContext::of_event("webhook"), None),
        (RunContext::of_event("api"), None),
    ]
}

/// Everything a run does with a valid spec, cheaply: its graph (acyclic, every job after its
/// needs), the JSON it is stored as (reads back equal), its sources, triggers, concurrency
/// group and `when` conditions in each context, and a run driven to its end by the engine's
/// stepper (checked plan by plan against the plain step), with outcomes taken from `seed`.
pub fn exercise_spec(spec: &RunSpec, seed: &[u8]) {
    let n = spec.jobs.len();
    let graph = spec.graph();
    assert_eq!(graph.needs.len(), n);
    assert_eq!(graph.dependents.len(), n);
    assert_eq!(graph.topo.len(), n, "a valid spec's graph is acyclic");
    let mut place = vec![usize::MAX; n];
    for (p, &j) in graph.topo.iter().enumerate() {
        assert_eq!(
            place[j],
            usize::MAX,
            "job {j} twice in the topological order"
        );
        place[j] = p;
    }
    for j in 0..n {
        for &d in &graph.needs[j] {
            assert!(place[d] < place[j], "job {j} comes before its need {d}");
        }
    }

    let stored = serde_json::to_string(spec).expect("a valid spec serialises");
    let back: RunSpec = serde_json::from_str(&stored).expect("a stored spec reads back");
    assert_eq!(&back, spec, "the stored spec reads back as it was");

    let _ = check_sources(spec, &allowed_prefixes()).map_err(|p| p.to_string());

    let contexts = contexts(spec);
    for (ctx, action) in &contexts {
        if let Some(on) = &spec.on {
            let _ = on.accepts(ctx, *action);
        }
        if let Some(c) = &spec.concurrency {
            let _ = c.group_key(&spec.name, ctx);
        }
        for job in &spec.jobs {
            for c in job.when.conditions() {
                let _ = c.context_matches(ctx);
            }
        }
    }

    // A run, for specs small enough to run many times a second.
    if n <= 64 {
        let pick = seed.first().copied().unwrap_or(0) as usize;
        run_to_end(spec, &contexts[pick % contexts.len()].0, seed);
    }
}

/// Drives a run of `spec` as the orchestrator does: step, apply the plan, report a result for
/// every job it dispatched (taken from `seed`), wake for retries; maybe cancel, maybe re-run.
/// The run must end, and each plan must be the one the plain step makes.
fn run_to_end(spec: &RunSpec, ctx: &RunContext, seed: &[u8]) {
    let graph = spec.graph();
    let n = spec.jobs.len();
    let mut bytes = seed.iter().copied().cycle().skip(1);
    let mut next = move || bytes.next().unwrap_or(0);
    let free = 1 + (next() % 4) as usize;
    // Claims allowed ahead of free slots.
    let claims = (next() % 3) as usize;
    let mut run = RunState::new(n);
    let mut stepper = Stepper::new(graph, &run);
    let mut now: i64 = 1_700_000_000_000;
    let mut reruns = 0;
    // Each job runs at most 1 + retries (at most 10) + 1 lost attempt, in the run and its
    // re-run, each attempt taking at most a few steps (queue and dispatch, result, backoff).
    let bound = (n + 1) * 2 * 12 * 3 + 10;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(
            steps <= bound,
            "the run did not end in {bound} steps: {run:?}"
        );
        let held = run.jobs.iter().filter(|j| j.claimed).count();
        let slots = Slots {
            free,
            ahead: claims.saturating_sub(held),
        };
        let plan = stepper.step(spec, graph, ctx, &run, now, slots);
        let plain = step(spec, graph, ctx, &run, now, slots);
        assert_eq!(plan, plain, "the stepper and the step disagree");
        let mut dispatched = Vec::new();
        for action in &plan.actions {
            run.apply(*action, now);
            if let Action::Dispatch { job } = action {
                dispatched.push(*job);
            }
        }
        if run.status.is_terminal() {
            if reruns == 0 && next() % 2 == 0 && run.rerun().is_ok() {
                reruns += 1;
                continue;
            }
            return;
        }
        if next() % 16 == 0 {
            run.request_cancel();
        }
        let running: Vec<usize> = (0..n)
            .filter(|&j| run.jobs[j].status == gantry_core::JobStatus::Running)
            .collect();
        if running.is_empty() && plan.actions.is_empty() {
            let wake = plan
                .wake_at_ms
                .unwrap_or_else(|| panic!("the run is stuck: {run:?}"));
            assert!(wake > now, "woken for a time already past");
            now = wake;
            continue;
        }
        now += 1 + (next() % 8) as i64 * 1000;
        // Now and then the server stops: claimed attempts (still queued) are lost too.
        if next() % 32 == 0 {
            let claimed: Vec<usize> = (0..n).filter(|&j| run.jobs[j].claimed).collect();
            for job in claimed {
                let attempt = run.jobs[job].attempt;
                let policy = RetryPolicy::of(&spec.jobs[job]);
                assert!(
                    run.on_result(job, attempt, Outcome::Lost, policy, now)
                        .is_some(),
                    "a claimed attempt's loss was ignored"
                );
            }
            // As the engine adopts a run after a crash: a stepper made from the state.
            stepper = Stepper::new(graph, &run);
        }
        for job in running {
            let outcome = match next() % 8 {
                0..=3 => Outcome::Succeeded,
                4 => Outcome::Failed { exit_code: Some(1) },
                5 => Outcome::Failed { exit_code: None },
                6 => Outcome::TimedOut,
                _ => Outcome::Lost,
            };
            let outcome = if run.cancel_requested && next() % 2 == 0 {
                Outcome::Cancelled
            } else {
                outcome
            };
            let attempt = run.jobs[job].attempt;
            let policy = RetryPolicy::of(&spec.jobs[job]);
            assert!(
                run.on_result(job, attempt, outcome, policy, now).is_some(),
                "the running attempt's result was ignored"
            );
        }
    }
}

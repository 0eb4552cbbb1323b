use super::*;

fn ecs() -> EcsDef {
    EcsDef {
        cluster: "jobs".into(),
        task_definition: "runner:3".into(),
        container: "main".into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec![],
        assign_public_ip: false,
        launch_type: "FARGATE".into(),
        log_group: Some("/ecs/runner".into()),
        log_stream_prefix: Some("jobs".into()),
        region: None,
    }
}

#[test]
fn settings_are_checked_naming_each_field() {
    let good = ExecutorsDef {
        ecs: Some(ecs()),
        ..Default::default()
    };
    assert!(good.check().is_empty(), "{:?}", good.check());
    let bad = ExecutorsDef {
        ecs: Some(EcsDef {
            cluster: " ".into(),
            launch_type: "SPOT".into(),
            subnets: vec!["net-1".into()],
            security_groups: vec!["group".into()],
            log_group: None,
            ..ecs()
        }),
        codebuild: Some(CodebuildDef {
            project: "".into(),
            log_group: None,
            region: None,
        }),
        lambda: Some(LambdaDef {
            function: "".into(),
            region: None,
        }),
        poll: Some("soon".into()),
    };
    let p = bad.check().join("\n");
    for want in [
        "executors.poll: `soon`",
        "executors.ecs.cluster: is empty",
        "executors.ecs.launch_type: `SPOT`",
        "executors.ecs.subnets: `net-1`",
        "executors.ecs.security_groups: `group`",
        "executors.ecs.log_stream_prefix: needs",
        "executors.codebuild.project: is empty",
        "executors.lambda.function: is empty",
    ] {
        assert!(p.contains(want), "{want} in\n{p}");
    }
    let fargate_without_subnets = ExecutorsDef {
        ecs: Some(EcsDef {
            subnets: vec![],
            ..ecs()
        }),
        ..Default::default()
    };
    assert!(fargate_without_subnets.check()[0].contains("at least one subnet"));
    let toml_unknown: Result<ExecutorsDef, _> = serde_json::from_str(
        r#"{"ecs": {"cluster": "c", "task_definition": "t", "container": "m", "cpu": 1}}"#,
    );
    assert!(toml_unknown.is_err(), "unknown fields are refused");
    assert_eq!(ExecutorsDef::default().poll_ms(), 5_000);
}

#[test]
fn tags_round_trip_and_name_an_attempt() {
    let t = AttemptTags {
        run_id: "01KBV".into(),
        job: "build".into(),
        attempt: 2,
        owner: "node-x".into(),
    };
    let pairs = t.pairs();
    let back = AttemptTags::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    assert_eq!(back, Some(t.clone()));
    assert_eq!(AttemptTags::from_pairs([(TAG_RUN, "r")]), None);
    assert_eq!(AttemptTags::env_name(TAG_ATTEMPT), "GANTRY_TAG_ATTEMPT");
    let again = t.idempotency_token();
    assert_eq!(again.len(), 32);
    assert_eq!(again, t.idempotency_token());
    let next = AttemptTags { attempt: 3, ..t };
    assert_ne!(again, next.idempotency_token());
}

#[test]
fn commands_become_a_script_and_a_buildspec() {
    let cmds = vec!["echo \"hi\"".to_string(), "make test".to_string()];
    assert_eq!(script(&cmds), "set -e\necho \"hi\"\nmake test\n");
    let b = buildspec(&cmds);
    assert!(b.starts_with("version: 0.2\nphases:\n  build:\n    commands:\n      - \"set -e\\necho \\\"hi\\\"\\nmake test\\n\"\n"), "{b}");
}

#[test]
fn ends_become_outcomes() {
    assert_eq!(task_outcome(Some(0), None, "").0, Outcome::Succeeded);
    let (o, why) = task_outcome(Some(3), Some("EssentialContainerExited"), "exited");
    assert_eq!(o, Outcome::Failed { exit_code: Some(3) });
    assert!(why.contains("exited with 3"));
    let (o, why) = task_outcome(None, Some("TaskFailedToStart"), "CannotPullContainerError");
    assert_eq!(o, Outcome::Failed { exit_code: None });
    assert!(
        why.contains("TaskFailedToStart") && why.contains("CannotPull"),
        "{why}"
    );
    assert_eq!(build_outcome("IN_PROGRESS"), None);
    assert_eq!(build_outcome("SUCCEEDED"), Some(Outcome::Succeeded));
    assert_eq!(
        build_outcome("FAULT"),
        Some(Outcome::Failed { exit_code: None })
    );
    assert_eq!(build_outcome("TIMED_OUT"), Some(Outcome::TimedOut));
    let (o, why) = invocation_outcome(Some("Unhandled"), br#"{"errorMessage": "boom"}"#);
    assert_eq!(o, Outcome::Failed { exit_code: None });
    assert!(why.contains("boom"));
    assert_eq!(invocation_outcome(None, b"{}").0, Outcome::Succeeded);
    assert_eq!(invocation_outcome(None, b"\"ok\"").0, Outcome::Succeeded);
    assert_eq!(
        invocation_outcome(None, br#"{"exit_code": 2}"#).0,
        Outcome::Failed { exit_code: Some(2) }
    );
}

#[test]
fn each_phase_is_logged_once_started_and_once_done() {
    let p = |k: &str, s: Option<&str>, d: Option<i64>| (k.to_string(), s.map(String::from), d);
    let mut seen = Vec::new();
    let first = phase_lines(
        &[
            p("SUBMITTED", Some("SUCCEEDED"), Some(0)),
            p("QUEUED", None, None),
        ],
        &mut seen,
    );
    assert_eq!(
        first,
        ["phase SUBMITTED: SUCCEEDED (0 s)", "phase QUEUED: started"]
    );
    // The same phases again (and moto repeats them), then QUEUED done and BUILD failed.
    let next = phase_lines(
        &[
            p("SUBMITTED", Some("SUCCEEDED"), Some(0)),
            p("QUEUED", Some("SUCCEEDED"), Some(3)),
            p("BUILD", Some("FAILED"), Some(12)),
            p("BUILD", Some("FAILED"), Some(12)),
        ],
        &mut seen,
    );
    assert_eq!(
        next,
        [
            "phase QUEUED: SUCCEEDED (3 s)",
            "phase BUILD: FAILED (12 s)"
        ]
    );
}

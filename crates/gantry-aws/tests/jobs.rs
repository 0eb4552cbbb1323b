//! The ECS, CodeBuild and Lambda job executors against the AWS emulator (moto's server behind
//! `scripts/aws/emulator.py`) with real SDK clients. moto's tasks never run and its builds run
//! nothing, so these tests drive what the emulator cannot: a test stands in for the worker by
//! reporting through the callback URL the task was given, or scripts the task's statuses and
//! exit code (`/_emulator/ecs-tasks`), or queues a function's answer; what cannot be shown is
//! said where it applies.

mod jobs_support;

use gantry_aws::jobs::codebuild::CodebuildExecutor;
use gantry_aws::jobs::ecs::EcsExecutor;
use gantry_aws::jobs::lambda::LambdaExecutor;
use gantry_core::callback::{Claim, sign};
use gantry_core::dag::Outcome;
use gantry_core::remote::{CodebuildDef, LambdaDef};
use gantry_engine::agents::CallbackError;
use gantry_engine::ports::Executor;
use jobs_support::moto::Emulator;
use jobs_support::*;
use std::sync::Arc;

#[tokio::test]
async fn an_ecs_job_ends_by_its_callback_and_the_token_is_used_once() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    ecs_setup(&aws).await;
    let agents = agents();
    let ex = Arc::new(EcsExecutor::new(remote(&aws, &agents, "node-a"), ecs_def()));
    let dir = tempfile::tempdir().unwrap();
    let l = launch(dir.path(), "run-cb", &["make test"], 60_000);
    let (_tx, cancel) = cancel_signal();
    let job = tokio::spawn({
        let (ex, l) = (ex.clone(), l.clone());
        async move { ex.execute(l, cancel).await }
    });
    let task = first_task(&aws).await;
    // What the worker sees: its command, the callback URL and the attempt's tags.
    let env = task_env(&task);
    let url = env
        .get("GANTRY_CALLBACK_URL")
        .expect("a callback URL")
        .clone();
    assert!(
        url.starts_with("http://gantry.test/api/v1/callbacks/"),
        "{url}"
    );
    assert_eq!(
        env.get("GANTRY_TAG_RUN").map(String::as_str),
        Some("run-cb")
    );
    let tags: Vec<(String, String)> = task
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
        .collect();
    for want in [
        ("gantry:run", "run-cb"),
        ("gantry:job", "build"),
        ("gantry:attempt", "1"),
        ("gantry:owner", "node-a"),
    ] {
        assert!(
            tags.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {tags:?}"
        );
    }
    let overrides = task.overrides().unwrap().container_overrides()[0].clone();
    assert_eq!(overrides.command(), ["sh", "-c", "set -e\nmake test\n"]);
    // The container's output, as its awslogs driver writes it.
    let task_id = task
        .task_arn()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let stream = format!("jobs/main/{task_id}");
    aws.logs
        .create_log_stream()
        .log_group_name("/ecs/runner")
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
        .timestamp(chrono::Utc::now().timestamp_millis())
        .message("tests passed: 42")
        .build()
        .unwrap();
    aws.logs
        .put_log_events()
        .log_group_name("/ecs/runner")
        .log_stream_name(&stream)
        .log_events(event)
        .send()
        .await
        .unwrap();
    // The worker reports (as `POST /api/v1/callbacks/{token}` hands it on).
    let token = token_of(&url);
    agents
        .callback(&token, br#"{"exit_code": 0}"#)
        .await
        .unwrap();
    assert_eq!(job.await.unwrap(), Outcome::Succeeded);
    let log = log_text(&l);
    assert!(log.contains("started ECS task"), "{log}");
    assert!(
        log.contains("tests passed: 42"),
        "the task's output from CloudWatch Logs: {log}"
    );
    assert!(log.contains("reported through its callback"), "{log}");
    // moto's task would run on; the attempt is over, so it is stopped.
    let now = tasks(&aws).await.remove(0);
    assert_eq!(now.last_status(), Some("STOPPED"));
    assert_eq!(
        now.stopped_reason(),
        Some("gantry: the worker reported its result")
    );
    // Replayed: refused (409), the token is used once.
    match agents.callback(&token, br#"{"exit_code": 0}"#).await {
        Err(CallbackError::Conflict(why)) => assert!(why.contains("reported already"), "{why}"),
        other => panic!("a replay must be refused: {other:?}"),
    }
    // Expired, or signed with another key: refused before anything else.
    let claim = Claim {
        run_id: "run-cb".into(),
        job: "build".into(),
        attempt: 1,
        expires_at_ms: 1,
    };
    assert!(matches!(
        agents.callback(&sign(KEY, &claim), b"{}").await,
        Err(CallbackError::Expired(_))
    ));
    let forged = sign(
        b"another server's key, 32 bytes..",
        &Claim {
            expires_at_ms: i64::MAX,
            ..claim
        },
    );
    assert!(matches!(
        agents.callback(&forged, b"{}").await,
        Err(CallbackError::Token(_))
    ));
}

#[tokio::test]
async fn without_a_callback_an_ecs_job_ends_by_its_exit_code_and_a_late_callback_is_refused() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    ecs_setup(&aws).await;
    let agents = agents();
    let ex = EcsExecutor::new(remote(&aws, &agents, "node-a"), ecs_def());
    let dir = tempfile::tempdir().unwrap();
    // moto's tasks never run: the emulator plays the task's life, ending with exit code 3.
    script_task(
        &e,
        &["PROVISIONING", "PENDING", "RUNNING", "STOPPED"],
        3,
        "Essential container in task exited",
    )
    .await;
    // Its status cannot be read for a while (access denied, not retried): said once, and
    // read again at the next polls.
    fault(&e, "ecs", "DescribeTasks", "AccessDeniedException", 3).await;
    let l = launch(dir.path(), "run-exit", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: Some(3) },
        "{}",
        log_text(&l)
    );
    let log = log_text(&l);
    for want in [
        "task PROVISIONING",
        "task RUNNING",
        "task STOPPED",
        "exited with 3: Essential container in task exited",
    ] {
        assert!(log.contains(want), "{want} in {log}");
    }
    let denied = "cannot read the task's status: DescribeTasks: AccessDeniedException";
    assert_eq!(log.matches(denied).count(), 1, "{log}");
    // The worker's report after that: refused, the first result stands.
    let url = task_env(&first_task(&aws).await)["GANTRY_CALLBACK_URL"].clone();
    let late = agents
        .callback(&token_of(&url), br#"{"exit_code": 0}"#)
        .await;
    assert!(matches!(late, Err(CallbackError::Conflict(_))), "{late:?}");
}

#[tokio::test]
async fn cancel_and_timeout_stop_the_ecs_task() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    ecs_setup(&aws).await;
    let agents = agents();
    let ex = Arc::new(EcsExecutor::new(remote(&aws, &agents, "node-a"), ecs_def()));
    let dir = tempfile::tempdir().unwrap();
    // Cancel: the task (RUNNING until stopped, as on AWS) is stopped, and its callback refused.
    let l = launch(dir.path(), "run-cancel", &["sleep 600"], 60_000);
    let (tx, cancel) = cancel_signal();
    let job = tokio::spawn({
        let (ex, l) = (ex.clone(), l.clone());
        async move { ex.execute(l, cancel).await }
    });
    let task = first_task(&aws).await;
    tx.send(true).unwrap();
    assert_eq!(job.await.unwrap(), Outcome::Cancelled, "{}", log_text(&l));
    let now = tasks(&aws).await.remove(0);
    assert_eq!(now.last_status(), Some("STOPPED"));
    assert_eq!(now.stopped_reason(), Some("gantry: the run was cancelled"));
    let url = task_env(&task)["GANTRY_CALLBACK_URL"].clone();
    match agents
        .callback(&token_of(&url), br#"{"exit_code": 0}"#)
        .await
    {
        Err(CallbackError::Conflict(why)) => assert!(why.contains("cancelled"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Timeout: the same, at the job's deadline.
    let l = launch(dir.path(), "run-timeout", &["sleep 600"], 300);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(ex.execute(l.clone(), cancel).await, Outcome::TimedOut);
    let stopped: Vec<_> = tasks(&aws)
        .await
        .into_iter()
        .filter(|t| {
            t.stopped_reason()
                .is_some_and(|r| r.contains("timed out after 300 ms"))
        })
        .collect();
    assert_eq!(stopped.len(), 1, "the timed-out task was stopped");
    assert!(log_text(&l).contains("stopped task"), "{}", log_text(&l));
}

#[tokio::test]
async fn bad_input_ends_with_a_clear_error_and_nothing_running_and_throttling_is_retried() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    ecs_setup(&aws).await;
    let agents = agents();
    let dir = tempfile::tempdir().unwrap();
    let run = |def: gantry_core::remote::EcsDef, run: &'static str| {
        let ex = EcsExecutor::new(remote(&aws, &agents, "node-a"), def);
        let l = launch(dir.path(), run, &["make"], 60_000);
        async move {
            let (_tx, cancel) = cancel_signal();
            (ex.execute(l.clone(), cancel).await, log_text(&l))
        }
    };
    let failed = Outcome::Failed { exit_code: None };
    let (o, log) = run(
        gantry_core::remote::EcsDef {
            cluster: "nowhere".into(),
            ..ecs_def()
        },
        "r1",
    )
    .await;
    assert_eq!(o, failed);
    assert!(
        log.contains("cannot start the ECS task (cluster nowhere")
            && log.contains("ClusterNotFoundException"),
        "{log}"
    );
    let (o, log) = run(
        gantry_core::remote::EcsDef {
            task_definition: "missing".into(),
            ..ecs_def()
        },
        "r2",
    )
    .await;
    assert_eq!(o, failed);
    assert!(
        log.contains("task definition missing") && log.contains("RunTask:"),
        "{log}"
    );
    fault(&e, "ecs", "RunTask", "AccessDeniedException", 1).await;
    let (o, log) = run(ecs_def(), "r3").await;
    assert_eq!(o, failed);
    assert!(
        log.contains("RunTask: AccessDeniedException: AccessDeniedException (injected)"),
        "{log}"
    );
    assert!(tasks(&aws).await.is_empty(), "nothing was started");
    // Throttled twice, then started: the SDK's standard retries back off and try again.
    fault(&e, "ecs", "RunTask", "ThrottlingException", 2).await;
    script_task(
        &e,
        &["RUNNING", "STOPPED"],
        0,
        "Essential container in task exited",
    )
    .await;
    let before = aws.calls.count();
    let (o, log) = run(ecs_def(), "r4").await;
    assert_eq!(o, Outcome::Succeeded, "{log}");
    let after = aws.calls.count();
    assert!(
        after.retries >= before.retries + 2,
        "{before:?} → {after:?}"
    );
    assert_eq!(tasks(&aws).await.len(), 1, "only r4's task");
}

#[tokio::test]
async fn after_a_crash_the_orphaned_task_is_found_by_its_tags_and_stopped() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    ecs_setup(&aws).await;
    let agents = agents();
    let dir = tempfile::tempdir().unwrap();
    let ex = EcsExecutor::new(remote(&aws, &agents, "node-a"), ecs_def());
    let l = launch(dir.path(), "run-crash", &["sleep 600"], 60_000);
    let (_tx, cancel) = cancel_signal();
    // The server dies while the task runs: its executor's future is dropped mid-attempt.
    let job = tokio::spawn(async move { ex.execute(l, cancel).await });
    let task = first_task(&aws).await;
    job.abort();
    let _ = job.await;
    assert_eq!(tasks(&aws).await[0].last_status(), Some("RUNNING"));
    // Another instance's executor leaves it alone.
    let other = EcsExecutor::new(remote(&aws, &agents, "node-b"), ecs_def());
    assert_eq!(other.reap_orphans().await, 0);
    // The next life of the same instance finds it by its tags and stops it, before recovery
    // runs the attempt again (as attempt 2: one task at a time, never two).
    let next = EcsExecutor::new(remote(&aws, &agents, "node-a"), ecs_def());
    let found = next.orphans().await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].1.run_id.as_str(), found[0].1.attempt),
        ("run-crash", 1)
    );
    assert_eq!(next.reap_orphans().await, 1);
    let now = tasks(&aws).await.remove(0);
    assert_eq!(now.task_arn(), task.task_arn());
    assert_eq!(now.last_status(), Some("STOPPED"));
    assert!(
        now.stopped_reason()
            .unwrap()
            .contains("earlier life of node-a"),
        "{:?}",
        now.stopped_reason()
    );
    assert_eq!(next.reap_orphans().await, 0, "once");
}

#[tokio::test]
async fn a_codebuild_job_logs_the_builds_phases_and_ends_by_its_status() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    codebuild_setup(&aws).await;
    let agents = agents();
    let def = CodebuildDef {
        project: "ci".into(),
        log_group: None,
        region: None,
    };
    let ex = CodebuildExecutor::new(remote(&aws, &agents, "node-a"), def.clone());
    let dir = tempfile::tempdir().unwrap();
    // moto's builds run nothing: the emulator plays a build whose build phase fails.
    let phases = [
        ("PROVISIONING", "SUCCEEDED"),
        ("DOWNLOAD_SOURCE", "SUCCEEDED"),
        ("INSTALL", "SUCCEEDED"),
        ("BUILD", "FAILED"),
        ("FINALIZING", "SUCCEEDED"),
    ];
    script_build(&e, &phases, "FAILED", false).await;
    let l = launch(dir.path(), "run-fail", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    let o = ex.execute(l.clone(), cancel).await;
    let log = log_text(&l);
    assert_eq!(o, Outcome::Failed { exit_code: None }, "{log}");
    for want in [
        "started build ci:",
        "phase SUBMITTED: SUCCEEDED",
        "phase QUEUED: SUCCEEDED",
        "phase PROVISIONING: SUCCEEDED (1 s)",
        "phase BUILD: FAILED (1 s)",
        "phase FINALIZING: SUCCEEDED",
        "ended FAILED",
    ] {
        assert!(log.contains(want), "{want} in {log}");
    }
    assert_eq!(
        log.matches("phase BUILD:").count(),
        1,
        "each phase once: {log}"
    );
    let (_, vars) = first_build(&aws).await;
    assert_eq!(vars["GANTRY_TAG_RUN"], "run-fail");
    // moto's own behaviour (no script): complete, every phase SUCCEEDED, at the first read.
    let l = launch(dir.path(), "run-ok", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(ex.execute(l.clone(), cancel).await, Outcome::Succeeded);
    assert!(
        log_text(&l).contains("phase COMPLETED: SUCCEEDED"),
        "{}",
        log_text(&l)
    );
    // A missing project, and access denied: clear errors, no build.
    let missing = CodebuildExecutor::new(
        remote(&aws, &agents, "node-a"),
        CodebuildDef {
            project: "nope".into(),
            ..def.clone()
        },
    );
    let l = launch(dir.path(), "run-missing", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(
        missing.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    assert!(
        log_text(&l).contains("StartBuild: ResourceNotFoundException"),
        "{}",
        log_text(&l)
    );
    fault(&e, "codebuild", "StartBuild", "AccessDeniedException", 1).await;
    let l = launch(dir.path(), "run-denied", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    assert!(
        log_text(&l).contains("StartBuild: AccessDeniedException"),
        "{}",
        log_text(&l)
    );
    assert_eq!(builds(&aws).await.len(), 2);
}

#[tokio::test]
async fn a_codebuild_job_reports_through_its_callback_is_cancelled_and_recovered() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    codebuild_setup(&aws).await;
    let agents = agents();
    let def = CodebuildDef {
        project: "ci".into(),
        log_group: None,
        region: None,
    };
    let ex = Arc::new(CodebuildExecutor::new(
        remote(&aws, &agents, "node-a"),
        def.clone(),
    ));
    let dir = tempfile::tempdir().unwrap();
    // A build that runs until something stops it; its worker reports through the callback,
    // after writing to the build's log stream (CodeBuild's: the project's group, the id).
    script_build(&e, &[("PROVISIONING", "SUCCEEDED")], "SUCCEEDED", true).await;
    let l = launch(dir.path(), "run-cb", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    let job = tokio::spawn({
        let (ex, l) = (ex.clone(), l.clone());
        async move { ex.execute(l, cancel).await }
    });
    let (id, vars) = first_build(&aws).await;
    let stream = id.rsplit(':').next().unwrap();
    put_log(&aws, "/aws/codebuild/ci", stream, "built 3 packages").await;
    let token = token_of(&vars["GANTRY_CALLBACK_URL"]);
    agents
        .callback(&token, br#"{"exit_code": 0}"#)
        .await
        .unwrap();
    assert_eq!(job.await.unwrap(), Outcome::Succeeded);
    let log = log_text(&l);
    assert!(
        log.contains("built 3 packages"),
        "the build's output: {log}"
    );
    assert!(log.contains("phase PROVISIONING: SUCCEEDED"), "{log}");
    assert!(matches!(
        agents.callback(&token, br#"{"exit_code": 0}"#).await,
        Err(CallbackError::Conflict(_))
    ));
    aws.codebuild.stop_build().id(&id).send().await.unwrap();

    // Cancel stops the build.
    script_build(&e, &[], "SUCCEEDED", true).await;
    let l = launch(dir.path(), "run-cancel", &["make"], 60_000);
    let (tx, cancel) = cancel_signal();
    let job = tokio::spawn({
        let (ex, l) = (ex.clone(), l.clone());
        async move { ex.execute(l, cancel).await }
    });
    let id = eventually_build(&aws, "run-cancel").await;
    tx.send(true).unwrap();
    assert_eq!(job.await.unwrap(), Outcome::Cancelled, "{}", log_text(&l));
    assert_eq!(status_of(&aws, &id).await, "STOPPED");

    // After a crash: the build still in progress is found by its variables and stopped by
    // the same instance's next life, and only by it.
    script_build(&e, &[], "SUCCEEDED", true).await;
    let l = launch(dir.path(), "run-crash", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    let job = tokio::spawn({
        let ex = ex.clone();
        async move { ex.execute(l, cancel).await }
    });
    let id = eventually_build(&aws, "run-crash").await;
    job.abort();
    let _ = job.await;
    assert_eq!(status_of(&aws, &id).await, "IN_PROGRESS");
    let other = CodebuildExecutor::new(remote(&aws, &agents, "node-b"), def.clone());
    assert_eq!(other.reap_orphans().await, 0);
    let next = CodebuildExecutor::new(remote(&aws, &agents, "node-a"), def);
    let found = next.orphans().await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.run_id.as_str()),
        (id.as_str(), "run-crash")
    );
    assert_eq!(next.reap_orphans().await, 1);
    assert_eq!(status_of(&aws, &id).await, "STOPPED");
    assert_eq!(next.reap_orphans().await, 0, "once");
}

/// The id of the build of run `run`, once it started.
async fn eventually_build(aws: &gantry_aws::Aws, run: &str) -> String {
    for _ in 0..500 {
        for b in builds(aws).await {
            let of_run = b.environment().is_some_and(|e| {
                e.environment_variables()
                    .iter()
                    .any(|v| v.name() == "GANTRY_TAG_RUN" && v.value() == run)
            });
            if of_run {
                return b.id().unwrap().to_string();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no build of {run}");
}

async fn status_of(aws: &gantry_aws::Aws, id: &str) -> String {
    let out = aws
        .codebuild
        .batch_get_builds()
        .ids(id)
        .send()
        .await
        .unwrap();
    out.builds()[0].build_status().unwrap().as_str().to_string()
}

#[tokio::test]
async fn a_lambda_job_ends_by_the_functions_answer() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    let role = aws
        .iam
        .create_role()
        .role_name("runner-role")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("app.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"def handler(event, context):\n    return {}\n").unwrap();
    let code = zip.finish().unwrap().into_inner();
    aws.lambda
        .create_function()
        .function_name("runner")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(role.role().unwrap().arn())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(code))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let agents = agents();
    let ex = LambdaExecutor::new(
        remote(&aws, &agents, "node-a"),
        LambdaDef {
            function: "runner".into(),
            region: None,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    // moto runs no code here: the emulator answers as the function would.
    e.queue_function_result("runner", &serde_json::json!({"exit_code": 0}), None, false)
        .await;
    let l = launch(dir.path(), "run-ok", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(ex.execute(l.clone(), cancel).await, Outcome::Succeeded);
    assert!(
        log_text(&l).contains("the function returned"),
        "{}",
        log_text(&l)
    );
    e.queue_function_result("runner", &serde_json::json!({"exit_code": 4}), None, false)
        .await;
    let l = launch(dir.path(), "run-exit", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: Some(4) }
    );
    e.fail_function("runner", "disk full", false).await;
    let l = launch(dir.path(), "run-error", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    assert!(
        log_text(&l).contains("the function failed (Unhandled): disk full"),
        "{}",
        log_text(&l)
    );
    // A missing function, and throttling retried until it passes.
    let missing = LambdaExecutor::new(
        remote(&aws, &agents, "node-a"),
        LambdaDef {
            function: "nope".into(),
            region: None,
        },
    );
    let l = launch(dir.path(), "run-missing", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(
        missing.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    assert!(
        log_text(&l)
            .contains("cannot invoke Lambda function nope: Invoke: ResourceNotFoundException"),
        "{}",
        log_text(&l)
    );
    fault(&e, "lambda", "Invoke", "TooManyRequestsException", 1).await;
    let before = aws.calls.count();
    let l = launch(dir.path(), "run-throttled", &["make"], 60_000);
    let (_tx, cancel) = cancel_signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Succeeded,
        "{}",
        log_text(&l)
    );
    assert!(aws.calls.count().retries > before.retries);
}

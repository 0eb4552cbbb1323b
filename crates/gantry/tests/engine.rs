//! The engine with a real SQLite store and scripted executors (for behaviours a well-behaved
//! executor never shows: ignoring its timeout, vanishing), plus the janitor.

mod common;

use async_trait::async_trait;
use gantry_core::dag::Outcome;
use gantry_core::spec::{ExecutorKind, Format, Limits, RunContext, parse_spec};
use gantry_core::{JobStatus, RunStatus};
use gantry_engine::ports::{CancelSignal, Executor, Launch, Retention, Store, SystemClock};
use gantry_engine::{Engine, EngineConfig, Executors, janitor};
use gantry_store::SqliteStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Never finishes by itself and ignores cancellation: only the watchdog can end its attempts.
struct Hangs {
    started: AtomicUsize,
}

#[async_trait]
impl Executor for Hangs {
    async fn execute(&self, _launch: Launch, _cancel: CancelSignal) -> Outcome {
        self.started.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
        Outcome::Succeeded
    }
}

/// Succeeds at once and writes a log line.
struct Instant0;

#[async_trait]
impl Executor for Instant0 {
    async fn execute(&self, launch: Launch, _cancel: CancelSignal) -> Outcome {
        launch.log.append(b"done\n").unwrap();
        Outcome::Succeeded
    }
}

async fn engine(
    dir: &std::path::Path,
    executor: Arc<dyn Executor>,
    grace_ms: i64,
) -> (Engine, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("g.db")).await.unwrap());
    let mut config = EngineConfig::new(dir.to_path_buf(), 4, "test-node".into());
    config.watchdog_interval = Duration::from_millis(100);
    config.watchdog_grace_ms = grace_ms;
    let mut executors = Executors::new();
    executors.insert(ExecutorKind::Local, executor);
    (
        Engine::start(config, store.clone(), executors, Arc::new(SystemClock))
            .await
            .unwrap(),
        store,
    )
}

fn spec(yaml: &str) -> gantry_core::spec::RunSpec {
    parse_spec(yaml.as_bytes(), Format::Yaml, "t", &Limits::default()).unwrap()
}

#[tokio::test]
async fn watchdog_times_out_an_attempt_its_executor_does_not_stop_and_retries_it() {
    let dir = tempfile::tempdir().unwrap();
    let hangs = Arc::new(Hangs {
        started: AtomicUsize::new(0),
    });
    let (engine, store) = engine(dir.path(), hangs.clone(), 200).await;
    let start = Instant::now();
    let run = engine
        .submit(
            spec("jobs:\n  h: {run: [x], timeout: 300ms, retries: {count: 1, backoff: 10ms}}\n"),
            RunContext::default(),
            None,
        )
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), engine.wait_finished(&run.run_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(done.jobs[0].status, JobStatus::TimedOut);
    assert_eq!(done.jobs[0].attempt, 2);
    assert_eq!(hangs.started.load(Ordering::SeqCst), 2);
    // Two attempts of 300 ms + 200 ms grace each, checked every 100 ms.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let trail = store.audit_trail(&run.run_id).await.unwrap();
    assert!(trail.iter().any(|a| {
        a.note
            .as_deref()
            .is_some_and(|n| n.contains("timeout reached"))
    }));
}

#[tokio::test]
async fn janitor_removes_only_what_outlived_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = engine(dir.path(), Arc::new(Instant0), 10_000).await;
    let run = engine
        .submit(
            spec("jobs:\n  a: {run: [x]}\n"),
            RunContext::default(),
            None,
        )
        .await
        .unwrap();
    engine.wait_finished(&run.run_id).await.unwrap();
    let layout = engine.layout().clone();
    let now = gantry_engine::ports::Clock::now_ms(&SystemClock);

    let keep = Retention::default();
    let report = janitor::sweep(store.as_ref(), &layout, &keep, now)
        .await
        .unwrap();
    assert_eq!((report.store.runs, report.run_logs), (0, 0));
    assert_eq!(engine.logs().read(&run.run_id, "a", 1).unwrap(), b"done\n");
    assert!(store.get_run(&run.run_id).await.unwrap().is_some());

    // An hour from now, with everything kept for 1 ms: all of it is old enough. (Files are
    // aged by their modification time on the real clock: wait until the log's is 1 ms past.)
    let log = engine.logs().path(&run.run_id);
    common::wait_until(5, "the run's log is older than 1 ms", || {
        std::fs::metadata(&log)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_millis(1)))
    })
    .await;
    let short = Retention {
        working_ms: 1,
        audit_ms: 1,
        logs_ms: 1,
    };
    let report = janitor::sweep(store.as_ref(), &layout, &short, now + 3_600_000)
        .await
        .unwrap();
    assert_eq!(report.store.runs, 1);
    assert!(report.store.audit_events > 0);
    assert_eq!(report.run_logs, 1);
    assert!(store.get_run(&run.run_id).await.unwrap().is_none());
    assert!(!engine.logs().path(&run.run_id).exists());
    let again = janitor::sweep(store.as_ref(), &layout, &short, now + 3_600_000)
        .await
        .unwrap();
    assert_eq!(
        (again.store.runs, again.store.audit_events, again.run_logs),
        (0, 0, 0),
        "idempotent"
    );
}

/// Runs a one-job spec to its end; the job's final status and its first attempt's log.
async fn run_one(engine: &Engine, yaml: &str, job: &str) -> (JobStatus, String) {
    let run = engine
        .submit(spec(yaml), RunContext::default(), None)
        .await
        .unwrap();
    let done = engine.wait_finished(&run.run_id).await.unwrap();
    let log = String::from_utf8(engine.logs().read(&run.run_id, job, 1).unwrap()).unwrap();
    (done.jobs[0].status, log)
}

#[tokio::test]
async fn a_job_for_a_missing_executor_fails_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _store) = engine(dir.path(), Arc::new(Instant0), 10_000).await;
    let (status, log) = run_one(&engine, "jobs:\n  d: {run: [x], image: alpine}\n", "d").await;
    assert_eq!(status, JobStatus::Failed);
    assert!(log.contains("no executor for this job"), "{log}");

    // Secrets have no store yet: the job fails saying so instead of running without them.
    let (status, log) = run_one(&engine, "jobs:\n  s: {run: [x], secrets: [API_KEY]}\n", "s").await;
    assert_eq!(status, JobStatus::Failed);
    assert!(log.contains("secrets API_KEY are not available"), "{log}");
}

/// Succeeds, except jobs named `bad…`, which fail with exit code 3.
struct FailsBad;

#[async_trait]
impl Executor for FailsBad {
    async fn execute(&self, launch: Launch, _cancel: CancelSignal) -> Outcome {
        if launch.job.starts_with("bad") {
            Outcome::Failed { exit_code: Some(3) }
        } else {
            Outcome::Succeeded
        }
    }
}

/// A reader of committed batches knows the stored run exactly, by applying each committed
/// write to the inserted record (what `gantry run` does instead of reading the run back).
#[tokio::test]
async fn folding_committed_writes_over_the_inserted_run_gives_the_stored_run() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = engine(dir.path(), Arc::new(FailsBad), 10_000).await;
    let mut committed = engine.journal().subscribe();
    let yaml = "jobs:\n  a: {run: [x]}\n  bad: {run: [x], needs: [a], retries: {count: 1, backoff: 10ms}}\n  \
                skipped: {run: [x], needs: [bad]}\n  cleanup: {run: [x], needs: [bad], when: {status: [failure]}}\n  \
                other: {run: [x]}\n";
    let run = engine
        .submit(spec(yaml), RunContext::default(), None)
        .await
        .unwrap();
    let mut folded: Option<gantry_engine::ports::RunRecord> = None;
    let mut applied = 0;
    let fold = async {
        while folded.as_ref().is_none_or(|r| !r.status.is_terminal()) {
            let batch = committed.recv().await.unwrap();
            applied += gantry_engine::ports::RunRecord::follow(&mut folded, &run.run_id, &batch);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), fold)
        .await
        .expect("the fold saw the run end");
    let folded = folded.unwrap();
    let stored = store.get_run(&run.run_id).await.unwrap().unwrap();
    assert_eq!(folded, stored);
    assert_eq!(folded.status, RunStatus::Failed);
    let by_name = |n: &str| folded.jobs.iter().find(|j| j.name == n).unwrap().clone();
    assert_eq!(by_name("bad").attempt, 2, "the retry is in the fold");
    assert_eq!(by_name("bad").exit_code, Some(3));
    assert_eq!(by_name("skipped").status, JobStatus::Skipped);
    assert_eq!(by_name("cleanup").status, JobStatus::Succeeded);
    assert!(applied >= 10, "every job moved at least twice: {applied}");
}

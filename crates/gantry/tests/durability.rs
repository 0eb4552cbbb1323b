//! Write-ahead: a job's process starts only after the batch that records it as running (and
//! with it the run and the results its needs ended with) is committed. Shown two ways: with
//! commits held back one at a time, and by `kill -9` of a real server at many moments, after
//! which the record never says less than what ran. An attempt claimed ahead of a free slot
//! starts without waiting for another commit once its claim is committed.

mod common;

use async_trait::async_trait;
use common::{Server, job};
use gantry_core::spec::{ExecutorKind, Format, Limits, RunContext, parse_spec};
use gantry_engine::ports::*;
use gantry_engine::{Engine, EngineConfig, Executors};
use gantry_exec::LocalExecutor;
use gantry_store::SqliteStore;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The real store, whose commits each wait for a permit the test hands out.
struct Gated {
    inner: SqliteStore,
    permits: Arc<Semaphore>,
    /// Commits waiting for a permit.
    held: AtomicUsize,
    /// How many times everything committed so far was taken to the disk (a synced commit or a
    /// sync), and each committed batch (as printed) with that count when it committed.
    syncs: AtomicUsize,
    committed: std::sync::Mutex<Vec<(String, usize)>>,
    /// How many commits did not reach the disk themselves.
    unsynced: AtomicUsize,
}

impl Gated {
    async fn pass(&self) {
        self.held.fetch_add(1, Ordering::SeqCst);
        self.permits.acquire().await.unwrap().forget();
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for Gated {
    async fn commit_prepared(
        &self,
        batch: &[Write],
        prepared: Prepared,
        durability: Durability,
    ) -> StoreResult<Committed> {
        self.pass().await;
        let done = self
            .inner
            .commit_prepared(batch, prepared, durability)
            .await?;
        let syncs = self.syncs.load(Ordering::SeqCst);
        self.committed
            .lock()
            .unwrap()
            .push((format!("{batch:?}"), syncs));
        match durability {
            Durability::Disk => self.syncs.fetch_add(1, Ordering::SeqCst),
            Durability::Os => self.unsynced.fetch_add(1, Ordering::SeqCst),
        };
        Ok(done)
    }
    async fn sync(&self) -> StoreResult<()> {
        self.inner.sync().await?;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        self.inner.unfinished_runs().await
    }
    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, filter: RunFilter) -> StoreResult<Vec<RunRecord>> {
        self.inner.list_runs(filter).await
    }
    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
        self.inner.audit_trail(run_id).await
    }
    async fn orphaned_runs(&self, now: i64, limit: u32) -> StoreResult<Vec<RunRecord>> {
        self.inner.orphaned_runs(now, limit).await
    }
    async fn renew_run_leases(&self, n: &[String], h: &str, e: i64) -> StoreResult<Vec<String>> {
        self.inner.renew_run_leases(n, h, e).await
    }
    async fn request_cancel(&self, id: &str, at: i64) -> StoreResult<bool> {
        self.inner.request_cancel(id, at).await
    }
    async fn take_cancel_requests(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        self.inner.take_cancel_requests(ids).await
    }
    async fn try_lease(&self, n: &str, h: &str, exp: i64, now: i64) -> StoreResult<bool> {
        self.inner.try_lease(n, h, exp, now).await
    }
    async fn event_by_delivery(&self, id: &str) -> StoreResult<Option<EventRecord>> {
        self.inner.event_by_delivery(id).await
    }
    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
        self.inner.list_events(filter).await
    }
    async fn get_event(&self, id: &str) -> StoreResult<Option<EventRecord>> {
        self.inner.get_event(id).await
    }
    async fn list_rules(&self) -> StoreResult<Vec<RuleRecord>> {
        self.inner.list_rules().await
    }
    async fn pending_deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
        self.inner.pending_deliveries(limit).await
    }
    async fn deliveries_of(&self, event_id: &str) -> StoreResult<Vec<DeliveryRecord>> {
        self.inner.deliveries_of(event_id).await
    }
    async fn schedule_fires(&self) -> StoreResult<Vec<(String, i64)>> {
        self.inner.schedule_fires().await
    }
    async fn undecided_events(
        &self,
        source: &str,
        types: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>> {
        self.inner.undecided_events(source, types, limit).await
    }
    async fn list_runners(&self, filter: RunnerFilter) -> StoreResult<Vec<RunnerRecord>> {
        self.inner.list_runners(filter).await
    }
    async fn get_runner(&self, name: &str) -> StoreResult<Option<RunnerRecord>> {
        self.inner.get_runner(name).await
    }
    async fn get_deployment(&self, id: &str) -> StoreResult<Option<DeploymentRecord>> {
        self.inner.get_deployment(id).await
    }
    async fn list_deployments(
        &self,
        filter: DeploymentFilter,
    ) -> StoreResult<Vec<(DeploymentRecord, gantry_core::RunStatus)>> {
        self.inner.list_deployments(filter).await
    }
    async fn expire(&self, retention: &Retention, now_ms: i64) -> StoreResult<Expired> {
        self.inner.expire(retention, now_ms).await
    }
}

/// Which jobs' processes have started: each job appends its name and attempt to `ran`.
fn started(ran: &Path) -> Vec<(String, u32)> {
    std::fs::read_to_string(ran)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (job, attempt) = l.split_once(' ').expect(l);
            (job.to_string(), attempt.parse().expect(l))
        })
        .collect()
}

/// Whether a process still runs a job writing to `ran` (each job's script names it; the file
/// is in a folder of this test's own).
fn runs_a_job(ran: &Path) -> bool {
    let ran = ran.to_string_lossy();
    common::command_lines()
        .iter()
        .any(|l| l.contains(ran.as_ref()))
}

/// Kills the server with `kill -9`, waits until its jobs are gone (a job started before the
/// kill may still be writing), and checks the stored run against what ran: how many attempts
/// started, and the run.
async fn kill_and_check(
    mut s: Server,
    dir: &Path,
    run_id: &str,
    spec: &gantry_core::spec::RunSpec,
    ran: &Path,
) -> (usize, RunRecord) {
    s.kill9().await;
    common::wait_until(10, "the killed server's jobs are gone", || !runs_a_job(ran)).await;
    let store = SqliteStore::open(&dir.join("gantry.db")).await.unwrap();
    let run = store
        .get_run(run_id)
        .await
        .unwrap()
        .expect("acknowledged run");
    (record_covers(&run, spec, ran), run)
}

/// The committed record never says less than what ran: every attempt that started is recorded
/// as dispatched (this attempt or a later one, not pending, queued or skipped), and each job
/// recorded as dispatched has every need recorded as succeeded. Returns what it checked.
fn record_covers(run: &RunRecord, spec: &gantry_core::spec::RunSpec, ran: &Path) -> usize {
    let by_name: BTreeMap<&str, &JobRecord> =
        run.jobs.iter().map(|j| (j.name.as_str(), j)).collect();
    let starts = started(ran);
    for (name, attempt) in &starts {
        let rec = by_name[name.as_str()];
        // A claimed queued attempt may have started (it counts as lost after a crash).
        let may_have_started = match rec.status {
            gantry_core::JobStatus::Queued => rec.claimed,
            s => !matches!(
                s,
                gantry_core::JobStatus::Pending | gantry_core::JobStatus::Skipped
            ),
        };
        assert!(
            rec.attempt > *attempt || (rec.attempt == *attempt && may_have_started),
            "{name} attempt {attempt} ran, but the record says attempt {} {}",
            rec.attempt,
            rec.status
        );
    }
    for (i, js) in spec.jobs.iter().enumerate() {
        let rec = &run.jobs[i];
        let dispatched = rec.status == gantry_core::JobStatus::Running
            || rec.status == gantry_core::JobStatus::Succeeded
            || rec.claimed;
        if dispatched {
            for need in &js.needs {
                assert_eq!(
                    by_name[need.as_str()].status,
                    gantry_core::JobStatus::Succeeded,
                    "{} is {} before its need {need} is recorded succeeded",
                    js.name,
                    rec.status
                );
            }
        }
    }
    starts.len()
}

/// An engine (2 slots, local jobs, no recovery) in `dir` over the real store, gated: each
/// commit waits for one of the permits, `permits` of which are there at first.
async fn gated_engine(dir: &Path, permits: usize) -> (Arc<Gated>, Engine) {
    let store = Arc::new(Gated {
        inner: SqliteStore::open(&dir.join("g.db")).await.unwrap(),
        permits: Arc::new(Semaphore::new(permits)),
        held: AtomicUsize::new(0),
        syncs: AtomicUsize::new(0),
        committed: Default::default(),
        unsynced: AtomicUsize::new(0),
    });
    let mut executors = Executors::new();
    executors.insert(
        ExecutorKind::Local,
        Arc::new(LocalExecutor::new(
            "durability-test",
            Duration::from_secs(1),
        )) as Arc<dyn Executor>,
    );
    let mut config = EngineConfig::new(dir.to_path_buf(), 2, "durability-test".into());
    config.recover = false;
    let engine = Engine::start(
        config,
        store.clone() as Arc<dyn Store>,
        executors,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    (store, engine)
}

/// A chain with a fan-out: a → (b, c) → d, each job writing its start to `ran`.
fn diamond(ran: &Path) -> String {
    let cmd = format!("echo $GANTRY_JOB $GANTRY_ATTEMPT >> {}", ran.display());
    format!(
        "jobs:\n  a: {{run: ['{cmd}']}}\n  b: {{needs: [a], run: ['{cmd}']}}\n  c: {{needs: [a], run: ['{cmd}']}}\n  d: {{needs: [b, c], run: ['{cmd}']}}\n"
    )
}

#[tokio::test]
async fn no_job_starts_until_the_commit_recording_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let (store, engine) = gated_engine(dir.path(), 0).await;
    let spec = parse_spec(
        diamond(&ran).as_bytes(),
        Format::Yaml,
        "d",
        &Limits::default(),
    )
    .unwrap();
    let submit = {
        let (engine, spec) = (engine.clone(), spec.clone());
        tokio::spawn(async move { engine.submit(spec, RunContext::default(), None).await })
    };
    // The run's first commit is held: not acknowledged, and nothing runs.
    common::wait_until(10, "a commit is held", || {
        store.held.load(Ordering::SeqCst) > 0
    })
    .await;
    // A check that nothing happens: give a job that would wrongly start time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!submit.is_finished(), "acknowledged before it was durable");
    assert!(
        started(&ran).is_empty(),
        "a job started before its run was committed"
    );

    // Let commits through one at a time. Whenever the next one is held, what is committed
    // must already cover every process that started.
    let mut checked = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let run_id = loop {
        assert!(Instant::now() < deadline, "the run did not finish");
        store.permits.add_permits(1);
        // Until the next commit is held (or the run is done), give jobs time to start: a fixed
        // wait, as a job that starts before its commit returns is what the check looks for.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let runs = store.inner.list_runs(RunFilter::default()).await.unwrap();
        match runs.first() {
            None => assert!(started(&ran).is_empty()),
            Some(run) => {
                checked = checked.max(record_covers(run, &spec, &ran));
                if run.status.is_terminal() {
                    break run.id.clone();
                }
            }
        }
    };
    assert!(submit.is_finished());
    assert_eq!(submit.await.unwrap().unwrap().run_id, run_id);
    store.permits.add_permits(10_000);
    let done = engine.wait_finished(&run_id).await.unwrap();
    assert_eq!(done.status, gantry_core::RunStatus::Succeeded);
    record_covers(&done, &spec, &ran);
    let mut starts = started(&ran);
    starts.sort();
    let want: Vec<(String, u32)> = ["a", "b", "c", "d"]
        .iter()
        .map(|j| (j.to_string(), 1))
        .collect();
    assert_eq!(starts, want, "each job ran once");
    assert!(checked > 0, "no check saw a job that had started");
}

/// Claims: with two slots, the step that starts two of four independent jobs also claims the
/// other two; once that batch is committed they start as slots free, without waiting for
/// another commit (the next one is held here), and the record says what may have run.
#[tokio::test]
async fn a_claimed_attempt_starts_without_waiting_for_another_commit() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let (store, engine) = gated_engine(dir.path(), 0).await;
    let cmd = format!("echo $GANTRY_JOB $GANTRY_ATTEMPT >> {}", ran.display());
    let yaml: String = std::iter::once("jobs:\n".to_string())
        .chain(["a", "b", "c", "d"].map(|j| format!("  {j}: {{run: ['{cmd}']}}\n")))
        .collect();
    let spec = parse_spec(yaml.as_bytes(), Format::Yaml, "q", &Limits::default()).unwrap();
    let submit = {
        let (engine, spec) = (engine.clone(), spec.clone());
        tokio::spawn(async move { engine.submit(spec, RunContext::default(), None).await })
    };
    // One commit at a time until the last two jobs have run.
    let deadline = Instant::now() + Duration::from_secs(20);
    while started(&ran).len() < 4 {
        assert!(Instant::now() < deadline, "ran only {:?}", started(&ran));
        common::wait_until(10, "a commit is held", || {
            store.held.load(Ordering::SeqCst) > 0
        })
        .await;
        store.permits.add_permits(1);
        // A check that nothing else happens: the jobs take milliseconds.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // c and d ran while the batch recording them running waits: the committed record says
    // they are queued and claimed (so after a crash they would count as lost).
    assert!(store.held.load(Ordering::SeqCst) > 0, "no commit is held");
    let run = store.inner.list_runs(RunFilter::default()).await.unwrap();
    let run = run.first().expect("the run is committed");
    for j in &run.jobs[2..] {
        assert_eq!(
            (j.status, j.claimed),
            (gantry_core::JobStatus::Queued, true),
            "{}: {j:?}",
            j.name
        );
    }
    record_covers(run, &spec, &ran);
    store.permits.add_permits(10_000);
    let run_id = submit.await.unwrap().unwrap().run_id;
    let done = engine.wait_finished(&run_id).await.unwrap();
    assert_eq!(done.status, gantry_core::RunStatus::Succeeded);
    assert!(done.jobs.iter().all(|j| !j.claimed));
    let mut starts = started(&ran);
    starts.sort();
    let want: Vec<(String, u32)> = ["a", "b", "c", "d"].map(|j| (j.to_string(), 1)).into();
    assert_eq!(starts, want, "each job ran once");
}

#[tokio::test]
async fn followers_are_told_only_of_batches_on_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let (store, engine) = gated_engine(dir.path(), 1_000_000).await;
    let mut follower = engine.journal().subscribe();
    let spec = parse_spec(
        diamond(&ran).as_bytes(),
        Format::Yaml,
        "d",
        &Limits::default(),
    )
    .unwrap();
    let run_id = engine
        .submit(spec, RunContext::default(), None)
        .await
        .unwrap()
        .run_id;
    let mut told = 0;
    loop {
        let batch = tokio::time::timeout(Duration::from_secs(30), follower.recv())
            .await
            .expect("the run did not finish")
            .unwrap();
        // The batch was committed with `syncs` at some count; something has synced since.
        let printed = format!("{:?}", batch.as_slice());
        let syncs_then = store
            .committed
            .lock()
            .unwrap()
            .iter()
            .find(|(b, _)| *b == printed)
            .map(|(_, n)| *n)
            .expect("a batch the store committed");
        assert!(
            store.syncs.load(Ordering::SeqCst) > syncs_then,
            "a follower was told of a batch not yet on the disk: {printed}"
        );
        told += 1;
        let ended = batch.iter().any(|w| matches!(w, Write::UpdateRun { id, status, .. } if *id == run_id && status.is_terminal()));
        if ended {
            break;
        }
    }
    assert!(told >= 3, "followers saw the run move ({told} batches)");
    assert!(
        store.unsynced.load(Ordering::SeqCst) > 0,
        "the jobs' starts were committed without a sync"
    );
    assert_eq!(
        engine.wait_finished(&run_id).await.unwrap().status,
        gantry_core::RunStatus::Succeeded
    );
}

#[tokio::test]
async fn after_kill_9_at_any_moment_the_record_never_contradicts_what_ran() {
    // A wider graph, so that kills land between every kind of step; each job takes a little
    // while, so that the kills below land while the run is going on any machine.
    let spec_for = |ran: &Path| {
        let cmd = format!(
            "echo $GANTRY_JOB $GANTRY_ATTEMPT >> {}; sleep 0.02",
            ran.display()
        );
        let mut y = String::from("jobs:\n");
        for layer in 0..4 {
            for i in 0..4 {
                let needs = if layer == 0 {
                    String::new()
                } else {
                    format!(
                        "needs: [l{}_{}, l{}_{}], ",
                        layer - 1,
                        i,
                        layer - 1,
                        (i + 1) % 4
                    )
                };
                // Retries: a job running at both crashes below is lost twice (only the first
                // loss is run again for free).
                y.push_str(&format!(
                    "  l{layer}_{i}: {{{needs}retries: 2, run: ['{cmd}']}}\n"
                ));
            }
        }
        y
    };
    let mut moments_with_work = 0;
    for delay_ms in [0u64, 5, 10, 20, 30, 45, 60, 80, 100, 130, 170, 220] {
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let yaml = spec_for(&ran);
        let spec = parse_spec(yaml.as_bytes(), Format::Yaml, "k", &Limits::default()).unwrap();
        let s = Server::start(dir.path()).await;
        let run_id = s.submit_yaml(&yaml).await;
        // The moment of the kill, what this loop varies.
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let (seen, run) = kill_and_check(s, dir.path(), &run_id, &spec, &ran).await;
        if seen > 0 && !run.status.is_terminal() {
            moments_with_work += 1;
        }
        // A second crash soon after the restart: what the adoption decided (lost attempts and
        // claims, attempts run again) is covered by the record too.
        let s = Server::start(dir.path()).await;
        tokio::time::sleep(Duration::from_millis(delay_ms / 2)).await;
        kill_and_check(s, dir.path(), &run_id, &spec, &ran).await;
        // After a restart the run finishes, succeeded (a lost attempt is run again), and no
        // attempt of any job ran twice.
        let s = Server::start(dir.path()).await;
        let run = s.wait_finished(&run_id, 30).await;
        assert_eq!(
            run["status"], "succeeded",
            "killed after {delay_ms} ms: {run}"
        );
        let starts = started(&ran);
        let distinct: BTreeSet<&(String, u32)> = starts.iter().collect();
        assert_eq!(
            distinct.len(),
            starts.len(),
            "killed after {delay_ms} ms, an attempt ran twice: {starts:?}"
        );
        for j in &spec.jobs {
            let ran_attempts: Vec<u32> = starts
                .iter()
                .filter(|(n, _)| *n == j.name)
                .map(|(_, a)| *a)
                .collect();
            assert!(!ran_attempts.is_empty(), "{} never ran", j.name);
            assert_eq!(
                job(&run, &j.name)["attempt"].as_u64().unwrap() as u32,
                *ran_attempts.iter().max().unwrap(),
                "killed after {delay_ms} ms: {} ran attempts {ran_attempts:?}: {run}",
                j.name
            );
        }
    }
    assert!(
        moments_with_work >= 3,
        "too few kills landed while the run was going ({moments_with_work})"
    );
}

//! The Docker executor against the real Docker Engine, with the test image built from
//! Debian's busybox-static by `scripts/test-images` (run here, so the test needs no setup).

use gantry_core::dag::Outcome;
use gantry_engine::logs::Logs;
use gantry_engine::ports::{CancelSignal, Executor, Launch, SecretValue};
use gantry_exec::{DockerExecutor, OWNER_LABEL, RUN_LABEL};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const IMAGE: &str = "gantry-test/busybox:latest";

fn images() {
    let script = format!("{}/../../scripts/test-images", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(script)
        .output()
        .expect("run scripts/test-images");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the attempt wrote to its log.
fn log_text(l: &Launch) -> std::io::Result<String> {
    Ok(String::from_utf8_lossy(&l.log.contents()?).into_owned())
}

fn launch(dir: &Path, job: &str, commands: &[&str], timeout_ms: u64) -> Launch {
    Launch {
        run_id: "r-docker".into(),
        job: job.into(),
        attempt: 1,
        trace_id: "t".into(),
        commands: commands.iter().map(|c| c.to_string()).collect(),
        env: vec![("GREETING".into(), "hello".into())],
        timeout_ms,
        workspace: dir.join(job).join("ws"),
        log: Logs::new(dir.join("logs")).attempt("r-docker", job, 1),
        image: Some(IMAGE.into()),
        secrets: vec![],
        checkout: None,
        notes: vec![],
        container: None,
        aws: None,
        artifacts: Default::default(),
        cache: None,
    }
}

fn containers(label: &str) -> usize {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// How many containers with `label` are running.
fn running(label: &str) -> usize {
    let out = Command::new("docker")
        .args(["ps", "-q", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Polls `cond` until it holds, or panics after 30 s (a container starts some time after it
/// was asked for, later on a loaded machine).
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal() -> (watch::Sender<bool>, CancelSignal) {
    let (tx, rx) = watch::channel(false);
    (tx, CancelSignal(rx))
}

#[tokio::test]
async fn jobs_run_in_containers_with_workspace_env_secrets_and_exit_codes() {
    images();
    let dir = tempfile::tempdir().unwrap();
    let owner = format!("docker-test-{}", std::process::id());
    let ex = DockerExecutor::connect(owner.as_str()).await.unwrap();

    let mut l = launch(
        dir.path(),
        "ok",
        &[
            "echo out $GREETING from $(pwd)",
            "echo made > made.txt",
            "echo token=$TOKEN >&2",
        ],
        30_000,
    );
    l.secrets = vec![("TOKEN".into(), SecretValue::new("s3cr3t-value".into()))];
    let (_tx, cancel) = signal();
    assert_eq!(ex.execute(l.clone(), cancel).await, Outcome::Succeeded);
    let log = log_text(&l).unwrap();
    assert!(log.contains("$ echo out $GREETING from $(pwd)"), "{log}");
    assert!(log.contains("out hello from /workspace"), "{log}");
    assert!(
        log.contains("token=***") && !log.contains("s3cr3t-value"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(l.workspace.join("made.txt")).unwrap(),
        "made\n"
    );

    // A relative workspace (the default data dir is `./.gantry`) is mounted all the same.
    let here = tempfile::tempdir_in(".").unwrap();
    let rel = here
        .path()
        .strip_prefix(std::env::current_dir().unwrap())
        .unwrap();
    let l = launch(rel, "relative", &["echo x > f.txt"], 30_000);
    assert!(l.workspace.is_relative());
    let (_tx, cancel) = signal();
    let outcome = ex.execute(l.clone(), cancel).await;
    let log = log_text(&l).unwrap_or_default();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert_eq!(
        std::fs::read_to_string(l.workspace.join("f.txt")).unwrap(),
        "x\n"
    );

    let l = launch(
        dir.path(),
        "fails",
        &["echo before", "exit 7", "echo never"],
        30_000,
    );
    let (_tx, cancel) = signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: Some(7) }
    );
    assert!(!log_text(&l).unwrap().contains("never"));

    // Timeout stops and removes the container.
    let l = launch(dir.path(), "slow", &["sleep 3947"], 1_500);
    let (_tx, cancel) = signal();
    assert_eq!(ex.execute(l.clone(), cancel).await, Outcome::TimedOut);
    assert!(log_text(&l).unwrap().contains("timed out"));
    assert_eq!(containers(&format!("{OWNER_LABEL}={owner}")), 0, "removed");

    // User, limits and network reach the container.
    let mut l = launch(
        dir.path(),
        "limited",
        &[
            "id -u",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            "ip -o link | grep -c ': '",
            "touch written-by-the-job && echo wrote",
        ],
        30_000,
    );
    l.container = Some(gantry_core::spec::ContainerOpts {
        user: Some("65534".into()),
        cpus_milli: Some(500),
        memory_bytes: Some(64 << 20),
        network: Some("none".into()),
    });
    let (_tx, cancel) = signal();
    let outcome = ex.execute(l.clone(), cancel).await;
    let log = log_text(&l).unwrap();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with('$')).collect();
    assert_eq!(lines[0], "65534", "{log}");
    assert_eq!(lines[1], (64u64 << 20).to_string(), "{log}");
    assert_eq!(lines[2], "1", "network none: loopback only: {log}");
    assert_eq!(
        lines[3], "wrote",
        "the container's user has the workspace: {log}"
    );

    // A missing image that cannot be pulled is a clear job error, not a hang (pulls from a
    // registry that answers are in tests/pull.rs).
    let mut l = launch(dir.path(), "noimage", &["true"], 30_000);
    l.image = Some("127.0.0.1:1/gantry-test/does-not-exist:1".into());
    let (_tx, cancel) = signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    let log = log_text(&l).unwrap();
    assert!(
        log.contains(
            "cannot pull image 127.0.0.1:1/gantry-test/does-not-exist:1 from registry 127.0.0.1:1"
        ),
        "{log}"
    );
}

#[tokio::test]
async fn cancel_stops_the_container_and_orphans_of_this_owner_only_are_reaped() {
    images();
    let dir = tempfile::tempdir().unwrap();
    let owner = format!("docker-reap-{}", std::process::id());
    let ex = DockerExecutor::connect(owner.as_str()).await.unwrap();
    let l = launch(dir.path(), "cancelled", &["sleep 3948"], 60_000);
    let (tx, cancel) = signal();
    let run = tokio::spawn({
        let l = l.clone();
        async move { ex.execute(l, cancel).await }
    });
    let label = format!("{OWNER_LABEL}={owner}");
    until("the job's container runs", || running(&label) == 1).await;
    tx.send(true).unwrap();
    assert_eq!(run.await.unwrap(), Outcome::Cancelled);
    assert_eq!(containers(&format!("{OWNER_LABEL}={owner}")), 0);

    // Leftovers: a job container of ours (a crashed life), one of another server, and a
    // service container of ours (no run: it outlives restarts, the service manager takes it
    // back).
    let other = format!("docker-other-{}", std::process::id());
    for (who, kind) in [
        (&owner, format!("{RUN_LABEL}=r-old")),
        (&other, format!("{RUN_LABEL}=r-other")),
        (&owner, "io.gantry.service=svc".to_string()),
    ] {
        let st = Command::new("docker")
            .args([
                "run",
                "-d",
                "--label",
                &format!("{OWNER_LABEL}={who}"),
                "--label",
                &kind,
                IMAGE,
                "sleep",
                "3949",
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    let ex = DockerExecutor::connect(owner.as_str()).await.unwrap();
    assert_eq!(ex.reap_orphans().await, 1);
    assert_eq!(
        containers(&format!("{OWNER_LABEL}={owner}")),
        1,
        "only our service container is left"
    );
    assert_eq!(running("io.gantry.service=svc"), 1);
    assert_eq!(
        containers(&format!("{OWNER_LABEL}={other}")),
        1,
        "not ours: left alone"
    );
    for who in [&owner, &other] {
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!("docker rm -f $(docker ps -aq --filter label={OWNER_LABEL}={who})"),
            ])
            .output();
    }
}

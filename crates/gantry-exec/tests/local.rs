//! The local executor against real processes.

use gantry_core::dag::Outcome;
use gantry_engine::logs::Logs;
use gantry_engine::ports::{CancelSignal, Executor, Launch};
use gantry_exec::LocalExecutor;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the attempt wrote to its log.
fn log_text(l: &Launch) -> std::io::Result<String> {
    Ok(String::from_utf8_lossy(&l.log.contents()?).into_owned())
}

fn launch(dir: &Path, commands: &[&str], timeout_ms: u64) -> Launch {
    Launch {
        run_id: "r1".into(),
        job: "j".into(),
        attempt: 1,
        trace_id: "t".into(),
        commands: commands.iter().map(|c| c.to_string()).collect(),
        env: vec![("GREETING".into(), "hello".into())],
        timeout_ms,
        workspace: dir.join("ws"),
        log: Logs::new(dir.join("logs")).attempt("r1", "j", 1),
        image: None,
        secrets: vec![],
        checkout: None,
        notes: vec![],
        container: None,
    }
}

fn no_cancel() -> (watch::Sender<bool>, CancelSignal) {
    let (tx, rx) = watch::channel(false);
    (tx, CancelSignal(rx))
}

fn executor(owner: &str) -> LocalExecutor {
    LocalExecutor::new(owner, Duration::from_millis(500))
}

/// Whether any process still carries `marker` in its command line.
fn alive(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .contains(marker)
        })
    })
}

#[tokio::test]
async fn runs_commands_in_one_session_with_env_and_interleaved_log() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let l = launch(
        dir.path(),
        &["X=1; echo out $GREETING", "echo err $X >&2", "pwd"],
        10_000,
    );
    let outcome = executor("t1").execute(l.clone(), cancel).await;
    assert_eq!(outcome, Outcome::Succeeded);
    let log = log_text(&l).unwrap();
    let ws = std::fs::canonicalize(&l.workspace).unwrap();
    let want = format!(
        "$ X=1; echo out $GREETING\nout hello\n$ echo err $X >&2\nerr 1\n$ pwd\n{}\n",
        ws.display()
    );
    assert_eq!(log, want, "each command's line, then its output");
}

#[tokio::test]
async fn first_failing_command_stops_the_session_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let l = launch(
        dir.path(),
        &["echo 'it''s one'", "exit 7", "echo never"],
        10_000,
    );
    assert_eq!(
        executor("t2").execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: Some(7) }
    );
    let log = log_text(&l).unwrap();
    assert!(
        log.starts_with(
            "$ echo 'it''s one'
its one
$ exit 7
"
        ),
        "{log}"
    );
    assert!(!log.contains("never"), "{log}");
}

#[tokio::test]
async fn timeout_kills_the_whole_group_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let marker = "sleep 3987";
    // A background child that ignores TERM, and a foreground one.
    let l = launch(
        dir.path(),
        &["trap '' TERM; (trap '' TERM; sleep 3987) & sleep 3987"],
        300,
    );
    let start = Instant::now();
    let outcome = executor("t4").execute(l.clone(), cancel).await;
    let took = start.elapsed();
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(took < Duration::from_millis(300 + 2000), "took {took:?}");
    // Nothing of the attempt runs once its end is reported.
    assert!(!alive(marker), "a process of the timed-out job survived");
    assert!(log_text(&l).unwrap().contains("timed out after 300ms"));
}

#[tokio::test]
async fn cancel_stops_a_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, cancel) = no_cancel();
    let l = launch(dir.path(), &["sleep 3988"], 60_000);
    let ex = executor("t5");
    let job = tokio::spawn(async move { ex.execute(l, cancel).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alive("sleep 3988"));
    tx.send(true).unwrap();
    assert_eq!(job.await.unwrap(), Outcome::Cancelled);
    assert!(!alive("sleep 3988"), "ended means nothing of it runs");
}

#[tokio::test]
async fn leftover_background_processes_are_killed_when_the_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let l = launch(dir.path(), &["sleep 3989 &", "echo left it"], 10_000);
    assert_eq!(executor("t6").execute(l, cancel).await, Outcome::Succeeded);
    assert!(!alive("sleep 3989"), "ended means nothing of it runs");
}

#[tokio::test]
async fn orphans_of_a_previous_life_are_reaped_by_owner() {
    let dir = tempfile::tempdir().unwrap();
    // Start an attempt and abandon it, as a crashed server would.
    let (tx, cancel) = no_cancel();
    let l = launch(dir.path(), &["sleep 3990"], 60_000);
    let ex = executor("owner-a");
    let job = tokio::spawn(async move { ex.execute(l, cancel).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    job.abort();
    drop(tx);
    assert!(alive("sleep 3990"));
    assert_eq!(
        executor("owner-b").reap_orphans().await,
        0,
        "another owner's processes are not touched"
    );
    assert!(alive("sleep 3990"));
    assert_eq!(executor("owner-a").reap_orphans().await, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!alive("sleep 3990"));
}

#[tokio::test]
async fn a_plain_command_runs_without_the_shell_and_a_missing_one_exits_127() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let l = launch(dir.path(), &["env"], 10_000);
    assert_eq!(
        executor("t7").execute(l.clone(), cancel).await,
        Outcome::Succeeded
    );
    let log = log_text(&l).unwrap();
    assert!(
        log.contains("GREETING=hello") && log.contains("GANTRY_WORKSPACE="),
        "{log}"
    );
    let (_tx, cancel) = no_cancel();
    let l = launch(dir.path(), &["no-such-program-xyz --flag"], 10_000);
    assert_eq!(
        executor("t8").execute(l.clone(), cancel).await,
        Outcome::Failed {
            exit_code: Some(127)
        }
    );
    let log = log_text(&l).unwrap();
    // Not found on PATH: the shell runs it and reports it, as it would for any command.
    assert!(log.contains("no-such-program-xyz: not found"), "{log}");
    assert_eq!(
        log.matches("$ no-such-program-xyz --flag").count(),
        1,
        "the command's line is written once (by the shell that ran it): {log}"
    );
}

#[tokio::test]
async fn a_new_attempt_starts_in_an_empty_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let first = launch(
        dir.path(),
        &["touch left-over", "mkdir -p d/e && touch d/e/f"],
        10_000,
    );
    assert_eq!(
        executor("t9").execute(first.clone(), cancel).await,
        Outcome::Succeeded
    );
    assert!(first.workspace.join("left-over").exists());
    let (_tx, cancel) = no_cancel();
    let mut second = launch(dir.path(), &["test ! -e left-over && test ! -e d"], 10_000);
    second.attempt = 2;
    second.log = Logs::new(dir.path().join("logs")).attempt("r1", "j", 2);
    assert_eq!(
        executor("t9").execute(second, cancel).await,
        Outcome::Succeeded
    );
}

#[tokio::test]
async fn secrets_reach_the_env_and_every_encoding_is_masked_in_the_log() {
    use gantry_engine::ports::SecretValue;
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let mut l = launch(
        dir.path(),
        &[
            "echo plain=$API_KEY",
            "printf %s \"$API_KEY\" | base64",
            "printf %s \"$API_KEY\" | base64 | tr '+/' '-_' | tr -d =",
            "echo url=p%40ss%2Fw0rd%20x",
            "printf '%s\\n' \"$CERT\"",
            "echo err=$API_KEY >&2",
            "test \"$API_KEY\" = 'p@ss/w0rd x' && echo env-ok",
        ],
        10_000,
    );
    l.secrets = vec![
        ("API_KEY".into(), SecretValue::new("p@ss/w0rd x".into())),
        (
            "CERT".into(),
            SecretValue::new("-----BEGIN-----\nline-two-data\n-----END-----".into()),
        ),
    ];
    l.notes = vec!["gantry: a note about p@ss/w0rd x".into()];
    let outcome = executor("t-secrets").execute(l.clone(), cancel).await;
    let log = log_text(&l).unwrap();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(log.contains("env-ok"), "the job saw the value: {log}");
    for leaked in [
        "p@ss/w0rd x",
        "cEBzcy93MHJkIHg",
        "p%40ss%2Fw0rd%20x",
        "line-two-data",
        "-----BEGIN-----",
    ] {
        assert!(!log.contains(leaked), "{leaked} leaked into: {log}");
    }
    assert!(
        log.contains("plain=***") && log.contains("err=***"),
        "{log}"
    );
    assert!(log.contains("a note about ***"), "{log}");
}

#[tokio::test]
async fn a_workspace_left_empty_becomes_a_later_jobs_and_one_left_with_files_stays() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor("t-pool");
    let at = |ws: &str, cmd: &str| {
        let mut l = launch(dir.path(), &[cmd], 10_000);
        l.workspace = dir.path().join(ws);
        l
    };
    let run = |l: Launch| {
        let exec = &exec;
        async move {
            let (_tx, cancel) = no_cancel();
            exec.execute(l, cancel).await
        }
    };
    assert_eq!(run(at("r1/a", "true")).await, Outcome::Succeeded);
    assert!(
        dir.path().join("r1/a").is_dir(),
        "left in place until needed"
    );
    // The next job (of another run, whose folder does not exist yet) gets it, and it is empty.
    assert_eq!(
        run(at("r2/b", "test -z \"$(ls -A)\" && touch made")).await,
        Outcome::Succeeded
    );
    assert!(!dir.path().join("r1/a").exists());
    assert!(dir.path().join("r2/b/made").exists());
    // b's workspace has a file in it, so it is not reused: c gets a new folder.
    assert_eq!(run(at("r2/c", "pwd")).await, Outcome::Succeeded);
    assert!(dir.path().join("r2/b/made").exists());
    assert!(dir.path().join("r2/c").is_dir());
}

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

/// Polls `cond` until it holds, or panics after 10 s: a process starts (or dies) some time
/// after the call that asked for it, later on a loaded machine.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    // The job ran in a workspace folder of its run's folder (the parent of its own place).
    let ws = std::path::PathBuf::from(log.lines().last().unwrap());
    assert_eq!(
        ws.parent().unwrap(),
        std::fs::canonicalize(dir.path()).unwrap()
    );
    assert!(
        ws.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".ws-")
    );
    let want = format!(
        "$ X=1; echo out $GREETING\nout hello\n$ echo err $X >&2\nerr 1\n$ pwd\n{}\n",
        ws.display()
    );
    assert_eq!(log, want, "each command's line, then its output");
}

#[tokio::test]
async fn each_job_gets_only_its_own_output_though_pipes_are_made_ahead() {
    // The executor makes the next job's pipe once a job has started: jobs one after another,
    // and two at once, must each find only their own output in their log, after their `$` line.
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let ex = executor("t-pipes");
    let logs = Logs::new(dir.path().join("logs"));
    let job = |name: &str, command: &str| {
        let mut l = launch(dir.path(), &[command], 10_000);
        l.job = name.into();
        l.log = logs.attempt("r1", name, 1);
        l
    };
    for i in 0..3 {
        let l = job(&format!("seq{i}"), &format!("echo job {i}"));
        assert_eq!(
            ex.execute(l.clone(), cancel.clone()).await,
            Outcome::Succeeded
        );
        assert_eq!(log_text(&l).unwrap(), format!("$ echo job {i}\njob {i}\n"));
    }
    let a = job("a", "sleep 0.2; echo from a");
    let b = job("b", "echo from b; sleep 0.1");
    let (ra, rb) = tokio::join!(
        ex.execute(a.clone(), cancel.clone()),
        ex.execute(b.clone(), cancel.clone())
    );
    assert_eq!((ra, rb), (Outcome::Succeeded, Outcome::Succeeded));
    assert_eq!(log_text(&a).unwrap(), "$ sleep 0.2; echo from a\nfrom a\n");
    assert_eq!(log_text(&b).unwrap(), "$ echo from b; sleep 0.1\nfrom b\n");
}

#[tokio::test]
async fn a_job_that_closes_its_output_early_is_waited_for_to_its_end() {
    // The end of a job's output usually comes with its exit, and is then the cue to reap it;
    // here it comes first, and must not be taken for the end of the job.
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let l = launch(
        dir.path(),
        &["echo before", "exec >/dev/null 2>&1", "sleep 0.3", "exit 3"],
        10_000,
    );
    let started = Instant::now();
    let outcome = executor("t-early").execute(l.clone(), cancel).await;
    assert_eq!(outcome, Outcome::Failed { exit_code: Some(3) });
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(log_text(&l).unwrap().contains("before\n"));
}

#[tokio::test]
async fn output_larger_than_a_read_reaches_the_log_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    // ~190 KB, more than the pipe holds and many reads' worth: nothing lost, nothing reordered.
    let l = launch(dir.path(), &["seq 1 30000"], 10_000);
    let outcome = executor("t-big").execute(l.clone(), cancel).await;
    assert_eq!(outcome, Outcome::Succeeded);
    let mut want = String::from("$ seq 1 30000\n");
    for i in 1..=30000 {
        want.push_str(&format!("{i}\n"));
    }
    assert!(
        log_text(&l).unwrap() == want,
        "the log is the output, byte for byte"
    );
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
    until("the job runs", || alive("sleep 3988")).await;
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
    until("the attempt runs", || alive("sleep 3990")).await;
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
    until("the orphan is gone", || !alive("sleep 3990")).await;
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
async fn a_workspace_left_empty_is_a_later_jobs_and_one_left_with_files_goes_to_the_jobs_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let exec = executor("t-pool");
    // Each job prints its workspace (and what it finds there) as its last line.
    let run = |place: &str, cmd: &str| {
        let mut l = launch(
            dir.path(),
            &[cmd, "echo \"$GANTRY_WORKSPACE:$(ls -A)\""],
            10_000,
        );
        l.workspace = dir.path().join(place);
        let exec = &exec;
        async move {
            let (_tx, cancel) = no_cancel();
            let outcome = exec.execute(l.clone(), cancel).await;
            let log = log_text(&l).unwrap();
            assert_eq!(outcome, Outcome::Succeeded, "{log}");
            let last = log.lines().last().unwrap().to_string();
            let (ws, found) = last.split_once(':').unwrap();
            (
                std::fs::canonicalize(ws).ok(),
                ws.to_string(),
                found.to_string(),
            )
        }
    };
    let (a_ws, a_path, found) = run("r1/a", "true").await;
    assert_eq!(found, "", "a new workspace is empty");
    let a_ws = a_ws.expect("the empty workspace is kept for the next job");
    assert_eq!(
        a_ws.parent().unwrap(),
        root.join("r1"),
        "in the run's folder"
    );
    assert!(!dir.path().join("r1/a").exists(), "a left nothing to keep");
    // The next job of the run runs in the same folder, still empty; it leaves a file, so the
    // folder becomes b's own place.
    let (_, b_path, found) = run("r1/b", "touch made").await;
    assert_eq!((b_path.as_str(), found.as_str()), (a_path.as_str(), "made"));
    assert!(dir.path().join("r1/b/made").exists());
    assert!(!std::path::Path::new(&a_path).exists(), "moved, not copied");
    // With no empty workspace pooled, another run's job gets a new folder in its own folder;
    // a job of a third run then gets that one, moved into the third run's folder.
    let (c_ws, ..) = run("r2/c", "true").await;
    assert_eq!(c_ws.unwrap().parent().unwrap(), root.join("r2"));
    let (d_ws, d_path, found) = run("r3/d", "true").await;
    assert_eq!(found, "");
    assert_eq!(d_ws.unwrap().parent().unwrap(), root.join("r3"));
    let left_in_r2: Vec<_> = std::fs::read_dir(dir.path().join("r2")).unwrap().collect();
    assert!(
        left_in_r2.is_empty(),
        "r2's workspace moved to r3 ({d_path})"
    );
    // A later attempt of a job finds its place cleared of the earlier attempt's files, and
    // leaves its own there.
    let mut again = launch(dir.path(), &["touch second"], 10_000);
    again.workspace = dir.path().join("r1/b");
    again.attempt = 2;
    let (_tx, cancel) = no_cancel();
    assert_eq!(exec.execute(again, cancel).await, Outcome::Succeeded);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("r1/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["second"]);
}

#[tokio::test]
async fn a_job_inherits_our_environment_and_its_own_variables_replace_ours() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let mut l = launch(
        dir.path(),
        &["echo \"home=$HOME path=${PATH:+set} $(env | grep -c '^HOME=')\""],
        10_000,
    );
    l.env.push(("HOME".into(), "/job-home".into()));
    assert!(std::env::var_os("HOME").is_some() && std::env::var_os("PATH").is_some());
    assert_eq!(
        executor("t-env").execute(l.clone(), cancel).await,
        Outcome::Succeeded
    );
    let log = log_text(&l).unwrap();
    assert!(log.ends_with("home=/job-home path=set 1\n"), "{log}");
}

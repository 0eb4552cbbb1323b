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
        aws: None,
        artifacts: Default::default(),
        cache: None,
    }
}

fn no_cancel() -> (watch::Sender<bool>, CancelSignal) {
    let (tx, rx) = watch::channel(false);
    (tx, CancelSignal(rx))
}

fn executor(owner: &str) -> LocalExecutor {
    LocalExecutor::new(owner, Duration::from_millis(500))
}

/// Whether any running process carries `marker` in its command line (`ps` is the same on
/// Linux and macOS for this; an exited process waiting to be reaped shows no arguments).
fn alive(marker: &str) -> bool {
    let out = std::process::Command::new("ps")
        .args(["-A", "-ww", "-o", "args="])
        .output()
        .expect("run ps");
    assert!(out.status.success(), "ps failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(marker) && !l.contains("<defunct>"))
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

/// Whether a process has the pid: running, or exited and not yet reaped.
fn pid_exists(pid: i32) -> bool {
    use nix::sys::signal::kill;
    !matches!(
        kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Whether any process is in the group: running, or exited and not yet reaped.
fn group_exists(group: i32) -> bool {
    use nix::sys::signal::killpg;
    !matches!(
        killpg(nix::unistd::Pid::from_raw(group), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
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
    // The job ran at its place, the workspace it was given.
    let ws = std::path::PathBuf::from(log.lines().last().unwrap());
    assert_eq!(ws, std::fs::canonicalize(dir.path().join("ws")).unwrap());
    let want = format!(
        "$ X=1; echo out $GREETING\nout hello\n$ echo err $X >&2\nerr 1\n$ pwd\n{}\n",
        ws.display()
    );
    assert_eq!(log, want, "each command's line, then its output");
}

#[tokio::test]
async fn each_job_gets_only_its_own_output() {
    // Jobs one after another, and two at once, each find only their own output in their log,
    // after their `$` line.
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let ex = executor("t-pipes");
    let logs = Logs::new(dir.path().join("logs"));
    let job = |name: &str, command: &str| {
        let mut l = launch(dir.path(), &[command], 10_000);
        l.job = name.into();
        l.workspace = dir.path().join(name);
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
    use std::os::unix::process::CommandExt;
    // What a crashed server leaves: a job's process group, its processes marked with their
    // owner. (A dropped attempt does not leave one: see the test below.)
    let mut left = std::process::Command::new("/bin/sh")
        .args(["-c", "sleep 3990 & sleep 3990; wait"])
        .env("GANTRY_EXEC_OWNER", "owner-a")
        .process_group(0)
        .spawn()
        .unwrap();
    until("the orphan runs", || alive("sleep 3990")).await;
    assert_eq!(
        executor("owner-b").reap_orphans().await,
        0,
        "another owner's processes are not touched"
    );
    assert!(alive("sleep 3990"));
    assert_eq!(executor("owner-a").reap_orphans().await, 1, "one group");
    until("the orphans are gone", || !alive("sleep 3990")).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(left.wait().unwrap().signal(), Some(9), "KILLed");
}

#[tokio::test]
async fn a_dropped_attempt_leaves_no_process_behind_and_no_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    // The session writes its pid (its group's id) and leaves a background process running.
    let l = launch(
        dir.path(),
        &["echo $$ > ../pid", "sleep 3991 &", "sleep 3991"],
        60_000,
    );
    let ex = executor("t-drop");
    let mut job = Box::pin(ex.execute(l, cancel));
    let pid_file = dir.path().join("pid");
    let running = async {
        until("the job runs", || {
            std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
                && alive("sleep 3991")
        })
        .await
    };
    tokio::select! {
        outcome = &mut job => panic!("the job ended: {outcome:?}"),
        () = running => {}
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_exists(pid) && group_exists(pid));
    drop(job);
    // The group is KILLed at once. The session's process is ours to reap: the runtime does it
    // (this test keeps it turning); the rest of the group, orphaned, is init's.
    until("the session's process is gone (not a zombie)", || {
        !pid_exists(pid)
    })
    .await;
    until("nothing of the group runs", || !alive("sleep 3991")).await;
    until("the group is gone", || !group_exists(pid)).await;
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
        log.contains("GREETING=hello")
            && log.contains("GANTRY_WORKSPACE=")
            && log.contains("GANTRY_EXEC_OWNER=t7\n"),
        "the job's variables, its workspace and its owner's mark: {log}"
    );
    let (_tx, cancel) = no_cancel();
    let mut l = launch(dir.path(), &["no-such-program-xyz --flag"], 10_000);
    l.log = Logs::new(dir.path().join("logs")).attempt("r1", "j", 2);
    assert_eq!(
        executor("t8").execute(l.clone(), cancel).await,
        Outcome::Failed {
            exit_code: Some(127)
        }
    );
    let log = log_text(&l).unwrap();
    assert_eq!(
        log,
        "$ no-such-program-xyz --flag\n\ngantry: no-such-program-xyz: command not found\n"
    );
}

#[tokio::test]
async fn a_program_is_looked_up_in_the_jobs_path_each_time_it_starts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("bin1"), dir.path().join("bin2"));
    std::fs::create_dir(&first).unwrap();
    std::fs::create_dir(&second).unwrap();
    let tool = |dir: &Path, says: &str| {
        let path = dir.join("gantry-test-tool");
        std::fs::write(&path, format!("#!/bin/sh\necho {says} \"$@\"\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let ex = executor("t-path");
    let path = format!(
        "{}:{}:{}",
        first.display(),
        second.display(),
        std::env::var("PATH").unwrap()
    );
    let run = |attempt: u32| {
        let mut l = launch(dir.path(), &["gantry-test-tool arg"], 10_000);
        l.env.push(("PATH".into(), path.clone()));
        l.attempt = attempt;
        l.log = Logs::new(dir.path().join("logs")).attempt("r1", "j", attempt);
        let ex = &ex;
        async move {
            let (_tx, cancel) = no_cancel();
            let outcome = ex.execute(l.clone(), cancel).await;
            (outcome, log_text(&l).unwrap())
        }
    };
    // Not there yet, then installed while the executor exists, then shadowed by one installed
    // earlier in the PATH: each start finds what is there at that moment.
    let (outcome, log) = run(1).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            exit_code: Some(127)
        },
        "{log}"
    );
    assert!(
        log.contains("gantry: gantry-test-tool: command not found"),
        "{log}"
    );
    tool(&second, "second");
    let (outcome, log) = run(2).await;
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(
        log.ends_with("$ gantry-test-tool arg\nsecond arg\n"),
        "{log}"
    );
    tool(&first, "first");
    let (outcome, log) = run(3).await;
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(
        log.ends_with("$ gantry-test-tool arg\nfirst arg\n"),
        "{log}"
    );
    // Found, but not executable (and nothing executable of that name later in the PATH).
    std::fs::remove_file(second.join("gantry-test-tool")).unwrap();
    std::fs::set_permissions(
        first.join("gantry-test-tool"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (outcome, log) = run(4).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            exit_code: Some(126)
        },
        "{log}"
    );
    assert!(
        log.contains("gantry: gantry-test-tool: permission denied"),
        "{log}"
    );
}

#[tokio::test]
async fn a_job_gets_the_default_sigpipe_and_no_input() {
    // We ignore SIGPIPE (Rust's runtime does); a job must not inherit that: `yes` ends quietly
    // when `head` stops reading, and `cat` reads nothing.
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let l = launch(
        dir.path(),
        &["yes | head -n 2", "cat; echo read-nothing"],
        10_000,
    );
    let outcome = executor("t-sigpipe").execute(l.clone(), cancel).await;
    let log = log_text(&l).unwrap();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert_eq!(
        log,
        "$ yes | head -n 2\ny\ny\n$ cat; echo read-nothing\nread-nothing\n"
    );
}

#[tokio::test]
async fn a_new_attempt_starts_in_a_new_empty_workspace_and_the_earlier_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, cancel) = no_cancel();
    let first = launch(
        dir.path(),
        &["touch left-over", "mkdir -p d/e && touch d/e/f"],
        10_000,
    );
    let ex = executor("t9");
    assert_eq!(ex.execute(first.clone(), cancel).await, Outcome::Succeeded);
    // The files an attempt leaves stay at its place.
    assert_eq!(names(&first.workspace), ["d", "left-over"]);
    let (_tx, cancel) = no_cancel();
    let mut second = launch(
        dir.path(),
        &["test -z \"$(ls -A)\" && touch second && echo empty"],
        10_000,
    );
    second.attempt = 2;
    second.log = Logs::new(dir.path().join("logs")).attempt("r1", "j", 2);
    let outcome = ex.execute(second.clone(), cancel).await;
    let log = log_text(&second).unwrap();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(log.ends_with("empty\n"), "{log}");
    assert_eq!(names(&second.workspace), ["second"]);
    // The first attempt's files were moved aside and are removed in the background.
    until("the earlier attempt's files are removed", || {
        names(dir.path()) == ["logs", "ws"]
    })
    .await;
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
async fn a_relative_workspace_is_made_absolute_for_the_job() {
    // The default data dir is `./.gantry`: the job's GANTRY_WORKSPACE and its working folder
    // must still name its workspace from wherever the job looks.
    let here = tempfile::tempdir_in(".").unwrap();
    let rel = here
        .path()
        .strip_prefix(std::env::current_dir().unwrap())
        .unwrap();
    let l = launch(
        rel,
        &["cd / && test -d \"$GANTRY_WORKSPACE\" && echo \"$GANTRY_WORKSPACE\""],
        10_000,
    );
    assert!(l.workspace.is_relative());
    let (_tx, cancel) = no_cancel();
    let outcome = executor("t-rel").execute(l.clone(), cancel).await;
    let log = log_text(&l).unwrap();
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    let want = std::fs::canonicalize(here.path().join("ws")).unwrap();
    let got = std::fs::canonicalize(log.lines().last().unwrap()).unwrap();
    assert_eq!(got, want);
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

//! The local executor: each attempt runs its commands in one `sh -e` session (one plain command
//! runs as that program, without the shell), in its workspace and its own process group, with
//! stdout and stderr going through one pipe into the attempt's log.
//!
//! Timeout and cancellation stop the whole group: TERM, then KILL after a grace period. When the
//! session ends, whatever it left running in its group is killed too, and the attempt is
//! reported ended only once nothing of the group runs. An attempt whose future is dropped
//! mid-job takes its group with it: the group is killed, and the runtime reaps the session's
//! process.
//!
//! Every process of an attempt carries its owner in its environment, so a restarted server can
//! find and stop what its previous life left running (`reap_orphans`).

use crate::git::GitSources;
use crate::isolation::Isolation;
use crate::masked_log;
use crate::workspace;
use async_trait::async_trait;
use gantry_core::dag::Outcome;
use gantry_engine::ports::{CancelSignal, Executor, Launch};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};
use tracing::{debug, warn};

/// Environment variable that marks every process of an attempt with its owner, so a restarted
/// server can find and stop what its previous life left running.
const OWNER_ENV: &str = "GANTRY_EXEC_OWNER";

pub struct LocalExecutor {
    owner: String,
    kill_grace: Duration,
    /// Puts a job's source into its workspace.
    git: Option<Arc<GitSources>>,
    /// A local run's working tree, copied into the workspace of each job without a `source`.
    tree: Option<Arc<crate::WorkingTree>>,
    /// The environment and user jobs start with.
    isolation: Isolation,
}

impl LocalExecutor {
    /// `owner` names this server's attempts (stable across its restarts); `kill_grace` is the
    /// time between TERM and KILL.
    pub fn new(owner: impl Into<String>, kill_grace: Duration) -> Self {
        LocalExecutor {
            owner: owner.into(),
            kill_grace,
            git: None,
            tree: None,
            isolation: Isolation::Inherit,
        }
    }

    /// Jobs start with this environment and as this user (by default: ours, without our
    /// `GANTRY_*` settings).
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Jobs with a `source` are checked out through `git`.
    pub fn with_git(mut self, git: Arc<GitSources>) -> Self {
        self.git = Some(git);
        self
    }

    /// Jobs without a `source` start with a copy of `tree` (a local run's working tree).
    pub fn with_tree(mut self, tree: Arc<crate::WorkingTree>) -> Self {
        self.tree = Some(tree);
        self
    }

    /// Starts the job: `direct` (a program and its arguments) or its `sh -e` session, in its
    /// workspace, leading a new process group, with standard input from /dev/null and
    /// standard output and error into one new pipe, whose other end comes back with it.
    fn spawn(
        &self,
        launch: &Launch,
        direct: Option<&[&str]>,
    ) -> std::io::Result<(Child, masked_log::Output)> {
        let mut cmd = match direct {
            Some([program, args @ ..]) => {
                // A path names a file from the workspace; a bare name is looked up as the
                // job starts, in the job's PATH, as the shell would (`Command` does it so).
                let mut cmd = if program.contains('/') {
                    Command::new(launch.workspace.join(program))
                } else {
                    Command::new(program)
                };
                cmd.args(args);
                cmd
            }
            _ => {
                let mut cmd = Command::new("/bin/sh");
                cmd.args(["-e", "-c", &session_script(&launch.commands)]);
                cmd
            }
        };
        cmd.current_dir(&launch.workspace);
        // The environment the isolation gives (never the server's `GANTRY_*` settings), then
        // the job's variables, the owner mark, the workspace and the secrets (a later setting
        // of a name wins).
        self.isolation.apply(&mut cmd);
        cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
        cmd.env(OWNER_ENV, &self.owner);
        cmd.env("GANTRY_WORKSPACE", &launch.workspace);
        cmd.envs(launch.secrets.iter().map(|(k, v)| (k, v.expose())));
        let (writer, output) = masked_log::pipe()?;
        cmd.stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        // `cmd` goes here, and with it our copies of the write end: once the job's are closed
        // too, the copier sees the end of its output.
        Ok((child, output))
    }

    /// TERM to the group; KILL to the group if the session has not ended within the grace;
    /// then whatever is left of the group, as when a session ends.
    async fn stop(&self, session: &mut Session) {
        let _ = killpg(session.group, Signal::SIGTERM);
        if tokio::time::timeout(self.kill_grace, session.child.wait())
            .await
            .is_err()
        {
            let _ = killpg(session.group, Signal::SIGKILL);
            let _ = session.child.wait().await;
        }
        kill_group(session.group).await;
    }
}

/// A started job: the session's process, which leads the job's process group.
struct Session {
    child: Child,
    group: Pid,
    /// Set once nothing of the group is left to stop.
    over: bool,
}

impl Drop for Session {
    /// A session dropped before it was over (the attempt's future was dropped mid-job): the
    /// group is KILLed. The process itself is killed again by `kill_on_drop` and, not having
    /// been waited for, reaped by the runtime; the rest of the group, orphaned, by init.
    fn drop(&mut self) {
        if !self.over {
            let _ = killpg(self.group, Signal::SIGKILL);
        }
    }
}

/// Aborts the copier when dropped: after a job, the copy is waited for only so long (something
/// that escaped the group may hold the pipe open), and a dropped attempt leaves none behind.
struct Copier(tokio::task::JoinHandle<()>);

impl Drop for Copier {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LocalExecutor {
    /// One attempt: its workspace, then its commands, to their end.
    async fn attempt(&self, mut launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let Some(masker) =
            workspace::start(self.git.as_deref(), self.tree.as_deref(), &mut launch).await
        else {
            return Outcome::Failed { exit_code: None };
        };
        if let Some(user) = self.isolation.run_as()
            && let Err(e) = workspace::hand_over(&launch.workspace, user)
        {
            note(
                &launch,
                &format!(
                    "gantry: cannot give the workspace to the user `{}`: {e}",
                    user.name
                ),
            );
            return Outcome::Failed { exit_code: None };
        }
        let direct = direct_argv(&launch.commands);
        let started = self.spawn(&launch, direct.as_deref());
        // A plain command runs without the shell, so its `$` line is written here (after it
        // started, but before anything it writes is copied); the shell session echoes each
        // command's line itself, just before running it.
        if direct.is_some() {
            launch
                .log
                .note(&masker.mask(&echo_line(&launch.commands[0])));
        }
        let (child, output) = match started {
            Ok(started) => started,
            Err(e) => {
                // As the shell would report it: 127 not found, 126 not executable.
                let program = direct.as_ref().map_or("/bin/sh", |argv| argv[0]);
                let (code, what) = match e.kind() {
                    std::io::ErrorKind::NotFound => (127, "command not found".to_string()),
                    std::io::ErrorKind::PermissionDenied => (126, "permission denied".to_string()),
                    _ => (126, e.to_string()),
                };
                note(&launch, &masker.mask(&format!("gantry: {program}: {what}")));
                return Outcome::Failed {
                    exit_code: Some(code),
                };
            }
        };
        let mut copier = Copier(output.copy_into(launch.log.clone(), masker));
        let Some(group) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
            // (A child not waited for yet has its id: not reached.)
            note(&launch, "gantry: lost track of the job's process");
            return Outcome::Failed { exit_code: None };
        };
        debug!(pid = group, "started");
        let mut session = Session {
            child,
            group: Pid::from_raw(group),
            over: false,
        };
        let timeout = tokio::time::sleep(Duration::from_millis(launch.timeout_ms));
        let (outcome, last_word) = tokio::select! {
            status = session.child.wait() => {
                // The session is over; anything it left behind in its group goes too.
                kill_group(session.group).await;
                match status {
                    Ok(s) => (outcome_of(s), None),
                    Err(e) => {
                        warn!(cause = %e, "lost track of the job's process");
                        (
                            Outcome::Failed { exit_code: None },
                            Some(format!("gantry: lost track of the job's process: {e}")),
                        )
                    }
                }
            }
            _ = timeout => {
                self.stop(&mut session).await;
                let after = gantry_core::duration::format_duration_ms(launch.timeout_ms);
                (Outcome::TimedOut, Some(format!("gantry: timed out after {after}")))
            }
            _ = cancel.cancelled() => {
                self.stop(&mut session).await;
                (Outcome::Cancelled, Some("gantry: cancelled".to_string()))
            }
        };
        session.over = true;
        // The group is gone, so the pipe has no writers left (unless something escaped the
        // group): the job's output is all in the log after this, and the engine's word follows.
        let _ = tokio::time::timeout(COPY_WITHIN, &mut copier.0).await;
        drop(copier);
        if let Some(line) = last_word {
            note(&launch, &line);
        }
        outcome
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn execute(&self, launch: Launch, cancel: CancelSignal) -> Outcome {
        let after = workspace::AfterCommands::of(&launch);
        let outcome = self.attempt(launch, cancel).await;
        after.finish(outcome).await
    }

    async fn reap_orphans(&self) -> usize {
        let needle = format!("{OWNER_ENV}={}", self.owner);
        // Never our own group (were we started by a job of the same owner), nor 0 or 1: to
        // `killpg` those mean our own group, and every process we may signal.
        let ours = nix::unistd::getpgrp();
        let groups: BTreeSet<Pid> = marked_groups(&needle)
            .await
            .into_iter()
            .filter(|g| *g != ours && g.as_raw() > 1)
            .collect();
        for g in &groups {
            let _ = killpg(*g, Signal::SIGKILL);
        }
        groups.len()
    }
}

/// Longest wait for a job's output to reach the log once its group is gone.
const COPY_WITHIN: Duration = Duration::from_secs(5);

/// Longest wait for a killed group's processes to be gone.
const GROUP_GONE_WITHIN: Duration = Duration::from_secs(2);

/// KILLs whatever is left in the group and waits (up to `GROUP_GONE_WITHIN`) until none of it
/// is still running, so an attempt is reported ended only once nothing of it runs. An empty
/// group (the usual case) costs the one `kill`.
pub(crate) async fn kill_group(group: Pid) {
    if killpg(group, Signal::SIGKILL).is_err() {
        return; // no process left in the group
    }
    let deadline = tokio::time::Instant::now() + GROUP_GONE_WITHIN;
    while group_runs(group) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether a process of the group is still running: on Linux, read from /proc, where exited
/// processes waiting to be reaped by whoever inherited them are told apart (and not counted).
#[cfg(target_os = "linux")]
fn group_runs(group: Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return group_has_members(group);
    };
    let group = group.as_raw().to_string();
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok())
            && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
                // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
                fields
                    .first()
                    .is_some_and(|state| *state != "Z" && *state != "X")
                    && fields.get(2) == Some(&group.as_str())
            })
    })
}

/// Whether a process of the group is still running: elsewhere, whether the group has members
/// at all.
#[cfg(not(target_os = "linux"))]
fn group_runs(group: Pid) -> bool {
    group_has_members(group)
}

/// Whether any process is in the group (`kill(-group, 0)`, as POSIX has it). An exited member
/// counts until it is reaped; after a session the leader has been reaped by us and the others,
/// orphaned, are reaped by init (launchd on macOS) as they exit, so this turns false soon after
/// the last one exits (and the wait for it is bounded anyway).
fn group_has_members(group: Pid) -> bool {
    !matches!(killpg(group, None), Err(nix::errno::Errno::ESRCH))
}

/// The process groups of processes whose environment holds `needle` (`NAME=value`): on Linux,
/// read from /proc/<pid>/environ (the environment each process started with).
#[cfg(target_os = "linux")]
pub(crate) async fn marked_groups(needle: &str) -> BTreeSet<Pid> {
    let mut groups = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        warn!("cannot read /proc to find orphaned jobs");
        return groups;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
            && let Ok(pgid) = nix::unistd::getpgid(Some(Pid::from_raw(pid)))
        {
            groups.insert(pgid);
        }
    }
    groups
}

/// The process groups of processes whose environment holds `needle` (`NAME=value`): elsewhere,
/// from `ps`, which on macOS (`-E`) and the BSDs (`-e`) shows after each command line the
/// environment the process started with, for the processes of our own user (all of them for
/// root) — which is where a job of ours runs. The environment is not set apart from the
/// arguments there, so an argument that is `needle` word for word counts too; nothing but our
/// own jobs has a reason to hold it. (Recording the groups we start in a file instead would
/// need a state folder, and its numbers would name other processes after a reboot.)
#[cfg(not(target_os = "linux"))]
pub(crate) async fn marked_groups(needle: &str) -> BTreeSet<Pid> {
    #[cfg(target_vendor = "apple")]
    const WITH_ENVIRONMENT: &str = "-E";
    #[cfg(not(target_vendor = "apple"))]
    const WITH_ENVIRONMENT: &str = "-e";
    let listed = Command::new("ps")
        .args(["-A", WITH_ENVIRONMENT, "-ww", "-o", "pid=,pgid=,command="])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match listed {
        Ok(out) if out.status.success() => {
            groups_in_ps(&String::from_utf8_lossy(&out.stdout), needle)
        }
        Ok(out) => {
            warn!(status = %out.status, "cannot list processes to find orphaned jobs");
            BTreeSet::new()
        }
        Err(e) => {
            warn!(cause = %e, "cannot list processes to find orphaned jobs");
            BTreeSet::new()
        }
    }
}

/// The groups (second column) of the lines of `ps -o pid=,pgid=,command=` output that have
/// `needle` as a word after the two numbers.
#[cfg(any(not(target_os = "linux"), test))]
fn groups_in_ps(listing: &str, needle: &str) -> BTreeSet<Pid> {
    listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let _pid = words.next()?.parse::<i32>().ok()?;
            let pgid = words.next()?.parse::<i32>().ok()?;
            words.any(|w| w == needle).then(|| Pid::from_raw(pgid))
        })
        .collect()
}

fn outcome_of(status: ExitStatus) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(0), _) => Outcome::Succeeded,
        (Some(code), _) => Outcome::Failed {
            exit_code: Some(code),
        },
        (None, Some(sig)) => Outcome::Failed {
            exit_code: Some(128 + sig),
        },
        (None, None) => Outcome::Failed { exit_code: None },
    }
}

/// How a command is shown in the log: `$ ` and its first line (`…` if it has more).
fn echo_line(cmd: &str) -> String {
    let mut line = format!("$ {}", cmd.lines().next().unwrap_or_default());
    if cmd.lines().nth(1).is_some() {
        line.push_str(" …");
    }
    line
}

/// The `sh -e` script: each command preceded by a `printf` of its `$` line, so the log reads
/// command, output, command, output.
pub(crate) fn session_script(commands: &[String]) -> String {
    let mut script = String::new();
    for cmd in commands {
        let quoted = echo_line(cmd).replace('\'', "'\\''");
        script.push_str(&format!("printf '%s\\n' '{quoted}'\n{cmd}\n"));
    }
    script
}

/// Shell words that are builtins or keywords: a command starting with one needs the shell.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done",
    "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "false", "fc", "fg", "fi",
    "for", "getopts", "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd", "read",
    "readonly", "return", "set", "shift", "test", "then", "times", "trap", "true", "type",
    "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// The argument vector of a job that is one plain command (only words of letters, digits and
/// `_-./+,:@%=`, not starting with a shell builtin, keyword or variable assignment). Such a
/// command means the same run directly as through `sh -e -c`, so it is exec'd without the shell
/// (as make does for simple recipes). Anything else returns `None` and goes through the shell.
pub fn direct_argv(commands: &[String]) -> Option<Vec<&str>> {
    let [only] = commands else { return None };
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./+,:@%= ".contains(c);
    if !only.chars().all(safe) {
        return None;
    }
    let argv: Vec<&str> = only.split(' ').filter(|w| !w.is_empty()).collect();
    let first = *argv.first()?;
    // Alone, `true` and `false` mean the same as a builtin and as a program (with arguments
    // the programs differ: `--help`).
    let same_as_program = matches!(argv.as_slice(), ["true"] | ["false"]);
    if first.contains('=') || (SHELL_WORDS.contains(&first) && !same_as_program) {
        return None;
    }
    Some(argv)
}

/// The engine's word at the end of an attempt's log, after a blank line.
pub(crate) fn note(launch: &Launch, line: &str) {
    launch.log.note(&format!("\n{line}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_found_in_ps_output_by_their_owner_mark_word_for_word() {
        let needle = "GANTRY_EXEC_OWNER=node-a";
        let listing = "\
          1     1 /sbin/launchd
        501   501 /bin/sh -e -c printf x PATH=/usr/bin GANTRY_EXEC_OWNER=node-a HOME=/h
        502   501 sleep 60 GANTRY_EXEC_OWNER=node-a
        610   610 sleep 60 GANTRY_EXEC_OWNER=node-ab
        620   620 sleep 60 X=GANTRY_EXEC_OWNER=node-a
        630   630 sleep 60 GANTRY_EXEC_OWNER=node-b
        700   699 make GANTRY_EXEC_OWNER=node-a
      garbage
";
        let groups: Vec<i32> = groups_in_ps(listing, needle)
            .into_iter()
            .map(Pid::as_raw)
            .collect();
        assert_eq!(groups, [501, 699]);
    }

    #[test]
    fn a_group_has_members_until_its_last_one_is_reaped() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let group = Pid::from_raw(child.id() as i32);
        assert!(group_has_members(group) && group_runs(group));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!group_has_members(group) && !group_runs(group));
    }

    #[test]
    fn only_plain_commands_skip_the_shell() {
        let one = |s: &str| {
            direct_argv(&[s.to_string()])
                .map(|v| v.iter().map(|w| w.to_string()).collect::<Vec<_>>())
        };
        let words = |ws: &[&str]| Some(ws.iter().map(|w| w.to_string()).collect::<Vec<_>>());
        assert_eq!(one("make -j2 all"), words(&["make", "-j2", "all"]));
        assert_eq!(one("true"), words(&["true"]));
        assert_eq!(one("false"), words(&["false"]));
        assert_eq!(
            one("/usr/bin/stamp /tmp/x.ns"),
            words(&["/usr/bin/stamp", "/tmp/x.ns"])
        );
        assert_eq!(
            one("terraform plan -out=plan.tfplan"),
            words(&["terraform", "plan", "-out=plan.tfplan"])
        );
        for shellish in [
            "echo hi",
            "true --help",
            "false 1",
            "cd dir",
            "exit 3",
            "X=1 make",
            "ls *.rs",
            "a && b",
            "a; b",
            "a | b",
            "a > f",
            "echo $HOME",
            "say 'hi'",
            "say \"hi\"",
            "a\\ b",
            "~/bin/x",
            "cmd # note",
            "(sub)",
            "a\nb",
            "",
        ] {
            assert_eq!(one(shellish), None, "{shellish:?}");
        }
        assert_eq!(
            direct_argv(&["make".to_string(), "make".to_string()]),
            None,
            "several commands need one session"
        );
    }
}

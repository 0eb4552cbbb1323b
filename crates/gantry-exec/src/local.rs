//! The local executor: each attempt runs its commands in one `sh -e` session, in its own
//! workspace folder and its own process group, with stdout and stderr going through one pipe
//! into the attempt's log.
//! Timeout and cancellation stop the whole group: TERM, then KILL after a grace period.
//! When the session ends, whatever it left running in its group is killed too.

use crate::git::GitSources;
use crate::masked_log::Pipe;
use crate::spawn::{self, CStrings, Exit, Process, Spawn};
use crate::workspace::{self, Workspace};
use async_trait::async_trait;
use gantry_core::dag::Outcome;
use gantry_engine::ports::{CancelSignal, Executor, Launch};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{debug, warn};

/// Environment variable that marks every process of an attempt with its owner, so a restarted
/// server can find and stop what its previous life left running.
const OWNER_ENV: &str = "GANTRY_EXEC_OWNER";

pub struct LocalExecutor {
    owner: String,
    /// PATH lookups of directly exec'd programs, by PATH and then name.
    resolved: std::sync::Mutex<HashMap<String, HashMap<String, PathBuf>>>,
    /// Our PATH, for jobs that do not set their own.
    path: String,
    kill_grace: Duration,
    /// Our environment as jobs inherit it (before their own variables): without the server's
    /// own `GANTRY_*` settings (tokens, secrets), which are never passed to jobs. Built once;
    /// a job copies it whole unless it sets one of its names.
    base_env: CStrings,
    /// The names in `base_env`, sorted.
    base_names: Vec<Vec<u8>>,
    /// Every job's standard input.
    dev_null: Option<std::fs::File>,
    /// Puts a job's source into its workspace.
    git: Option<std::sync::Arc<GitSources>>,
    workspaces: workspace::WorkspacePool,
    /// The output pipe for the next job, made after the last one started.
    spare: std::sync::Mutex<Option<Pipe>>,
}

impl LocalExecutor {
    /// `owner` names this server's attempts (stable across its restarts); `kill_grace` is the
    /// time between TERM and KILL.
    pub fn new(owner: impl Into<String>, kill_grace: Duration) -> Self {
        let mut base_env = CStrings::default();
        let mut base_names = Vec::new();
        for (k, v) in std::env::vars_os() {
            let (k, v) = (k.into_vec(), v.into_vec());
            // (The environment cannot hold a NUL byte, so every variable is taken.)
            if !k.starts_with(b"GANTRY_") && base_env.push(&[&k, b"=", &v]).is_ok() {
                base_names.push(k);
            }
        }
        base_names.sort();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        LocalExecutor {
            owner: owner.into(),
            resolved: Default::default(),
            kill_grace,
            base_env,
            base_names,
            path,
            dev_null: std::fs::File::open("/dev/null").ok(),
            git: None,
            workspaces: Default::default(),
            spare: Default::default(),
        }
    }

    /// Jobs with a `source` are checked out through `git`.
    pub fn with_git(mut self, git: std::sync::Arc<GitSources>) -> Self {
        self.git = Some(git);
        self
    }

    /// The absolute path of `program` as the shell would find it (the job's PATH, else ours),
    /// remembered: `execve` takes a path. `None` when it is not found, so the shell runs it
    /// and reports the error.
    fn resolve(&self, program: &str, launch: &Launch) -> Option<PathBuf> {
        if program.contains('/') {
            return Some(launch.workspace.join(program));
        }
        let path = launch
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or(self.path.as_str(), |(_, v)| v.as_str());
        let mut cache = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(path).and_then(|names| names.get(program)) {
            return Some(found.clone());
        }
        let found = std::env::split_paths(path)
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))?;
        cache
            .entry(path.to_string())
            .or_default()
            .insert(program.to_string(), found.clone());
        Some(found)
    }

    /// The job's environment: ours (see `base_env`), then the job's variables, the owner
    /// mark, the workspace and the secrets; a later setting of a name wins.
    fn env_for(&self, launch: &Launch) -> std::io::Result<CStrings> {
        let workspace = launch.workspace.as_os_str().as_bytes();
        let mut set: Vec<(&[u8], &[u8])> =
            Vec::with_capacity(launch.env.len() + launch.secrets.len() + 2);
        set.extend(launch.env.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        set.push((OWNER_ENV.as_bytes(), self.owner.as_bytes()));
        set.push((b"GANTRY_WORKSPACE", workspace));
        set.extend(
            launch
                .secrets
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.expose().as_bytes())),
        );
        let overrides_ours = set.iter().any(|(k, _)| {
            self.base_names
                .binary_search_by(|n| n.as_slice().cmp(k))
                .is_ok()
        });
        let mut env = if overrides_ours {
            self.base_env.filtered(|var| {
                let name = var.split(|b| *b == b'=').next().unwrap_or_default();
                !set.iter().any(|(k, _)| *k == name)
            })
        } else {
            self.base_env.clone()
        };
        for (i, (k, v)) in set.iter().enumerate() {
            if !set[i + 1..].iter().any(|(name, _)| name == k) {
                env.push(&[k, b"=", v])?;
            }
        }
        Ok(env)
    }

    /// The program and its arguments when the job runs without the shell: one plain
    /// command whose program is found (otherwise the shell runs it and reports the error).
    fn direct<'l>(&self, launch: &'l Launch) -> Option<(PathBuf, Vec<&'l str>)> {
        let argv = direct_argv(&launch.commands)?;
        Some((self.resolve(argv[0], launch)?, argv))
    }

    /// Starts the job writing into a pipe (the spare one, if there is one). The pipe comes
    /// back with our copy of its write end still open: the caller notes what comes before the
    /// job's output, then starts copying.
    fn spawn(
        &self,
        launch: &Launch,
        workspace: &Workspace,
        direct: Option<&(PathBuf, Vec<&str>)>,
    ) -> std::io::Result<(Process, Pipe)> {
        let mut argv = CStrings::default();
        let program = match direct {
            Some((program, words)) => {
                for w in words {
                    argv.push(&[w.as_bytes()])?;
                }
                program.as_os_str().as_bytes().to_vec()
            }
            None => {
                let script = session_script(&launch.commands);
                for a in ["sh", "-e", "-c", script.as_str()] {
                    argv.push(&[a.as_bytes()])?;
                }
                b"/bin/sh".to_vec()
            }
        };
        let program = c_string(program)?;
        let env = self.env_for(launch)?;
        let opened;
        let stdin = match &self.dev_null {
            Some(f) => f,
            None => {
                opened = std::fs::File::open("/dev/null")?;
                &opened
            }
        };
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
        let pipe = match spare {
            Some(pipe) => pipe,
            None => Pipe::new()?,
        };
        let process = spawn::spawn(&Spawn {
            program: &program,
            argv: &argv,
            env: &env,
            cwd: workspace.dir(),
            stdin: stdin.as_fd(),
            output: pipe.writer.as_fd(),
        })?;
        Ok((process, pipe))
    }

    /// Makes the pipe the next job will write to, if there is none yet: called once a job has
    /// started, so that the next start (while a slot stands empty) does not wait for it.
    fn make_spare(&self) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.is_none() {
            *spare = Pipe::new().ok();
        }
    }
}

fn c_string(bytes: Vec<u8>) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a path or argument contains a NUL byte",
        )
    })
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn execute(&self, mut launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let Some((masker, workspace)) =
            workspace::start(self.git.as_deref(), &self.workspaces, &mut launch).await
        else {
            return Outcome::Failed { exit_code: None };
        };
        // A plain command runs without the shell, so its `$` line is written here (once it
        // has started, but before anything it writes is copied); the shell session echoes
        // each command's line itself, just before running it.
        let direct = self.direct(&launch);
        let echo = |launch: &Launch| {
            if let (Some(_), [only]) = (&direct, launch.commands.as_slice()) {
                launch.log.note(&masker.mask(&echo_line(only)));
            }
        };
        let (mut child, mut copier) = match self.spawn(&launch, &workspace, direct.as_ref()) {
            Ok((child, pipe)) => {
                echo(&launch);
                let copier = pipe.copy_into(launch.log.clone(), masker.clone());
                self.make_spare();
                (child, copier)
            }
            Err(e) => {
                echo(&launch);
                // As the shell would report it: 127 not found, 126 not executable.
                let program = direct.as_ref().map_or("/bin/sh", |(_, argv)| argv[0]);
                let (code, what) = match e.kind() {
                    std::io::ErrorKind::NotFound => (127, "command not found".to_string()),
                    std::io::ErrorKind::PermissionDenied => (126, "permission denied".to_string()),
                    _ => (126, e.to_string()),
                };
                note(&launch, &format!("gantry: {program}: {what}"));
                self.workspaces.give_back(workspace);
                return Outcome::Failed {
                    exit_code: Some(code),
                };
            }
        };
        let pid = child.id();
        let group = Pid::from_raw(pid);
        debug!(pid, "started");
        let timeout = tokio::time::sleep(Duration::from_millis(launch.timeout_ms));
        let mut last_word = None;
        let mut copied = false;
        let ended = async {
            // A job's output usually ends as the job exits, and the exit is then there to
            // collect without watching the process (see `Process::wait`). Until then, or
            // for a job that runs a while, or whose output outlives it, the process is watched.
            tokio::select! {
                biased;
                _ = &mut copier => copied = true,
                _ = tokio::time::sleep(WATCH_AFTER) => {}
            }
            child.wait().await
        };
        let outcome = tokio::select! {
            status = ended => {
                // The session is over; anything it left behind in its group goes too.
                kill_group(group).await;
                match status {
                    Ok(s) => outcome_of(s),
                    Err(e) => {
                        warn!(cause = %e, "lost track of the job's process");
                        Outcome::Lost
                    }
                }
            }
            _ = timeout => {
                self.stop_group(group, &mut child).await;
                last_word = Some(format!("gantry: timed out after {}", gantry_core::duration::format_duration_ms(launch.timeout_ms)));
                Outcome::TimedOut
            }
            _ = cancel.cancelled() => {
                self.stop_group(group, &mut child).await;
                last_word = Some("gantry: cancelled".to_string());
                Outcome::Cancelled
            }
        };
        // The group is gone, so the pipe has no writers left (unless something escaped the
        // group): the job's output is all in the log after this, and the engine's word follows.
        if !copied {
            let _ = tokio::time::timeout(Duration::from_secs(5), copier).await;
        }
        if let Some(line) = last_word {
            note(&launch, &line);
        }
        self.workspaces.give_back(workspace);
        outcome
    }

    async fn reap_orphans(&self) -> usize {
        let needle = format!("{OWNER_ENV}={}", self.owner);
        let mut groups = std::collections::BTreeSet::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
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
        for g in &groups {
            let _ = killpg(*g, Signal::SIGKILL);
        }
        groups.len()
    }
}

impl LocalExecutor {
    /// TERM to the group; KILL to the group if the session has not ended within the grace.
    async fn stop_group(&self, group: Pid, child: &mut Process) {
        let _ = killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(self.kill_grace, child.wait())
            .await
            .is_err()
        {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait().await;
        }
        kill_group(group).await;
    }
}

/// How long a job's output may run before its process is watched for its end as well.
const WATCH_AFTER: Duration = Duration::from_millis(10);

/// Longest wait for a killed group's processes to be gone.
const GROUP_GONE_WITHIN: Duration = Duration::from_secs(2);

/// KILLs whatever is left in the group and waits (up to `GROUP_GONE_WITHIN`) until none of it
/// is still running, so an attempt is reported ended only once nothing of it runs. An empty
/// group (the usual case) costs the one `kill`.
async fn kill_group(group: Pid) {
    if killpg(group, Signal::SIGKILL).is_err() {
        return; // no process left in the group
    }
    let deadline = tokio::time::Instant::now() + GROUP_GONE_WITHIN;
    while group_runs(group) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether a process of the group is still running (exited ones waiting to be reaped by
/// whoever inherited them do not count).
fn group_runs(group: Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
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

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn outcome_of(exit: Exit) -> Outcome {
    match exit {
        Exit::Code(0) => Outcome::Succeeded,
        Exit::Code(code) => Outcome::Failed {
            exit_code: Some(code),
        },
        Exit::Signal(sig) => Outcome::Failed {
            exit_code: Some(128 + sig),
        },
    }
}

/// The engine's word at the end of an attempt's log, after a blank line.
pub(crate) fn note(launch: &Launch, line: &str) {
    launch.log.note(&format!("\n{line}"));
}

#[cfg(test)]
mod tests {
    use super::direct_argv;

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

//! The local executor: each attempt runs its commands in one `sh -e` session, in its own
//! workspace folder and its own process group, with stdout and stderr going to one log file.
//! Timeout and cancellation stop the whole group: TERM, then KILL after a grace period.
//! When the session ends, whatever it left running in its group is killed too.

use async_trait::async_trait;
use gantry_core::dag::Outcome;
use gantry_engine::ports::{CancelSignal, Executor, Launch};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};
use tracing::{debug, warn};

/// Environment variable that marks every process of an attempt with its owner, so a restarted
/// server can find and stop what its previous life left running.
const OWNER_ENV: &str = "GANTRY_EXEC_OWNER";

pub struct LocalExecutor {
    owner: String,
    kill_grace: Duration,
    /// The server's own `GANTRY_*` settings (tokens, secrets) are never passed to jobs.
    hidden_env: Vec<String>,
}

impl LocalExecutor {
    /// `owner` names this server's attempts (stable across its restarts); `kill_grace` is the
    /// time between TERM and KILL.
    pub fn new(owner: impl Into<String>, kill_grace: Duration) -> Self {
        let hidden_env = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with("GANTRY_"))
            .collect();
        LocalExecutor {
            owner: owner.into(),
            kill_grace,
            hidden_env,
        }
    }

    fn prepare(&self, launch: &Launch) -> std::io::Result<File> {
        match std::fs::remove_dir_all(&launch.workspace) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&launch.workspace)?;
        if let Some(dir) = launch.log_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut log = File::create(&launch.log_path)?;
        let mut header = String::new();
        for cmd in &launch.commands {
            header.push_str("$ ");
            header.push_str(cmd.lines().next().unwrap_or_default());
            if cmd.lines().nth(1).is_some() {
                header.push_str(" …");
            }
            header.push('\n');
        }
        log.write_all(header.as_bytes())?;
        Ok(log)
    }

    fn spawn(&self, launch: &Launch, log: File) -> std::io::Result<Child> {
        let script = launch.commands.join("\n");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-e").arg("-c").arg(script);
        cmd.current_dir(&launch.workspace);
        for k in &self.hidden_env {
            cmd.env_remove(k);
        }
        cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
        cmd.env(OWNER_ENV, &self.owner);
        cmd.env("GANTRY_WORKSPACE", &launch.workspace);
        cmd.stdin(Stdio::null());
        cmd.stdout(Stdio::from(log.try_clone()?));
        cmd.stderr(Stdio::from(log));
        cmd.process_group(0);
        cmd.spawn()
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn execute(&self, launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let log = match self.prepare(&launch) {
            Ok(log) => log,
            Err(e) => {
                warn!(cause = %e, "cannot prepare workspace or log");
                return Outcome::Failed { exit_code: None };
            }
        };
        let mut child = match self.spawn(&launch, log) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&launch.log_path)
                    .and_then(|mut f| writeln!(f, "gantry: cannot start /bin/sh: {e}"));
                return Outcome::Failed { exit_code: None };
            }
        };
        let Some(pid) = child.id() else {
            return Outcome::Failed { exit_code: None };
        };
        let group = Pid::from_raw(pid as i32);
        debug!(pid, "started");
        let timeout = tokio::time::sleep(Duration::from_millis(launch.timeout_ms));
        let outcome = tokio::select! {
            status = child.wait() => {
                // The session is over; anything it left behind in its group goes too.
                let _ = killpg(group, Signal::SIGKILL);
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
                note(&launch, &format!("gantry: timed out after {}", gantry_core::duration::format_duration_ms(launch.timeout_ms)));
                Outcome::TimedOut
            }
            _ = cancel.cancelled() => {
                self.stop_group(group, &mut child).await;
                note(&launch, "gantry: cancelled");
                Outcome::Cancelled
            }
        };
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
    async fn stop_group(&self, group: Pid, child: &mut Child) {
        let _ = killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(self.kill_grace, child.wait())
            .await
            .is_err()
        {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait().await;
        }
        let _ = killpg(group, Signal::SIGKILL);
    }
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

fn note(launch: &Launch, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .open(&launch.log_path)
    {
        let _ = writeln!(f, "\n{line}");
    }
}

//! Runners as processes on this machine: each in its own folder (`<root>/<name>`, its work
//! folder inside), its own process group, with the clean environment local jobs get, and its
//! output in `<root>/<name>/runner.log`. The process carries `GANTRY_RUNNER=<instance>/<name>`
//! in its environment: that is how it is found (running or not) after a restart, and stopped.
//! A runner outlives the server that started it: a restarted server adopts it.

use crate::isolation::Isolation;
use crate::local::{kill_group, marked_groups};
use async_trait::async_trait;
use gantry_engine::ports::runners::JITCONFIG_ENV;
use gantry_engine::ports::{HostedRunner, RunnerHost, RunnerLaunch};
use nix::sys::signal::{Signal, killpg};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tracing::{info, warn};

/// The variable marking a runner process with its instance and name.
const RUNNER_ENV: &str = "GANTRY_RUNNER";

pub struct LocalRunners {
    root: PathBuf,
    instance: String,
    isolation: Isolation,
    grace: Duration,
}

impl LocalRunners {
    /// Runners under `root` (made if missing), marked as `instance`'s.
    pub fn new(root: PathBuf, instance: &str, isolation: Isolation, grace: Duration) -> Self {
        LocalRunners {
            root,
            instance: instance.to_string(),
            isolation,
            grace,
        }
    }

    /// The runner's mark: `RUNNER_ENV`'s value.
    fn mark_value(&self, name: &str) -> String {
        format!("{}/{name}", self.instance)
    }

    /// The mark as it is found in an environment.
    fn mark(&self, name: &str) -> String {
        format!("{RUNNER_ENV}={}", self.mark_value(name))
    }

    fn folder(&self, name: &str) -> Result<PathBuf, String> {
        if name.is_empty() || name.contains(['/', '\0']) || name.starts_with('.') {
            return Err(format!("`{name}` is not a runner name"));
        }
        Ok(self.root.join(name))
    }
}

#[async_trait]
impl RunnerHost for LocalRunners {
    async fn start(&self, launch: RunnerLaunch<'_>) -> Result<String, String> {
        let dir = self.folder(launch.name)?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot make the runner's folder {}: {e}", dir.display()))?;
        if let Some(r) = self.isolation.run_as() {
            crate::isolation::chown_tree(&dir, r.uid, r.gid)
                .map_err(|e| format!("cannot give the runner's folder to {}: {e}", r.name))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("runner.log"))
            .map_err(|e| format!("cannot open the runner's log: {e}"))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot open the runner's log: {e}"))?;
        let argv = launch.argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        self.isolation.apply(&mut cmd);
        cmd.current_dir(&dir)
            .env(JITCONFIG_ENV, launch.jitconfig.expose())
            .env(RUNNER_ENV, self.mark_value(launch.name))
            .env("RUNNER_NAME", launch.name)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .process_group(0);
        // The program is named in the error, never its arguments (they may hold the config).
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", launch.command[0]))?;
        let pid = child.id().unwrap_or_default();
        let name = launch.name.to_string();
        // Reaped when it ends (it is not killed when the server stops: a restart adopts it).
        tokio::spawn(async move {
            match child.wait().await {
                Ok(status) => info!(runner = %name, %status, "runner process ended"),
                Err(e) => warn!(runner = %name, cause = %e, "cannot wait for the runner process"),
            }
        });
        Ok(format!("pid {pid}"))
    }

    async fn is_running(&self, name: &str) -> Result<bool, String> {
        Ok(!marked_groups(&self.mark(name)).await.is_empty())
    }

    async fn remove(&self, name: &str) -> Result<(), String> {
        let dir = self.folder(name)?;
        let groups = marked_groups(&self.mark(name)).await;
        for g in &groups {
            let _ = killpg(*g, Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        while tokio::time::Instant::now() < deadline
            && !marked_groups(&self.mark(name)).await.is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for g in groups {
            kill_group(g).await;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", dir.display())),
        }
    }

    async fn list(&self) -> Result<Vec<HostedRunner>, String> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot list {}: {e}", self.root.display())),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let running = self.is_running(&name).await?;
            out.push(HostedRunner { name, running });
        }
        Ok(out)
    }
}

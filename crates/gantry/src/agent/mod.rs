//! `gantry agent`: runs jobs for a server on this host. It registers its name, labels and
//! slots, then each slot long-polls the server for a job its labels allow, runs it with the
//! local or Docker executor (masking the job's secrets in its output), streams the output in
//! chunks, renews its lease while the job runs (stopping the job when the server says so or
//! the lease is no longer its own) and reports the result through the attempt's callback URL.
//! The agent token comes from `--token` or `GANTRY_AGENT_TOKEN`; jobs never see it.

mod client;
mod job;

use crate::cli::client::server_url;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Base URL of the Gantry server.
    #[arg(long, env = "GANTRY_SERVER", value_parser = server_url)]
    pub server: String,
    /// The agent token (`gantry agent-tokens create NAME`).
    #[arg(long, env = "GANTRY_AGENT_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Comma-separated labels jobs choose agents by (`runs_on`), e.g. `linux,docker`.
    #[arg(long, default_value = "")]
    pub labels: String,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    pub slots: u32,
    /// The agent's name [default: HOSTNAME-PID].
    #[arg(long)]
    pub name: Option<String>,
    /// Folder for workspaces and local logs [default: a folder under the temp dir].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Comma-separated prefixes the clone URLs of jobs' `source` must start with (public
    /// repositories: the agent holds no forge token).
    #[arg(
        long,
        env = "GANTRY_GIT_ALLOWED_URL_PREFIXES",
        default_value = "https://github.com/"
    )]
    pub git_allowed_url_prefixes: String,
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && gantry_core::agents::check_label(h).is_ok())
        .unwrap_or_else(|| "agent".into());
    format!("{host}-{}", std::process::id())
}

pub async fn main(a: AgentArgs) -> anyhow::Result<i32> {
    let labels = gantry_core::agents::parse_labels(&a.labels)
        .map_err(|e| crate::cli::BadInput(format!("--labels: {e}")))?;
    let name = a.name.clone().unwrap_or_else(default_name);
    gantry_core::agents::check_label(&name)
        .map_err(|e| crate::cli::BadInput(format!("--name: {e}")))?;
    let slots = a.slots.max(1);
    let work = a
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("gantry-agent-{name}")));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let api = Arc::new(client::AgentApi::new(
        &a.server,
        &a.token,
        &name,
        labels.clone(),
        slots,
    )?);
    let lease_ms = api.register().await?;
    crate::cli::write_out(format_args!(
        "gantry agent {name} registered with {} (labels: {}, slots: {slots}, lease: {lease_ms} ms)\n",
        a.server,
        if labels.is_empty() {
            "none".to_string()
        } else {
            labels.join(",")
        }
    ));
    let allowed = a
        .git_allowed_url_prefixes
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let runner = Arc::new(job::Runner::new(&name, &work, allowed, api.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..slots {
        let (api, runner) = (api.clone(), runner.clone());
        tasks.spawn(slot(api, runner));
    }
    let stop = crate::cli::serve::shutdown_signal();
    tokio::select! {
        Some(ended) = tasks.join_next() => {
            ended.context("an agent slot stopped")??;
            Ok(0)
        }
        _ = stop => Ok(0),
    }
}

/// One slot: poll, run what comes, again; ends only when the token is refused.
async fn slot(api: Arc<client::AgentApi>, runner: Arc<job::Runner>) -> anyhow::Result<()> {
    loop {
        if let Some(lease) = api.poll().await? {
            runner.run(lease).await?;
        }
    }
}

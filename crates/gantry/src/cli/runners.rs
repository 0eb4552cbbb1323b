//! `gantry runners`: the server's runner pools and their ephemeral runners — each pool's
//! places in use and waiting jobs, then each runner with its job, phase and age; `gantry
//! runners show NAME` adds a runner's audit trail; `--json` prints the API's answer.

use super::client::{Api, ServerArgs, ok, s, urlencode};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct RunnersArgs {
    #[command(subcommand)]
    pub cmd: Option<RunnersCmd>,
    /// Runners that are done too (the last `--limit`).
    #[arg(long)]
    pub all: bool,
    /// Only this pool's runners.
    #[arg(long)]
    pub pool: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum RunnersCmd {
    /// One runner, with its audit trail.
    Show {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn main(a: RunnersArgs) -> anyhow::Result<i32> {
    if let Some(RunnersCmd::Show { name, server }) = a.cmd {
        let api = Api::new(&server)?;
        let path = format!("/api/v1/runners/{}", urlencode(&name));
        let body: Value = ok(api.send(api.req(reqwest::Method::GET, &path)).await?)
            .await?
            .json()
            .await?;
        if server.json {
            outln!("{}", serde_json::to_string_pretty(&body)?);
        } else {
            show(&body);
        }
        return Ok(0);
    }
    let api = Api::new(&a.server)?;
    let mut path = format!(
        "/api/v1/runners?state={}&limit={}",
        if a.all { "all" } else { "active" },
        a.limit
    );
    if let Some(p) = &a.pool {
        path.push_str(&format!("&pool={}", urlencode(p)));
    }
    let body: Value = ok(api.send(api.req(reqwest::Method::GET, &path)).await?)
        .await?
        .json()
        .await?;
    if a.server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    let pools = body["pools"].as_array().cloned().unwrap_or_default();
    if pools.is_empty() {
        outln!("no runner pools are configured on this server ([runners] in gantry.toml)");
    }
    for p in &pools {
        outln!(
            "pool {:<12} {}/{} runners, {} waiting  labels {}  scope {}  executor {}",
            s(&p["name"]),
            p["runners"],
            p["max_runners"],
            p["waiting"],
            p["labels"]
                .as_array()
                .map(|l| l.iter().map(s).collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
            s(&p["scope"]),
            s(&p["executor"]),
        );
    }
    let runners = body["runners"].as_array().cloned().unwrap_or_default();
    if !runners.is_empty() {
        outln!("");
        outln!(
            "{:<34} {:<10} {:<24} {:<12} {:<20} NOTE",
            "RUNNER",
            "STATE",
            "REPOSITORY",
            "JOB",
            "QUEUED"
        );
    }
    for r in &runners {
        outln!(
            "{:<34} {:<10} {:<24} {:<12} {:<20} {}",
            s(&r["name"]),
            s(&r["state"]),
            s(&r["repository"]),
            r["job_id"],
            s(&r["queued_at"]),
            s(&r["note"]),
        );
    }
    Ok(0)
}

fn show(r: &Value) {
    for key in [
        "name",
        "pool",
        "repository",
        "job_id",
        "run_attempt",
        "job_name",
        "state",
        "runner_id",
        "container",
        "launches",
        "queued_at",
        "started_at",
        "claimed_at",
        "finished_at",
        "note",
        "trace_id",
    ] {
        if !r[key].is_null() {
            outln!("{key:<12} {}", s(&r[key]));
        }
    }
    outln!("");
    for a in r["audit"].as_array().into_iter().flatten() {
        outln!(
            "{}  {} -> {}  {}",
            s(&a["at"]),
            s(&a["from"]),
            s(&a["to"]),
            s(&a["note"])
        );
    }
}

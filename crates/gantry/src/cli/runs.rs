//! The run commands against a server: `submit` (a file or `-` for stdin, with the event,
//! branch and tag the run stands for), `status`, `logs`, `cancel`, `rerun`. A run may be named
//! by a unique prefix of its id (looked up client-side, see [`Api::resolve_run`]).

use super::client::{Api, ServerArgs, ok, read_input, urlencode};
use crate::view::RunView;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// Run spec (YAML or JSON); `-` reads standard input.
    pub file: PathBuf,
    /// Wait for the run to finish; exit 0 if it succeeded, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
    /// The event this run stands for, for `when: {event: …}` (default: `api`).
    #[arg(long)]
    pub event: Option<String>,
    /// The branch this run stands for, for `when: {branch: …}`.
    #[arg(long)]
    pub branch: Option<String>,
    /// The tag this run stands for, for `when: {tag: …}`.
    #[arg(long)]
    pub tag: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A run id, or a unique prefix of one; without it, the latest runs.
    pub run: Option<String>,
    /// Only runs with this status.
    #[arg(long)]
    pub status: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// A run id, or a unique prefix of one.
    pub run: String,
    /// A job; without it, every job's log in turn.
    pub job: Option<String>,
    /// Follow the log live until the job ends.
    #[arg(short = 'f', long, conflicts_with = "data_dir")]
    pub follow: bool,
    /// Read the logs from this data dir instead of a server (a local run's is
    /// `.gantry/local`, where a run of `gantry run` here is found without this).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// A run id, or a unique prefix of one.
    pub run: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

async fn get_run(api: &Api, id: &str) -> anyhow::Result<RunView> {
    let resp = api
        .send(api.req(Method::GET, &format!("/api/v1/runs/{}", urlencode(id))))
        .await?;
    Ok(ok(resp).await?.json().await?)
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<i32> {
    let body = read_input(&args.file)?;
    let api = Api::new(&args.server)?;
    let json = match args.file.extension().and_then(|e| e.to_str()) {
        Some("json") => true,
        Some("yml" | "yaml") => false,
        _ => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    let ct = if json {
        "application/json"
    } else {
        "application/yaml"
    };
    let query: Vec<String> = [
        ("event", &args.event),
        ("branch", &args.branch),
        ("tag", &args.tag),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v))))
    .collect();
    let path = if query.is_empty() {
        "/api/v1/runs".to_string()
    } else {
        format!("/api/v1/runs?{}", query.join("&"))
    };
    let resp = api
        .send(
            api.req(Method::POST, &path)
                .header("content-type", ct)
                .body(body),
        )
        .await?;
    if resp.status() == StatusCode::UNPROCESSABLE_ENTITY || resp.status() == StatusCode::BAD_REQUEST
    {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let name = if args.file.as_os_str() == "-" {
            "<stdin>".to_string()
        } else {
            args.file.display().to_string()
        };
        eprintln!(
            "{name}: {}",
            body["error"]["message"].as_str().unwrap_or("invalid spec")
        );
        return Ok(2);
    }
    let created: serde_json::Value = ok(resp).await?.json().await?;
    let id = created["run_id"].as_str().unwrap_or_default().to_string();
    if !args.wait {
        if args.server.json {
            outln!("{created}");
        } else {
            outln!("{id}");
        }
        return Ok(0);
    }
    let run = loop {
        let run = get_run(&api, &id).await?;
        if matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled") {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    print_run(&run, args.server.json)?;
    Ok(if run.status == "succeeded" { 0 } else { 1 })
}

pub async fn status(args: StatusArgs) -> anyhow::Result<i32> {
    let api = Api::new(&args.server)?;
    if let Some(given) = &args.run {
        let id = api.resolve_run(given).await?;
        let run = get_run(&api, &id).await?;
        print_run(&run, args.server.json)?;
        return Ok(0);
    }
    let mut path = "/api/v1/runs".to_string();
    if let Some(s) = &args.status {
        path.push_str(&format!("?status={}", urlencode(s)));
    }
    let body = api.get_json(&path).await?;
    if args.server.json {
        outln!("{}", serde_json::to_string_pretty(&body["runs"])?);
        return Ok(0);
    }
    let runs: Vec<RunView> = serde_json::from_value(body["runs"].clone())?;
    outln!(
        "{:<28} {:<10} {:<24} {:>5}  NAME",
        "RUN",
        "STATUS",
        "CREATED",
        "JOBS"
    );
    for r in runs {
        outln!(
            "{:<28} {:<10} {:<24} {:>5}  {}",
            r.id,
            r.status,
            r.created_at,
            r.jobs.len(),
            r.name
        );
    }
    Ok(0)
}

fn print_run(run: &RunView, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(run)?);
        return Ok(());
    }
    outln!("run {} ({}) {}", run.name, run.id, run.status);
    outln!(
        "  trace {}  created {}  finished {}",
        run.trace_id,
        run.created_at,
        run.finished_at.as_deref().unwrap_or("-")
    );
    for j in &run.jobs {
        let exit = j
            .exit_code
            .map(|c| format!(" exit {c}"))
            .unwrap_or_default();
        let attempt = if j.attempt > 1 {
            format!(" attempt {}", j.attempt)
        } else {
            String::new()
        };
        outln!("  {:<24} {}{exit}{attempt}", j.name, j.status);
    }
    Ok(())
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<i32> {
    let local = args.data_dir.clone().or_else(|| {
        (!args.follow)
            .then(|| super::local_logs::local_run_here(&args.run))
            .flatten()
    });
    if let Some(dir) = &local {
        return super::local_logs::logs(dir, &args.run, args.job.as_deref());
    }
    let api = Api::new(&args.server)?;
    let run = api.resolve_run(&args.run).await?;
    let jobs: Vec<String> = match &args.job {
        Some(j) => vec![j.clone()],
        None => get_run(&api, &run)
            .await?
            .jobs
            .into_iter()
            .map(|j| j.name)
            .collect(),
    };
    for job in jobs {
        if args.job.is_none() {
            outln!("==> {job} <==");
        }
        let path = format!("/api/v1/runs/{run}/jobs/{}/log", urlencode(&job));
        if !args.follow {
            let text = ok(api.send(api.req(Method::GET, &path)).await?)
                .await?
                .text()
                .await?;
            out!("{text}");
            continue;
        }
        let resp = ok(api
            .send(
                api.req(Method::GET, &path)
                    .header("accept", "text/event-stream"),
            )
            .await?)
        .await?;
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        let mut event = String::new();
        'outer: while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(nl) = buf.find('\n') {
                let line: String = buf.drain(..=nl).collect();
                let line = line.trim_end_matches(['\n', '\r']);
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    let d = d.strip_prefix(' ').unwrap_or(d);
                    if event == "end" {
                        eprintln!("-- {job} ended: {d}");
                        break 'outer;
                    }
                    outln!("{d}");
                }
            }
        }
    }
    Ok(0)
}

pub async fn cancel(args: CancelArgs, rerun: bool) -> anyhow::Result<i32> {
    let api = Api::new(&args.server)?;
    let run = api.resolve_run(&args.run).await?;
    let what = if rerun { "rerun" } else { "cancel" };
    let body: serde_json::Value = ok(api
        .send(api.req(Method::POST, &format!("/api/v1/runs/{run}/{what}")))
        .await?)
    .await?
    .json()
    .await?;
    if args.server.json {
        outln!("{body}");
    } else {
        outln!("{run} {}", body["status"].as_str().unwrap_or(""));
    }
    Ok(0)
}

//! The API client commands: `submit`, `status`, `logs`, `cancel`, `rerun`.

use crate::view::RunView;
use anyhow::{Context, bail};
use futures_util::StreamExt;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Base URL of the Gantry server.
    #[arg(long, env = "GANTRY_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// Run spec (YAML or JSON).
    pub file: PathBuf,
    /// Wait for the run to finish; exit 0 if it succeeded, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A run id; without it, the latest runs.
    pub run: Option<String>,
    /// Only runs with this status.
    #[arg(long)]
    pub status: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    pub run: String,
    /// A job; without it, every job's log in turn.
    pub job: Option<String>,
    /// Follow the log live until the job ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    pub run: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub(super) struct Api {
    http: Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub(super) fn new(args: &ServerArgs) -> anyhow::Result<Api> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Api {
            http,
            base: args.server.trim_end_matches('/').to_string(),
            token: std::env::var("GANTRY_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        })
    }

    pub(super) fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub(super) async fn send(&self, r: RequestBuilder) -> anyhow::Result<Response> {
        r.send()
            .await
            .with_context(|| format!("cannot reach the Gantry server at {}", self.base))
    }

    async fn run(&self, id: &str) -> anyhow::Result<RunView> {
        let resp = self
            .send(self.req(reqwest::Method::GET, &format!("/api/v1/runs/{id}")))
            .await?;
        Ok(ok(resp).await?.json().await?)
    }
}

/// Turns an API error body into an error message.
pub(super) async fn ok(resp: Response) -> anyhow::Result<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let msg = body["error"]["message"]
        .as_str()
        .unwrap_or("no details")
        .to_string();
    bail!("{} ({})", msg, status)
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<i32> {
    let api = Api::new(&args.server)?;
    let body = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let ct = match args.file.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        _ => "application/yaml",
    };
    let resp = api
        .send(
            api.req(reqwest::Method::POST, "/api/v1/runs")
                .header("content-type", ct)
                .body(body),
        )
        .await?;
    if resp.status() == StatusCode::UNPROCESSABLE_ENTITY || resp.status() == StatusCode::BAD_REQUEST
    {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        eprintln!(
            "{}: {}",
            args.file.display(),
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
        let run = api.run(&id).await?;
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
    if let Some(id) = &args.run {
        let run = api.run(id).await?;
        print_run(&run, args.server.json)?;
        return Ok(0);
    }
    let mut path = "/api/v1/runs".to_string();
    if let Some(s) = &args.status {
        path.push_str(&format!("?status={s}"));
    }
    let body: serde_json::Value = ok(api.send(api.req(reqwest::Method::GET, &path)).await?)
        .await?
        .json()
        .await?;
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
    let api = Api::new(&args.server)?;
    let jobs: Vec<String> = match &args.job {
        Some(j) => vec![j.clone()],
        None => api
            .run(&args.run)
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
        let path = format!("/api/v1/runs/{}/jobs/{job}/log", args.run);
        if !args.follow {
            let text = ok(api.send(api.req(reqwest::Method::GET, &path)).await?)
                .await?
                .text()
                .await?;
            out!("{text}");
            continue;
        }
        let resp = ok(api
            .send(
                api.req(reqwest::Method::GET, &path)
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
    let what = if rerun { "rerun" } else { "cancel" };
    let body: serde_json::Value = ok(api
        .send(api.req(
            reqwest::Method::POST,
            &format!("/api/v1/runs/{}/{what}", args.run),
        ))
        .await?)
    .await?
    .json()
    .await?;
    if args.server.json {
        outln!("{body}");
    } else {
        outln!("{} {}", args.run, body["status"].as_str().unwrap_or(""));
    }
    Ok(0)
}

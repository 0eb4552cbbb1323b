//! `gantry deploy`: the deployer's sessions from the command line. `gantry deploy REPO --branch
//! B` starts a deploy (and with `--wait` follows its log to the end); `gantry deploy status ID`
//! shows a session, `gantry deploy list` the latest deploys, `gantry deploy test` starts sanity
//! tests of a stack or a function. `--json` prints the API's answers.

use super::client::{Api, ServerArgs, ok};
use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// How often `--wait` reads a session back.
const POLL: Duration = Duration::from_millis(500);

/// Deploy a repository's branch to AWS, or look at the deployer's sessions.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    subcommand_value_name = "COMMAND",
    override_usage = "gantry deploy [OPTIONS] --branch <BRANCH> <REPOSITORY>\n       \
                      gantry deploy <COMMAND> [ARGS]",
    after_help = "Examples:\n  \
                  gantry deploy https://github.com/acme/app --branch main --wait\n  \
                  gantry deploy status SESSION\n  \
                  gantry deploy list --status failed\n  \
                  gantry deploy test --stack-name gantry-app-main --wait"
)]
pub struct DeployArgs {
    #[command(subcommand)]
    pub cmd: Option<DeployCmd>,
    #[command(flatten)]
    pub start: StartArgs,
}

/// `gantry deploy REPO --branch B`: what a deploy is started with.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The repository's URL (it must start with one of the server's
    /// GANTRY_GIT_ALLOWED_URL_PREFIXES).
    #[arg(value_name = "REPOSITORY", required = true)]
    pub repository: Option<String>,
    /// The branch to deploy.
    #[arg(short, long, required = true)]
    pub branch: Option<String>,
    /// The CloudFormation stack's name (default: gantry-<repo>-<branch>).
    #[arg(long)]
    pub stack_name: Option<String>,
    /// The AWS region (default: the server's).
    #[arg(long)]
    pub region: Option<String>,
    /// Follow the session's log until it ends; exit 0 if it succeeded, 1 if it failed.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum DeployCmd {
    /// One session: its status, commit, stack, resources, outputs and error.
    Status {
        /// The session's id (as `gantry deploy` printed it).
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// The latest deploy sessions, newest first.
    List {
        /// Only sessions with this status.
        #[arg(long, value_parser = ["pending", "running", "succeeded", "failed"])]
        status: Option<String>,
        /// At most this many sessions.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The page after this session (the `next` of the page before).
        #[arg(long, value_name = "SESSION")]
        after: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run sanity tests against a deployed stack or a function.
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["stack_name", "function_name"])))]
pub struct TestArgs {
    /// The stack whose resources and outputs are tested.
    #[arg(long)]
    pub stack_name: Option<String>,
    /// The Lambda function to test (one not in a stack).
    #[arg(long)]
    pub function_name: Option<String>,
    /// The AWS region (default: the server's).
    #[arg(long)]
    pub region: Option<String>,
    /// Follow the session until it ends and print each test; exit 1 if any failed.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn main(a: DeployArgs) -> anyhow::Result<i32> {
    match a.cmd {
        None => start(a.start).await,
        Some(DeployCmd::Status { id, server }) => status(&id, &server).await,
        Some(DeployCmd::List {
            status,
            limit,
            after,
            server,
        }) => list(status, limit, after, &server).await,
        Some(DeployCmd::Test(t)) => test(t).await,
    }
}

async fn start(a: StartArgs) -> anyhow::Result<i32> {
    let api = Api::new(&a.server)?;
    let mut body = json!({
        "repository": a.repository.unwrap_or_default(),
        "branch": a.branch.unwrap_or_default(),
    });
    if let Some(s) = a.stack_name {
        body["stackName"] = json!(s);
    }
    if let Some(r) = a.region {
        body["region"] = json!(r);
    }
    let Some(started) = submit(&api, "/api/v1/deployments", &body, "deploy").await? else {
        return Ok(2);
    };
    finish(&api, &started, "/api/v1/deployments", a.wait, a.server.json).await
}

async fn test(a: TestArgs) -> anyhow::Result<i32> {
    let api = Api::new(&a.server)?;
    let mut body = json!({});
    if let Some(s) = a.stack_name {
        body["stackName"] = json!(s);
    }
    if let Some(f) = a.function_name {
        body["functionName"] = json!(f);
    }
    if let Some(r) = a.region {
        body["region"] = json!(r);
    }
    let Some(started) = submit(&api, "/api/v1/deployments/tests", &body, "test").await? else {
        return Ok(2);
    };
    finish(
        &api,
        &started,
        "/api/v1/deployments/tests",
        a.wait,
        a.server.json,
    )
    .await
}

/// POSTs a session's request; its 202 body, or `None` (the server's message printed) when
/// the server refused the request as invalid.
async fn submit(api: &Api, path: &str, body: &Value, what: &str) -> anyhow::Result<Option<Value>> {
    let resp = api.send(api.req(Method::POST, path).json(body)).await?;
    let code = resp.status();
    if code == StatusCode::BAD_REQUEST || code == StatusCode::UNPROCESSABLE_ENTITY {
        let body: Value = resp.json().await.unwrap_or_default();
        eprintln!(
            "gantry: the server refused the {what} ({code}): {}",
            body["error"]["message"].as_str().unwrap_or("no details")
        );
        return Ok(None);
    }
    Ok(Some(ok(resp).await?.json().await?))
}

/// After a session's 202: its id (or the answer, with `--json`), and with `wait` the session
/// followed to its end.
async fn finish(
    api: &Api,
    started: &Value,
    base: &str,
    wait: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let id = started["sessionId"]
        .as_str()
        .context("the server's answer has no sessionId")?
        .to_string();
    if !wait {
        if json {
            outln!("{}", serde_json::to_string_pretty(started)?);
        } else {
            outln!("{id}");
        }
        return Ok(0);
    }
    if !json {
        outln!("session {id}");
    }
    let path = format!("{base}/{}", urlencode(&id));
    let mut printed = 0;
    let session = loop {
        let s = get(api, &path).await?;
        if !json {
            let logs = s["logs"].as_array().map(Vec::as_slice).unwrap_or_default();
            for l in logs.iter().skip(printed) {
                outln!("{} {}", text(&l["timestamp"]), text(&l["message"]));
            }
            printed = printed.max(logs.len());
        }
        if matches!(s["status"].as_str(), Some("succeeded" | "failed")) {
            break s;
        }
        tokio::time::sleep(POLL).await;
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&session)?);
    } else {
        outln!("");
        show(&session);
    }
    let failed_tests = tests(&session)
        .iter()
        .filter(|t| t["status"] == "fail")
        .count();
    if session["status"] == "succeeded" && failed_tests == 0 {
        return Ok(0);
    }
    let error = match session["error"].as_str() {
        Some(e) if !e.is_empty() => e.to_string(),
        _ if failed_tests > 0 => format!("{failed_tests} test(s) failed"),
        _ => "the session failed".to_string(),
    };
    eprintln!("gantry: session {id} failed: {error}");
    Ok(1)
}

async fn status(id: &str, server: &ServerArgs) -> anyhow::Result<i32> {
    let api = Api::new(server)?;
    let s = get(&api, &format!("/api/v1/deployments/{}", urlencode(id))).await?;
    if server.json {
        outln!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        show(&s);
    }
    Ok(0)
}

async fn list(
    status: Option<String>,
    limit: u32,
    after: Option<String>,
    server: &ServerArgs,
) -> anyhow::Result<i32> {
    let api = Api::new(server)?;
    let mut path = format!("/api/v1/deployments?limit={limit}");
    if let Some(s) = &status {
        path.push_str(&format!("&status={}", urlencode(s)));
    }
    if let Some(a) = &after {
        path.push_str(&format!("&after={}", urlencode(a)));
    }
    let body = get(&api, &path).await?;
    if server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    outln!(
        "{:<28} {:<10} {:<44} {:<16} {:<15} CREATED",
        "SESSION",
        "STATUS",
        "REPOSITORY",
        "BRANCH",
        "IAC"
    );
    for d in body["deployments"].as_array().into_iter().flatten() {
        outln!(
            "{:<28} {:<10} {:<44} {:<16} {:<15} {}",
            text(&d["sessionId"]),
            text(&d["status"]),
            text(&d["repository"]),
            text(&d["branch"]),
            or_dash(&d["iacType"]),
            text(&d["createdAt"]),
        );
    }
    if let Some(next) = body["next"].as_str() {
        outln!("");
        outln!("more: gantry deploy list --after {next}");
    }
    Ok(0)
}

async fn get(api: &Api, path: &str) -> anyhow::Result<Value> {
    Ok(ok(api.send(api.req(Method::GET, path)).await?)
        .await?
        .json()
        .await?)
}

/// A session as text: status, what was deployed (or tested), then its resources, outputs,
/// test results and error.
fn show(s: &Value) {
    outln!("session     {}", text(&s["sessionId"]));
    outln!("status      {}", text(&s["status"]));
    if !s["repository"].is_null() {
        let branch = match s["branch"].as_str() {
            Some(b) => format!("@{b}"),
            None => String::new(),
        };
        outln!("repository  {}{branch}", text(&s["repository"]));
    }
    if !s["commit"].is_null() {
        outln!("commit      {}", text(&s["commit"]));
    }
    if s.get("iacType").is_some() {
        outln!("iacType     {}", or_dash(&s["iacType"]));
    }
    if !s["stackName"].is_null() {
        outln!("stack       {}", text(&s["stackName"]));
    }
    if !s["functionName"].is_null() {
        outln!("function    {}", text(&s["functionName"]));
    }
    if !s["region"].is_null() {
        outln!("region      {}", text(&s["region"]));
    }
    outln!("created     {}", text(&s["createdAt"]));
    if let Some(resources) = s["deployedResources"].as_array().filter(|r| !r.is_empty()) {
        outln!("resources");
        for r in resources {
            outln!(
                "  {:<36} {:<28} {}",
                text(&r["type"]),
                text(&r["logicalId"]),
                text(&r["physicalId"])
            );
        }
    }
    if let Some(outputs) = s["outputs"].as_object().filter(|o| !o.is_empty()) {
        outln!("outputs");
        for (k, v) in outputs {
            outln!("  {k:<28} {}", text(v));
        }
    }
    let tests = tests(s);
    if !tests.is_empty() {
        outln!("tests");
        for t in tests {
            let ms = t["durationMs"]
                .as_u64()
                .map(|ms| format!("{ms}ms"))
                .unwrap_or_default();
            let error = match t["error"].as_str() {
                Some(e) => format!("  {e}"),
                None => String::new(),
            };
            outln!(
                "  {:<4} {:<40} {ms:>8}{error}",
                text(&t["status"]),
                text(&t["name"])
            );
        }
    }
    if let Some(e) = s["error"].as_str() {
        outln!("error       {e}");
    }
}

fn tests(s: &Value) -> &[Value] {
    s["testResults"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A JSON value as plain text (strings without quotes, null as nothing).
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

fn or_dash(v: &Value) -> String {
    match text(v) {
        t if t.is_empty() => "-".into(),
        t => t,
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

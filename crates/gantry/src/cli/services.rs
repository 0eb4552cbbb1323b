//! `gantry services list|start NAME|stop NAME`: the client side of `/api/v1/services` — each
//! service with its tasks (address, health), and starting or stopping one. `--json` prints the
//! API's answers.

use super::client::{Api, ServerArgs, ok, s, urlencode};
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, clap::Subcommand)]
pub enum ServicesCmd {
    /// Every service, with its tasks.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Start a service's container and register it in its target group.
    Start {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Drain, deregister and remove a service's container.
    Stop {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn main(cmd: ServicesCmd) -> anyhow::Result<i32> {
    match cmd {
        ServicesCmd::List { server } => list(&server).await,
        ServicesCmd::Start { name, server } => change(&name, "start", &server).await,
        ServicesCmd::Stop { name, server } => change(&name, "stop", &server).await,
    }
}

async fn list(server: &ServerArgs) -> anyhow::Result<i32> {
    let api = Api::new(server)?;
    let body = api.get_json("/api/v1/services").await?;
    if server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    let services = body["services"].as_array().cloned().unwrap_or_default();
    if services.is_empty() {
        outln!("no services");
        return Ok(0);
    }
    outln!(
        "{:<24} {:<40} {:>6} {:<16} TASKS",
        "SERVICE",
        "IMAGE",
        "PORT",
        "TARGET GROUP"
    );
    for svc in &services {
        let tasks = svc["tasks"].as_array().cloned().unwrap_or_default();
        // An ECS service's image is its task definition's.
        let image = if svc["runtime"] == "ecs" {
            format!("ecs:{}", s(&svc["task_definition"]))
        } else {
            s(&svc["image"])
        };
        outln!(
            "{:<24} {:<40} {:>6} {:<16} {}",
            s(&svc["name"]),
            image,
            s(&svc["port"]),
            s(&svc["target_group"]),
            tasks.len()
        );
        for t in &tasks {
            outln!("  task {}", task_line(t));
        }
    }
    Ok(0)
}

/// A task as one line: its id, then whichever of address and health (and why) it has.
fn task_line(t: &Value) -> String {
    let mut line = s(&t["task_id"]);
    for key in ["private_ip", "port", "health", "health_reason"] {
        if !t[key].is_null() {
            line.push_str(&format!("  {key} {}", s(&t[key])));
        }
    }
    line
}

async fn change(name: &str, what: &str, server: &ServerArgs) -> anyhow::Result<i32> {
    let api = Api::new(server)?;
    let path = format!("/api/v1/services/{}/{what}", urlencode(name));
    let body: Value = ok(api.send(api.req(Method::POST, &path)).await?)
        .await?
        .json()
        .await
        .unwrap_or_default();
    if server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        let done = if what == "start" {
            "started"
        } else {
            "stopped"
        };
        outln!("service {name} {done}");
        if body.is_object() {
            outln!("{}", serde_json::to_string_pretty(&body)?);
        }
    }
    Ok(0)
}

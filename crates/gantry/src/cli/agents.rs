//! `gantry agents` (each agent's name, labels, slots, current jobs, last seen) and `gantry
//! agent-tokens create|list|revoke` (a new token is printed once; it cannot be shown again).

use super::client::{Api, ServerArgs, ok, urlencode};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum AgentTokensCmd {
    /// Create a token for agents; it is printed once.
    Create {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List tokens: names, created, last used.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a token: agents using it are refused at once.
    Revoke {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn list(a: AgentsArgs) -> anyhow::Result<i32> {
    let api = Api::new(&a.server)?;
    let body = api.get_json("/api/v1/agents").await?;
    if a.server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    let agents = body["agents"].as_array().cloned().unwrap_or_default();
    if agents.is_empty() {
        outln!("no agents");
    }
    for g in agents {
        let list = |v: &Value| {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        };
        outln!(
            "{}  labels: {}  slots: {}  jobs: {}  last seen: {}",
            g["name"].as_str().unwrap_or("?"),
            or_none(list(&g["labels"])),
            g["slots"],
            or_none(list(&g["jobs"])),
            g["last_seen"].as_str().unwrap_or("?")
        );
    }
    Ok(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "-".into() } else { s }
}

pub async fn tokens(c: AgentTokensCmd) -> anyhow::Result<i32> {
    match c {
        AgentTokensCmd::Create { name, server } => {
            let api = Api::new(&server)?;
            let r = api
                .req(Method::POST, "/api/v1/agent-tokens")
                .json(&json!({"name": name}));
            let body: Value = ok(api.send(r).await?).await?.json().await?;
            if server.json {
                outln!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                outln!("{}", body["token"].as_str().unwrap_or(""));
                eprintln!("agent token `{name}` created; it is shown this once");
            }
        }
        AgentTokensCmd::List { server } => {
            let api = Api::new(&server)?;
            let body = api.get_json("/api/v1/agent-tokens").await?;
            if server.json {
                outln!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(0);
            }
            for t in body["tokens"].as_array().cloned().unwrap_or_default() {
                outln!(
                    "{}  created: {}  last used: {}",
                    t["name"].as_str().unwrap_or("?"),
                    t["created_at"].as_str().unwrap_or("?"),
                    t["last_used_at"].as_str().unwrap_or("never")
                );
            }
        }
        AgentTokensCmd::Revoke { name, server } => {
            let api = Api::new(&server)?;
            let path = format!("/api/v1/agent-tokens/{}", urlencode(&name));
            ok(api.send(api.req(Method::DELETE, &path)).await?).await?;
            outln!("agent token `{name}` revoked");
        }
    }
    Ok(0)
}

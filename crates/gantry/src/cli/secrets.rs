//! `gantry secrets set NAME [--scope SCOPE]` (value from stdin), `list`, `rm NAME`: the client
//! side of `/api/v1/secrets`. The value is read from stdin so it stays out of shell history
//! and process listings.

use super::client::{Api, ServerArgs, ok};
use anyhow::{Context, bail};
use std::io::Read;

#[derive(Debug, clap::Subcommand)]
pub enum SecretsCmd {
    /// Create or replace a secret; its value is read from stdin.
    Set(SetArgs),
    /// List secret names and scopes (never values).
    List(ListArgs),
    /// Delete a secret.
    Rm(SetArgs),
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    pub name: String,
    /// `global`, or `repo:OWNER/NAME` for one repository's runs.
    #[arg(long, default_value = "global")]
    pub scope: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn main(cmd: SecretsCmd) -> anyhow::Result<i32> {
    match cmd {
        SecretsCmd::Set(a) => set(a).await,
        SecretsCmd::List(a) => list(a).await,
        SecretsCmd::Rm(a) => rm(a).await,
    }
}

async fn set(a: SetArgs) -> anyhow::Result<i32> {
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .context("cannot read the secret's value from stdin")?;
    // `echo value | gantry secrets set` adds one newline that is not part of the value.
    let value = value
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&value);
    if value.is_empty() {
        bail!(
            "no value on stdin: pipe the secret in, e.g. `gantry secrets set {} < file`",
            a.name
        );
    }
    let api = Api::new(&a.server)?;
    let body = serde_json::json!({"name": a.name, "scope": a.scope, "value": value});
    let resp = api
        .send(
            api.req(reqwest::Method::POST, "/api/v1/secrets")
                .json(&body),
        )
        .await?;
    ok(resp).await?;
    eprintln!("secret {} set ({})", a.name, a.scope);
    Ok(0)
}

async fn list(a: ListArgs) -> anyhow::Result<i32> {
    let api = Api::new(&a.server)?;
    let resp = api
        .send(api.req(reqwest::Method::GET, "/api/v1/secrets"))
        .await?;
    let body: serde_json::Value = ok(resp).await?.json().await?;
    if a.server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    let items = body["secrets"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        outln!("no secrets");
    }
    for s in items {
        outln!(
            "{:<32} {:<32} updated {}",
            s["name"].as_str().unwrap_or(""),
            s["scope"].as_str().unwrap_or(""),
            s["updated_at"].as_str().unwrap_or("")
        );
    }
    Ok(0)
}

async fn rm(a: SetArgs) -> anyhow::Result<i32> {
    let api = Api::new(&a.server)?;
    let path = format!(
        "/api/v1/secrets/{}/{}",
        a.scope.replace('%', "%25").replace('/', "%2F"),
        a.name
    );
    let resp = api.send(api.req(reqwest::Method::DELETE, &path)).await?;
    ok(resp).await?;
    eprintln!("secret {} deleted ({})", a.name, a.scope);
    Ok(0)
}

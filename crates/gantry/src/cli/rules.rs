//! `gantry rules list|show NAME|create FILE|delete NAME`: the client side of `/api/v1/rules`.
//! `create` sends a rule as the API takes it (a JSON object: `name`, `pattern` or `schedule`,
//! `target`, …) from a file or `-` for stdin; it is checked locally only for being JSON, the
//! server says what else is wrong. `--json` prints the API's answers.

use super::BadInput;
use super::client::{Api, ServerArgs, ok, read_input, s, urlencode};
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum RulesCmd {
    /// Every rule, from gantry.toml and from the API.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// One rule.
    Show {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create a rule from a JSON file (`-` for stdin), e.g.
    /// {"name": "r", "pattern": {"source": ["custom.app"]}, "target": {"run": "specs/x.yml"}}.
    Create {
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a rule made through the API (gantry.toml's rules are read-only).
    Delete {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn main(cmd: RulesCmd) -> anyhow::Result<i32> {
    match cmd {
        RulesCmd::List { server } => list(&server).await,
        RulesCmd::Show { name, server } => {
            let api = Api::new(&server)?;
            let rule = api
                .get_json(&format!("/api/v1/rules/{}", urlencode(&name)))
                .await?;
            print_rule(&rule, server.json)
        }
        RulesCmd::Create { file, server } => create(&file, &server).await,
        RulesCmd::Delete { name, server } => {
            let api = Api::new(&server)?;
            let path = format!("/api/v1/rules/{}", urlencode(&name));
            ok(api.send(api.req(Method::DELETE, &path)).await?).await?;
            if server.json {
                outln!("{}", serde_json::json!({"deleted": name}));
            } else {
                outln!("rule {name} deleted");
            }
            Ok(0)
        }
    }
}

async fn list(server: &ServerArgs) -> anyhow::Result<i32> {
    let api = Api::new(server)?;
    let body = api.get_json("/api/v1/rules").await?;
    if server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    let rules = body["rules"].as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        outln!("no rules");
        return Ok(0);
    }
    outln!(
        "{:<32} {:<8} {:<8} {:<28} TARGET",
        "RULE",
        "ORIGIN",
        "ENABLED",
        "TRIGGER"
    );
    for r in &rules {
        outln!(
            "{:<32} {:<8} {:<8} {:<28} {}",
            s(&r["name"]),
            s(&r["origin"]),
            r["enabled"],
            trigger(r),
            compact(&r["target"]),
        );
    }
    Ok(0)
}

/// What sets a rule off: its schedule, or that it has a pattern.
fn trigger(r: &Value) -> String {
    match (&r["schedule"], &r["pattern"]) {
        (Value::String(sched), _) => sched.clone(),
        (_, Value::Null) => "-".into(),
        _ => "pattern".into(),
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn print_rule(rule: &Value, json: bool) -> anyhow::Result<i32> {
    if json {
        outln!("{}", serde_json::to_string_pretty(rule)?);
        return Ok(0);
    }
    for key in [
        "name",
        "origin",
        "enabled",
        "schedule",
        "timezone",
        "missed",
        "created_at",
        "updated_at",
    ] {
        if !rule[key].is_null() {
            outln!("{key:<12} {}", s(&rule[key]));
        }
    }
    for key in ["pattern", "input_paths", "target", "retry_policy"] {
        if !rule[key].is_null() {
            outln!("{key:<12} {}", compact(&rule[key]));
        }
    }
    Ok(0)
}

async fn create(file: &std::path::Path, server: &ServerArgs) -> anyhow::Result<i32> {
    let body = read_input(file)?;
    let name = if file.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        file.display().to_string()
    };
    let rule: Value =
        serde_json::from_slice(&body).map_err(|e| BadInput(format!("{name}: not JSON: {e}")))?;
    if !rule.is_object() {
        return Err(BadInput(format!("{name}: a rule is a JSON object")).into());
    }
    let api = Api::new(server)?;
    let resp = api
        .send(api.req(Method::POST, "/api/v1/rules").json(&rule))
        .await?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY
        || status == reqwest::StatusCode::BAD_REQUEST
    {
        let err: Value = resp.json().await.unwrap_or_default();
        return Err(BadInput(format!(
            "{name}: {}",
            err["error"]["message"].as_str().unwrap_or("invalid rule")
        ))
        .into());
    }
    let created: Value = ok(resp).await?.json().await?;
    if server.json {
        outln!("{}", serde_json::to_string_pretty(&created)?);
    } else {
        outln!("rule {} created", s(&created["name"]));
    }
    Ok(0)
}

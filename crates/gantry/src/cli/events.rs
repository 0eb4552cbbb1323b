//! `gantry events put`: PutEvents from the command line — one entry from flags, or entries
//! from a JSON file (`[...]` or `{"Entries": [...]}`). Prints the answer; exits 1 when any
//! entry failed.

use super::client::{Api, ServerArgs, ok};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum EventsCmd {
    /// Put events on the bus.
    Put(PutArgs),
}

#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// The event's source, e.g. custom.app.
    #[arg(long, required_unless_present = "entries")]
    pub source: Option<String>,
    /// The event's detail-type, e.g. "Start ECS Task".
    #[arg(long, required_unless_present = "entries")]
    pub detail_type: Option<String>,
    /// The detail, a JSON object.
    #[arg(long, default_value = "{}")]
    pub detail: String,
    /// A resource ARN or name (repeatable).
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// Entries from a JSON file instead of the flags.
    #[arg(long, conflicts_with_all = ["source", "detail_type"])]
    pub entries: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn main(cmd: EventsCmd) -> anyhow::Result<i32> {
    let EventsCmd::Put(a) = cmd;
    let entries: Value = match &a.entries {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            match serde_json::from_str::<Value>(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?
            {
                Value::Array(items) => Value::Array(items),
                Value::Object(mut o) if o.contains_key("Entries") => {
                    o.remove("Entries").unwrap_or_default()
                }
                _ => bail!(
                    "{}: expected [entries] or {{\"Entries\": [...]}}",
                    path.display()
                ),
            }
        }
        None => json!([{
            "Source": a.source, "DetailType": a.detail_type, "Detail": a.detail,
            "Resources": a.resources,
        }]),
    };
    let api = Api::new(&a.server)?;
    let resp = api
        .send(
            api.req(reqwest::Method::POST, "/api/v1/events")
                .json(&json!({"Entries": entries})),
        )
        .await?;
    let body: Value = ok(resp).await?.json().await?;
    outln!("{}", serde_json::to_string_pretty(&body)?);
    Ok(if body["FailedEntryCount"].as_u64() == Some(0) {
        0
    } else {
        1
    })
}

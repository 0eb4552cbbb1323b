//! `gantry events`: `put` (PutEvents from the command line — one entry from flags, or entries
//! from a JSON file, `[...]` or `{"Entries": [...]}`; exits 1 when any entry failed), `list`
//! (what came in, newest first) and `show ID` (one event, the rules it matched and each
//! delivery's result). `--json` prints the API's answers.

use super::BadInput;
use super::client::{Api, ServerArgs, ok, read_input, s, urlencode};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum EventsCmd {
    /// Put events on the bus.
    Put(PutArgs),
    /// The latest events (webhooks, PutEvents, state changes), newest first.
    List(ListArgs),
    /// One event: its payload, the rules it matched and each delivery's result.
    Show {
        /// The event's id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
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
    /// Entries from a JSON file instead of the flags (`-` for stdin).
    #[arg(long, conflicts_with_all = ["source", "detail_type"])]
    pub entries: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only events from this source (e.g. `github`, `gantry`, `custom.app`).
    #[arg(long)]
    pub source: Option<String>,
    /// Only events of this type (a detail-type, or a GitHub event name).
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn main(cmd: EventsCmd) -> anyhow::Result<i32> {
    match cmd {
        EventsCmd::Put(a) => put(a).await,
        EventsCmd::List(a) => list(a).await,
        EventsCmd::Show { id, server } => show(&id, &server).await,
    }
}

async fn put(a: PutArgs) -> anyhow::Result<i32> {
    let entries: Value = match &a.entries {
        Some(path) => {
            let bad = |why: String| BadInput(format!("{}: {why}", path.display()));
            let text = read_input(path)?;
            match serde_json::from_slice::<Value>(&text)
                .map_err(|e| bad(format!("not JSON: {e}")))?
            {
                Value::Array(items) => Value::Array(items),
                Value::Object(mut o) if o.contains_key("Entries") => {
                    o.remove("Entries").unwrap_or_default()
                }
                _ => return Err(bad("expected [entries] or {\"Entries\": [...]}".into()).into()),
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
    if a.server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        let answers = body["Entries"].as_array().cloned().unwrap_or_default();
        let ids: Vec<String> = answers
            .iter()
            .filter_map(|e| e["EventId"].as_str().map(str::to_string))
            .collect();
        let noun = if ids.len() == 1 { "event" } else { "events" };
        outln!("put {} {noun}: {}", ids.len(), ids.join(" "));
        for (i, e) in answers.iter().enumerate() {
            if e["EventId"].is_null() {
                outln!(
                    "entry {i} failed: {}: {}",
                    s(&e["ErrorCode"]),
                    s(&e["ErrorMessage"])
                );
            }
        }
    }
    Ok(if body["FailedEntryCount"].as_u64() == Some(0) {
        0
    } else {
        1
    })
}

async fn list(a: ListArgs) -> anyhow::Result<i32> {
    let api = Api::new(&a.server)?;
    let mut path = format!("/api/v1/events?limit={}", a.limit);
    if let Some(src) = &a.source {
        path.push_str(&format!("&source={}", urlencode(src)));
    }
    if let Some(t) = &a.event_type {
        path.push_str(&format!("&type={}", urlencode(t)));
    }
    let body = api.get_json(&path).await?;
    if a.server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    let events = body["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        outln!("no events");
        return Ok(0);
    }
    outln!(
        "{:<28} {:<24} {:<16} {:<24} {:>5}  OUTCOME",
        "EVENT",
        "RECEIVED",
        "SOURCE",
        "TYPE",
        "RULES"
    );
    for e in &events {
        outln!(
            "{:<28} {:<24} {:<16} {:<24} {:>5}  {}",
            s(&e["id"]),
            s(&e["received_at"]),
            s(&e["source"]),
            s(&e["type"]),
            e["rules_matched"].as_array().map_or(0, Vec::len),
            s(&e["outcome"]),
        );
    }
    Ok(0)
}

async fn show(id: &str, server: &ServerArgs) -> anyhow::Result<i32> {
    let api = Api::new(server)?;
    let body = api
        .get_json(&format!("/api/v1/events/{}", urlencode(id)))
        .await?;
    if server.json {
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    for key in [
        "id",
        "source",
        "type",
        "delivery_id",
        "received_at",
        "outcome",
    ] {
        if !body[key].is_null() {
            outln!("{key:<12} {}", s(&body[key]));
        }
    }
    let rules: Vec<String> = body["rules_matched"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    outln!(
        "{:<12} {}",
        "rules",
        if rules.is_empty() {
            "none".to_string()
        } else {
            rules.join(", ")
        }
    );
    for d in body["deliveries"].as_array().into_iter().flatten() {
        outln!(
            "  delivery to {}: {} after {} attempt(s){}",
            s(&d["rule"]),
            s(&d["status"]),
            d["attempts"],
            match s(&d["result"]) {
                r if r.is_empty() => String::new(),
                r => format!(": {r}"),
            }
        );
    }
    outln!("");
    outln!("{}", serde_json::to_string_pretty(&body["event"])?);
    Ok(0)
}

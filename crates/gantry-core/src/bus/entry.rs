//! PutEvents entries (`Source`, `DetailType`, `Detail` as a JSON string, `Resources`, `Time`)
//! checked as EventBridge checks them, and the event envelope they become — the JSON that
//! patterns are matched against and targets receive.

use serde_json::{Value, json};

/// EventBridge's limit for one entry.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Entries per PutEvents call.
pub const MAX_ENTRIES: usize = 10;

/// A per-entry failure, as PutEvents reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub code: &'static str,
    pub message: String,
}

fn fail<T>(code: &'static str, message: impl Into<String>) -> Result<T, EntryError> {
    Err(EntryError {
        code,
        message: message.into(),
    })
}

/// Builds the envelope of one entry: `{"version", "id", "detail-type", "source", "account",
/// "time", "region", "resources", "detail"}`. `now` is RFC 3339 (used when `Time` is absent).
pub fn envelope(entry: &Value, id: &str, now: &str) -> Result<Value, EntryError> {
    let Value::Object(e) = entry else {
        return fail("InvalidArgument", "an entry must be a JSON object");
    };
    if let Some(k) = e.keys().find(|k| {
        ![
            "Source",
            "DetailType",
            "Detail",
            "Resources",
            "Time",
            "EventBusName",
            "TraceHeader",
        ]
        .contains(&k.as_str())
    }) {
        return fail("InvalidArgument", format!("unknown entry field `{k}`"));
    }
    let size = serde_json::to_string(entry).map_or(0, |s| s.len());
    if size > MAX_ENTRY_BYTES {
        return fail(
            "EntrySizeTooLarge",
            format!("the entry is {size} bytes; the limit is {MAX_ENTRY_BYTES}"),
        );
    }
    let text = |key: &str| -> Result<String, EntryError> {
        match e.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) | None => fail(
                "InvalidArgument",
                format!("Parameter {key} is not valid. Reason: {key} is a required argument."),
            ),
            Some(_) => fail("InvalidArgument", format!("{key} must be a string")),
        }
    };
    let source = text("Source")?;
    let detail_type = text("DetailType")?;
    let detail_text = text("Detail")?;
    let detail: Value = match serde_json::from_str(&detail_text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return fail(
                "MalformedDetail",
                "Detail is malformed: it must be a JSON object in a string",
            );
        }
    };
    let resources = match e.get("Resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        Some(_) => return fail("InvalidArgument", "Resources must be a list of strings"),
    };
    let time = match e.get("Time") {
        None | Some(Value::Null) => now.to_string(),
        Some(Value::String(t)) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => t
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Err(_) => {
                return fail(
                    "InvalidArgument",
                    format!("Time `{t}` is not an RFC 3339 time"),
                );
            }
        },
        Some(Value::Number(n)) => match n
            .as_i64()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => return fail("InvalidArgument", "Time is out of range"),
        },
        Some(_) => {
            return fail(
                "InvalidArgument",
                "Time must be an RFC 3339 string or epoch seconds",
            );
        }
    };
    Ok(json!({
        "version": "0", "id": id, "detail-type": detail_type, "source": source,
        "account": "000000000000", "time": time, "region": "local",
        "resources": resources, "detail": detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_envelopes_or_say_why() {
        let ok = json!({"Source": "custom.app", "DetailType": "Start ECS Task",
                        "Detail": "{\"service\": \"auth\"}", "Resources": ["arn:x"]});
        let env = envelope(&ok, "e1", "2026-11-22T10:00:00Z").unwrap();
        assert_eq!(env["detail"]["service"], "auth");
        assert_eq!(env["detail-type"], "Start ECS Task");
        assert_eq!(env["time"], "2026-11-22T10:00:00Z");
        let code = |v: Value| envelope(&v, "e", "t").unwrap_err().code;
        assert_eq!(
            code(json!({"DetailType": "x", "Detail": "{}"})),
            "InvalidArgument"
        );
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "x", "Detail": "[1]"})),
            "MalformedDetail"
        );
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "x", "Detail": "{"})),
            "MalformedDetail"
        );
        let big = "x".repeat(MAX_ENTRY_BYTES);
        let detail = format!("{{\"a\": \"{big}\"}}");
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "x", "Detail": detail})),
            "EntrySizeTooLarge"
        );
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "x", "Detail": "{}", "Time": "yesterday"})),
            "InvalidArgument"
        );
        assert_eq!(
            code(json!({"Source": "s", "DetailType": "x", "Detail": "{}", "Colour": 1})),
            "InvalidArgument"
        );
    }
}

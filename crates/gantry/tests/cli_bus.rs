//! `gantry events put|list|show` and `gantry rules list|show|create|delete` (the real binary)
//! against a real `gantry serve`: readable text by default, the API's JSON with `--json`, the
//! server's 404 message and exit 1 for a missing name, exit 2 for input that cannot be used.

#[path = "common/cli.rs"]
mod cli;
mod common;

use cli::{gantry, gantry_stdin};
use common::Server;
use serde_json::{Value, json};

/// Where the rules' HTTP target points: nothing listens there.
const HOOK: &str = "http://127.0.0.1:9/hook";

async fn server(dir: &std::path::Path) -> Server {
    let config = dir.join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            "[[rules]]\nname = \"from-config\"\npattern = {{ source = [\"custom.cfg\"] }}\ntarget = {{ http = \"{HOOK}\" }}\n"
        ),
    )
    .unwrap();
    Server::start_with(
        &dir.join("data"),
        &[
            ("GANTRY_CONFIG", config.to_str().unwrap()),
            ("GANTRY_ALLOW_INTERNAL_HOSTS", "127.0.0.1"),
        ],
    )
    .await
}

#[tokio::test]
async fn events_are_put_listed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;

    let out = gantry(
        &server,
        &[
            "events",
            "put",
            "--source",
            "custom.cfg",
            "--detail-type",
            "Deploy",
            "--detail",
            r#"{"service": "auth"}"#,
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let id = out
        .stdout
        .trim()
        .strip_prefix("put 1 event: ")
        .unwrap_or_else(|| panic!("{}", out.all()))
        .to_string();
    assert!(!id.is_empty() && !id.contains(' '), "{}", out.all());

    let out = gantry(
        &server,
        &[
            "events",
            "put",
            "--source",
            "a",
            "--detail-type",
            "B",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let put: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(put["FailedEntryCount"], 0, "{put}");
    let second = put["Entries"][0]["EventId"].as_str().unwrap().to_string();

    // Entries from stdin, one of them refused: exit 1, the failure said.
    let entries = json!([{"Source": "a", "DetailType": "B", "Detail": "{}"},
                         {"Source": "a", "Detail": "{}"}]);
    let out = gantry_stdin(
        &server,
        &["events", "put", "--entries", "-"],
        entries.to_string().as_bytes(),
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.starts_with("put 1 event: "), "{}", out.all());
    assert!(out.stdout.contains("entry 1 failed: "), "{}", out.all());

    let out = gantry(&server, &["events", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("EVENT"), "{}", out.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&id) && l.contains("custom.cfg"))
    );
    let out = gantry(
        &server,
        &["events", "list", "--json", "--source", "custom.cfg"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<&str> = list["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "{list}");
    assert!(!ids.contains(&second.as_str()));

    let out = gantry(&server, &["events", "show", &id]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("from-config"), "{}", out.stdout);
    assert!(out.stdout.contains("\"auth\""), "{}", out.stdout);
    let out = gantry(&server, &["events", "show", &id, "--json"]).await;
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["rules_matched"], json!(["from-config"]));

    let out = gantry(&server, &["events", "show", "NOSUCH"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("event `NOSUCH` not found"),
        "{}",
        out.all()
    );

    // Input that cannot be used: exit 2, nothing sent.
    let missing = dir.path().join("missing.json");
    let out = gantry(
        &server,
        &["events", "put", "--entries", missing.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("cannot read"), "{}", out.all());
    let out = gantry_stdin(&server, &["events", "put", "--entries", "-"], b"[{").await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("not JSON"), "{}", out.all());
}

#[tokio::test]
async fn rules_are_created_listed_shown_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;

    let file = dir.path().join("rule.json");
    std::fs::write(
        &file,
        json!({"name": "notify", "pattern": {"source": ["custom.app"]}, "target": {"http": HOOK}})
            .to_string(),
    )
    .unwrap();
    let out = gantry(&server, &["rules", "create", file.to_str().unwrap()]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.stdout, "rule notify created\n");
    let stdin = json!({"name": "nightly", "schedule": "rate(1 day)", "target": {"http": HOOK}});
    let out = gantry_stdin(
        &server,
        &["rules", "create", "-", "--json"],
        stdin.to_string().as_bytes(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let created: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(created["name"], "nightly");
    assert_eq!(created["origin"], "api");

    let out = gantry(&server, &["rules", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("RULE"), "{}", out.stdout);
    for (name, trigger) in [
        ("from-config", "pattern"),
        ("notify", "pattern"),
        ("nightly", "rate(1 day)"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(name) && l.contains(trigger) && l.contains(HOOK)),
            "{name}: {}",
            out.stdout
        );
    }
    let out = gantry(&server, &["rules", "list", "--json"]).await;
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["rules"].as_array().unwrap().len(), 3, "{list}");

    let out = gantry(&server, &["rules", "show", "notify"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("origin       api"), "{}", out.stdout);
    assert!(
        out.stdout.contains(r#"{"source":["custom.app"]}"#),
        "{}",
        out.stdout
    );
    let out = gantry(&server, &["rules", "show", "notify", "--json"]).await;
    let one: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(one["target"], json!({"http": HOOK}));

    let out = gantry(&server, &["rules", "delete", "notify"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.stdout, "rule notify deleted\n");
    for args in [
        &["rules", "show", "notify"][..],
        &["rules", "delete", "notify"][..],
    ] {
        let out = gantry(&server, args).await;
        assert_eq!(out.code, 1, "{args:?}: {}", out.all());
        assert!(
            out.stderr.contains("rule `notify` not found"),
            "{}",
            out.all()
        );
    }
    // gantry.toml's rules are read-only: the server's reason, exit 1.
    let out = gantry(&server, &["rules", "delete", "from-config"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("gantry.toml"), "{}", out.all());

    // Input that cannot be used: exit 2 with the reason.
    let missing = dir.path().join("missing.json");
    let out = gantry(&server, &["rules", "create", missing.to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("cannot read"), "{}", out.all());
    let out = gantry_stdin(&server, &["rules", "create", "-"], b"{\"name\": ").await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("<stdin>: not JSON"), "{}", out.all());
    let bad = json!({"name": "x", "pattern": {"source": []}, "target": {"http": HOOK}});
    let out = gantry_stdin(
        &server,
        &["rules", "create", "-"],
        bad.to_string().as_bytes(),
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("empty arrays"), "{}", out.all());
    let out = gantry(&server, &["rules", "list", "--json"]).await;
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["rules"].as_array().unwrap().len(), 2, "{list}");
}

//! `gantry services list|start|stop` (the real binary) against a real `gantry serve` on Docker:
//! the services listed as a table or the API's JSON; an unknown name gets the server's 404
//! message and exit 1, a start that fails the server's reason and exit 1; a server without
//! services says so.

#[path = "common/cli.rs"]
mod cli;
mod common;

use cli::gantry;
use common::Server;
use serde_json::Value;

#[tokio::test]
async fn services_are_listed_and_unknown_or_failing_ones_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[services.web]
image = "127.0.0.1:1/gantry-test/does-not-exist:1"
port = 8080
target_group = "front"

[target_groups.front]
provider = "haproxy"
socket = "{}/missing.sock"
backend = "web_be"
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[("GANTRY_CONFIG", config.to_str().unwrap())],
    )
    .await;

    let out = gantry(&server, &["services", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("SERVICE"), "{}", out.stdout);
    assert!(
        lines[1].starts_with("web ")
            && lines[1].contains("127.0.0.1:1/gantry-test/does-not-exist:1")
            && lines[1].contains("front")
            && lines[1].ends_with(" 0"),
        "{}",
        out.stdout
    );
    let out = gantry(&server, &["services", "list", "--json"]).await;
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["services"][0]["name"], "web", "{list}");
    assert_eq!(list["services"][0]["tasks"], serde_json::json!([]));

    for what in ["start", "stop"] {
        let out = gantry(&server, &["services", what, "nope"]).await;
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(out.stderr.contains("no service `nope`"), "{}", out.all());
        assert!(out.stdout.is_empty(), "{}", out.all());
    }
    let out = gantry(&server, &["services", "start", "web"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("failed at step `start`") && out.stderr.contains("cannot pull"),
        "{}",
        out.all()
    );

    // A server with no services says so.
    let bare = Server::start(&dir.path().join("bare")).await;
    let out = gantry(&bare, &["services", "list"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("no services are configured"),
        "{}",
        out.all()
    );
}

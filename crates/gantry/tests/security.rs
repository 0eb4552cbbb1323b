//! What jobs and events from outside cannot reach: the server's environment, its memory and
//! its data dir (jobs); files outside the rules' folder, other hosts than the rule's, internal
//! addresses and the contents of files that are not specs (rule targets).

mod common;

use common::{Server, eventually, job};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;

const TOKEN: &str = "tok-0123456789abcdef0123456789abcdef";

/// A job that looks for the server's secrets everywhere it might reach them, and prints what
/// it finds: its environment, the server's `/proc/<pid>/environ`, the data dir.
fn snoop(data_dir: &std::path::Path) -> String {
    let d = data_dir.display();
    format!(
        r#"jobs:
  snoop:
    run:
      - 'env | grep -E "tok-0123|AKIAEXAMPLE|wh-secret" && echo FOUND-IN-ENV || true'
      - 'cat /proc/$PPID/environ 2>/dev/null | tr "\0" "\n" | grep -E "tok-0123|AKIAEXAMPLE" && echo FOUND-IN-PROC || true'
      - 'for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null; done | tr "\0" "\n" | grep -E "tok-0123|AKIAEXAMPLE" && echo FOUND-IN-SOME-PROC || true'
      - 'cat {d}/secret.key >/dev/null 2>&1 && echo READ-KEY || true'
      - 'cat {d}/gantry.db >/dev/null 2>&1 && echo READ-DB || true'
      - 'ls {d} >/dev/null 2>&1 && echo LISTED-DATA-DIR || true'
      - 'echo "path=$PATH user=$(id -un)"'
"#
    )
}

#[tokio::test]
async fn a_job_reaches_none_of_the_servers_secrets() {
    if !gantry_exec::running_as_root() {
        // As another user than root, the data dir's modes already keep other users' jobs out;
        // this test is about the server running as root and its jobs as `nobody`.
        panic!("this test needs root (CI and the development machine run as root)");
    }
    let dir = tempfile::tempdir().unwrap();
    // The jobs' user must be able to pass through the folders above its work dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let data = dir.path().join("data");
    let work = dir.path().join("work");
    let server = Server::start_with(
        &data,
        &[
            ("GANTRY_API_TOKEN", TOKEN),
            ("GANTRY_GITHUB_WEBHOOK_SECRET", "wh-secret"),
            ("AWS_SECRET_ACCESS_KEY", "AKIAEXAMPLE-server-only"),
            ("GANTRY_RUN_AS", "nobody"),
            ("GANTRY_WORK_DIR", work.to_str().unwrap()),
        ],
    )
    .await;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data dir is private");
    for file in ["gantry.db", "secret.key"] {
        let mode = std::fs::metadata(data.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let id = server.submit_yaml(&snoop(&data)).await;
    let run = server.wait_finished(&id, 30).await;
    assert_eq!(job(&run, "snoop")["status"], "succeeded", "{run}");
    let log = server.job_log(&id, "snoop").await;
    for found in [
        "FOUND-IN-ENV",
        "FOUND-IN-PROC",
        "FOUND-IN-SOME-PROC",
        "READ-KEY",
        "READ-DB",
        "LISTED-DATA-DIR",
    ] {
        // (The commands' own lines hold the markers too; only a line of output is a find.)
        assert!(!log.lines().any(|l| l.trim() == found), "{found}:\n{log}");
    }
    assert!(
        log.contains(&format!("path={} user=nobody", gantry_exec::SAFE_PATH)),
        "{log}"
    );
}

#[tokio::test]
async fn a_job_inherits_nothing_of_the_servers_environment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            ("GANTRY_API_TOKEN", TOKEN),
            ("AWS_SECRET_ACCESS_KEY", "AKIAEXAMPLE-server-only"),
            ("KEEP_ME", "passed-on"),
            ("GANTRY_PASS_ENV", "KEEP_ME"),
        ],
    )
    .await;
    let id = server
        .submit_yaml("jobs:\n  env:\n    env: {OWN: mine}\n    run: ['env | sort']\n")
        .await;
    let run = server.wait_finished(&id, 30).await;
    assert_eq!(job(&run, "env")["status"], "succeeded", "{run}");
    let log = server.job_log(&id, "env").await;
    assert!(!log.contains("AKIAEXAMPLE"), "{log}");
    assert!(!log.contains("tok-0123"), "{log}");
    assert!(
        log.contains("KEEP_ME=passed-on"),
        "listed in pass_env: {log}"
    );
    assert!(log.contains("OWN=mine"), "{log}");
    assert!(log.contains("GANTRY_RUN_ID="), "the run context: {log}");
    assert!(
        log.contains(&format!("PATH={}", gantry_exec::SAFE_PATH)),
        "{log}"
    );
}

/// The outcome of the first delivery of `event_id` by `rule`, once it has one.
async fn delivery(server: &Server, event_id: &str, rule: &str) -> Value {
    eventually(20, "the delivery has an outcome", async || {
        let (_, e) = server.get(&format!("/api/v1/events/{event_id}")).await;
        e["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["rule"] == rule && d["status"] != "pending")
            .cloned()
    })
    .await
}

async fn put(server: &Server, detail: Value) -> String {
    let entries = json!({"Entries": [
        {"Source": "custom.app", "DetailType": "Go", "Detail": detail.to_string()},
    ]});
    let (status, answer) = server
        .post("/api/v1/events", "application/json", entries.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["Entries"][0]["EventId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn rule_templates_keep_event_values_in_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("specs")).unwrap();
    std::fs::write(
        rules.join("specs/prod.yml"),
        "jobs:\n  ok: {run: ['true']}\n",
    )
    .unwrap();
    // A spec outside the rules' folder, and a file there that is not a spec.
    std::fs::create_dir_all(dir.path().join("x")).unwrap();
    std::fs::write(
        dir.path().join("x/evil.yml"),
        "jobs:\n  evil: {run: ['echo EVIL-RAN']}\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("specs/notes.yml"),
        "database_password: hunter2-in-a-file\n",
    )
    .unwrap();
    let config = rules.join("gantry.toml");
    std::fs::write(
        &config,
        r#"
[[rules]]
name = "by-env"
pattern = { source = ["custom.app"] }
input_paths = { env = "$.detail.env" }
target = { run = "specs/{env}.yml" }

[[rules]]
name = "notify"
pattern = { source = ["custom.app"] }
input_paths = { path = "$.detail.path" }
target = { http = "http://127.0.0.1:9/{path}" }

[[rules]]
name = "by-name"
pattern = { source = ["custom.app"] }
target = { http = "http://localhost:9/x" }
"#,
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[("GANTRY_CONFIG", config.to_str().unwrap())],
    )
    .await;

    // Traversal: the value cannot leave the rules' folder.
    let e = put(&server, json!({"env": "../../x/evil", "path": "a"})).await;
    let d = delivery(&server, &e, "by-env").await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["result"]
            .as_str()
            .unwrap()
            .contains("cannot go into a file path"),
        "{d}"
    );
    // An internal address is not reached (the URL names one; nothing allows it).
    let d = delivery(&server, &e, "notify").await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["result"].as_str().unwrap().contains("internal address"),
        "{d}"
    );

    // Nor one a name resolves to.
    let d = delivery(&server, &e, "by-name").await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["result"].as_str().unwrap().contains("internal address"),
        "{d}"
    );

    // A file that is not a spec: the error does not show what it holds.
    let e = put(&server, json!({"env": "notes", "path": "a"})).await;
    let d = delivery(&server, &e, "by-env").await;
    assert_eq!(d["status"], "failed", "{d}");
    let result = d["result"].as_str().unwrap();
    assert!(result.contains("not a valid run spec"), "{d}");
    assert!(
        !result.contains("database_password") && !result.contains("hunter2"),
        "{d}"
    );

    // The rule's own spec still runs.
    let e = put(&server, json!({"env": "prod", "path": "a"})).await;
    let d = delivery(&server, &e, "by-env").await;
    assert_eq!(d["status"], "delivered", "{d}");

    // A rule may not put an event's value into a URL's host.
    let (status, answer) = server
        .post(
            "/api/v1/rules",
            "application/json",
            json!({"name": "ssrf", "pattern": {"source": ["custom.app"]},
                   "input_paths": {"host": "$.detail.host"},
                   "target": {"http": "http://{host}/notify"}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("not its host"), "{answer}");
    // No run of the evil spec ever started.
    let (_, runs) = server.get("/api/v1/runs").await;
    assert!(!runs.to_string().contains("evil"), "{runs}");
}

#[tokio::test]
async fn a_job_of_a_server_running_as_its_own_user_cannot_read_the_servers_process() {
    // Server and job are the same user here (as on a laptop): what keeps the job out of the
    // server's `/proc/<pid>/environ` is the server not being dumpable.
    assert!(
        gantry_exec::running_as_root(),
        "this test starts the server as `nobody`, which needs root"
    );
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let server = Server::start_as(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[
            ("GANTRY_API_TOKEN", TOKEN),
            ("AWS_SECRET_ACCESS_KEY", "AKIAEXAMPLE-server-only"),
        ],
        Some(65534),
    )
    .await;
    let id = server
        .submit_yaml(
            "jobs:\n  peek:\n    run:\n      - 'id -u'\n      - 'cat /proc/$PPID/environ | tr \"\\0\" \"\\n\" | grep -c AKIAEXAMPLE || echo unreadable'\n",
        )
        .await;
    let run = server.wait_finished(&id, 30).await;
    let log = server.job_log(&id, "peek").await;
    assert_eq!(job(&run, "peek")["status"], "succeeded", "{log}");
    assert!(log.lines().any(|l| l.trim() == "65534"), "same user: {log}");
    assert!(log.lines().any(|l| l.trim() == "unreadable"), "{log}");
}

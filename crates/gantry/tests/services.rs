//! The seed's start-engines flow end to end: PutEvents → the rule starts service `auth` → its
//! container runs → it is registered in a real HAProxy → a request through HAProxy's frontend
//! reaches it → the result with the private IP is stored; then stop → deregistered → gone.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn setup_script(name: &str) {
    let path = format!("{}/../../scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(path).output().unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real HAProxy with a frontend on `front`, once it accepts connections there (under a
/// busy test run it can take a while to start, and the first request would find no one).
async fn haproxy(dir: &Path, front: u16) -> tokio::process::Child {
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n    stats socket {}/admin.sock level admin\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe\n    bind 127.0.0.1:{front}\n    default_backend auth_be\n\
             backend auth_be\n    balance roundrobin\n    option httpchk GET /\n",
            dir.display()
        ),
    )
    .unwrap();
    let child = tokio::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", front))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "HAProxy did not listen on {front} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

async fn get(port: u16) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return (0, String::new());
    };
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    (
        out.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        out,
    )
}

fn containers_of(service: &str) -> usize {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.gantry.service={service}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test]
async fn put_events_start_a_service_behind_haproxy_and_stop_drains_it() {
    setup_script("test-deps");
    setup_script("test-images");
    let dir = tempfile::tempdir().unwrap();
    let front = free_port();
    let _lb = haproxy(dir.path(), front).await;
    let service = format!("auth{}", std::process::id());
    let config = dir.path().join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[rules]]
name = "start-engines"
pattern = {{ source = ["custom.app"], "detail-type" = ["Start ECS Task"] }}
input_paths = {{ service = "$.detail.service" }}
target = {{ start_service = "{{service}}" }}

[services.{service}]
image = "gantry-test/busybox:latest"
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]
port = 8080
target_group = "auth"
health_check = {{ path = "/", interval = "200ms", healthy_threshold = 2 }}
start_timeout = "20s"
deregistration_delay = "300ms"

[services.broken]
image = "gantry-test/busybox:latest"
command = ["sh", "-c", "exit 3"]
port = 8080
target_group = "auth"
start_timeout = "5s"

[target_groups.auth]
provider = "haproxy"
socket = "{}/admin.sock"
backend = "auth_be"
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
    assert_eq!(get(front).await.0, 503, "nothing behind HAProxy yet");

    let entries = json!({"Entries": [{"Source": "custom.app", "DetailType": "Start ECS Task",
                                      "Detail": json!({"service": service}).to_string()}]});
    let (status, answer) = server
        .post("/api/v1/events", "application/json", entries.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    let event_id = answer["Entries"][0]["EventId"]
        .as_str()
        .unwrap()
        .to_string();

    // The delivery's result is the started task, with its private IP.
    let deadline = Instant::now() + Duration::from_secs(30);
    let result: Value = loop {
        let (_, ev) = server.get(&format!("/api/v1/events/{event_id}")).await;
        let d = &ev["deliveries"][0];
        if d["status"] == "delivered" {
            break serde_json::from_str(d["result"].as_str().unwrap()).unwrap();
        }
        assert!(d["status"] != "failed", "{ev}");
        assert!(Instant::now() < deadline, "not started: {ev}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ip = result["private_ip"].as_str().unwrap().to_string();
    assert!(ip.contains('.'), "{result}");
    assert_eq!(result["port"], 8080);
    assert_eq!(result["health"], "healthy");

    let (code, body) = get(front).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("gantry-test"),
        "through HAProxy to the container: {body}"
    );
    let (_, list) = server.get("/api/v1/services").await;
    let svc = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service.as_str())
        .unwrap();
    assert_eq!(svc["tasks"][0]["private_ip"], ip.as_str());
    assert_eq!(svc["tasks"][0]["health"], "healthy");

    // A container that exits at once: a clear error at its step, nothing left behind.
    let resp = server
        .req(reqwest::Method::POST, "/api/v1/services/broken/start")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let err: Value = resp.json().await.unwrap();
    // It may be caught exiting before registration or while waiting for health.
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        (msg.contains("failed at step `running`") || msg.contains("failed at step `healthy`"))
            && msg.contains("exit")
            && msg.contains('3'),
        "{err}"
    );
    assert_eq!(containers_of("broken"), 0);
    let unknown = server
        .req(reqwest::Method::POST, "/api/v1/services/nope/start")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // kill -9 and restart: the running task is taken back, still serving.
    let data = server.data_dir.clone();
    let mut server = server;
    server.kill9().await;
    let server = Server::start_with(&data, &[("GANTRY_CONFIG", config.to_str().unwrap())]).await;
    let (_, list) = server.get("/api/v1/services").await;
    let svc = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service.as_str())
        .unwrap();
    assert_eq!(svc["tasks"][0]["private_ip"], ip.as_str(), "{list}");
    assert_eq!(get(front).await.0, 200);

    // Stop: drained, deregistered, the container gone.
    let resp = server
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/services/{service}/stop"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(get(front).await.0, 503);
    assert_eq!(containers_of(&service), 0);
    let (_, trail) = server
        .get(&format!("/api/v1/services/{service}/events"))
        .await;
    let steps: Vec<&str> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "started",
            "running",
            "registered",
            "healthy",
            "adopted",
            "draining",
            "deregistered",
            "stopped"
        ],
        "{trail}"
    );
}

#[tokio::test]
async fn each_fault_is_named_at_its_step_and_leaves_nothing_behind() {
    setup_script("test-deps");
    setup_script("test-images");
    let dir = tempfile::tempdir().unwrap();
    let front = free_port();
    let _lb = haproxy(dir.path(), front).await;
    let pid = std::process::id();
    let config = dir.path().join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[services.noimage{pid}]
image = "gantry-test/does-not-exist:1"
port = 8080
target_group = "auth"

[services.unhealthy{pid}]
image = "gantry-test/busybox:latest"
command = ["httpd", "-f", "-p", "9090", "-h", "/www"]
port = 8080
target_group = "auth"
health_check = {{ interval = "200ms" }}
start_timeout = "3s"

[services.nolb{pid}]
image = "gantry-test/busybox:latest"
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]
port = 8080
target_group = "gone"

[target_groups.auth]
provider = "haproxy"
socket = "{dir}/admin.sock"
backend = "auth_be"

[target_groups.gone]
provider = "haproxy"
socket = "{dir}/missing.sock"
backend = "auth_be"
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[("GANTRY_CONFIG", config.to_str().unwrap())],
    )
    .await;
    for (name, step, why) in [
        ("noimage", "start", "is not on this Docker host"),
        ("unhealthy", "healthy", "never became healthy"),
        ("nolb", "register", "cannot be reached"),
    ] {
        let service = format!("{name}{pid}");
        let resp = server
            .req(
                reqwest::Method::POST,
                &format!("/api/v1/services/{service}/start"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{service}");
        let err: Value = resp.json().await.unwrap();
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("failed at step `{step}`")) && msg.contains(why),
            "{service}: {msg}"
        );
        assert_eq!(
            containers_of(&service),
            0,
            "{service}: container left behind"
        );
    }
    assert_eq!(get(front).await.0, 503, "nothing left registered");

    // Docker unreachable: a server with services refuses to start, saying why.
    let out = Command::new(common::gantry_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .env("GANTRY_CONFIG", &config)
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no-docker.sock", dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[services] need Docker"), "{err}");
}

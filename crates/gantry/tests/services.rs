//! Services end to end, with real Docker and a real HAProxy: PutEvents → a rule starts the
//! service → its container runs → it is registered in HAProxy → a request through HAProxy's
//! frontend reaches it → the result with the private IP is stored; then stop → deregistered →
//! gone. Each failing step is named; and a Gantry instance touches only its own containers
//! (services and jobs), never another instance's on the same Docker.

mod common;

use common::{Server, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
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
    containers(&[&format!("io.gantry.service={service}")], true)
}

/// How many containers carry all of `labels` (each `key=value`): all, or running ones only.
fn containers(labels: &[&str], all: bool) -> usize {
    let mut cmd = Command::new("docker");
    cmd.args(["ps", "-q"]);
    if all {
        cmd.arg("-a");
    }
    for l in labels {
        cmd.args(["--filter", &format!("label={l}")]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Removes every container of these instances when dropped, so a failed test leaves none.
struct RemoveContainersOf(Vec<String>);

impl Drop for RemoveContainersOf {
    fn drop(&mut self) {
        for owner in &self.0 {
            let _ = Command::new("sh")
                .args([
                    "-c",
                    &format!(
                        "docker ps -aq --filter label=io.gantry.owner={owner} | xargs -r docker rm -f"
                    ),
                ])
                .output();
        }
    }
}

/// A server's instance id, as its data dir keeps it.
fn instance_id(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("node-id"))
        .unwrap()
        .trim()
        .to_string()
}

/// A `gantry.toml` in `dir` with one service, `service`, in target group `auth` (the HAProxy
/// of [`haproxy`] on `dir`).
fn one_service_config(dir: &Path, service: &str) -> PathBuf {
    let config = dir.join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[services.{service}]
image = "gantry-test/busybox:latest"
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]
port = 8080
target_group = "auth"
health_check = {{ path = "/", interval = "200ms", healthy_threshold = 2 }}
start_timeout = "20s"
deregistration_delay = "100ms"

[target_groups.auth]
provider = "haproxy"
socket = "{}/admin.sock"
backend = "auth_be"
"#,
            dir.display()
        ),
    )
    .unwrap();
    config
}

/// The tasks `server` lists for `service`.
async fn tasks(server: &Server, service: &str) -> Vec<Value> {
    let (status, list) = server.get("/api/v1/services").await;
    assert_eq!(status, 200, "{list}");
    list["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("no service {service}: {list}"))["tasks"]
        .as_array()
        .unwrap()
        .clone()
}

/// The steps in `service`'s audit trail on `server`.
async fn trail(server: &Server, service: &str) -> Vec<String> {
    let (_, trail) = server
        .get(&format!("/api/v1/services/{service}/events"))
        .await;
    trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect()
}

async fn start_service(server: &Server, service: &str) -> Value {
    let resp = server
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/services/{service}/start"),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn stop_service(server: &Server, service: &str) -> (u16, Value) {
    let resp = server
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/services/{service}/stop"),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
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
    // (`health` records each state on the way to healthy, which timing decides.)
    let steps: Vec<&str> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .filter(|s| *s != "health")
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
image = "127.0.0.1:1/gantry-test/does-not-exist:1"
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
        (
            "noimage",
            "start",
            "cannot pull image 127.0.0.1:1/gantry-test/does-not-exist:1",
        ),
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
    assert!(err.contains("[services] on Docker need Docker"), "{err}");
}

#[tokio::test]
async fn an_instance_adopts_reaps_lists_and_stops_only_its_own_containers() {
    setup_script("test-deps");
    setup_script("test-images");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (front_a, front_b) = (free_port(), free_port());
    let _lb_a = haproxy(dir_a.path(), front_a).await;
    let _lb_b = haproxy(dir_b.path(), front_b).await;
    // The same service name on both instances, each behind its own HAProxy.
    let service = format!("shared{}", std::process::id());
    let config_a = one_service_config(dir_a.path(), &service);
    let config_b = one_service_config(dir_b.path(), &service);
    let (data_a, data_b) = (dir_a.path().join("data"), dir_b.path().join("data"));
    let a = Server::start_with(&data_a, &[("GANTRY_CONFIG", config_a.to_str().unwrap())]).await;
    let id_a = instance_id(&data_a);
    let mut cleanup = RemoveContainersOf(vec![id_a.clone()]);
    let owner_a = format!("io.gantry.owner={id_a}");

    // A starts a task of the service, and a job in a container that keeps running.
    let task_a = start_service(&a, &service).await["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get(front_a).await.0, 200);
    let service_label = format!("io.gantry.service={service}");
    assert_eq!(containers(&[&service_label, &owner_a], false), 1);
    let run = a
        .submit_yaml(
            "jobs:\n  hold: {image: \"gantry-test/busybox:latest\", run: [\"sleep 3951\"]}\n",
        )
        .await;
    let job_label = format!("io.gantry.run={run}");
    wait_until(30, "A's job container runs", || {
        containers(&[&owner_a, &job_label], false) == 1
    })
    .await;

    // B, on another data dir, with the same service: started after A, then restarted. Its
    // start-up (reaping job orphans, taking back service tasks) leaves A's containers alone.
    let config_b_env = [("GANTRY_CONFIG", config_b.to_str().unwrap())];
    let mut b = Server::start_with(&data_b, &config_b_env).await;
    let id_b = instance_id(&data_b);
    assert_ne!(id_a, id_b, "one instance id per data dir");
    cleanup.0.push(id_b.clone());
    let owner_b = format!("io.gantry.owner={id_b}");
    let mut task_b = String::new();
    for life in ["started", "restarted"] {
        assert_eq!(
            containers(&[&service_label, &owner_a], false),
            1,
            "B {life}: A's service container still runs"
        );
        assert_eq!(
            containers(&[&owner_a, &job_label], false),
            1,
            "B {life}: A's job container still runs"
        );
        let listed: Vec<String> = tasks(&b, &service)
            .await
            .iter()
            .map(|t| t["task_id"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = if life == "started" {
            vec![]
        } else {
            vec![task_b.clone()]
        };
        assert_eq!(listed, expected, "B {life} lists only its own tasks");
        assert!(!listed.contains(&task_a));
        let steps = trail(&b, &service).await;
        assert!(
            !steps.iter().any(|s| s == "removed"),
            "B {life} removed nothing: {steps:?}"
        );
        if life == "started" {
            assert!(steps.is_empty(), "B adopted nothing: {steps:?}");
            assert_eq!(get(front_b).await.0, 503, "A's task is not in B's HAProxy");
            // Nothing of B's to stop: A's task is not B's.
            let (status, body) = stop_service(&b, &service).await;
            assert_eq!(status, 409, "{body}");
            assert_eq!(containers(&[&service_label, &owner_a], false), 1);
            // B's own task, to be taken back after B's restart (and A's not).
            task_b = start_service(&b, &service).await["task_id"]
                .as_str()
                .unwrap()
                .to_string();
            assert_ne!(task_a, task_b);
            assert_eq!(containers(&[&service_label, &owner_b], false), 1);
            b.kill9().await;
            b = Server::start_with(&data_b, &config_b_env).await;
        } else {
            assert_eq!(
                steps.iter().filter(|s| *s == "adopted").count(),
                1,
                "B took back its own task only: {steps:?}"
            );
            assert_eq!(get(front_b).await.0, 200, "B's own task, adopted, serves");
        }
    }
    // B stops its service: its own task only.
    let (status, body) = stop_service(&b, &service).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stopped"], json!([task_b]));
    assert_eq!(containers(&[&service_label, &owner_b], true), 0);
    assert_eq!(get(front_b).await.0, 503);

    // A still lists and serves its task, and its job still runs.
    let listed = tasks(&a, &service).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["task_id"], task_a.as_str());
    assert_eq!(listed[0]["health"], "healthy");
    assert_eq!(get(front_a).await.0, 200);
    let (_, r) = a.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(common::job(&r, "hold")["status"], "running", "{r}");
    assert_eq!(containers(&[&owner_a, &job_label], false), 1);

    // A's own stop and cancel still work, and leave nothing behind.
    let (status, body) = stop_service(&a, &service).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stopped"], json!([task_a]));
    let (status, body) = a
        .post(
            &format!("/api/v1/runs/{run}/cancel"),
            "application/json",
            "",
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let r = a.wait_finished(&run, 30).await;
    assert_eq!(r["status"], "cancelled", "{r}");
    assert_eq!(containers(&[&owner_a], true), 0, "A left nothing behind");
    assert_eq!(containers(&[&owner_b], true), 0, "B left nothing behind");
}

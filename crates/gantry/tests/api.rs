//! The HTTP API against a real `gantry serve`.

mod common;

use common::{Server, job};
use futures_util::StreamExt;
use reqwest::Method;

#[tokio::test]
async fn submit_get_list_events_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    assert_eq!(
        s.get("/healthz").await,
        (200, serde_json::json!({"status": "ok"}))
    );

    let id = s.submit_yaml("name: api\njobs:\n  a: {run: [\"echo from-a\"]}\n  b: {needs: [a], run: [\"echo from-b; exit 5\"]}\n").await;
    let run = s.wait_finished(&id, 20).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(job(&run, "a")["status"], "succeeded");
    assert_eq!(job(&run, "b")["exit_code"], 5);

    let (st, json_run) = s
        .post(
            "/api/v1/runs",
            "application/json",
            r#"{"name":"j","jobs":{"x":{"run":["true"]}}}"#,
        )
        .await;
    assert_eq!(st, 202);
    s.wait_finished(json_run["run_id"].as_str().unwrap(), 20)
        .await;

    let (_, list) = s.get("/api/v1/runs").await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 2);
    let (_, failed) = s.get("/api/v1/runs?status=failed").await;
    assert_eq!(failed["runs"].as_array().unwrap().len(), 1);
    assert_eq!(failed["runs"][0]["id"], id.as_str());

    let (_, trail) = s.get(&format!("/api/v1/runs/{id}/events")).await;
    let events = trail["events"].as_array().unwrap();
    let b_states: Vec<&str> = events
        .iter()
        .filter(|e| e["job"] == "b")
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(b_states, ["queued", "running", "failed"]);
    assert!(events.iter().all(|e| e["trace_id"] == run["trace_id"]));

    let log = s.job_log(&id, "b").await;
    assert!(log.contains("from-b"), "{log}");

    let metrics = s
        .req(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gantry_runs_finished_total{status=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn live_log_replays_then_follows_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let id = s
        .submit_yaml("jobs:\n  t: {run: [\"echo early\", \"sleep 0.6\", \"echo late\"]}\n")
        .await;
    s.wait_run(&id, 10, |r| r["jobs"][0]["status"] == "running")
        .await;
    // The first line is in the log before the stream starts: it is replayed, the rest followed.
    common::eventually(10, "the log holds the first line", async || {
        let text = s
            .req(Method::GET, &format!("/api/v1/runs/{id}/jobs/t/log"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().any(|l| l == "early").then_some(())
    })
    .await;
    let resp = s
        .req(Method::GET, &format!("/api/v1/runs/{id}/jobs/t/log"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if body.contains("event: end") {
            break;
        }
    }
    let early = body.find("data: early").expect(&body);
    let late = body.find("data: late").expect(&body);
    let end = body.find("event: end").unwrap();
    assert!(early < late && late < end, "{body}");
    assert!(body.contains(r#""status":"succeeded""#), "{body}");
}

#[tokio::test]
async fn cancel_and_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let id = s
        .submit_yaml(
            "jobs:\n  long: {run: [\"sleep 3992\"]}\n  after: {needs: [long], run: [\"true\"]}\n",
        )
        .await;
    s.wait_run(&id, 10, |r| r["jobs"][0]["status"] == "running")
        .await;
    let (st, body) = s
        .post(&format!("/api/v1/runs/{id}/cancel"), "application/json", "")
        .await;
    assert_eq!(st, 202, "{body}");
    let run = s.wait_finished(&id, 10).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(job(&run, "long")["status"], "cancelled");
    assert_eq!(job(&run, "after")["status"], "cancelled");
    assert!(!common::alive("sleep 3992"));
    let (st, body) = s
        .post(&format!("/api/v1/runs/{id}/cancel"), "application/json", "")
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );

    // Re-run: a fails the first time only (it leaves a marker), b keeps its success.
    let marker = dir.path().join("ran-once");
    let spec = format!(
        "jobs:\n  b: {{run: [\"true\"]}}\n  a: {{needs: [b], run: [\"test -e {m} || {{ touch {m}; exit 1; }}\"]}}\n",
        m = marker.display()
    );
    let id = s.submit_yaml(&spec).await;
    let run = s.wait_finished(&id, 10).await;
    assert_eq!(run["status"], "failed");
    let b_started = job(&run, "b")["started_at"].clone();
    let (st, _) = s
        .post(&format!("/api/v1/runs/{id}/rerun"), "application/json", "")
        .await;
    assert_eq!(st, 202);
    let run = s.wait_run(&id, 10, |r| r["status"] == "succeeded").await;
    assert_eq!(job(&run, "a")["attempt"], 2);
    assert_eq!(job(&run, "b")["attempt"], 1);
    assert_eq!(job(&run, "b")["started_at"], b_started);
    let (st, _) = s
        .post(&format!("/api/v1/runs/{id}/rerun"), "application/json", "")
        .await;
    assert_eq!(st, 409, "a succeeded run has nothing to re-run");
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (st, body) = s
        .post(
            "/api/v1/runs",
            "application/yaml",
            "jobs:\n  a: {run: []}\n  b: {needs: [zz], run: [x]}\n",
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(body["error"]["code"], "invalid_spec");
    let problems = body["error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{body}");
    assert_eq!(problems[1]["job"], "b");
    assert_eq!(problems[1]["line"], 3);

    let (st, body) = s
        .post("/api/v1/runs", "application/json", "{\"jobs\": ")
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    let (st, body) = s
        .post("/api/v1/runs", "application/yaml", vec![0xffu8, 0xfe, 0x00])
        .await;
    assert_eq!(st, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("UTF-8"),
        "{body}"
    );
    let big = format!("jobs:\n  a: {{run: [\"{}\"]}}\n", "x".repeat(5 << 20));
    // A fresh client: the server closes a connection whose oversized body it did not read.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/runs", s.url))
        .header("content-type", "application/yaml")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large", "{body}");

    assert_eq!(s.get("/api/v1/runs/01NOPE").await.0, 404);
    assert_eq!(s.get("/api/v1/runs/01NOPE/events").await.0, 404);
    assert_eq!(
        s.post("/api/v1/runs/01NOPE/cancel", "application/json", "")
            .await
            .0,
        404
    );
    let (st, body) = s.get("/api/v1/runs?status=bogus").await;
    assert_eq!(st, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("bogus"));
    let (st, body) = s.get("/nowhere").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let (_, list) = s.get("/api/v1/runs").await;
    assert_eq!(
        list["runs"].as_array().unwrap().len(),
        0,
        "nothing stored for rejected input"
    );
}

/// POSTs a spec; the status and the answer's bytes.
async fn post_spec(s: &Server, body: String) -> (u16, Vec<u8>) {
    let resp = s
        .req(Method::POST, "/api/v1/runs")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_spec_built_to_be_costly_gets_a_short_answer_and_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let before = s.peak_rss_kib();
    let needing = |needs: Vec<String>| {
        serde_json::json!({"jobs": {"a1": {"run": ["x"]}, "b": {"run": ["x"], "needs": needs}}})
            .to_string()
    };
    // 3.5 MB repeating one need 580,000 times: refused as it is read (too many values).
    let spec = needing(vec!["a1".into(); 580_000]).replace(",", ", ");
    assert!(spec.len() > 3_400_000, "{}", spec.len());
    let (st, body) = post_spec(&s, spec).await;
    let start = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    assert_eq!(st, 413, "{start}…");
    assert!(body.len() < 1000, "{} bytes", body.len());
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 250000 values"),
        "{body}"
    );
    // Within that limit: one problem for the job, naming the need.
    let (st, body) = post_spec(&s, needing(vec!["a1".into(); 240_000])).await;
    assert_eq!(st, 422);
    assert!(body.len() < 1000, "{} bytes", body.len());
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let problems = body["error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    assert_eq!(
        problems[0]["message"],
        "`a1` is listed 240000 times; list each need once"
    );
    // As many commands that are not strings: the first 100 problems, and how many more.
    let numbers = serde_json::json!({"jobs": {"a": {"run": vec![1; 240_000]}}}).to_string();
    let (st, body) = post_spec(&s, numbers).await;
    assert_eq!(st, 422);
    assert!(body.len() < 32_000, "{} bytes", body.len());
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["problems"].as_array().unwrap().len(), 100);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid spec: 240000 problems"),
        "{message}"
    );
    assert!(message.ends_with("… and 239900 more problems (only the first 100 are listed)"));
    // More distinct needs than a run can have jobs: one problem.
    let (st, body) = post_spec(&s, needing((0..240_000).map(|i| format!("n{i}")).collect())).await;
    assert_eq!(st, 422);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["error"]["problems"][0]["message"],
        "240000 needs is more than the limit of 5000 jobs per run"
    );
    // The server's memory grew by a bounded amount, not with the problems (it was ~1 GB).
    if let (Some(before), Some(after)) = (before, s.peak_rss_kib()) {
        let grew = (after - before) / 1024;
        assert!(grew < 128, "the server's peak memory grew by {grew} MiB");
    }
}

/// A job writing `bytes` bytes of 64-byte lines, with `rest` after.
fn writes(bytes: u64, rest: &str) -> String {
    format!(
        "jobs:\n  big: {{run: [\"yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c {bytes}{rest}\"]}}\n"
    )
}

#[tokio::test]
async fn a_large_log_is_read_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Kept whole: the limit is above its size.
    let s = Server::start_with(dir.path(), &[("GANTRY_LOG_LIMIT", "512m")]).await;
    let size = 300_000_000u64;
    let id = s.submit_yaml(&writes(size, "")).await;
    let run = s.wait_finished(&id, 300).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let before = s.peak_rss_kib();
    let resp = s
        .req(Method::GET, &format!("/api/v1/runs/{id}/jobs/big/log"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (mut read, mut tail) = (0u64, Vec::new());
    let mut stream = resp.bytes_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        read += piece.len() as u64;
        tail.extend_from_slice(&piece);
        tail.drain(..tail.len().saturating_sub(200));
    }
    // The command's line, all of its output, nothing else.
    let echo = "$ yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c 300000000\n";
    assert_eq!(read, echo.len() as u64 + size);
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    let want: Vec<u8> = (size - 100..size)
        .map(|i| line[(i % line.len() as u64) as usize])
        .collect();
    assert!(tail.ends_with(&want), "{}", String::from_utf8_lossy(&tail));
    if let (Some(before), Some(after)) = (before, s.peak_rss_kib()) {
        let grew = (after - before) / 1024;
        assert!(
            grew < 32,
            "reading a 300 MB log grew the server's peak memory by {grew} MiB"
        );
    }
}

#[tokio::test]
async fn output_past_the_log_limit_is_dropped_and_the_job_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_LOG_LIMIT", "1m")]).await;
    let marker = dir.path().join("ran-on");
    let spec = format!(
        "{}  fails: {{run: [\"yes | head -c 2000000; exit 7\"]}}\n",
        writes(
            3_000_000,
            &format!("; echo after-the-cut; touch {}", marker.display())
        )
    );
    let id = s.submit_yaml(&spec).await;
    let run = s.wait_finished(&id, 60).await;
    // Outcomes as without the limit.
    assert_eq!(job(&run, "big")["status"], "succeeded", "{run}");
    assert_eq!(job(&run, "fails")["status"], "failed", "{run}");
    assert_eq!(job(&run, "fails")["exit_code"], 7, "{run}");
    assert!(marker.exists(), "the job ran on after its log was cut");
    let note = "gantry: log cut at 1 MiB; the job's further output was dropped\n";
    for name in ["big", "fails"] {
        let log = s.job_log(&id, name).await;
        assert_eq!(log.matches(note).count(), 1, "{name}: the cut is said once");
        let (kept, after) = log.split_once(note).unwrap();
        assert_eq!(kept.len(), (1 << 20) + 1, "{name}: 1 MiB, then a newline");
        assert!(!after.contains("after-the-cut"), "{name}: {after}");
    }
}

#[tokio::test]
async fn token_guards_the_api_and_is_required_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", common::TOKEN)]).await;
    assert_eq!(s.get("/api/v1/runs").await.0, 200);
    s.token = Some("wrong".into());
    let (st, body) = s.get("/api/v1/runs").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    s.token = None;
    assert_eq!(s.get("/api/v1/runs").await.0, 401);
    assert_eq!(
        s.get("/healthz").await.0,
        200,
        "health stays open for probes"
    );

    let out = std::process::Command::new(common::gantry_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .env_remove("GANTRY_API_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without GANTRY_API_TOKEN"));
}

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (st, doc) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = gantry::server::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(
        documented, routes,
        "openapi.json and server::ROUTES disagree"
    );
    // Every documented route is really served (not 404 for the route / 405 for the method).
    for (method, path) in routes {
        let url = path.replace("{id}", "01X").replace("{job}", "j");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = s
            .req(m, &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_ne!(body["error"]["message"], "no such route", "{method} {path}");
    }
}

async fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(common::gantry_bin())
        .args(args)
        .env("GANTRY_SERVER", &s.url)
        .env_remove("GANTRY_API_TOKEN")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn client_commands_talk_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ok = dir.path().join("ok.yml");
    std::fs::write(
        &ok,
        "name: cli\njobs:\n  a: {run: [\"echo client-log-line\"]}\n",
    )
    .unwrap();
    let (code, out, err) = cli(&s, &["submit", ok.to_str().unwrap(), "--wait", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["status"], "succeeded");
    let id = run["id"].as_str().unwrap();

    let (code, out, _) = cli(&s, &["status", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]["id"],
        id
    );
    let (_, out, _) = cli(&s, &["status", id]).await;
    assert!(out.contains("succeeded") && out.contains(" a "), "{out}");
    let (code, out, _) = cli(&s, &["logs", id, "a"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("client-log-line"), "{out}");
    let (code, out, _) = cli(&s, &["logs", id, "a", "-f"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("client-log-line"), "{out}");

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "jobs:\n  a: {run: []}\n").unwrap();
    let (code, _, err) = cli(&s, &["submit", bad.to_str().unwrap()]).await;
    assert_eq!(code, 2);
    assert!(err.contains("`run` is empty"), "{err}");

    let slow = dir.path().join("slow.yml");
    std::fs::write(&slow, "jobs:\n  s: {run: [\"sleep 3996\"]}\n").unwrap();
    let (_, out, _) = cli(&s, &["submit", slow.to_str().unwrap()]).await;
    let slow_id = out.trim().to_string();
    s.wait_run(&slow_id, 10, |r| r["jobs"][0]["status"] == "running")
        .await;
    let (code, out, _) = cli(&s, &["cancel", &slow_id]).await;
    assert_eq!(code, 0);
    assert!(out.contains("cancelling"), "{out}");
    assert_eq!(s.wait_finished(&slow_id, 10).await["status"], "cancelled");
    let (code, _, err) = cli(&s, &["cancel", "01NOPE"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test]
async fn serve_reads_gantry_toml_and_flags_win() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gantry.toml");
    let from_file = dir.path().join("from-file");
    std::fs::write(&cfg, format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nmax_parallel = 1\n[retention]\nlogs = \"3d\"\n", from_file.display())).unwrap();
    let mut child = tokio::process::Command::new(common::gantry_bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .env_remove("GANTRY_API_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    assert!(
        line.starts_with("gantry listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(
        from_file.join("gantry.db").exists(),
        "data_dir from the file is used"
    );
    child.kill().await.unwrap();

    // A flag wins over the file.
    let from_flag = dir.path().join("from-flag");
    let mut child = tokio::process::Command::new(common::gantry_bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&from_flag)
        .env_remove("GANTRY_API_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    lines.next_line().await.unwrap().unwrap();
    assert!(from_flag.join("gantry.db").exists());
    child.kill().await.unwrap();

    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nworkers = 4\n").unwrap();
    let out = std::process::Command::new(common::gantry_bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workers") && err.contains("gantry.toml"),
        "{err}"
    );
}

#[tokio::test]
async fn a_servers_jobs_pass_artifacts_to_the_jobs_that_need_them_and_reuse_caches() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data")).await;
    let spec = r#"jobs:
  build:
    run: ["mkdir -p out", "echo built > out/app"]
    artifacts: [out/]
  use:
    needs: [build]
    run: ["test \"$(cat out/app)\" = built"]
  deps:
    cache: {key: server-deps, paths: [cached]}
    run: ["test -f cached || { echo first > cached; }", "cat cached"]
"#;
    let first = s.submit_yaml(spec).await;
    let run = s.wait_finished(&first, 60).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert!(
        s.job_log(&first, "use")
            .await
            .contains("laid in 1 artifact file(s) of build")
    );
    assert!(s.job_log(&first, "deps").await.contains("saved 1 file(s)"));
    let second = s.submit_yaml(spec).await;
    let run = s.wait_finished(&second, 60).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert!(
        s.job_log(&second, "deps")
            .await
            .contains("restored 1 file(s)")
    );
}

//! `gantry run`: one-shot runs through the real binary.

mod common;

use common::gantry_bin;
use std::process::Command;
use std::time::{Duration, Instant};

fn run(dir: &std::path::Path, file: &str, spec: &str, extra: &[&str]) -> std::process::Output {
    let path = dir.join(file);
    std::fs::write(&path, spec).unwrap();
    Command::new(gantry_bin())
        .arg("run")
        .arg(&path)
        .args(["--data-dir"])
        .arg(dir.join("state"))
        .args(extra)
        .env("GANTRY_API_TOKEN", "tok-must-not-leak")
        .output()
        .unwrap()
}

#[test]
fn succeeded_run_exits_0_and_json_is_the_run_object_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        "ok.yml",
        "name: ok\njobs:\n  a: {run: [\"echo hi\"]}\n  b: {needs: [a], run: [\"true\"]}\n",
        &["--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "status",
            "trace_id",
            "created_at",
            "finished_at",
            "jobs"
        ]
    );
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["name"], "ok");
    let job_keys: Vec<&str> = v["jobs"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        job_keys,
        [
            "name",
            "status",
            "exit_code",
            "attempt",
            "started_at",
            "finished_at"
        ]
    );
    assert_eq!(v["jobs"][1]["exit_code"], 0);
    assert!(chrono::DateTime::parse_from_rfc3339(v["created_at"].as_str().unwrap()).is_ok());
}

#[test]
fn failed_run_exits_1_and_names_the_failed_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        "bad.yml",
        "jobs:\n  a: {run: [\"exit 4\"]}\n  b: {needs: [a], run: [\"true\"]}\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("failed") && stdout.contains("a failed (exit 4)"),
        "{stdout}"
    );
}

#[test]
fn invalid_spec_exits_2_listing_every_problem_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        "x.yml",
        "jobs:\n  a: {run: [], timeout: soon}\n  b: {needs: [c], run: [x]}\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 problems"), "{err}");
    assert!(err.contains("line 2, column 12: jobs.a.run"), "{err}");
    assert!(err.contains("jobs.a.timeout"), "{err}");
    assert!(err.contains("unknown job `c`"), "{err}");
    assert!(
        !dir.path().join("state").exists(),
        "nothing may be written for an invalid spec"
    );
}

#[test]
fn server_token_is_not_visible_to_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        "env.yml",
        "jobs:\n  a: {run: [\"env | grep -q tok-must-not-leak && exit 9 || true\"]}\n",
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn timed_out_job_is_reported_within_two_seconds_of_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = run(
        dir.path(),
        "slow.yml",
        "jobs:\n  slow: {run: [\"sleep 3991\"], timeout: 1s}\n",
        &["--json"],
    );
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jobs"][0]["status"], "timed_out");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!common::alive("sleep 3991"));
}

#[test]
fn orders_payload_runs_as_a_spec() {
    let dir = tempfile::tempdir().unwrap();
    let orders = r#"{"orders": [{"name": "plan", "cmds": ["echo plan"], "timeout": 60},
                                 {"name": "apply", "cmds": ["echo apply"], "dependencies": ["plan"], "env_vars": {"X": "1"}}]}"#;
    let out = run(dir.path(), "orders.json", orders, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jobs"][1]["name"], "apply");
    assert_eq!(v["jobs"][1]["status"], "succeeded");
}

#[test]
fn parallelism_limit_is_respected() {
    // Four 0.3 s jobs with --max-parallel 2 take two rounds.
    let dir = tempfile::tempdir().unwrap();
    let spec = "jobs:\n  a: {run: [\"sleep 0.3\"]}\n  b: {run: [\"sleep 0.3\"]}\n  c: {run: [\"sleep 0.3\"]}\n  d: {run: [\"sleep 0.3\"]}\n";
    let out = run(
        dir.path(),
        "p.yml",
        spec,
        &["--json", "--max-parallel", "2"],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut spans: Vec<(String, String)> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["started_at"].as_str().unwrap().to_string(),
                j["finished_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    spans.sort();
    // At every job start, at most one other job is still running.
    for (i, (start, _)) in spans.iter().enumerate() {
        let overlapping = spans[..i].iter().filter(|(_, end)| end > start).count();
        assert!(overlapping < 2, "{spans:?}");
    }
}

#[test]
fn output_to_a_reader_that_went_away_ends_quietly() {
    // As `gantry schedule next … | head -1`: the reader takes a line and closes the pipe.
    let mut child = Command::new(gantry_bin())
        .args(["schedule", "next", "rate(1 minute)", "--count", "1000000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

#[test]
fn a_local_run_works_beside_a_server_on_the_default_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    // The server's default data dir, held as a server would hold it.
    let server = Command::new(gantry_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("listening"), "{line}");
    std::fs::write(dir.path().join("ok.yml"), "jobs:\n  a: {run: [\"true\"]}\n").unwrap();
    let out = Command::new(gantry_bin())
        .args(["run", "ok.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join(".gantry/local/lock").exists());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! Test support: start the real `gantry` binary (server or one-shot) on a scratch data dir.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// An API token long enough for `serve` (at least 32 characters).
pub const TOKEN: &str = "test-token-0123456789-abcdefghijklmnop";

pub fn gantry_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gantry")
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Server {
    pub async fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[]).await
    }

    pub async fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_on(data_dir, "127.0.0.1:0", env).await
    }

    /// Starts a server listening on `listen` (its URL is the address it prints).
    pub async fn start_on(data_dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        Server::start_as(data_dir, listen, env, None).await
    }

    /// [`Server::start_on`], as the user `uid` (and the group of the same number) when given.
    pub async fn start_as(
        data_dir: &Path,
        listen: &str,
        env: &[(&str, &str)],
        uid: Option<u32>,
    ) -> Server {
        let mut cmd = Command::new(gantry_bin());
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        cmd.args([
            "serve",
            "--listen",
            listen,
            "--max-parallel",
            "4",
            "--data-dir",
        ])
        .arg(data_dir);
        cmd.env_remove("GANTRY_API_TOKEN");
        // The data dir's SQLite unless a test asks for PostgreSQL.
        cmd.env_remove("GANTRY_DATABASE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start gantry serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("server did not start")
            .unwrap()
            .expect("no output");
        let url = line
            .strip_prefix("gantry listening on ")
            .expect(&line)
            .to_string();
        let token = env
            .iter()
            .find(|(k, _)| *k == "GANTRY_API_TOKEN")
            .map(|(_, v)| v.to_string());
        Server {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
            http: reqwest::Client::new(),
            token,
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// The whole log of a run's job, as text.
    pub async fn job_log(&self, run_id: &str, job: &str) -> String {
        self.req(
            reqwest::Method::GET,
            &format!("/api/v1/runs/{run_id}/jobs/{job}/log"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let resp = self
            .req(reqwest::Method::POST, path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn submit_yaml(&self, yaml: &str) -> String {
        let (status, body) = self
            .post("/api/v1/runs", "application/yaml", yaml.to_string())
            .await;
        assert_eq!(status, 202, "{body}");
        body["run_id"].as_str().unwrap().to_string()
    }

    /// Polls until `pred` holds for the run, or panics after `secs`.
    pub async fn wait_run(&self, id: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, run) = self.get(&format!("/api/v1/runs/{id}")).await;
            if status == 200 && pred(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on run {id}: {run}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_finished(&self, id: &str, secs: u64) -> Value {
        self.wait_run(id, secs, |r| {
            matches!(
                r["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        })
        .await
    }

    /// The server's peak resident memory so far, in KiB; `None` off Linux (see [`peak_rss_kib`]).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.child.id()?)
    }

    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }
}

pub fn job<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {run}"))
}

/// A process's peak resident memory so far, in KiB (`VmHWM` of `/proc/PID/status`). `None`
/// where there is no such count (off Linux): memory bounds are then not checked.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whether a process runs exactly the command `marker` (its arguments joined by spaces). Exact,
/// not a substring: the shell of any job whose script merely mentions the command (in this
/// test or one running beside it) must not count.
pub fn alive(marker: &str) -> bool {
    processes(marker) > 0
}

/// How many processes run exactly the command `marker` (see [`alive`]).
pub fn processes(marker: &str) -> usize {
    command_lines().iter().filter(|l| *l == marker).count()
}

/// The command line (arguments joined by spaces) of every running process, from `ps` (the
/// same on Linux and macOS for this); exited processes not yet reaped are left out.
pub fn command_lines() -> Vec<String> {
    let out = std::process::Command::new("ps")
        .args(["-A", "-ww", "-o", "args="])
        .output()
        .expect("run ps");
    assert!(out.status.success(), "ps failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.ends_with("<defunct>"))
        .map(String::from)
        .collect()
}

/// Polls `cond` every 20 ms until it holds, or panics with `what` after `secs`. For what a job's
/// shell does after the job is reported `running`: the process exists then, its commands may
/// not have run yet.
pub async fn wait_until(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` every 20 ms until it gives a value, and returns that, or panics with `what`
/// after `secs`. [`wait_until`] for conditions read asynchronously (over HTTP, from a store).
pub async fn eventually<T>(secs: u64, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `git -C dir args…` as a fixed author, which must succeed; its output, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

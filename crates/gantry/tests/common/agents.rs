//! Agents for the tests: `gantry agent` processes against a real server (started, killed,
//! stopped and continued), agent tokens, and an agent driven by hand over HTTP (the real
//! protocol, for the bad-input cases).
#![allow(dead_code)]

use crate::common::{Server, gantry_bin};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A new agent token called `name`, from the API.
pub async fn token(s: &Server, name: &str) -> String {
    let (st, body) = s
        .post(
            "/api/v1/agent-tokens",
            "application/json",
            json!({"name": name}).to_string(),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// A `gantry agent` process.
pub struct Agent {
    pub child: Child,
    pub name: String,
}

impl Agent {
    /// Starts `gantry agent` and waits until it has registered. `env` is given to the agent
    /// (and so to its jobs).
    pub async fn start(
        s: &Server,
        token: &str,
        name: &str,
        labels: &str,
        work: &Path,
        env: &[(&str, &str)],
    ) -> Agent {
        let mut cmd = Command::new(gantry_bin());
        cmd.args([
            "agent", "--server", &s.url, "--labels", labels, "--name", name,
        ])
        .args(["--slots", "1", "--work-dir"])
        .arg(work.join(name))
        .env("GANTRY_AGENT_TOKEN", token)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start gantry agent");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the agent did not register")
            .unwrap()
            .expect("no output");
        assert!(line.contains("registered"), "{line}");
        Agent {
            child,
            name: name.to_string(),
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    pub async fn kill9(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait().await;
    }

    pub fn stop(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

/// A run's audit trail as `(job, attempt, to, note)`.
pub async fn trail(s: &Server, run: &str) -> Vec<(String, u64, String, String)> {
    let (_, body) = s.get(&format!("/api/v1/runs/{run}/events")).await;
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["job"].as_str().unwrap_or("").to_string(),
                e["attempt"].as_u64().unwrap_or(0),
                e["to"].as_str().unwrap_or("").to_string(),
                e["note"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// An agent driven by hand over HTTP.
pub struct Hand<'a> {
    pub s: &'a Server,
    pub token: String,
    pub name: String,
}

impl Hand<'_> {
    pub async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .s
            .http
            .post(format!("{}{path}", self.s.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let st = resp.status().as_u16();
        (st, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn register(&self, labels: &[&str]) -> (u16, Value) {
        self.call(
            "/api/v1/agent/register",
            json!({"name": self.name, "labels": labels, "slots": 1}),
        )
        .await
    }

    pub async fn poll(&self) -> (u16, Value) {
        self.call("/api/v1/agent/poll", json!({"name": self.name}))
            .await
    }

    pub async fn heartbeat(&self, id: &str) -> (u16, Value) {
        self.call(
            &format!("/api/v1/agent/jobs/{id}/heartbeat"),
            json!({"name": self.name}),
        )
        .await
    }
}

/// `POST` a result to a callback path (no other authentication).
pub async fn report(s: &Server, callback: &str, body: Value) -> (u16, Value) {
    let resp = s
        .http
        .post(format!("{}{callback}", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

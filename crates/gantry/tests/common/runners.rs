#![allow(dead_code)]
//! A rig for the ephemeral-runner tests: the fake GitHub (its Actions endpoints, and its
//! `workflow_job` deliveries signed and sent to the server), a real `gantry serve` with
//! `[runners]` pools, and the stand-in runner (`scripts/fake-runner.sh`, copied to a path
//! unique to the test so its processes can be told from other tests').

use crate::common::{Server, eventually};
use gantry_github::fake::FakeGitHub;
use serde_json::Value;
use std::path::PathBuf;

pub const SECRET: &str = "runner-hook-secret";
pub const TOKEN: &str = "gh-token";

pub struct Rig {
    pub fake: FakeGitHub,
    pub server: Server,
    pub dir: tempfile::TempDir,
    /// The stand-in runner's copy for this test.
    pub script: PathBuf,
    env: Vec<(String, String)>,
}

/// The host's address on Docker's default bridge (containers reach the fake there).
pub fn bridge_gateway() -> String {
    let inspect = |format: &str| {
        let out = std::process::Command::new("docker")
            .args(["network", "inspect", "bridge", "--format", format])
            .output()
            .expect("run docker");
        assert!(out.status.success(), "docker network inspect bridge");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let gateway = inspect("{{range .IPAM.Config}}{{.Gateway}} {{end}}");
    if let Some(g) = gateway.split_whitespace().find(|g| !g.contains(':')) {
        return g.to_string();
    }
    let subnets = inspect("{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    let subnet = subnets
        .split_whitespace()
        .find(|s| !s.contains(':'))
        .expect("an IPv4 subnet on the bridge");
    let base: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(base) + 1).to_string()
}

/// Builds the test images (`gantry-test/fake-runner` among them).
pub fn images() {
    let script = format!("{}/../../scripts/test-images", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(script)
        .output()
        .expect("run scripts/test-images");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Rig {
    /// The fake (on every interface when `for_containers`, its runners calling back through
    /// the bridge's gateway) and a server whose gantry.toml is `pools` (`{script}` in it
    /// becomes the stand-in runner's path).
    pub async fn start(pools: &str, reconcile: &str, for_containers: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-runner.sh");
        std::fs::copy(
            format!(
                "{}/../../scripts/fake-runner.sh",
                env!("CARGO_MANIFEST_DIR")
            ),
            &script,
        )
        .unwrap();
        let fake = if for_containers {
            let f = FakeGitHub::start_on(TOKEN, "0.0.0.0".parse().unwrap()).await;
            f.set_public_url(&format!("http://{}:{}", bridge_gateway(), f.port()));
            f
        } else {
            FakeGitHub::start(TOKEN).await
        };
        let config = dir.path().join("gantry.toml");
        std::fs::write(&config, pools.replace("{script}", script.to_str().unwrap())).unwrap();
        let env: Vec<(String, String)> = [
            ("GANTRY_CONFIG", config.to_str().unwrap()),
            ("GANTRY_GITHUB_TOKEN", TOKEN),
            ("GANTRY_GITHUB_API_URL", fake.url.as_str()),
            ("GANTRY_GITHUB_WEBHOOK_SECRET", SECRET),
            ("GANTRY_RUNNERS_RECONCILE", reconcile),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let server = start_server(&dir.path().join("data"), &env).await;
        fake.set_webhook(&format!("{}/webhooks/github", server.url), SECRET);
        Rig {
            fake,
            server,
            dir,
            script,
            env,
        }
    }

    /// `kill -9` of the server, and a new one on the same data dir.
    pub async fn restart(&mut self) {
        self.server.kill9().await;
        self.server = start_server(&self.dir.path().join("data"), &self.env).await;
        self.fake
            .set_webhook(&format!("{}/webhooks/github", self.server.url), SECRET);
    }

    pub async fn runner(&self, name: &str) -> Value {
        let (status, body) = self.server.get(&format!("/api/v1/runners/{name}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Every runner record, newest first.
    pub async fn all(&self) -> Vec<Value> {
        let (status, body) = self
            .server
            .get("/api/v1/runners?state=all&limit=1000")
            .await;
        assert_eq!(status, 200, "{body}");
        body["runners"].as_array().unwrap().clone()
    }

    /// Waits until runner `name` is done; its record.
    pub async fn done(&self, name: &str, secs: u64) -> Value {
        eventually(secs, &format!("{name} is done"), async || {
            let (status, r) = self.server.get(&format!("/api/v1/runners/{name}")).await;
            (status == 200 && r["state"] == "done").then_some(r)
        })
        .await
    }

    /// Waits until the fake's job `id` completed; its conclusion. On a timeout, says where
    /// every runner is.
    pub async fn job_completed(&self, id: u64, secs: u64) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let done = {
                let st = self.fake.lock();
                st.jobs
                    .iter()
                    .find(|j| j.id == id && j.status == "completed")
                    .map(|j| j.conclusion.clone().unwrap_or_default())
            };
            if let Some(c) = done {
                return c;
            }
            if std::time::Instant::now() > deadline {
                let jobs = format!("{:#?}", self.fake.lock().jobs);
                let (_, runners) = self.server.get("/api/v1/runners?state=all").await;
                panic!("job {id} did not complete: runners {runners:#}\njobs {jobs}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// How many registrations were asked of the fake.
    pub fn registrations(&self) -> usize {
        self.fake
            .lock()
            .calls
            .iter()
            .filter(|c| c.contains("/actions/runners/generate-jitconfig"))
            .count()
    }

    /// The runners the fake still has registered.
    pub fn registered(&self) -> Vec<String> {
        self.fake
            .lock()
            .runners
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }
}

async fn start_server(data: &std::path::Path, env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with(data, &env).await
}

/// Every file under `dir`, as bytes (to look for what must not be written).
pub fn files_under(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

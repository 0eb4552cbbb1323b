//! The stand-in runner image (`gantry-test/fake-runner`, built by `scripts/test-images`, run
//! here so the test needs no setup) in Docker against the fake GitHub listening on every
//! interface, which the container reaches through the Docker bridge's gateway.

mod common;

use common::{Receiver, SECRET, register, repo};
use gantry_github::fake::{DeliveryOutcome, FakeGitHub, FakeJob};
use gantry_github::{GitHub, JitConfig, JobStatus};
use std::process::Command;
use std::time::Duration;

const IMAGE: &str = "gantry-test/fake-runner:latest";

fn images() {
    let script = format!("{}/../../scripts/test-images", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(script)
        .output()
        .expect("run scripts/test-images");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .expect("run docker");
    assert!(inspect.status.success(), "{IMAGE} was not built");
}

/// The host's address on Docker's default bridge: its gateway, or else the first address of
/// its subnet (Docker's default when the gateway is not listed).
fn bridge_gateway() -> String {
    let inspect = |format: &str| {
        let out = Command::new("docker")
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

/// `docker run --rm` of the stand-in runner with `env`, not yet waited for.
fn run_container(name: &str, config: &JitConfig, env: &[&str]) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(["run", "--rm", "--name", name]);
    for e in env {
        cmd.args(["-e", e]);
    }
    cmd.args([
        IMAGE,
        "/fake-runner.sh",
        "--jitconfig",
        config.encoded.expose(),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    cmd.spawn().expect("run docker")
}

/// Removes the container when the test ends, however it ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[tokio::test]
async fn the_runner_image_claims_runs_and_completes_a_job_through_the_bridge() {
    images();
    let fake = FakeGitHub::start_on("tok", std::net::Ipv4Addr::UNSPECIFIED.into()).await;
    fake.set_public_url(&format!("http://{}:{}", bridge_gateway(), fake.port()));
    let receiver = Receiver::start(200).await;
    fake.set_webhook(&receiver.url, SECRET);
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    fake.add_job(
        "acme/infra",
        FakeJob {
            name: "sleep-1".into(),
            ..FakeJob::queued(77, &["self-hosted", "gantry"])
        },
    );
    let config = register(&gh, &repo(), "gantry-77", &["gantry"]).await;
    let name = format!("gantry-fake-runner-test-{}", std::process::id());
    let _cleanup = Cleanup(name.clone());

    let child = run_container(&name, &config, &["FAKE_RUNNER_CLAIM_WAIT=20"]);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the container finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("server http://{}:", bridge_gateway())),
        "{stdout}"
    );
    assert!(stdout.contains("claimed job 77 (sleep-1)"), "{stdout}");
    assert!(stdout.contains("job 77 completed: success"), "{stdout}");
    assert!(!stdout.contains(config.encoded.expose()));

    let done = gh.workflow_job("acme/infra", 77).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    assert_eq!(done.runner_id, Some(config.runner_id));
    assert!(gh.list_runners(&repo()).await.unwrap().is_empty());
    let delivered: Vec<(String, DeliveryOutcome)> = fake
        .settled_deliveries()
        .await
        .into_iter()
        .map(|d| (d.action, d.outcome))
        .collect();
    let ok = DeliveryOutcome::Answered(200);
    assert_eq!(
        delivered,
        [
            ("queued".to_string(), ok.clone()),
            ("in_progress".to_string(), ok.clone()),
            ("completed".to_string(), ok),
        ]
    );
}

#[tokio::test]
async fn a_runner_that_never_claims_stops_at_once_when_docker_stops_it() {
    images();
    let fake = FakeGitHub::start_on("tok", std::net::Ipv4Addr::UNSPECIFIED.into()).await;
    fake.set_public_url(&format!("http://{}:{}", bridge_gateway(), fake.port()));
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    fake.add_job("acme/infra", FakeJob::queued(78, &["gantry"]));
    let config = register(&gh, &repo(), "gantry-78", &["gantry"]).await;
    let name = format!("gantry-fake-runner-idle-{}", std::process::id());
    let _cleanup = Cleanup(name.clone());

    let child = run_container(&name, &config, &["FAKE_RUNNER_NEVER_CLAIM=1"]);
    let mut up = false;
    for _ in 0..100 {
        let ps = Command::new("docker")
            .args(["ps", "-q", "--filter", &format!("name=^{name}$")])
            .output()
            .unwrap();
        if !ps.stdout.is_empty() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the container started");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    let stop = Command::new("docker")
        .args(["stop", "-t", "20", &name])
        .output()
        .unwrap();
    assert!(stop.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM ends the runner (PID 1 with a trap), no need to wait for SIGKILL"
    );
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    assert!(stdout.contains("never claims a job"), "{stdout}");
    assert_eq!(fake.lock().jobs[0].status, "queued");
    assert!(!fake.lock().calls.iter().any(|c| c.ends_with("/claim")));
}

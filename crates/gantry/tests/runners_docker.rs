//! Ephemeral runners in Docker containers (the stand-in runner image, built by
//! `scripts/test-images`) beside local ones: a burst over two pools never runs more than a
//! pool's `max_runners` at once and runs every job exactly once; a runner image that cannot
//! be pulled ends the job's runner after a few tries, leaving nothing registered or running.

mod common;
#[path = "common/runners.rs"]
mod rig;

use gantry_github::fake::FakeJob;
use rig::Rig;
use std::collections::BTreeMap;

const POOLS: &str = r#"
[runners.dock]
labels = ["self-hosted", "dock"]
scope = "org:acme"
executor = "docker"
image = "gantry-test/fake-runner:latest"
command = ["/fake-runner.sh", "--jitconfig", "{jitconfig}"]
max_runners = 5

[runners.host]
labels = ["self-hosted", "host"]
scope = "org:acme"
executor = "local"
command = ["sh", "-c", "FAKE_RUNNER_CLAIM_WAIT=10 exec {script} --jitconfig \"$ACTIONS_RUNNER_INPUT_JITCONFIG\""]
max_runners = 5
"#;

fn job(id: u64, label: &str) -> FakeJob {
    FakeJob {
        name: "sleep-1".into(),
        ..FakeJob::queued(id, &["self-hosted", label])
    }
}

/// Containers (any state) of the runner pool `pool` whose names are among `names`.
fn containers_of(pool: &str, prefix: &str) -> usize {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.gantry.runner-pool={pool}"),
            "--format",
            "{{.Label \"io.gantry.runner\"}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .count()
}

#[tokio::test]
async fn a_burst_over_two_pools_stays_within_max_runners_and_runs_every_job_once() {
    rig::images();
    let rig = Rig::start(POOLS, "1h", true).await;
    let ids: Vec<(u64, &str)> = (0..50)
        .map(|i| (9100 + i, if i % 2 == 0 { "dock" } else { "host" }))
        .collect();
    for (id, label) in &ids {
        let repo = if id % 3 == 0 { "acme/api" } else { "acme/web" };
        rig.fake.add_job(repo, job(*id, label));
    }
    // Watch the pools' places while the burst runs.
    let mut peak: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let (_, body) = rig.server.get("/api/v1/runners").await;
        for p in body["pools"].as_array().unwrap() {
            let n = p["runners"].as_u64().unwrap();
            assert!(n <= 5, "more than max_runners at once: {p}");
            let e = peak
                .entry(p["name"].as_str().unwrap().to_string())
                .or_default();
            *e = (*e).max(n);
        }
        let completed = rig
            .fake
            .lock()
            .jobs
            .iter()
            .filter(|j| j.status == "completed")
            .count();
        if completed == ids.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{completed} of 50 jobs completed: {body:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(peak.get("dock"), Some(&5), "the pool's places were used");
    assert_eq!(peak.get("host"), Some(&5), "the pool's places were used");
    {
        let st = rig.fake.lock();
        for j in &st.jobs {
            assert_eq!(j.conclusion.as_deref(), Some("success"), "{j:?}");
            let label = &j.labels[1];
            let runner = j.runner_name.as_deref().unwrap_or("");
            assert!(
                runner.starts_with(&format!("gantry-{label}-")),
                "job {} ran on {runner}",
                j.id
            );
        }
    }
    // Every runner is removed and deregistered; every runner ran one job.
    common::eventually(60, "every runner is done", async || {
        let all = rig.all().await;
        all.iter().all(|r| r["state"] == "done").then_some(())
    })
    .await;
    let all = rig.all().await;
    let launched = all.iter().filter(|r| r["launches"] != 0).count();
    assert_eq!(launched, 50, "one runner per job: {all:#?}");
    assert_eq!(rig.registrations(), 50);
    assert!(rig.registered().is_empty(), "{:?}", rig.registered());
    assert_eq!(
        containers_of("dock", "gantry-dock-91"),
        0,
        "containers left"
    );
}

#[tokio::test]
async fn a_runner_image_that_cannot_be_pulled_ends_its_runner_after_three_starts() {
    rig::images();
    let pools = r#"
[runners.nope]
labels = ["self-hosted", "nope"]
scope = "repo:acme/web"
executor = "docker"
image = "127.0.0.1:1/gantry-test/nope:1"
command = ["/fake-runner.sh", "--jitconfig", "{jitconfig}"]
"#;
    let rig = Rig::start(pools, "1h", true).await;
    rig.fake.add_job("acme/web", job(9201, "nope"));
    let r = rig.done("gantry-nope-9201-1", 60).await;
    let r = rig.runner(r["name"].as_str().unwrap()).await;
    assert_eq!(r["launches"], 3, "{r:#}");
    assert!(
        r["note"].as_str().unwrap().starts_with("gave up after 3"),
        "{r:#}"
    );
    let notes: Vec<&str> = r["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["note"].as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("cannot start") && n.contains("127.0.0.1:1/gantry-test/nope:1")),
        "{notes:?}"
    );
    assert_eq!(rig.registrations(), 3);
    assert!(rig.registered().is_empty(), "each registration is deleted");
    assert_eq!(containers_of("nope", "gantry-nope-9201"), 0);
}

#[tokio::test]
async fn kill_9_between_registration_and_container_start_leaves_one_runner() {
    rig::images();
    let pools = r#"
[runners.dock]
labels = ["self-hosted", "dock"]
scope = "repo:acme/web"
executor = "docker"
image = "gantry-test/fake-runner:latest"
command = ["/fake-runner.sh", "--jitconfig", "{jitconfig}"]
"#;
    let mut rig = Rig::start(pools, "1h", true).await;
    rig.fake.add_job("acme/web", job(9301, "dock"));
    // The moment its start is recorded (registered; the container being made).
    common::eventually(30, "the runner is starting", async || {
        let (_, r) = rig.server.get("/api/v1/runners/gantry-dock-9301-1").await;
        (r["state"] == "starting").then_some(())
    })
    .await;
    rig.restart().await;
    assert_eq!(rig.job_completed(9301, 60).await, "success");
    let r = rig.done("gantry-dock-9301-1", 60).await;
    let r = rig.runner(r["name"].as_str().unwrap()).await;
    let calls = rig.fake.lock().calls.clone();
    let registered: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.contains("generate-jitconfig"))
        .map(|(i, _)| i)
        .collect();
    eprintln!("registrations: {}", registered.len());
    match registered.len() {
        // Its container had started: adopted.
        1 => {}
        // It had not: the registration was deleted before the runner was registered again.
        2 => assert!(
            calls[registered[0]..registered[1]]
                .iter()
                .any(|c| c.starts_with("DELETE /repos/acme/web/actions/runners/")),
            "{calls:#?}\n{r:#}"
        ),
        n => panic!("{n} registrations: {calls:#?}\n{r:#}"),
    }
    assert!(rig.registered().is_empty());
    assert_eq!(containers_of("dock", "gantry-dock-9301"), 0);
}

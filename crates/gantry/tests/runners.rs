//! Ephemeral GitHub Actions runners end to end (local executor): signed `workflow_job`
//! deliveries from the fake GitHub to a real server, just-in-time registration, the stand-in
//! runner started as a process that claims and completes its job through the fake, removal;
//! duplicates, a job cancelled before launch, a runner that never claims, `kill -9` at any
//! moment, a lost webhook, GitHub's errors and bad input.

mod common;
#[path = "common/runners.rs"]
mod rig;

use common::eventually;
use gantry_github::fake::FakeJob;
use rig::{Rig, contains, files_under};
use serde_json::Value;

fn job(id: u64, name: &str, labels: &[&str]) -> FakeJob {
    FakeJob {
        name: name.into(),
        ..FakeJob::queued(id, labels)
    }
}

/// A local pool running the stand-in runner, with its environment set by a shell wrapper.
fn local_pool(name: &str, label: &str, max: u32, env: &str, extra: &str) -> String {
    format!(
        r#"
[runners.{name}]
labels = ["self-hosted", "{label}"]
scope = "repo:acme/web"
executor = "local"
command = ["sh", "-c", "{env} exec {{script}} --jitconfig \"$ACTIONS_RUNNER_INPUT_JITCONFIG\""]
max_runners = {max}
{extra}
"#
    )
}

fn phases(runner: &Value) -> Vec<String> {
    runner["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["to"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_queued_job_gets_one_runner_that_runs_it_and_is_removed() {
    let rig = Rig::start(
        &local_pool("linux", "linux", 2, "FAKE_RUNNER_CLAIM_WAIT=5", ""),
        "1h",
        false,
    )
    .await;
    rig.fake
        .add_job("acme/web", job(101, "sleep-1", &["self-hosted", "Linux"]));
    assert_eq!(rig.job_completed(101, 30).await, "success");
    let r = rig.done("gantry-linux-101-1", 30).await;
    assert_eq!(
        phases(&r),
        [
            "waiting",
            "registering",
            "starting",
            "running",
            "busy",
            "removing",
            "done"
        ],
        "{r}"
    );
    assert_eq!(r["repository"], "acme/web");
    assert_eq!(r["launches"], 1);
    assert!(r["container"].as_str().unwrap().starts_with("pid "), "{r}");
    assert_eq!(rig.registrations(), 1);
    assert!(rig.registered().is_empty(), "deregistered after its job");
    let fake_job = rig
        .fake
        .lock()
        .jobs
        .iter()
        .find(|j| j.id == 101)
        .cloned()
        .unwrap();
    assert_eq!(fake_job.runner_name.as_deref(), Some("gantry-linux-101-1"));
    assert!(
        !rig.dir
            .path()
            .join("data/runners/gantry-linux-101-1")
            .exists(),
        "the runner's folder is removed"
    );

    // The queued delivery again: a repeat of its delivery id is acknowledged, not acted on;
    // the same job through another hook (another delivery id) finds its runner.
    let deliveries = rig.fake.settled_deliveries().await;
    let queued = deliveries.iter().find(|d| d.action == "queued").unwrap();
    let again = rig
        .server
        .http
        .post(format!("{}/webhooks/github", rig.server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "workflow_job")
        .header("x-github-delivery", "another-hook-1")
        .header(
            "x-hub-signature-256",
            gantry_github::fake::signature(rig::SECRET, queued.body.as_bytes()),
        )
        .body(queued.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    let body: Value = again.json().await.unwrap();
    assert!(
        body["outcome"]
            .as_str()
            .unwrap()
            .contains("already ran for this job"),
        "{body}"
    );
    rig.fake.redeliver(&queued.delivery_id);
    rig.fake.settled_deliveries().await;
    assert_eq!(rig.registrations(), 1, "one runner per job and attempt");
    assert_eq!(rig.all().await.len(), 1);

    // What the CLI and /metrics show.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(common::gantry_bin())
            .args(args)
            .args(["--server", &rig.server.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = cli(&["runners", "--all"]);
    assert!(listed.contains("pool linux"), "{listed}");
    assert!(listed.contains("0/2 runners, 0 waiting"), "{listed}");
    assert!(
        listed.contains("gantry-linux-101-1") && listed.contains("done"),
        "{listed}"
    );
    let shown = cli(&["runners", "show", "gantry-linux-101-1"]);
    assert!(shown.contains("registering -> starting"), "{shown}");
    let json: Value = serde_json::from_str(&cli(&["runners", "--all", "--json"])).unwrap();
    assert_eq!(json["runners"][0]["name"], "gantry-linux-101-1");
    let metrics = rig
        .server
        .http
        .get(format!("{}/metrics", rig.server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gantry_runner_start_seconds_count 1")
            && metrics.contains("gantry_runner_pool_capacity{pool=\"linux\"} 2"),
        "{metrics}"
    );

    // The JIT config and its credential are nowhere Gantry writes or answers.
    let (_, listed) = rig.server.get("/api/v1/runners?state=all").await;
    let (_, events) = rig.server.get("/api/v1/events?limit=100").await;
    // `{".runner":{` in base64, the start of every encoded config.
    let encoded = b"eyIucnVubmVyIjp7";
    for text in [listed.to_string(), events.to_string(), r.to_string()] {
        assert!(!text.contains("fake-runner-credential"), "{text}");
        assert!(!contains(text.as_bytes(), encoded), "{text}");
    }
    for (path, bytes) in files_under(&rig.dir.path().join("data")) {
        assert!(
            !contains(&bytes, b"fake-runner-credential") && !contains(&bytes, encoded),
            "{} holds the JIT config",
            path.display()
        );
    }
}

#[tokio::test]
async fn events_the_pools_do_not_serve_say_so_and_launch_nothing() {
    let rig = Rig::start(&local_pool("linux", "linux", 2, "", ""), "1h", false).await;
    rig.fake
        .add_job("acme/web", job(201, "gpu", &["self-hosted", "gpu"]));
    rig.fake
        .add_job("other/repo", job(202, "x", &["self-hosted", "linux"]));
    let mut waiting = job(203, "env", &["self-hosted", "linux"]);
    waiting.status = "waiting".into();
    rig.fake.add_job("acme/web", waiting);
    rig.fake.set_job_status(203, "waiting", None);
    rig.fake.settled_deliveries().await;
    let outcomes = eventually(10, "three outcomes", async || {
        let (_, body) = rig.server.get("/api/v1/events?limit=100").await;
        let o: Vec<String> = body["events"]
            .as_array()?
            .iter()
            .filter_map(|e| e["outcome"].as_str().map(str::to_string))
            .collect();
        (o.len() >= 2).then_some(o)
    })
    .await;
    assert!(
        outcomes.iter().any(
            |o| o.contains("no runner pool serves a job of acme/web with labels")
                && o.contains("gpu")
        ),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.contains("no runner pool serves a job of other/repo")),
        "{outcomes:?}"
    );
    // A malformed delivery is refused with the reason, and stored nowhere.
    let body = br#"{"action":"queued","repository":{"full_name":"acme/web"}}"#;
    let resp = rig
        .server
        .http
        .post(format!("{}/webhooks/github", rig.server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "workflow_job")
        .header("x-github-delivery", "malformed-1")
        .header(
            "x-hub-signature-256",
            gantry_github::fake::signature(rig::SECRET, body),
        )
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("workflow_job"), "{text}");
    assert_eq!(rig.registrations(), 0);
    assert!(rig.all().await.is_empty());
}

#[tokio::test]
async fn a_job_cancelled_before_its_launch_gets_no_runner() {
    let rig = Rig::start(
        &local_pool(
            "one",
            "one",
            1,
            "FAKE_RUNNER_CLAIM_WAIT=5 FAKE_RUNNER_JOB_ID=301",
            "",
        ),
        "1h",
        false,
    )
    .await;
    rig.fake
        .add_job("acme/web", job(301, "sleep-3", &["self-hosted", "one"]));
    eventually(20, "the first runner is busy", async || {
        let (_, r) = rig.server.get("/api/v1/runners/gantry-one-301-1").await;
        (r["state"] == "busy").then_some(())
    })
    .await;
    rig.fake
        .add_job("acme/web", job(302, "sleep-1", &["self-hosted", "one"]));
    rig.fake.settled_deliveries().await;
    let r = rig.runner("gantry-one-302-1").await;
    assert_eq!(r["state"], "waiting", "no place for it yet: {r}");
    rig.fake.set_job_status(302, "completed", Some("cancelled"));
    let r = rig.done("gantry-one-302-1", 10).await;
    assert_eq!(phases(&r), ["waiting", "done"], "{r}");
    assert!(r["note"].as_str().unwrap().contains("cancelled"), "{r}");
    assert_eq!(rig.job_completed(301, 30).await, "success");
    rig.done("gantry-one-301-1", 20).await;
    assert_eq!(rig.registrations(), 1, "only the first job's runner");
}

#[tokio::test]
async fn a_runner_that_never_claims_its_job_is_removed_after_boot_timeout() {
    let rig = Rig::start(
        &local_pool(
            "idle",
            "idle",
            2,
            "FAKE_RUNNER_NEVER_CLAIM=1",
            "boot_timeout = \"2s\"",
        ),
        "1h",
        false,
    )
    .await;
    rig.fake
        .add_job("acme/web", job(401, "x", &["self-hosted", "idle"]));
    let r = rig.done("gantry-idle-401-1", 30).await;
    assert_eq!(
        phases(&r),
        [
            "waiting",
            "registering",
            "starting",
            "running",
            "removing",
            "done"
        ],
        "{r}"
    );
    assert!(
        r["note"].as_str().unwrap().contains("boot_timeout (2s)"),
        "{r}"
    );
    assert!(rig.registered().is_empty(), "deregistered");
    let script = rig.script.to_str().unwrap().to_string();
    common::wait_until(5, "the runner process is gone", || {
        !common::command_lines().iter().any(|l| l.contains(&script))
    })
    .await;
}

#[tokio::test]
async fn a_lost_queued_webhook_is_picked_up_by_the_reconciler() {
    let rig = Rig::start(
        &local_pool("linux", "linux", 2, "FAKE_RUNNER_CLAIM_WAIT=5", ""),
        "1h",
        false,
    )
    .await;
    // An orphan: registered under a pool's name, owned by no runner of Gantry's.
    rig.fake
        .add_runner("repos/acme/web", "gantry-linux-999-1", &["linux"], false);
    rig.fake.drop_deliveries(1);
    rig.fake
        .add_job("acme/web", job(501, "sleep-0", &["self-hosted", "linux"]));
    rig.fake.settled_deliveries().await;
    assert!(rig.all().await.is_empty(), "the delivery was lost");
    let (status, body) = rig
        .server
        .post("/api/v1/runners/reconcile", "application/json", "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rig.job_completed(501, 30).await, "success");
    let r = rig.done("gantry-linux-501-1", 20).await;
    assert_eq!(r["event_id"], Value::Null, "found by the reconciler");
    eventually(10, "the orphan registration is deleted", async || {
        (!rig.registered().iter().any(|n| n == "gantry-linux-999-1")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn github_errors_are_retried_or_end_the_runner_with_the_reason() {
    let pools = local_pool("linux", "linux", 2, "FAKE_RUNNER_CLAIM_WAIT=5", "");
    let rig = Rig::start(&pools, "1h", false).await;
    // (After the reconciliation a server does as it starts.)
    rig.server
        .post("/api/v1/runners/reconcile", "application/json", "")
        .await;
    // GitHub answers 502 to the job check (more often than the client tries): asked again
    // after a while, then launched.
    for _ in 0..4 {
        rig.fake.fail_next(502, None);
    }
    let t0 = std::time::Instant::now();
    rig.fake
        .add_job("acme/web", job(601, "sleep-0", &["self-hosted", "linux"]));
    assert_eq!(rig.job_completed(601, 40).await, "success");
    assert!(t0.elapsed().as_secs() >= 4, "retried after a pause");
    let r = rig.done("gantry-linux-601-1", 20).await;
    assert_eq!(r["launches"], 1, "{r}");
    // Labels GitHub refuses (a comma): the registration's 422 ends the runner, saying why.
    let rig2 = Rig::start(
        "[runners.bad]\nlabels = [\"self-hosted\", \"a,b\"]\nscope = \"repo:acme/web\"\nexecutor = \"local\"\ncommand = [\"{script}\"]\n",
        "1h",
        false,
    )
    .await;
    rig2.fake
        .add_job("acme/web", job(602, "x", &["self-hosted", "a,b"]));
    let r = rig2.done("gantry-bad-602-1", 20).await;
    assert!(
        r["note"]
            .as_str()
            .unwrap()
            .contains("GitHub refused the registration"),
        "{r}"
    );
    assert!(rig2.registered().is_empty());
}

#[tokio::test]
async fn kill_9_at_any_moment_never_gives_a_job_two_runners() {
    // Every start of a runner is written down (by name) before the runner runs.
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let env = format!(
        "echo \\\"$RUNNER_NAME\\\" >> {}; FAKE_RUNNER_CLAIM_WAIT=10",
        starts.display()
    );
    let mut rig = Rig::start(&local_pool("linux", "linux", 3, &env, ""), "2s", false).await;
    for id in 701..707 {
        rig.fake
            .add_job("acme/web", job(id, "sleep-1", &["self-hosted", "linux"]));
    }
    for pause in [60, 250, 700, 1500] {
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        rig.restart().await;
    }
    for id in 701..707 {
        assert_eq!(rig.job_completed(id, 60).await, "success", "job {id}");
    }
    for id in 701..707 {
        rig.done(&format!("gantry-linux-{id}-1"), 60).await;
    }
    let text = std::fs::read_to_string(&starts).unwrap_or_default();
    let mut names: Vec<&str> = text.lines().collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a runner started twice: {text}");
    eventually(20, "no registration is left", async || {
        rig.registered().is_empty().then_some(())
    })
    .await;
    let script = rig.script.to_str().unwrap().to_string();
    common::wait_until(10, "no runner process is left", || {
        !common::command_lines().iter().any(|l| l.contains(&script))
    })
    .await;
}

#[tokio::test]
async fn a_bad_runners_table_stops_the_server_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gantry.toml");
    std::fs::write(
        &config,
        "[runners.gpu]\nlabels = []\nscope = \"team:x\"\ncommand = [\"run.sh\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::gantry_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("GANTRY_CONFIG", &config)
        .env("GANTRY_GITHUB_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for field in ["labels", "scope", "image"] {
        assert!(
            err.contains(&format!("gantry.toml:1: runners.gpu.{field}")),
            "{err}"
        );
    }
    // Without GitHub credentials, pools cannot register anything.
    std::fs::write(&config, "[runners.l]\nlabels = [\"x\"]\nscope = \"org:a\"\nexecutor = \"local\"\ncommand = [\"run.sh\"]\n").unwrap();
    let out = std::process::Command::new(common::gantry_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("GANTRY_CONFIG", &config)
        .env_remove("GANTRY_GITHUB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[runners] need GitHub credentials"), "{err}");
}

//! The fake GitHub's `workflow_job` webhook deliveries, received over HTTP, with the stand-in
//! runner (`scripts/fake-runner.sh`) run as a host process against the fake.

mod common;

use base64::Engine as _;
use common::{Receiver, SECRET, finish, register, repo, spawn_runner};
use gantry_github::fake::{DeliveryOutcome, FakeGitHub, FakeJob};
use gantry_github::{GitHub, JobStatus, RunnerScope};

async fn setup() -> (FakeGitHub, GitHub, Receiver) {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    let receiver = Receiver::start(200).await;
    fake.set_webhook(&receiver.url, SECRET);
    (fake, gh, receiver)
}

fn job(id: u64, name: &str, labels: &[&str]) -> FakeJob {
    FakeJob {
        name: name.into(),
        ..FakeJob::queued(id, labels)
    }
}

#[tokio::test]
async fn a_job_run_by_the_stand_in_runner_is_delivered_queued_in_progress_completed() {
    let (fake, gh, receiver) = setup().await;
    fake.add_job("acme/infra", job(55, "sleep-1", &["self-hosted", "gantry"]));
    let config = register(&gh, &repo(), "gantry-55", &["gantry"]).await;
    let credential = fake.lock().runners[0].credential.clone();

    let started = std::time::Instant::now();
    let child = spawn_runner(&config, &[("FAKE_RUNNER_CLAIM_WAIT", "5")]);
    let (code, out, err) = finish(child).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        started.elapsed().as_secs_f64() >= 1.0,
        "a sleep-1 job runs 1 s"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with(&format!(
            "fake-runner: runner {} starting; server {}",
            config.runner_id, fake.url
        )),
        "{out}"
    );
    assert_eq!(
        lines[1],
        format!(
            "fake-runner: runner {} claimed job 55 (sleep-1)",
            config.runner_id
        )
    );
    assert_eq!(lines[2], "fake-runner: job 55 running for 1s");
    assert_eq!(lines[3], "fake-runner: job 55 completed: success");
    for printed in [&out, &err] {
        assert!(!printed.contains(config.encoded.expose()), "{printed}");
        assert!(!printed.contains(&credential), "{printed}");
    }
    let done = gh.workflow_job("acme/infra", 55).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    assert_eq!(done.repo, "acme/infra");
    assert!(gh.list_runners(&repo()).await.unwrap().is_empty());

    let recorded = fake.settled_deliveries().await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    let actions: Vec<&str> = recorded.iter().map(|d| d.action.as_str()).collect();
    assert_eq!(actions, ["queued", "in_progress", "completed"]);
    for (d, r) in recorded.iter().zip(&got) {
        assert_eq!(d.outcome, DeliveryOutcome::Answered(200));
        assert_eq!((d.event.as_str(), d.job_id), ("workflow_job", 55));
        assert!(!d.redelivery);
        assert_eq!(r.delivery_id, d.delivery_id, "sent in the order recorded");
        assert_eq!(r.event, "workflow_job");
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.user_agent, "GitHub-Hookshot/fake");
        assert!(r.signed_with(SECRET), "{r:?}");
        assert!(!r.signed_with("another secret"));
        assert_eq!(r.body, d.body.as_bytes());
        assert_eq!(r.delivery_id.len(), 36, "a UUID: {}", r.delivery_id);
    }
    let mut ids: Vec<&str> = got.iter().map(|r| r.delivery_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each delivery has its own id");

    let bodies: Vec<serde_json::Value> = got.iter().map(|r| r.json()).collect();
    for (b, status) in bodies.iter().zip(["queued", "in_progress", "completed"]) {
        assert_eq!(b["action"], status);
        let j = &b["workflow_job"];
        assert_eq!(j["status"], status);
        assert_eq!(
            (j["id"].as_u64(), j["run_id"].as_u64()),
            (Some(55), Some(550))
        );
        assert_eq!(j["run_attempt"], 1);
        assert_eq!(j["name"], "sleep-1");
        assert_eq!(j["labels"], serde_json::json!(["self-hosted", "gantry"]));
        assert_eq!(j["head_sha"], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(b["repository"]["full_name"], "acme/infra");
        assert_eq!(b["repository"]["name"], "infra");
        assert_eq!(b["repository"]["owner"]["login"], "acme");
        assert_eq!(b["repository"]["owner"]["type"], "Organization");
        assert_eq!(b["organization"]["login"], "acme");
        assert_eq!(b["sender"]["type"], "User");
        assert!(b.get("installation").is_none(), "no App, no installation");
    }
    assert_eq!(
        bodies[0]["workflow_job"]["runner_id"],
        serde_json::Value::Null
    );
    assert_eq!(bodies[1]["workflow_job"]["runner_id"], config.runner_id);
    assert_eq!(bodies[1]["workflow_job"]["runner_name"], "gantry-55");
    assert_eq!(bodies[1]["workflow_job"]["runner_group_id"], 1);
    assert_eq!(
        bodies[1]["workflow_job"]["conclusion"],
        serde_json::Value::Null
    );
    assert_eq!(bodies[2]["workflow_job"]["conclusion"], "success");
}

#[tokio::test]
async fn the_stand_in_runner_also_speaks_through_wget() {
    let (fake, gh, receiver) = setup().await;
    fake.add_job("acme/infra", FakeJob::queued(56, &["gantry"]));
    let config = register(&gh, &repo(), "gantry-56", &["gantry"]).await;
    let env = [
        ("FAKE_RUNNER_HTTP", "wget"),
        ("FAKE_RUNNER_CONCLUSION", "failure"),
    ];
    let (code, out, err) = finish(spawn_runner(&config, &env)).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("job 56 completed: failure"), "{out}");
    let done = gh.workflow_job("acme/infra", 56).await.unwrap().unwrap();
    assert_eq!(done.conclusion.as_deref(), Some("failure"));
    assert_eq!(receiver.wait_for(3).await.len(), 3);
    let calls = fake.lock().calls.clone();
    assert!(calls.contains(&format!(
        "POST /_fake/runners/{}/complete",
        config.runner_id
    )));
}

#[tokio::test]
async fn the_jit_config_names_the_url_runners_call_back_on() {
    let fake = FakeGitHub::start_on("tok", std::net::Ipv4Addr::UNSPECIFIED.into()).await;
    assert!(fake.url.starts_with("http://127.0.0.1:"), "{}", fake.url);
    assert_eq!(fake.url, format!("http://127.0.0.1:{}", fake.port()));
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    let decode = |c: &gantry_github::JitConfig| -> serde_json::Value {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(c.encoded.expose())
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    let first = decode(&register(&gh, &repo(), "r1", &["gantry"]).await);
    assert_eq!(first[".runner"]["ServerUrl"], fake.url);
    assert_eq!(
        first[".runner"]["GitHubUrl"],
        format!("{}/acme/infra", fake.url)
    );
    assert_eq!(fake.public_url(), fake.url);

    fake.set_public_url(&format!("http://172.17.0.1:{}/", fake.port()));
    let org = RunnerScope::Org("acme".into());
    let second = decode(&register(&gh, &org, "r2", &["gantry"]).await);
    let public = format!("http://172.17.0.1:{}", fake.port());
    assert_eq!(second[".runner"]["ServerUrl"], public);
    assert_eq!(second[".runner"]["GitHubUrl"], format!("{public}/acme"));
    // Listening on every interface: 127.0.0.2 reaches it, and not a fake on loopback only.
    let reaches = |port: u16| tokio::net::TcpStream::connect(("127.0.0.2", port));
    assert!(reaches(fake.port()).await.is_ok());
    let loopback = FakeGitHub::start("tok").await;
    assert!(reaches(loopback.port()).await.is_err());
}

#[tokio::test]
async fn a_redelivery_keeps_its_delivery_id_and_body() {
    let (fake, _gh, receiver) = setup().await;
    fake.add_job("acme/infra", FakeJob::queued(7, &["gantry"]));
    let first = fake.settled_deliveries().await;
    assert_eq!(first.len(), 1);
    fake.redeliver(&first[0].delivery_id);
    let all = fake.settled_deliveries().await;
    assert_eq!(all.len(), 2);
    assert!(all[1].redelivery);
    assert_eq!(all[1].outcome, DeliveryOutcome::Answered(200));
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].delivery_id, got[1].delivery_id);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].signature, got[1].signature);
    assert!(got[1].signed_with(SECRET));
}

#[tokio::test]
async fn dropped_deliveries_are_never_sent_until_redelivered() {
    let (fake, _gh, receiver) = setup().await;
    fake.drop_deliveries(2);
    fake.add_job("acme/infra", FakeJob::queued(1, &["gantry"]));
    fake.add_job("acme/infra", FakeJob::queued(2, &["gantry"]));
    fake.add_job("acme/infra", FakeJob::queued(3, &["gantry"]));
    let all = fake.settled_deliveries().await;
    let outcomes: Vec<(u64, &DeliveryOutcome)> =
        all.iter().map(|d| (d.job_id, &d.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (1, &DeliveryOutcome::Dropped),
            (2, &DeliveryOutcome::Dropped),
            (3, &DeliveryOutcome::Answered(200)),
        ]
    );
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 1, "{got:?}");
    assert_eq!(got[0].json()["workflow_job"]["id"], 3);

    // As from GitHub's "Redeliver" button, a lost delivery can be sent after all.
    fake.redeliver(&all[0].delivery_id);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].delivery_id, all[0].delivery_id);
    assert_eq!(got[1].json()["workflow_job"]["id"], 1);
}

#[tokio::test]
async fn cancelling_a_job_delivers_completed_cancelled_and_frees_its_runner() {
    let (fake, gh, receiver) = setup().await;
    fake.add_job("acme/infra", FakeJob::queued(1, &["gantry"]));
    fake.add_job("acme/infra", FakeJob::queued(2, &["gantry"]));
    fake.set_job_status(1, "completed", Some("cancelled"));
    let config = register(&gh, &repo(), "gantry-2", &["gantry"]).await;
    let claim = reqwest::Client::new()
        .post(format!(
            "{}/_fake/runners/{}/claim",
            fake.url, config.runner_id
        ))
        .json(&serde_json::json!({"job_id": 2}))
        .send()
        .await
        .unwrap();
    assert!(claim.status().is_success());
    fake.set_job_status(2, "completed", Some("cancelled"));
    fake.set_job_status(2, "completed", Some("cancelled"));
    assert!(
        gh.list_runners(&repo()).await.unwrap().is_empty(),
        "a JIT runner whose job was cancelled is gone"
    );
    let all = fake.settled_deliveries().await;
    let seen: Vec<(u64, &str)> = all.iter().map(|d| (d.job_id, d.action.as_str())).collect();
    assert_eq!(
        seen,
        [
            (1, "queued"),
            (2, "queued"),
            (1, "completed"),
            (2, "in_progress"),
            (2, "completed")
        ],
        "no second delivery for a status that did not change"
    );
    let got = receiver.wait_for(5).await;
    let last = got[4].json();
    assert_eq!(last["workflow_job"]["conclusion"], "cancelled");
    assert_eq!(last["workflow_job"]["runner_id"], config.runner_id);
}

#[tokio::test]
async fn unreachable_and_failing_receivers_are_recorded() {
    let fake = FakeGitHub::start("tok").await;
    fake.add_job("acme/infra", FakeJob::queued(1, &["gantry"]));
    assert!(fake.deliveries().is_empty(), "no webhook, no delivery");

    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    fake.set_webhook(&dead, SECRET);
    fake.add_job("acme/infra", FakeJob::queued(2, &["gantry"]));
    let all = fake.settled_deliveries().await;
    assert!(
        matches!(&all[0].outcome, DeliveryOutcome::Failed(m) if m.contains("connect")),
        "{all:?}"
    );

    let failing = Receiver::start(500).await;
    fake.set_webhook(&failing.url, SECRET);
    fake.add_job("acme/infra", FakeJob::queued(3, &["gantry"]));
    let all = fake.settled_deliveries().await;
    assert_eq!(all[1].outcome, DeliveryOutcome::Answered(500));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        failing.received().len(),
        1,
        "an answered delivery is not retried"
    );
}

#[tokio::test]
async fn app_deliveries_carry_the_installation_and_personal_repos_no_organization() {
    let keys = format!("{}/../../fixtures/keys", env!("CARGO_MANIFEST_DIR"));
    let public = std::fs::read_to_string(format!("{keys}/test-app.pub.pem")).unwrap();
    let (fake, _gh, receiver) = setup().await;
    fake.enable_app("4242", &public, 77);
    fake.set_personal_account("bob");
    fake.add_job("bob/dotfiles", FakeJob::queued(5, &["gantry"]));
    let got = receiver.wait_for(1).await;
    let b = got[0].json();
    assert_eq!(b["installation"]["id"], 77);
    assert!(b.get("organization").is_none(), "{b}");
    assert_eq!(b["repository"]["owner"]["type"], "User");
    assert_eq!(b["repository"]["full_name"], "bob/dotfiles");
}

#[tokio::test]
async fn the_stand_in_runner_exits_3_without_a_job_and_waits_when_told_never_to_claim() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    let config = register(&gh, &repo(), "idle", &["gantry"]).await;

    let started = std::time::Instant::now();
    let (code, out, _) = finish(spawn_runner(&config, &[("FAKE_RUNNER_CLAIM_WAIT", "2")])).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("claimed no job within 2s"), "{out}");
    assert!(
        started.elapsed().as_secs() >= 1,
        "retried until the deadline"
    );
    let claims = fake
        .lock()
        .calls
        .iter()
        .filter(|c| c.ends_with("/claim"))
        .count();
    assert!((2..=4).contains(&claims), "retried once a second: {claims}");

    // A job that would fit is never taken; SIGTERM stops the runner at once.
    fake.add_job("acme/infra", FakeJob::queued(8, &["gantry"]));
    let child = spawn_runner(&config, &[("FAKE_RUNNER_NEVER_CLAIM", "1")]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        fake.lock()
            .calls
            .iter()
            .filter(|c| c.ends_with("/claim"))
            .count()
            == claims
    );
    let pid = child.id().expect("still running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let (code, out, _) = finish(child).await;
    assert_eq!(code, 143, "{out}");
    assert!(out.contains("never claims a job"), "{out}");
    assert!(out.trim_end().ends_with("fake-runner: stopped"), "{out}");
    assert_eq!(fake.lock().jobs[0].status, "queued");

    // A bad config is refused without echoing it.
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg(common::runner_script())
        .args(["--jitconfig", "not*base64"]);
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not*base64"));
}

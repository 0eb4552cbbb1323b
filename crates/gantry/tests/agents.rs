//! Agents on other hosts, end to end: `gantry agent` processes against a real `gantry serve`
//! over real HTTP. Jobs spread over agents and go only where their labels are; an agent killed
//! mid-job or stalled past its lease loses the attempt, which runs again elsewhere, and a late
//! result is refused and audited; forged, replayed, expired and misdirected callback tokens
//! and revoked agent tokens are refused.

#[path = "common/agents.rs"]
mod agents;
mod common;

use agents::{Agent, Hand, report, token, trail};
use common::{Server, eventually, job};
use gantry_core::callback::{Claim, sign};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// A short lease, so lost agents are noticed in seconds.
const LEASE: &[(&str, &str)] = &[("GANTRY_AGENT_LEASE", "3s")];

async fn set_secret(s: &Server, name: &str, value: &str) {
    let body = json!({"name": name, "value": value}).to_string();
    let (st, b) = s.post("/api/v1/secrets", "application/json", body).await;
    assert_eq!(st, 201, "{b}");
}

/// The agent a job's latest attempt ran on, from its log.
async fn ran_on(s: &Server, run: &str, job: &str) -> String {
    let log = s.job_log(run, job).await;
    log.lines()
        .find_map(|l| l.strip_prefix("gantry: running on agent "))
        .unwrap_or_else(|| panic!("no agent in the log of {job}: {log}"))
        .to_string()
}

#[tokio::test]
async fn jobs_spread_over_agents_and_go_only_where_their_labels_are() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let fleet = token(&s, "fleet").await;
    let gpu = token(&s, "gpu-box").await;
    let work = dir.path().join("agents");
    let _a1 = Agent::start(&s, &fleet, "a1", "linux", &work, &[]).await;
    let _a2 = Agent::start(&s, &fleet, "a2", "linux", &work, &[]).await;
    let _a3 = Agent::start(&s, &gpu, "a3", "linux,gpu", &work, &[]).await;
    set_secret(&s, "DEPLOY_KEY", "s3cr3t-agent-value").await;
    set_secret(&s, "OTHER_KEY", "not-for-this-job").await;

    let mut yaml = String::from("jobs:\n");
    for i in 0..6 {
        yaml += &format!("  j{i}:\n    runs_on: [linux]\n    run: ['sleep 0.3', 'echo job {i}']\n");
    }
    yaml += r#"  g:
    runs_on: [gpu]
    secrets: [DEPLOY_KEY]
    run:
      - 'test "$DEPLOY_KEY" = s3cr3t-agent-value'
      - 'test -z "$OTHER_KEY"'
      - 'echo key=$DEPLOY_KEY'
"#;
    let run = s.submit_yaml(&yaml).await;
    let done = s.wait_finished(&run, 60).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let mut used = BTreeSet::new();
    for i in 0..6 {
        let log = s.job_log(&run, &format!("j{i}")).await;
        assert!(log.contains(&format!("job {i}")), "{log}");
        used.insert(ran_on(&s, &run, &format!("j{i}")).await);
    }
    assert_eq!(ran_on(&s, &run, "g").await, "a3", "only a3 has gpu");
    used.insert("a3".to_string());
    assert_eq!(
        used.len(),
        3,
        "the jobs spread over the three agents: {used:?}"
    );
    let glog = s.job_log(&run, "g").await;
    assert!(glog.contains("key=***"), "masked: {glog}");
    assert!(!glog.contains("s3cr3t-agent-value"), "{glog}");

    // Every agent is listed with its labels and slots; none holds a job now.
    let (st, list) = s.get("/api/v1/agents").await;
    assert_eq!(st, 200);
    let agents = list["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3, "{list}");
    let a3 = agents.iter().find(|a| a["name"] == "a3").unwrap();
    assert_eq!(a3["labels"], json!(["gpu", "linux"]));
    assert_eq!(a3["slots"], 1);
    assert!(agents.iter().all(|a| a["jobs"] == json!([])), "{list}");
    let out = tokio::process::Command::new(common::gantry_bin())
        .args(["agents", "--server", &s.url])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("a3  labels: gpu,linux  slots: 1"),
        "{text}"
    );

    // A job whose labels no agent has waits, says so, and can be cancelled.
    let waiting = s
        .submit_yaml("jobs:\n  w:\n    runs_on: [arm64]\n    run: [echo never]\n")
        .await;
    eventually(20, "the waiting job says why", async || {
        let log = s.job_log(&waiting, "w").await;
        log.contains(
            "no registered agent has these labels; the job waits for an agent with labels arm64",
        )
        .then_some(())
    })
    .await;
    let (st, _) = s.get(&format!("/api/v1/runs/{waiting}")).await;
    assert_eq!(st, 200);
    let (st, b) = s
        .post(
            &format!("/api/v1/runs/{waiting}/cancel"),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let run = s.wait_finished(&waiting, 20).await;
    assert_eq!(run["status"], "cancelled", "{run}");
}

#[tokio::test]
async fn an_agent_killed_mid_job_loses_it_and_another_agent_runs_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let t = token(&s, "fleet").await;
    let work = dir.path().join("agents");
    let mut doomed = Agent::start(&s, &t, "doomed", "linux", &work, &[]).await;
    let run = s
        .submit_yaml("jobs:\n  k:\n    runs_on: [linux]\n    run: ['echo started', 'sleep 2', 'echo finished']\n")
        .await;
    eventually(20, "the job started on the first agent", async || {
        s.job_log(&run, "k").await.contains("started").then_some(())
    })
    .await;
    doomed.kill9().await;
    let _rescuer = Agent::start(&s, &t, "rescuer", "linux", &work, &[]).await;
    let done = s.wait_finished(&run, 60).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(job(&done, "k")["attempt"], 2, "{done}");
    assert_eq!(ran_on(&s, &run, "k").await, "rescuer");
    assert!(s.job_log(&run, "k").await.contains("finished"));
    let trail = trail(&s, &run).await;
    assert!(
        trail.iter().any(|(j, a, to, note)| j == "k"
            && *a == 1
            && to == "lease_expired"
            && note.contains("`doomed` stopped renewing")),
        "{trail:?}"
    );
    assert!(
        trail
            .iter()
            .any(|(j, a, to, _)| j == "k" && *a == 2 && to == "running"),
        "{trail:?}"
    );
    let results: Vec<_> = trail
        .iter()
        .filter(|(j, _, to, _)| j == "k" && to == "succeeded")
        .collect();
    assert_eq!(results.len(), 1, "one result recorded: {trail:?}");
}

#[tokio::test]
async fn a_stalled_agent_s_late_result_is_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let t = token(&s, "fleet").await;
    let work = dir.path().join("agents");
    // The stalled agent's attempt fails (exit 3), the next one succeeds.
    let sleepy = Agent::start(&s, &t, "sleepy", "linux", &work, &[("MARK", "late")]).await;
    let run = s
        .submit_yaml(
            "jobs:\n  s:\n    runs_on: [linux]\n    run: ['echo started', 'sleep 1', 'if [ \"$MARK\" = late ]; then exit 3; fi']\n",
        )
        .await;
    eventually(20, "the job started", async || {
        s.job_log(&run, "s").await.contains("started").then_some(())
    })
    .await;
    sleepy.stop();
    eventually(20, "the stalled agent's lease expired", async || {
        trail(&s, &run)
            .await
            .iter()
            .any(|(_, a, to, _)| *a == 1 && to == "lease_expired")
            .then_some(())
    })
    .await;
    let _steady = Agent::start(&s, &t, "steady", "linux", &work, &[]).await;
    eventually(20, "attempt 2 runs on another agent", async || {
        (ran_on_opt(&s, &run).await.as_deref() == Some("steady")).then_some(())
    })
    .await;
    sleepy.resume();
    let refused = eventually(30, "the late result is refused", async || {
        trail(&s, &run)
            .await
            .into_iter()
            .find(|(_, a, to, _)| *a == 1 && to == "result_refused")
    })
    .await;
    assert!(
        refused.3.contains("exit code 3") && refused.3.contains("no longer current"),
        "{refused:?}"
    );
    let done = s.wait_finished(&run, 30).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let k = job(&done, "s");
    assert_eq!(
        (k["attempt"].as_u64(), k["exit_code"].as_i64()),
        (Some(2), Some(0)),
        "{done}"
    );
}

async fn ran_on_opt(s: &Server, run: &str) -> Option<String> {
    let log = s.job_log(run, "s").await;
    log.lines()
        .find_map(|l| l.strip_prefix("gantry: running on agent "))
        .map(String::from)
}

#[tokio::test]
async fn bad_callbacks_and_revoked_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_with(&data, LEASE).await;
    let t = token(&s, "hand").await;
    set_secret(&s, "A_SECRET", "value-a").await;
    set_secret(&s, "B_SECRET", "value-b").await;
    let hand = Hand {
        s: &s,
        token: t.clone(),
        name: "hand".into(),
    };
    assert_eq!(hand.register(&["manual"]).await.0, 200);
    let run = s
        .submit_yaml(
            "jobs:\n  m:\n    runs_on: [manual]\n    secrets: [A_SECRET]\n    run: ['true']\n",
        )
        .await;
    let (st, lease) = hand.poll().await;
    assert_eq!(st, 200, "{lease}");
    assert_eq!(
        lease["secrets"],
        json!([["A_SECRET", "value-a"]]),
        "only the secrets the job names"
    );
    let callback = lease["callback"].as_str().unwrap().to_string();
    let id = lease["id"].as_str().unwrap().to_string();
    assert_eq!(hand.heartbeat(&id).await, (200, json!({"cancel": false})));

    // Forged: the signature changed, or signed with another key.
    let mut forged = callback.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (st, b) = report(&s, &forged, json!({"exit_code": 0})).await;
    assert_eq!(st, 401, "{b}");
    let far = chrono::Utc::now().timestamp_millis() + 600_000;
    let claim = |attempt, expires_at_ms| Claim {
        run_id: run.clone(),
        job: "m".into(),
        attempt,
        expires_at_ms,
    };
    let other_key = sign(b"not the server's key", &claim(1, far));
    let (st, _) = report(
        &s,
        &format!("/api/v1/callbacks/{other_key}"),
        json!({"exit_code": 0}),
    )
    .await;
    assert_eq!(st, 401);
    // Signed with the server's key (the data dir's file), but expired, or for another attempt.
    let key = std::fs::read_to_string(data.join("callback.key")).unwrap();
    let key = key.trim().as_bytes();
    let expired = sign(key, &claim(1, far - 700_000));
    let (st, b) = report(
        &s,
        &format!("/api/v1/callbacks/{expired}"),
        json!({"exit_code": 0}),
    )
    .await;
    assert_eq!(st, 410, "{b}");
    let another = sign(key, &claim(2, far));
    let (st, b) = report(
        &s,
        &format!("/api/v1/callbacks/{another}"),
        json!({"exit_code": 0}),
    )
    .await;
    assert_eq!(st, 404, "{b}");
    // Not a result: refused without using the token.
    let (st, _) = report(&s, &callback, json!({"exit": 0})).await;
    assert_eq!(st, 400);

    // The real result, once; the same token again is refused with the reason, and audited.
    let (st, b) = report(&s, &callback, json!({"exit_code": 0})).await;
    assert_eq!(st, 204, "{b}");
    let (st, b) = report(&s, &callback, json!({"exit_code": 0})).await;
    assert_eq!(st, 409, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("used once"),
        "{b}"
    );
    let done = s.wait_finished(&run, 20).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let trail = trail(&s, &run).await;
    assert!(
        trail
            .iter()
            .any(|(j, a, to, _)| j == "m" && *a == 1 && to == "result_refused"),
        "{trail:?}"
    );
    assert_eq!(hand.heartbeat(&id).await.0, 409, "the lease is over");

    // Tokens are listed without their value; a revoked token is refused at once, mid-poll too.
    let (_, list) = s.get("/api/v1/agent-tokens").await;
    assert_eq!(list["tokens"][0]["name"], "hand", "{list}");
    assert!(!list.to_string().contains(&t), "never the token: {list}");
    let started = Instant::now();
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let resp = s
            .req(reqwest::Method::DELETE, "/api/v1/agent-tokens/hand")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    };
    let ((st, b), ()) = tokio::join!(hand.poll(), revoke);
    assert_eq!(st, 401, "{b}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once: {:?}",
        started.elapsed()
    );
    assert_eq!(hand.register(&["manual"]).await.0, 401);
    let nobody = Hand {
        s: &s,
        token: "gat_0000".into(),
        name: "x".into(),
    };
    assert_eq!(nobody.poll().await.0, 401);
    let resp = s
        .http
        .post(format!("{}/api/v1/agent/poll", s.url))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = s
        .req(reqwest::Method::DELETE, "/api/v1/agent-tokens/hand")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_cancelled_or_timed_out_job_is_stopped_on_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let t = token(&s, "fleet").await;
    let _a = Agent::start(&s, &t, "worker", "linux", &dir.path().join("agents"), &[]).await;
    let run = s
        .submit_yaml("jobs:\n  c:\n    runs_on: [linux]\n    run: ['sleep 31.25']\n")
        .await;
    common::wait_until(20, "the job runs on the agent", || {
        common::alive("sleep 31.25")
    })
    .await;
    let (st, b) = s
        .post(
            &format!("/api/v1/runs/{run}/cancel"),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let done = s.wait_finished(&run, 20).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    common::wait_until(10, "the agent killed the job", || {
        !common::alive("sleep 31.25")
    })
    .await;

    let run = s
        .submit_yaml(
            "jobs:\n  t:\n    runs_on: [linux]\n    timeout: 1s\n    run: ['sleep 32.25']\n",
        )
        .await;
    let done = s.wait_finished(&run, 30).await;
    assert_eq!(job(&done, "t")["status"], "timed_out", "{done}");
    assert!(!common::alive("sleep 32.25"));
}

/// `image:` with `runs_on`: the agent runs the job in Docker on its host, with the job's
/// secrets masked as for local jobs.
#[tokio::test]
async fn an_agent_runs_an_image_job_in_docker() {
    let script = format!("{}/../../scripts/test-images", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(script)
        .output()
        .expect("run scripts/test-images");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let t = token(&s, "fleet").await;
    let _a = Agent::start(&s, &t, "boxer", "docker", &dir.path().join("agents"), &[]).await;
    set_secret(&s, "BOX_SECRET", "boxed-value-123").await;
    let run = s
        .submit_yaml(
            "jobs:\n  c:\n    runs_on: [docker]\n    image: gantry-test/busybox:latest\n    secrets: [BOX_SECRET]\n    run: ['test -f /.dockerenv', 'echo in a container with $BOX_SECRET']\n",
        )
        .await;
    let done = s.wait_finished(&run, 60).await;
    let log = s.job_log(&run, "c").await;
    assert_eq!(done["status"], "succeeded", "{done}\n{log}");
    assert!(log.contains("in a container with ***"), "{log}");
    assert!(!log.contains("boxed-value-123"), "{log}");
}

/// A token revoked while its agent runs a job: the agent hears it at its next renewal, kills
/// the job and exits; the attempt is lost and runs again on another agent.
#[tokio::test]
async fn a_revoked_agent_stops_its_job_and_the_job_runs_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let (ta, tb) = (token(&s, "old").await, token(&s, "new").await);
    let work = dir.path().join("agents");
    let mut a = Agent::start(&s, &ta, "revoked", "linux", &work, &[]).await;
    let run = s
        .submit_yaml(
            "jobs:\n  r:\n    runs_on: [linux]\n    run: ['if [ \"$GANTRY_ATTEMPT\" = 1 ]; then sleep 33.25; fi']\n",
        )
        .await;
    common::wait_until(20, "the job runs", || common::alive("sleep 33.25")).await;
    let resp = s
        .req(reqwest::Method::DELETE, "/api/v1/agent-tokens/old")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    common::wait_until(10, "the agent killed the job", || {
        !common::alive("sleep 33.25")
    })
    .await;
    let status = tokio::time::timeout(Duration::from_secs(10), a.child.wait())
        .await
        .expect("the agent exits")
        .unwrap();
    assert!(!status.success(), "{status}");
    let _b = Agent::start(&s, &tb, "fresh", "linux", &work, &[]).await;
    let done = s.wait_finished(&run, 30).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(job(&done, "r")["attempt"], 2, "{done}");
    assert_eq!(ran_on(&s, &run, "r").await, "fresh");
}

/// Output larger than a chunk arrives whole and in order, as `gantry logs` reads it.
#[tokio::test]
async fn a_long_output_arrives_in_chunks_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let t = token(&s, "fleet").await;
    let _a = Agent::start(&s, &t, "chatty", "linux", &dir.path().join("agents"), &[]).await;
    let run = s
        .submit_yaml("jobs:\n  l:\n    runs_on: [linux]\n    run: ['seq 1 80000']\n")
        .await;
    let done = s.wait_finished(&run, 60).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let out = tokio::process::Command::new(common::gantry_bin())
        .args(["logs", &run, "l", "--server", &s.url])
        .output()
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u32> = log.lines().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(
        numbers,
        (1..=80_000).collect::<Vec<u32>>(),
        "{}",
        &log[..200.min(log.len())]
    );
}

/// A job's `source` is checked out on the agent (through its own mirror, no credentials).
#[tokio::test]
async fn an_agent_checks_out_a_job_s_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bare = root.join("git/acme/tool.git");
    std::fs::create_dir_all(&bare).unwrap();
    common::git(
        &bare,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    common::git(&src, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(src.join("hello.txt"), "hello from the repository\n").unwrap();
    common::git(&src, &["add", "hello.txt"]);
    common::git(&src, &["commit", "--quiet", "-m", "one"]);
    common::git(&src, &["push", "--quiet", bare.to_str().unwrap(), "main"]);
    let github = gantry_github::fake::FakeGitHub::start("gh-pat").await;
    github.serve_git(&root.join("git"));
    let allowed = format!("{}/git/", github.url);
    let allow = [("GANTRY_GIT_ALLOWED_URL_PREFIXES", allowed.as_str())];
    let s = Server::start_with(&root.join("data"), &[LEASE[0], allow[0]]).await;
    let t = token(&s, "fleet").await;
    let _a = Agent::start(&s, &t, "builder", "linux", &root.join("agents"), &allow).await;
    let url = github.clone_url("acme/tool");
    let run = s
        .submit_yaml(&format!(
            "jobs:\n  c:\n    runs_on: [linux]\n    source: {{git: {{url: '{url}', ref: main}}}}\n    run: ['cat hello.txt']\n"
        ))
        .await;
    let done = s.wait_finished(&run, 60).await;
    let log = s.job_log(&run, "c").await;
    assert_eq!(done["status"], "succeeded", "{done}\n{log}");
    assert!(log.contains("hello from the repository"), "{log}");
}

/// `gantry agent-tokens create|list|revoke`: the token printed once, then only its name.
#[tokio::test]
async fn agent_tokens_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), LEASE).await;
    let cli = async |args: &[&str]| {
        let out = tokio::process::Command::new(common::gantry_bin())
            .args(args)
            .args(["--server", &s.url])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let token = cli(&["agent-tokens", "create", "ci-box"]).await;
    let token = token.trim();
    assert!(token.starts_with("gat_") && token.len() == 68, "{token}");
    let listed = cli(&["agent-tokens", "list"]).await;
    assert!(
        listed.starts_with("ci-box  created: ") && listed.contains("last used: never"),
        "{listed}"
    );
    assert!(!listed.contains(token));
    let hand = Hand {
        s: &s,
        token: token.to_string(),
        name: "box".into(),
    };
    assert_eq!(hand.register(&["linux"]).await.0, 200);
    assert!(
        cli(&["agent-tokens", "list"])
            .await
            .contains("last used: 20"),
        "used now"
    );
    assert!(
        cli(&["agent-tokens", "revoke", "ci-box"])
            .await
            .contains("revoked")
    );
    assert_eq!(cli(&["agent-tokens", "list"]).await, "");
    assert_eq!(hand.register(&["linux"]).await.0, 401);
}

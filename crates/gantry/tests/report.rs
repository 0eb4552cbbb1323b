//! The reporting scenario end to end: a signed `orders` delivery for a pull request → a PR
//! comment with the order list → edits as jobs change → a final summary → commit statuses, all
//! checked through the fake GitHub's state. GitHub failing does not hold the run up.

mod common;

use common::Server;
use gantry::server::signature::{Secret, sign};
use gantry_github::fake::FakeGitHub;
use std::time::{Duration, Instant};

#[tokio::test]
async fn orders_for_a_pull_request_are_reported_on_it() {
    let github = FakeGitHub::start("gh-token").await;
    github.add_pull("acme/infra", 7, "headsha1");
    // GitHub is flaky at first: the run must not wait for it.
    github.fail_next(502, None);
    github.fail_next(403, Some(1));
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            ("GANTRY_WEBHOOK_SECRET", "whs"),
            ("GANTRY_GITHUB_TOKEN", "gh-token"),
            ("GANTRY_GITHUB_API_URL", &github.url),
            ("GANTRY_PUBLIC_URL", "https://ci.example.com"),
            ("GANTRY_REPORT_INTERVAL", "100ms"),
        ],
    )
    .await;
    let orders = br#"{"pr": {"repo": "acme/infra", "number": 7},
        "orders": [{"name": "plan", "cmds": ["echo planning", "sleep 1.5"]},
                   {"name": "apply", "cmds": ["echo boom-line-from-apply; exit 3"], "dependencies": ["plan"]}]}"#;
    let resp = s
        .http
        .post(format!("{}/webhook", s.url))
        .header("content-type", "application/json")
        .header(
            "x-gantry-signature-256",
            sign(&Secret::new("whs").unwrap(), orders),
        )
        .body(&orders[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let run_id = resp.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = s.wait_finished(&run_id, 15).await;
    assert_eq!(run["status"], "failed");

    // The final summary arrives shortly after the run ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        {
            let st = github.lock();
            let done = st
                .comments
                .first()
                .is_some_and(|c| c.body.contains("boom-line-from-apply"))
                && st
                    .statuses
                    .iter()
                    .any(|x| x.context == "gantry/apply" && x.state == "failure");
            if done {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no final report: {:?}",
            github.lock().comments
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = github.lock();
    assert_eq!(st.comments.len(), 1, "one comment per run, edited in place");
    let c = &st.comments[0];
    assert_eq!((c.repo.as_str(), c.number), ("acme/infra", 7));
    assert!(
        c.history.len() >= 2,
        "created, then edited: {:?}",
        c.history
    );
    assert!(
        c.history[0].contains("running") && c.history[0].contains("| job | status | duration |"),
        "{}",
        c.history[0]
    );
    assert!(c.body.contains("❌ **acme/infra#7** failed"), "{}", c.body);
    assert!(c.body.contains("<details><summary>apply log"), "{}", c.body);
    assert!(c.body.contains(&format!("gantry:run={run_id}")));

    let states = |ctx: &str| {
        st.statuses
            .iter()
            .filter(|x| x.context == ctx)
            .map(|x| x.state.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(states("gantry/plan").last(), Some(&"success"));
    assert_eq!(states("gantry/apply").last(), Some(&"failure"));
    assert!(
        states("gantry/plan").contains(&"pending"),
        "{:?}",
        states("gantry/plan")
    );
    assert!(
        st.statuses
            .iter()
            .all(|x| x.sha == "headsha1" && x.repo == "acme/infra")
    );
    let url = st
        .statuses
        .iter()
        .find(|x| x.context == "gantry/apply")
        .and_then(|x| x.target_url.clone())
        .unwrap();
    assert_eq!(
        url,
        format!("https://ci.example.com/api/v1/runs/{run_id}/jobs/apply/log")
    );
    assert!(
        st.calls
            .iter()
            .any(|c| c.starts_with("GET /repos/acme/infra/pulls/7")),
        "head sha read from the API"
    );
}

#[tokio::test]
async fn a_github_app_reports_with_installation_tokens() {
    let keys = format!("{}/../../fixtures/keys", env!("CARGO_MANIFEST_DIR"));
    let github = FakeGitHub::start("no-pat").await;
    github.enable_app(
        "4242",
        &std::fs::read_to_string(format!("{keys}/test-app.pub.pem")).unwrap(),
        55,
    );
    let dir = tempfile::tempdir().unwrap();
    let key_path = format!("{keys}/test-app.pem");
    let s = Server::start_with(
        dir.path(),
        &[
            ("GANTRY_GITHUB_APP_ID", "4242"),
            ("GANTRY_GITHUB_APP_PRIVATE_KEY", &key_path),
            ("GANTRY_GITHUB_API_URL", &github.url),
            ("GANTRY_REPORT_INTERVAL", "100ms"),
        ],
    )
    .await;
    let orders = r#"{"pr": {"repo": "acme/app", "number": 3, "sha": "givensha"}, "orders": [{"name": "test", "cmds": ["true"]}]}"#;
    let (st, resp) = s.post("/webhook", "application/json", orders).await;
    assert_eq!(st, 202, "{resp}");
    s.wait_finished(resp["run_id"].as_str().unwrap(), 10).await;
    // The status and the comment's last edit are separate calls: wait for both.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !{
        let st = github.lock();
        st.statuses
            .iter()
            .any(|x| x.context == "gantry/test" && x.state == "success")
            && st
                .comments
                .first()
                .is_some_and(|c| c.body.contains("✅ **acme/app#3** succeeded"))
    } {
        assert!(
            Instant::now() < deadline,
            "no success status and comment: {:?}",
            github.lock().calls
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = github.lock();
    assert!(
        st.statuses.iter().all(|x| x.sha == "givensha"),
        "the payload's sha is used"
    );
    assert!(
        st.calls
            .iter()
            .any(|c| c == "POST /app/installations/55/access_tokens")
    );
    assert!(
        !st.calls.iter().any(|c| c.contains("/pulls/")),
        "no PR lookup when the sha is given"
    );
}

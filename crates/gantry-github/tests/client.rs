//! The GitHub client against the fake GitHub, over HTTP.

use gantry_engine::ports::{CommitState, CommitStatus, Forge, ForgeError};
use gantry_github::GitHub;
use gantry_github::fake::FakeGitHub;

#[tokio::test]
async fn comments_statuses_and_pulls_round_trip() {
    let fake = FakeGitHub::start("tok").await;
    fake.add_pull("acme/infra", 7, "abc123");
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    assert_eq!(gh.pr_head_sha("acme/infra", 7).await.unwrap(), "abc123");
    assert_eq!(
        gh.find_comment("acme/infra", 7, "<!-- m -->")
            .await
            .unwrap(),
        None
    );
    let id = gh
        .create_comment("acme/infra", 7, "hello <!-- m -->")
        .await
        .unwrap();
    assert_eq!(
        gh.find_comment("acme/infra", 7, "<!-- m -->")
            .await
            .unwrap(),
        Some(id)
    );
    gh.edit_comment("acme/infra", id, "edited <!-- m -->")
        .await
        .unwrap();
    let status = CommitStatus {
        sha: "abc123".into(),
        context: "gantry/plan".into(),
        state: CommitState::Success,
        description: "x".repeat(300),
        target_url: Some("https://ci/log".into()),
    };
    gh.set_status("acme/infra", &status).await.unwrap();
    let st = fake.lock();
    assert_eq!(
        st.comments[0].history,
        ["hello <!-- m -->", "edited <!-- m -->"]
    );
    assert_eq!(st.statuses[0].state, "success");
    assert_eq!(
        st.statuses[0].description.chars().count(),
        140,
        "descriptions are cut to GitHub's limit"
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_bad_credentials_are_not() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    fake.fail_next(403, Some(1)); // secondary rate limit: wait 1 s
    fake.fail_next(502, None);
    let start = std::time::Instant::now();
    gh.create_comment("a/b", 1, "body").await.unwrap();
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After is honoured"
    );
    assert_eq!(fake.lock().calls.len(), 3);
    assert_eq!(fake.lock().comments.len(), 1);

    let wrong = GitHub::new(&fake.url, "nope").unwrap();
    let err = wrong.create_comment("a/b", 1, "body").await.unwrap_err();
    assert!(
        matches!(&err, ForgeError::Permanent(m) if m.contains("401") && m.contains("Bad credentials")),
        "{err}"
    );
    assert!(
        !format!("{wrong:?}").contains("nope"),
        "the token is never printed"
    );

    for _ in 0..4 {
        fake.fail_next(500, None);
    }
    assert!(matches!(
        gh.edit_comment("a/b", 1, "x").await,
        Err(ForgeError::Transient(_))
    ));
}

#[tokio::test]
async fn a_github_app_buys_installation_tokens_caches_them_and_renews_on_401() {
    let keys = format!("{}/../../fixtures/keys", env!("CARGO_MANIFEST_DIR"));
    let private = std::fs::read_to_string(format!("{keys}/test-app.pem")).unwrap();
    let public = std::fs::read_to_string(format!("{keys}/test-app.pub.pem")).unwrap();
    let fake = FakeGitHub::start("unused-pat").await;
    fake.enable_app("4242", &public, 77);
    let gh = GitHub::with_app(&fake.url, "4242", &private).unwrap();
    gh.create_comment("acme/infra", 7, "one").await.unwrap();
    gh.create_comment("acme/infra", 7, "two").await.unwrap();
    let count = |prefix: &str| {
        fake.lock()
            .calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    };
    assert_eq!(
        count("POST /app/installations/77/access_tokens"),
        1,
        "the token is cached"
    );
    assert_eq!(count("GET /repos/acme/infra/installation"), 1);
    assert_eq!(
        fake.lock().token_requests,
        [serde_json::json!({"repositories": ["infra"]})],
        "the token reaches only the one repository"
    );

    fake.revoke_installation_tokens();
    gh.create_comment("acme/infra", 7, "three").await.unwrap();
    assert_eq!(
        count("POST /app/installations/77/access_tokens"),
        2,
        "renewed after a 401"
    );
    assert_eq!(fake.lock().comments.len(), 3);

    let other_key = GitHub::with_app(&fake.url, "9999", &private).unwrap();
    let err = other_key
        .create_comment("acme/infra", 7, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ForgeError::Permanent(m) if m.contains("401")),
        "a JWT from another App is refused: {err}"
    );
    assert!(GitHub::with_app(&fake.url, "1", "not a key").is_err());
}

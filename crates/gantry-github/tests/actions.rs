//! The GitHub Actions calls (JIT runners, jobs, runner listing and deletion) against the fake
//! GitHub, over HTTP.

use base64::Engine as _;
use gantry_engine::ports::ForgeError;
use gantry_github::fake::{FakeGitHub, FakeJob};
use gantry_github::{
    GitHub, JitConfig, JitRegistration, JobStatus, RunnerDeletion, RunnerScope, WorkflowJob,
};

fn org() -> RunnerScope {
    RunnerScope::Org("acme".into())
}

fn repo() -> RunnerScope {
    RunnerScope::Repo("acme/infra".into())
}

async fn register(gh: &GitHub, scope: &RunnerScope, name: &str, labels: &[&str]) -> JitConfig {
    match gh
        .generate_jit_config(scope, name, 1, labels, "_work")
        .await
        .unwrap()
    {
        JitRegistration::Registered(c) => c,
        other => panic!("not registered: {other:?}"),
    }
}

async fn job(gh: &GitHub, id: u64) -> WorkflowJob {
    gh.workflow_job("acme/infra", id)
        .await
        .unwrap()
        .expect("the job")
}

/// What a stand-in runner does through the fake-only routes.
async fn fake_runner(fake: &FakeGitHub, runner_id: u64, action: &str, body: serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_fake/runners/{runner_id}/{action}", fake.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{action}: {}", resp.status());
}

#[tokio::test]
async fn a_jit_runner_is_registered_once_per_name_and_scope() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    let config = register(&gh, &org(), "gantry-job-1", &["gantry", "linux"]).await;
    assert_eq!(config.runner_name, "gantry-job-1");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(config.encoded.expose())
        .unwrap();
    let decoded: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(decoded[".runner"]["AgentId"], config.runner_id);
    assert_eq!(decoded[".runner"]["AgentName"], "gantry-job-1");
    {
        let st = fake.lock();
        assert_eq!(st.runners.len(), 1);
        assert_eq!(st.runners[0].scope, "orgs/acme");
        assert_eq!(st.runners[0].labels, ["gantry", "linux"]);
        assert_eq!(st.runners[0].work_folder, "_work");
    }

    assert_eq!(
        gh.generate_jit_config(&org(), "gantry-job-1", 1, &["gantry"], "_work")
            .await
            .unwrap(),
        JitRegistration::AlreadyRegistered,
        "409: the name is taken in the organization"
    );
    let in_repo = register(&gh, &repo(), "gantry-job-1", &["gantry"]).await;
    assert_ne!(
        in_repo.runner_id, config.runner_id,
        "another scope, another runner"
    );

    for labels in [&[][..], &[""][..]] {
        let err = gh
            .generate_jit_config(&org(), "gantry-job-2", 1, labels, "_work")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ForgeError::Permanent(m) if m.contains("422")),
            "labels {labels:?}: {err}"
        );
    }
    let err = gh
        .generate_jit_config(
            &RunnerScope::Repo("no-slash".into()),
            "x",
            1,
            &["a"],
            "_work",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Permanent(_)), "{err}");
}

#[tokio::test]
async fn the_jit_config_never_appears_in_debug_output() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    let config = register(&gh, &org(), "gantry-job-1", &["gantry"]).await;
    let secret = config.encoded.expose().to_string();
    let credential = fake.lock().runners[0].credential.clone();
    for printed in [
        format!("{config:?}"),
        format!("{:?}", JitRegistration::Registered(config.clone())),
        format!("{config:#?}"),
    ] {
        assert!(!printed.contains(&secret), "{printed}");
        assert!(!printed.contains(&credential), "{printed}");
        assert!(printed.contains("***"), "{printed}");
    }
}

#[tokio::test]
async fn a_job_is_claimed_run_and_completed_by_its_jit_runner() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    fake.add_job(
        "acme/infra",
        FakeJob::queued(55, &["self-hosted", "gantry"]),
    );
    let queued = job(&gh, 55).await;
    assert_eq!(queued.status, JobStatus::Queued);
    assert_eq!(queued.labels, ["self-hosted", "gantry"]);
    assert_eq!((queued.run_id, queued.run_attempt), (550, 1));
    assert_eq!(queued.runner_id, None);
    assert!(queued.html_url.ends_with("/actions/runs/550/job/55"));

    let config = register(&gh, &repo(), "gantry-55", &["gantry"]).await;
    let listed = gh.list_runners(&repo()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].online && !listed[0].busy);
    assert_eq!(listed[0].labels, ["self-hosted", "gantry"]);

    fake_runner(&fake, config.runner_id, "claim", serde_json::json!({})).await;
    let running = job(&gh, 55).await;
    assert_eq!(running.status, JobStatus::InProgress);
    assert_eq!(running.runner_id, Some(config.runner_id));
    assert_eq!(running.runner_name.as_deref(), Some("gantry-55"));
    let listed = gh.list_runners(&repo()).await.unwrap();
    assert!(listed[0].online && listed[0].busy);
    assert_eq!(
        gh.delete_runner(&repo(), config.runner_id).await.unwrap(),
        RunnerDeletion::Busy,
        "422: GitHub refuses to delete a busy runner"
    );

    fake_runner(
        &fake,
        config.runner_id,
        "complete",
        serde_json::json!({"conclusion": "failure"}),
    )
    .await;
    let done = job(&gh, 55).await;
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.conclusion.as_deref(), Some("failure"));
    assert!(
        gh.list_runners(&repo()).await.unwrap().is_empty(),
        "a JIT runner is deleted after its job"
    );
    assert_eq!(
        gh.delete_runner(&repo(), config.runner_id).await.unwrap(),
        RunnerDeletion::Gone
    );

    fake.set_job_status(55, "queued", None);
    assert_eq!(job(&gh, 55).await.status, JobStatus::Queued);
    fake.remove_job(55);
    assert_eq!(gh.workflow_job("acme/infra", 55).await.unwrap(), None);
    assert_eq!(
        gh.workflow_job("acme/other", 56).await.unwrap(),
        None,
        "404"
    );
    let calls = fake.lock().calls.clone();
    assert!(calls.contains(&format!("POST /_fake/runners/{}/claim", config.runner_id)));
    assert!(calls.contains(&format!(
        "DELETE /repos/acme/infra/actions/runners/{}",
        config.runner_id
    )));
}

#[tokio::test]
async fn idle_runners_are_deleted_and_unknown_ones_are_gone() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    let idle = fake.add_runner("orgs/acme", "idle", &["gantry"], false);
    let busy = fake.add_runner("orgs/acme", "busy", &["gantry"], true);
    assert_eq!(
        gh.delete_runner(&repo(), idle).await.unwrap(),
        RunnerDeletion::Gone,
        "not a runner of the repository"
    );
    assert_eq!(
        gh.delete_runner(&org(), idle).await.unwrap(),
        RunnerDeletion::Deleted
    );
    assert_eq!(
        gh.delete_runner(&org(), busy).await.unwrap(),
        RunnerDeletion::Busy
    );
    let left = gh.list_runners(&org()).await.unwrap();
    assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), [busy]);
}

#[tokio::test]
async fn runners_are_listed_across_pages() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    for i in 0..230 {
        fake.add_runner("orgs/acme", &format!("r{i}"), &["gantry"], i % 3 == 0);
    }
    fake.add_runner("repos/acme/infra", "elsewhere", &["gantry"], false);
    let all = gh.list_runners(&org()).await.unwrap();
    assert_eq!(all.len(), 230);
    assert_eq!(all[229].name, "r229");
    assert_eq!(all.iter().filter(|r| r.busy).count(), 77);
    let pages = fake
        .lock()
        .calls
        .iter()
        .filter(|c| *c == "GET /orgs/acme/actions/runners")
        .count();
    assert_eq!(pages, 3);
    assert!(
        gh.list_runners(&RunnerScope::Org("empty".into()))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_github_app_manages_org_runners_with_an_org_installation_token() {
    let keys = format!("{}/../../fixtures/keys", env!("CARGO_MANIFEST_DIR"));
    let private = std::fs::read_to_string(format!("{keys}/test-app.pem")).unwrap();
    let public = std::fs::read_to_string(format!("{keys}/test-app.pub.pem")).unwrap();
    let fake = FakeGitHub::start("unused-pat").await;
    fake.enable_app("4242", &public, 77);
    let gh = GitHub::with_app(&fake.url, "4242", &private).unwrap();
    fake.add_job("acme/infra", FakeJob::queued(9, &["gantry"]));

    let config = register(&gh, &org(), "gantry-9", &["gantry"]).await;
    assert_eq!(gh.list_runners(&org()).await.unwrap().len(), 1);
    assert_eq!(job(&gh, 9).await.status, JobStatus::Queued);
    assert_eq!(
        gh.delete_runner(&org(), config.runner_id).await.unwrap(),
        RunnerDeletion::Deleted
    );
    let calls = fake.lock().calls.clone();
    let count = |c: &str| calls.iter().filter(|x| *x == c).count();
    assert_eq!(count("GET /orgs/acme/installation"), 1);
    assert_eq!(count("GET /repos/acme/infra/installation"), 1);
    assert_eq!(
        count("POST /app/installations/77/access_tokens"),
        2,
        "one token for the organization, cached; one for the repository"
    );
    assert_eq!(
        fake.lock().token_requests,
        [
            serde_json::json!({"permissions": {"organization_self_hosted_runners": "write"}}),
            serde_json::json!({"repositories": ["infra"]}),
        ]
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    fake.fail_next(502, None);
    let config = register(&gh, &org(), "gantry-1", &["gantry"]).await;
    assert_eq!(
        fake.lock()
            .calls
            .iter()
            .filter(|c| c.ends_with("/generate-jitconfig"))
            .count(),
        2
    );
    fake.fail_next(500, None);
    assert_eq!(gh.list_runners(&org()).await.unwrap().len(), 1);
    fake.fail_next(503, None);
    assert_eq!(
        gh.delete_runner(&org(), config.runner_id).await.unwrap(),
        RunnerDeletion::Deleted
    );
    fake.add_job("acme/infra", FakeJob::queued(3, &["gantry"]));
    fake.fail_next(500, None);
    assert_eq!(job(&gh, 3).await.id, 3);

    for _ in 0..4 {
        fake.fail_next(500, None);
    }
    let err = gh
        .generate_jit_config(&org(), "gantry-2", 1, &["gantry"], "_work")
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Transient(_)), "{err}");
}

#[tokio::test]
async fn a_malformed_jit_reply_fails_without_printing_the_config() {
    // A GitHub that forgets the runner's id but still sends the config.
    let app = axum::Router::new().route(
        "/orgs/acme/actions/runners/generate-jitconfig",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::CREATED,
                axum::Json(serde_json::json!({"runner": {"name": "x"}, "encoded_jit_config": "SECRET-JIT"})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let gh = GitHub::new(&url, "tok").unwrap();
    let err = gh
        .generate_jit_config(&org(), "x", 1, &["gantry"], "_work")
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Permanent(_)), "{err}");
    assert!(!format!("{err} {err:?}").contains("SECRET-JIT"), "{err:?}");
}

//! Finding the queued jobs of a repository or an organization (for lost webhooks) through
//! workflow runs and their jobs, against the fake GitHub over HTTP.

use gantry_engine::ports::ForgeError;
use gantry_github::fake::{FakeGitHub, FakeJob};
use gantry_github::{GitHub, JobStatus, RunnerScope, WorkflowJob};

fn job(id: u64, run_id: u64, status: &str, labels: &[&str]) -> FakeJob {
    FakeJob {
        run_id,
        status: status.into(),
        conclusion: (status == "completed").then(|| "success".into()),
        ..FakeJob::queued(id, labels)
    }
}

fn ids(jobs: &[WorkflowJob]) -> Vec<u64> {
    let mut ids: Vec<u64> = jobs.iter().map(|j| j.id).collect();
    ids.sort_unstable();
    ids
}

fn count(fake: &FakeGitHub, call: &str) -> usize {
    fake.lock().calls.iter().filter(|c| *c == call).count()
}

#[tokio::test]
async fn a_repositorys_queued_jobs_come_from_its_queued_and_in_progress_runs() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    // Run 100: all queued. Run 200: one job started, another still waits for a runner.
    fake.add_job(
        "acme/infra",
        job(1, 100, "queued", &["self-hosted", "gantry"]),
    );
    fake.add_job("acme/infra", job(2, 100, "queued", &["self-hosted", "gpu"]));
    fake.add_job("acme/infra", job(3, 200, "in_progress", &["gantry"]));
    fake.add_job("acme/infra", job(4, 200, "queued", &["gantry"]));
    // Run 300: done. Run 400: attempt 1 done, attempt 2 queued.
    fake.add_job("acme/infra", job(5, 300, "completed", &["gantry"]));
    fake.add_job("acme/infra", job(6, 400, "completed", &["gantry"]));
    fake.add_job(
        "acme/infra",
        FakeJob {
            run_attempt: 2,
            ..job(7, 400, "queued", &["gantry"])
        },
    );
    // Elsewhere.
    fake.add_job("acme/web", job(8, 500, "queued", &["gantry"]));

    let queued = gh
        .queued_jobs(&RunnerScope::Repo("acme/infra".into()))
        .await
        .unwrap();
    assert_eq!(ids(&queued), [1, 2, 4, 7]);
    let first = queued.iter().find(|j| j.id == 1).unwrap();
    assert_eq!(first.repo, "acme/infra");
    assert_eq!(first.labels, ["self-hosted", "gantry"]);
    assert_eq!((first.run_id, first.run_attempt), (100, 1));
    assert_eq!(first.status, JobStatus::Queued);
    assert_eq!(first.runner_id, None);
    let retried = queued.iter().find(|j| j.id == 7).unwrap();
    assert_eq!(retried.run_attempt, 2);

    assert_eq!(
        count(&fake, "GET /repos/acme/infra/actions/runs"),
        2,
        "queued runs, then in-progress runs"
    );
    assert_eq!(
        count(&fake, "GET /repos/acme/infra/actions/runs/300/jobs"),
        0,
        "a completed run is not read"
    );

    assert!(
        gh.queued_jobs(&RunnerScope::Repo("acme/empty".into()))
            .await
            .unwrap()
            .is_empty(),
        "an unknown repository (404) has no queued jobs"
    );
    let err = gh
        .queued_jobs(&RunnerScope::Repo("no-slash".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Permanent(_)), "{err}");
}

#[tokio::test]
async fn runs_and_their_jobs_are_read_across_pages() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    for i in 0..150 {
        fake.add_job("acme/infra", job(1000 + i, 10 + i, "queued", &["gantry"]));
    }
    // One big matrix run: 130 jobs, 3 of them started.
    for i in 0..130 {
        let status = if i < 3 { "in_progress" } else { "queued" };
        fake.add_job("acme/infra", job(5000 + i, 9999, status, &["gantry"]));
    }
    let queued = gh
        .queued_jobs(&RunnerScope::Repo("acme/infra".into()))
        .await
        .unwrap();
    assert_eq!(queued.len(), 150 + 127);
    assert_eq!(ids(&queued).len(), queued.len(), "each job once");
    assert_eq!(
        count(&fake, "GET /repos/acme/infra/actions/runs"),
        3,
        "two pages of queued runs, one of in-progress runs"
    );
    assert_eq!(
        count(&fake, "GET /repos/acme/infra/actions/runs/9999/jobs"),
        2
    );
}

#[tokio::test]
async fn an_organizations_repositories_are_listed_across_pages_with_a_token() {
    let fake = FakeGitHub::start("tok").await;
    let gh = GitHub::new(&fake.url, "tok").unwrap();
    for i in 0..120 {
        fake.add_repo(&format!("acme/repo-{i:03}"));
    }
    fake.add_job("acme/repo-007", job(1, 10, "queued", &["gantry"]));
    fake.add_job("acme/repo-115", job(2, 20, "queued", &["gantry", "arm64"]));
    fake.add_job("acme/repo-115", job(3, 30, "completed", &["gantry"]));
    fake.add_job("other/repo", job(4, 40, "queued", &["gantry"]));
    fake.set_personal_account("bob");
    fake.add_job("bob/dotfiles", job(5, 50, "queued", &["gantry"]));

    let queued = gh
        .queued_jobs(&RunnerScope::Org("acme".into()))
        .await
        .unwrap();
    assert_eq!(ids(&queued), [1, 2]);
    let second = queued.iter().find(|j| j.id == 2).unwrap();
    assert_eq!(second.repo, "acme/repo-115");
    assert_eq!(second.labels, ["gantry", "arm64"]);
    assert_eq!(count(&fake, "GET /orgs/acme/repos"), 2);
    assert_eq!(count(&fake, "GET /installation/repositories"), 0);

    let err = gh
        .queued_jobs(&RunnerScope::Org("bob".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ForgeError::NotFound(_)),
        "a personal account is no organization: {err}"
    );
}

#[tokio::test]
async fn a_github_app_lists_an_organizations_repositories_through_its_installation() {
    let keys = format!("{}/../../fixtures/keys", env!("CARGO_MANIFEST_DIR"));
    let private = std::fs::read_to_string(format!("{keys}/test-app.pem")).unwrap();
    let public = std::fs::read_to_string(format!("{keys}/test-app.pub.pem")).unwrap();
    let fake = FakeGitHub::start("unused-pat").await;
    fake.enable_app("4242", &public, 77);
    let gh = GitHub::with_app(&fake.url, "4242", &private).unwrap();
    for i in 0..105 {
        fake.add_repo(&format!("acme/r{i}"));
    }
    fake.add_job("acme/r3", job(1, 10, "queued", &["gantry"]));
    fake.add_job("acme/r104", job(2, 20, "queued", &["gantry"]));
    fake.add_job("other/x", job(3, 30, "queued", &["gantry"]));

    let queued = gh
        .queued_jobs(&RunnerScope::Org("acme".into()))
        .await
        .unwrap();
    assert_eq!(ids(&queued), [1, 2], "only the organization's repositories");
    assert_eq!(count(&fake, "GET /installation/repositories"), 2);
    assert_eq!(count(&fake, "GET /orgs/acme/repos"), 0);
    assert_eq!(
        count(&fake, "GET /repos/acme/r3/installation"),
        1,
        "runs are read with the repository's own token"
    );

    // The personal access token cannot list an installation's repositories.
    let pat = GitHub::new(&fake.url, "unused-pat").unwrap();
    let list = reqwest::Client::new()
        .get(format!("{}/installation/repositories", fake.url))
        .bearer_auth("unused-pat")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 403);
    assert_eq!(
        ids(&pat
            .queued_jobs(&RunnerScope::Org("acme".into()))
            .await
            .unwrap()),
        [1, 2],
        "with a token, /orgs/acme/repos"
    );
}

//! The push-to-deploy scenario end to end (issue: pipelines from repositories): a private
//! repository served over git's smart HTTP by the fake GitHub, `.gantry.yml` read through its
//! contents API, signed push and pull request deliveries, a secret from the store, commit
//! statuses back on the fake.

mod common;

use common::{Server, git, job};
use gantry::server::signature::{Secret, sign};
use gantry_github::fake::FakeGitHub;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const REPO: &str = "acme/web";
const SECRET_VALUE: &str = "dk-4471-live/zz";

const PIPELINE: &str = r#"name: ci
on:
  push: {branches: [main]}
  pull_request: {}
jobs:
  test:
    run:
      - cat app.txt
      - 'if grep -q slow app.txt; then sleep 3931; fi'
      - grep -q ok app.txt
  deploy:
    needs: [test]
    when: {event: push, branch: main}
    secrets: [DEPLOY_KEY]
    run: ['echo "deploying with $DEPLOY_KEY"', 'test -n "$DEPLOY_KEY"']
"#;

/// A working copy of the repository, pushing to the bare one the fake serves.
struct Repo {
    work: PathBuf,
}

impl Repo {
    fn new(root: &Path) -> Repo {
        let bare = root.join("git/acme/web.git");
        std::fs::create_dir_all(&bare).unwrap();
        git(
            &bare,
            &["init", "--quiet", "--bare", "--initial-branch=main"],
        );
        let work = root.join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "--quiet", "--initial-branch=main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Repo { work }
    }

    /// Commits `files` on `branch` (created from main if new) and pushes; returns the SHA.
    fn commit(&self, branch: &str, files: &[(&str, &str)]) -> String {
        let has_main = !git(&self.work, &["branch", "--list", "main"]).is_empty();
        if has_main {
            let exists = !git(&self.work, &["branch", "--list", branch]).is_empty();
            let mut args = vec!["checkout", "--quiet"];
            if !exists {
                args.extend(["-b", branch, "main"]);
            } else {
                args.push(branch);
            }
            git(&self.work, &args);
        }
        for (name, text) in files {
            std::fs::write(self.work.join(name), text).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "--quiet", "-m", "change"]);
        git(
            &self.work,
            &["push", "--quiet", "origin", &format!("HEAD:{branch}")],
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

struct World {
    _dir: tempfile::TempDir,
    repo: Repo,
    github: FakeGitHub,
    server: Server,
    secret: Secret,
}

impl World {
    async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::new(dir.path());
        let github = FakeGitHub::start("gh-pat").await;
        github.serve_git(&dir.path().join("git"));
        github.make_private(REPO);
        let allowed = format!("{}/git/", github.url);
        let server = Server::start_with(
            &dir.path().join("data"),
            &[
                ("GANTRY_GITHUB_WEBHOOK_SECRET", "whsec"),
                ("GANTRY_GITHUB_TOKEN", "gh-pat"),
                ("GANTRY_GITHUB_API_URL", &github.url),
                ("GANTRY_GIT_ALLOWED_URL_PREFIXES", &allowed),
                ("GANTRY_REPORT_INTERVAL", "100ms"),
            ],
        )
        .await;
        let (status, body) = server
            .post(
                "/api/v1/secrets",
                "application/json",
                json!({"name": "DEPLOY_KEY", "scope": "repo:acme/web", "value": SECRET_VALUE})
                    .to_string(),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        World {
            _dir: dir,
            repo,
            github,
            server,
            secret: Secret::new("whsec").unwrap(),
        }
    }

    /// Delivers a signed GitHub event; returns the stored event's id.
    async fn deliver(&self, event: &str, payload: &Value) -> String {
        let body = payload.to_string();
        let resp = self
            .server
            .http
            .post(format!("{}/webhooks/github", self.server.url))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", ulid_like())
            .header("x-hub-signature-256", sign(&self.secret, body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let v: Value = resp.json().await.unwrap();
        v["event_id"].as_str().unwrap().to_string()
    }

    fn push(&self, branch: &str, sha: &str) -> Value {
        self.push_from(branch, sha, &self.github.clone_url(REPO))
    }

    fn push_from(&self, branch: &str, sha: &str, clone_url: &str) -> Value {
        json!({
            "ref": format!("refs/heads/{branch}"), "before": "0".repeat(40), "after": sha,
            "created": false, "deleted": false, "forced": false,
            "commits": [{"id": sha, "added": [], "removed": [], "modified": ["app.txt"]}],
            "repository": {"full_name": REPO, "name": "web", "private": true,
                           "owner": {"login": "acme"}, "clone_url": clone_url},
            "sender": {"login": "dev"}
        })
    }

    fn pull_request(&self, number: u64, head: &str, head_repo: &str) -> Value {
        let url = self.github.clone_url(REPO);
        json!({
            "action": "opened", "number": number,
            "pull_request": {
                "number": number,
                "head": {"ref": "feature", "sha": head, "repo": {"full_name": head_repo}},
                "base": {"ref": "main", "sha": "0".repeat(40),
                         "repo": {"full_name": REPO, "clone_url": url}}
            },
            "repository": {"full_name": REPO, "clone_url": url},
            "sender": {"login": "dev"}
        })
    }

    /// Waits for the event's outcome; returns it.
    async fn outcome(&self, event_id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, list) = self.server.get("/api/v1/events?source=github").await;
            let found = list["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["id"] == event_id)
                .and_then(|e| e["outcome"].as_str().map(str::to_string));
            if let Some(o) = found {
                return o;
            }
            assert!(Instant::now() < deadline, "no outcome for {event_id}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The run an event started, once finished.
    async fn run_of(&self, event_id: &str) -> Value {
        let outcome = self.outcome(event_id).await;
        let id = outcome
            .strip_prefix("started run ")
            .map(|r| r.split(',').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no run started: {outcome}"));
        self.server.wait_finished(&id, 60).await
    }

    async fn log(&self, run: &Value, job: &str) -> String {
        let url = format!(
            "{}/api/v1/runs/{}/jobs/{job}/log",
            self.server.url,
            run["id"].as_str().unwrap()
        );
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    /// Waits until the fake holds a status `context` = `state` on `sha`.
    async fn status(&self, sha: &str, context: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let last = self
                .github
                .lock()
                .statuses
                .iter()
                .rev()
                .find(|s| s.sha == sha && s.context == context)
                .map(|s| s.state.clone());
            if last.as_deref() == Some(state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status {context} on {sha}: {last:?}, wanted {state}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn ulid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "delivery-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test]
async fn push_deploys_pull_request_tests_failures_skip_forks_get_no_secrets() {
    let w = World::start().await;

    // Push to main: test, then deploy with the secret, masked in the log.
    let sha = w
        .repo
        .commit("main", &[(".gantry.yml", PIPELINE), ("app.txt", "ok\n")]);
    let run = w
        .run_of(&w.deliver("push", &w.push("main", &sha)).await)
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(job(&run, "deploy")["status"], "succeeded");
    let deploy = w.log(&run, "deploy").await;
    assert!(deploy.contains("deploying with ***"), "{deploy}");
    assert!(!deploy.contains(SECRET_VALUE), "{deploy}");
    assert!(
        deploy.contains("already in the local mirror"),
        "fetched once: {deploy}"
    );
    let test = w.log(&run, "test").await;
    assert!(test.contains(&format!("checked out {sha}")), "{test}");
    w.status(&sha, "gantry/test", "success").await;
    w.status(&sha, "gantry/deploy", "success").await;
    // Private repository: every git request carried the token; none is on disk.
    let requests = w.github.lock().git_requests.clone();
    assert!(!requests.is_empty() && requests.iter().all(|(_, ok)| *ok));
    let data = w.server.data_dir.clone();
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", "gh-pat"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "token written to {}",
        String::from_utf8_lossy(&grep.stdout)
    );

    // Pull request: only the tests, and a status on its head.
    let pr_sha = w.repo.commit("feature", &[("app.txt", "ok pr\n")]);
    let run = w
        .run_of(
            &w.deliver("pull_request", &w.pull_request(7, &pr_sha, REPO))
                .await,
        )
        .await;
    assert_eq!(job(&run, "test")["status"], "succeeded", "{run}");
    assert_eq!(job(&run, "deploy")["status"], "skipped", "{run}");
    w.status(&pr_sha, "gantry/test", "success").await;

    // A failing test on main: deploy skipped, failure status.
    let bad = w.repo.commit("main", &[("app.txt", "bad\n")]);
    let run = w
        .run_of(&w.deliver("push", &w.push("main", &bad)).await)
        .await;
    assert_eq!(run["status"], "failed");
    assert_eq!(job(&run, "test")["status"], "failed");
    assert_eq!(job(&run, "deploy")["status"], "skipped");
    w.status(&bad, "gantry/test", "failure").await;

    // A pull request from a fork: its pipeline's local job does not run (fork jobs run only
    // in containers), and what it asked for (a secret) is not handed out. (Withholding the
    // secret from a fork's job that does run is the orchestrator's `prepare` tests'.)
    let fork_pipeline = PIPELINE
        .replace(
            "      - cat app.txt\n",
            "      - cat app.txt\n      - 'echo \"key=${DEPLOY_KEY:-none}\"'\n",
        )
        .replace("  test:\n", "  test:\n    secrets: [DEPLOY_KEY]\n");
    let fork_sha = w.repo.commit(
        "fork-branch",
        &[(".gantry.yml", &fork_pipeline), ("app.txt", "ok fork\n")],
    );
    let run = w
        .run_of(
            &w.deliver("pull_request", &w.pull_request(8, &fork_sha, "mallory/web"))
                .await,
        )
        .await;
    assert_eq!(job(&run, "test")["status"], "failed", "{run}");
    let log = w.log(&run, "test").await;
    assert!(log.contains("run only in containers"), "{log}");
    assert!(!log.contains("key="), "nothing of it ran: {log}");

    // PR comments are opt-in per pipeline (`report: comment`); statuses always.
    assert!(w.github.lock().comments.iter().all(|c| c.number != 7));
    let commenting = format!("report: comment\n{PIPELINE}");
    let sha9 = w.repo.commit(
        "feature",
        &[(".gantry.yml", &commenting), ("app.txt", "ok 9\n")],
    );
    let run = w
        .run_of(
            &w.deliver("pull_request", &w.pull_request(9, &sha9, REPO))
                .await,
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    w.status(&sha9, "gantry/test", "success").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w
        .github
        .lock()
        .comments
        .iter()
        .any(|c| c.number == 9 && c.body.contains("succeeded"))
    {
        assert!(Instant::now() < deadline, "no PR comment on #9");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bad_files_urls_and_commits_are_clear_errors_and_newer_pushes_cancel_older_runs() {
    let w = World::start().await;

    // A malformed pipeline file: a failed run pointing at the line, and a failure status.
    let broken = "name: ci\non: {push: {branches: [main]}}\njobs:\n  test:\n    run: [make]\n    needz: [x]\n";
    let sha = w.repo.commit("main", &[(".gantry.yml", broken)]);
    let event = w.deliver("push", &w.push("main", &sha)).await;
    let run = w.run_of(&event).await;
    assert_eq!(run["status"], "failed");
    let log = w.log(&run, "pipeline").await;
    assert!(
        log.contains(".gantry.yml") && log.contains("line 6, column 5") && log.contains("needz"),
        "{log}"
    );
    w.status(&sha, "gantry/pipeline", "failure").await;

    // No trigger for this branch: nothing runs, and the event says why.
    let sha = w
        .repo
        .commit("main", &[(".gantry.yml", PIPELINE), ("app.txt", "ok\n")]);
    let dev = w.repo.commit("dev", &[("app.txt", "ok dev\n")]);
    let outcome = w
        .outcome(&w.deliver("push", &w.push("dev", &dev)).await)
        .await;
    assert_eq!(
        outcome,
        "not triggered: branch `dev` does not match `on.push.branches`"
    );

    // A clone URL outside the allowed prefixes is refused before anything is read.
    let outcome = w
        .outcome(
            &w.deliver("push", &w.push_from("main", &sha, "file:///etc"))
                .await,
        )
        .await;
    assert!(
        outcome.starts_with("refused: clone URL `file:///etc` is not allowed"),
        "{outcome}"
    );

    // A commit that is not in the repository (e.g. force-pushed away).
    let gone = "1234567890123456789012345678901234567890";
    let outcome = w
        .outcome(&w.deliver("push", &w.push("main", gone)).await)
        .await;
    assert!(outcome.contains("has no commit"), "{outcome}");

    // Runs submitted over the API are held to the same prefixes.
    let orders = json!({"orders": [{"name": "x", "cmds": ["true"],
                        "code": {"git": {"url": "file:///etc", "ref": "main"}}}]});
    let (status, body) = w
        .server
        .post("/api/v1/runs", "application/json", orders.to_string())
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("is not allowed"), "{body}");

    // Concurrency: a newer push to main cancels the older run still going.
    let slow = w.repo.commit("main", &[("app.txt", "ok slow\n")]);
    let first = w
        .outcome(&w.deliver("push", &w.push("main", &slow)).await)
        .await;
    let first = first.strip_prefix("started run ").unwrap().to_string();
    w.server
        .wait_run(&first, 30, |r| job(r, "test")["status"] == "running")
        .await;
    let fast = w.repo.commit("main", &[("app.txt", "ok fast\n")]);
    let second = w
        .run_of(&w.deliver("push", &w.push("main", &fast)).await)
        .await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let first = w.server.wait_finished(&first, 30).await;
    assert_eq!(first["status"], "cancelled", "{first}");
    let (_, audit) = w
        .server
        .get(&format!(
            "/api/v1/runs/{}/events",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert!(audit.to_string().contains("superseded by run"), "{audit}");
    assert!(!common::alive("sleep 3931"));
}

#[tokio::test]
async fn a_delivery_stored_before_a_crash_is_decided_after_the_restart() {
    let mut w = World::start().await;
    let sha = w
        .repo
        .commit("main", &[(".gantry.yml", PIPELINE), ("app.txt", "ok\n")]);
    // GitHub is down: the pipeline cannot read the file and keeps retrying.
    for _ in 0..200 {
        w.github.fail_next(502, None);
    }
    let event = w.deliver("push", &w.push("main", &sha)).await;
    common::wait_until(10, "the pipeline tried to read its file", || {
        w.github
            .lock()
            .calls
            .iter()
            .any(|c| c.starts_with("GET /repos/acme/web/contents/"))
    })
    .await;
    w.server.kill9().await;
    w.github.lock().fail_next.clear();
    let data = w.server.data_dir.clone();
    w.server = Server::start_with(
        &data,
        &[
            ("GANTRY_GITHUB_WEBHOOK_SECRET", "whsec"),
            ("GANTRY_GITHUB_TOKEN", "gh-pat"),
            ("GANTRY_GITHUB_API_URL", &w.github.url),
            (
                "GANTRY_GIT_ALLOWED_URL_PREFIXES",
                &format!("{}/git/", w.github.url),
            ),
        ],
    )
    .await;
    let run = w.run_of(&event).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

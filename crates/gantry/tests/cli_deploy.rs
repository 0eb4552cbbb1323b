//! `gantry deploy` (the real binary) against a real `gantry serve`, without AWS: a repository
//! outside the allowlist refused with the server's message; `deploy list` of an empty server;
//! `deploy status` of no session; a deploy of a repository with nothing deployable in it,
//! followed with `--wait` to its failure; a branch that is not there, and a repository host
//! that does not answer, refused before anything starts; a test request missing its target.

#[path = "common/cli.rs"]
mod cli;
mod common;
#[path = "common/deployer.rs"]
mod deployer;

use cli::gantry;
use common::{Server, gantry_bin};
use gantry_github::fake::FakeGitHub;
use serde_json::Value;

/// Where the allowed repositories are: nothing listens there, so a checkout fails at once.
const ALLOWED: &str = "http://127.0.0.1:9/git/";

async fn server(dir: &std::path::Path) -> Server {
    Server::start_with(
        &dir.join("data"),
        &[("GANTRY_GIT_ALLOWED_URL_PREFIXES", ALLOWED)],
    )
    .await
}

#[tokio::test]
async fn a_repository_outside_the_allowlist_is_refused_with_the_servers_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let out = gantry(
        &server,
        &[
            "deploy",
            "https://github.com/acme/app",
            "--branch",
            "main",
            "--wait",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("is not allowed"), "{}", out.stderr);
    assert!(out.stderr.contains(ALLOWED), "{}", out.stderr);
    // Nothing was started.
    let (status, body) = server.get("/deployments").await;
    assert_eq!(status, 200);
    assert_eq!(body["deployments"], serde_json::json!([]));

    // A request the server checks (a bad branch name) names its problem the same way.
    let repo = format!("{ALLOWED}acme/app.git");
    let out = gantry(&server, &["deploy", &repo, "--branch", "a..b"]).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("branch"), "{}", out.stderr);

    // An allowed repository whose host does not answer: the branch cannot be looked up, so
    // nothing starts, and the server says why (a 502: it may answer later).
    let out = gantry(&server, &["deploy", &repo, "--branch", "main"]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("cannot ask"), "{}", out.stderr);
    let (_, body) = server.get("/deployments").await;
    assert_eq!(body["deployments"], serde_json::json!([]));
}

#[tokio::test]
async fn list_of_an_empty_server_and_status_of_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;

    let out = gantry(&server, &["deploy", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    for col in [
        "SESSION",
        "STATUS",
        "REPOSITORY",
        "BRANCH",
        "IAC",
        "CREATED",
    ] {
        assert!(lines[0].contains(col), "{}", lines[0]);
    }

    let out = gantry(&server, &["deploy", "list", "--json", "--status", "failed"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(body["deployments"], serde_json::json!([]));
    assert!(body["next"].is_null(), "{body}");

    let out = gantry(&server, &["deploy", "status", "NOSUCH"]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("no session"), "{}", out.stderr);
    assert!(out.stderr.contains("NOSUCH"), "{}", out.stderr);

    // The test command needs its target; clap says so before anything is sent.
    let out = gantry(&server, &["deploy", "test"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--stack-name"), "{}", out.stderr);
}

#[tokio::test]
async fn a_deploy_with_nothing_to_deploy_is_followed_to_its_failure() {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGitHub::start("unused").await;
    github.serve_git(&dir.path().join("git"));
    deployer::repository(dir.path(), "app", &[("README.md", "# docs only\n")]);
    let allowed = format!("{}/git/", github.url);
    let server = deployer::deployer(&dir.path().join("data"), Vec::new(), &allowed).await;
    let repo = github.clone_url("acme/app");

    // A branch the repository does not have: refused, nothing started.
    let out = gantry(&server, &["deploy", &repo, "--branch", "nope"]).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("has no branch `nope`"),
        "{}",
        out.stderr
    );
    let (_, body) = server.get("/deployments").await;
    assert_eq!(body["deployments"], serde_json::json!([]));

    let out = gantry(
        &server,
        &[
            "deploy",
            &repo,
            "--branch",
            "main",
            "--stack-name",
            "cli-app",
            "--wait",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let id = out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("session "))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_string();
    // Log lines as `TIMESTAMP message`.
    let logged: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| {
            l.split_once(' ')
                .is_some_and(|(t, _)| chrono::DateTime::parse_from_rfc3339(t).is_ok())
        })
        .collect();
    assert!(!logged.is_empty(), "{}", out.stdout);
    assert!(out.stdout.contains("status      failed"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("repository  {repo}@main")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("stack       cli-app"), "{}", out.stdout);
    assert!(out.stdout.contains("\nerror       "), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("session {id} failed: ")),
        "{}",
        out.stderr
    );

    // The session is listed, and read back as text and as the API's JSON.
    let out = gantry(&server, &["deploy", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let row = out.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with(&id), "{}", out.stdout);
    assert!(row.contains("failed") && row.contains("main"), "{row}");

    let out = gantry(&server, &["deploy", "status", &id]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("status      failed"), "{}", out.stdout);
    assert!(out.stdout.contains("error       "), "{}", out.stdout);

    let out = gantry(&server, &["deploy", "status", &id, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(s["sessionId"], id.as_str());
    assert_eq!(s["status"], "failed");
    assert_eq!(s["stackName"], "cli-app");
    assert!(s["error"].is_string(), "{s}");
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("no infrastructure-as-code found"), "{s}");
    assert!(!s["logs"].as_array().unwrap().is_empty(), "{s}");

    // Without --wait: the session id alone.
    let out = gantry(&server, &["deploy", &repo, "--branch", "main"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert_ne!(out.stdout.trim(), id);
}

#[tokio::test]
async fn deploy_help_shows_both_forms() {
    let out = std::process::Command::new(gantry_bin())
        .args(["deploy", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "gantry deploy [OPTIONS] --branch <BRANCH> <REPOSITORY>",
        "status",
        "list",
        "test",
        "--stack-name",
        "--wait",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

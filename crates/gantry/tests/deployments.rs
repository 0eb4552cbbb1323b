//! The deployer end to end: a SAM app in a repository served by the fake git server, deployed
//! through `POST /deploy` to the AWS emulator (moto behind the SAM-transform proxy) by a real
//! server, its status, logs and resources read back; sanity tests through `POST /test`; bad
//! requests refused with the problem named and nothing started.

mod common;
#[path = "common/deployer.rs"]
mod deployer;
#[path = "common/moto.rs"]
mod moto;

use common::{Server, eventually};
use deployer::{deploy, deployer, finished, repository};
use gantry_github::fake::FakeGitHub;
use serde_json::{Value, json};

const SAM: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.handler
      Runtime: python3.12
Outputs:
  HelloArn:
    Value: !GetAtt HelloFunction.Arn
"#;

#[tokio::test]
async fn a_sam_app_is_deployed_through_the_api_and_its_sanity_tests_pass() {
    let emulator = moto::Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGitHub::start("unused").await;
    github.serve_git(&dir.path().join("git"));
    let commit = repository(
        dir.path(),
        "sam-app",
        &[
            ("template.yaml", SAM),
            (
                "hello/app.py",
                "def handler(event, context):\n    return {}\n",
            ),
        ],
    );
    let allowed = format!("{}/git/", github.url);
    let server = deployer(&dir.path().join("data"), emulator.env(), &allowed).await;
    let repo = format!("{}/git/acme/sam-app.git", github.url);
    let id = deploy(&server, &repo).await;
    let s = finished(&server, &format!("/status/{id}")).await;
    assert_eq!(
        s["status"],
        "succeeded",
        "{s:#}\n{}",
        emulator.stderr_text()
    );
    assert_eq!(s["iacType"], "sam");
    assert_eq!(s["commit"], commit.as_str());
    assert_eq!(s["branch"], "main");
    assert_eq!(s["stackName"], "gantry-sam-app-main");
    assert!(
        s["deployedResources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "AWS::Lambda::Function" && r["logicalId"] == "HelloFunction"),
        "{s:#}"
    );
    assert!(
        s["outputs"]["HelloArn"]
            .as_str()
            .unwrap()
            .contains(":function:")
    );
    let logs = s["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["message"].as_str().unwrap().starts_with("detected SAM")),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .all(|l| l["timestamp"].as_str().unwrap().ends_with('Z'))
    );
    // The same under /api/v1, and in the list.
    let (_, same) = server.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(same["sessionId"], id.as_str());
    let (_, list) = server.get("/deployments?status=succeeded").await;
    assert_eq!(list["deployments"][0]["sessionId"], id.as_str());
    let (_, none) = server.get("/deployments?status=failed").await;
    assert!(none["deployments"].as_array().unwrap().is_empty());

    // Sanity tests of the stack: the function invoked, the role skipped.
    let (status, body) = server
        .post(
            "/test",
            "application/json",
            json!({"repository": repo, "branch": "main", "commit": commit, "stackName": "gantry-sam-app-main"})
                .to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let tid = body["sessionId"].as_str().unwrap().to_string();
    let t = finished(&server, &format!("/test-status/{tid}")).await;
    assert_eq!(t["status"], "succeeded", "{t:#}");
    let results = t["testResults"].as_array().unwrap();
    let invoke = results
        .iter()
        .find(|r| r["name"] == "invoke HelloFunction")
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(invoke["status"], "pass");
    assert!(invoke["durationMs"].is_u64());
    assert!(results.iter().any(|r| r["status"] == "skip"), "{t:#}");

    // A handler that raises: the session fails, the test says why.
    let function = s["deployedResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "AWS::Lambda::Function")
        .unwrap()["physicalId"]
        .as_str()
        .unwrap()
        .to_string();
    emulator
        .fail_function(&function, "ZeroDivisionError: division by zero", true)
        .await;
    let (_, body) = server
        .post(
            "/test",
            "application/json",
            json!({"stackName": "gantry-sam-app-main"}).to_string(),
        )
        .await;
    let t = finished(
        &server,
        &format!("/test-status/{}", body["sessionId"].as_str().unwrap()),
    )
    .await;
    assert_eq!(t["status"], "failed", "{t:#}");
    let invoke = t["testResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "invoke HelloFunction")
        .unwrap()
        .clone();
    assert_eq!(invoke["status"], "fail");
    assert!(
        invoke["error"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{invoke}"
    );
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_problem_and_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[(
            "GANTRY_GIT_ALLOWED_URL_PREFIXES",
            "https://github.com/acme/",
        )],
    )
    .await;
    let cases = [
        (
            "/deploy",
            json!({"repository": "https://github.com/evil/x", "branch": "main"}).to_string(),
            "https://github.com/evil/x",
        ),
        ("/deploy", "{not json".to_string(), "not a valid request"),
        (
            "/deploy",
            json!({"repository": "https://github.com/acme/x", "branch": "a b"}).to_string(),
            "branch `a b`",
        ),
        (
            "/deploy",
            json!({"repository": "https://github.com/acme/x", "branch": "main", "colour": 1})
                .to_string(),
            "colour",
        ),
        (
            "/test",
            json!({"region": "eu-west-1"}).to_string(),
            "stackName",
        ),
    ];
    for (path, body, want) in cases {
        let (status, answer) = server.post(path, "application/json", body.clone()).await;
        assert!(
            (400..500).contains(&status),
            "{path} {body}: {status} {answer}"
        );
        assert!(answer.to_string().contains(want), "{path} {body}: {answer}");
    }
    // An oversized body: refused unread (a fresh client: the server closes a connection whose
    // body it did not read).
    for path in ["/deploy", "/test", "/api/v1/deployments"] {
        let big = json!({"repository": "https://github.com/acme/x", "branch": "x".repeat(100_000)});
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body(big.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_large", "{path}: {body}");
    }
    let (_, runs) = server.get("/api/v1/runs").await;
    assert!(runs["runs"].as_array().unwrap().is_empty(), "{runs}");
    let (status, _) = server.get("/status/01NOSUCHSESSION").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_stack_that_rolls_back_fails_its_session_naming_the_resource() {
    let emulator = moto::Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGitHub::start("unused").await;
    github.serve_git(&dir.path().join("git"));
    let broken = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Runtime: python3.12\n      Handler: app.handler\n      Role: arn:aws:iam::123456789012:role/none\n      Code: {S3Bucket: no-such-bucket, S3Key: code.zip}\n";
    repository(dir.path(), "broken", &[("stack.yaml", broken)]);
    let server = deployer(
        &dir.path().join("data"),
        emulator.env(),
        &format!("{}/git/", github.url),
    )
    .await;
    let id = deploy(&server, &format!("{}/git/acme/broken.git", github.url)).await;
    let s = finished(&server, &format!("/status/{id}")).await;
    assert_eq!(s["status"], "failed", "{s:#}");
    assert_eq!(s["iacType"], Value::Null, "{s:#}");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("ROLLBACK_COMPLETE")
            && error.contains("Fn (AWS::Lambda::Function) CREATE_FAILED")
            && error.contains("NoSuchBucket"),
        "{error}"
    );
}

#[tokio::test]
async fn kill_9_during_a_deploy_ends_the_session_with_the_stacks_state_after_restart() {
    let emulator = moto::Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGitHub::start("unused").await;
    github.serve_git(&dir.path().join("git"));
    repository(
        dir.path(),
        "sam-app",
        &[
            ("template.yaml", SAM),
            (
                "hello/app.py",
                "def handler(event, context):\n    return {}\n",
            ),
        ],
    );
    let allowed = format!("{}/git/", github.url);
    let data = dir.path().join("data");
    let mut server = deployer(&data, emulator.env(), &allowed).await;
    let id = deploy(&server, &format!("{}/git/acme/sam-app.git", github.url)).await;
    // Killed once the deploy is under way.
    eventually(60, "the deploy runs", async || {
        let (_, s) = server.get(&format!("/status/{id}")).await;
        (s["status"] == "running").then_some(())
    })
    .await;
    server.kill9().await;
    let server = deployer(&data, emulator.env(), &allowed).await;
    let s = finished(&server, &format!("/status/{id}")).await;
    assert_eq!(s["status"], "succeeded", "{s:#}");
    assert_eq!(s["iacType"], "sam");
    assert!(
        s["deployedResources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "AWS::Lambda::Function"),
        "{s:#}"
    );
    let (_, trail) = server.get(&format!("/api/v1/runs/{id}/events")).await;
    assert!(trail.to_string().contains("lost"), "{trail:#}");
}

//! Every kind of repository the deployer knows, served by the fake git server and deployed
//! through `POST /deploy` to the AWS emulator by a real server on a machine without `cdk` or
//! `terraform` (its `PATH` holds git alone): a CloudFormation stack whose bucket, table and URLs
//! are then tested (pass, fail and skip), deployed a second time to update it; a Node and a
//! Python function; CDK and Terraform apps, refused naming the missing tool; a repository with
//! nothing deployable. And what is not there (a branch, a stack, a function) refused at request
//! time, starting nothing.

mod common;
#[path = "common/deployer.rs"]
mod deployer;
#[path = "common/moto.rs"]
mod moto;

use common::Server;
use deployer::{deploy, deployer, finished, push, repository};
use gantry_github::fake::FakeGitHub;
use serde_json::{Value, json};

/// A CloudFormation stack: a bucket, a table, a role, and URLs on the test's HTTP server.
fn cloudformation(http: &str, extra_output: &str) -> String {
    format!(
        r#"AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Site:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: fixture-site
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: fixture-items
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]
      KeySchema: [{{AttributeName: id, KeyType: HASH}}]
  Worker:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement: [{{Effect: Allow, Principal: {{Service: lambda.amazonaws.com}}, Action: 'sts:AssumeRole'}}]
Outputs:
  HealthUrl:
    Value: http://{http}/ok
  DownUrl:
    Value: http://{http}/down
{extra_output}"#
    )
}

/// A `PATH` with git and nothing else on it.
fn git_only_path(dir: &std::path::Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git.trim(), bin.join("git")).unwrap();
    bin.display().to_string()
}

fn result<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["testResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str().unwrap().contains(name))
        .unwrap_or_else(|| panic!("no test of {name}: {t:#}"))
}

fn has_resource(s: &Value, kind: &str, logical: &str) -> bool {
    s["deployedResources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["type"] == kind && r["logicalId"] == logical && r["physicalId"].is_string())
}

async fn test_session(server: &Server, body: Value) -> Value {
    let (status, answer) = server
        .post("/test", "application/json", body.to_string())
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["sessionId"].as_str().unwrap();
    finished(server, &format!("/test-status/{id}")).await
}

#[tokio::test]
async fn every_kind_of_repository_is_deployed_or_refused_through_the_api() {
    let emulator = moto::Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGitHub::start("unused").await;
    github.serve_git(&dir.path().join("git"));
    // What the stack's URL outputs point at: 200 on /ok, 503 on /down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new()
        .route("/ok", axum::routing::get(|| async { "fine" }))
        .route(
            "/down",
            axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no") }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let root = dir.path();
    let fixtures: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "cfn-app",
            vec![("cloudformation.yml", cloudformation(&http, ""))],
        ),
        (
            "node-fn",
            vec![
                (
                    "package.json",
                    r#"{"name": "hello", "version": "1.0.0"}"#.into(),
                ),
                (
                    "index.js",
                    "exports.handler = async () => ({ ok: true });\n".into(),
                ),
            ],
        ),
        (
            "py-fn",
            vec![(
                "lambda_function.py",
                "def lambda_handler(event, context):\n    return {'ok': True}\n".into(),
            )],
        ),
        (
            "cdk-app",
            vec![("cdk.json", r#"{"app": "npx ts-node bin/app.ts"}"#.into())],
        ),
        (
            "tf-app",
            vec![("main.tf", "resource \"aws_s3_bucket\" \"b\" {}\n".into())],
        ),
        ("docs-only", vec![("README.md", "# nothing here\n".into())]),
    ];
    for (name, files) in &fixtures {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        repository(root, name, &files);
    }
    let mut env = emulator.env();
    env.push(("PATH".into(), git_only_path(root)));
    let server = deployer(&root.join("data"), env, &format!("{}/git/", github.url)).await;
    let url = |name: &str| github.clone_url(&format!("acme/{name}"));

    // Refused at request time, nothing started.
    let refusals = [
        (
            "/deploy",
            json!({"repository": url("cfn-app"), "branch": "no-such-branch"}),
            "has no branch `no-such-branch`",
        ),
        (
            "/deploy",
            json!({"repository": url("no-such-repo"), "branch": "main"}),
            "no repository",
        ),
        (
            "/test",
            json!({"stackName": "gantry-never-deployed"}),
            "no stack `gantry-never-deployed`",
        ),
        (
            "/test",
            json!({"functionName": "never-deployed"}),
            "no Lambda function `never-deployed`",
        ),
    ];
    for (path, body, want) in refusals {
        let (status, answer) = server
            .post(path, "application/json", body.to_string())
            .await;
        assert_eq!(status, 422, "{path} {body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(want),
            "{path} {body}: {answer}"
        );
    }
    let (_, runs) = server.get("/api/v1/runs").await;
    assert!(runs["runs"].as_array().unwrap().is_empty(), "{runs}");

    // All six at once.
    let mut sessions = Vec::new();
    for (name, _) in &fixtures {
        sessions.push((*name, deploy(&server, &url(name)).await));
    }
    let mut got = std::collections::HashMap::new();
    for (name, id) in &sessions {
        got.insert(*name, finished(&server, &format!("/status/{id}")).await);
    }
    let cfn = &got["cfn-app"];
    assert_eq!(cfn["status"], "succeeded", "{cfn:#}");
    assert_eq!(cfn["iacType"], "cloudformation");
    assert!(has_resource(cfn, "AWS::S3::Bucket", "Site"), "{cfn:#}");
    assert!(
        has_resource(cfn, "AWS::DynamoDB::Table", "Items"),
        "{cfn:#}"
    );
    assert_eq!(cfn["outputs"]["HealthUrl"], format!("http://{http}/ok"));
    for (name, handler) in [
        ("node-fn", "index.handler"),
        ("py-fn", "lambda_function.lambda_handler"),
    ] {
        let s = &got[name];
        assert_eq!(s["status"], "succeeded", "{s:#}");
        assert_eq!(s["iacType"], "lambda", "{s:#}");
        let logs = s["logs"].to_string();
        assert!(logs.contains(handler), "{s:#}");
        assert!(
            s["deployedResources"]
                .to_string()
                .contains("AWS::Lambda::Function"),
            "{s:#}"
        );
    }
    for (name, why) in [
        ("cdk-app", "`cdk` is not installed"),
        ("tf-app", "`terraform` is not installed"),
        ("docs-only", "no infrastructure-as-code found"),
    ] {
        let s = &got[name];
        assert_eq!(s["status"], "failed", "{s:#}");
        assert!(s["error"].as_str().unwrap().contains(why), "{s:#}");
        assert!(s["logs"].to_string().contains(why), "{s:#}");
    }

    // The stack tested: bucket and table pass, the healthy URL passes, the one answering 503
    // fails (and so the session), the role is skipped saying why.
    let t = test_session(&server, json!({"stackName": "gantry-cfn-app-main"})).await;
    assert_eq!(t["status"], "failed", "{t:#}");
    assert_eq!(result(&t, "Site")["status"], "pass", "{t:#}");
    assert_eq!(result(&t, "Items")["status"], "pass", "{t:#}");
    assert_eq!(result(&t, "HealthUrl")["status"], "pass", "{t:#}");
    let down = result(&t, "DownUrl");
    assert_eq!(down["status"], "fail", "{t:#}");
    assert!(down["error"].as_str().unwrap().contains("503"), "{down}");
    let role = result(&t, "Worker");
    assert_eq!(role["status"], "skip", "{t:#}");
    assert!(role["error"].as_str().unwrap().contains("IAM"), "{role}");
    // A plain function, by name.
    let t = test_session(&server, json!({"functionName": "gantry-node-fn-main"})).await;
    assert_eq!(t["status"], "succeeded", "{t:#}");
    assert_eq!(t["testResults"][0]["status"], "pass", "{t:#}");

    // A second deploy of the branch updates the stack.
    let second = push(
        root,
        "cfn-app",
        &[(
            "cloudformation.yml",
            &cloudformation(&http, "  Release:\n    Value: second\n"),
        )],
    );
    let id = deploy(&server, &url("cfn-app")).await;
    let s = finished(&server, &format!("/status/{id}")).await;
    assert_eq!(s["status"], "succeeded", "{s:#}");
    assert_eq!(s["commit"], second.as_str());
    assert_eq!(s["outputs"]["Release"], "second", "{s:#}");
    assert!(s["logs"].to_string().contains("existing stack"), "{s:#}");
    assert_ne!(s["sessionId"], cfn["sessionId"]);
}

//! Remote job executors end to end: a `gantry serve` with `[executors.ecs]` runs an
//! `executor: ecs` job as an ECS task on the AWS emulator (moto's server behind
//! `scripts/aws/emulator.py`); the test stands in for the task's worker (moto's tasks never
//! run) and reports through the callback URL the task was given, over HTTP to the server's
//! route; the replay is refused. A lambda job longer than Lambda's 15 minutes is refused at
//! submit, naming the limit.

mod common;
#[path = "common/moto.rs"]
mod moto;

use common::{Server, eventually, job};
use serde_json::{Value, json};

/// One call of ECS's JSON API through the emulator.
async fn ecs(e: &moto::Emulator, action: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(&e.url)
        .header("Authorization", moto::fake_authorization("ecs"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "X-Amz-Target",
            format!("AmazonEC2ContainerServiceV20141113.{action}"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{action}: {}", resp.status());
    resp.json().await.unwrap()
}

#[tokio::test]
async fn an_ecs_job_runs_as_a_task_and_reports_through_its_callback() {
    let e = moto::Emulator::start();
    ecs(&e, "CreateCluster", json!({"clusterName": "jobs"})).await;
    // moto needs `memory` on each container definition.
    let def = json!({"family": "runner", "containerDefinitions": [
        {"name": "main", "image": "alpine:3", "memory": 128, "essential": true}]});
    ecs(&e, "RegisterTaskDefinition", def).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gantry.toml");
    std::fs::write(
        &config,
        "public_url = \"http://gantry.example\"\n\n[executors]\npoll = \"100ms\"\n\n[executors.ecs]\ncluster = \"jobs\"\ntask_definition = \"runner\"\ncontainer = \"main\"\nsubnets = [\"subnet-0a1b2c\"]\n",
    )
    .unwrap();
    let mut env = e.env();
    env.push(("GANTRY_CONFIG".into(), config.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(&dir.path().join("data"), &env).await;

    let (status, body) = server
        .post(
            "/api/v1/runs",
            "application/yaml",
            "jobs:\n  quick:\n    executor: lambda\n    timeout: 20m\n    run: [make]\n",
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("at most 15m (Lambda's limit)"),
        "{body}"
    );

    let run = server
        .submit_yaml("jobs:\n  test:\n    executor: ecs\n    run: [make test]\n")
        .await;
    // The task as its worker would see it: the callback URL in its environment.
    let url = eventually(20, "the job's task started", async || {
        let arns = ecs(&e, "ListTasks", json!({"cluster": "jobs"})).await;
        let arn = arns["taskArns"].as_array()?.first()?.clone();
        let tasks = ecs(
            &e,
            "DescribeTasks",
            json!({"cluster": "jobs", "tasks": [arn]}),
        )
        .await;
        tasks["tasks"][0]["overrides"]["containerOverrides"][0]["environment"]
            .as_array()?
            .iter()
            .find(|kv| kv["name"] == "GANTRY_CALLBACK_URL")
            .and_then(|kv| kv["value"].as_str().map(str::to_string))
    })
    .await;
    let path = url
        .strip_prefix("http://gantry.example")
        .expect(&url)
        .to_string();
    let (status, body) = server
        .post(&path, "application/json", r#"{"exit_code": 0}"#)
        .await;
    assert_eq!(status, 204, "{body}");
    let done = server.wait_finished(&run, 20).await;
    assert_eq!(job(&done, "test")["status"], "succeeded", "{done}");
    let log = server.job_log(&run, "test").await;
    assert!(log.contains("started ECS task"), "{log}");
    assert!(log.contains("reported through its callback"), "{log}");
    // The token is used once.
    let (status, body) = server
        .post(&path, "application/json", r#"{"exit_code": 0}"#)
        .await;
    assert_eq!(status, 409, "{body}");
}

//! Remote job executors end to end: a `gantry serve` with `[executors.ecs]` runs an
//! `executor: ecs` job as an ECS task on the AWS emulator (moto's server behind
//! `scripts/aws/emulator.py`); the test stands in for the task's worker (moto's tasks never
//! run) and reports through the callback URL the task was given, over HTTP to the server's
//! route; the replay is refused. A lambda job longer than Lambda's 15 minutes is refused at
//! submit, naming the limit; a job of an executor the server was not given fails saying so.

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

/// A cluster `jobs` with task definition `runner`, and a server whose gantry.toml runs ecs
/// jobs there.
async fn setup(e: &moto::Emulator, dir: &std::path::Path) -> Server {
    ecs(e, "CreateCluster", json!({"clusterName": "jobs"})).await;
    // moto needs `memory` on each container definition.
    let def = json!({"family": "runner", "containerDefinitions": [
        {"name": "main", "image": "alpine:3", "memory": 128, "essential": true}]});
    ecs(e, "RegisterTaskDefinition", def).await;
    start(e, dir).await
}

async fn start(e: &moto::Emulator, dir: &std::path::Path) -> Server {
    let config = dir.join("gantry.toml");
    std::fs::write(
        &config,
        "public_url = \"http://gantry.example\"\n\n[executors]\npoll = \"100ms\"\n\n[executors.ecs]\ncluster = \"jobs\"\ntask_definition = \"runner\"\ncontainer = \"main\"\nsubnets = [\"subnet-0a1b2c\"]\n",
    )
    .unwrap();
    let mut env = e.env();
    env.push(("GANTRY_CONFIG".into(), config.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with(&dir.join("data"), &env).await
}

/// The cluster's tasks, oldest first, with their tags.
async fn tasks(e: &moto::Emulator) -> Vec<Value> {
    let arns = ecs(e, "ListTasks", json!({"cluster": "jobs"})).await;
    let arns = arns["taskArns"].as_array().cloned().unwrap_or_default();
    if arns.is_empty() {
        return vec![];
    }
    let body = json!({"cluster": "jobs", "tasks": arns, "include": ["TAGS"]});
    let mut tasks = ecs(e, "DescribeTasks", body).await["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    tasks.sort_by_key(|t| t["createdAt"].as_f64().map(|c| (c * 1000.0) as i64));
    tasks
}

fn tag<'a>(task: &'a Value, key: &str) -> Option<&'a str> {
    task["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"].as_str()
}

fn callback_path(task: &Value) -> Option<String> {
    task["overrides"]["containerOverrides"][0]["environment"]
        .as_array()?
        .iter()
        .find(|kv| kv["name"] == "GANTRY_CALLBACK_URL")?["value"]
        .as_str()?
        .strip_prefix("http://gantry.example")
        .map(str::to_string)
}

#[tokio::test]
async fn an_ecs_job_runs_as_a_task_and_reports_through_its_callback() {
    let e = moto::Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let server = setup(&e, dir.path()).await;

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
    let path = eventually(20, "the job's task started", async || {
        callback_path(tasks(&e).await.first()?)
    })
    .await;
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
    // An executor the server was not given: the job fails saying what is missing.
    let run = server
        .submit_yaml("jobs:\n  build:\n    executor: codebuild\n    run: [make]\n")
        .await;
    let done = server.wait_finished(&run, 20).await;
    assert_eq!(job(&done, "build")["status"], "failed", "{done}");
    let log = server.job_log(&run, "build").await;
    assert!(
        log.contains("no `codebuild` executor here: the server needs [executors.codebuild]"),
        "{log}"
    );
}

#[tokio::test]
async fn after_a_crash_the_running_task_is_stopped_before_the_job_runs_again() {
    let e = moto::Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = setup(&e, dir.path()).await;
    let run = server
        .submit_yaml("jobs:\n  test:\n    executor: ecs\n    run: [make test]\n")
        .await;
    eventually(20, "the job's task started", async || {
        tasks(&e).await.first().cloned()
    })
    .await;
    // The server dies while the task runs (moto's tasks run until stopped, as on AWS).
    server.kill9().await;
    assert_eq!(tasks(&e).await[0]["lastStatus"], "RUNNING");
    let server = start(&e, dir.path()).await;
    // Its next life stops the task it left, and only then runs the attempt again: one task
    // at a time, the second tagged as attempt 2.
    let second = eventually(20, "the job's second task started", async || {
        let t = tasks(&e).await;
        (t.len() == 2).then_some(t)
    })
    .await;
    assert_eq!(second[0]["lastStatus"], "STOPPED", "{second:#?}");
    assert!(
        second[0]["stoppedReason"]
            .as_str()
            .unwrap()
            .contains("earlier life"),
        "{second:#?}"
    );
    assert_eq!(tag(&second[0], "gantry:attempt"), Some("1"));
    assert_eq!(tag(&second[1], "gantry:attempt"), Some("2"));
    assert_eq!(tag(&second[1], "gantry:run"), Some(run.as_str()));
    let path = callback_path(&second[1]).unwrap();
    let (status, body) = server
        .post(&path, "application/json", r#"{"exit_code": 0}"#)
        .await;
    assert_eq!(status, 204, "{body}");
    let done = server.wait_finished(&run, 20).await;
    assert_eq!(job(&done, "test")["status"], "succeeded", "{done}");
    assert_eq!(tasks(&e).await.len(), 2, "never a third");
}

#![allow(dead_code)]
//! What the job executors' tests share: an in-memory agents' queue (the callback's
//! compare-and-set as the store does it), an attempt's launch, the emulator's test endpoints,
//! and the AWS resources a job needs (a cluster and task definition, a project, a function).

#[path = "../../../gantry/tests/common/moto.rs"]
pub mod moto;

use async_trait::async_trait;
use gantry_aws::Aws;
use gantry_aws::jobs::Remote;
use gantry_engine::agents::Agents;
use gantry_engine::logs::Logs;
use gantry_engine::ports::{
    AgentQueue, AgentRecord, AgentToken, CancelSignal, Launch, QueueState, QueuedJob, StoreResult,
};
use moto::Emulator;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
pub const PUBLIC: &str = "http://gantry.test";

/// The queue's entries in memory, with the store's compare-and-set semantics.
#[derive(Default)]
pub struct MemQueue(Mutex<HashMap<String, QueuedJob>>);

#[async_trait]
impl AgentQueue for MemQueue {
    async fn create_token(&self, _: &str, _: &[u8], _: i64) -> StoreResult<bool> {
        Ok(false)
    }
    async fn token_hashes(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        Ok(vec![])
    }
    async fn list_tokens(&self) -> StoreResult<Vec<AgentToken>> {
        Ok(vec![])
    }
    async fn revoke_token(&self, _: &str) -> StoreResult<bool> {
        Ok(false)
    }
    async fn touch_token(&self, _: &str, _: i64) -> StoreResult<()> {
        Ok(())
    }
    async fn put_agent(&self, _: &AgentRecord) -> StoreResult<()> {
        Ok(())
    }
    async fn list_agents(&self) -> StoreResult<Vec<AgentRecord>> {
        Ok(vec![])
    }
    async fn touch_agent(&self, _: &str, _: i64) -> StoreResult<()> {
        Ok(())
    }
    async fn enqueue(&self, job: &QueuedJob) -> StoreResult<()> {
        self.0.lock().unwrap().insert(job.id.clone(), job.clone());
        Ok(())
    }
    async fn get(&self, id: &str) -> StoreResult<Option<QueuedJob>> {
        Ok(self.0.lock().unwrap().get(id).cloned())
    }
    async fn find(&self, run_id: &str, job: &str, attempt: u32) -> StoreResult<Option<QueuedJob>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .find(|q| q.run_id == run_id && q.job == job && q.attempt == attempt)
            .cloned())
    }
    async fn open(&self, _: u32) -> StoreResult<Vec<QueuedJob>> {
        Ok(vec![])
    }
    async fn take(&self, _: &str, _: &str, _: i64) -> StoreResult<bool> {
        Ok(false)
    }
    async fn renew(&self, _: &str, _: &str, _: i64) -> StoreResult<Option<bool>> {
        Ok(None)
    }
    async fn finish(
        &self,
        id: &str,
        from: QueueState,
        to: QueueState,
        result: Option<&str>,
    ) -> StoreResult<bool> {
        let mut q = self.0.lock().unwrap();
        match q.get_mut(id) {
            Some(e) if e.state == from => {
                e.state = to;
                e.result = result.map(str::to_string);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn expire(&self, _: &str, _: i64) -> StoreResult<bool> {
        Ok(false)
    }
    async fn request_cancel(&self, _: &str) -> StoreResult<()> {
        Ok(())
    }
    async fn abandon_open(&self, _: &str, _: i64) -> StoreResult<u64> {
        Ok(0)
    }
    async fn sweep(&self, _: i64) -> StoreResult<u64> {
        Ok(0)
    }
}

pub fn agents() -> Arc<Agents> {
    Agents::new(Arc::new(MemQueue::default()), KEY.to_vec(), 60_000, None)
}

pub async fn aws(e: &Emulator) -> Aws {
    Aws::at_endpoint(&e.url, moto::REGION, "testing", "testing").await
}

/// A remote executor's base: quick polls, callbacks through `agents`, instance `owner`.
pub fn remote(aws: &Aws, agents: &Arc<Agents>, owner: &str) -> Remote {
    Remote {
        aws: aws.clone(),
        agents: Some(agents.clone()),
        public_url: Some(PUBLIC.into()),
        owner: owner.into(),
        poll: Duration::from_millis(50),
    }
}

pub fn launch(dir: &Path, run: &str, commands: &[&str], timeout_ms: u64) -> Launch {
    Launch {
        run_id: run.into(),
        job: "build".into(),
        attempt: 1,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        commands: commands.iter().map(|c| c.to_string()).collect(),
        env: vec![("GANTRY_RUN_ID".into(), run.into())],
        timeout_ms,
        workspace: dir.join("ws"),
        log: Logs::new(dir.join("logs")).attempt(run, "build", 1),
        image: None,
        secrets: vec![],
        checkout: None,
        notes: vec![],
        container: None,
        aws: None,
        artifacts: Default::default(),
        cache: None,
    }
}

pub fn cancel_signal() -> (watch::Sender<bool>, CancelSignal) {
    let (tx, rx) = watch::channel(false);
    (tx, CancelSignal(rx))
}

pub fn log_text(l: &Launch) -> String {
    String::from_utf8_lossy(&l.log.contents().unwrap()).into_owned()
}

async fn emulator_post(e: &Emulator, path: &str, body: Value) {
    let status = reqwest::Client::new()
        .post(format!("{}{path}", e.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 201, "{path}");
}

/// The next RunTask's task follows `statuses`, one per DescribeTasks.
pub async fn script_task(e: &Emulator, statuses: &[&str], exit_code: i32, reason: &str) {
    let body = json!({"statuses": statuses, "exit_code": exit_code, "stopped_reason": reason});
    emulator_post(e, "/_emulator/ecs-tasks", body).await;
}

/// The next `times` requests of `service`'s `action` get AWS's error `code`.
pub async fn fault(e: &Emulator, service: &str, action: &str, code: &str, times: i32) {
    let body = json!({"service": service, "action": action, "status": 400, "code": code,
        "message": format!("{code} (injected)"), "times": times});
    emulator_post(e, "/_emulator/faults", body).await;
}

/// A cluster `jobs` with task definition `runner` (container `main`), and log group
/// `/ecs/runner`.
pub async fn ecs_setup(aws: &Aws) {
    use aws_sdk_ecs::types::ContainerDefinition;
    aws.ecs
        .create_cluster()
        .cluster_name("jobs")
        .send()
        .await
        .unwrap();
    aws.ecs
        .register_task_definition()
        .family("runner")
        .container_definitions(
            // moto needs `memory` on each container definition.
            ContainerDefinition::builder()
                .name("main")
                .image("alpine:3")
                .memory(128)
                .essential(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.logs
        .create_log_group()
        .log_group_name("/ecs/runner")
        .send()
        .await
        .unwrap();
}

pub fn ecs_def() -> gantry_core::remote::EcsDef {
    gantry_core::remote::EcsDef {
        cluster: "jobs".into(),
        task_definition: "runner".into(),
        container: "main".into(),
        subnets: vec!["subnet-0a1b2c".into()],
        security_groups: vec![],
        assign_public_ip: false,
        launch_type: "FARGATE".into(),
        log_group: Some("/ecs/runner".into()),
        log_stream_prefix: Some("jobs".into()),
        region: None,
    }
}

/// The cluster's tasks (any status).
pub async fn tasks(aws: &Aws) -> Vec<aws_sdk_ecs::types::Task> {
    let arns = aws
        .ecs
        .list_tasks()
        .cluster("jobs")
        .send()
        .await
        .unwrap()
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return vec![];
    }
    aws.ecs
        .describe_tasks()
        .cluster("jobs")
        .set_tasks(Some(arns))
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .unwrap()
        .tasks()
        .to_vec()
}

/// Waits (5 s at most) for the cluster's first task.
pub async fn first_task(aws: &Aws) -> aws_sdk_ecs::types::Task {
    for _ in 0..500 {
        if let Some(t) = tasks(aws).await.into_iter().next() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no task started");
}

/// The environment RunTask gave the task's container, as the worker sees it.
pub fn task_env(t: &aws_sdk_ecs::types::Task) -> HashMap<String, String> {
    t.overrides()
        .map(|o| o.container_overrides().to_vec())
        .unwrap_or_default()
        .iter()
        .flat_map(|c| c.environment().to_vec())
        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
        .collect()
}

/// The token of a callback URL.
pub fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

/// The next build StartBuild starts shows `phases` one per BatchGetBuilds, then ends with
/// `status` (or, with `hold`, runs until stopped).
pub async fn script_build(e: &Emulator, phases: &[(&str, &str)], status: &str, hold: bool) {
    let body = json!({"phases": phases, "status": status, "hold": hold});
    emulator_post(e, "/_emulator/codebuild-builds", body).await;
}

/// A CodeBuild project `ci` (moto checks the role's form only).
pub async fn codebuild_setup(aws: &Aws) {
    use aws_sdk_codebuild::types::*;
    aws.codebuild
        .create_project()
        .name("ci")
        .source(
            ProjectSource::builder()
                .r#type(SourceType::NoSource)
                .location("none")
                .build()
                .unwrap(),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .unwrap(),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role(format!("arn:aws:iam::{}:role/codebuild", moto::ACCOUNT))
        .send()
        .await
        .unwrap();
    aws.logs
        .create_log_group()
        .log_group_name("/aws/codebuild/ci")
        .send()
        .await
        .unwrap();
}

/// The project's builds, newest first.
pub async fn builds(aws: &Aws) -> Vec<aws_sdk_codebuild::types::Build> {
    let ids = aws
        .codebuild
        .list_builds_for_project()
        .project_name("ci")
        .send()
        .await
        .unwrap()
        .ids()
        .to_vec();
    if ids.is_empty() {
        return vec![];
    }
    aws.codebuild
        .batch_get_builds()
        .set_ids(Some(ids))
        .send()
        .await
        .unwrap()
        .builds()
        .to_vec()
}

/// Waits (5 s at most) for the project's first build: its id and variables.
pub async fn first_build(aws: &Aws) -> (String, HashMap<String, String>) {
    for _ in 0..500 {
        if let Some(b) = builds(aws).await.into_iter().next() {
            let vars = b
                .environment()
                .map(|e| {
                    e.environment_variables()
                        .iter()
                        .map(|v| (v.name().to_string(), v.value().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            return (b.id().unwrap().to_string(), vars);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no build started");
}

/// Writes `line` into a CloudWatch Logs stream (made if missing), as a worker's log driver.
pub async fn put_log(aws: &Aws, group: &str, stream: &str, line: &str) {
    let _ = aws
        .logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
        .timestamp(chrono::Utc::now().timestamp_millis())
        .message(line)
        .build()
        .unwrap();
    aws.logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .log_events(event)
        .send()
        .await
        .unwrap();
}

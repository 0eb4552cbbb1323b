//! `executor: ecs`: an attempt is one ECS task of `[executors.ecs]`'s task definition, the
//! job's commands as the command (`sh -c SCRIPT`) of its container, its environment as the
//! container's overrides. The task is tagged with the attempt (run, job, attempt, instance)
//! and started by this instance, with an idempotency token of the attempt; its end is the
//! worker's callback or, without one, the container's exit code (DescribeTasks), whichever
//! comes first. Cancel and timeout stop the task; at start, tasks an earlier life left
//! running are found by their tags and stopped (the attempt is recovered as lost and runs
//! again, once).

use super::{
    LogTail, Remote, Wait, close_stopped, environment, note_once, reported, settle, wait_turn,
};
use crate::AwsError;
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, Tag, TaskField, TaskOverride,
};
use gantry_core::dag::Outcome;
use gantry_core::remote::{AttemptTags, EcsDef, script, task_outcome};
use gantry_engine::ports::{CancelSignal, Executor, Launch};

pub struct EcsExecutor {
    remote: Remote,
    def: EcsDef,
}

impl EcsExecutor {
    pub fn new(remote: Remote, def: EcsDef) -> EcsExecutor {
        EcsExecutor { remote, def }
    }

    /// `startedBy` of this instance's tasks (ECS takes at most 36 characters).
    fn started_by(&self) -> String {
        self.remote
            .owner
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
            .take(36)
            .collect()
    }

    async fn run_task(
        &self,
        launch: &Launch,
        env: Vec<(String, String)>,
        tags: &AttemptTags,
    ) -> Result<(String, String), AwsError> {
        let d = &self.def;
        let container = ContainerOverride::builder()
            .name(&d.container)
            .command("sh")
            .command("-c")
            .command(script(&launch.commands))
            .set_environment(Some(
                env.into_iter()
                    .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                    .collect(),
            ))
            .build();
        let mut req = self
            .remote
            .aws
            .ecs
            .run_task()
            .cluster(&d.cluster)
            .task_definition(&d.task_definition)
            .count(1)
            .launch_type(LaunchType::from(d.launch_type.as_str()))
            .started_by(self.started_by())
            .client_token(tags.idempotency_token())
            .overrides(
                TaskOverride::builder()
                    .container_overrides(container)
                    .build(),
            )
            .set_tags(Some(
                tags.pairs()
                    .into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ));
        if !d.subnets.is_empty() {
            let vpc = AwsVpcConfiguration::builder()
                .set_subnets(Some(d.subnets.clone()))
                .set_security_groups(Some(d.security_groups.clone()))
                .assign_public_ip(if d.assign_public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .map_err(|e| AwsError::Failed(format!("the task's network: {e}")))?;
            req = req.network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(vpc)
                    .build(),
            );
        }
        // Paced with the services' RunTask calls: throttled, it waits its turn and goes again.
        let out = self
            .remote
            .aws
            .pacer
            .call("ecs:RunTask", || req.clone().send())
            .await
            .map_err(|e| AwsError::call("RunTask", e))?;
        if let Some(t) = out.tasks().first()
            && let Some(arn) = t.task_arn()
        {
            let status = t.last_status().unwrap_or("PROVISIONING");
            return Ok((arn.to_string(), status.to_string()));
        }
        let why: Vec<String> = out
            .failures()
            .iter()
            .map(|f| {
                format!(
                    "{}{}",
                    f.reason().unwrap_or("no reason"),
                    f.detail().map(|d| format!(" ({d})")).unwrap_or_default()
                )
            })
            .collect();
        Err(AwsError::Failed(format!(
            "RunTask started no task: {}",
            if why.is_empty() {
                "ECS gave no reason".into()
            } else {
                why.join("; ")
            }
        )))
    }

    async fn stop(&self, arn: &str, reason: &str, launch: &Launch) {
        match self
            .remote
            .aws
            .ecs
            .stop_task()
            .cluster(&self.def.cluster)
            .task(arn)
            .reason(reason)
            .send()
            .await
        {
            Ok(_) => launch
                .log
                .note(&format!("gantry: stopped task {arn}: {reason}")),
            Err(e) => launch.log.note(&format!(
                "gantry: cannot stop task {arn}: {}",
                AwsError::call("StopTask", e)
            )),
        }
    }

    fn log_tail(&self, arn: &str) -> Option<LogTail> {
        let group = self.def.log_group.clone()?;
        let id = arn.rsplit('/').next().unwrap_or(arn);
        let stream = match &self.def.log_stream_prefix {
            Some(p) => format!("{p}/{}/{id}", self.def.container),
            None => format!("{}/{id}", self.def.container),
        };
        Some(LogTail::new(group, stream))
    }
}

/// A task as one DescribeTasks shows it.
struct Seen {
    status: String,
    exit_code: Option<i32>,
    stop_code: Option<String>,
    reason: String,
}

impl EcsExecutor {
    async fn describe(&self, arn: &str) -> Result<Option<Seen>, AwsError> {
        let out = self
            .remote
            .aws
            .ecs
            .describe_tasks()
            .cluster(&self.def.cluster)
            .tasks(arn)
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeTasks", e))?;
        Ok(out.tasks().first().map(|t| Seen {
            status: t.last_status().unwrap_or("UNKNOWN").to_string(),
            exit_code: t
                .containers()
                .iter()
                .find(|c| c.name() == Some(self.def.container.as_str()))
                .and_then(|c| c.exit_code()),
            stop_code: t.stop_code().map(|c| c.as_str().to_string()),
            reason: t.stopped_reason().unwrap_or("").to_string(),
        }))
    }
}

#[async_trait]
impl Executor for EcsExecutor {
    async fn execute(&self, launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let failed = Outcome::Failed { exit_code: None };
        let Some(opened) = self.remote.open(&launch, "ecs").await else {
            return failed;
        };
        let env = environment(&launch, &opened);
        let (arn, mut last_status) = match self.run_task(&launch, env, &opened.tags).await {
            Ok(started) => started,
            Err(e) => {
                launch.log.note(&format!(
                    "gantry: cannot start the ECS task (cluster {}, task definition {}): {e}",
                    self.def.cluster, self.def.task_definition
                ));
                close_stopped(&opened.attempt).await;
                return failed;
            }
        };
        launch.log.note(&format!(
            "gantry: started ECS task {arn} on cluster {}",
            self.def.cluster
        ));
        launch.log.note(&format!("gantry: task {last_status}"));
        let mut tail = self.log_tail(&arn);
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_millis(launch.timeout_ms);
        let attempt = &opened.attempt;
        let mut last_error: Option<String> = None;
        loop {
            if let Some(o) = reported(attempt, &launch.log).await {
                if let Some(t) = tail.as_mut() {
                    t.pump(&self.remote.aws, &launch.log).await;
                }
                // The attempt is over: a task still running after its worker reported is
                // stopped (TERM, then KILL after the task's stop timeout), never left behind.
                if let Ok(Some(seen)) = self.describe(&arn).await
                    && seen.status != "STOPPED"
                {
                    self.stop(&arn, "gantry: the worker reported its result", &launch)
                        .await;
                }
                return o;
            }
            match self.describe(&arn).await {
                Ok(Some(seen)) => {
                    if seen.status != last_status {
                        launch.log.note(&format!("gantry: task {}", seen.status));
                        last_status = seen.status.clone();
                    }
                    if seen.status == "STOPPED" {
                        if let Some(t) = tail.as_mut() {
                            t.pump(&self.remote.aws, &launch.log).await;
                        }
                        let (o, why) =
                            task_outcome(seen.exit_code, seen.stop_code.as_deref(), &seen.reason);
                        return settle(attempt, o, why, &launch.log).await;
                    }
                }
                Ok(None) => launch
                    .log
                    .note(&format!("gantry: ECS does not know task {arn} (yet)")),
                // Tried again each poll until the timeout.
                Err(e) => note_once(
                    &launch.log,
                    &mut last_error,
                    format!("gantry: cannot read the task's status: {e}"),
                ),
            }
            if let Some(t) = tail.as_mut() {
                t.pump(&self.remote.aws, &launch.log).await;
            }
            match wait_turn(
                attempt,
                self.remote.poll,
                &mut cancel,
                deadline,
                launch.timeout_ms,
            )
            .await
            {
                Wait::Look => {}
                Wait::Cancelled => {
                    self.stop(&arn, "gantry: the run was cancelled", &launch)
                        .await;
                    return Outcome::Cancelled;
                }
                Wait::TimedOut(why) => {
                    self.stop(&arn, &format!("gantry: {why}"), &launch).await;
                    return Outcome::TimedOut;
                }
            }
        }
    }

    /// Tasks this instance started that still run (an earlier life's: this is called at
    /// start, before any attempt runs) are stopped; recovery then runs their attempts again.
    async fn reap_orphans(&self) -> usize {
        match self.orphans().await {
            Ok(found) => {
                for (arn, tags) in &found {
                    let reason = format!(
                        "gantry: left running by an earlier life of {} (run {}, job {}, attempt {}); the attempt runs again",
                        tags.owner, tags.run_id, tags.job, tags.attempt
                    );
                    if let Err(e) = self
                        .remote
                        .aws
                        .ecs
                        .stop_task()
                        .cluster(&self.def.cluster)
                        .task(arn)
                        .reason(reason)
                        .send()
                        .await
                    {
                        tracing::warn!(task = %arn, cause = %AwsError::call("StopTask", e), "cannot stop an orphaned task");
                    } else {
                        tracing::info!(task = %arn, run_id = %tags.run_id, job = %tags.job, "stopped an orphaned ECS task");
                    }
                }
                found.len()
            }
            Err(e) => {
                tracing::warn!(cause = %e, cluster = %self.def.cluster, "cannot look for orphaned ECS tasks");
                0
            }
        }
    }
}

impl EcsExecutor {
    /// This instance's running tasks on the cluster, with their attempts' tags.
    pub async fn orphans(&self) -> Result<Vec<(String, AttemptTags)>, AwsError> {
        let ecs = &self.remote.aws.ecs;
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = ecs
                .list_tasks()
                .cluster(&self.def.cluster)
                .started_by(self.started_by())
                .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsError::call("ListTasks", e))?;
            arns.extend(page.task_arns().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for chunk in arns.chunks(100) {
            let out = ecs
                .describe_tasks()
                .cluster(&self.def.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .include(TaskField::Tags)
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeTasks", e))?;
            for t in out.tasks() {
                let tags = AttemptTags::from_pairs(
                    t.tags().iter().filter_map(|g| Some((g.key()?, g.value()?))),
                );
                if let (Some(arn), Some(tags)) = (t.task_arn(), tags)
                    && tags.owner == self.remote.owner
                    && t.last_status() != Some("STOPPED")
                {
                    found.push((arn.to_string(), tags));
                }
            }
        }
        Ok(found)
    }
}

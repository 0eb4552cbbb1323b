//! Services' tasks on ECS: the `ServiceRuntime` port over `RunTask` (awsvpc networking, the
//! service's container given its command and environment), `DescribeTasks` (running, its
//! private IP from the task's network attachment, or why it stopped), `StopTask`, and
//! `ListTasks` + tags for a restarted server to find its own tasks. A service's labels are
//! the task's tags. Tasks' states are read through a [`Coalescer`]: one `DescribeTasks` per
//! cluster for all the tasks being waited on.

use crate::AwsError;
use crate::calls::Pacer;
use crate::coalesce::{Coalescer, Fetch};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, DesiredStatus, KeyValuePair,
    LaunchType, NetworkConfiguration, Tag, TaskField, TaskOverride,
};
use gantry_engine::ports::{
    ContainerState, LabelSelector, ListedContainer, ServiceContainer, ServiceRuntime,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a task just started may be missing from DescribeTasks (ECS's eventual
/// consistency) before that is an error.
const MISSING_GRACE: Duration = Duration::from_secs(15);

/// What `startedBy` says on every task Gantry starts.
pub const STARTED_BY: &str = "gantry";

/// ECS as a service runtime.
pub struct EcsServices {
    ecs: aws_sdk_ecs::Client,
    /// The clusters of the configured ECS services: where a restarted server looks.
    clusters: Vec<String>,
    /// Each known task's cluster and its service's container (a task ARN in ECS's old short
    /// format doesn't name its cluster).
    known: Mutex<HashMap<String, (String, Option<String>)>>,
    /// When each task this server started was started: ECS is eventually consistent, and a
    /// task may be missing from DescribeTasks for a moment after RunTask.
    started: Mutex<HashMap<String, std::time::Instant>>,
    /// `DescribeTasks` of a cluster, for everyone waiting on its tasks.
    describe: Arc<Coalescer<String, aws_sdk_ecs::types::Task>>,
    pacer: Arc<Pacer>,
}

impl EcsServices {
    /// Tasks on `clusters`, every call paced by `pacer` (shared with the other AWS adapters).
    pub fn new(ecs: aws_sdk_ecs::Client, clusters: Vec<String>, pacer: Arc<Pacer>) -> Self {
        let (client, pace) = (ecs.clone(), pacer.clone());
        let fetch: Fetch<String, aws_sdk_ecs::types::Task> = Arc::new(move |cluster, arns| {
            let (client, pace) = (client.clone(), pace.clone());
            Box::pin(async move {
                let out = pace
                    .call("ecs:DescribeTasks", || {
                        client
                            .describe_tasks()
                            .cluster(&cluster)
                            .set_tasks(Some(arns.clone()))
                            .send()
                    })
                    .await
                    .map_err(|e| AwsError::call("DescribeTasks", e).to_string())?;
                Ok(out
                    .tasks()
                    .iter()
                    .filter_map(|t| Some((t.task_arn()?.to_string(), t.clone())))
                    .collect())
            })
        });
        EcsServices {
            ecs,
            clusters,
            known: Mutex::new(HashMap::new()),
            started: Mutex::new(HashMap::new()),
            describe: Coalescer::new(fetch, Duration::ZERO, 100),
            pacer,
        }
    }

    /// The cluster of task `arn`: remembered, or from a long-format ARN
    /// (`…:task/CLUSTER/ID`).
    fn cluster_of(&self, arn: &str) -> Result<(String, Option<String>), String> {
        if let Some(k) = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
        {
            return Ok(k.clone());
        }
        let resource = arn.rsplit(':').next().unwrap_or("");
        match resource.split('/').collect::<Vec<_>>()[..] {
            ["task", cluster, _id] => Ok((cluster.to_string(), None)),
            _ => Err(format!("task {arn}: its cluster is not known here")),
        }
    }

    fn remember(&self, arn: &str, cluster: &str, container: Option<String>) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(arn.to_string(), (cluster.to_string(), container));
    }
}

/// A described task as the port sees it.
fn state_of(t: &aws_sdk_ecs::types::Task, container: Option<&str>) -> ContainerState {
    let status = t.last_status().unwrap_or("");
    let ip = t
        .attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
        .or_else(|| {
            t.containers()
                .iter()
                .flat_map(|c| c.network_interfaces())
                .find_map(|n| n.private_ipv4_address())
        })
        .map(str::to_string);
    // ECS decides to stop a task (desired STOPPED, with its stop code and reason) well before
    // the task has wound down through DEACTIVATING … STOPPED: it is stopping from then on.
    let stopping = status == "STOPPED"
        || (t.desired_status() == Some("STOPPED") && t.stopped_reason().is_some());
    if stopping {
        let c = t
            .containers()
            .iter()
            .find(|c| container.is_some() && c.name() == container)
            .or_else(|| t.containers().iter().find(|c| c.exit_code().is_some()));
        let mut reason = t.stopped_reason().unwrap_or("stopped").to_string();
        if let Some(code) = t.stop_code() {
            reason = format!("{}: {reason}", code.as_str());
        }
        if let Some(r) = c.and_then(|c| c.reason()).filter(|r| !r.is_empty()) {
            reason.push_str(&format!("; container: {r}"));
        }
        return ContainerState {
            running: false,
            exit_code: c.and_then(|c| c.exit_code()).map(i64::from),
            ip,
            reason: Some(reason),
        };
    }
    ContainerState {
        running: status == "RUNNING",
        exit_code: None,
        ip,
        reason: None,
    }
}

/// A RunTask client token (at most 64 characters) unique to one start.
fn client_token(c: &ServiceContainer) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STARTS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{:?}|{nanos}|{}|{}",
        c.labels,
        std::process::id(),
        STARTS.fetch_add(1, Ordering::Relaxed)
    );
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    hex::encode(&digest[..24])
}

#[async_trait]
impl ServiceRuntime for EcsServices {
    async fn start(&self, c: &ServiceContainer) -> Result<String, String> {
        let p = c
            .ecs
            .as_ref()
            .ok_or("an ECS task needs its cluster and task definition")?;
        let mut ov = ContainerOverride::builder().name(&p.container);
        if !c.command.is_empty() {
            ov = ov.set_command(Some(c.command.clone()));
        }
        for (k, v) in &c.env {
            ov = ov.environment(KeyValuePair::builder().name(k).value(v).build());
        }
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(p.subnets.clone()))
            .set_security_groups(Some(p.security_groups.clone()))
            .assign_public_ip(if p.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| e.to_string())?;
        let tags: Vec<Tag> = c
            .labels
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build();
        let overrides = TaskOverride::builder()
            .container_overrides(ov.build())
            .build();
        // One token for every try of this start: a retried RunTask whose first try did start
        // a task gets that task back instead of a second one.
        let token = client_token(c);
        let out = self
            .pacer
            .call("ecs:RunTask", || {
                self.ecs
                    .run_task()
                    .client_token(&token)
                    .cluster(&p.cluster)
                    .task_definition(&p.task_definition)
                    .count(1)
                    .launch_type(LaunchType::from(p.launch_type.as_str()))
                    .network_configuration(network.clone())
                    .overrides(overrides.clone())
                    .set_tags(Some(tags.clone()))
                    .started_by(STARTED_BY)
                    .send()
            })
            .await
            .map_err(|e| {
                format!(
                    "{} (task definition `{}` on cluster `{}`)",
                    AwsError::call("RunTask", e),
                    p.task_definition,
                    p.cluster
                )
            })?;
        if let Some(f) = out.failures().first() {
            return Err(format!(
                "RunTask: {}{}{}",
                f.reason().unwrap_or("failed"),
                f.detail().map(|d| format!(": {d}")).unwrap_or_default(),
                f.arn().map(|a| format!(" ({a})")).unwrap_or_default(),
            ));
        }
        let arn = out
            .tasks()
            .first()
            .and_then(|t| t.task_arn())
            .ok_or("RunTask answered no task")?
            .to_string();
        self.remember(&arn, &p.cluster, Some(p.container.clone()));
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(arn.clone(), std::time::Instant::now());
        Ok(arn)
    }

    async fn state(&self, id: &str) -> Result<ContainerState, String> {
        let (cluster, container) = self.cluster_of(id)?;
        match self.describe.get(&cluster, id.to_string()).await? {
            Some(t) => Ok(state_of(&t, container.as_deref())),
            // Just started: not visible yet, as ECS may answer right after RunTask.
            None if self
                .started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .is_some_and(|at| at.elapsed() < MISSING_GRACE) =>
            {
                Ok(ContainerState {
                    running: false,
                    exit_code: None,
                    ip: None,
                    reason: None,
                })
            }
            None => Err(format!(
                "DescribeTasks: task {id} on cluster {cluster}: MISSING"
            )),
        }
    }

    async fn stop(&self, id: &str) -> Result<(), String> {
        let (cluster, _) = self.cluster_of(id)?;
        let stopped = self
            .pacer
            .call("ecs:StopTask", || {
                self.ecs
                    .stop_task()
                    .cluster(&cluster)
                    .task(id)
                    .reason("stopped by Gantry")
                    .send()
            })
            .await;
        match stopped {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::call("StopTask", e).to_string();
                // Stopped and gone already: what stopping wanted.
                if e.contains("not found") || e.contains("NotFound") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn list(&self, selectors: &[LabelSelector<'_>]) -> Result<Vec<ListedContainer>, String> {
        let mut out = Vec::new();
        for cluster in &self.clusters {
            let mut arns = Vec::new();
            let mut pages = self
                .ecs
                .list_tasks()
                .cluster(cluster)
                .desired_status(DesiredStatus::Running)
                .into_paginator()
                .send();
            let mut missing = false;
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        let e = AwsError::call("ListTasks", e).to_string();
                        // A cluster that isn't there runs no task of ours; the others may.
                        if e.contains("ClusterNotFound") {
                            missing = true;
                            break;
                        }
                        return Err(format!("{e} (cluster `{cluster}`)"));
                    }
                };
                arns.extend(page.task_arns().iter().cloned());
            }
            if missing {
                continue;
            }
            for chunk in arns.chunks(100) {
                let d = self
                    .pacer
                    .call("ecs:DescribeTasks", || {
                        self.ecs
                            .describe_tasks()
                            .cluster(cluster)
                            .set_tasks(Some(chunk.to_vec()))
                            .include(TaskField::Tags)
                            .send()
                    })
                    .await
                    .map_err(|e| AwsError::call("DescribeTasks", e).to_string())?;
                for t in d.tasks() {
                    let Some(arn) = t.task_arn() else { continue };
                    let labels: BTreeMap<String, String> = t
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                        .collect();
                    if !selectors.iter().all(|s| s.matches(&labels)) {
                        continue;
                    }
                    self.remember(arn, cluster, None);
                    out.push(ListedContainer {
                        id: arn.to_string(),
                        labels,
                        state: state_of(t, None),
                    });
                }
            }
        }
        Ok(out)
    }
}

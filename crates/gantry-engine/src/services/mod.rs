//! Services: long-running containers or ECS tasks started and stopped by event bus rules (a
//! `start_service` target, as when an event asks for an app's engines) or through the API.
//! Starting one (`start.rs`): start the container or task → wait until it runs → read its
//! private IP → route the target group (ELBv2's listener rule) → register `IP:port` in the
//! service's target group → wait until healthy → record the task. Every step goes to the
//! audit trail (`service:<name>`); a failure undoes what was done (deregister, stop) and says
//! which step failed. Stopping drains each task, waits the deregistration delay, deregisters
//! (ELBv2: once drained) and stops; a step that fails keeps the tasks not yet stopped.
//!
//! Each container is labelled with its service and with this Gantry's instance id
//! ([`OWNER_LABEL`]); after a restart this manager takes back only its own instance's
//! containers, so another instance's (another data dir's) are never adopted, registered,
//! stopped or listed here.

mod start;
mod watch;

pub use watch::WATCH_EVERY;

use crate::journal::Journal;
use crate::ports::{
    AuditRecord, Clock, LabelSelector, OWNER_LABEL, ServiceRuntime, Services, Target, TargetGroups,
    Write,
};
use async_trait::async_trait;
use gantry_core::services::{ServiceDef, ms};
use serde::Serialize;
use serde_json::{Value, json};
use start::{Started, StepError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// The label naming a service container's service.
pub const SERVICE_LABEL: &str = "io.gantry.service";

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub task_id: String,
    /// `docker` or `ecs`.
    pub runtime: &'static str,
    /// An ECS task's ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(skip)]
    pub container_id: String,
    pub private_ip: String,
    pub port: u16,
    pub target_group: String,
    pub started_at_ms: i64,
}

pub struct ServiceManager {
    /// This Gantry's instance id: the [`OWNER_LABEL`] of the containers it starts and adopts.
    instance: String,
    defs: BTreeMap<String, ServiceDef>,
    runtime: Arc<dyn ServiceRuntime>,
    groups: Arc<dyn TargetGroups>,
    journal: Journal,
    clock: Arc<dyn Clock>,
    tasks: Mutex<BTreeMap<String, Vec<Task>>>,
}

impl std::fmt::Debug for ServiceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceManager")
            .field("instance", &self.instance)
            .field("services", &self.defs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Task {
    fn target(&self) -> Target {
        Target {
            id: self.task_id.clone(),
            address: self.private_ip.clone(),
            port: self.port,
        }
    }
}

/// A task is named by its container id's first 12 characters, as `docker ps` shows it, or by
/// its ECS task id (the end of its ARN), as the ECS console shows it.
fn task_id_of(container_id: &str) -> String {
    if container_id.starts_with("arn:") {
        return container_id
            .rsplit('/')
            .next()
            .unwrap_or(container_id)
            .to_string();
    }
    container_id.chars().take(12).collect()
}

impl ServiceManager {
    /// The services `defs` of the Gantry instance `instance` (its data dir's instance id).
    pub fn new(
        instance: impl Into<String>,
        defs: BTreeMap<String, ServiceDef>,
        runtime: Arc<dyn ServiceRuntime>,
        groups: Arc<dyn TargetGroups>,
        journal: Journal,
        clock: Arc<dyn Clock>,
    ) -> ServiceManager {
        ServiceManager {
            instance: instance.into(),
            defs,
            runtime,
            groups,
            journal,
            clock,
            tasks: Mutex::new(BTreeMap::new()),
        }
    }

    fn audit(&self, service: &str, task: Option<&str>, step: &str, note: String) {
        self.journal.append(vec![Write::Audit(AuditRecord {
            seq: 0,
            at_ms: self.clock.now_ms(),
            trace_id: String::new(),
            run_id: format!("service:{service}"),
            job: task.map(str::to_string),
            attempt: None,
            from: None,
            to: step.to_string(),
            note: Some(note),
        })]);
    }

    /// Waits until the audit records appended so far are durable: a start or stop is answered
    /// only once its trail is on the disk.
    async fn durable(&self) {
        if let Err(e) = self.journal.flush().await {
            warn!(cause = %e, "the services' audit trail could not be written");
        }
    }

    /// Every service with its tasks (those this instance started or adopted), each with its
    /// live health.
    pub async fn list(&self) -> Value {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Every task's health read at once (the ELBv2 adapter then asks once per group).
        let all: Vec<(&String, &Task)> = tasks
            .iter()
            .flat_map(|(name, ts)| ts.iter().map(move |t| (name, t)))
            .collect();
        let health = futures_util::future::join_all(
            all.iter()
                .map(|(_, t)| async { self.groups.health(&t.target_group, &t.target()).await }),
        )
        .await;
        let mut by_service: BTreeMap<&String, Vec<Value>> = BTreeMap::new();
        for ((name, t), h) in all.iter().zip(health) {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            match h {
                Ok(h) => {
                    v["health"] = json!(h.health);
                    if let Some(r) = h.reason {
                        v["health_reason"] = json!(r);
                    }
                }
                Err(e) => v["health"] = json!(format!("unknown: {e}")),
            }
            by_service.entry(name).or_default().push(v);
        }
        let mut out = Vec::new();
        for (name, def) in &self.defs {
            let ts = by_service.remove(name).unwrap_or_default();
            let mut svc = json!({"name": name, "runtime": def.runtime.as_str(),
                "image": def.image, "port": def.port, "target_group": def.target_group,
                "tasks": ts});
            if let Some(p) = def.ecs_placement() {
                svc["cluster"] = json!(p.cluster);
                svc["task_definition"] = json!(p.task_definition);
            }
            out.push(svc);
        }
        json!({ "services": out })
    }

    /// After a restart: takes back this instance's service containers that still run
    /// (registering them again if the target group lost them) and removes the ones that
    /// exited. Containers of another instance, or of services this server does not define,
    /// are left alone. Returns how many were adopted.
    pub async fn adopt(&self) -> Result<usize, String> {
        let found = self
            .runtime
            .list(&[
                LabelSelector::has(SERVICE_LABEL),
                LabelSelector::is(OWNER_LABEL, &self.instance),
            ])
            .await?;
        let mut adopted = 0;
        for c in found {
            // Checked again here, whatever the runtime's filtering: another instance's
            // container is never ours to touch.
            if c.labels.get(OWNER_LABEL) != Some(&self.instance) {
                continue;
            }
            let Some(service) = c.labels.get(SERVICE_LABEL).cloned() else {
                continue;
            };
            let (id, state) = (c.id, c.state);
            let task_id = task_id_of(&id);
            let def = self.defs.get(&service);
            match (def, state.running, state.ip) {
                (Some(def), true, Some(ip)) => {
                    let target = Target {
                        id: task_id.clone(),
                        address: ip.clone(),
                        port: def.port,
                    };
                    let known = self.groups.health(&def.target_group, &target).await;
                    if known.is_err()
                        || known.is_ok_and(|h| h.health == crate::ports::TargetHealth::Unused)
                    {
                        // One task that cannot be registered again does not keep the
                        // others from being taken back.
                        if let Err(e) = self.groups.register(&def.target_group, &target).await {
                            warn!(service = %service, task = %task_id, cause = %e,
                                  "cannot register a task again after a restart");
                        }
                    }
                    self.audit(
                        &service,
                        Some(&task_id),
                        "adopted",
                        format!("{ip}:{} after a restart", def.port),
                    );
                    self.tasks
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(service.clone())
                        .or_default()
                        .push(Task {
                            task_id,
                            runtime: def.runtime.as_str(),
                            task_arn: id.starts_with("arn:").then(|| id.clone()),
                            container_id: id,
                            private_ip: ip,
                            port: def.port,
                            target_group: def.target_group.clone(),
                            started_at_ms: self.clock.now_ms(),
                        });
                    adopted += 1;
                }
                // Not a service of this server: not ours to touch.
                (None, _, _) => {}
                (Some(def), _, ip) => {
                    let target = Target {
                        id: task_id.clone(),
                        address: ip.unwrap_or_default(),
                        port: def.port,
                    };
                    let _ = self.groups.deregister(&def.target_group, &target).await;
                    if let Err(e) = self.runtime.stop(&id).await {
                        warn!(service = %service, task = %task_id, cause = %e,
                              "cannot remove an exited task after a restart");
                        continue;
                    }
                    self.audit(
                        &service,
                        Some(&task_id),
                        "removed",
                        "found exited after a restart".into(),
                    );
                }
            }
        }
        self.durable().await;
        Ok(adopted)
    }

    pub fn known(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }
}

#[async_trait]
impl Services for ServiceManager {
    async fn start(&self, name: &str, detail: &Value) -> Result<String, String> {
        let Some(def) = self.defs.get(name) else {
            return Err(format!(
                "unknown service `{name}`; configured: {}",
                self.defs.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        let def = def.with_overrides(detail.get("overrides"))?;
        let mut done = Started::default();
        match self.start_steps(name, &def, &mut done).await {
            Ok(task) => {
                let mut result = json!({"task_id": task.task_id, "runtime": task.runtime,
                    "private_ip": task.private_ip, "port": task.port,
                    "target_group": task.target_group, "health": "healthy"});
                if let Some(arn) = &task.task_arn {
                    result["task_arn"] = json!(arn);
                }
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name.to_string())
                    .or_default()
                    .push(task);
                info!(service = name, %result, "service started");
                self.durable().await;
                Ok(result.to_string())
            }
            Err(StepError(step, why)) => {
                // Undo what was done, newest first.
                let mut msg = format!("start_service `{name}` failed at step `{step}`: {why}");
                let task = done.container.as_deref().map(task_id_of);
                if let Some(t) = &done.registered {
                    match self.groups.deregister(&def.target_group, t).await {
                        Ok(()) => self.audit(name, task.as_deref(), "deregistered", "undo".into()),
                        Err(e) => {
                            warn!(service = name, cause = %e, "cannot deregister after a failed start");
                            msg.push_str(&format!("; and the undo could not deregister it: {e}"));
                        }
                    }
                }
                if let Some(id) = &done.container {
                    match self.runtime.stop(id).await {
                        Ok(()) => self.audit(name, task.as_deref(), "stopped", "undo".into()),
                        Err(e) => {
                            warn!(service = name, cause = %e, "cannot stop after a failed start");
                            msg.push_str(&format!("; and the undo could not stop it: {e}"));
                        }
                    }
                }
                self.audit(name, task.as_deref(), "failed", msg.clone());
                self.durable().await;
                Err(msg)
            }
        }
    }

    async fn stop(&self, name: &str) -> Result<String, String> {
        let Some(def) = self.defs.get(name) else {
            return Err(format!("unknown service `{name}`"));
        };
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .unwrap_or_default();
        if tasks.is_empty() {
            return Err(format!("service `{name}` has no running tasks"));
        }
        let mut stopped = Vec::new();
        while let Some(t) = tasks.first().cloned() {
            if let Err((step, e)) = self.stop_task(name, def, &t).await {
                // The tasks not stopped stay this service's (a retry finds them).
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name.to_string())
                    .or_default()
                    .extend(tasks);
                let msg = format!("stop_service `{name}` failed at step `{step}`: {e}");
                self.audit(name, Some(&t.task_id), "failed", msg.clone());
                self.durable().await;
                return Err(msg);
            }
            tasks.remove(0);
            stopped.push(t.task_id);
        }
        self.durable().await;
        Ok(json!({"stopped": stopped}).to_string())
    }
}

impl ServiceManager {
    /// Drains, deregisters and stops one task; the step that failed, and why.
    async fn stop_task(
        &self,
        name: &str,
        def: &ServiceDef,
        t: &Task,
    ) -> Result<(), (&'static str, String)> {
        let target = t.target();
        if let Err(e) = self.groups.drain(&t.target_group, &target).await {
            warn!(service = name, cause = %e, "drain failed; deregistering anyway");
        }
        self.audit(
            name,
            Some(&t.task_id),
            "draining",
            format!("for {}", def.deregistration_delay),
        );
        tokio::time::sleep(Duration::from_millis(ms(&def.deregistration_delay))).await;
        self.groups
            .deregister(&t.target_group, &target)
            .await
            .map_err(|e| ("deregister", e.to_string()))?;
        self.audit(
            name,
            Some(&t.task_id),
            "deregistered",
            t.target_group.clone(),
        );
        self.runtime
            .stop(&t.container_id)
            .await
            .map_err(|e| ("stop", e))?;
        let what = if t.task_arn.is_some() {
            "task stopped"
        } else {
            "container removed"
        };
        self.audit(name, Some(&t.task_id), "stopped", what.into());
        Ok(())
    }
}

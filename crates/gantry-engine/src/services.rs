//! Services: long-running containers started and stopped by event bus rules (a
//! `start_service` target, as when an event asks for an app's engines) or through the API.
//! Starting one: start the container → wait until it runs → read its private IP → register
//! `IP:port` in the service's target group → wait until healthy → record the task. Every step
//! goes to the audit trail (`service:<name>`); a failure undoes what was done (deregister,
//! stop) and says which step failed. Stopping drains each task, waits the deregistration
//! delay, deregisters and stops.
//!
//! Each container is labelled with its service and with this Gantry's instance id
//! ([`OWNER_LABEL`]); after a restart this manager takes back only its own instance's
//! containers, so another instance's (another data dir's) are never adopted, registered,
//! stopped or listed here.

use crate::journal::Journal;
use crate::ports::{
    AuditRecord, Clock, LabelSelector, OWNER_LABEL, ServiceContainer, ServiceRuntime, Services,
    Target, TargetGroups, TargetHealth, Write,
};
use async_trait::async_trait;
use gantry_core::services::{ServiceDef, ms};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The label naming a service container's service.
pub const SERVICE_LABEL: &str = "io.gantry.service";

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub task_id: String,
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

/// A task is named by its container id's first 12 characters, as `docker ps` shows it.
fn task_id_of(container_id: &str) -> String {
    container_id.chars().take(12).collect()
}

/// A failed start: which step, and why.
struct StepError(&'static str, String);

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

    /// Every service with its tasks (those this instance started or adopted), each with its
    /// live health.
    pub async fn list(&self) -> Value {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = Vec::new();
        for (name, def) in &self.defs {
            let mut ts = Vec::new();
            for t in tasks.get(name).into_iter().flatten() {
                let health = match self.groups.health(&t.target_group, &t.task_id).await {
                    Ok(h) => json!(h),
                    Err(e) => json!(format!("unknown: {e}")),
                };
                let mut v = serde_json::to_value(t).unwrap_or_default();
                v["health"] = health;
                ts.push(v);
            }
            out.push(json!({"name": name, "image": def.image, "port": def.port,
                            "target_group": def.target_group, "tasks": ts}));
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
                    if self
                        .groups
                        .health(&def.target_group, &task_id)
                        .await
                        .is_err()
                    {
                        let target = Target {
                            id: task_id.clone(),
                            address: ip.clone(),
                            port: def.port,
                        };
                        self.groups
                            .register(&def.target_group, &target)
                            .await
                            .map_err(|e| format!("cannot register task {task_id} again: {e}"))?;
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
                (Some(def), _, _) => {
                    let _ = self.groups.deregister(&def.target_group, &task_id).await;
                    self.runtime.stop(&id).await?;
                    self.audit(
                        &service,
                        Some(&task_id),
                        "removed",
                        "found exited after a restart".into(),
                    );
                }
            }
        }
        Ok(adopted)
    }

    pub fn known(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    async fn start_steps(
        &self,
        name: &str,
        def: &ServiceDef,
        started: &mut Option<String>,
        registered: &mut Option<String>,
    ) -> Result<Task, StepError> {
        let deadline = Instant::now() + Duration::from_millis(ms(&def.start_timeout));
        let container = ServiceContainer {
            image: def.image.clone(),
            command: def.command.clone(),
            env: def
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            network: def.network.clone(),
            labels: vec![
                (SERVICE_LABEL.to_string(), name.to_string()),
                (OWNER_LABEL.to_string(), self.instance.clone()),
            ],
        };
        let id = self
            .runtime
            .start(&container)
            .await
            .map_err(|e| StepError("start", e))?;
        *started = Some(id.clone());
        let task_id = task_id_of(&id);
        self.audit(
            name,
            Some(&task_id),
            "started",
            format!("container {task_id} from {}", def.image),
        );
        let ip = loop {
            let st = self
                .runtime
                .state(&id)
                .await
                .map_err(|e| StepError("running", e))?;
            if st.running {
                match st.ip {
                    Some(ip) => break ip,
                    None => {
                        return Err(StepError(
                            "address",
                            "the container has no private IP".into(),
                        ));
                    }
                }
            }
            // Started but not running: it has already exited.
            if let Some(code) = st.exit_code {
                return Err(StepError(
                    "running",
                    format!("the container exited at once (exit code {code})"),
                ));
            }
            if Instant::now() > deadline {
                return Err(StepError(
                    "running",
                    "the container did not start in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.audit(name, Some(&task_id), "running", format!("private IP {ip}"));
        let target = Target {
            id: task_id.clone(),
            address: ip.clone(),
            port: def.port,
        };
        self.groups
            .register(&def.target_group, &target)
            .await
            .map_err(|e| StepError("register", e.to_string()))?;
        *registered = Some(task_id.clone());
        self.audit(
            name,
            Some(&task_id),
            "registered",
            format!("{ip}:{} in {}", def.port, def.target_group),
        );
        let every = Duration::from_millis(ms(&def.health_check.interval).clamp(50, 1000) / 2);
        loop {
            let h = self
                .groups
                .health(&def.target_group, &task_id)
                .await
                .map_err(|e| StepError("healthy", e.to_string()))?;
            if h == TargetHealth::Healthy {
                break;
            }
            let st = self
                .runtime
                .state(&id)
                .await
                .map_err(|e| StepError("healthy", e))?;
            if !st.running {
                return Err(StepError(
                    "healthy",
                    format!(
                        "the container stopped (exit code {})",
                        st.exit_code
                            .map_or("unknown".to_string(), |c| c.to_string())
                    ),
                ));
            }
            if Instant::now() > deadline {
                return Err(StepError(
                    "healthy",
                    format!(
                        "never became healthy within {} (last: {h:?})",
                        def.start_timeout
                    ),
                ));
            }
            tokio::time::sleep(every).await;
        }
        self.audit(name, Some(&task_id), "healthy", "health checks pass".into());
        Ok(Task {
            task_id,
            container_id: id,
            private_ip: ip,
            port: def.port,
            target_group: def.target_group.clone(),
            started_at_ms: self.clock.now_ms(),
        })
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
        let (mut started, mut registered) = (None, None);
        match self
            .start_steps(name, &def, &mut started, &mut registered)
            .await
        {
            Ok(task) => {
                let result = json!({"task_id": task.task_id, "private_ip": task.private_ip,
                    "port": task.port, "target_group": task.target_group, "health": "healthy"});
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name.to_string())
                    .or_default()
                    .push(task);
                info!(service = name, %result, "service started");
                Ok(result.to_string())
            }
            Err(StepError(step, why)) => {
                // Undo what was done, newest first.
                if let Some(t) = &registered
                    && let Err(e) = self.groups.deregister(&def.target_group, t).await
                {
                    warn!(service = name, cause = %e, "cannot deregister after a failed start");
                }
                if let Some(id) = &started
                    && let Err(e) = self.runtime.stop(id).await
                {
                    warn!(service = name, cause = %e, "cannot stop after a failed start");
                }
                let msg = format!("start_service `{name}` failed at step `{step}`: {why}");
                let task = started.as_deref().map(task_id_of);
                self.audit(name, task.as_deref(), "failed", msg.clone());
                Err(msg)
            }
        }
    }

    async fn stop(&self, name: &str) -> Result<String, String> {
        let Some(def) = self.defs.get(name) else {
            return Err(format!("unknown service `{name}`"));
        };
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .unwrap_or_default();
        if tasks.is_empty() {
            return Err(format!("service `{name}` has no running tasks"));
        }
        let mut stopped = Vec::new();
        for t in tasks {
            if let Err(e) = self.groups.drain(&t.target_group, &t.task_id).await {
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
                .deregister(&t.target_group, &t.task_id)
                .await
                .map_err(|e| format!("stop_service `{name}` failed at step `deregister`: {e}"))?;
            self.audit(
                name,
                Some(&t.task_id),
                "deregistered",
                t.target_group.clone(),
            );
            self.runtime
                .stop(&t.container_id)
                .await
                .map_err(|e| format!("stop_service `{name}` failed at step `stop`: {e}"))?;
            self.audit(
                name,
                Some(&t.task_id),
                "stopped",
                "container removed".into(),
            );
            stopped.push(t.task_id);
        }
        Ok(json!({"stopped": stopped}).to_string())
    }
}

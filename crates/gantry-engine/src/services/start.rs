//! Starting one task of a service, step by step: start the container or ECS task → wait until
//! it runs (or say why it stopped) → its private IP → route traffic to the target group (an
//! ELBv2 listener rule) → register `IP:port` → wait until healthy (each change of health, with
//! the load balancer's reason, in the audit trail). Each step's failure is a [`StepError`]
//! naming the step; what was done so far is in [`Started`], for the caller to undo.

use super::{SERVICE_LABEL, ServiceManager, Task, task_id_of};
use crate::ports::{OWNER_LABEL, ServiceContainer, Target, TargetHealth, TargetStatus};
use gantry_core::services::{Runtime, ServiceDef, ms};
use std::time::{Duration, Instant};

/// A failed start: which step, and why.
pub(super) struct StepError(pub &'static str, pub String);

/// What a start did before it failed: the container or task it started and the target it
/// registered.
#[derive(Default)]
pub(super) struct Started {
    pub container: Option<String>,
    pub registered: Option<Target>,
}

/// How often a starting task's state is read: a container answers at once; an ECS task takes
/// tens of seconds, and each read is an API call.
fn poll_every(def: &ServiceDef) -> Duration {
    match def.runtime {
        Runtime::Docker => Duration::from_millis(100),
        Runtime::Ecs => Duration::from_millis(500),
    }
}

impl ServiceManager {
    pub(super) async fn start_steps(
        &self,
        name: &str,
        def: &ServiceDef,
        done: &mut Started,
    ) -> Result<Task, StepError> {
        let ecs = def.ecs_placement();
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
            ecs: ecs.clone(),
        };
        let id = self
            .runtime
            .start(&container)
            .await
            .map_err(|e| StepError("start", e))?;
        done.container = Some(id.clone());
        // From the task's start: time a throttled RunTask spent waiting its turn is not
        // taken from the task's time to come up.
        let deadline = Instant::now() + Duration::from_millis(ms(&def.start_timeout));
        let task_id = task_id_of(&id);
        let what = match &ecs {
            Some(p) => format!(
                "ECS task {task_id} of {} on cluster {}",
                p.task_definition, p.cluster
            ),
            None => format!("container {task_id} from {}", def.image),
        };
        self.audit(name, Some(&task_id), "started", what);
        let ip = self.wait_running(&id, def, deadline).await?;
        self.audit(name, Some(&task_id), "running", format!("private IP {ip}"));
        if let Some(done) = self
            .groups
            .route(&def.target_group)
            .await
            .map_err(|e| StepError("route", e.to_string()))?
        {
            self.audit(name, Some(&task_id), "routed", done);
        }
        let target = Target {
            id: task_id.clone(),
            address: ip.clone(),
            port: def.port,
        };
        self.groups
            .register(&def.target_group, &target)
            .await
            .map_err(|e| StepError("register", e.to_string()))?;
        done.registered = Some(target.clone());
        self.audit(
            name,
            Some(&task_id),
            "registered",
            format!("{ip}:{} in {}", def.port, def.target_group),
        );
        self.wait_healthy(name, &id, &target, def, deadline).await?;
        self.audit(name, Some(&task_id), "healthy", "health checks pass".into());
        Ok(Task {
            task_id,
            runtime: def.runtime.as_str(),
            task_arn: ecs.map(|_| id.clone()),
            container_id: id,
            private_ip: ip,
            port: def.port,
            target_group: def.target_group.clone(),
            started_at_ms: self.clock.now_ms(),
        })
    }

    /// Waits until the container or task runs; its private IP.
    async fn wait_running(
        &self,
        id: &str,
        def: &ServiceDef,
        deadline: Instant,
    ) -> Result<String, StepError> {
        loop {
            let st = self
                .runtime
                .state(id)
                .await
                .map_err(|e| StepError("running", e))?;
            if st.running {
                return st
                    .ip
                    .ok_or_else(|| StepError("address", "the task has no private IP".to_string()));
            }
            // Started but not running, with an exit code or a reason: it has stopped.
            if st.exit_code.is_some() || st.reason.is_some() {
                let code = st
                    .exit_code
                    .map_or("unknown".to_string(), |c| c.to_string());
                let why = match st.reason {
                    Some(r) => format!("the task stopped before it ran: {r} (exit code {code})"),
                    None => format!("the container exited at once (exit code {code})"),
                };
                return Err(StepError("running", why));
            }
            if Instant::now() > deadline {
                return Err(StepError(
                    "running",
                    format!("the task did not start within {}", def.start_timeout),
                ));
            }
            tokio::time::sleep(poll_every(def)).await;
        }
    }

    /// Waits until the target is healthy; each new health state goes to the audit trail with
    /// the load balancer's reason.
    async fn wait_healthy(
        &self,
        name: &str,
        id: &str,
        target: &Target,
        def: &ServiceDef,
        deadline: Instant,
    ) -> Result<(), StepError> {
        let every = Duration::from_millis(ms(&def.health_check.interval).clamp(50, 1000) / 2)
            .max(poll_every(def));
        let mut last: Option<TargetStatus> = None;
        loop {
            let h = self
                .groups
                .health(&def.target_group, target)
                .await
                .map_err(|e| StepError("healthy", e.to_string()))?;
            if h.health == TargetHealth::Healthy {
                return Ok(());
            }
            if last.as_ref() != Some(&h) {
                self.audit(name, Some(&target.id), "health", h.to_string());
                last = Some(h.clone());
            }
            let st = self
                .runtime
                .state(id)
                .await
                .map_err(|e| StepError("healthy", e))?;
            if !st.running {
                let code = st
                    .exit_code
                    .map_or("unknown".to_string(), |c| c.to_string());
                let why = st.reason.map(|r| format!(": {r}")).unwrap_or_default();
                return Err(StepError(
                    "healthy",
                    format!("the task stopped (exit code {code}){why}"),
                ));
            }
            if Instant::now() > deadline {
                return Err(StepError(
                    "healthy",
                    format!(
                        "never became healthy within {} (last: {h})",
                        def.start_timeout
                    ),
                ));
            }
            tokio::time::sleep(every).await;
        }
    }
}

//! The `TargetGroups` port: where a service's tasks are registered so a load balancer sends
//! them traffic, in ELBv2's terms (register, drain and deregister targets; read their health).
//! HAProxy and ELBv2 implement it.

use async_trait::async_trait;

/// A target's health, as ELBv2 names the states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetHealth {
    /// Registered, checks not passed yet.
    Initial,
    Healthy,
    Unhealthy,
    /// Taking no new connections; finishing the ones it has.
    Draining,
    /// Registered but disabled, or not checked.
    Unused,
}

/// A target's health and, when the load balancer says, why (ELBv2's reason code and
/// description: `Target.ResponseCodeMismatch: Health checks failed with these codes: [502]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetStatus {
    pub health: TargetHealth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TargetStatus {
    pub fn is(health: TargetHealth) -> TargetStatus {
        TargetStatus {
            health,
            reason: None,
        }
    }
}

impl std::fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = serde_json::to_value(self.health).unwrap_or_default();
        match &self.reason {
            Some(r) => write!(f, "{} ({r})", h.as_str().unwrap_or("?")),
            None => write!(f, "{}", h.as_str().unwrap_or("?")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Unique within the group (e.g. the task id).
    pub id: String,
    pub address: String,
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetGroupError {
    #[error("target group `{0}` is not configured")]
    UnknownGroup(String),
    #[error("the load balancer cannot be reached: {0}")]
    Unreachable(String),
    #[error("the load balancer refused `{command}`: {answer}")]
    Refused { command: String, answer: String },
    /// Deregistered, but its connections were still draining when waiting stopped.
    #[error("target {target} still draining after {waited_s} s")]
    StillDraining { target: String, waited_s: u64 },
}

#[async_trait]
pub trait TargetGroups: Send + Sync + 'static {
    /// Makes sure traffic reaches `group` (ELBv2: the group's listener rule, created when the
    /// listener has none and left alone when it has); what was done, if anything.
    async fn route(&self, _group: &str) -> Result<Option<String>, TargetGroupError> {
        Ok(None)
    }
    /// Adds `target` to `group` and starts health checks on it.
    async fn register(&self, group: &str, target: &Target) -> Result<(), TargetGroupError>;
    /// Stops new traffic to the target (connections in flight finish).
    async fn drain(&self, group: &str, target: &Target) -> Result<(), TargetGroupError>;
    /// Removes the target from the group, once its connections are drained.
    async fn deregister(&self, group: &str, target: &Target) -> Result<(), TargetGroupError>;
    async fn health(&self, group: &str, target: &Target) -> Result<TargetStatus, TargetGroupError>;
}

/// Target groups on several load balancers: each group's calls go to the adapter that
/// holds it.
#[derive(Default)]
pub struct RoutedTargetGroups {
    by_group: std::collections::HashMap<String, std::sync::Arc<dyn TargetGroups>>,
}

impl RoutedTargetGroups {
    pub fn new() -> Self {
        Self::default()
    }

    /// `group`'s calls go to `adapter`.
    pub fn add(&mut self, group: &str, adapter: std::sync::Arc<dyn TargetGroups>) {
        self.by_group.insert(group.to_string(), adapter);
    }

    fn of(&self, group: &str) -> Result<&std::sync::Arc<dyn TargetGroups>, TargetGroupError> {
        self.by_group
            .get(group)
            .ok_or_else(|| TargetGroupError::UnknownGroup(group.to_string()))
    }
}

#[async_trait]
impl TargetGroups for RoutedTargetGroups {
    async fn route(&self, group: &str) -> Result<Option<String>, TargetGroupError> {
        self.of(group)?.route(group).await
    }
    async fn register(&self, group: &str, target: &Target) -> Result<(), TargetGroupError> {
        self.of(group)?.register(group, target).await
    }
    async fn drain(&self, group: &str, target: &Target) -> Result<(), TargetGroupError> {
        self.of(group)?.drain(group, target).await
    }
    async fn deregister(&self, group: &str, target: &Target) -> Result<(), TargetGroupError> {
        self.of(group)?.deregister(group, target).await
    }
    async fn health(&self, group: &str, target: &Target) -> Result<TargetStatus, TargetGroupError> {
        self.of(group)?.health(group, target).await
    }
}

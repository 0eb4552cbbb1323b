//! The `TargetGroups` port: where a service's tasks are registered so a load balancer sends
//! them traffic, in ELBv2's terms (register, drain and deregister targets; read their health).
//! HAProxy implements it now; ELBv2 comes with the AWS work.

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
}

#[async_trait]
pub trait TargetGroups: Send + Sync + 'static {
    /// Adds `target` to `group` and starts health checks on it.
    async fn register(&self, group: &str, target: &Target) -> Result<(), TargetGroupError>;
    /// Stops new traffic to the target (connections in flight finish).
    async fn drain(&self, group: &str, target_id: &str) -> Result<(), TargetGroupError>;
    /// Removes the target from the group.
    async fn deregister(&self, group: &str, target_id: &str) -> Result<(), TargetGroupError>;
    async fn health(&self, group: &str, target_id: &str) -> Result<TargetHealth, TargetGroupError>;
}

//! Ports for the event bus's outward targets: POSTing an event to an HTTP endpoint, and
//! starting or stopping a service (the services adapter lands with the Docker executor).

use async_trait::async_trait;

#[async_trait]
pub trait HttpTarget: Send + Sync + 'static {
    /// POSTs `body` (JSON) to `url`, signed; the HTTP status, or why there was none.
    async fn post(&self, url: &str, body: &[u8]) -> Result<u16, String>;
}

#[async_trait]
pub trait Services: Send + Sync + 'static {
    /// Starts service `name`; what was started (task id, address), or which step failed.
    async fn start(&self, name: &str, overrides: &serde_json::Value) -> Result<String, String>;
    async fn stop(&self, name: &str) -> Result<String, String>;
}

/// A long-running service container to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceContainer {
    pub image: String,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub network: Option<String>,
    pub labels: Vec<(String, String)>,
}

/// What is known of a started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    pub exit_code: Option<i64>,
    /// Its private address on its network.
    pub ip: Option<String>,
}

/// Where services' containers run (Docker now; ECS later).
#[async_trait]
pub trait ServiceRuntime: Send + Sync + 'static {
    /// Creates and starts the container; its id.
    async fn start(&self, c: &ServiceContainer) -> Result<String, String>;
    async fn state(&self, id: &str) -> Result<ContainerState, String>;
    /// Stops and removes it.
    async fn stop(&self, id: &str) -> Result<(), String>;
    /// Every container carrying `label` (`key=value`... any value when only a key is given),
    /// with the label's value: (id, value, state). How a restarted server finds its tasks.
    async fn list(&self, label: &str) -> Result<Vec<(String, String, ContainerState)>, String>;
}

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

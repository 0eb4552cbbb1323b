//! Ports for the event bus's outward targets: POSTing an event to an HTTP endpoint, and
//! starting or stopping a service; and the runtime services' containers run on, which finds
//! them again by their labels (the instance that made them among those).

use async_trait::async_trait;
use std::collections::BTreeMap;

/// The label naming the Gantry instance (its data dir's instance id) that made a container, on
/// job and service containers alike: an instance adopts, reaps and lists only its own.
pub const OWNER_LABEL: &str = "io.gantry.owner";

#[async_trait]
pub trait HttpTarget: Send + Sync + 'static {
    /// POSTs `body` (JSON) to `url`, signed; the HTTP status, or why there was none.
    async fn post(&self, url: &str, body: &[u8]) -> Result<u16, PostError>;
}

/// Why a POST got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// Not sent, and never will be (the destination is not allowed): not worth a retry.
    Refused(String),
    /// Sent or tried, and failed (timeout, connection): may work later.
    Failed(String),
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
    /// Where an ECS task starts (`None`: a Docker container on this host).
    pub ecs: Option<gantry_core::services::EcsPlacement>,
}

/// What is known of a started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    pub exit_code: Option<i64>,
    /// Its private address on its network.
    pub ip: Option<String>,
    /// Why it stopped, when the runtime says (ECS's stop reason).
    pub reason: Option<String>,
}

/// A container found by [`ServiceRuntime::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    pub id: String,
    /// All its labels.
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
}

/// One condition on a container's labels: it has the label `key`, with the value `value`
/// (any value when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSelector<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

impl<'a> LabelSelector<'a> {
    /// The label `key`, whatever its value.
    pub fn has(key: &'a str) -> Self {
        LabelSelector { key, value: None }
    }

    /// The label `key` with the value `value`.
    pub fn is(key: &'a str, value: &'a str) -> Self {
        LabelSelector {
            key,
            value: Some(value),
        }
    }

    /// Whether `labels` meet this condition.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match (labels.get(self.key), self.value) {
            (Some(v), Some(want)) => v == want,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Where services' containers run (Docker on this host; ECS tasks).
#[async_trait]
pub trait ServiceRuntime: Send + Sync + 'static {
    /// Creates and starts the container; its id.
    async fn start(&self, c: &ServiceContainer) -> Result<String, String>;
    async fn state(&self, id: &str) -> Result<ContainerState, String>;
    /// Stops and removes it.
    async fn stop(&self, id: &str) -> Result<(), String>;
    /// Every container, running or not, that meets all of `selectors`, with its labels and
    /// state. How a restarted server finds its tasks (selecting its own instance's).
    async fn list(&self, selectors: &[LabelSelector<'_>]) -> Result<Vec<ListedContainer>, String>;
}

/// Docker and ECS side by side: a container with an ECS placement starts on ECS, one without
/// on Docker; an id that is an ARN is an ECS task's.
#[derive(Default)]
pub struct RoutedRuntimes {
    pub docker: Option<std::sync::Arc<dyn ServiceRuntime>>,
    pub ecs: Option<std::sync::Arc<dyn ServiceRuntime>>,
}

impl RoutedRuntimes {
    fn of(&self, ecs: bool) -> Result<&std::sync::Arc<dyn ServiceRuntime>, String> {
        let (r, name) = if ecs {
            (&self.ecs, "ECS")
        } else {
            (&self.docker, "Docker")
        };
        r.as_ref()
            .ok_or_else(|| format!("no {name} runtime is configured on this server"))
    }
}

#[async_trait]
impl ServiceRuntime for RoutedRuntimes {
    async fn start(&self, c: &ServiceContainer) -> Result<String, String> {
        self.of(c.ecs.is_some())?.start(c).await
    }
    async fn state(&self, id: &str) -> Result<ContainerState, String> {
        self.of(id.starts_with("arn:"))?.state(id).await
    }
    async fn stop(&self, id: &str) -> Result<(), String> {
        self.of(id.starts_with("arn:"))?.stop(id).await
    }
    /// What each runtime lists; one that cannot list (AWS unreachable) hides nothing of the
    /// other's, and is an error only when no runtime could list.
    async fn list(&self, selectors: &[LabelSelector<'_>]) -> Result<Vec<ListedContainer>, String> {
        let (mut out, mut errors, mut listed) = (Vec::new(), Vec::new(), false);
        for r in [&self.docker, &self.ecs].into_iter().flatten() {
            match r.list(selectors).await {
                Ok(found) => {
                    out.extend(found);
                    listed = true;
                }
                Err(e) => errors.push(e),
            }
        }
        if !listed && !errors.is_empty() {
            return Err(errors.join("; "));
        }
        for e in errors {
            tracing::warn!(cause = %e, "a service runtime could not list its tasks");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_wants_the_label_and_its_value_when_given() {
        let labels: BTreeMap<String, String> = [
            (OWNER_LABEL.to_string(), "node-a".to_string()),
            ("io.gantry.service".to_string(), "auth".to_string()),
        ]
        .into_iter()
        .collect();
        assert!(LabelSelector::has("io.gantry.service").matches(&labels));
        assert!(LabelSelector::is(OWNER_LABEL, "node-a").matches(&labels));
        assert!(!LabelSelector::is(OWNER_LABEL, "node-b").matches(&labels));
        assert!(!LabelSelector::has("io.gantry.run").matches(&labels));
    }
}

//! The deployer's session records: what a deploy or test session asked for, and what it found
//! and made (the commit, the kind of infrastructure-as-code, the resources, the outputs, the
//! test results, the error). A session is a run: its status, logs and audit trail are the
//! run's; this is the rest.

use serde::{Deserialize, Serialize};

/// A session's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The run's id.
    pub session_id: String,
    /// `deploy` or `test`.
    pub kind: String,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub stack_name: Option<String>,
    #[serde(default)]
    pub function_name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub iac_type: Option<String>,
    /// `[{type, logicalId, physicalId}]`.
    #[serde(default)]
    pub resources: serde_json::Value,
    /// `{key: value}`.
    #[serde(default)]
    pub outputs: serde_json::Value,
    /// `[{name, resource, type, status, durationMs, error?}]`.
    #[serde(default)]
    pub test_results: serde_json::Value,
    #[serde(default)]
    pub error: Option<String>,
    pub created_at_ms: i64,
}

/// Which sessions to list: newest first.
#[derive(Debug, Clone, Default)]
pub struct DeploymentFilter {
    /// `deploy` or `test`.
    pub kind: String,
    /// Run statuses to keep (none: all).
    pub statuses: Vec<String>,
    /// Only sessions created before this one (the page's cursor).
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// Why what a deployer request names cannot be had: it does not exist (the request is
/// refused, 4xx), or where it lives could not be asked (5xx: try again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Unreachable(String),
}

/// The deployer's cloud, asked before a test session starts whether what it names is there.
#[async_trait::async_trait]
pub trait DeployTargets: Send + Sync {
    /// The stack (with something deployed) or the function, in `region` (or the default one).
    async fn check_test_target(
        &self,
        stack_name: Option<&str>,
        function_name: Option<&str>,
        region: Option<&str>,
    ) -> Result<(), LookupError>;
}

//! The `SecretStore` port: named values, encrypted at rest, scoped globally or to one
//! repository. Values leave the store only through [`SecretStore::resolve`], into a job's
//! environment; everything else sees names and scopes.

use async_trait::async_trait;
use gantry_core::secret::Scope;

/// A secret's value. Its `Debug` never shows it, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(value)
    }
    /// The value itself: only for a job's environment and for building its masker.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// What may be shown about a secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretMeta {
    pub name: String,
    pub scope: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0}")]
    Invalid(String),
    #[error("secret store: {0}")]
    Store(String),
}

#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Creates or replaces a secret; durable when it returns.
    async fn set(&self, scope: &Scope, name: &str, value: &str) -> Result<(), SecretError>;
    /// Names and scopes, sorted by scope then name.
    async fn list(&self) -> Result<Vec<SecretMeta>, SecretError>;
    /// Whether there was such a secret.
    async fn delete(&self, scope: &Scope, name: &str) -> Result<bool, SecretError>;
    /// The values of `names` for a run of `repo`: the repository's scope wins over global.
    /// Names found in neither are returned as missing.
    async fn resolve(&self, names: &[String], repo: Option<&str>) -> Result<Resolved, SecretError>;

    /// Where missing secrets were looked for and how to set them, for a job's error.
    fn missing_hint(&self, repo: Option<&str>) -> String {
        let scopes = match repo {
            Some(r) => format!("repo:{r} or global"),
            None => "global".into(),
        };
        format!("looked in {scopes}; set with `gantry secrets set NAME`")
    }
}

#[derive(Debug, Default)]
pub struct Resolved {
    pub values: Vec<(String, SecretValue)>,
    pub missing: Vec<String>,
}

//! The `Forge` port: what Gantry asks of GitHub (or another forge) to report results where
//! people look — pull-request comments and commit statuses.

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// Worth trying again later (timeouts, 5xx, rate limits).
    #[error("{0} (will retry)")]
    Transient(String),
    /// Will not succeed as asked (422, bad credentials).
    #[error("{0}")]
    Permanent(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
}

/// `pending`, `success`, `failure` or `error`, as GitHub's commit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

impl CommitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub sha: String,
    /// `gantry/<job>`.
    pub context: String,
    pub state: CommitState,
    pub description: String,
    pub target_url: Option<String>,
}

#[async_trait]
pub trait Forge: Send + Sync + 'static {
    /// The id of the comment on PR `number` whose body contains `marker`, if any.
    async fn find_comment(
        &self,
        repo: &str,
        number: u64,
        marker: &str,
    ) -> Result<Option<u64>, ForgeError>;
    async fn create_comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError>;
    async fn edit_comment(&self, repo: &str, comment_id: u64, body: &str)
    -> Result<(), ForgeError>;
    async fn set_status(&self, repo: &str, status: &CommitStatus) -> Result<(), ForgeError>;
    /// The head commit of PR `number`.
    async fn pr_head_sha(&self, repo: &str, number: u64) -> Result<String, ForgeError>;
    /// The content of `path` in `repo` at commit `sha`; `None` when there is no such file.
    async fn file_at(
        &self,
        repo: &str,
        path: &str,
        sha: &str,
    ) -> Result<Option<Vec<u8>>, ForgeError>;
    /// The files a pull request changes (with the old names of renamed files).
    async fn pull_request_files(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError>;
    /// A token that lets git fetch `repo` over HTTPS (`x-access-token`), if this forge has one.
    async fn git_token(&self, repo: &str) -> Result<Option<String>, ForgeError>;
}

//! The ports of ephemeral GitHub Actions runners: [`Actions`], what is asked of GitHub (is a
//! job still queued, register a just-in-time runner, list and delete runners, the queued jobs
//! of a scope); [`RunnerHost`], where a runner runs (a container, a process on this host); and
//! the [`RunnerRecord`] the store keeps for each job's runner.
//!
//! A just-in-time config is a credential: it lives in a [`SecretString`], is handed to the one
//! runner that needs it, and is never stored, logged or shown.

use super::ForgeError;
use async_trait::async_trait;
pub use gantry_core::runners::Scope;
use gantry_core::runners::lifecycle::Phase;
use serde::{Deserialize, Serialize};

/// A string that is a credential: `Debug` prints `***`; read it with `expose`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> SecretString {
        SecretString(s)
    }

    /// The secret itself, for handing to the one process that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A just-in-time runner's registration: `encoded` is what `run.sh --jitconfig` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitConfig {
    pub runner_id: u64,
    pub runner_name: String,
    pub encoded: SecretString,
}

/// What `generate_jit_config` got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitRegistration {
    Registered(JitConfig),
    /// A runner of that name already exists in the scope (409): an earlier attempt registered
    /// it, so adopt it (find it with `list_runners`) rather than launching a second one.
    AlreadyRegistered,
}

/// A workflow job's `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    InProgress,
    Completed,
    /// GitHub's rarer states (`waiting`, `requested`, `pending`), as given.
    Other(String),
}

impl JobStatus {
    pub fn parse(s: &str) -> JobStatus {
        match s {
            "queued" => JobStatus::Queued,
            "in_progress" => JobStatus::InProgress,
            "completed" => JobStatus::Completed,
            other => JobStatus::Other(other.to_string()),
        }
    }
}

/// A workflow job, as `GET /repos/{owner}/{repo}/actions/jobs/{id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowJob {
    pub id: u64,
    /// The repository (`OWNER/NAME`) the job runs for.
    pub repo: String,
    pub run_id: u64,
    pub run_attempt: u64,
    pub name: String,
    pub head_sha: String,
    pub html_url: String,
    pub status: JobStatus,
    /// `success`, `failure`, `cancelled`… once completed.
    pub conclusion: Option<String>,
    /// The `runs-on` labels.
    pub labels: Vec<String>,
    pub runner_id: Option<u64>,
    pub runner_name: Option<String>,
}

/// A self-hosted runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub id: u64,
    pub name: String,
    pub os: String,
    /// Connected to GitHub (`status: online`).
    pub online: bool,
    pub busy: bool,
    /// Label names, read-only (`self-hosted`, `Linux`…) and custom.
    pub labels: Vec<String>,
}

/// What `delete_runner` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerDeletion {
    Deleted,
    /// Still running a job (422): GitHub refuses; try again after the job.
    Busy,
    /// No such runner (404): already deleted, as a JIT runner is after its job.
    Gone,
}

/// What Gantry asks of GitHub Actions for ephemeral runners.
#[async_trait]
pub trait Actions: Send + Sync + 'static {
    /// `GET /repos/{repo}/actions/jobs/{id}`; `None` when GitHub has no such job.
    async fn workflow_job(
        &self,
        repo: &str,
        job_id: u64,
    ) -> Result<Option<WorkflowJob>, ForgeError>;
    /// `POST …/actions/runners/generate-jitconfig` in the scope.
    async fn generate_jit_config(
        &self,
        scope: &Scope,
        name: &str,
        runner_group_id: u64,
        labels: &[&str],
        work_folder: &str,
    ) -> Result<JitRegistration, ForgeError>;
    /// Every self-hosted runner registered in the scope.
    async fn list_runners(&self, scope: &Scope) -> Result<Vec<Runner>, ForgeError>;
    async fn delete_runner(
        &self,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<RunnerDeletion, ForgeError>;
    /// Jobs waiting for a runner in the scope's repositories.
    async fn queued_jobs(&self, scope: &Scope) -> Result<Vec<WorkflowJob>, ForgeError>;
}

/// The environment variable a runner finds its just-in-time config in (actions/runner reads
/// its `--jitconfig` argument from it too), so that it need not be in the command line.
pub const JITCONFIG_ENV: &str = "ACTIONS_RUNNER_INPUT_JITCONFIG";

/// The placeholder in a pool's command replaced by the just-in-time config.
pub const JITCONFIG_PLACEHOLDER: &str = "{jitconfig}";

/// What a runner host is asked to start.
#[derive(Debug)]
pub struct RunnerLaunch<'a> {
    /// The runner's name (one per job and attempt): its container's or folder's name.
    pub name: &'a str,
    pub pool: &'a str,
    /// The image, for a container host.
    pub image: Option<&'a str>,
    /// The pool's command, with [`JITCONFIG_PLACEHOLDER`] still in it.
    pub command: &'a [String],
    pub jitconfig: &'a SecretString,
}

impl RunnerLaunch<'_> {
    /// The command with the just-in-time config in place of its placeholder.
    pub fn argv(&self) -> Vec<String> {
        self.command
            .iter()
            .map(|a| a.replace(JITCONFIG_PLACEHOLDER, self.jitconfig.expose()))
            .collect()
    }
}

/// A runner found on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedRunner {
    pub name: String,
    pub running: bool,
}

/// Where runners run: containers on Docker, processes on this host.
#[async_trait]
pub trait RunnerHost: Send + Sync + 'static {
    /// Starts the runner (pulling its image if needed); its container or process id. An
    /// error never holds the just-in-time config.
    async fn start(&self, launch: RunnerLaunch<'_>) -> Result<String, String>;
    /// Whether runner `name`'s container or process is running.
    async fn is_running(&self, name: &str) -> Result<bool, String>;
    /// Stops and removes it (and its folder); `Ok` when there was nothing.
    async fn remove(&self, name: &str) -> Result<(), String>;
    /// This instance's runners on the host, running or not.
    async fn list(&self) -> Result<Vec<HostedRunner>, String>;
}

/// A job's runner as stored: which job and pool, where it is in its life, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerRecord {
    /// `gantry-<pool>-<job id>-<attempt>`, the name it is registered under.
    pub name: String,
    pub pool: String,
    /// `owner/name` of the job's repository.
    pub repository: String,
    pub job_id: u64,
    pub run_attempt: u32,
    pub job_name: String,
    pub labels: Vec<String>,
    pub phase: Phase,
    /// The container or process id, once started.
    pub container: Option<String>,
    pub trace_id: String,
    /// The event that queued it (`None` when the reconciler found the job).
    pub event_id: Option<String>,
    pub queued_at_ms: i64,
    pub started_at_ms: Option<i64>,
    /// When GitHub reported the job in progress on it.
    pub claimed_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Runners started for the job so far (a failed start is tried again, a few times).
    pub launches: u32,
    /// Why it ended, or the last problem.
    pub note: Option<String>,
}

/// Which runner records to list.
#[derive(Debug, Clone, Default)]
pub struct RunnerFilter {
    /// Only runners not yet done.
    pub active: bool,
    pub pool: Option<String>,
    /// At most this many, newest first (0: no limit).
    pub limit: u32,
}

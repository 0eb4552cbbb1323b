//! The `Executor` port: where a job attempt runs. An executor prepares the workspace, runs the
//! commands, writes the log, enforces the timeout, obeys cancellation and reports one
//! [`Outcome`].

use async_trait::async_trait;
use gantry_core::dag::Outcome;
use std::path::PathBuf;
use tokio::sync::watch;

/// Everything an executor needs to run one attempt of one job.
#[derive(Debug, Clone)]
pub struct Launch {
    pub run_id: String,
    pub job: String,
    pub attempt: u32,
    pub trace_id: String,
    pub commands: Vec<String>,
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
    pub workspace: PathBuf,
    /// Where the attempt's output goes.
    pub log: crate::logs::AttemptLog,
    pub image: Option<String>,
    /// Secret values the job named, as environment variables; the executor masks them (and
    /// their encodings) in the log.
    pub secrets: Vec<(String, crate::ports::SecretValue)>,
    /// The repository to put in the workspace before the commands run.
    pub checkout: Option<Checkout>,
    /// Lines the engine puts at the top of the log (e.g. which secrets were withheld).
    pub notes: Vec<String>,
    /// User, CPU and memory limits, network (container executors).
    pub container: Option<gantry_core::spec::ContainerOpts>,
    /// What the AWS executor does (the deployer's jobs).
    pub aws: Option<gantry_core::spec::AwsTask>,
    /// Files this job keeps for the jobs that need it, and what those it needs kept.
    pub artifacts: Artifacts,
    /// The job's cache, and the folder of the caches its run may use.
    pub cache: Option<JobCache>,
}

/// A job's `cache` where it lives: keys are folders under `scope/keys` (the scope is the
/// repository's, or a fork pull request's own, or a local run's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCache {
    pub spec: gantry_core::spec::CacheSpec,
    pub scope: PathBuf,
    /// The key's folder, once the executor worked it out before the commands (shared by the
    /// launch's clones, so the save after the commands uses the same key).
    pub resolved: std::sync::Arc<std::sync::OnceLock<PathBuf>>,
}

/// Files passed between a run's jobs: a job keeps some of its workspace when it succeeds (in
/// the engine's artifacts folder), and a job that needs it starts with them in its workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifacts {
    /// The job's `artifacts` paths and globs (none: it keeps nothing).
    pub keep: Vec<String>,
    /// Where what it keeps goes (replacing what an earlier attempt kept).
    pub store: PathBuf,
    /// For each job it needs that keeps artifacts: its name and its store.
    pub take: Vec<(String, PathBuf)>,
}

/// A commit to check out into the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub url: String,
    /// A full commit SHA, or a branch or tag name.
    pub git_ref: String,
    /// `owner/name`, for credentials.
    pub repo: Option<String>,
}

/// Becomes true when the attempt must stop (run cancelled, or the watchdog gave up on it).
#[derive(Debug, Clone)]
pub struct CancelSignal(pub watch::Receiver<bool>);

impl CancelSignal {
    /// Whether cancellation has been requested already.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once cancellation is requested; never resolves if it never is.
    pub async fn cancelled(&mut self) {
        loop {
            if *self.0.borrow() {
                return;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Runs one attempt to its end and says how it ended. Never panics on job failure; an
    /// executor that cannot start the job reports `Failed` and writes why into the log.
    async fn execute(&self, launch: Launch, cancel: CancelSignal) -> Outcome;

    /// Stops attempts left running by an earlier instance of this owner (after a crash), so no
    /// attempt runs twice at once. Returns how many it stopped.
    async fn reap_orphans(&self) -> usize {
        0
    }
}

//! Executors: where a job's commands run. `local` runs them as processes on this machine.
//! `git` puts a job's source into its workspace; `masked_log` writes output with secrets hidden.

mod git;
mod local;
mod masked_log;

pub use git::GitSources;
pub use local::LocalExecutor;

//! Executors: where a job's commands run. `local` runs them as processes on this machine;
//! `docker` in containers of the job's image. `workspace` gives every attempt a new, empty
//! folder first; `git` puts a job's source into it; `masked_log` writes output with secrets
//! hidden.

mod docker;
mod git;
mod isolation;
mod local;
mod masked_log;
mod workspace;

pub use docker::{DockerExecutor, DockerServices, OWNER_LABEL, RUN_LABEL};
pub use git::GitSources;
pub use isolation::{Clean, Isolation, RunAs, SAFE_PATH, keep_jobs_out, running_as_root};
pub use local::LocalExecutor;

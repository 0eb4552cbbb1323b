//! Executors: where a job's commands run. `local` runs them as processes on this machine;
//! `docker` in containers of the job's image. `workspace` gives every attempt a new, empty
//! folder first; `git` puts a job's source into it (`tree`, in a local run, the working tree); `masked_log` writes output with secrets
//! hidden; `pull` pulls a missing image with the credentials of `registry_auth`;
//! `runner_hosts` run GitHub Actions runners (processes or containers).

mod artifacts;
mod cache;
mod docker;
mod git;
mod isolation;
mod local;
mod masked_log;
mod pull;
mod registry_auth;
mod runner_hosts;
mod safe_copy;
mod tree;
mod workspace;

pub use docker::{DockerExecutor, DockerServices, OWNER_LABEL, RUN_LABEL};
pub use git::GitSources;
pub use isolation::{Clean, Isolation, RunAs, SAFE_PATH, keep_jobs_out, running_as_root};
pub use local::LocalExecutor;
pub use pull::{ImageRef, ensure_image};
pub use registry_auth::{Credentials, RegistryAuth, default_docker_config};
pub use runner_hosts::{DockerRunners, LocalRunners};
pub use tree::WorkingTree;
pub use workspace::start as prepare_workspace;

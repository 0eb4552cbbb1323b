//! GitHub behind the `Forge` port: a small REST client for the calls Gantry makes (comments,
//! statuses, pull requests, and Actions' self-hosted runners and jobs), and with feature `fake`
//! a stateful fake GitHub server for tests. The only crate that knows GitHub's REST API.

mod actions;
mod client;
#[cfg(feature = "fake")]
pub mod fake;

pub use actions::{
    JitConfig, JitRegistration, JobStatus, Runner, RunnerDeletion, RunnerScope, SecretString,
    WorkflowJob,
};
pub use client::GitHub;

//! Gantry's pure core: run specs and their validation, job and run statuses, the DAG step that
//! decides what happens next in a run, retries and conditions.
//!
//! Nothing here does I/O, reads a clock or is async: every function takes what it needs
//! (including "now") as arguments, so all of it is tested without a database or a process.

pub mod agents;
pub mod aws_limits;
pub mod bus;
pub mod callback;
pub mod dag;
pub mod deploy;
pub mod duration;
pub mod forge;
pub mod remote;
pub mod report;
pub mod runners;
pub mod secret;
pub mod services;
pub mod size;
pub mod spec;
pub mod status;

pub use status::{JobStatus, RunStatus};

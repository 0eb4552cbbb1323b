//! Executors: where a job's commands run. `local` runs them as processes on this machine.

mod local;

pub use local::LocalExecutor;

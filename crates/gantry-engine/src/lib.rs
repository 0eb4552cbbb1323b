//! Gantry's engine: the ports (traits) through which it reaches the world, and the services
//! that drive the pure core through them: the orchestrator, the journal (group commit), the
//! reconcilers (watchdog, janitor) and recovery.

pub mod agents;
pub mod archive;
pub mod bus;
pub mod deployments;
pub mod ids;
pub mod janitor;
pub mod journal;
pub mod layout;
pub mod lease;
pub mod logs;
pub mod orchestrator;
pub mod pipelines;
pub mod ports;
pub mod reporter;
pub mod runners;
pub mod services;

pub use orchestrator::{
    Engine, EngineConfig, EngineError, Executors, ForkJobs, Preparation, Submitted,
};

//! Ports: what the engine needs from the world, as traits. Adapters (crates `gantry-store`,
//! `gantry-exec`, …) implement them; the engine never names a database, a process or a socket.

pub mod agents;
pub mod blobs;
pub mod clock;
pub mod deployments;
pub mod executor;
pub mod forge;
pub mod runners;
pub mod secrets;
pub mod store;
pub mod target_groups;
pub mod targets;

pub use agents::{AgentQueue, AgentRecord, AgentToken, QueueState, QueuedJob};
pub use blobs::{BlobError, BlobMeta, Blobs};
pub use clock::{Clock, SystemClock};
pub use deployments::{DeployTargets, DeploymentFilter, DeploymentRecord, LookupError};
pub use executor::{Artifacts, CancelSignal, Checkout, Executor, JobCache, Launch};
pub use forge::{CommitState, CommitStatus, Forge, ForgeError};
pub use runners::{
    Actions, HostedRunner, JitConfig, JitRegistration, Runner, RunnerDeletion, RunnerFilter,
    RunnerHost, RunnerLaunch, RunnerRecord, Scope, SecretString, WorkflowJob,
};
pub use secrets::{Resolved, SecretError, SecretMeta, SecretStore, SecretValue};
pub use store::*;
pub use target_groups::{
    RoutedTargetGroups, Target, TargetGroupError, TargetGroups, TargetHealth, TargetStatus,
};
pub use targets::{
    ContainerState, HttpTarget, LabelSelector, ListedContainer, OWNER_LABEL, PostError,
    RoutedRuntimes, ServiceContainer, ServiceRuntime, Services,
};

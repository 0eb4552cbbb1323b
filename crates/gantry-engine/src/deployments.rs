//! Deployer sessions started: a session is a run (one AWS-executor job) submitted with its
//! record in one durable batch. `POST /deploy`, `POST /test` and rules' `deploy` targets all
//! start them here.

use crate::orchestrator::{Engine, EngineError, Submitted};
use crate::ports::{DeploymentRecord, Write};
use gantry_core::deploy::request::{Deploy, deploy_spec};
use gantry_core::spec::{RunContext, RunSpec};

/// The record of a deploy session for `d` (its id and time are set when it starts).
pub fn deploy_record(d: &Deploy) -> DeploymentRecord {
    DeploymentRecord {
        kind: "deploy".into(),
        repository: Some(d.repository.clone()),
        branch: Some(d.branch.clone()),
        stack_name: Some(d.stack_name.clone()),
        region: d.region.clone(),
        ..DeploymentRecord::default()
    }
}

/// Submits a session's run (event `deploy`) with its record and `also`'s writes, durably
/// together; the record takes the run's id as its session id.
pub async fn start_session(
    engine: &Engine,
    spec: RunSpec,
    mut record: DeploymentRecord,
    trace_id: Option<String>,
    also: impl FnOnce(&str) -> Vec<Write>,
) -> Result<Submitted, EngineError> {
    record.created_at_ms = engine.clock_now();
    engine
        .submit_with(
            spec,
            RunContext::of_event("deploy"),
            trace_id,
            move |run_id| {
                record.session_id = run_id.to_string();
                let mut writes = vec![Write::PutDeployment(Box::new(record))];
                writes.extend(also(run_id));
                writes
            },
        )
        .await
}

/// Starts a deploy session for a checked deploy (its repository already allowed).
pub async fn start_deploy(
    engine: &Engine,
    d: &Deploy,
    trace_id: Option<String>,
    also: impl FnOnce(&str) -> Vec<Write>,
) -> Result<Submitted, EngineError> {
    start_session(engine, deploy_spec(d), deploy_record(d), trace_id, also).await
}

//! Creating runs: from a validated spec (optionally recording what started it in the same
//! batch), or as a run that failed before any job could start.

use super::{Command, Engine, EngineError, Submitted};
use crate::ids;
use crate::ports::{RunRecord, Write};
use gantry_core::RunStatus;
use gantry_core::spec::{RunContext, RunSpec};
use std::sync::Arc;
use tokio::sync::oneshot;

impl Engine {
    /// Creates a run from a validated spec. Returns once the run is durable.
    pub async fn submit(
        &self,
        spec: RunSpec,
        context: RunContext,
        trace_id: Option<String>,
    ) -> Result<Submitted, EngineError> {
        self.submit_for_event(spec, context, trace_id, None).await
    }

    /// Creates a run started by stored event `event_id`; the event's outcome (this run) is
    /// written in the same batch as the run, so a crash leaves neither or both.
    pub async fn submit_for_event(
        &self,
        spec: RunSpec,
        context: RunContext,
        trace_id: Option<String>,
        event_id: Option<&str>,
    ) -> Result<Submitted, EngineError> {
        let event_id = event_id.map(str::to_string);
        self.submit_with(spec, context, trace_id, move |run_id| {
            event_id
                .map(|e| Write::SetEventOutcome {
                    id: e,
                    outcome: format!("started run {run_id}"),
                })
                .into_iter()
                .collect()
        })
        .await
    }

    /// Creates a run; `extra(run_id)` is written in the same batch as the run.
    pub async fn submit_with(
        &self,
        spec: RunSpec,
        context: RunContext,
        trace_id: Option<String>,
        extra: impl FnOnce(&str) -> Vec<Write>,
    ) -> Result<Submitted, EngineError> {
        let id = ids::new_run_id();
        let trace_id = trace_id
            .filter(|t| ids::valid_trace_id(t))
            .unwrap_or_else(ids::new_trace_id);
        let record = RunRecord {
            id: id.clone(),
            name: spec.name.clone(),
            status: RunStatus::Queued,
            trace_id: trace_id.clone(),
            jobs: spec
                .jobs
                .iter()
                .enumerate()
                .map(|(i, j)| crate::ports::JobRecord::pending(i, &j.name))
                .collect(),
            spec: std::sync::Arc::new(spec),
            context,
            cancel_requested: false,
            created_at_ms: self.clock.now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
        };
        let extra = extra(&id);
        let (reply, durable) = oneshot::channel();
        self.tx
            .send(Command::Submit {
                record: Box::new(record),
                extra,
                reply,
            })
            .map_err(|_| EngineError::Stopped)?;
        durable.await.map_err(|_| EngineError::Stopped)?;
        Ok(Submitted {
            run_id: id,
            trace_id,
        })
    }

    /// Records a run that failed before any job could start (e.g. an invalid pipeline file):
    /// one job named `job`, failed, whose log holds `message`. Returns once durable.
    pub async fn submit_failed(
        &self,
        name: &str,
        job: &str,
        context: RunContext,
        trace_id: Option<String>,
        event_id: Option<&str>,
        message: &str,
    ) -> Result<Submitted, EngineError> {
        let id = ids::new_run_id();
        let trace_id = trace_id
            .filter(|t| ids::valid_trace_id(t))
            .unwrap_or_else(ids::new_trace_id);
        let now = self.clock.now_ms();
        self.logs
            .attempt(&id, job, 1)
            .note(&format!("gantry: {message}"));
        self.logs.release(&id);
        let mut record = crate::ports::JobRecord::pending(0, job);
        record.status = gantry_core::JobStatus::Failed;
        record.started_at_ms = Some(now);
        record.finished_at_ms = Some(now);
        let spec = RunSpec {
            name: name.to_string(),
            ..RunSpec::default()
        };
        let run = RunRecord {
            id: id.clone(),
            name: name.to_string(),
            status: RunStatus::Failed,
            trace_id: trace_id.clone(),
            spec: Arc::new(spec),
            context,
            cancel_requested: false,
            created_at_ms: now,
            started_at_ms: Some(now),
            finished_at_ms: Some(now),
            jobs: vec![record],
        };
        let mut writes = vec![
            Write::InsertRun(Box::new(run)),
            Write::Audit(crate::ports::AuditRecord {
                seq: 0,
                at_ms: now,
                trace_id: trace_id.clone(),
                run_id: id.clone(),
                job: Some(job.to_string()),
                attempt: Some(1),
                from: None,
                to: "failed".into(),
                note: Some(message.to_string()),
            }),
        ];
        if let Some(e) = event_id {
            writes.push(Write::SetEventOutcome {
                id: e.to_string(),
                outcome: format!("started run {id}, which failed: {message}"),
            });
        }
        self.journal.append_durable(writes).await?;
        Ok(Submitted {
            run_id: id,
            trace_id,
        })
    }
}

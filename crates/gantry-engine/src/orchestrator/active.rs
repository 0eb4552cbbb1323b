//! A run the orchestrator is driving: its spec (with its graph) and state in memory, the cancel
//! handles of its running attempts, and the conversion of core transitions into store writes.

use crate::ports::{AuditRecord, JobRecord, RunRecord, Write};
use gantry_core::dag::{JobState, RunState, Stepper, Transition};
use gantry_core::spec::{RunContext, RunSpec};
use std::collections::HashMap;
use tokio::sync::watch;

pub(crate) struct ActiveRun {
    pub id: String,
    pub name: String,
    pub trace_id: String,
    /// The spec, and through it the job graph it is stepped along (`spec.graph()`).
    pub spec: std::sync::Arc<RunSpec>,
    pub ctx: RunContext,
    pub state: RunState,
    /// Steps the run, remembering what lets a step look only at the jobs that can move.
    pub stepper: Stepper,
    /// Cancel switches of running attempts, by job index.
    pub cancels: HashMap<usize, watch::Sender<bool>>,
    /// Claimed attempts, by job index: the journal mark of the batch that records the claim
    /// (see `step.rs`). Empty for a run read from the store: adopting a run marks its claimed
    /// attempts lost (`recovery.rs`).
    pub claims: HashMap<usize, u64>,
    /// The last step left queued jobs waiting for a free slot.
    pub starved: bool,
    pub wake_at_ms: Option<i64>,
}

impl ActiveRun {
    /// The run's in-memory state as `rec` says (the record itself is left to be written).
    pub fn from_record(rec: &RunRecord) -> ActiveRun {
        let jobs: Vec<JobState> = rec
            .jobs
            .iter()
            .map(|j| JobState {
                status: j.status,
                attempt: j.attempt,
                not_before_ms: j.not_before_ms,
                exit_code: j.exit_code,
                started_at_ms: j.started_at_ms,
                finished_at_ms: j.finished_at_ms,
                retries_used: j.retries_used,
                lost_reruns: j.lost_reruns,
                claimed: j.claimed,
            })
            .collect();
        let state = RunState {
            status: rec.status,
            cancel_requested: rec.cancel_requested,
            jobs,
            started_at_ms: rec.started_at_ms,
            finished_at_ms: rec.finished_at_ms,
        };
        ActiveRun {
            id: rec.id.clone(),
            name: rec.name.clone(),
            trace_id: rec.trace_id.clone(),
            stepper: Stepper::new(rec.spec.graph(), &state),
            ctx: rec.context.clone(),
            state,
            spec: rec.spec.clone(),
            cancels: HashMap::new(),
            claims: HashMap::new(),
            starved: false,
            wake_at_ms: None,
        }
    }

    pub fn job_record(&self, i: usize) -> JobRecord {
        let j = &self.state.jobs[i];
        JobRecord {
            index: i as u32,
            name: self.spec.jobs[i].name.clone(),
            status: j.status,
            attempt: j.attempt,
            exit_code: j.exit_code,
            started_at_ms: j.started_at_ms,
            finished_at_ms: j.finished_at_ms,
            not_before_ms: j.not_before_ms,
            retries_used: j.retries_used,
            lost_reruns: j.lost_reruns,
            claimed: j.claimed,
        }
    }

    pub fn run_write(&self) -> Write {
        Write::UpdateRun {
            id: self.id.clone(),
            status: self.state.status,
            cancel_requested: self.state.cancel_requested,
            started_at_ms: self.state.started_at_ms,
            finished_at_ms: self.state.finished_at_ms,
        }
    }

    /// The writes that persist and audit one transition.
    pub fn writes_for(&self, t: &Transition, now_ms: i64, out: &mut Vec<Write>) {
        match t {
            Transition::Run { from, to } => {
                out.push(self.run_write());
                out.push(Write::Audit(AuditRecord {
                    seq: 0,
                    at_ms: now_ms,
                    trace_id: self.trace_id.clone(),
                    run_id: self.id.clone(),
                    job: None,
                    attempt: None,
                    from: Some(from.to_string()),
                    to: to.to_string(),
                    note: None,
                }));
            }
            // A claim is the engine's own bookkeeping: stored, not audited.
            Transition::Claimed { job } => out.push(Write::UpdateJob {
                run_id: self.id.clone(),
                job: self.job_record(*job),
            }),
            Transition::Job {
                job,
                from,
                to,
                attempt,
                note,
            } => {
                out.push(Write::UpdateJob {
                    run_id: self.id.clone(),
                    job: self.job_record(*job),
                });
                out.push(Write::Audit(AuditRecord {
                    seq: 0,
                    at_ms: now_ms,
                    trace_id: self.trace_id.clone(),
                    run_id: self.id.clone(),
                    job: Some(self.spec.jobs[*job].name.clone()),
                    attempt: Some(*attempt),
                    from: Some(from.to_string()),
                    to: to.to_string(),
                    note: note.clone(),
                }));
            }
        }
    }

    /// An audit entry that is not a state change (a note about the run).
    pub fn note(&self, job: Option<usize>, what: &str, note: String, now_ms: i64) -> Write {
        Write::Audit(AuditRecord {
            seq: 0,
            at_ms: now_ms,
            trace_id: self.trace_id.clone(),
            run_id: self.id.clone(),
            job: job.map(|j| self.spec.jobs[j].name.clone()),
            attempt: job.map(|j| self.state.jobs[j].attempt),
            from: None,
            to: what.to_string(),
            note: Some(note),
        })
    }
}

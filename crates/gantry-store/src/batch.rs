//! A batch of [`Write`]s sorted for one transaction, for both backends: inserts first, then the
//! last update of each run and job (the same final state as the batch's own order, in an order
//! that respects foreign keys); job rows as one JSON array; a run's audit records as one
//! `audit_chunks` row per batch (see the `audit_chunks` migration), their JSON kept as text.

use crate::rows::json_rows;
use gantry_engine::ports::*;
use std::collections::HashMap;

/// The events a batch inserts, in batch order (the order their payload places follow).
pub(crate) fn inserted_events(batch: &[Write]) -> Vec<&EventRecord> {
    batch
        .iter()
        .filter_map(|w| match w {
            Write::InsertEvent(e) => Some(e.as_ref()),
            _ => None,
        })
        .collect()
}

/// A batch's writes, by kind.
#[derive(Default)]
pub(crate) struct Sorted<'a> {
    pub inserts: Vec<&'a RunRecord>,
    /// Each run's last `UpdateRun`.
    pub run_updates: HashMap<&'a str, &'a Write>,
    /// The job rows the batch leaves (each job's last update), as one JSON array of `JobRow`s.
    pub jobs: Option<String>,
    pub events: Vec<&'a EventRecord>,
    pub outcomes: Vec<(&'a String, &'a String)>,
    /// Rules, deliveries, schedule fires, runners and deployments, in batch order.
    pub bus: Vec<&'a Write>,
    pub chunks: Vec<Chunk<'a>>,
    pub leases: Vec<&'a Write>,
}

impl<'a> Sorted<'a> {
    pub fn new(batch: &'a [Write]) -> StoreResult<Sorted<'a>> {
        let mut s = Sorted::default();
        let mut job_updates: HashMap<(&str, u32), (&str, &JobRecord)> = HashMap::new();
        let mut job_order = Vec::new();
        let mut audits = Vec::new();
        for w in batch {
            match w {
                Write::InsertRun(r) => s.inserts.push(r.as_ref()),
                Write::UpdateRun { id, .. } => {
                    s.run_updates.insert(id.as_str(), w);
                }
                Write::UpdateJob { run_id, job } => {
                    let key = (run_id.as_str(), job.index);
                    if job_updates.insert(key, (run_id.as_str(), job)).is_none() {
                        job_order.push(key);
                    }
                }
                Write::Audit(a) => audits.push(a),
                Write::InsertEvent(e) => s.events.push(e.as_ref()),
                Write::SetEventOutcome { id, outcome } => s.outcomes.push((id, outcome)),
                Write::PutRule(_)
                | Write::DeleteRule { .. }
                | Write::PutDelivery(_)
                | Write::SetScheduleFire { .. }
                | Write::PutRunner(_)
                | Write::PutDeployment(_) => s.bus.push(w),
                Write::RenewLeases { .. } | Write::ReleaseLease { .. } => s.leases.push(w),
            }
        }
        s.jobs = job_rows(&job_order, &job_updates)?;
        s.chunks = audit_chunks(&audits)?;
        Ok(s)
    }

    /// Whether the batch holds only events and their outcomes (webhook intake).
    pub fn events_and_outcomes_only(&self) -> bool {
        self.inserts.is_empty()
            && self.run_updates.is_empty()
            && self.jobs.is_none()
            && self.bus.is_empty()
            && self.chunks.is_empty()
            && self.leases.is_empty()
    }

    /// Whether the batch only moves jobs (with at most one run's audit records).
    pub fn moves_only(&self) -> bool {
        self.inserts.is_empty()
            && self.run_updates.is_empty()
            && self.events.is_empty()
            && self.outcomes.is_empty()
            && self.bus.is_empty()
            && self.leases.is_empty()
            && self.chunks.len() <= 1
    }
}

/// The job rows a batch leaves (each job's last update), as one JSON array; `None` if none.
fn job_rows(
    job_order: &[(&str, u32)],
    job_updates: &HashMap<(&str, u32), (&str, &JobRecord)>,
) -> StoreResult<Option<String>> {
    if job_order.is_empty() {
        return Ok(None);
    }
    let mut by_run: Vec<(&str, &JobRecord)> = job_order.iter().map(|k| job_updates[k]).collect();
    by_run.sort_by_key(|(r, j)| (*r, j.index));
    json_rows(by_run.iter().map(|(run_id, j)| job_row(run_id, j))).map(Some)
}

/// A job's row, serialized as the JSON array the job statements read (a tuple is an array):
/// run, idx, name, status, attempt, exit code, started, finished, not before, retries used,
/// lost reruns.
pub(crate) type JobRow<'a> = (
    &'a str,
    u32,
    &'a str,
    &'a str,
    u32,
    Option<i32>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    u32,
    u32,
    u8,
);

pub(crate) fn job_row<'a>(run_id: &'a str, j: &'a JobRecord) -> JobRow<'a> {
    (
        run_id,
        j.index,
        &j.name,
        j.status.as_str(),
        j.attempt,
        j.exit_code,
        j.started_at_ms,
        j.finished_at_ms,
        j.not_before_ms,
        j.retries_used,
        j.lost_reruns,
        u8::from(j.claimed),
    )
}

/// A run's audit records in one batch, to be stored as one `audit_chunks` row.
pub(crate) struct Chunk<'a> {
    pub run_id: &'a str,
    pub trace_id: &'a str,
    pub n: i64,
    pub last_at_ms: i64,
    /// The records as the JSON array `audit_chunks.records` holds, in batch order.
    pub records: String,
}

/// One audit record as `audit_chunks.records` holds it: at, job, attempt, from, to, note
/// (written by `audit_chunks`, read back by the trail).
pub(crate) type AuditRow = (
    i64,
    Option<String>,
    Option<u32>,
    Option<String>,
    String,
    Option<String>,
);

/// The batch's audit records as one chunk per run (and trace), in the order the runs first
/// appear; each chunk keeps its records in batch order.
fn audit_chunks<'a>(audits: &[&'a AuditRecord]) -> StoreResult<Vec<Chunk<'a>>> {
    let mut runs: Vec<(&str, &str, Vec<&AuditRecord>)> = Vec::new();
    for a in audits.iter().copied() {
        let key = (a.run_id.as_str(), a.trace_id.as_str());
        match runs.iter_mut().find(|(r, t, _)| (*r, *t) == key) {
            Some((_, _, records)) => records.push(a),
            None => runs.push((key.0, key.1, vec![a])),
        }
    }
    runs.into_iter()
        .map(|(run_id, trace_id, records)| {
            Ok(Chunk {
                run_id,
                trace_id,
                n: records.len() as i64,
                last_at_ms: records.iter().map(|a| a.at_ms).max().unwrap_or(0),
                records: json_rows(
                    records
                        .iter()
                        .map(|a| (a.at_ms, &a.job, a.attempt, &a.from, &a.to, &a.note)),
                )?,
            })
        })
        .collect()
}

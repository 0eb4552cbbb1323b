//! What users read about runs: the run object, with its jobs (API responses and `--json`), and
//! RFC 3339 times.

use gantry_engine::ports::{AuditRecord, RunRecord};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RunView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub trace_id: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct JobView {
    pub name: String,
    pub status: String,
    pub exit_code: Option<i32>,
    pub attempt: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub seq: i64,
    pub at: String,
    pub trace_id: String,
    pub job: Option<String>,
    pub attempt: Option<u32>,
    pub from: Option<String>,
    pub to: String,
    pub note: Option<String>,
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<&RunRecord> for RunView {
    fn from(r: &RunRecord) -> Self {
        RunView {
            id: r.id.clone(),
            name: r.name.clone(),
            status: r.status.to_string(),
            trace_id: r.trace_id.clone(),
            created_at: rfc3339(r.created_at_ms),
            finished_at: r.finished_at_ms.map(rfc3339),
            jobs: r
                .jobs
                .iter()
                .map(|j| JobView {
                    name: j.name.clone(),
                    status: j.status.to_string(),
                    exit_code: j.exit_code,
                    attempt: j.attempt,
                    started_at: j.started_at_ms.map(rfc3339),
                    finished_at: j.finished_at_ms.map(rfc3339),
                })
                .collect(),
        }
    }
}

impl From<&AuditRecord> for AuditView {
    fn from(a: &AuditRecord) -> Self {
        AuditView {
            seq: a.seq,
            at: rfc3339(a.at_ms),
            trace_id: a.trace_id.clone(),
            job: a.job.clone(),
            attempt: a.attempt,
            from: a.from.clone(),
            to: a.to.clone(),
            note: a.note.clone(),
        }
    }
}

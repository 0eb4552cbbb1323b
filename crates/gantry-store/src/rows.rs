//! Conversions between rows and the engine's records, for both backends: a row is read by
//! column name through [`Cols`] (every integer column is a 64-bit integer on both), records
//! are written as the JSON rows a statement reads (`jsonb_each` on SQLite,
//! `jsonb_array_elements` on PostgreSQL).

use gantry_core::{JobStatus, RunStatus};
use gantry_engine::ports::{EventRecord, JobRecord, RunRecord, StoreError};
use sqlx::Row;

pub(crate) fn db(err: sqlx::Error) -> StoreError {
    StoreError::Database(err.to_string())
}

/// A list's page size: 50 unless asked, at most 1000.
pub(crate) fn page_size(asked: u32) -> i64 {
    i64::from(if asked == 0 { 50 } else { asked.min(1000) })
}

/// A row's columns by name, as the few types the records are made of.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
}

macro_rules! cols_for {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, col: &str) -> Result<String, StoreError> {
                self.try_get(col).map_err(db)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
                self.try_get(col).map_err(db)
            }
            fn int(&self, col: &str) -> Result<i64, StoreError> {
                self.try_get(col).map_err(db)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(col).map_err(db)
            }
        }
    };
}
cols_for!(sqlx::sqlite::SqliteRow);
cols_for!(sqlx::postgres::PgRow);

/// Rows as one JSON array text, for a statement that reads them with `jsonb_each(?)` (or, for
/// `audit_chunks.records`, keeps them as text).
pub(crate) fn json_rows<T: serde::Serialize>(
    rows: impl Iterator<Item = T>,
) -> Result<String, StoreError> {
    serde_json::to_string(&rows.collect::<Vec<_>>()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn run_from_row(row: &impl Cols) -> Result<RunRecord, StoreError> {
    let status: String = row.text("status")?;
    let spec: String = row.text("spec")?;
    let context: String = row.text("context")?;
    let id: String = row.text("id")?;
    Ok(RunRecord {
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run {id}: unknown status `{status}`")))?,
        spec: serde_json::from_str(&spec)
            .map_err(|e| StoreError::Corrupt(format!("run {id}: spec: {e}")))?,
        context: serde_json::from_str(&context)
            .map_err(|e| StoreError::Corrupt(format!("run {id}: context: {e}")))?,
        name: row.text("name")?,
        trace_id: row.text("trace_id")?,
        cancel_requested: row.int("cancel_requested")? != 0,
        created_at_ms: row.int("created_at")?,
        started_at_ms: row.opt_int("started_at")?,
        finished_at_ms: row.opt_int("finished_at")?,
        jobs: Vec::new(),
        id,
    })
}

pub(crate) fn job_from_row(row: &impl Cols) -> Result<(String, JobRecord), StoreError> {
    let status: String = row.text("status")?;
    Ok((
        row.text("run_id")?,
        JobRecord {
            index: row.int("idx")? as u32,
            name: row.text("name")?,
            status: JobStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown job status `{status}`")))?,
            attempt: row.int("attempt")? as u32,
            exit_code: row.opt_int("exit_code")?.map(|c| c as i32),
            started_at_ms: row.opt_int("started_at")?,
            finished_at_ms: row.opt_int("finished_at")?,
            not_before_ms: row.opt_int("not_before")?,
            retries_used: row.int("retries_used")? as u32,
            lost_reruns: row.int("lost_reruns")? as u32,
            claimed: row.int("claimed")? != 0,
        },
    ))
}

pub(crate) fn event_from_row(
    row: &impl Cols,
    with_payload: bool,
) -> Result<EventRecord, StoreError> {
    let rules: String = row.text("rules_matched")?;
    Ok(EventRecord {
        id: row.text("id")?,
        source: row.text("source")?,
        event_type: row.text("type")?,
        delivery_id: row.opt_text("delivery_id")?,
        action: row.opt_text("action")?,
        repository: row.opt_text("repository")?,
        installation_id: row.opt_int("installation_id")?,
        payload: if with_payload {
            row.text("detail")?
        } else {
            String::new()
        },
        trace_id: row.text("trace_id")?,
        received_at_ms: row.int("received_at")?,
        rules_matched: serde_json::from_str(&rules)
            .map_err(|e| StoreError::Corrupt(format!("event rules_matched: {e}")))?,
        outcome: row.opt_text("outcome")?,
    })
}

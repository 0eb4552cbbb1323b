//! Conversions between rows and the engine's records: a row read into a record, records
//! written as the JSON rows a statement reads with `jsonb_each(?)`.

use gantry_core::{JobStatus, RunStatus};
use gantry_engine::ports::{EventRecord, JobRecord, RunRecord, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

pub(crate) fn db(err: sqlx::Error) -> StoreError {
    StoreError::Database(err.to_string())
}

/// Rows as one JSON array text, for a statement that reads them with `jsonb_each(?)` (or, for
/// `audit_chunks.records`, keeps them as text).
pub(crate) fn json_rows<T: serde::Serialize>(
    rows: impl Iterator<Item = T>,
) -> Result<String, StoreError> {
    serde_json::to_string(&rows.collect::<Vec<_>>()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn run_from_row(row: &SqliteRow) -> Result<RunRecord, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    let spec: String = row.try_get("spec").map_err(db)?;
    let context: String = row.try_get("context").map_err(db)?;
    let id: String = row.try_get("id").map_err(db)?;
    Ok(RunRecord {
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run {id}: unknown status `{status}`")))?,
        spec: serde_json::from_str(&spec)
            .map_err(|e| StoreError::Corrupt(format!("run {id}: spec: {e}")))?,
        context: serde_json::from_str(&context)
            .map_err(|e| StoreError::Corrupt(format!("run {id}: context: {e}")))?,
        name: row.try_get("name").map_err(db)?,
        trace_id: row.try_get("trace_id").map_err(db)?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested").map_err(db)? != 0,
        created_at_ms: row.try_get("created_at").map_err(db)?,
        started_at_ms: row.try_get("started_at").map_err(db)?,
        finished_at_ms: row.try_get("finished_at").map_err(db)?,
        jobs: Vec::new(),
        id,
    })
}

pub(crate) fn job_from_row(row: &SqliteRow) -> Result<(String, JobRecord), StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    Ok((
        row.try_get("run_id").map_err(db)?,
        JobRecord {
            index: row.try_get::<i64, _>("idx").map_err(db)? as u32,
            name: row.try_get("name").map_err(db)?,
            status: JobStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown job status `{status}`")))?,
            attempt: row.try_get::<i64, _>("attempt").map_err(db)? as u32,
            exit_code: row
                .try_get::<Option<i64>, _>("exit_code")
                .map_err(db)?
                .map(|c| c as i32),
            started_at_ms: row.try_get("started_at").map_err(db)?,
            finished_at_ms: row.try_get("finished_at").map_err(db)?,
            not_before_ms: row.try_get("not_before").map_err(db)?,
            retries_used: row.try_get::<i64, _>("retries_used").map_err(db)? as u32,
            lost_reruns: row.try_get::<i64, _>("lost_reruns").map_err(db)? as u32,
        },
    ))
}

pub(crate) fn event_from_row(
    row: &SqliteRow,
    with_payload: bool,
) -> Result<EventRecord, StoreError> {
    let rules: String = row.try_get("rules_matched").map_err(db)?;
    Ok(EventRecord {
        id: row.try_get("id").map_err(db)?,
        source: row.try_get("source").map_err(db)?,
        event_type: row.try_get("type").map_err(db)?,
        delivery_id: row.try_get("delivery_id").map_err(db)?,
        action: row.try_get("action").map_err(db)?,
        repository: row.try_get("repository").map_err(db)?,
        installation_id: row.try_get("installation_id").map_err(db)?,
        payload: if with_payload {
            row.try_get("detail").map_err(db)?
        } else {
            String::new()
        },
        trace_id: row.try_get("trace_id").map_err(db)?,
        received_at_ms: row.try_get("received_at").map_err(db)?,
        rules_matched: serde_json::from_str(&rules)
            .map_err(|e| StoreError::Corrupt(format!("event rules_matched: {e}")))?,
        outcome: row.try_get("outcome").map_err(db)?,
    })
}

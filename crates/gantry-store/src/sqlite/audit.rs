//! The audit trail's chunks (see the `audit_chunks` migration): a run's records of one batch as
//! one row, their JSON kept as text. The chunks are made here and read back here; `write.rs`
//! puts them in its transaction (it uses this module, not the other way round).

use crate::rows::{db, json_rows};
use gantry_engine::ports::*;
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteArguments, SqlitePool};

/// A run's audit records in one batch, to be stored as one `audit_chunks` row.
pub(super) struct Chunk<'a> {
    run_id: &'a str,
    trace_id: &'a str,
    n: i64,
    last_at_ms: i64,
    /// The records as the JSON array `audit_chunks.records` holds, in batch order.
    records: String,
}

impl Chunk<'_> {
    /// Binds the chunk's parameters, in the order `insert_audit_chunk!` takes them.
    pub(super) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Sqlite, SqliteArguments>,
    ) -> sqlx::query::Query<'q, Sqlite, SqliteArguments> {
        query
            .bind(self.n)
            .bind(self.n)
            .bind(self.run_id)
            .bind(self.trace_id)
            .bind(self.last_at_ms)
            .bind(self.records.as_str())
    }
}

/// One audit record as `audit_chunks.records` holds it: at, job, attempt, from, to, note
/// (written by `audit_chunks`, read back by `trail`).
pub(super) type AuditRow = (
    i64,
    Option<String>,
    Option<u32>,
    Option<String>,
    String,
    Option<String>,
);

/// The batch's audit records as one chunk per run (and trace), in the order the runs first
/// appear; each chunk keeps its records in batch order.
pub(super) fn audit_chunks<'a>(audits: &[&'a AuditRecord]) -> StoreResult<Vec<Chunk<'a>>> {
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

pub(super) async fn trail(read: &SqlitePool, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
    let chunks: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT last_seq, n, trace_id, records FROM audit_chunks
         WHERE run_id = ? ORDER BY last_seq",
    )
    .bind(run_id)
    .fetch_all(read)
    .await
    .map_err(db)?;
    let mut trail = Vec::new();
    for (last_seq, n, trace_id, records) in chunks {
        let rows: Vec<AuditRow> = serde_json::from_str(&records).map_err(|e| {
            StoreError::Corrupt(format!("audit chunk {last_seq} of run {run_id}: {e}"))
        })?;
        if rows.len() as i64 != n {
            return Err(StoreError::Corrupt(format!(
                "audit chunk {last_seq} of run {run_id} holds {} records, not {n}",
                rows.len()
            )));
        }
        let first_seq = last_seq - n + 1;
        trail.extend(rows.into_iter().zip(first_seq..).map(
            |((at_ms, job, attempt, from, to, note), seq)| AuditRecord {
                seq,
                at_ms,
                trace_id: trace_id.clone(),
                run_id: run_id.to_string(),
                job,
                attempt,
                from,
                to,
                note,
            },
        ));
    }
    Ok(trail)
}

//! The SQLite write path: a batch of [`Write`]s applied in one transaction, sorted as
//! `crate::batch` says (the statements both backends share are in `crate::shared`). Job rows go in as one JSON array per
//! statement, read by `jsonb_each` (parsed once into SQLite's binary JSON, so each column is
//! picked without parsing the row again); the statement's text is the same whatever the number
//! of rows, so SQLite prepares it once per connection instead of once per batch. A run's audit
//! records go in as one `audit_chunks` row per batch, their JSON kept as text. A batch that
//! only moves jobs (most of a busy run's commits) goes to SQLite's thread as one statement
//! text, its transaction included: one round trip instead of four.

use super::payloads::Payloads;
use crate::batch::{Chunk, Sorted};
use crate::payload_blobs::BlobRef;
use crate::rows::db;
use crate::shared::sqlite::writes;
use gantry_engine::ports::*;
use sqlx::sqlite::SqliteArguments;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// Job rows from a JSON array of `job_row`s (`upsert_jobs` adds its conflict clause).
macro_rules! insert_jobs {
    () => {
        "INSERT INTO jobs (run_id, idx, name, status, attempt, exit_code, started_at, finished_at, not_before,
                           retries_used, lost_reruns, claimed)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8,
                value->>9, value->>10, value->>11
         FROM jsonb_each(?)"
    };
}

/// Job rows from a JSON array, each replacing the job's row if it has one.
/// (`WHERE true` keeps `ON CONFLICT` from parsing as a join's `ON`.)
macro_rules! upsert_jobs {
    () => {
        concat!(
            insert_jobs!(),
            " WHERE true
         ON CONFLICT (run_id, idx) DO UPDATE SET status = excluded.status, attempt = excluded.attempt,
           exit_code = excluded.exit_code, started_at = excluded.started_at,
           finished_at = excluded.finished_at, not_before = excluded.not_before,
           retries_used = excluded.retries_used, lost_reruns = excluded.lost_reruns,
           claimed = excluded.claimed"
        )
    };
}

/// One chunk of a run's audit records (see the `audit_chunks` migration): its key is the seq of
/// its last record, the sequence's last value plus its size. Parameters: n, n, run, trace,
/// last time, records.
macro_rules! insert_audit_chunk {
    () => {
        "INSERT INTO audit_chunks (last_seq, n, run_id, trace_id, last_at, records)
         VALUES (coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_chunks'), 0) + ?,
                 ?, ?, ?, ?, ?)"
    };
}

/// Events carry whole payloads (GitHub allows 25 MB): fewer per statement.
const EVENTS_PER_STATEMENT: usize = 64;

pub(super) use crate::batch::inserted_events;

/// Applies `batch` in one transaction on `pool` (the synced or the unsynced writer);
/// `payloads` (started for the batch's events) are durable before it commits; the events of
/// `blobs` have their payloads in the object store.
pub(super) async fn commit(
    pool: &sqlx::SqlitePool,
    batch: &[Write],
    payloads: Payloads,
    blobs: &HashMap<String, BlobRef>,
) -> StoreResult<Committed> {
    let sorted = Sorted::new(batch)?;
    let mut conn = pool.acquire().await.map_err(db)?;
    if sorted.moves_only() {
        return commit_moves(&mut conn, sorted.jobs, sorted.chunks.first()).await;
    }
    commit_all(&mut conn, &sorted, payloads, blobs).await
}

/// Applies a batch of any kind in one transaction, in an order that respects foreign keys.
async fn commit_all(
    conn: &mut SqliteConnection,
    s: &Sorted<'_>,
    payloads: Payloads,
    blobs: &HashMap<String, BlobRef>,
) -> StoreResult<Committed> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
    writes::insert_runs(&mut tx, &s.inserts, insert_jobs!()).await?;
    writes::update_runs(&mut tx, s).await?;
    if let Some(rows) = &s.jobs {
        sqlx::query(upsert_jobs!())
            .bind(rows.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let committed = insert_events(&mut tx, &s.events, &payloads.places, blobs).await?;
    writes::after_events(&mut tx, s).await?;
    for chunk in &s.chunks {
        bind_chunk(sqlx::query(insert_audit_chunk!()), chunk)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    writes::leases(&mut tx, &s.leases).await?;
    payloads.durable().await?;
    tx.commit().await.map_err(db)?;
    Ok(committed)
}

/// Binds a chunk's parameters, in the order `insert_audit_chunk!` takes them.
fn bind_chunk<'q>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments>,
    chunk: &'q Chunk<'_>,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments> {
    query
        .bind(chunk.n)
        .bind(chunk.n)
        .bind(chunk.run_id)
        .bind(chunk.trace_id)
        .bind(chunk.last_at_ms)
        .bind(chunk.records.as_str())
}

/// A batch that only moves jobs (the bulk of a busy run's commits), in one statement: its
/// transaction, rows and commit go to SQLite's thread in one round trip. The text is one of a
/// few, so its prepared form is cached like any other statement's.
async fn commit_moves(
    conn: &mut SqliteConnection,
    jobs: Option<String>,
    chunk: Option<&Chunk<'_>>,
) -> StoreResult<Committed> {
    macro_rules! around {
        ($($body:expr),+) => {
            concat!("BEGIN IMMEDIATE; ", $($body),+, "; COMMIT")
        };
    }
    let text = match (jobs.is_some(), chunk.is_some()) {
        (false, false) => return Ok(Committed::default()),
        (true, false) => around!(upsert_jobs!()),
        (true, true) => around!(upsert_jobs!(), "; ", insert_audit_chunk!()),
        (false, true) => around!(insert_audit_chunk!()),
    };
    // Parameters in the order they appear in the text.
    let mut query = sqlx::query(text);
    if let Some(rows) = jobs {
        query = query.bind(rows);
    }
    if let Some(chunk) = chunk {
        query = bind_chunk(query, chunk);
    }
    match query.execute(&mut *conn).await {
        Ok(_) => Ok(Committed::default()),
        Err(e) => {
            // A statement failed: nothing of the batch is kept (its transaction may still be
            // open, and is rolled back; if it is not open, this fails harmlessly).
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(db(e))
        }
    }
}

/// Inserts the batch's events (each at its payload place: the row, a segment, or the object
/// store); says which were duplicates.
async fn insert_events(
    tx: &mut SqliteConnection,
    events: &[&EventRecord],
    places: &[Option<crate::segments::Location>],
    blobs: &HashMap<String, BlobRef>,
) -> StoreResult<Committed> {
    // A delivery already stored, or earlier in this batch, is a duplicate: not inserted,
    // reported. This transaction is the only writer, so the check cannot race. (One
    // query per chunk that returns only the duplicates, usually none: cheaper than an
    // insert returning a row per event.)
    let mut committed = Committed::default();
    let mut in_batch: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (chunk, places) in events
        .chunks(EVENTS_PER_STATEMENT)
        .zip(places.chunks(EVENTS_PER_STATEMENT))
    {
        let deliveries: Vec<&str> = chunk
            .iter()
            .filter_map(|e| e.delivery_id.as_deref())
            .collect();
        let mut stored_before = std::collections::HashSet::new();
        if !deliveries.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT delivery_id FROM events WHERE delivery_id IN (",
            );
            let mut list = q.separated(", ");
            for d in &deliveries {
                list.push_bind(d.to_string());
            }
            q.push(")");
            for row in q.build().fetch_all(&mut *tx).await.map_err(db)? {
                stored_before.insert(row.try_get::<String, _>("delivery_id").map_err(db)?);
            }
        }
        let mut fresh = Vec::with_capacity(chunk.len());
        for (e, at) in chunk.iter().zip(places) {
            let duplicate = e
                .delivery_id
                .as_deref()
                .is_some_and(|d| stored_before.contains(d) || !in_batch.insert(d));
            if duplicate {
                committed.duplicate_events.insert(e.id.clone());
            } else {
                fresh.push((e, at));
            }
        }
        if fresh.is_empty() {
            continue;
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, source, type, delivery_id, detail, trace_id, received_at,
                                     action, repository, installation_id, rules_matched,
                                     payload_segment, payload_offset, payload_len,
                                     payload_key, payload_size, payload_digest) ",
        );
        q.push_values(fresh, |mut b, (e, at)| {
            let blob = blobs.get(&e.id);
            b.push_bind(e.id.clone())
                .push_bind(e.source.clone())
                .push_bind(e.event_type.clone())
                .push_bind(e.delivery_id.clone())
                .push_bind(if at.is_some() || blob.is_some() {
                    String::new()
                } else {
                    e.payload.clone()
                })
                .push_bind(e.trace_id.clone())
                .push_bind(e.received_at_ms)
                .push_bind(e.action.clone())
                .push_bind(e.repository.clone())
                .push_bind(e.installation_id)
                .push_bind(serde_json::to_string(&e.rules_matched).unwrap_or_else(|_| "[]".into()))
                .push_bind(at.map(|l| l.segment))
                .push_bind(at.map(|l| l.offset))
                .push_bind(at.map(|l| l.len))
                .push_bind(blob.map(|r| r.key.clone()))
                .push_bind(blob.map(|r| r.size))
                .push_bind(blob.map(|r| r.digest.clone()));
        });
        q.build().execute(&mut *tx).await.map_err(db)?;
    }
    Ok(committed)
}

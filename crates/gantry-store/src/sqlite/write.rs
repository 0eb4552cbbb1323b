//! The SQLite write path: a batch of [`Write`]s applied in one transaction, in an order that
//! respects foreign keys and gives the same final state as the batch's own order (inserts
//! first, then the last update of each run and job). Job rows go in as one JSON array per
//! statement, read by `jsonb_each` (parsed once into SQLite's binary JSON, so each column is
//! picked without parsing the row again); the statement's text is the same whatever the number
//! of rows, so SQLite prepares it once per connection instead of once per batch. A run's audit
//! records go in as one `audit_chunks` row per batch, their JSON kept as text. A batch that
//! only moves jobs (most of a busy run's commits) goes to SQLite's thread as one statement
//! text, its transaction included: one round trip instead of four.

use super::audit::{Chunk, audit_chunks};
use super::payloads::Payloads;
use crate::rows::{db, json_rows};
use gantry_engine::ports::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// Job rows from a JSON array of `job_row`s (`upsert_jobs` adds its conflict clause).
macro_rules! insert_jobs {
    () => {
        "INSERT INTO jobs (run_id, idx, name, status, attempt, exit_code, started_at, finished_at, not_before,
                           retries_used, lost_reruns)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8,
                value->>9, value->>10
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
           retries_used = excluded.retries_used, lost_reruns = excluded.lost_reruns"
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

/// The events a batch inserts, in batch order (the order their payload places follow).
pub(super) fn inserted_events(batch: &[Write]) -> Vec<&EventRecord> {
    batch
        .iter()
        .filter_map(|w| match w {
            Write::InsertEvent(e) => Some(e.as_ref()),
            _ => None,
        })
        .collect()
}

/// Applies `batch` in one transaction on `pool` (the synced or the unsynced writer);
/// `payloads` (started for the batch's events) are durable before it commits.
pub(super) async fn commit(
    pool: &sqlx::SqlitePool,
    batch: &[Write],
    payloads: Payloads,
) -> StoreResult<Committed> {
    let mut inserts = Vec::new();
    let mut run_updates: HashMap<&str, &Write> = HashMap::new();
    let mut job_updates: HashMap<(&str, u32), (&str, &JobRecord)> = HashMap::new();
    let mut job_order = Vec::new();
    let mut audits = Vec::new();
    let mut leases = Vec::new();
    let mut events = Vec::new();
    let mut outcomes = Vec::new();
    let mut bus = Vec::new();
    for w in batch {
        match w {
            Write::InsertRun(r) => inserts.push(r.as_ref()),
            Write::UpdateRun { id, .. } => {
                run_updates.insert(id.as_str(), w);
            }
            Write::UpdateJob { run_id, job } => {
                let key = (run_id.as_str(), job.index);
                if job_updates.insert(key, (run_id.as_str(), job)).is_none() {
                    job_order.push(key);
                }
            }
            Write::Audit(a) => audits.push(a),
            Write::InsertEvent(e) => events.push(e.as_ref()),
            Write::SetEventOutcome { id, outcome } => outcomes.push((id, outcome)),
            Write::PutRule(_)
            | Write::DeleteRule { .. }
            | Write::PutDelivery(_)
            | Write::SetScheduleFire { .. }
            | Write::PutRunner(_)
            | Write::PutDeployment(_) => bus.push(w),
            Write::RenewLeases { .. } | Write::ReleaseLease { .. } => leases.push(w),
        }
    }
    let jobs = job_rows(&job_order, &job_updates)?;
    let chunks = audit_chunks(&audits)?;
    let moves_only = inserts.is_empty()
        && run_updates.is_empty()
        && events.is_empty()
        && outcomes.is_empty()
        && bus.is_empty()
        && leases.is_empty()
        && chunks.len() <= 1;
    let mut conn = pool.acquire().await.map_err(db)?;
    if moves_only {
        return commit_moves(&mut conn, jobs, chunks.first()).await;
    }
    commit_all(
        &mut conn,
        &inserts,
        run_updates,
        jobs,
        &events,
        payloads,
        bus,
        outcomes,
        &chunks,
        &leases,
    )
    .await
}

/// Applies a batch of any kind in one transaction, in an order that respects foreign keys.
#[expect(clippy::too_many_arguments)]
async fn commit_all(
    conn: &mut SqliteConnection,
    inserts: &[&RunRecord],
    run_updates: HashMap<&str, &Write>,
    jobs: Option<String>,
    events: &[&EventRecord],
    payloads: Payloads,
    bus: Vec<&Write>,
    outcomes: Vec<(&String, &String)>,
    chunks: &[Chunk<'_>],
    leases: &[&Write],
) -> StoreResult<Committed> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
    insert_runs(&mut tx, inserts).await?;
    update_runs(&mut tx, run_updates.values().copied()).await?;
    if let Some(rows) = jobs {
        sqlx::query(upsert_jobs!())
            .bind(rows)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let committed = insert_events(&mut tx, events, &payloads.places).await?;
    for w in bus {
        match w {
            Write::PutRunner(r) => crate::runners::put(&mut tx, r).await?,
            Write::PutDeployment(d) => crate::deployments::put(&mut tx, d).await?,
            w => crate::bus::apply(&mut tx, w).await?,
        }
    }
    for (id, outcome) in outcomes {
        sqlx::query("UPDATE events SET outcome = ? WHERE id = ?")
            .bind(outcome)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    for chunk in chunks {
        chunk
            .bind(sqlx::query(insert_audit_chunk!()))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    apply_leases(&mut tx, leases).await?;
    payloads.durable().await?;
    tx.commit().await.map_err(db)?;
    Ok(committed)
}

async fn insert_runs(tx: &mut SqliteConnection, inserts: &[&RunRecord]) -> StoreResult<()> {
    for r in inserts {
        let spec =
            serde_json::to_string(&r.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let ctx =
            serde_json::to_string(&r.context).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
                "INSERT INTO runs (id, name, status, trace_id, cancel_requested, created_at, started_at, finished_at, repo, branch, event)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.name)
            .bind(r.status.as_str())
            .bind(&r.trace_id)
            .bind(i64::from(r.cancel_requested))
            .bind(r.created_at_ms)
            .bind(r.started_at_ms)
            .bind(r.finished_at_ms)
            .bind(&r.context.repo)
            .bind(&r.context.branch)
            .bind(&r.context.event)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO run_specs (run_id, spec, context) VALUES (?, ?, ?)")
            .bind(&r.id)
            .bind(spec)
            .bind(ctx)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if !r.jobs.is_empty() {
            sqlx::query(insert_jobs!())
                .bind(json_rows(r.jobs.iter().map(|j| job_row(&r.id, j)))?)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
    }
    Ok(())
}

async fn update_runs(
    tx: &mut SqliteConnection,
    updates: impl Iterator<Item = &Write>,
) -> StoreResult<()> {
    for w in updates {
        if let Write::UpdateRun {
            id,
            status,
            cancel_requested,
            started_at_ms,
            finished_at_ms,
        } = w
        {
            sqlx::query("UPDATE runs SET status = ?, cancel_requested = ?, started_at = ?, finished_at = ? WHERE id = ?")
                    .bind(status.as_str())
                    .bind(i64::from(*cancel_requested))
                    .bind(started_at_ms)
                    .bind(finished_at_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
        }
    }
    Ok(())
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
        query = chunk.bind(query);
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

/// A job's row, serialized as the JSON array `insert_jobs!` reads (a tuple is an array).
type JobRow<'a> = (
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
);

fn job_row<'a>(run_id: &'a str, j: &'a JobRecord) -> JobRow<'a> {
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
    )
}

/// Inserts the batch's events (each at its payload place); says which were duplicates.
async fn insert_events(
    tx: &mut SqliteConnection,
    events: &[&EventRecord],
    places: &[Option<crate::segments::Location>],
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
                                     payload_segment, payload_offset, payload_len) ",
        );
        q.push_values(fresh, |mut b, (e, at)| {
            b.push_bind(e.id.clone())
                .push_bind(e.source.clone())
                .push_bind(e.event_type.clone())
                .push_bind(e.delivery_id.clone())
                .push_bind(if at.is_some() {
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
                .push_bind(at.map(|l| l.len));
        });
        q.build().execute(&mut *tx).await.map_err(db)?;
    }
    Ok(committed)
}

async fn apply_leases(tx: &mut SqliteConnection, leases: &[&Write]) -> StoreResult<()> {
    for w in leases.iter().copied() {
        match w {
            Write::RenewLeases {
                names,
                holder,
                expires_at_ms,
            } => {
                for name in names {
                    sqlx::query(
                        "INSERT INTO locks (name, holder, expires_at) VALUES (?, ?, ?)
                             ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at
                             WHERE locks.holder = excluded.holder",
                    )
                    .bind(name)
                    .bind(holder)
                    .bind(expires_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
            }
            Write::ReleaseLease { name, holder } => {
                sqlx::query("DELETE FROM locks WHERE name = ? AND holder = ?")
                    .bind(name)
                    .bind(holder)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            _ => {}
        }
    }
    Ok(())
}

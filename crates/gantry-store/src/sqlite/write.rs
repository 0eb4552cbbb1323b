//! The SQLite write path: a batch of [`Write`]s applied in one transaction, in an order that
//! respects foreign keys and gives the same final state as the batch's own order (inserts
//! first, then the last update of each run and job), with multi-row statements.

use super::payloads::Payloads;
use crate::rows::db;
use gantry_engine::ports::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// Rows per multi-row statement; 9 columns each stays well under SQLite's 32766 variables.
const ROWS_PER_STATEMENT: usize = 1000;
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

/// Applies `batch` in one transaction on `pool`; `payloads` (started for the batch's events)
/// are durable before it commits.
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
            | Write::SetScheduleFire { .. } => bus.push(w),
            Write::RenewLeases { .. } | Write::ReleaseLease { .. } => leases.push(w),
        }
    }
    let mut tx = pool.begin().await.map_err(db)?;
    insert_runs(&mut tx, &inserts).await?;
    update_runs(&mut tx, run_updates.values().copied()).await?;
    upsert_jobs(&mut tx, &job_order, &job_updates).await?;
    let committed = insert_events(&mut tx, &events, &payloads.places).await?;
    for w in bus {
        crate::bus::apply(&mut tx, w).await?;
    }
    for (id, outcome) in outcomes {
        sqlx::query("UPDATE events SET outcome = ? WHERE id = ?")
            .bind(outcome)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    insert_audits(&mut tx, &audits).await?;
    apply_leases(&mut tx, &leases).await?;
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
                "INSERT INTO runs (id, name, status, trace_id, spec, context, cancel_requested, created_at, started_at, finished_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.name)
            .bind(r.status.as_str())
            .bind(&r.trace_id)
            .bind(spec)
            .bind(ctx)
            .bind(i64::from(r.cancel_requested))
            .bind(r.created_at_ms)
            .bind(r.started_at_ms)
            .bind(r.finished_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for chunk in r.jobs.chunks(ROWS_PER_STATEMENT) {
            push_jobs(&r.id, chunk.iter())
                .build()
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

async fn upsert_jobs(
    tx: &mut SqliteConnection,
    job_order: &[(&str, u32)],
    job_updates: &HashMap<(&str, u32), (&str, &JobRecord)>,
) -> StoreResult<()> {
    for chunk in job_order.chunks(ROWS_PER_STATEMENT) {
        let mut by_run: Vec<(&str, &JobRecord)> = chunk.iter().map(|k| job_updates[k]).collect();
        by_run.sort_by_key(|(r, j)| (*r, j.index));
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs (run_id, idx, name, status, attempt, exit_code, started_at, finished_at, not_before) ",
        );
        q.push_values(by_run, |mut b, (run_id, j)| {
            bind_job(&mut b, run_id, j);
        });
        q.push(
                " ON CONFLICT (run_id, idx) DO UPDATE SET status = excluded.status, attempt = excluded.attempt,
                  exit_code = excluded.exit_code, started_at = excluded.started_at,
                  finished_at = excluded.finished_at, not_before = excluded.not_before",
            );
        q.build().execute(&mut *tx).await.map_err(db)?;
    }
    Ok(())
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

async fn insert_audits(tx: &mut SqliteConnection, audits: &[&AuditRecord]) -> StoreResult<()> {
    for chunk in audits.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit_events (at, trace_id, run_id, job, attempt, from_status, to_status, note) ",
        );
        q.push_values(chunk, |mut b, a| {
            b.push_bind(a.at_ms)
                .push_bind(a.trace_id.clone())
                .push_bind(a.run_id.clone())
                .push_bind(a.job.clone())
                .push_bind(a.attempt.map(i64::from))
                .push_bind(a.from.clone())
                .push_bind(a.to.clone())
                .push_bind(a.note.clone());
        });
        q.build().execute(&mut *tx).await.map_err(db)?;
    }
    Ok(())
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

fn bind_job(
    b: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    run_id: &str,
    j: &JobRecord,
) {
    b.push_bind(run_id.to_string())
        .push_bind(i64::from(j.index))
        .push_bind(j.name.clone())
        .push_bind(j.status.as_str())
        .push_bind(i64::from(j.attempt))
        .push_bind(j.exit_code.map(i64::from))
        .push_bind(j.started_at_ms)
        .push_bind(j.finished_at_ms)
        .push_bind(j.not_before_ms);
}

fn push_jobs<'a>(run_id: &str, jobs: impl Iterator<Item = &'a JobRecord>) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO jobs (run_id, idx, name, status, attempt, exit_code, started_at, finished_at, not_before) ",
    );
    q.push_values(jobs, |mut b, j| bind_job(&mut b, run_id, j));
    q
}

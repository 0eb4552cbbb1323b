//! The PostgreSQL write path: a batch of [`Write`]s in one transaction, sorted as
//! `crate::batch` says (the statements both backends share are in `crate::shared`). Job rows
//! go in as one JSON array per statement (`jsonb_array_elements`). Events are inserted with
//! `ON CONFLICT DO NOTHING`, so a delivery another server stored meanwhile is a duplicate, not
//! an error. A run's audit records go in as one `audit_chunks` row per batch, whose seqs are
//! taken from a sequence under a transaction-scoped advisory lock (a chunk's seqs must be
//! consecutive, and several servers may write).

use crate::batch::{Chunk, Sorted};
use crate::rows::db;
use crate::shared::postgres::writes;
use gantry_engine::ports::*;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

/// Job rows from a JSON array of `JobRow`s in `$1` (`UPSERT_JOBS` adds its conflict clause).
macro_rules! insert_jobs {
    () => {
        "INSERT INTO jobs (run_id, idx, name, status, attempt, exit_code, started_at, finished_at, not_before,
                           retries_used, lost_reruns)
         SELECT v->>0, (v->>1)::bigint, v->>2, v->>3, (v->>4)::bigint, (v->>5)::bigint, (v->>6)::bigint,
                (v->>7)::bigint, (v->>8)::bigint, (v->>9)::bigint, (v->>10)::bigint
         FROM jsonb_array_elements($1::jsonb) AS v"
    };
}

/// Job rows from a JSON array, each replacing the job's row if it has one.
const UPSERT_JOBS: &str = concat!(
    insert_jobs!(),
    " ON CONFLICT (run_id, idx) DO UPDATE SET status = excluded.status, attempt = excluded.attempt,
       exit_code = excluded.exit_code, started_at = excluded.started_at,
       finished_at = excluded.finished_at, not_before = excluded.not_before,
       retries_used = excluded.retries_used, lost_reruns = excluded.lost_reruns"
);

/// The advisory lock that hands out audit seqs (an arbitrary key: "gantry audit").
const AUDIT_SEQ_LOCK: i64 = 0x6761_6e74_7279_6175;

/// Events carry whole payloads (GitHub allows 25 MB): fewer per statement.
const EVENTS_PER_STATEMENT: usize = 64;

/// Applies `batch` in one transaction; a [`Durability::Os`] batch commits without waiting for
/// the WAL's flush.
pub(super) async fn commit(
    pool: &PgPool,
    batch: &[Write],
    durability: Durability,
) -> StoreResult<Committed> {
    let s = Sorted::new(batch)?;
    let mut tx = pool.begin().await.map_err(db)?;
    if durability == Durability::Os {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    writes::insert_runs(&mut tx, &s.inserts, insert_jobs!()).await?;
    writes::update_runs(&mut tx, &s).await?;
    if let Some(rows) = &s.jobs {
        sqlx::query(UPSERT_JOBS)
            .bind(rows.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let committed = insert_events(&mut tx, &s.events).await?;
    writes::after_events(&mut tx, &s).await?;
    insert_chunks(&mut tx, &s.chunks).await?;
    writes::leases(&mut tx, &s.leases).await?;
    tx.commit().await.map_err(db)?;
    Ok(committed)
}

/// The chunks, each keyed by the seq of its last record: `n` consecutive values of the
/// sequence, taken while the lock keeps other writers' chunks out until this commit.
async fn insert_chunks(tx: &mut PgConnection, chunks: &[Chunk<'_>]) -> StoreResult<()> {
    if chunks.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_SEQ_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    for c in chunks {
        sqlx::query(
            "INSERT INTO audit_chunks (last_seq, n, run_id, trace_id, last_at, records)
             VALUES (setval('audit_chunks_seq', nextval('audit_chunks_seq') + $1 - 1), $1, $2, $3, $4, $5)",
        )
        .bind(c.n)
        .bind(c.run_id)
        .bind(c.trace_id)
        .bind(c.last_at_ms)
        .bind(c.records.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Inserts the batch's events; a delivery already stored (by any server) or earlier in this
/// batch is a duplicate: not inserted, reported.
async fn insert_events(tx: &mut PgConnection, events: &[&EventRecord]) -> StoreResult<Committed> {
    let mut committed = Committed::default();
    let mut in_batch: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut fresh = Vec::with_capacity(events.len());
    for e in events.iter().copied() {
        match e.delivery_id.as_deref() {
            Some(d) if !in_batch.insert(d) => {
                committed.duplicate_events.insert(e.id.clone());
            }
            _ => fresh.push(e),
        }
    }
    for chunk in fresh.chunks(EVENTS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO events (id, source, type, delivery_id, detail, trace_id, received_at,
                                 action, repository, installation_id, rules_matched) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.id.clone())
                .push_bind(e.source.clone())
                .push_bind(e.event_type.clone())
                .push_bind(e.delivery_id.clone())
                .push_bind(e.payload.clone())
                .push_bind(e.trace_id.clone())
                .push_bind(e.received_at_ms)
                .push_bind(e.action.clone())
                .push_bind(e.repository.clone())
                .push_bind(e.installation_id)
                .push_bind(serde_json::to_string(&e.rules_matched).unwrap_or_else(|_| "[]".into()));
        });
        q.push(" ON CONFLICT DO NOTHING RETURNING id");
        let inserted: std::collections::HashSet<String> = q
            .build_query_scalar::<String>()
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        for e in chunk {
            if !inserted.contains(&e.id) {
                committed.duplicate_events.insert(e.id.clone());
            }
        }
    }
    Ok(committed)
}

//! The PostgreSQL write path: a batch of [`Write`]s in one transaction, sorted as
//! `crate::batch` says (the statements both backends share are in `crate::shared`). Job rows
//! go in as one JSON array per statement (`jsonb_array_elements`). Events are inserted with
//! `ON CONFLICT DO NOTHING`, so a delivery another server stored meanwhile is a duplicate, not
//! an error, one array per column (`UNNEST`: one statement text, prepared once). A synced
//! batch of events and outcomes only (webhook intake) is one statement, committed on its own:
//! no `BEGIN`, no `COMMIT`, one round trip. A run's audit records go in as one `audit_chunks`
//! row per batch, whose seqs are taken from a sequence under a transaction-scoped advisory
//! lock (a chunk's seqs must be consecutive, and several servers may write).

use crate::batch::{Chunk, Sorted};
use crate::payload_blobs::BlobRef;
use crate::rows::db;
use crate::shared::postgres::{last_outcomes, writes};
use gantry_engine::ports::*;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection, PgPool, Postgres};
use std::collections::{HashMap, HashSet};

/// Where the batch's payloads in the object store are, by event id.
type Blobbed = HashMap<String, BlobRef>;

/// Job rows from a JSON array of `JobRow`s in `$1` (`UPSERT_JOBS` adds its conflict clause).
macro_rules! insert_jobs {
    () => {
        "INSERT INTO jobs (run_id, idx, name, status, attempt, exit_code, started_at, finished_at, not_before,
                           retries_used, lost_reruns, claimed)
         SELECT v->>0, (v->>1)::bigint, v->>2, v->>3, (v->>4)::bigint, (v->>5)::bigint, (v->>6)::bigint,
                (v->>7)::bigint, (v->>8)::bigint, (v->>9)::bigint, (v->>10)::bigint, (v->>11)::bigint
         FROM jsonb_array_elements($1::jsonb) AS v"
    };
}

/// Job rows from a JSON array, each replacing the job's row if it has one.
const UPSERT_JOBS: &str = concat!(
    insert_jobs!(),
    " ON CONFLICT (run_id, idx) DO UPDATE SET status = excluded.status, attempt = excluded.attempt,
       exit_code = excluded.exit_code, started_at = excluded.started_at,
       finished_at = excluded.finished_at, not_before = excluded.not_before,
       retries_used = excluded.retries_used, lost_reruns = excluded.lost_reruns,
       claimed = excluded.claimed"
);

/// The advisory lock that hands out audit seqs (an arbitrary key: "gantry audit").
const AUDIT_SEQ_LOCK: i64 = 0x6761_6e74_7279_6175;

/// Events carry whole payloads (GitHub allows 25 MB): fewer per statement.
const EVENTS_PER_STATEMENT: usize = 64;

/// Events as rows from one array per column (`$1` … `$15`): one statement text whatever
/// their number, so it is parsed and planned once per connection. A delivery id (or an event
/// id) already stored, by any server, is skipped; the ids inserted are returned.
macro_rules! insert_events {
    () => {
        "INSERT INTO events (id, source, type, delivery_id, detail, trace_id, received_at,
                             action, repository, installation_id, rules_matched, outcome,
                             payload_key, payload_size, payload_digest)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::int8[], $8::text[], $9::text[], $10::int8[],
                              $11::text[], $12::text[], $13::text[], $14::int8[], $15::text[])
         ON CONFLICT DO NOTHING RETURNING id"
    };
}

const INSERT_EVENTS: &str = insert_events!();

/// A batch of events and outcomes in one statement: the outcomes (`$16` ids, `$17` outcomes)
/// of events stored before, then the events (an outcome of an event in the batch is in its
/// row: the update, seeing the rows as they were before the statement, misses new ones).
/// Planned afresh each time (an unnamed statement), for the batch's arrays and the table as it
/// is: a plan kept from when the table was small joins by scanning the whole table, a cost
/// that grows with it until the next `ANALYZE` replans.
const INTAKE: &str = concat!(
    "WITH set_outcomes AS (
         UPDATE events SET outcome = u.outcome
         FROM UNNEST($16::text[], $17::text[]) AS u(id, outcome)
         WHERE events.id = u.id),
     inserted AS (",
    insert_events!(),
    ") SELECT id FROM inserted"
);

pub(super) use crate::batch::inserted_events;

/// Applies `batch` in one transaction; a [`Durability::Os`] batch commits without waiting for
/// the WAL's flush. The events of `blobs` have their payloads in the object store.
pub(super) async fn commit(
    pool: &PgPool,
    batch: &[Write],
    durability: Durability,
    blobs: &Blobbed,
) -> StoreResult<Committed> {
    let s = Sorted::new(batch)?;
    if durability == Durability::Disk && s.events_and_outcomes_only() {
        let (fresh, mut committed) = fresh_events(&s.events);
        if fresh.len() <= EVENTS_PER_STATEMENT {
            intake(pool, &fresh, &s.outcomes, blobs, &mut committed).await?;
            return Ok(committed);
        }
    }
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
    let committed = insert_events(&mut tx, &s.events, &s.outcomes, blobs).await?;
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

/// The batch's events but those whose delivery came earlier in the batch (reported as
/// duplicates).
fn fresh_events<'a>(events: &[&'a EventRecord]) -> (Vec<&'a EventRecord>, Committed) {
    let mut committed = Committed::default();
    let mut in_batch: HashSet<&str> = HashSet::new();
    let mut fresh = Vec::with_capacity(events.len());
    for e in events.iter().copied() {
        match e.delivery_id.as_deref() {
            Some(d) if !in_batch.insert(d) => {
                committed.duplicate_events.insert(e.id.clone());
            }
            _ => fresh.push(e),
        }
    }
    (fresh, committed)
}

/// Events and outcomes in one statement, which commits (synchronously) on its own.
async fn intake(
    pool: &PgPool,
    fresh: &[&EventRecord],
    outcomes: &[(&String, &String)],
    blobs: &Blobbed,
    committed: &mut Committed,
) -> StoreResult<()> {
    let (ids, values) = last_outcomes(outcomes);
    let mut args = event_columns(fresh, &ids, &values, blobs)?;
    add(&mut args, ids)?;
    add(&mut args, values)?;
    let inserted: Vec<String> = sqlx::query_scalar_with(INTAKE, args)
        .persistent(false)
        .fetch_all(pool)
        .await
        .map_err(db)?;
    note_duplicates(fresh, inserted, committed);
    Ok(())
}

/// Inserts the batch's events; a delivery already stored (by any server) or earlier in this
/// batch is a duplicate: not inserted, reported. An event's row carries the batch's outcome
/// for it, if any (as the outcomes' update after it would set).
async fn insert_events(
    tx: &mut PgConnection,
    events: &[&EventRecord],
    outcomes: &[(&String, &String)],
    blobs: &Blobbed,
) -> StoreResult<Committed> {
    let (fresh, mut committed) = fresh_events(events);
    if fresh.is_empty() {
        return Ok(committed);
    }
    let (ids, values) = last_outcomes(outcomes);
    for chunk in fresh.chunks(EVENTS_PER_STATEMENT) {
        let args = event_columns(chunk, &ids, &values, blobs)?;
        let inserted: Vec<String> = sqlx::query_scalar_with(INSERT_EVENTS, args)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        note_duplicates(chunk, inserted, &mut committed);
    }
    Ok(committed)
}

/// The events not among those `inserted` are duplicates.
fn note_duplicates(events: &[&EventRecord], inserted: Vec<String>, committed: &mut Committed) {
    let inserted: HashSet<String> = inserted.into_iter().collect();
    for e in events {
        if !inserted.contains(&e.id) {
            committed.duplicate_events.insert(e.id.clone());
        }
    }
}

/// The arguments of [`INSERT_EVENTS`]: one array per column, each event's outcome the last
/// of `outcome_ids`' (with `outcomes` beside them) that names it; an event of `blobs` has an
/// empty `detail` and its object's key, size and digest.
fn event_columns(
    events: &[&EventRecord],
    outcome_ids: &[&str],
    outcomes: &[&str],
    blobs: &Blobbed,
) -> StoreResult<PgArguments> {
    let by_id: HashMap<&str, &str> = outcome_ids
        .iter()
        .copied()
        .zip(outcomes.iter().copied())
        .collect();
    let text = |f: fn(&EventRecord) -> &str| -> Vec<&str> { events.iter().map(|e| f(e)).collect() };
    let opt = |f: fn(&EventRecord) -> Option<&str>| -> Vec<Option<&str>> {
        events.iter().map(|e| f(e)).collect()
    };
    let rules: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(&e.rules_matched).unwrap_or_else(|_| "[]".into()))
        .collect();
    let outcome: Vec<Option<&str>> = events
        .iter()
        .map(|e| by_id.get(e.id.as_str()).copied())
        .collect();
    let mut args = PgArguments::default();
    add(&mut args, text(|e| e.id.as_str()))?;
    add(&mut args, text(|e| e.source.as_str()))?;
    add(&mut args, text(|e| e.event_type.as_str()))?;
    add(&mut args, opt(|e| e.delivery_id.as_deref()))?;
    let blob = |e: &EventRecord| blobs.get(&e.id);
    let detail: Vec<&str> = events
        .iter()
        .map(|e| match blob(e) {
            Some(_) => "",
            None => e.payload.as_str(),
        })
        .collect();
    add(&mut args, detail)?;
    add(&mut args, text(|e| e.trace_id.as_str()))?;
    add(
        &mut args,
        events
            .iter()
            .map(|e| e.received_at_ms)
            .collect::<Vec<i64>>(),
    )?;
    add(&mut args, opt(|e| e.action.as_deref()))?;
    add(&mut args, opt(|e| e.repository.as_deref()))?;
    add(
        &mut args,
        events
            .iter()
            .map(|e| e.installation_id)
            .collect::<Vec<Option<i64>>>(),
    )?;
    add(&mut args, rules)?;
    add(&mut args, outcome)?;
    let refs: Vec<Option<&BlobRef>> = events.iter().map(|e| blob(e)).collect();
    add(
        &mut args,
        refs.iter()
            .map(|r| r.map(|r| r.key.as_str()))
            .collect::<Vec<_>>(),
    )?;
    add(
        &mut args,
        refs.iter().map(|r| r.map(|r| r.size)).collect::<Vec<_>>(),
    )?;
    add(
        &mut args,
        refs.iter()
            .map(|r| r.map(|r| r.digest.as_str()))
            .collect::<Vec<_>>(),
    )?;
    Ok(args)
}

fn add<'q, T>(args: &mut PgArguments, value: T) -> StoreResult<()>
where
    T: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + 'q,
{
    args.add(value)
        .map_err(|e| StoreError::Database(format!("cannot bind an argument: {e}")))
}

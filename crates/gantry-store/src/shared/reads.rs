//! Reads (runs with their jobs, the audit trail, events, runners), the lease taken outside a
//! batch, and the rows expiry deletes.

use super::{Conn, Db, Pool, UNDECIDED_EVENTS, list as param_list};
use crate::batch::AuditRow;
use crate::rows::{db, event_from_row, job_from_row, page_size, run_from_row};
use gantry_engine::ports::*;
use sqlx::QueryBuilder;
use std::collections::HashMap;

/// A run's row with its spec and context (kept apart: see the `run_specs` migration).
macro_rules! run_select {
    () => {
        "SELECT r.*, s.spec, s.context FROM runs r JOIN run_specs s ON s.run_id = r.id"
    };
}

type Row = <Db as sqlx::Database>::Row;

/// Runs from their rows, each with its jobs (one query for all of them).
async fn with_jobs(read: &Pool, rows: &[Row]) -> StoreResult<Vec<RunRecord>> {
    let mut runs = rows
        .iter()
        .map(run_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    if runs.is_empty() {
        return Ok(runs);
    }
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        by_id.insert(r.id.clone(), i);
    }
    for chunk in runs
        .iter()
        .map(|r| r.id.clone())
        .collect::<Vec<_>>()
        .chunks(500)
    {
        let mut q = QueryBuilder::<Db>::new("SELECT * FROM jobs WHERE run_id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(id.clone());
        }
        q.push(") ORDER BY run_id, idx");
        for row in q.build().fetch_all(read).await.map_err(db)? {
            let (run_id, job) = job_from_row(&row)?;
            if let Some(&i) = by_id.get(&run_id) {
                runs[i].jobs.push(job);
            }
        }
    }
    Ok(runs)
}

pub(crate) async fn unfinished_runs(read: &Pool) -> StoreResult<Vec<RunRecord>> {
    let rows = sqlx::query(concat!(
        run_select!(),
        " WHERE r.status IN ('queued', 'running') ORDER BY r.id"
    ))
    .fetch_all(read)
    .await
    .map_err(db)?;
    with_jobs(read, &rows).await
}

pub(crate) async fn orphaned_runs(
    read: &Pool,
    now_ms: i64,
    limit: u32,
) -> StoreResult<Vec<RunRecord>> {
    let rows = sqlx::query(concat!(
        run_select!(),
        " LEFT JOIN locks l ON l.name = 'run:' || r.id
         WHERE r.status IN ('queued', 'running') AND (l.name IS NULL OR l.expires_at < $1)
         ORDER BY r.id LIMIT $2"
    ))
    .bind(now_ms)
    .bind(i64::from(limit.max(1)))
    .fetch_all(read)
    .await
    .map_err(db)?;
    with_jobs(read, &rows).await
}

pub(crate) async fn renew_run_leases(
    write: &Pool,
    run_ids: &[String],
    holder: &str,
    expires_at_ms: i64,
) -> StoreResult<Vec<String>> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = run_ids.iter().map(|id| format!("run:{id}")).collect();
    let _renewed: Vec<String> = sqlx::query_scalar(super::RENEW_LEASES)
        .bind(expires_at_ms)
        .bind(holder)
        .bind(super::list(&names))
        .fetch_all(write)
        .await
        .map_err(db)?;
    sqlx::query_scalar(super::LOST_RUNS)
        .bind(super::list(run_ids))
        .bind(holder)
        .fetch_all(write)
        .await
        .map_err(db)
}

pub(crate) async fn request_cancel(write: &Pool, run_id: &str, at_ms: i64) -> StoreResult<bool> {
    let mut tx = write.begin().await.map_err(db)?;
    let unfinished: Option<String> =
        sqlx::query_scalar("SELECT id FROM runs WHERE id = $1 AND status IN ('queued', 'running')")
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
    if unfinished.is_some() {
        sqlx::query(
            "INSERT INTO cancel_requests (run_id, at) VALUES ($1, $2) ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(run_id)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(unfinished.is_some())
}

pub(crate) async fn take_cancel_requests(
    write: &Pool,
    run_ids: &[String],
) -> StoreResult<Vec<String>> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(super::TAKE_CANCELS)
        .bind(super::list(run_ids))
        .fetch_all(write)
        .await
        .map_err(db)
}

pub(crate) async fn get_run(read: &Pool, id: &str) -> StoreResult<Option<RunRecord>> {
    let Some(row) = sqlx::query(concat!(run_select!(), " WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(read)
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    Ok(with_jobs(read, std::slice::from_ref(&row)).await?.pop())
}

pub(crate) async fn list_runs(read: &Pool, filter: RunFilter) -> StoreResult<Vec<RunRecord>> {
    // Only the tests asked for go into the statement (32 texts at most, each prepared
    // once per connection): the database then walks the index of one of them — each ends in
    // the id — newest first and stops at the page's end. The context's repository, branch and
    // event are columns of `runs` for this.
    let tests = [
        ("r.status = ", filter.status.map(|s| s.as_str().to_string())),
        ("r.id < ", filter.before),
        ("r.repo = ", filter.repo),
        ("r.branch = ", filter.branch),
        ("r.event = ", filter.event),
    ];
    let mut q = QueryBuilder::<Db>::new(run_select!());
    let asked = tests.into_iter().filter_map(|(t, v)| Some((t, v?)));
    for (i, (test, value)) in asked.enumerate() {
        q.push(if i == 0 { " WHERE " } else { " AND " });
        q.push(test).push_bind(value);
    }
    q.push(" ORDER BY r.id DESC LIMIT ")
        .push_bind(page_size(filter.limit));
    let rows = q.build().fetch_all(read).await.map_err(db)?;
    with_jobs(read, &rows).await
}

pub(crate) async fn audit_trail(read: &Pool, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
    let chunks: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT last_seq, n, trace_id, records FROM audit_chunks
         WHERE run_id = $1 ORDER BY last_seq",
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

/// The rows of events not yet decided (their payloads are the backend's to fill in).
pub(crate) async fn undecided_event_rows(
    read: &Pool,
    source: &str,
    types: &[&str],
    limit: u32,
) -> StoreResult<Vec<Row>> {
    sqlx::query(UNDECIDED_EVENTS)
        .bind(source)
        .bind(param_list(types))
        .bind(page_size(limit))
        .fetch_all(read)
        .await
        .map_err(db)
}

/// Which event to read: by its id, or by the delivery it came in.
pub(crate) enum EventKey<'a> {
    Id(&'a str),
    Delivery(&'a str),
}

/// An event's row (its payload is the backend's to fill in).
pub(crate) async fn event_row(read: &Pool, key: EventKey<'_>) -> StoreResult<Option<Row>> {
    let (sql, value) = match key {
        EventKey::Id(id) => ("SELECT * FROM events WHERE id = $1", id),
        EventKey::Delivery(d) => ("SELECT * FROM events WHERE delivery_id = $1", d),
    };
    sqlx::query(sql)
        .bind(value)
        .fetch_optional(read)
        .await
        .map_err(db)
}

pub(crate) async fn list_events(read: &Pool, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
    let limit = page_size(filter.limit);
    // A page after `before` is its own statement: inside an `OR` the row-value bound
    // could not seek the (received_at, id) index.
    let sql = if filter.before.is_some() {
        "SELECT id, source, type, delivery_id, '' AS detail, trace_id, received_at, action,
                repository, installation_id, rules_matched, outcome
         FROM events WHERE ($1 IS NULL OR source = $1) AND ($2 IS NULL OR type = $2)
           AND (received_at, id) < (SELECT received_at, id FROM events WHERE id = $4)
         ORDER BY received_at DESC, id DESC LIMIT $3"
    } else {
        "SELECT id, source, type, delivery_id, '' AS detail, trace_id, received_at, action,
                repository, installation_id, rules_matched, outcome
         FROM events WHERE ($1 IS NULL OR source = $1) AND ($2 IS NULL OR type = $2)
           AND $4 IS NULL
         ORDER BY received_at DESC, id DESC LIMIT $3"
    };
    let rows = sqlx::query(sql)
        .bind(filter.source)
        .bind(filter.event_type)
        .bind(limit)
        .bind(filter.before)
        .fetch_all(read)
        .await
        .map_err(db)?;
    rows.iter().map(|r| event_from_row(r, false)).collect()
}

/// Takes or renews the lease `name` for `holder`: one atomic upsert, so that of several
/// servers on one database only one holds it (the row is locked while the condition is
/// checked).
pub(crate) async fn try_lease(
    write: &Pool,
    name: &str,
    holder: &str,
    expires_at_ms: i64,
    now_ms: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO locks (name, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE locks.holder = excluded.holder OR locks.expires_at < $4",
    )
    .bind(name)
    .bind(holder)
    .bind(expires_at_ms)
    .bind(now_ms)
    .execute(write)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

/// Deletes what is past its retention, in the caller's transaction.
pub(crate) async fn expire_rows(
    tx: &mut Conn,
    retention: &Retention,
    now_ms: i64,
) -> StoreResult<Expired> {
    let older = [
        (
            "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < $1",
            now_ms - retention.working_ms,
        ),
        (
            "DELETE FROM events WHERE received_at < $1",
            now_ms - retention.working_ms,
        ),
        ("DELETE FROM locks WHERE expires_at < $1", now_ms),
        (
            "DELETE FROM runners WHERE active = 0 AND finished_at < $1",
            now_ms - retention.working_ms,
        ),
    ];
    let mut deleted = [0u64; 4];
    for (n, (sql, cutoff)) in deleted.iter_mut().zip(older) {
        *n = sqlx::query(sql)
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
    }
    let [runs, events, locks, _runners] = deleted;
    // A request for a run that ended before its server took it.
    sqlx::query("DELETE FROM cancel_requests WHERE at < $1")
        .bind(now_ms - retention.working_ms)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // A chunk goes once its newest record is past the retention (a chunk's records are
    // one commit's, at most the journal's linger apart); what is counted is records.
    let audit_events: Vec<i64> =
        sqlx::query_scalar("DELETE FROM audit_chunks WHERE last_at < $1 RETURNING n")
            .bind(now_ms - retention.audit_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
    Ok(Expired {
        runs,
        audit_events: audit_events.iter().sum::<i64>() as u64,
        events,
        locks,
        payload_blobs: 0,
    })
}

/// The object store keys of the payloads of the events [`expire_rows`] is about to delete,
/// read in its transaction before it does.
pub(crate) async fn expiring_payload_keys(
    tx: &mut Conn,
    retention: &Retention,
    now_ms: i64,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT payload_key FROM events WHERE received_at < $1 AND payload_key IS NOT NULL",
    )
    .bind(now_ms - retention.working_ms)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)
}

/// Every object store key an event's row points to.
pub(crate) async fn payload_keys(read: &Pool) -> StoreResult<std::collections::HashSet<String>> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT payload_key FROM events WHERE payload_key IS NOT NULL")
            .fetch_all(read)
            .await
            .map_err(db)?;
    Ok(keys.into_iter().collect())
}

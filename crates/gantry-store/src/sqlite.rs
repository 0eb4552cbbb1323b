//! SQLite adapter: one writer connection (the journal is the only writer, so there is no write
//! contention to manage) and a small pool of readers; WAL so readers never block the writer;
//! `synchronous=FULL` so a committed batch survives power loss, not just a crash.

use crate::rows::{db, event_from_row, job_from_row, run_from_row};
use crate::segments::{self, Location, SEGMENT_MIN_BYTES, Segments};
use async_trait::async_trait;
use gantry_engine::ports::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Rows per multi-row statement; 9 columns each stays well under SQLite's 32766 variables.
const ROWS_PER_STATEMENT: usize = 1000;
/// Events carry whole payloads (GitHub allows 25 MB): fewer per statement.
const EVENTS_PER_STATEMENT: usize = 64;

/// A list's page size: 50 unless asked, at most 1000.
fn page_size(asked: u32) -> u32 {
    if asked == 0 { 50 } else { asked.min(1000) }
}

#[derive(Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    segments: Arc<Segments>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(db)?;
        Ok(SqliteStore {
            write,
            read,
            segments: Arc::new(Segments::new(segments::dir_for(path))),
        })
    }

    /// Starts writing the batch's large payloads to a segment. Returns each event's location
    /// (`None`: stored in its row) and the write, which must have finished (durably) before
    /// the rows that point at them are committed.
    fn start_payloads(&self, events: &[&EventRecord]) -> PayloadsStarted {
        let big: Vec<&EventRecord> = events
            .iter()
            .copied()
            .filter(|e| e.payload.len() >= SEGMENT_MIN_BYTES)
            .collect();
        if big.is_empty() {
            return Ok((vec![None; events.len()], None));
        }
        let mut buf = Vec::with_capacity(big.iter().map(|e| e.payload.len()).sum());
        let mut lens = Vec::with_capacity(big.len());
        for e in &big {
            buf.extend_from_slice(e.payload.as_bytes());
            lens.push(e.payload.len());
        }
        let first = big
            .iter()
            .map(|e| e.received_at_ms)
            .min()
            .unwrap_or_default();
        let last = big
            .iter()
            .map(|e| e.received_at_ms)
            .max()
            .unwrap_or_default();
        let (at, reserved) = self
            .segments
            .reserve(&lens, (first, last))
            .map_err(|e| StoreError::Database(format!("cannot open a payload segment: {e}")))?;
        let write = tokio::task::spawn_blocking(move || reserved.write(&buf));
        let mut at = at.into_iter();
        let places = events
            .iter()
            .map(|e| {
                (e.payload.len() >= SEGMENT_MIN_BYTES)
                    .then(|| at.next())
                    .flatten()
            })
            .collect();
        Ok((places, Some(write)))
    }

    /// An event row with its payload, read from its segment when it is not in the row.
    async fn event_with_payload(&self, row: &sqlx::sqlite::SqliteRow) -> StoreResult<EventRecord> {
        let mut event = event_from_row(row, true)?;
        let segment: Option<i64> = row.try_get("payload_segment").map_err(db)?;
        if let Some(segment) = segment {
            let at = Location {
                segment,
                offset: row.try_get("payload_offset").map_err(db)?,
                len: row.try_get("payload_len").map_err(db)?,
            };
            let segs = self.segments.clone();
            let bytes = tokio::task::spawn_blocking(move || segs.read(at))
                .await
                .map_err(|e| StoreError::Database(format!("payload reader stopped: {e}")))?
                .map_err(|e| {
                    StoreError::Corrupt(format!("event {}: payload unreadable: {e}", event.id))
                })?;
            event.payload = String::from_utf8(bytes).map_err(|_| {
                StoreError::Corrupt(format!("event {}: payload is not UTF-8", event.id))
            })?;
        }
        Ok(event)
    }

    /// The writer and reader pools, for other adapters on the same database (secrets).
    pub(crate) fn pools(&self) -> (SqlitePool, SqlitePool) {
        (self.write.clone(), self.read.clone())
    }

    /// Runs from their rows, each with its jobs (one query for all of them).
    async fn with_jobs(&self, rows: &[sqlx::sqlite::SqliteRow]) -> StoreResult<Vec<RunRecord>> {
        let mut runs = rows
            .iter()
            .map(run_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.jobs_of(&mut runs).await?;
        Ok(runs)
    }

    async fn jobs_of(&self, runs: &mut [RunRecord]) -> StoreResult<()> {
        if runs.is_empty() {
            return Ok(());
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
            let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM jobs WHERE run_id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            q.push(") ORDER BY run_id, idx");
            for row in q.build().fetch_all(&self.read).await.map_err(db)? {
                let (run_id, job) = job_from_row(&row)?;
                if let Some(&i) = by_id.get(&run_id) {
                    runs[i].jobs.push(job);
                }
            }
        }
        Ok(())
    }
}

/// What `prepare` started: each event's payload location and the segment write.
type PayloadsStarted = StoreResult<(
    Vec<Option<Location>>,
    Option<tokio::task::JoinHandle<std::io::Result<()>>>,
)>;

fn inserted_events(batch: &[Write]) -> Vec<&EventRecord> {
    batch
        .iter()
        .filter_map(|w| match w {
            Write::InsertEvent(e) => Some(e.as_ref()),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, batch: &[Write]) -> StoreResult<Committed> {
        let prepared = self.prepare(batch);
        self.commit_prepared(batch, prepared).await
    }

    /// Starts writing the batch's large payloads, so that it overlaps the previous commit.
    fn prepare(&self, batch: &[Write]) -> Prepared {
        let started: PayloadsStarted = self.start_payloads(&inserted_events(batch));
        Prepared(Some(Box::new(started)))
    }

    async fn commit_prepared(&self, batch: &[Write], prepared: Prepared) -> StoreResult<Committed> {
        // Apply in an order that respects foreign keys and gives the same final state as the
        // batch's own order: inserts first, then the last update of each run and job.
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
        let started = match prepared.0.map(|p| p.downcast::<PayloadsStarted>()) {
            Some(Ok(started)) => *started,
            _ => self.start_payloads(&events),
        };
        let (locations, payloads_written) = started?;
        let mut tx = self.write.begin().await.map_err(db)?;
        for r in &inserts {
            let spec =
                serde_json::to_string(&r.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let ctx = serde_json::to_string(&r.context)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
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
        for w in run_updates.values() {
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
        for chunk in job_order.chunks(ROWS_PER_STATEMENT) {
            let mut by_run: Vec<(&str, &JobRecord)> =
                chunk.iter().map(|k| job_updates[k]).collect();
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
        // A delivery already stored, or earlier in this batch, is a duplicate: not inserted,
        // reported. This transaction is the only writer, so the check cannot race. (One
        // query per chunk that returns only the duplicates, usually none: cheaper than an
        // insert returning a row per event.)
        let mut committed = Committed::default();
        let mut in_batch: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (chunk, places) in events
            .chunks(EVENTS_PER_STATEMENT)
            .zip(locations.chunks(EVENTS_PER_STATEMENT))
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
                    .push_bind(
                        serde_json::to_string(&e.rules_matched).unwrap_or_else(|_| "[]".into()),
                    )
                    .push_bind(at.map(|l| l.segment))
                    .push_bind(at.map(|l| l.offset))
                    .push_bind(at.map(|l| l.len));
            });
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
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
        for w in leases {
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
        if let Some(write) = payloads_written {
            write
                .await
                .map_err(|e| StoreError::Database(format!("payload writer stopped: {e}")))?
                .map_err(|e| StoreError::Database(format!("cannot write event payloads: {e}")))?;
        }
        tx.commit().await.map_err(db)?;
        Ok(committed)
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        let rows =
            sqlx::query("SELECT * FROM runs WHERE status IN ('queued', 'running') ORDER BY id")
                .fetch_all(&self.read)
                .await
                .map_err(db)?;
        self.with_jobs(&rows).await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let Some(row) = sqlx::query("SELECT * FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        Ok(self.with_jobs(std::slice::from_ref(&row)).await?.pop())
    }

    async fn list_runs(&self, filter: RunFilter) -> StoreResult<Vec<RunRecord>> {
        let limit = page_size(filter.limit);
        let rows = match filter.status {
            Some(s) => sqlx::query("SELECT * FROM runs WHERE status = ? ORDER BY id DESC LIMIT ?")
                .bind(s.as_str())
                .bind(limit),
            None => sqlx::query("SELECT * FROM runs ORDER BY id DESC LIMIT ?").bind(limit),
        }
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        self.with_jobs(&rows).await
    }

    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE run_id = ? ORDER BY seq")
            .bind(run_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    seq: r.try_get("seq").map_err(db)?,
                    at_ms: r.try_get("at").map_err(db)?,
                    trace_id: r.try_get("trace_id").map_err(db)?,
                    run_id: r.try_get("run_id").map_err(db)?,
                    job: r.try_get("job").map_err(db)?,
                    attempt: r
                        .try_get::<Option<i64>, _>("attempt")
                        .map_err(db)?
                        .map(|a| a as u32),
                    from: r.try_get("from_status").map_err(db)?,
                    to: r.try_get("to_status").map_err(db)?,
                    note: r.try_get("note").map_err(db)?,
                })
            })
            .collect()
    }

    async fn undecided_events(
        &self,
        source: &str,
        types: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>> {
        let types = serde_json::to_string(types).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT * FROM events WHERE outcome IS NULL AND source = ?1
               AND type IN (SELECT value FROM json_each(?2))
             ORDER BY received_at, id LIMIT ?3",
        )
        .bind(source)
        .bind(types)
        .bind(page_size(limit))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            events.push(self.event_with_payload(r).await?);
        }
        Ok(events)
    }

    async fn get_event(&self, id: &str) -> StoreResult<Option<EventRecord>> {
        let row = sqlx::query("SELECT * FROM events WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        match &row {
            Some(r) => self.event_with_payload(r).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_rules(&self) -> StoreResult<Vec<RuleRecord>> {
        crate::bus::list_rules(&self.read).await
    }

    async fn pending_deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
        crate::bus::pending_deliveries(&self.read, page_size(limit)).await
    }

    async fn deliveries_of(&self, event_id: &str) -> StoreResult<Vec<DeliveryRecord>> {
        crate::bus::deliveries_of(&self.read, event_id).await
    }

    async fn schedule_fires(&self) -> StoreResult<Vec<(String, i64)>> {
        crate::bus::schedule_fires(&self.read).await
    }

    async fn event_by_delivery(&self, delivery_id: &str) -> StoreResult<Option<EventRecord>> {
        let row = sqlx::query("SELECT * FROM events WHERE delivery_id = ?")
            .bind(delivery_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        match &row {
            Some(r) => self.event_with_payload(r).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
        let limit = page_size(filter.limit);
        let rows = sqlx::query(
            "SELECT id, source, type, delivery_id, '' AS detail, trace_id, received_at, action,
                    repository, installation_id, rules_matched, outcome
             FROM events WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR type = ?2)
             ORDER BY received_at DESC, id DESC LIMIT ?3",
        )
        .bind(filter.source)
        .bind(filter.event_type)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        rows.iter().map(|r| event_from_row(r, false)).collect()
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO locks (name, holder, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE locks.holder = excluded.holder OR locks.expires_at < ?",
        )
        .bind(name)
        .bind(holder)
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire(&self, retention: &Retention, now_ms: i64) -> StoreResult<Expired> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let runs =
            sqlx::query("DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?")
                .bind(now_ms - retention.working_ms)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        let audit_events = sqlx::query("DELETE FROM audit_events WHERE at < ?")
            .bind(now_ms - retention.audit_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        let events = sqlx::query("DELETE FROM events WHERE received_at < ?")
            .bind(now_ms - retention.working_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        let locks = sqlx::query("DELETE FROM locks WHERE expires_at < ?")
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        // Segments no remaining row points into go, after the commit (a rollback would
        // bring rows back); what is on disk and being written is noted inside the transaction.
        let segs = self.segments.clone();
        let snap = tokio::task::spawn_blocking(move || segs.snapshot())
            .await
            .map_err(|e| StoreError::Database(format!("payload janitor stopped: {e}")))?
            .map_err(|e| StoreError::Database(format!("cannot list payload segments: {e}")))?;
        let referenced: std::collections::HashSet<i64> = sqlx::query_scalar(
            "SELECT DISTINCT payload_segment FROM events WHERE payload_segment IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        tx.commit().await.map_err(db)?;
        let segs = self.segments.clone();
        tokio::task::spawn_blocking(move || segs.remove_unreferenced(&snap, &referenced))
            .await
            .map_err(|e| StoreError::Database(format!("payload janitor stopped: {e}")))?
            .map_err(|e| StoreError::Database(format!("cannot delete payload segments: {e}")))?;
        Ok(Expired {
            runs,
            audit_events,
            events,
            locks,
        })
    }
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

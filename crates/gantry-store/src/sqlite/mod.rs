//! SQLite adapter: one writer connection (the journal is the only writer, so there is no write
//! contention to manage) and a small pool of readers; WAL so readers never block the writer;
//! `synchronous=FULL` so a committed batch survives power loss, not just a crash.
//! `write.rs` is the write path (one transaction per batch), `payloads.rs` the large event
//! payloads kept in segments beside the database; reads and expiry are here.

/// What every migration makes, in one piece (see the file's header).
const SCHEMA: &str = include_str!("../../migrations/schema.sql");

/// Makes a new database's schema in one transaction and records every migration as applied,
/// as `sqlx`'s migrator would have (its table, its checksums): it then finds nothing to do.
/// Running the migrations one by one costs ~5 ms of DDL (each `ALTER` re-reads the schema).
async fn make_schema(write: &SqlitePool, migrator: &sqlx::migrate::Migrator) -> StoreResult<()> {
    let failed = |e: sqlx::Error| StoreError::Database(format!("cannot make the schema: {e}"));
    let mut tx = write.begin().await.map_err(failed)?;
    sqlx::raw_sql(SCHEMA)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    sqlx::raw_sql(
        "CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)",
    )
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    for m in migrator.iter() {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?, ?, TRUE, ?, 0)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

/// A run's row with its spec and context (kept apart: see the `run_specs` migration).
macro_rules! run_select {
    () => {
        "SELECT r.*, s.spec, s.context FROM runs r JOIN run_specs s ON s.run_id = r.id"
    };
}

mod payloads;
mod write;

use crate::rows::{db, event_from_row, job_from_row, run_from_row};
use crate::segments::{self, Segments};
use async_trait::async_trait;
use gantry_engine::ports::*;
use payloads::Payloads;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
        let new = !path.exists();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals and sort spills in memory: a multi-row insert would otherwise
            // create, unlink and write a temporary file every few commits.
            .pragma("temp_store", "memory");
        // WAL mode is kept in the file, so it is set once, when the file is made (see below);
        // a database made otherwise is switched when opened. (Connect options run
        // `journal_mode` before `synchronous`: on a new file the switch would be a
        // rollback-journal transaction with three fsyncs and a directory sync.)
        let options = if new {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // A SQLite connection cannot be cut as a network one can: pinging it before each
            // transaction (the default) was one more round trip to SQLite's thread per commit.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        // A new database is made without waiting for the disk after each migration (~8 ms of
        // fsyncs): it holds nothing yet, and the first commit after them syncs the whole WAL,
        // schema included. Lost to a power cut before that, it is made again on the next start.
        let pragma = |value: &'static str| sqlx::query(value).execute(&write);
        let migrator = sqlx::migrate!("migrations/sqlite");
        if new {
            pragma("PRAGMA synchronous = OFF").await.map_err(db)?;
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&write)
                .await
                .map_err(db)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Database(format!(
                    "{} cannot be used in WAL mode (SQLite kept it in {mode} mode); \
                     is it on a network file system?",
                    path.display()
                )));
            }
            make_schema(&write, &migrator).await?;
        }
        migrator
            .run(&write)
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
        if new {
            pragma("PRAGMA synchronous = FULL").await.map_err(db)?;
        }
        // Readers connect when first needed (`gantry run` never reads back what it follows).
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options.read_only(true));
        Ok(SqliteStore {
            write,
            read,
            segments: Arc::new(Segments::new(segments::dir_for(path))),
        })
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

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, batch: &[Write]) -> StoreResult<Committed> {
        let prepared = self.prepare(batch);
        self.commit_prepared(batch, prepared).await
    }

    /// Starts writing the batch's large payloads, so that it overlaps the previous commit.
    /// A failure to start is left for `commit_prepared` to meet again and report.
    fn prepare(&self, batch: &[Write]) -> Prepared {
        match Payloads::start(&self.segments, &write::inserted_events(batch)) {
            Ok(p) => Prepared(Some(Box::new(p))),
            Err(_) => Prepared::default(),
        }
    }

    async fn commit_prepared(&self, batch: &[Write], prepared: Prepared) -> StoreResult<Committed> {
        let payloads = match prepared.0.map(|p| p.downcast::<Payloads>()) {
            Some(Ok(started)) => *started,
            // Prepared by someone else (or not at all): start the payloads here.
            _ => Payloads::start(&self.segments, &write::inserted_events(batch))?,
        };
        write::commit(&self.write, batch, payloads).await
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query(concat!(
            run_select!(),
            " WHERE r.status IN ('queued', 'running') ORDER BY r.id"
        ))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        self.with_jobs(&rows).await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let Some(row) = sqlx::query(concat!(run_select!(), " WHERE r.id = ?"))
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
            Some(s) => sqlx::query(concat!(
                run_select!(),
                " WHERE r.status = ? ORDER BY r.id DESC LIMIT ?"
            ))
            .bind(s.as_str())
            .bind(limit),
            None => sqlx::query(concat!(run_select!(), " ORDER BY r.id DESC LIMIT ?")).bind(limit),
        }
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        self.with_jobs(&rows).await
    }

    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
        let chunks: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT last_seq, n, trace_id, records FROM audit_chunks
             WHERE run_id = ? ORDER BY last_seq",
        )
        .bind(run_id)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        let mut trail = Vec::new();
        for (last_seq, n, trace_id, records) in chunks {
            let rows: Vec<write::AuditRow> = serde_json::from_str(&records).map_err(|e| {
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
            events.push(payloads::event_with_payload(&self.segments, r).await?);
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
            Some(r) => payloads::event_with_payload(&self.segments, r)
                .await
                .map(Some),
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
            Some(r) => payloads::event_with_payload(&self.segments, r)
                .await
                .map(Some),
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
        let older = [
            (
                "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?",
                now_ms - retention.working_ms,
            ),
            (
                "DELETE FROM events WHERE received_at < ?",
                now_ms - retention.working_ms,
            ),
            ("DELETE FROM locks WHERE expires_at < ?", now_ms),
        ];
        let mut deleted = [0u64; 3];
        for (n, (sql, cutoff)) in deleted.iter_mut().zip(older) {
            *n = sqlx::query(sql)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        }
        let [runs, events, locks] = deleted;
        // A chunk goes once its newest record is past the retention (a chunk's records are
        // one commit's, at most the journal's linger apart); what is counted is records.
        let audit_events: Vec<i64> =
            sqlx::query_scalar("DELETE FROM audit_chunks WHERE last_at < ? RETURNING n")
                .bind(now_ms - retention.audit_ms)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        let audit_events = audit_events.iter().sum::<i64>() as u64;
        // Segments no remaining row points into go, after the commit (a rollback would
        // bring rows back); what is on disk and being written is noted inside the transaction.
        let snap = payloads::blocking("list payload segments", {
            let segs = self.segments.clone();
            move || segs.snapshot()
        })
        .await?;
        let referenced: std::collections::HashSet<i64> = sqlx::query_scalar(
            "SELECT DISTINCT payload_segment FROM events WHERE payload_segment IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        tx.commit().await.map_err(db)?;
        payloads::blocking("delete payload segments", {
            let segs = self.segments.clone();
            move || segs.remove_unreferenced(&snap, &referenced)
        })
        .await?;
        Ok(Expired {
            runs,
            audit_events,
            events,
            locks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.write)
            .await
            .unwrap()
    }

    async fn journal_mode(pool: &SqlitePool) -> String {
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn commits_wait_for_the_disk_whether_the_database_is_new_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.db");
        let new = SqliteStore::open(&path).await.unwrap();
        assert_eq!(synchronous(&new).await, 2, "FULL after making the database");
        assert_eq!(journal_mode(&new.write).await, "wal");
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'jobs', 'audit_chunks')",
        )
        .fetch_one(&new.write)
        .await
        .unwrap();
        assert_eq!(tables, 3, "every migration ran");
        drop(new);
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(synchronous(&again).await, 2);
        assert_eq!(journal_mode(&again.write).await, "wal");
        assert_eq!(journal_mode(&again.read).await, "wal");
    }

    /// A database at `path` as a release made it that had every migration before `version`.
    async fn migrated_before(path: &Path, version: i64) -> SqlitePool {
        let mut before = sqlx::migrate!("migrations/sqlite");
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        before.run(&pool).await.unwrap();
        pool
    }

    #[tokio::test]
    async fn a_database_made_in_rollback_mode_is_switched_to_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.db");
        let plain = SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Delete),
        )
        .await
        .unwrap();
        sqlx::query("CREATE TABLE t (x)")
            .execute(&plain)
            .await
            .unwrap();
        assert_eq!(journal_mode(&plain).await, "delete");
        plain.close().await;
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(journal_mode(&store.write).await, "wal");
    }

    #[tokio::test]
    async fn runs_stored_before_specs_moved_to_their_own_table_keep_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.db");
        {
            // A database as the release before made it: every migration up to the one that
            // moved specs out of `runs`, and a run stored the old way.
            let pool = migrated_before(&path, 20261203000000).await;
            sqlx::query(
                "INSERT INTO runs (id, name, status, trace_id, spec, context, created_at)
                 VALUES ('01OLD', 'old', 'succeeded', 't', ?, '{\"event\":\"push\"}', 1)",
            )
            .bind(r#"{"name":"old","jobs":[]}"#)
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let run = store.get_run("01OLD").await.unwrap().expect("the old run");
        assert_eq!(run.spec.name, "old");
        assert_eq!(run.context.event.as_deref(), Some("push"));
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('runs')")
            .fetch_all(&store.write)
            .await
            .unwrap();
        assert!(
            !columns.iter().any(|c| c == "spec" || c == "context"),
            "{columns:?}"
        );
        // The janitor deletes runs; their specs go with them.
        sqlx::query("DELETE FROM runs WHERE id = '01OLD'")
            .execute(&store.write)
            .await
            .unwrap();
        let specs: i64 = sqlx::query_scalar("SELECT count(*) FROM run_specs")
            .fetch_one(&store.write)
            .await
            .unwrap();
        assert_eq!(specs, 0);
    }

    #[tokio::test]
    async fn audit_records_stored_one_per_row_move_into_chunks_keeping_their_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.db");
        {
            // A database as the release before made it: a record per row, the newest of
            // which (seq 3) has been expired.
            let pool = migrated_before(&path, 20261204000000).await;
            sqlx::raw_sql(
                r#"INSERT INTO audit_events (at, trace_id, run_id, job, attempt, from_status, to_status, note) VALUES
                     (10, 't1', '01A', NULL, NULL, NULL, 'queued', NULL),
                     (11, 't1', '01A', 'build', 2, 'queued', 'failed', 'exit "1"'),
                     (12, 't1', '01A', NULL, NULL, 'running', 'failed', NULL);
                   DELETE FROM audit_events WHERE seq = 3;"#,
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let record = |seq,
                      at_ms,
                      job: Option<&str>,
                      attempt,
                      from: Option<&str>,
                      to: &str,
                      note: Option<&str>| AuditRecord {
            seq,
            at_ms,
            trace_id: "t1".into(),
            run_id: "01A".into(),
            job: job.map(Into::into),
            attempt,
            from: from.map(Into::into),
            to: to.into(),
            note: note.map(Into::into),
        };
        let old = [
            record(1, 10, None, None, None, "queued", None),
            record(
                2,
                11,
                Some("build"),
                Some(2),
                Some("queued"),
                "failed",
                Some("exit \"1\""),
            ),
        ];
        assert_eq!(store.audit_trail("01A").await.unwrap(), old);
        let next = record(0, 13, None, None, Some("failed"), "queued", Some("rerun"));
        store.commit(&[Write::Audit(next.clone())]).await.unwrap();
        let trail = store.audit_trail("01A").await.unwrap();
        assert_eq!(trail[..2], old);
        assert_eq!(
            trail[2],
            AuditRecord { seq: 4, ..next },
            "seq 3 was handed out before"
        );
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'audit_events'")
                .fetch_one(&store.write)
                .await
                .unwrap();
        assert_eq!(tables, 0);
    }

    /// Every table, index and trigger of a database, with the SQL that makes it.
    async fn schema_of(pool: &SqlitePool) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT type, name, sql FROM sqlite_master
             WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'
             ORDER BY rowid",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn schema_is_what_the_migrations_make() {
        let dir = tempfile::tempdir().unwrap();
        let migrated = SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(dir.path().join("migrated.db"))
                .create_if_missing(true),
        )
        .await
        .unwrap();
        sqlx::migrate!("migrations/sqlite")
            .run(&migrated)
            .await
            .unwrap();
        let want = schema_of(&migrated).await;
        let made = SqliteStore::open(&dir.path().join("made.db"))
            .await
            .unwrap();
        let got = schema_of(&made.write).await;
        let text: String = want.iter().map(|(_, _, sql)| format!("{sql};\n")).collect();
        assert!(
            got == want,
            "migrations/schema.sql is not what the migrations make; below its header it should be:\n{text}"
        );
        // Recorded as applied, so a later start applies nothing again (and checks checksums).
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&made.write)
                .await
                .unwrap();
        let all: Vec<(i64, bool)> = sqlx::migrate!("migrations/sqlite")
            .iter()
            .map(|m| (m.version, true))
            .collect();
        assert_eq!(applied, all);
        drop(made);
        SqliteStore::open(&dir.path().join("made.db"))
            .await
            .unwrap();
    }
}

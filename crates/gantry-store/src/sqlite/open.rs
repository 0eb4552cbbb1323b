//! Making and opening the database: the pools, WAL mode, a new database's schema in one piece,
//! and the migrations.

use super::SqliteStore;
use crate::opening::{OpenError, refuse_newer};
use crate::rows::db;
use crate::segments::{self, Segments};
use gantry_engine::ports::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations; refuses a
    /// database a newer Gantry migrated.
    pub async fn open(path: &Path) -> Result<SqliteStore, OpenError> {
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
        // No idle or lifetime reaping (`idle_timeout`, `max_lifetime` unset): a SQLite
        // connection never goes stale, and without them sqlx runs no maintenance task, whose
        // sweep can spin a core forever (sqlx 0.9.0, launchbadge/sqlx#3645).
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // A SQLite connection cannot be cut as a network one can: pinging it before each
            // transaction (the default) was one more round trip to SQLite's thread per commit.
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
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
                return Err(OpenError::Store(StoreError::Database(format!(
                    "{} cannot be used in WAL mode (SQLite kept it in {mode} mode); \
                     is it on a network file system?",
                    path.display()
                ))));
            }
            make_schema(&write, &migrator).await?;
        } else {
            refuse_newer(&applied_versions(&write).await?, &migrator)?;
        }
        migrator
            .run(&write)
            .await
            .map_err(|e| OpenError::Migration(e.to_string()))?;
        if new {
            pragma("PRAGMA synchronous = FULL").await.map_err(db)?;
        }
        // The unsynced writer and the readers connect when first needed.
        let write_unsynced = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options.clone().synchronous(SqliteSynchronous::Normal));
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options.read_only(true));
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(SqliteStore {
            write,
            write_unsynced,
            read,
            wal: wal.into(),
            segments: Arc::new(Segments::new(segments::dir_for(path))),
            payload_blobs: None,
        })
    }
}

/// The migrations a database says were applied (none if it has no migrations table).
async fn applied_versions(write: &SqlitePool) -> StoreResult<Vec<i64>> {
    let table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(write)
    .await
    .map_err(db)?;
    if table.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(write)
        .await
        .map_err(db)
}

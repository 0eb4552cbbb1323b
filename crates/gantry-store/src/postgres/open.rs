//! Connecting to PostgreSQL and migrating: a first connection that says clearly why it could
//! not be made (the database named by host, port and name, never its password), the check that
//! refuses a database a newer Gantry migrated, the migrations (`migrations/postgres`; sqlx
//! holds an advisory lock meanwhile, so servers starting together migrate once), then the pool.

use super::PgStore;
use crate::opening::{OpenError, refuse_newer};
use crate::rows::db;
use gantry_engine::ports::StoreResult;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use std::time::Duration;

/// Connections in the pool: the journal writes through one at a time; the rest serve reads
/// (the API, the dashboard, the bus) and the secret store.
const POOL_SIZE: u32 = 8;

/// How long the first connection may take before the start is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the database at `url` is, for messages and logs: host, port and name, never the user
/// or the password.
pub fn postgres_target(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(options) => target(&options),
        Err(_) => "(a URL that does not parse)".into(),
    }
}

/// Where a database is, for messages: host (or socket), port and name, never user or password.
fn target(options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => options.get_host().to_string(),
    };
    let db = options.get_database().unwrap_or(options.get_username());
    format!("{host}:{}/{db}", options.get_port())
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/name`), refuses
    /// it if a newer Gantry migrated it, applies the migrations, and opens the pool.
    pub async fn connect(url: &str) -> Result<PgStore, OpenError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| OpenError::BadUrl(e.to_string()))?;
        let failed = |cause: String| OpenError::Connect {
            target: target(&options),
            cause,
        };
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| failed(format!("no answer in {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| failed(e.to_string()))?;
        let migrator = sqlx::migrate!("migrations/postgres");
        refuse_newer(&applied_versions(&mut conn).await?, &migrator)?;
        migrator
            .run(&mut conn)
            .await
            .map_err(|e| OpenError::Migration(e.to_string()))?;
        let _ = conn.close().await;
        // No idle or lifetime reaping: without it sqlx runs no maintenance task, whose sweep
        // can spin a core forever (sqlx 0.9.0, launchbadge/sqlx#3645); a connection the
        // server dropped is found by the ping before each use (`test_before_acquire`).
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(CONNECT_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        Ok(PgStore {
            pool,
            payload_blobs: None,
        })
    }
}

/// The migrations a database says were applied (none if it has no migrations table).
async fn applied_versions(conn: &mut PgConnection) -> StoreResult<Vec<i64>> {
    let table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if !table {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)
}

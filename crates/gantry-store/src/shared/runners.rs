//! The runners table: each job's ephemeral runner record (as JSON), written whole, listed
//! active-first or newest first.

use super::{Conn, Pool};
use crate::rows::db;
use gantry_engine::ports::{RunnerFilter, RunnerRecord, StoreError, StoreResult};

pub(crate) async fn put(tx: &mut Conn, r: &RunnerRecord) -> StoreResult<()> {
    let record = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let active = i64::from(r.phase != gantry_core::runners::lifecycle::Phase::Done);
    sqlx::query(
        "INSERT INTO runners (name, pool, active, queued_at, finished_at, record) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT(name) DO UPDATE SET pool = $2, active = $3, finished_at = $5, record = $6",
    )
    .bind(&r.name)
    .bind(&r.pool)
    .bind(active)
    .bind(r.queued_at_ms)
    .bind(r.finished_at_ms)
    .bind(record)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn list(pool: &Pool, f: RunnerFilter) -> StoreResult<Vec<RunnerRecord>> {
    let limit = if f.limit == 0 {
        i64::MAX
    } else {
        i64::from(f.limit)
    };
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT record FROM runners WHERE ($1 = 0 OR active = 1) AND ($2 IS NULL OR pool = $2)
         ORDER BY queued_at DESC, name DESC LIMIT $3",
    )
    .bind(i64::from(f.active))
    .bind(f.pool)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    texts.iter().map(|t| parse(t)).collect()
}

pub(crate) async fn get(pool: &Pool, name: &str) -> StoreResult<Option<RunnerRecord>> {
    let text: Option<String> = sqlx::query_scalar("SELECT record FROM runners WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    text.as_deref().map(parse).transpose()
}

fn parse(text: &str) -> StoreResult<RunnerRecord> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("runner record: {e}")))
}

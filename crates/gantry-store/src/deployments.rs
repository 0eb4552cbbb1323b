//! The deployments table: each deployer session's record (as JSON), listed newest first with
//! its run's status.

use crate::rows::db;
use gantry_core::RunStatus;
use gantry_engine::ports::{DeploymentFilter, DeploymentRecord, StoreError, StoreResult};
use sqlx::sqlite::SqlitePool;
use sqlx::{Row, Sqlite, Transaction};

pub(crate) async fn put(tx: &mut Transaction<'_, Sqlite>, d: &DeploymentRecord) -> StoreResult<()> {
    let record = serde_json::to_string(d).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO deployments (session_id, kind, created_at, record)
         SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM runs WHERE id = ?1)
         ON CONFLICT(session_id) DO UPDATE SET record = ?4",
    )
    .bind(&d.session_id)
    .bind(&d.kind)
    .bind(d.created_at_ms)
    .bind(record)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn get(pool: &SqlitePool, id: &str) -> StoreResult<Option<DeploymentRecord>> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT record FROM deployments WHERE session_id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    text.as_deref().map(parse).transpose()
}

pub(crate) async fn list(
    pool: &SqlitePool,
    f: DeploymentFilter,
) -> StoreResult<Vec<(DeploymentRecord, RunStatus)>> {
    let statuses =
        serde_json::to_string(&f.statuses).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (before_at, before_id) = f.before.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(
        "SELECT d.record, r.status FROM deployments d JOIN runs r ON r.id = d.session_id
         WHERE d.kind = ?1
           AND (json_array_length(?2) = 0 OR r.status IN (SELECT value FROM json_each(?2)))
           AND (d.created_at < ?3 OR (d.created_at = ?3 AND d.session_id < ?4))
         ORDER BY d.created_at DESC, d.session_id DESC LIMIT ?5",
    )
    .bind(&f.kind)
    .bind(statuses)
    .bind(before_at)
    .bind(before_id)
    .bind(i64::from(f.limit.max(1)))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            let text: String = r.get(0);
            let status: String = r.get(1);
            let status = RunStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("run status `{status}`")))?;
            Ok((parse(&text)?, status))
        })
        .collect()
}

fn parse(text: &str) -> StoreResult<DeploymentRecord> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("deployment record: {e}")))
}

//! The deployments table: each deployer session's record (as JSON), listed newest first with
//! its run's status.

use super::{Conn, DEPLOYMENTS, Pool, list as param_list};
use crate::rows::{Cols, db};
use gantry_core::RunStatus;
use gantry_engine::ports::{DeploymentFilter, DeploymentRecord, StoreError, StoreResult};

pub(crate) async fn put(tx: &mut Conn, d: &DeploymentRecord) -> StoreResult<()> {
    let record = serde_json::to_string(d).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO deployments (session_id, kind, created_at, record)
         SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1)
         ON CONFLICT(session_id) DO UPDATE SET record = $4",
    )
    .bind(&d.session_id)
    .bind(&d.kind)
    .bind(d.created_at_ms)
    .bind(record)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn get(pool: &Pool, id: &str) -> StoreResult<Option<DeploymentRecord>> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT record FROM deployments WHERE session_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    text.as_deref().map(parse).transpose()
}

pub(crate) async fn list(
    pool: &Pool,
    f: DeploymentFilter,
) -> StoreResult<Vec<(DeploymentRecord, RunStatus)>> {
    let (before_at, before_id) = f.before.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(DEPLOYMENTS)
        .bind(&f.kind)
        .bind(param_list(&f.statuses))
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(f.limit.max(1)))
        .fetch_all(pool)
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| {
            let text = r.text("record")?;
            let status = r.text("status")?;
            let status = RunStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("run status `{status}`")))?;
            Ok((parse(&text)?, status))
        })
        .collect()
}

fn parse(text: &str) -> StoreResult<DeploymentRecord> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("deployment record: {e}")))
}

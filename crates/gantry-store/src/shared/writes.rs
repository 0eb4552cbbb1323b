//! The parts of a batch's transaction both backends write with the same statements: runs
//! inserted and updated, event outcomes, the bus's, runners' and deployments' rows, leases.

use super::Conn;
use crate::batch::{Sorted, job_row};
use crate::rows::{db, json_rows};
use gantry_engine::ports::*;

/// Inserts the batch's runs with their specs and jobs; `insert_jobs` is the dialect's
/// statement reading a JSON array of job rows from `$1`.
pub(crate) async fn insert_runs(
    tx: &mut Conn,
    inserts: &[&RunRecord],
    insert_jobs: &'static str,
) -> StoreResult<()> {
    for r in inserts {
        let spec =
            serde_json::to_string(&r.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let ctx =
            serde_json::to_string(&r.context).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO runs (id, name, status, trace_id, cancel_requested, created_at, started_at, finished_at, repo, branch, event)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(r.status.as_str())
        .bind(&r.trace_id)
        .bind(i64::from(r.cancel_requested))
        .bind(r.created_at_ms)
        .bind(r.started_at_ms)
        .bind(r.finished_at_ms)
        .bind(&r.context.repo)
        .bind(&r.context.branch)
        .bind(&r.context.event)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("INSERT INTO run_specs (run_id, spec, context) VALUES ($1, $2, $3)")
            .bind(&r.id)
            .bind(spec)
            .bind(ctx)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if !r.jobs.is_empty() {
            sqlx::query(insert_jobs)
                .bind(json_rows(r.jobs.iter().map(|j| job_row(&r.id, j)))?)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
    }
    Ok(())
}

/// Each run's last update.
pub(crate) async fn update_runs(tx: &mut Conn, s: &Sorted<'_>) -> StoreResult<()> {
    for w in s.run_updates.values().copied() {
        if let Write::UpdateRun {
            id,
            status,
            cancel_requested,
            started_at_ms,
            finished_at_ms,
        } = w
        {
            sqlx::query(
                "UPDATE runs SET status = $1, cancel_requested = $2, started_at = $3, finished_at = $4
                 WHERE id = $5",
            )
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
    Ok(())
}

/// The bus's, runners' and deployments' rows and the events' outcomes (after the batch's
/// events, which they may refer to).
pub(crate) async fn after_events(tx: &mut Conn, s: &Sorted<'_>) -> StoreResult<()> {
    for w in s.bus.iter().copied() {
        match w {
            Write::PutRunner(r) => super::runners::put(tx, r).await?,
            Write::PutDeployment(d) => super::deployments::put(tx, d).await?,
            w => super::bus::apply(tx, w).await?,
        }
    }
    super::set_outcomes(tx, &s.outcomes).await
}

/// Leases renewed (only the holder's) and released.
pub(crate) async fn leases(tx: &mut Conn, leases: &[&Write]) -> StoreResult<()> {
    for w in leases.iter().copied() {
        match w {
            Write::RenewLeases {
                names,
                holder,
                expires_at_ms,
            } => {
                for name in names {
                    sqlx::query(
                        "INSERT INTO locks (name, holder, expires_at) VALUES ($1, $2, $3)
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
                sqlx::query("DELETE FROM locks WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            _ => {}
        }
    }
    Ok(())
}

//! The agents' tables: tokens (hashed), agents, and the queue of attempts for agents, as the
//! engine's [`AgentQueue`], on either backend (mounted by `shared/sqlite.rs` and
//! `shared/postgres.rs`). Every write is its own synced transaction (durable before it
//! returns); taking, renewing and finishing an entry are single `UPDATE … WHERE state = …`
//! statements, so two agents never take the same entry and a result is taken once.

use super::{Db, Pool};
use crate::rows::db;
use async_trait::async_trait;
use gantry_engine::ports::{
    AgentQueue, AgentRecord, AgentToken, QueueState, QueuedJob, StoreError, StoreResult,
};
use sqlx::Row;

/// The agents' tables on the store's database.
#[derive(Clone)]
pub struct StoreAgents {
    pub(crate) write: Pool,
    pub(crate) read: Pool,
}

/// The queue's columns, in the order [`entry`] reads them.
macro_rules! columns {
    () => {
        "id, run_id, job, attempt, trace_id, labels, task, state, agent, lease_expires, \
         cancel_requested, result, created_at"
    };
}

fn labels(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("agent labels: {e}")))
}

fn entry(row: &<Db as sqlx::Database>::Row) -> StoreResult<QueuedJob> {
    let state: String = row.get("state");
    Ok(QueuedJob {
        id: row.get("id"),
        run_id: row.get("run_id"),
        job: row.get("job"),
        attempt: row.get::<i64, _>("attempt") as u32,
        trace_id: row.get("trace_id"),
        labels: labels(row.get("labels"))?,
        task: row.get("task"),
        state: QueueState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("agent job state `{state}`")))?,
        agent: row.get("agent"),
        lease_expires_ms: row.get("lease_expires"),
        cancel_requested: row.get::<i64, _>("cancel_requested") != 0,
        result: row.get("result"),
        created_at_ms: row.get("created_at"),
    })
}

#[async_trait]
impl AgentQueue for StoreAgents {
    async fn create_token(&self, name: &str, hash: &[u8], now_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO agent_tokens (name, hash, created_at) VALUES ($1, $2, $3)
             ON CONFLICT(name) DO NOTHING",
        )
        .bind(name)
        .bind(hash)
        .bind(now_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn token_hashes(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        sqlx::query_as("SELECT name, hash FROM agent_tokens")
            .fetch_all(&self.write)
            .await
            .map_err(db)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<AgentToken>> {
        let rows: Vec<(String, i64, Option<i64>)> =
            sqlx::query_as("SELECT name, created_at, last_used_at FROM agent_tokens ORDER BY name")
                .fetch_all(&self.read)
                .await
                .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at_ms, last_used_ms)| AgentToken {
                name,
                created_at_ms,
                last_used_ms,
            })
            .collect())
    }

    async fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM agent_tokens WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_token(&self, name: &str, now_ms: i64) -> StoreResult<()> {
        // At most once a second: a poll loop need not write on every wake.
        sqlx::query(
            "UPDATE agent_tokens SET last_used_at = $2
             WHERE name = $1 AND (last_used_at IS NULL OR last_used_at < $2 - 1000)",
        )
        .bind(name)
        .bind(now_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn put_agent(&self, a: &AgentRecord) -> StoreResult<()> {
        let labels = serde_json::to_string(&a.labels).expect("labels are JSON");
        sqlx::query(
            "INSERT INTO agents (name, token, labels, slots, last_seen) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(name) DO UPDATE SET token = $2, labels = $3, slots = $4, last_seen = $5",
        )
        .bind(&a.name)
        .bind(&a.token)
        .bind(labels)
        .bind(i64::from(a.slots))
        .bind(a.last_seen_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn list_agents(&self) -> StoreResult<Vec<AgentRecord>> {
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT name, token, labels, slots, last_seen FROM agents ORDER BY name",
        )
        .fetch_all(&self.write)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(name, token, l, slots, last_seen_ms)| {
                Ok(AgentRecord {
                    name,
                    token,
                    labels: labels(&l)?,
                    slots: slots as u32,
                    last_seen_ms,
                })
            })
            .collect()
    }

    async fn touch_agent(&self, name: &str, now_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE agents SET last_seen = $2 WHERE name = $1")
            .bind(name)
            .bind(now_ms)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn enqueue(&self, j: &QueuedJob) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO agent_jobs (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&j.id)
        .bind(&j.run_id)
        .bind(&j.job)
        .bind(i64::from(j.attempt))
        .bind(&j.trace_id)
        .bind(serde_json::to_string(&j.labels).expect("labels are JSON"))
        .bind(&j.task)
        .bind(j.state.as_str())
        .bind(&j.agent)
        .bind(j.lease_expires_ms)
        .bind(i64::from(j.cancel_requested))
        .bind(&j.result)
        .bind(j.created_at_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<QueuedJob>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM agent_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.write)
        .await
        .map_err(db)?;
        row.as_ref().map(entry).transpose()
    }

    async fn find(&self, run_id: &str, job: &str, attempt: u32) -> StoreResult<Option<QueuedJob>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM agent_jobs WHERE run_id = $1 AND job = $2 AND attempt = $3"
        ))
        .bind(run_id)
        .bind(job)
        .bind(i64::from(attempt))
        .fetch_optional(&self.write)
        .await
        .map_err(db)?;
        row.as_ref().map(entry).transpose()
    }

    async fn open(&self, limit: u32) -> StoreResult<Vec<QueuedJob>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM agent_jobs WHERE state IN ('queued', 'taken') ORDER BY created_at, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.write)
        .await
        .map_err(db)?;
        rows.iter().map(entry).collect()
    }

    async fn take(&self, id: &str, agent: &str, lease_until_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE agent_jobs SET state = 'taken', agent = $2, lease_expires = $3
             WHERE id = $1 AND state = 'queued'",
        )
        .bind(id)
        .bind(agent)
        .bind(lease_until_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew(&self, id: &str, agent: &str, lease_until_ms: i64) -> StoreResult<Option<bool>> {
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE agent_jobs SET lease_expires = $3
             WHERE id = $1 AND agent = $2 AND state = 'taken' RETURNING cancel_requested",
        )
        .bind(id)
        .bind(agent)
        .bind(lease_until_ms)
        .fetch_optional(&self.write)
        .await
        .map_err(db)?;
        Ok(cancel.map(|c| c != 0))
    }

    async fn finish(
        &self,
        id: &str,
        from: QueueState,
        to: QueueState,
        result: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE agent_jobs SET state = $3, result = COALESCE($4, result)
             WHERE id = $1 AND state = $2",
        )
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(result)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire(&self, id: &str, now_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE agent_jobs SET state = 'lost'
             WHERE id = $1 AND state = 'taken' AND lease_expires <= $2",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn request_cancel(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE agent_jobs SET cancel_requested = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn abandon_open(&self, holder: &str, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE agent_jobs SET state = 'lost' WHERE state IN ('queued', 'taken')
               AND NOT EXISTS (SELECT 1 FROM locks l WHERE l.name = 'run:' || agent_jobs.run_id
                                 AND l.holder <> $1 AND l.expires_at >= $2)",
        )
        .bind(holder)
        .bind(now_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn sweep(&self, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM agent_jobs WHERE state IN ('done', 'lost', 'cancelled') AND created_at < $1",
        )
        .bind(before_ms)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }
}

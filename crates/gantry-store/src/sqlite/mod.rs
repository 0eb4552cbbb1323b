//! SQLite adapter: WAL, so readers never block the writer; a small pool of readers and two
//! writer connections, used one at a time by the journal (the only writer of runs): one at
//! `synchronous = FULL`, whose commits survive a power cut, and one at `NORMAL`, whose commits
//! reach the WAL without a sync (they survive our crash; the next FULL commit, or
//! [`Store::sync`], syncs the WAL and them with it).
//! `open.rs` makes and opens the database, `write.rs` is the write path (one transaction per
//! batch), `audit.rs` the audit trail's chunks, `payloads.rs` the large event payloads kept in
//! segments beside the database; reads and expiry are here.

/// A run's row with its spec and context (kept apart: see the `run_specs` migration).
macro_rules! run_select {
    () => {
        "SELECT r.*, s.spec, s.context FROM runs r JOIN run_specs s ON s.run_id = r.id"
    };
}

mod audit;
mod open;
mod payloads;
mod write;

use crate::rows::{db, event_from_row, job_from_row, run_from_row};
use crate::segments::Segments;
use async_trait::async_trait;
use gantry_engine::ports::*;
use payloads::Payloads;
use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;
use std::sync::Arc;

/// A list's page size: 50 unless asked, at most 1000.
fn page_size(asked: u32) -> u32 {
    if asked == 0 { 50 } else { asked.min(1000) }
}

#[derive(Clone)]
pub struct SqliteStore {
    /// The writer whose commits are synced (`FULL`); the secret store writes through it too.
    write: SqlitePool,
    /// The writer whose commits are not synced (`NORMAL`), for [`Durability::Os`].
    write_unsynced: SqlitePool,
    read: SqlitePool,
    /// The WAL file, synced by [`Store::sync`].
    wal: std::path::PathBuf,
    segments: Arc<Segments>,
}

impl SqliteStore {
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
    /// Starts writing the batch's large payloads, so that it overlaps the previous commit.
    /// A failure to start is left for `commit_prepared` to meet again and report.
    fn prepare(&self, batch: &[Write]) -> Prepared {
        match Payloads::start(&self.segments, &write::inserted_events(batch)) {
            Ok(p) => Prepared(Some(Box::new(p))),
            Err(_) => Prepared::default(),
        }
    }

    async fn commit_prepared(
        &self,
        batch: &[Write],
        prepared: Prepared,
        durability: Durability,
    ) -> StoreResult<Committed> {
        let payloads = match prepared.0.map(|p| p.downcast::<Payloads>()) {
            Some(Ok(started)) => *started,
            // Prepared by someone else (or not at all): start the payloads here.
            _ => Payloads::start(&self.segments, &write::inserted_events(batch))?,
        };
        let pool = match durability {
            Durability::Os => &self.write_unsynced,
            Durability::Disk => &self.write,
        };
        write::commit(pool, batch, payloads).await
    }

    /// Syncs the WAL file: what `synchronous = FULL` does after a commit, for every commit
    /// written before it.
    async fn sync(&self) -> StoreResult<()> {
        let wal = self.wal.clone();
        let synced = tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data(),
            // No WAL yet: nothing was committed since it was last checkpointed away.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await;
        match synced {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Database(format!(
                "cannot sync {}: {e}",
                self.wal.display()
            ))),
            Err(e) => Err(StoreError::Database(format!("cannot sync the WAL: {e}"))),
        }
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
        // Only the tests asked for go into the statement (32 texts at most, each prepared
        // once per connection): SQLite then walks the index of one of them — each ends in the
        // id — newest first and stops at the page's end. The context's repository, branch and
        // event are columns of `runs` for this.
        let tests = [
            ("r.status = ", filter.status.map(|s| s.as_str().to_string())),
            ("r.id < ", filter.before),
            ("r.repo = ", filter.repo),
            ("r.branch = ", filter.branch),
            ("r.event = ", filter.event),
        ];
        let mut q = QueryBuilder::<Sqlite>::new(run_select!());
        let asked = tests.into_iter().filter_map(|(t, v)| Some((t, v?)));
        for (i, (test, value)) in asked.enumerate() {
            q.push(if i == 0 { " WHERE " } else { " AND " });
            q.push(test).push_bind(value);
        }
        q.push(" ORDER BY r.id DESC LIMIT ")
            .push_bind(page_size(filter.limit));
        let rows = q.build().fetch_all(&self.read).await.map_err(db)?;
        self.with_jobs(&rows).await
    }

    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
        audit::trail(&self.read, run_id).await
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
        // A page after `before` is its own statement: inside an `OR` the row-value bound
        // could not seek the (received_at, id) index.
        let sql = if filter.before.is_some() {
            "SELECT id, source, type, delivery_id, '' AS detail, trace_id, received_at, action,
                    repository, installation_id, rules_matched, outcome
             FROM events WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR type = ?2)
               AND (received_at, id) < (SELECT received_at, id FROM events WHERE id = ?4)
             ORDER BY received_at DESC, id DESC LIMIT ?3"
        } else {
            "SELECT id, source, type, delivery_id, '' AS detail, trace_id, received_at, action,
                    repository, installation_id, rules_matched, outcome
             FROM events WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR type = ?2)
               AND ?4 IS NULL
             ORDER BY received_at DESC, id DESC LIMIT ?3"
        };
        let rows = sqlx::query(sql)
            .bind(filter.source)
            .bind(filter.event_type)
            .bind(limit)
            .bind(filter.before)
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

    async fn list_runners(&self, filter: RunnerFilter) -> StoreResult<Vec<RunnerRecord>> {
        crate::runners::list(&self.read, filter).await
    }

    async fn get_runner(&self, name: &str) -> StoreResult<Option<RunnerRecord>> {
        crate::runners::get(&self.read, name).await
    }

    async fn get_deployment(&self, session_id: &str) -> StoreResult<Option<DeploymentRecord>> {
        crate::deployments::get(&self.read, session_id).await
    }

    async fn list_deployments(
        &self,
        filter: DeploymentFilter,
    ) -> StoreResult<Vec<(DeploymentRecord, gantry_core::RunStatus)>> {
        crate::deployments::list(&self.read, filter).await
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
            (
                "DELETE FROM runners WHERE active = 0 AND finished_at < ?",
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
mod tests;

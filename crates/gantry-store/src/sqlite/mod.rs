//! SQLite adapter: WAL, so readers never block the writer; a small pool of readers and two
//! writer connections, used one at a time by the journal (the only writer of runs): one at
//! `synchronous = FULL`, whose commits survive a power cut, and one at `NORMAL`, whose commits
//! reach the WAL without a sync (they survive our crash; the next FULL commit, or
//! [`Store::sync`], syncs the WAL and them with it).
//! `open.rs` makes and opens the database, `write.rs` is the write path (one transaction per
//! batch), `payloads.rs` the large event payloads kept in segments beside the database (the
//! largest go to the object store, when the store has one: `crate::payload_blobs`); the reads
//! are the statements both backends share (`crate::shared`).

mod open;
mod payloads;
mod write;

use crate::SecretKey;
use crate::payload_blobs::{self, PayloadBlobs, Uploads};
use crate::rows::db;
use crate::segments::Segments;
use crate::shared::sqlite::{bus, deployments, reads, reads::EventKey, runners, secrets::Secrets};
use async_trait::async_trait;
use gantry_engine::ports::*;
use payloads::Payloads;
use sqlx::sqlite::SqlitePool;
use std::sync::Arc;

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
    /// Where payloads of its threshold or more go, if anywhere (else to segments).
    payload_blobs: Option<Arc<PayloadBlobs>>,
}

/// What [`Store::prepare`] started for a batch: its uploads and its segment write.
struct Started {
    uploads: Uploads,
    payloads: Option<Payloads>,
}

/// Secrets in SQLite, encrypted with age.
pub type SqliteSecrets = Secrets;

impl SqliteStore {
    /// The secret store on the same database, with values encrypted to `key`.
    pub fn secrets(&self, key: SecretKey) -> SqliteSecrets {
        Secrets {
            write: self.write.clone(),
            read: self.read.clone(),
            key,
        }
    }

    /// The agents' tables on the same database.
    pub fn agents(&self) -> crate::SqliteAgents {
        crate::SqliteAgents {
            write: self.write.clone(),
            read: self.read.clone(),
        }
    }

    /// The store with event payloads of `blobs`' threshold or more kept in its object store.
    pub fn with_payload_blobs(mut self, blobs: PayloadBlobs) -> SqliteStore {
        self.payload_blobs = Some(Arc::new(blobs));
        self
    }

    fn blobs(&self) -> Option<&PayloadBlobs> {
        self.payload_blobs.as_deref()
    }

    /// Starts the batch's uploads and segment write (an error starting the segment write is
    /// left for the commit to meet again).
    fn start(&self, batch: &[Write]) -> Started {
        let events = write::inserted_events(batch);
        let blob_min = self.blobs().map(PayloadBlobs::min_bytes);
        Started {
            uploads: Uploads::start(self.payload_blobs.as_ref(), &events),
            payloads: Payloads::start(&self.segments, &events, blob_min).ok(),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    /// Starts writing the batch's large payloads (to a segment, the largest to the object
    /// store), so that it overlaps the previous commit. A failure to start the segment write
    /// is left for `commit_prepared` to meet again and report.
    fn prepare(&self, batch: &[Write]) -> Prepared {
        Prepared(Some(Box::new(self.start(batch))))
    }

    async fn commit_prepared(
        &self,
        batch: &[Write],
        prepared: Prepared,
        durability: Durability,
    ) -> StoreResult<Committed> {
        // Prepared by someone else (or not at all): start the payloads here.
        let started = match prepared.0.map(|p| p.downcast::<Started>()) {
            Some(Ok(started)) => *started,
            _ => self.start(batch),
        };
        let payloads = match started.payloads {
            Some(p) => p,
            None => Payloads::start(
                &self.segments,
                &write::inserted_events(batch),
                self.blobs().map(PayloadBlobs::min_bytes),
            )?,
        };
        // In the object store before the row that points there commits (those not stored
        // there go to the row).
        let refs = started.uploads.durable().await;
        let pool = match durability {
            Durability::Os => &self.write_unsynced,
            Durability::Disk => &self.write,
        };
        write::commit(pool, batch, payloads, &refs).await
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
        reads::unfinished_runs(&self.read).await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        reads::get_run(&self.read, id).await
    }

    async fn list_runs(&self, filter: RunFilter) -> StoreResult<Vec<RunRecord>> {
        reads::list_runs(&self.read, filter).await
    }

    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
        reads::audit_trail(&self.read, run_id).await
    }

    async fn undecided_events(
        &self,
        source: &str,
        types: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>> {
        let rows = reads::undecided_event_rows(&self.read, source, types, limit).await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            events.push(payloads::event_with_payload(&self.segments, self.blobs(), r).await?);
        }
        Ok(events)
    }

    async fn get_event(&self, id: &str) -> StoreResult<Option<EventRecord>> {
        let row = reads::event_row(&self.read, EventKey::Id(id)).await?;
        match &row {
            Some(r) => payloads::event_with_payload(&self.segments, self.blobs(), r)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    async fn list_rules(&self) -> StoreResult<Vec<RuleRecord>> {
        bus::list_rules(&self.read).await
    }

    async fn pending_deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
        bus::pending_deliveries(&self.read, crate::rows::page_size(limit)).await
    }

    async fn deliveries_of(&self, event_id: &str) -> StoreResult<Vec<DeliveryRecord>> {
        bus::deliveries_of(&self.read, event_id).await
    }

    async fn schedule_fires(&self) -> StoreResult<Vec<(String, i64)>> {
        bus::schedule_fires(&self.read).await
    }

    async fn event_by_delivery(&self, delivery_id: &str) -> StoreResult<Option<EventRecord>> {
        let row = reads::event_row(&self.read, EventKey::Delivery(delivery_id)).await?;
        match &row {
            Some(r) => payloads::event_with_payload(&self.segments, self.blobs(), r)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
        reads::list_events(&self.read, filter).await
    }

    async fn orphaned_runs(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<RunRecord>> {
        reads::orphaned_runs(&self.read, now_ms, limit).await
    }

    async fn renew_run_leases(
        &self,
        run_ids: &[String],
        holder: &str,
        expires_at_ms: i64,
    ) -> StoreResult<Vec<String>> {
        reads::renew_run_leases(&self.write, run_ids, holder, expires_at_ms).await
    }

    async fn request_cancel(&self, run_id: &str, at_ms: i64) -> StoreResult<bool> {
        reads::request_cancel(&self.write, run_id, at_ms).await
    }

    async fn take_cancel_requests(&self, run_ids: &[String]) -> StoreResult<Vec<String>> {
        reads::take_cancel_requests(&self.write, run_ids).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        reads::try_lease(&self.write, name, holder, expires_at_ms, now_ms).await
    }

    async fn list_runners(&self, filter: RunnerFilter) -> StoreResult<Vec<RunnerRecord>> {
        runners::list(&self.read, filter).await
    }

    async fn get_runner(&self, name: &str) -> StoreResult<Option<RunnerRecord>> {
        runners::get(&self.read, name).await
    }

    async fn get_deployment(&self, session_id: &str) -> StoreResult<Option<DeploymentRecord>> {
        deployments::get(&self.read, session_id).await
    }

    async fn list_deployments(
        &self,
        filter: DeploymentFilter,
    ) -> StoreResult<Vec<(DeploymentRecord, gantry_core::RunStatus)>> {
        deployments::list(&self.read, filter).await
    }

    async fn expire(&self, retention: &Retention, now_ms: i64) -> StoreResult<Expired> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let keys = match self.blobs() {
            Some(_) => reads::expiring_payload_keys(&mut tx, retention, now_ms).await?,
            None => Vec::new(),
        };
        let mut expired = reads::expire_rows(&mut tx, retention, now_ms).await?;
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
        if let Some(to) = self.blobs() {
            expired.payload_blobs =
                payload_blobs::after_expiry(to, &keys, || reads::payload_keys(&self.read)).await?;
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests;

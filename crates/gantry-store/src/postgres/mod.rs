//! PostgreSQL adapter, for a database several servers can share: one pool (8 connections) for
//! reads and writes. Durability per commit: a [`Durability::Os`] batch commits with
//! `synchronous_commit = off` (the server has it in its WAL buffers and writes it out within
//! moments; it survives our crash, not the database server's), a [`Durability::Disk`] batch
//! commits normally (its WAL flushed before the commit returns), and [`Store::sync`] flushes
//! the WAL past every earlier commit. Leases are rows taken with one atomic upsert, correct with
//! several servers. Large event payloads stay in their row (`events.detail`), but for those of
//! the object store's threshold or more when the store has one (`crate::payload_blobs`).
//! `open.rs` connects and migrates, `write.rs` is the write path; the reads are the
//! statements both backends share (`crate::shared`).

mod open;
mod write;

use crate::SecretKey;
use crate::payload_blobs::{self, PayloadBlobs, Uploads};
use crate::rows::{db, event_from_row, page_size};
use crate::shared::postgres::{
    bus, deployments, reads, reads::EventKey, runners, secrets::Secrets,
};
use async_trait::async_trait;
use gantry_engine::ports::*;
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use std::sync::Arc;

pub use open::postgres_target;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Where payloads of its threshold or more go, if anywhere (else to their row).
    payload_blobs: Option<Arc<PayloadBlobs>>,
}

/// Secrets in PostgreSQL, encrypted with age.
pub type PgSecrets = Secrets;

impl PgStore {
    /// The secret store on the same database, with values encrypted to `key`.
    pub fn secrets(&self, key: SecretKey) -> PgSecrets {
        Secrets {
            write: self.pool.clone(),
            read: self.pool.clone(),
            key,
        }
    }

    /// The agents' tables on the same database.
    pub fn agents(&self) -> crate::PgAgents {
        crate::PgAgents {
            write: self.pool.clone(),
            read: self.pool.clone(),
        }
    }

    /// The store with event payloads of `blobs`' threshold or more kept in its object store.
    pub fn with_payload_blobs(mut self, blobs: PayloadBlobs) -> PgStore {
        self.payload_blobs = Some(Arc::new(blobs));
        self
    }

    /// An event's row with its payload (from the object store if it is there).
    async fn event(&self, row: &PgRow) -> StoreResult<EventRecord> {
        let mut event = event_from_row(row, true)?;
        payload_blobs::fill(self.payload_blobs.as_deref(), row, &mut event).await?;
        Ok(event)
    }
}

#[async_trait]
impl Store for PgStore {
    /// Starts uploading the batch's largest payloads, so that it overlaps the previous commit.
    fn prepare(&self, batch: &[Write]) -> Prepared {
        let events = write::inserted_events(batch);
        if events.is_empty() {
            return Prepared::default();
        }
        let uploads = Uploads::start(self.payload_blobs.as_ref(), &events);
        if uploads.is_empty() {
            return Prepared::default();
        }
        Prepared(Some(Box::new(uploads)))
    }

    async fn commit_prepared(
        &self,
        batch: &[Write],
        prepared: Prepared,
        durability: Durability,
    ) -> StoreResult<Committed> {
        let uploads = match prepared.0.map(|p| p.downcast::<Uploads>()) {
            Some(Ok(started)) => *started,
            // Prepared by someone else (or not at all, or a batch without events).
            _ => Uploads::start(self.payload_blobs.as_ref(), &write::inserted_events(batch)),
        };
        // In the object store before the row that points there commits (those not stored
        // there go to the row).
        let refs = uploads.durable().await;
        write::commit(&self.pool, batch, durability, &refs).await
    }

    /// A tiny synchronous commit: a transaction that takes a transaction id (so that its
    /// commit writes a WAL record) commits only once the WAL is flushed up to that record, and
    /// so past every asynchronous commit before it (PostgreSQL flushes the WAL in order).
    async fn sync(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET LOCAL synchronous_commit = on")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("SELECT txid_current()")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        reads::unfinished_runs(&self.pool).await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        reads::get_run(&self.pool, id).await
    }

    async fn list_runs(&self, filter: RunFilter) -> StoreResult<Vec<RunRecord>> {
        reads::list_runs(&self.pool, filter).await
    }

    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
        reads::audit_trail(&self.pool, run_id).await
    }

    async fn undecided_events(
        &self,
        source: &str,
        types: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>> {
        let rows = reads::undecided_event_rows(&self.pool, source, types, limit).await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            events.push(self.event(r).await?);
        }
        Ok(events)
    }

    async fn get_event(&self, id: &str) -> StoreResult<Option<EventRecord>> {
        match reads::event_row(&self.pool, EventKey::Id(id)).await? {
            Some(r) => self.event(&r).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_rules(&self) -> StoreResult<Vec<RuleRecord>> {
        bus::list_rules(&self.pool).await
    }

    async fn pending_deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
        bus::pending_deliveries(&self.pool, page_size(limit)).await
    }

    async fn deliveries_of(&self, event_id: &str) -> StoreResult<Vec<DeliveryRecord>> {
        bus::deliveries_of(&self.pool, event_id).await
    }

    async fn schedule_fires(&self) -> StoreResult<Vec<(String, i64)>> {
        bus::schedule_fires(&self.pool).await
    }

    async fn event_by_delivery(&self, delivery_id: &str) -> StoreResult<Option<EventRecord>> {
        match reads::event_row(&self.pool, EventKey::Delivery(delivery_id)).await? {
            Some(r) => self.event(&r).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
        reads::list_events(&self.pool, filter).await
    }

    async fn orphaned_runs(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<RunRecord>> {
        reads::orphaned_runs(&self.pool, now_ms, limit).await
    }

    async fn renew_run_leases(
        &self,
        run_ids: &[String],
        holder: &str,
        expires_at_ms: i64,
    ) -> StoreResult<Vec<String>> {
        reads::renew_run_leases(&self.pool, run_ids, holder, expires_at_ms).await
    }

    async fn request_cancel(&self, run_id: &str, at_ms: i64) -> StoreResult<bool> {
        reads::request_cancel(&self.pool, run_id, at_ms).await
    }

    async fn take_cancel_requests(&self, run_ids: &[String]) -> StoreResult<Vec<String>> {
        reads::take_cancel_requests(&self.pool, run_ids).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        reads::try_lease(&self.pool, name, holder, expires_at_ms, now_ms).await
    }

    async fn list_runners(&self, filter: RunnerFilter) -> StoreResult<Vec<RunnerRecord>> {
        runners::list(&self.pool, filter).await
    }

    async fn get_runner(&self, name: &str) -> StoreResult<Option<RunnerRecord>> {
        runners::get(&self.pool, name).await
    }

    async fn get_deployment(&self, session_id: &str) -> StoreResult<Option<DeploymentRecord>> {
        deployments::get(&self.pool, session_id).await
    }

    async fn list_deployments(
        &self,
        filter: DeploymentFilter,
    ) -> StoreResult<Vec<(DeploymentRecord, gantry_core::RunStatus)>> {
        deployments::list(&self.pool, filter).await
    }

    async fn expire(&self, retention: &Retention, now_ms: i64) -> StoreResult<Expired> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let keys = match &self.payload_blobs {
            Some(_) => reads::expiring_payload_keys(&mut tx, retention, now_ms).await?,
            None => Vec::new(),
        };
        let mut expired = reads::expire_rows(&mut tx, retention, now_ms).await?;
        tx.commit().await.map_err(db)?;
        if let Some(to) = &self.payload_blobs {
            expired.payload_blobs =
                payload_blobs::after_expiry(to, &keys, || reads::payload_keys(&self.pool)).await?;
        }
        Ok(expired)
    }
}

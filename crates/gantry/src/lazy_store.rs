//! A store that opens its database on first use. `gantry run` hands it to the engine so the
//! first job starts while the database file is created and migrated in the background; the
//! first write (the run itself) waits for it, and nothing is reported before that write is
//! durable.

use async_trait::async_trait;
use gantry_engine::ports::*;
use gantry_store::SqliteStore;
use std::path::PathBuf;
use tokio::sync::OnceCell;

pub struct LazySqliteStore {
    path: PathBuf,
    inner: OnceCell<SqliteStore>,
}

impl LazySqliteStore {
    pub fn new(path: PathBuf) -> Self {
        LazySqliteStore {
            path,
            inner: OnceCell::new(),
        }
    }

    async fn get(&self) -> StoreResult<&SqliteStore> {
        self.inner
            .get_or_try_init(|| SqliteStore::open(&self.path))
            .await
    }
}

#[async_trait]
impl Store for LazySqliteStore {
    async fn commit(&self, batch: &[Write]) -> StoreResult<Committed> {
        self.get().await?.commit(batch).await
    }
    async fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        self.get().await?.unfinished_runs().await
    }
    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.get().await?.get_run(id).await
    }
    async fn list_runs(&self, filter: RunFilter) -> StoreResult<Vec<RunRecord>> {
        self.get().await?.list_runs(filter).await
    }
    async fn audit_trail(&self, run_id: &str) -> StoreResult<Vec<AuditRecord>> {
        self.get().await?.audit_trail(run_id).await
    }
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.get()
            .await?
            .try_lease(name, holder, expires_at_ms, now_ms)
            .await
    }
    async fn event_by_delivery(&self, delivery_id: &str) -> StoreResult<Option<EventRecord>> {
        self.get().await?.event_by_delivery(delivery_id).await
    }
    async fn undecided_events(
        &self,
        source: &str,
        types: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>> {
        self.get()
            .await?
            .undecided_events(source, types, limit)
            .await
    }

    async fn get_event(&self, id: &str) -> StoreResult<Option<EventRecord>> {
        self.get().await?.get_event(id).await
    }
    async fn list_rules(&self) -> StoreResult<Vec<RuleRecord>> {
        self.get().await?.list_rules().await
    }
    async fn pending_deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
        self.get().await?.pending_deliveries(limit).await
    }
    async fn deliveries_of(&self, event_id: &str) -> StoreResult<Vec<DeliveryRecord>> {
        self.get().await?.deliveries_of(event_id).await
    }
    async fn schedule_fires(&self) -> StoreResult<Vec<(String, i64)>> {
        self.get().await?.schedule_fires().await
    }
    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
        self.get().await?.list_events(filter).await
    }
    async fn expire(&self, retention: &Retention, now_ms: i64) -> StoreResult<Expired> {
        self.get().await?.expire(retention, now_ms).await
    }
}

//! What the store's test files share: a fresh store on either backend (SQLite in a temporary
//! folder, or a fresh database on the tests' PostgreSQL cluster, `pg.rs`), `both!` to run a
//! test on each, and events.

#![allow(dead_code)]

pub mod pg;

use gantry_engine::ports::*;
use gantry_store::{PgStore, SecretKey, SqliteStore};
use std::sync::Arc;

/// Defines a test run once per backend: `both!(async fn name(backend) { ... })` makes
/// `name::sqlite` and `name::postgres`, each calling the body with its [`Backend`].
#[allow(unused_macros)]
macro_rules! both {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($backend: $crate::common::Backend) $body
            #[tokio::test]
            async fn sqlite() {
                body($crate::common::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                body($crate::common::Backend::Postgres).await
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's database lives (a folder, and on PostgreSQL a database); dropping it
/// removes it.
pub struct Place {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub pg: Option<pg::PgDb>,
}

impl Place {
    pub fn new(backend: Backend) -> Place {
        Place {
            backend,
            dir: tempfile::tempdir().unwrap(),
            pg: (backend == Backend::Postgres).then(pg::PgDb::new),
        }
    }

    /// Opens the place's store (again, if it was opened before).
    pub async fn store(&self) -> Arc<dyn Store> {
        match &self.pg {
            Some(db) => Arc::new(PgStore::connect(&db.url).await.unwrap()),
            None => Arc::new(
                SqliteStore::open(&self.dir.path().join("g.db"))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Opens the place's agents' queue.
    pub async fn agents(&self) -> Arc<dyn AgentQueue> {
        match &self.pg {
            Some(db) => Arc::new(PgStore::connect(&db.url).await.unwrap().agents()),
            None => Arc::new(
                SqliteStore::open(&self.dir.path().join("g.db"))
                    .await
                    .unwrap()
                    .agents(),
            ),
        }
    }

    /// Opens the place's secret store, encrypting to `key`.
    pub async fn secrets(&self, key: SecretKey) -> Arc<dyn SecretStore> {
        match &self.pg {
            Some(db) => Arc::new(PgStore::connect(&db.url).await.unwrap().secrets(key)),
            None => Arc::new(
                SqliteStore::open(&self.dir.path().join("g.db"))
                    .await
                    .unwrap()
                    .secrets(key),
            ),
        }
    }
}

/// A fresh store on `backend`, with the place that holds it.
pub async fn open(backend: Backend) -> (Place, Arc<dyn Store>) {
    let place = Place::new(backend);
    let store = place.store().await;
    (place, store)
}

pub fn event(delivery: &str, at: i64) -> Write {
    Write::InsertEvent(Box::new(EventRecord {
        id: format!("ev-{delivery}"),
        source: "github".into(),
        event_type: "push".into(),
        delivery_id: Some(delivery.into()),
        action: None,
        repository: Some("o/r".into()),
        installation_id: None,
        payload: "{}".into(),
        trace_id: "t".into(),
        received_at_ms: at,
        rules_matched: vec![],
        outcome: None,
    }))
}

/// A queued run of two jobs (`b` needs `a`), made at `created`.
pub fn run(id: &str, created: i64) -> RunRecord {
    let spec = gantry_core::spec::parse_spec(
        b"jobs: {a: {run: [\"true\"]}, b: {run: [\"true\"], needs: [a]}}",
        gantry_core::spec::Format::Yaml,
        "t",
        &gantry_core::spec::Limits::default(),
    )
    .unwrap();
    RunRecord {
        id: id.into(),
        name: "t".into(),
        status: gantry_core::RunStatus::Queued,
        trace_id: format!("trace-{id}"),
        jobs: spec
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| JobRecord::pending(i, &j.name))
            .collect(),
        spec: spec.into(),
        context: gantry_core::spec::RunContext {
            event: Some("push".into()),
            branch: Some("main".into()),
            ..gantry_core::spec::RunContext::default()
        },
        cancel_requested: false,
        created_at_ms: created,
        started_at_ms: None,
        finished_at_ms: None,
    }
}

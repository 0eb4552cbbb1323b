//! What the store's test files share: a fresh SQLite store in a temporary folder, and events.

#![allow(dead_code)]

use gantry_engine::ports::*;
use gantry_store::SqliteStore;
use std::sync::Arc;

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

pub async fn open() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    (dir, Arc::new(store))
}

//! Schedule rules on a clock the test moves: each due time fires once, a missed window after
//! downtime fires once (not once per missed tick), and a restart does not fire again what
//! was fired before it.

mod common;

use gantry_core::bus::rule::RuleDef;
use gantry_engine::bus::{Bus, BusPorts};
use gantry_engine::ports::{Clock, EventFilter, Store};
use gantry_engine::{Engine, EngineConfig, Executors};
use gantry_store::SqliteStore;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

const T0: i64 = 1_795_000_000_000; // 2026-11-17T...Z, any fixed instant

async fn start(dir: &std::path::Path, clock: Arc<ManualClock>) -> (Engine, Arc<dyn Store>, Bus) {
    start_as(dir, clock, "node").await
}

/// A server named `owner` (its leases' holder) on the database in `dir`.
async fn start_as(
    dir: &std::path::Path,
    clock: Arc<ManualClock>,
    owner: &str,
) -> (Engine, Arc<dyn Store>, Bus) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("g.db")).await.unwrap());
    let config = EngineConfig::new(dir.to_path_buf(), 2, owner.into());
    let engine = Engine::start(config, store.clone(), Executors::new(), clock)
        .await
        .unwrap();
    let rule: RuleDef = serde_json::from_value(json!({
        "name": "every-minute", "schedule": "rate(1 minute)",
        "target": {"http": "http://127.0.0.1:9/never"}
    }))
    .unwrap();
    let bus = Bus::start(engine.clone(), BusPorts::default(), vec![rule])
        .await
        .unwrap();
    (engine, store, bus)
}

async fn fires(store: &Arc<dyn Store>) -> Vec<String> {
    let filter = EventFilter {
        source: Some("gantry.scheduler".into()),
        event_type: None,
        before: None,
        limit: 100,
    };
    let mut times: Vec<String> = Vec::new();
    for e in store.list_events(filter).await.unwrap() {
        let full = store.get_event(&e.id).await.unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&full.payload).unwrap();
        assert_eq!(e.rules_matched, ["every-minute"]);
        times.push(v["time"].as_str().unwrap().to_string());
    }
    times.sort();
    times
}

/// Waits until the scheduler has fired `n` times, and returns the fires' times. A tick stores
/// all it fires in one batch, so one that fires too many shows more than `n` here.
async fn fired(store: &Arc<dyn Store>, n: usize) -> Vec<String> {
    common::eventually(10, &format!("{n} fires"), async || {
        let times = fires(store).await;
        (times.len() >= n).then_some(times)
    })
    .await
}

/// For a check that nothing (more) fires, which has no event to wait for: lets the scheduler
/// (ticking every 500 ms) look at least twice.
async fn quiet() {
    tokio::time::sleep(Duration::from_millis(1300)).await;
}

#[tokio::test]
async fn due_times_fire_once_across_restarts_and_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let (engine, store, _bus) = start(dir.path(), clock.clone()).await;
    quiet().await;
    assert!(fires(&store).await.is_empty(), "nothing is due yet");

    clock.0.store(T0 + 61_000, Ordering::SeqCst);
    let first = fired(&store, 1).await;
    assert_eq!(first.len(), 1, "{first:?}");

    // Down for ten minutes: one fire for the missed window, at its latest due time.
    engine.shutdown().await;
    clock.0.store(T0 + 10 * 60_000 + 30_000, Ordering::SeqCst);
    let (engine, store, _bus) = start(dir.path(), clock.clone()).await;
    let after = fired(&store, 2).await;
    assert_eq!(after.len(), 2, "{after:?}");
    let last = chrono::DateTime::from_timestamp_millis(T0 + 10 * 60_000).unwrap();
    assert_eq!(
        after[1],
        last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    // Restarting again at the same moment fires nothing more; the next minute fires once.
    engine.shutdown().await;
    let (_engine, store, _bus) = start(dir.path(), clock.clone()).await;
    quiet().await;
    assert_eq!(fires(&store).await.len(), 2);
    clock.0.store(T0 + 11 * 60_000 + 1_000, Ordering::SeqCst);
    assert_eq!(fired(&store, 3).await.len(), 3);
}

#[tokio::test]
async fn missed_windows_can_be_skipped_or_all_fired() {
    for (missed, want) in [("skip", 0), ("all", 10)] {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("g.db")).await.unwrap());
        let config = EngineConfig::new(dir.path().to_path_buf(), 2, "node".into());
        let engine = Engine::start(config, store.clone(), Executors::new(), clock.clone())
            .await
            .unwrap();
        let rule: RuleDef = serde_json::from_value(json!({
            "name": "every-minute", "schedule": "rate(1 minute)", "missed": missed,
            "target": {"http": "http://127.0.0.1:9/never"}
        }))
        .unwrap();
        let _bus = Bus::start(engine, BusPorts::default(), vec![rule])
            .await
            .unwrap();
        clock.0.store(T0 + 10 * 60_000 + 30_000, Ordering::SeqCst);
        // The scheduler records the last due time it decided on, fired or skipped, in the
        // batch of its fires: once it is there, so is every fire for the missed window.
        let decided = T0 + 10 * 60_000;
        common::eventually(10, "the missed window is decided", async || {
            let fires = store.schedule_fires().await.unwrap();
            fires
                .contains(&("every-minute".to_string(), decided))
                .then_some(())
        })
        .await;
        assert_eq!(fires(&store).await.len(), want, "missed = {missed}");
        clock.0.store(T0 + 11 * 60_000 + 1_000, Ordering::SeqCst);
        assert_eq!(
            fired(&store, want + 1).await.len(),
            want + 1,
            "then the next tick, missed = {missed}"
        );
    }
}

/// Two servers on one database, both with the schedule rule: only the holder of the
/// scheduler's lease fires, so each due time fires once; when it stops, the other takes the
/// lease once it lapses and fires what is due.
#[tokio::test]
async fn of_two_servers_on_one_database_one_fires_each_due_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let (first, store, _bus_a) = start_as(dir.path(), clock.clone(), "server-a").await;
    quiet().await;
    let (second, _, _bus_b) = start_as(dir.path(), clock.clone(), "server-b").await;
    quiet().await;
    for minute in 1..=3 {
        clock
            .0
            .store(T0 + minute * 60_000 + 1_000, Ordering::SeqCst);
        let times = fired(&store, minute as usize).await;
        quiet().await;
        assert_eq!(fires(&store).await.len(), minute as usize, "{times:?}");
    }
    // The holder stops; its lease (8 s) lapses; the other fires the next due time, once.
    first.shutdown().await;
    clock.0.store(T0 + 4 * 60_000 + 1_000, Ordering::SeqCst);
    assert_eq!(fired(&store, 4).await.len(), 4);
    quiet().await;
    assert_eq!(fires(&store).await.len(), 4);
    second.shutdown().await;
}

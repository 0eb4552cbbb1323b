//! Schedule rules: each due time fires once, across restarts (the last fire time is stored
//! with the event it makes, in one batch). After downtime, the missed window fires once —
//! for the latest due time — not once per missed tick, unless the rule says `missed = "skip"`
//! (none) or `"all"` (each, at most 100).

use super::Bus;
use crate::ports::Write;
use chrono::{DateTime, SecondsFormat, Utc};
use gantry_core::bus::rule::Trigger;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tracing::{info, warn};

pub(super) async fn run(bus: Bus) {
    // Ends with the engine: a scheduler left behind would fire beside the next one's. Of
    // several servers on one database, only the lease's holder fires.
    let mut lease = crate::lease::Singleton::new("bus:scheduler");
    while !bus.inner.engine.is_stopped() {
        if !lease.held(&bus.inner.engine).await {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        if let Err(e) = tick(&bus).await {
            warn!(cause = %e, "scheduler tick failed");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

async fn tick(bus: &Bus) -> Result<(), crate::ports::StoreError> {
    let now = bus.inner.engine.clock_now();
    let fires: HashMap<String, i64> = bus
        .inner
        .engine
        .store()
        .schedule_fires()
        .await?
        .into_iter()
        .collect();
    let mut writes = Vec::new();
    for (rule, record) in bus.rules().iter() {
        let Trigger::Schedule(schedule) = &rule.trigger else {
            continue;
        };
        if !rule.def.enabled {
            continue;
        }
        let start = utc(record.created_at_ms);
        let last = fires
            .get(&rule.def.name)
            .copied()
            .unwrap_or(record.updated_at_ms);
        let Some(mut due) = schedule.next_after(utc(last), start) else {
            continue;
        };
        if due.timestamp_millis() > now {
            continue;
        }
        // Every due time not after now: more than one means the server was down.
        let mut dues = vec![due];
        while let Some(next) = schedule.next_after(due, start) {
            if next.timestamp_millis() > now {
                break;
            }
            due = next;
            dues.push(due);
            if dues.len() > MAX_CATCH_UP {
                dues.remove(0);
            }
        }
        let fire: Vec<DateTime<Utc>> = match rule.def.missed.as_deref() {
            Some("all") => dues,
            Some("skip") if dues.len() > 1 => Vec::new(),
            _ => vec![due],
        };
        for at in fire {
            fire_at(bus, &rule.def.name, at, &mut writes);
        }
        writes.push(Write::SetScheduleFire {
            rule: rule.def.name.clone(),
            at_ms: due.timestamp_millis(),
        });
    }
    if !writes.is_empty() {
        bus.inner.engine.journal().append_durable(writes).await?;
        bus.poke();
    }
    Ok(())
}

/// The most missed due times fired at once with `missed = "all"`.
const MAX_CATCH_UP: usize = 100;

/// The event of one fire, with its delivery.
fn fire_at(bus: &Bus, rule: &str, due: DateTime<Utc>, writes: &mut Vec<Write>) {
    let id = crate::ids::new_run_id();
    let envelope = json!({
        "version": "0", "id": id, "detail-type": "Scheduled Event",
        "source": "gantry.scheduler", "account": "000000000000", "region": "local",
        "time": due.to_rfc3339_opts(SecondsFormat::Secs, true),
        "resources": [format!("rule/{rule}")], "detail": {},
    });
    let names = vec![rule.to_string()];
    writes.push(Write::InsertEvent(Box::new(
        bus.record(&id, &envelope, &names),
    )));
    writes.extend(bus.deliveries(&id, &names));
    info!(rule, due = %due, "schedule fired");
}

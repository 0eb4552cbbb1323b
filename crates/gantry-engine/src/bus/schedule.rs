//! Schedule rules: each due time fires once, across restarts (the last fire time is stored
//! with the event it makes, in one batch). After downtime, the missed window fires once —
//! for the latest due time — not once per missed tick.

use super::Bus;
use crate::ports::Write;
use chrono::{DateTime, SecondsFormat, Utc};
use gantry_core::bus::rule::Trigger;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tracing::{info, warn};

pub(super) async fn run(bus: Bus) {
    loop {
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
        // Skip to the latest due time not after now: one fire for a missed window.
        while let Some(next) = schedule.next_after(due, start) {
            if next.timestamp_millis() > now {
                break;
            }
            due = next;
        }
        let id = crate::ids::new_run_id();
        let envelope = json!({
            "version": "0", "id": id, "detail-type": "Scheduled Event",
            "source": "gantry.scheduler", "account": "000000000000", "region": "local",
            "time": due.to_rfc3339_opts(SecondsFormat::Secs, true),
            "resources": [format!("rule/{}", rule.def.name)], "detail": {},
        });
        let names = vec![rule.def.name.clone()];
        writes.push(Write::InsertEvent(Box::new(
            bus.record(&id, &envelope, &names),
        )));
        writes.extend(bus.deliveries(&id, &names));
        writes.push(Write::SetScheduleFire {
            rule: rule.def.name.clone(),
            at_ms: due.timestamp_millis(),
        });
        info!(rule = %rule.def.name, due = %due, "schedule fired");
    }
    if !writes.is_empty() {
        bus.inner.engine.journal().append_durable(writes).await?;
        bus.poke();
    }
    Ok(())
}

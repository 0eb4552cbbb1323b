//! The event bus's tables: rules, deliveries of matched events to targets, schedule fires.

use super::{Conn, Pool};
use crate::rows::{Cols, db};
use gantry_engine::ports::{DeliveryRecord, RuleRecord, StoreResult, Write};

pub(crate) async fn apply(tx: &mut Conn, w: &Write) -> StoreResult<()> {
    match w {
        Write::PutRule(r) => {
            sqlx::query(
                "INSERT INTO rules (name, body, origin, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT(name) DO UPDATE SET body = $2, origin = $3, updated_at = $5",
            )
            .bind(&r.name)
            .bind(&r.body)
            .bind(&r.origin)
            .bind(r.created_at_ms)
            .bind(r.updated_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        Write::DeleteRule { name } => {
            for q in [
                "DELETE FROM rules WHERE name = $1",
                "DELETE FROM schedule_fires WHERE rule = $1",
            ] {
                sqlx::query(q)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        Write::PutDelivery(d) => {
            sqlx::query(
                // Only for a stored event: a duplicate delivery's event was not inserted, and
                // its deliveries are dropped with it (in the same batch).
                "INSERT INTO bus_deliveries (event_id, rule, status, attempts, next_at, result, created_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM events WHERE id = $1)
                 ON CONFLICT(event_id, rule) DO UPDATE SET status = $3, attempts = $4, next_at = $5, result = $6",
            )
            .bind(&d.event_id)
            .bind(&d.rule)
            .bind(&d.status)
            .bind(d.attempts as i64)
            .bind(d.next_at_ms)
            .bind(&d.result)
            .bind(d.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        Write::SetScheduleFire { rule, at_ms } => {
            sqlx::query(
                "INSERT INTO schedule_fires (rule, last_fire_at) VALUES ($1, $2)
                 ON CONFLICT(rule) DO UPDATE SET last_fire_at =
                   CASE WHEN schedule_fires.last_fire_at > $2 THEN schedule_fires.last_fire_at ELSE $2 END",
            )
            .bind(rule)
            .bind(at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        _ => {}
    }
    Ok(())
}

pub(crate) async fn list_rules(pool: &Pool) -> StoreResult<Vec<RuleRecord>> {
    let rows =
        sqlx::query("SELECT name, body, origin, created_at, updated_at FROM rules ORDER BY name")
            .fetch_all(pool)
            .await
            .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(RuleRecord {
                name: r.text("name")?,
                body: r.text("body")?,
                origin: r.text("origin")?,
                created_at_ms: r.int("created_at")?,
                updated_at_ms: r.int("updated_at")?,
            })
        })
        .collect()
}

fn delivery(r: &impl Cols) -> StoreResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        event_id: r.text("event_id")?,
        rule: r.text("rule")?,
        status: r.text("status")?,
        attempts: r.int("attempts")? as u32,
        next_at_ms: r.int("next_at")?,
        result: r.opt_text("result")?,
        created_at_ms: r.int("created_at")?,
    })
}

pub(crate) async fn pending_deliveries(
    pool: &Pool,
    limit: i64,
) -> StoreResult<Vec<DeliveryRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM bus_deliveries WHERE status = 'pending' ORDER BY next_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter().map(delivery).collect()
}

pub(crate) async fn deliveries_of(pool: &Pool, event_id: &str) -> StoreResult<Vec<DeliveryRecord>> {
    let rows = sqlx::query("SELECT * FROM bus_deliveries WHERE event_id = $1 ORDER BY rule")
        .bind(event_id)
        .fetch_all(pool)
        .await
        .map_err(db)?;
    rows.iter().map(delivery).collect()
}

pub(crate) async fn schedule_fires(pool: &Pool) -> StoreResult<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT rule, last_fire_at FROM schedule_fires")
        .fetch_all(pool)
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| Ok((r.text("rule")?, r.int("last_fire_at")?)))
        .collect()
}

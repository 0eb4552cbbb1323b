//! The shared statements on PostgreSQL: `Db` and the statements that differ. The modules
//! below are the files `sqlite.rs` mounts, mounted again on purpose (so `duplicate_mod` is
//! allowed on each).

pub(crate) type Db = sqlx::Postgres;
pub(crate) type Pool = sqlx::PgPool;
pub(crate) type Conn = sqlx::PgConnection;

/// As SQLite's, with `$2` a text array.
const DEPLOYMENTS: &str =
    "SELECT d.record, r.status FROM deployments d JOIN runs r ON r.id = d.session_id
     WHERE d.kind = $1
       AND (cardinality($2) = 0 OR r.status = ANY($2))
       AND (d.created_at < $3 OR (d.created_at = $3 AND d.session_id < $4))
     ORDER BY d.created_at DESC, d.session_id DESC LIMIT $5";

/// As SQLite's, with `$2` a text array.
const UNDECIDED_EVENTS: &str = "SELECT * FROM events WHERE outcome IS NULL AND source = $1
       AND type = ANY($2)
     ORDER BY received_at, id LIMIT $3";

/// As SQLite's, with `$3` a text array.
const RENEW_LEASES: &str = "UPDATE locks SET expires_at = $1
     WHERE holder = $2 AND name = ANY($3) RETURNING name";

/// As SQLite's, with `$1` a text array.
const LOST_RUNS: &str = "SELECT r.id FROM runs r LEFT JOIN locks l ON l.name = 'run:' || r.id
     WHERE r.id = ANY($1)
       AND ((l.holder IS NOT NULL AND l.holder <> $2) OR r.status NOT IN ('queued', 'running'))";

/// As SQLite's, with `$1` a text array.
const TAKE_CANCELS: &str = "DELETE FROM cancel_requests WHERE run_id = ANY($1) RETURNING run_id";

/// A list bound as one parameter: a text array.
fn list(items: &[impl AsRef<str>]) -> Vec<String> {
    items.iter().map(|s| s.as_ref().to_string()).collect()
}

/// The outcomes to set, one per event (its last in `outcomes`, which are in batch order), as
/// two arrays: ids and outcomes (`UPDATE … FROM` given two rows for one event applies either).
pub(crate) fn last_outcomes<'a>(
    outcomes: &[(&'a String, &'a String)],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, (id, _)) in outcomes.iter().enumerate() {
        last.insert(id.as_str(), i);
    }
    outcomes
        .iter()
        .enumerate()
        .filter(|(i, (id, _))| last[id.as_str()] == *i)
        .map(|(_, (id, outcome))| (id.as_str(), outcome.as_str()))
        .unzip()
}

/// Sets events' outcomes (`(id, outcome)`, in batch order: the last one of an event stays)
/// in one statement, planned afresh each time (a kept plan made while the table was small
/// scans all of it).
async fn set_outcomes(
    tx: &mut Conn,
    outcomes: &[(&String, &String)],
) -> gantry_engine::ports::StoreResult<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let (ids, values) = last_outcomes(outcomes);
    sqlx::query(
        "UPDATE events SET outcome = u.outcome FROM UNNEST($1::text[], $2::text[]) AS u(id, outcome)
         WHERE events.id = u.id",
    )
    .persistent(false)
    .bind(ids)
    .bind(values)
    .execute(&mut *tx)
    .await
    .map_err(crate::rows::db)?;
    Ok(())
}

#[allow(clippy::duplicate_mod)]
#[path = "agents.rs"]
pub(crate) mod agents;
#[allow(clippy::duplicate_mod)]
#[path = "bus.rs"]
pub(crate) mod bus;
#[allow(clippy::duplicate_mod)]
#[path = "deployments.rs"]
pub(crate) mod deployments;
#[allow(clippy::duplicate_mod)]
#[path = "reads.rs"]
pub(crate) mod reads;
#[allow(clippy::duplicate_mod)]
#[path = "runners.rs"]
pub(crate) mod runners;
#[allow(clippy::duplicate_mod)]
#[path = "secrets.rs"]
pub(crate) mod secrets;
#[allow(clippy::duplicate_mod)]
#[path = "writes.rs"]
pub(crate) mod writes;

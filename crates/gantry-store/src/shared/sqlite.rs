//! The shared statements on SQLite: `Db` and the statements that differ.

pub(crate) type Db = sqlx::Sqlite;
pub(crate) type Pool = sqlx::SqlitePool;
pub(crate) type Conn = sqlx::SqliteConnection;

/// Deployments of a kind whose run has one of the statuses in `$2` (a JSON array; none:
/// any), before (`$3`, `$4`), newest first, at most `$5`.
const DEPLOYMENTS: &str =
    "SELECT d.record, r.status FROM deployments d JOIN runs r ON r.id = d.session_id
     WHERE d.kind = $1
       AND (json_array_length($2) = 0 OR r.status IN (SELECT value FROM json_each($2)))
       AND (d.created_at < $3 OR (d.created_at = $3 AND d.session_id < $4))
     ORDER BY d.created_at DESC, d.session_id DESC LIMIT $5";

/// Events of `$1` not yet decided whose type is in `$2`, oldest first, at most `$3`.
const UNDECIDED_EVENTS: &str = "SELECT * FROM events WHERE outcome IS NULL AND source = $1
       AND type IN (SELECT value FROM json_each($2))
     ORDER BY received_at, id LIMIT $3";

/// Extends the leases in `$3` (a JSON array) that `$2` holds to `$1`; names them.
const RENEW_LEASES: &str = "UPDATE locks SET expires_at = $1
     WHERE holder = $2 AND name IN (SELECT value FROM json_each($3)) RETURNING name";

/// Of the runs in `$1` (a JSON array), those whose lease another holder than `$2` has, or
/// that have ended.
const LOST_RUNS: &str = "SELECT r.id FROM runs r LEFT JOIN locks l ON l.name = 'run:' || r.id
     WHERE r.id IN (SELECT value FROM json_each($1))
       AND ((l.holder IS NOT NULL AND l.holder <> $2) OR r.status NOT IN ('queued', 'running'))";

/// Removes the cancel requests for the runs in `$1` (a JSON array); names them.
const TAKE_CANCELS: &str = "DELETE FROM cancel_requests
     WHERE run_id IN (SELECT value FROM json_each($1)) RETURNING run_id";

/// A list bound as one parameter: a JSON array.
fn list(items: &[impl AsRef<str>]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

/// Sets events' outcomes (`(id, outcome)`, in batch order: the last one of an event stays),
/// one statement each (SQLite runs in-process: a statement costs no round trip).
async fn set_outcomes(
    tx: &mut Conn,
    outcomes: &[(&String, &String)],
) -> gantry_engine::ports::StoreResult<()> {
    for (id, outcome) in outcomes.iter().copied() {
        sqlx::query("UPDATE events SET outcome = $1 WHERE id = $2")
            .bind(outcome)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(crate::rows::db)?;
    }
    Ok(())
}

#[path = "agents.rs"]
pub(crate) mod agents;
#[path = "bus.rs"]
pub(crate) mod bus;
#[path = "deployments.rs"]
pub(crate) mod deployments;
#[path = "reads.rs"]
pub(crate) mod reads;
#[path = "runners.rs"]
pub(crate) mod runners;
#[path = "secrets.rs"]
pub(crate) mod secrets;
#[path = "writes.rs"]
pub(crate) mod writes;

//! The [`Store`](gantry_engine::ports::Store) port on SQL databases via sqlx: SQLite, the
//! embedded default (WAL, `synchronous=FULL`, migrations from `migrations/sqlite`). This crate
//! is the only place that knows SQL. Secrets live in the same
//! database, each value encrypted with age (`secrets.rs`). Large event payloads are written
//! once, to segment files beside the database (`segments.rs`).

mod agents;
mod bus;
mod deployments;
mod rows;
mod runners;
mod secrets;
mod segments;
mod sqlite;

pub use agents::SqliteAgents;
pub use secrets::{SecretKey, SqliteSecrets};
pub use sqlite::SqliteStore;

//! The [`Store`](gantry_engine::ports::Store) port on SQL databases via sqlx: SQLite, the
//! embedded default (WAL, `synchronous=FULL`, migrations from `migrations/sqlite`), and
//! PostgreSQL, for a database several servers can share (migrations from
//! `migrations/postgres`). This crate is the only place that knows SQL; the statements both
//! dialects read alike are written once (`shared/`). Secrets live in the same database, each
//! value encrypted with age (`secrets.rs`). On SQLite, large event payloads are written once,
//! to segment files beside the database (`segments.rs`); on PostgreSQL they stay in the row.
//! On either, payloads of 256 KiB or more can go to an object store instead
//! (`payload_blobs.rs`), the row keeping their key, size and digest.

mod batch;
mod opening;
mod payload_blobs;
mod postgres;
mod rows;
mod secrets;
mod segments;
mod shared;
mod sqlite;

/// The agents' tables on SQLite ([`SqliteStore::agents`]).
pub type SqliteAgents = shared::sqlite::agents::StoreAgents;
/// The agents' tables on PostgreSQL ([`PgStore::agents`]).
pub type PgAgents = shared::postgres::agents::StoreAgents;
pub use opening::OpenError;
pub use payload_blobs::{DEFAULT_PAYLOAD_BLOB_MIN, MIN_PAYLOAD_BLOB_MIN, PayloadBlobs};
pub use postgres::{PgSecrets, PgStore, postgres_target};
pub use secrets::SecretKey;
pub use sqlite::{SqliteSecrets, SqliteStore};

//! The [`Store`](gantry_engine::ports::Store) port on SQL databases via sqlx: SQLite, the
//! embedded default (WAL, `synchronous=FULL`, migrations from `migrations/sqlite`). This crate
//! is the only place that knows SQL.

mod rows;
mod sqlite;

pub use sqlite::SqliteStore;

//! The SQL both backends run alike, written once and compiled once for each: every module
//! here is mounted twice, in `sqlite.rs` and in `postgres.rs`, and names its database as
//! `Db` (placeholders are `$1`, `$2`, …, which SQLite reads as PostgreSQL does). The few
//! statements that differ between the dialects are the mount's constants, next to `Db`.
//! Each integer column is a 64-bit integer on both.

pub(crate) mod postgres;
pub(crate) mod sqlite;

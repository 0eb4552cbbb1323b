//! What can go wrong when a store is opened, for both backends, and the check that refuses a
//! database a newer Gantry migrated: `sqlx`'s migrator would stop at a version it does not
//! know (`VersionMissing`) without saying what to do, so the versions are compared first.

use gantry_engine::ports::StoreError;
use sqlx::migrate::Migrator;

/// Why a store could not be opened. Never holds a password: a database is named by its host,
/// port and name (or its file).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot connect to PostgreSQL at {target}: {cause}")]
    Connect { target: String, cause: String },
    #[error(
        "this database was migrated by a newer Gantry (its schema version {found}; this Gantry \
         knows up to {known}); upgrade Gantry or use another database"
    )]
    Newer { found: i64, known: i64 },
    #[error("the database URL is not a PostgreSQL URL: {0}")]
    BadUrl(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> StoreError {
        match e {
            OpenError::Store(e) => e,
            e => StoreError::Database(e.to_string()),
        }
    }
}

/// Refuses a database whose applied migrations include one this build does not know.
pub(crate) fn refuse_newer(applied: &[i64], migrator: &Migrator) -> Result<(), OpenError> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let unknown = applied
        .iter()
        .copied()
        .filter(|v| !migrator.iter().any(|m| m.version == *v))
        .max();
    match unknown {
        Some(found) => Err(OpenError::Newer { found, known }),
        None => Ok(()),
    }
}

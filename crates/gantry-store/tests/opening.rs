//! Opening a store: a database a newer Gantry migrated is refused on both backends, a
//! PostgreSQL database that cannot be reached is named without its password, and the
//! PostgreSQL migrations make the tables, columns and indexes SQLite's do.

use common::{Backend, Place};
use gantry_engine::ports::*;
use gantry_store::{OpenError, PgStore, SqliteStore};
use sqlx::sqlite::SqlitePool;

#[macro_use]
mod common;

/// A version no migration of this build has.
const FUTURE: i64 = 20270101000000;

both!(async fn a_database_a_newer_gantry_migrated_is_refused_naming_both_versions(backend) {
    let place = Place::new(backend);
    let s = place.store().await;
    s.commit(&[common::event("d1", 1)]).await.unwrap();
    drop(s);
    let record = format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ({FUTURE}, 'from the future', TRUE, X'00', 0)"
    );
    let err = match &place.pg {
        Some(db) => {
            common::pg::psql(&db.url, &record.replace("X'00'", "'\\x00'::bytea")).unwrap();
            PgStore::connect(&db.url).await.err().unwrap()
        }
        None => {
            let path = place.dir.path().join("g.db");
            let pool = SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(record)).execute(&pool).await.unwrap();
            pool.close().await;
            SqliteStore::open(&path).await.err().unwrap()
        }
    };
    let known = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite").iter().map(|m| m.version).max(),
        Backend::Postgres => sqlx::migrate!("migrations/postgres").iter().map(|m| m.version).max(),
    }
    .unwrap();
    assert!(matches!(err, OpenError::Newer { found: FUTURE, known: k } if k == known), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("newer Gantry")
            && text.contains(&FUTURE.to_string())
            && text.contains(&known.to_string()),
        "{text}"
    );
});

#[tokio::test]
async fn an_unreachable_postgres_is_named_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://gantry:s3cret-pw@127.0.0.1:{port}/gantry");
    let err = PgStore::connect(&url).await.err().unwrap();
    let text = err.to_string();
    assert!(matches!(err, OpenError::Connect { .. }), "{err:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}/gantry")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "the cause: {text}");
    assert!(!text.contains("s3cret-pw") && !format!("{err:?}").contains("s3cret-pw"));
}

/// Tables with their columns, and index names, as `table.column` / `index:name` lines.
async fn sqlite_shape(place: &Place) -> Vec<String> {
    let path = place.dir.path().join("g.db");
    let pool = SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut shape: Vec<String> = sqlx::query_scalar(
        "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name != '_sqlx_migrations'
         UNION ALL
         SELECT 'index:' || name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    shape.sort();
    shape
}

fn postgres_shape(place: &Place) -> Vec<String> {
    let url = &place.pg.as_ref().unwrap().url;
    let text = common::pg::psql(
        url,
        "SELECT table_name || '.' || column_name FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name != '_sqlx_migrations'
         UNION ALL
         SELECT 'index:' || indexname FROM pg_indexes
         WHERE schemaname = 'public' AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
    )
    .unwrap();
    let mut shape: Vec<String> = text.lines().map(str::to_string).collect();
    shape.sort();
    shape
}

#[tokio::test]
async fn a_postgres_schema_has_the_sqlite_tables_and_columns() {
    let sqlite = Place::new(Backend::Sqlite);
    drop(sqlite.store().await);
    let postgres = Place::new(Backend::Postgres);
    drop(postgres.store().await);
    assert!(
        sqlite_shape(&sqlite).await.len() > 80,
        "every table, column and index"
    );
    assert_eq!(
        postgres_shape(&postgres),
        sqlite_shape(&sqlite).await,
        "migrations/postgres has drifted from migrations/sqlite"
    );
}

both!(async fn a_commit_that_need_not_reach_the_disk_is_kept_and_synced(backend) {
    let (_place, s) = common::open(backend).await;
    s.commit_prepared(&[common::event("os", 1)], Prepared::default(), Durability::Os)
        .await
        .unwrap();
    s.sync().await.unwrap();
    assert!(s.event_by_delivery("os").await.unwrap().is_some());
});

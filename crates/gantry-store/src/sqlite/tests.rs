//! The database file: its journal and sync modes, the schema made in one piece against the
//! migrations, and databases that earlier releases left.

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use std::path::Path;

async fn synchronous(store: &SqliteStore) -> i64 {
    sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&store.write)
        .await
        .unwrap()
}

async fn journal_mode(pool: &SqlitePool) -> String {
    sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn commits_wait_for_the_disk_whether_the_database_is_new_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    let new = SqliteStore::open(&path).await.unwrap();
    assert_eq!(synchronous(&new).await, 2, "FULL after making the database");
    assert_eq!(journal_mode(&new.write).await, "wal");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'jobs', 'audit_chunks')",
    )
    .fetch_one(&new.write)
    .await
    .unwrap();
    assert_eq!(tables, 3, "every migration ran");
    drop(new);
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(synchronous(&again).await, 2);
    assert_eq!(journal_mode(&again.write).await, "wal");
    assert_eq!(journal_mode(&again.read).await, "wal");
}

/// A database at `path` as a release made it that had every migration before `version`.
async fn migrated_before(path: &Path, version: i64) -> SqlitePool {
    let mut before = sqlx::migrate!("migrations/sqlite");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    before.run(&pool).await.unwrap();
    pool
}

#[tokio::test]
async fn a_database_made_in_rollback_mode_is_switched_to_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    let plain = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Delete),
    )
    .await
    .unwrap();
    sqlx::query("CREATE TABLE t (x)")
        .execute(&plain)
        .await
        .unwrap();
    assert_eq!(journal_mode(&plain).await, "delete");
    plain.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(journal_mode(&store.write).await, "wal");
}

#[tokio::test]
async fn runs_stored_before_specs_moved_to_their_own_table_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    {
        // A database as the release before made it: every migration up to the one that
        // moved specs out of `runs`, and a run stored the old way.
        let pool = migrated_before(&path, 20261203000000).await;
        sqlx::query(
            "INSERT INTO runs (id, name, status, trace_id, spec, context, created_at)
             VALUES ('01OLD', 'old', 'succeeded', 't', ?, '{\"event\":\"push\"}', 1)",
        )
        .bind(r#"{"name":"old","jobs":[]}"#)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let run = store.get_run("01OLD").await.unwrap().expect("the old run");
    assert_eq!(run.spec.name, "old");
    assert_eq!(run.context.event.as_deref(), Some("push"));
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('runs')")
        .fetch_all(&store.write)
        .await
        .unwrap();
    assert!(
        !columns.iter().any(|c| c == "spec" || c == "context"),
        "{columns:?}"
    );
    // The janitor deletes runs; their specs go with them.
    sqlx::query("DELETE FROM runs WHERE id = '01OLD'")
        .execute(&store.write)
        .await
        .unwrap();
    let specs: i64 = sqlx::query_scalar("SELECT count(*) FROM run_specs")
        .fetch_one(&store.write)
        .await
        .unwrap();
    assert_eq!(specs, 0);
}

#[tokio::test]
async fn audit_records_stored_one_per_row_move_into_chunks_keeping_their_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    {
        // A database as the release before made it: a record per row, the newest of
        // which (seq 3) has been expired.
        let pool = migrated_before(&path, 20261204000000).await;
        sqlx::raw_sql(
            r#"INSERT INTO audit_events (at, trace_id, run_id, job, attempt, from_status, to_status, note) VALUES
                 (10, 't1', '01A', NULL, NULL, NULL, 'queued', NULL),
                 (11, 't1', '01A', 'build', 2, 'queued', 'failed', 'exit "1"'),
                 (12, 't1', '01A', NULL, NULL, 'running', 'failed', NULL);
               DELETE FROM audit_events WHERE seq = 3;"#,
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let record = |seq,
                  at_ms,
                  job: Option<&str>,
                  attempt,
                  from: Option<&str>,
                  to: &str,
                  note: Option<&str>| AuditRecord {
        seq,
        at_ms,
        trace_id: "t1".into(),
        run_id: "01A".into(),
        job: job.map(Into::into),
        attempt,
        from: from.map(Into::into),
        to: to.into(),
        note: note.map(Into::into),
    };
    let old = [
        record(1, 10, None, None, None, "queued", None),
        record(
            2,
            11,
            Some("build"),
            Some(2),
            Some("queued"),
            "failed",
            Some("exit \"1\""),
        ),
    ];
    assert_eq!(store.audit_trail("01A").await.unwrap(), old);
    let next = record(0, 13, None, None, Some("failed"), "queued", Some("rerun"));
    store.commit(&[Write::Audit(next.clone())]).await.unwrap();
    let trail = store.audit_trail("01A").await.unwrap();
    assert_eq!(trail[..2], old);
    assert_eq!(
        trail[2],
        AuditRecord { seq: 4, ..next },
        "seq 3 was handed out before"
    );
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'audit_events'")
            .fetch_one(&store.write)
            .await
            .unwrap();
    assert_eq!(tables, 0);
}

/// Every table, index and trigger of a database, with the SQL that makes it.
async fn schema_of(pool: &SqlitePool) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT type, name, sql FROM sqlite_master
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'
         ORDER BY rowid",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn schema_is_what_the_migrations_make() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(dir.path().join("migrated.db"))
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::migrate!("migrations/sqlite")
        .run(&migrated)
        .await
        .unwrap();
    let want = schema_of(&migrated).await;
    let made = SqliteStore::open(&dir.path().join("made.db"))
        .await
        .unwrap();
    let got = schema_of(&made.write).await;
    let text: String = want.iter().map(|(_, _, sql)| format!("{sql};\n")).collect();
    assert!(
        got == want,
        "migrations/schema.sql is not what the migrations make; below its header it should be:\n{text}"
    );
    // Recorded as applied, so a later start applies nothing again (and checks checksums).
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&made.write)
            .await
            .unwrap();
    let all: Vec<(i64, bool)> = sqlx::migrate!("migrations/sqlite")
        .iter()
        .map(|m| (m.version, true))
        .collect();
    assert_eq!(applied, all);
    drop(made);
    SqliteStore::open(&dir.path().join("made.db"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_commit_that_need_not_reach_the_disk_goes_through_the_unsynced_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gantry.db"))
        .await
        .unwrap();
    let mut run = queued_run();
    let moved = |run: &RunRecord| {
        let mut job = run.jobs[0].clone();
        job.status = gantry_core::JobStatus::Running;
        Write::UpdateJob {
            run_id: run.id.clone(),
            job,
        }
    };
    // A batch of any kind, then one that only moves jobs (its own statement text), each
    // written without a sync; the synced writer (the secret store's too) stays FULL.
    for batch in [
        vec![Write::InsertRun(Box::new(run.clone()))],
        vec![moved(&run)],
    ] {
        store
            .commit_prepared(&batch, Prepared::default(), Durability::Os)
            .await
            .unwrap();
        assert_eq!(synchronous(&store).await, 2, "{batch:?}");
    }
    let unsynced: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&store.write_unsynced)
        .await
        .unwrap();
    assert_eq!(unsynced, 1, "NORMAL");
    run.jobs[0].status = gantry_core::JobStatus::Running;
    assert_eq!(store.get_run("01R").await.unwrap().unwrap().jobs, run.jobs);
    store.sync().await.unwrap();
}

#[tokio::test]
async fn a_failed_unsynced_commit_keeps_nothing_and_the_next_one_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gantry.db"))
        .await
        .unwrap();
    let mut job = JobRecord::pending(0, "a");
    job.status = gantry_core::JobStatus::Running;
    // A job of a run that does not exist: the foreign key fails the batch.
    let orphan = vec![Write::UpdateJob {
        run_id: "nope".into(),
        job,
    }];
    store
        .commit_prepared(&orphan, Prepared::default(), Durability::Os)
        .await
        .unwrap_err();
    let run = queued_run();
    store
        .commit_prepared(
            &[Write::InsertRun(Box::new(run))],
            Prepared::default(),
            Durability::Os,
        )
        .await
        .unwrap();
    assert!(store.get_run("01R").await.unwrap().is_some());
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE run_id = 'nope'")
        .fetch_one(&store.read)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}

/// A queued run `01R` with one pending job `a`.
fn queued_run() -> RunRecord {
    RunRecord {
        id: "01R".into(),
        name: "r".into(),
        status: gantry_core::RunStatus::Queued,
        trace_id: "t".into(),
        cancel_requested: false,
        created_at_ms: 1,
        started_at_ms: None,
        finished_at_ms: None,
        spec: Default::default(),
        context: Default::default(),
        jobs: vec![JobRecord::pending(0, "a")],
    }
}

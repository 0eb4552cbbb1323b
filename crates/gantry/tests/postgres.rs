//! `gantry serve` on PostgreSQL (`GANTRY_DATABASE_URL`, a fresh database on the tests' cluster):
//! a run submitted over the API finishes; after `kill -9` mid-run the restarted server finishes
//! it (recovery reads the runs back from PostgreSQL). And what refuses to start: a database
//! that cannot be reached (named without its password), a database a newer Gantry migrated
//! (on PostgreSQL and on SQLite).

#[path = "../../gantry-store/tests/common/pg.rs"]
mod pg;

mod common;

use common::{Server, gantry_bin};
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn a_server_on_postgres_finishes_runs_and_recovers_them_after_kill_9() {
    let db = pg::PgDb::new();
    let dir = tempfile::tempdir().unwrap();
    let env = [("GANTRY_DATABASE_URL", db.url.as_str())];
    let mut s = Server::start_with(dir.path(), &env).await;
    let quick = s
        .submit_yaml("jobs:\n  a: {run: [\"true\"]}\n  b: {needs: [a], run: [\"true\"]}\n")
        .await;
    s.wait_run(&quick, 20, |r| r["status"] == "succeeded").await;

    // The first attempt leaves a marker and sleeps until the server is killed; the attempt
    // run again after the restart finds the marker and succeeds.
    let marker = dir.path().join("first-attempt");
    let slow = s
        .submit_yaml(&format!(
            "jobs:\n  work: {{run: [\"if [ -e {m} ]; then exit 0; fi; touch {m}; sleep 3971\"]}}\n  then: {{needs: [work], run: [\"true\"]}}\n",
            m = marker.display()
        ))
        .await;
    common::wait_until(20, "the first attempt sleeps", || {
        common::alive("sleep 3971")
    })
    .await;
    s.kill9().await;

    let s = Server::start_with(dir.path(), &env).await;
    let run = s.wait_run(&slow, 30, |r| r["status"] == "succeeded").await;
    assert_eq!(
        run["jobs"][0]["attempt"], 2,
        "the lost attempt ran once more"
    );
    let quick = s.wait_run(&quick, 5, |r| r["status"] == "succeeded").await;
    assert_eq!(quick["jobs"][1]["status"], "succeeded");
    assert!(
        !dir.path().join("gantry.db").exists(),
        "nothing was stored in SQLite"
    );
    let runs = pg::psql(&db.url, "SELECT count(*) FROM runs").unwrap();
    assert_eq!(runs, "2");
}

/// `gantry serve` on `data_dir` with `env`, expected to stop at once: its exit status and
/// everything it printed.
async fn serve_fails(data_dir: &Path, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut cmd = tokio::process::Command::new(gantry_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("GANTRY_API_TOKEN")
        .env_remove("GANTRY_DATABASE_URL")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("gantry serve did not stop")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

#[tokio::test]
async fn an_unreachable_database_stops_the_server_naming_it_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://gantry:s3cret-pw@127.0.0.1:{port}/gantry");
    let (status, text) = serve_fails(dir.path(), &[("GANTRY_DATABASE_URL", &url)]).await;
    assert!(!status.success(), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}/gantry")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "the cause: {text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
}

const FUTURE: &str = "20270101000000";

/// Asserts the server refuses the database as migrated by a newer Gantry.
fn assert_refused_as_newer(status: std::process::ExitStatus, text: &str) {
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("migrated by a newer Gantry") && text.contains(FUTURE),
        "{text}"
    );
}

#[tokio::test]
async fn a_postgres_database_a_newer_gantry_migrated_is_refused() {
    let db = pg::PgDb::new();
    let dir = tempfile::tempdir().unwrap();
    let env = [("GANTRY_DATABASE_URL", db.url.as_str())];
    let mut s = Server::start_with(dir.path(), &env).await;
    s.kill9().await;
    pg::psql(
        &db.url,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ({FUTURE}, 'from the future', TRUE, '\\x00'::bytea, 0)"
        ),
    )
    .unwrap();
    let (status, text) = serve_fails(dir.path(), &env).await;
    assert_refused_as_newer(status, &text);
}

#[tokio::test]
async fn a_sqlite_database_a_newer_gantry_migrated_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path()).await;
    s.kill9().await;
    let db = dir.path().join("gantry.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ({FUTURE}, 'from the future', 1, X'00', 0)"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (status, text) = serve_fails(dir.path(), &[]).await;
    assert_refused_as_newer(status, &text);
}

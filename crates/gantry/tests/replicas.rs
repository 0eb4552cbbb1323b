//! Several `gantry serve` replicas on one PostgreSQL database: either takes API calls and
//! shows the other's runs, a run is cancelled through the replica that does not step it; when
//! one is killed (`kill -9`) mid-run, the other adopts its run
//! once the run's lease lapses (about 10 s) and finishes it, the lost attempt run once more,
//! and the audit trail says who adopted it and why.

#[path = "../../gantry-store/tests/common/pg.rs"]
mod pg;

mod common;

use common::Server;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_replica_adopts_the_runs_of_one_killed_mid_run() {
    let db = pg::PgDb::new();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("GANTRY_DATABASE_URL", db.url.as_str())];
    let mut a = Server::start_with(dir_a.path(), &env).await;
    let b = Server::start_with(dir_b.path(), &env).await;

    // Either replica takes a run and shows the other's.
    let on_b = b.submit_yaml("jobs:\n  a: {run: [\"true\"]}\n").await;
    a.wait_run(&on_b, 20, |r| r["status"] == "succeeded").await;

    // A run stepped by A, cancelled through B: A cancels it on its next tick.
    let long = a
        .submit_yaml("jobs:\n  wait: {run: [\"sleep 3983\"]}\n")
        .await;
    common::wait_until(20, "the long job runs", || common::alive("sleep 3983")).await;
    let (status, body) = b
        .post(
            &format!("/api/v1/runs/{long}/cancel"),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let cancelled = a.wait_run(&long, 20, |r| r["status"] == "cancelled").await;
    assert_eq!(cancelled["jobs"][0]["status"], "cancelled", "{cancelled}");
    common::wait_until(10, "the job is stopped", || !common::alive("sleep 3983")).await;

    // A run on A whose first attempt sleeps until A is killed; run again, it succeeds.
    let marker = dir_a.path().join("first-attempt");
    let sleeper = "sleep 3989";
    let id = a
        .submit_yaml(&format!(
            "jobs:\n  work: {{run: [\"if [ -e {m} ]; then exit 0; fi; touch {m}; {sleeper}\"]}}\n  then: {{needs: [work], run: [\"true\"]}}\n",
            m = marker.display()
        ))
        .await;
    common::wait_until(20, "the first attempt sleeps", || common::alive(sleeper)).await;
    let killed = Instant::now();
    a.kill9().await;

    let run = b.wait_run(&id, 40, |r| r["status"] == "succeeded").await;
    let took = killed.elapsed();
    // The killed server's job outlives it (another host's process, as far as B knows).
    let _ = std::process::Command::new("pkill")
        .args(["-f", sleeper])
        .status();
    assert_eq!(
        run["jobs"][0]["attempt"], 2,
        "the lost attempt ran once more: {run}"
    );
    assert!(
        took < Duration::from_secs(25),
        "adopted and finished {took:?} after the kill"
    );
    let (_, trail) = b.get(&format!("/api/v1/runs/{id}/events")).await;
    let text = trail.to_string();
    assert!(text.contains("adopted by"), "{trail:#}");
    assert!(text.contains("stopped renewing its lease"), "{trail:#}");
    assert!(
        text.contains("attempt 1 was running when its server stopped"),
        "{trail:#}"
    );
}

//! The engine's log archive on a folder object store and a real SQLite store: catching up
//! archives the logs of finished runs only, once, and again after a re-run wrote more;
//! restoring fetches a log this server does not have; expiry deletes old archived logs.

use gantry_blobs::ObjectBlobs;
use gantry_core::spec::{Format, Limits, RunContext, parse_spec};
use gantry_core::{JobStatus, RunStatus};
use gantry_engine::archive::{LogArchive, key};
use gantry_engine::logs::Logs;
use gantry_engine::ports::*;
use gantry_store::SqliteStore;
use std::sync::Arc;

fn run(id: &str, status: RunStatus) -> RunRecord {
    let spec = parse_spec(
        b"jobs: {a: {run: [\"true\"]}}",
        Format::Yaml,
        "t",
        &Limits::default(),
    )
    .unwrap();
    let mut job = JobRecord::pending(0, "a");
    job.status = if status.is_terminal() {
        JobStatus::Succeeded
    } else {
        JobStatus::Running
    };
    RunRecord {
        id: id.into(),
        name: "t".into(),
        status,
        trace_id: "t".into(),
        jobs: vec![job],
        spec: spec.into(),
        context: RunContext::default(),
        cancel_requested: false,
        created_at_ms: 1,
        started_at_ms: Some(1),
        finished_at_ms: status.is_terminal().then_some(2),
    }
}

#[tokio::test]
async fn catch_up_restore_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    store
        .commit(&[
            Write::InsertRun(Box::new(run("done", RunStatus::Succeeded))),
            Write::InsertRun(Box::new(run("going", RunStatus::Running))),
        ])
        .await
        .unwrap();
    let logs = Logs::new(dir.path().join("logs"));
    for id in ["done", "going"] {
        let log = logs.attempt(id, "a", 1);
        log.append(format!("output of {id}\n").as_bytes()).unwrap();
    }
    let blobs = Arc::new(
        ObjectBlobs::from_url(&format!("file://{}", dir.path().join("bucket").display())).unwrap(),
    );
    let archive = LogArchive::new(blobs.clone(), logs.clone());

    assert_eq!(
        archive.catch_up(&store).await.unwrap(),
        1,
        "only the finished run's"
    );
    let listed: Vec<String> = blobs
        .list("logs/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, [key("done")]);
    assert_eq!(archive.catch_up(&store).await.unwrap(), 0, "nothing new");

    // A re-run wrote more after the copy was made: the next catch-up archives it again.
    logs.attempt("done", "a", 2)
        .append(b"second attempt\n")
        .unwrap();
    assert_eq!(archive.catch_up(&store).await.unwrap(), 1);

    // Restoring: the file is fetched back whole when it is not here, and left when it is.
    let whole = std::fs::read(logs.path("done")).unwrap();
    std::fs::remove_file(logs.path("done")).unwrap();
    assert!(archive.restore("done").await.unwrap());
    assert_eq!(std::fs::read(logs.path("done")).unwrap(), whole);
    assert_eq!(logs.read("done", "a", 2).unwrap(), b"second attempt\n");
    assert!(archive.restore("going").await.unwrap(), "here already");
    assert!(
        !archive.restore("elsewhere").await.unwrap(),
        "in neither place"
    );

    // Expiry: archived logs last written before the cut go.
    assert_eq!(archive.expire(0).await.unwrap(), 0);
    assert_eq!(archive.expire(i64::MAX).await.unwrap(), 1);
    assert!(blobs.list("logs/").await.unwrap().is_empty());
}

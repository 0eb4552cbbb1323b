//! Recovery after `kill -9` of the server (design §3.8): every accepted run finishes, lost
//! attempts are retried or failed, and no attempt runs twice at once.

mod common;

use common::{Server, job};
use std::time::Duration;

#[tokio::test]
async fn a_killed_server_finishes_every_run_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path()).await;
    let marker = dir.path().join("attempts");
    // `work` records each attempt, then runs long enough to be caught by the kill.
    let retried = s
        .submit_yaml(&format!(
            "jobs:\n  work: {{run: [\"echo x >> {m}\", \"sleep 3993\"], retries: 1, timeout: 60s}}\n  then: {{needs: [work], run: [\"true\"]}}\n",
            m = marker.display()
        ))
        .await;
    let no_retry = s
        .submit_yaml("jobs:\n  once: {run: [\"sleep 3994\"]}\n")
        .await;
    let waiting = s
        .submit_yaml("jobs:\n  a: {run: [\"sleep 3995\"]}\n  b: {needs: [a], run: [\"true\"]}\n")
        .await;
    for id in [&retried, &no_retry, &waiting] {
        s.wait_run(id, 10, |r| r["jobs"][0]["status"] == "running")
            .await;
    }
    // `running` means the process exists; wait for its commands to have started too.
    let lines = || {
        std::fs::read_to_string(&marker)
            .map(|l| l.lines().count())
            .unwrap_or(0)
    };
    for sleep in ["sleep 3993", "sleep 3994", "sleep 3995"] {
        common::wait_until(10, sleep, || common::alive(sleep)).await;
    }
    assert_eq!(lines(), 1, "the first attempt wrote its line");
    s.kill9().await;
    // The attempts outlive the server in their own process groups...
    assert!(common::alive("sleep 3993"));

    let s = Server::start(dir.path()).await;
    // ...until the restarted server reaps them before anything is re-run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !common::alive("sleep 3994"),
        "orphan of the previous server still running"
    );

    // The job with a retry left is attempted again (it will sleep; cancel it to finish quickly).
    let run = s
        .wait_run(&retried, 10, |r| {
            r["jobs"][0]["attempt"] == 2 && r["jobs"][0]["status"] == "running"
        })
        .await;
    assert_eq!(job(&run, "then")["status"], "pending");
    common::wait_until(10, "the retry runs its commands", || {
        common::alive("sleep 3993")
    })
    .await;
    assert_eq!(lines(), 2, "one line per attempt");
    assert_eq!(
        common::processes("sleep 3993"),
        1,
        "the first attempt was reaped before the retry started: never two at once"
    );

    let run = s.wait_finished(&no_retry, 10).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(job(&run, "once")["status"], "failed");
    let (_, trail) = s.get(&format!("/api/v1/runs/{no_retry}/events")).await;
    assert!(
        trail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["to"] == "lost"),
        "{trail}"
    );

    s.post(
        &format!("/api/v1/runs/{retried}/cancel"),
        "application/json",
        "",
    )
    .await;
    s.post(
        &format!("/api/v1/runs/{waiting}/cancel"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(s.wait_finished(&retried, 10).await["status"], "cancelled");
    assert_eq!(
        s.wait_finished(&waiting, 10).await["status"],
        "failed",
        "its running job was lost without retries"
    );
}

#[tokio::test]
async fn every_acknowledged_run_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path()).await;
    let spec = "jobs:\n  a: {run: [\"true\"]}\n  b: {needs: [a], run: [\"true\"]}\n";
    // Four clients submit as fast as they can; the server is killed mid-stream.
    let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let http = s.http.clone();
        let url = format!("{}/api/v1/runs", s.url);
        let tx = tx.clone();
        clients.push(tokio::spawn(async move {
            loop {
                let Ok(resp) = http
                    .post(&url)
                    .header("content-type", "application/yaml")
                    .body(spec)
                    .send()
                    .await
                else {
                    return;
                };
                if resp.status() != 202 {
                    return;
                }
                let Ok(v) = resp.json::<serde_json::Value>().await else {
                    return;
                };
                let _ = tx.send(v["run_id"].as_str().unwrap().to_string());
            }
        }));
    }
    drop(tx);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 25 {
        acknowledged.push(acks.recv().await.unwrap());
    }
    s.kill9().await;
    for c in clients {
        c.await.unwrap();
    }
    while let Some(id) = acks.recv().await {
        acknowledged.push(id);
    }
    let s = Server::start(dir.path()).await;
    for id in &acknowledged {
        let run = s.wait_finished(id, 20).await;
        assert!(
            run["status"] == "succeeded" || run["status"] == "failed",
            "{run}"
        );
    }
    let (_, list) = s.get("/api/v1/runs?limit=1000").await;
    let stored = list["runs"].as_array().unwrap();
    assert!(stored.len() >= acknowledged.len());
    // Runs stored but never acknowledged are fine (the reply was lost); unfinished ones are not.
    for r in stored {
        let run = s.wait_finished(r["id"].as_str().unwrap(), 20).await;
        assert_ne!(run["status"], "running");
    }
}

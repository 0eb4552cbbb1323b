//! Recovery after `kill -9` of the server: every accepted run finishes, each lost attempt runs
//! once more (or fails, if its job says so), and no attempt runs twice at once. One server per
//! data dir.

mod common;

use common::{Server, job};

#[tokio::test]
async fn a_killed_server_runs_each_lost_attempt_once_more_and_finishes_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path()).await;
    let marker = dir.path().join("attempts");
    // `work` records each attempt, then runs long enough to be caught by the kill.
    let retried = s
        .submit_yaml(&format!(
            "jobs:\n  work: {{run: [\"echo $GANTRY_ATTEMPT >> {m}\", \"sleep 3993\"], retries: 1, timeout: 60s}}\n  then: {{needs: [work], run: [\"true\"]}}\n",
            m = marker.display()
        ))
        .await;
    let no_rerun = s
        .submit_yaml("jobs:\n  once: {run: [\"sleep 3994\"], rerun_lost: false}\n")
        .await;
    let waiting = s
        .submit_yaml("jobs:\n  a: {run: [\"sleep 3995\"]}\n  b: {needs: [a], run: [\"true\"]}\n")
        .await;
    for id in [&retried, &no_rerun, &waiting] {
        s.wait_run(id, 10, |r| r["jobs"][0]["status"] == "running")
            .await;
    }
    // `running` means the process may not exist yet: wait for its commands to have started.
    let lines = || std::fs::read_to_string(&marker).unwrap_or_default();
    for sleep in ["sleep 3993", "sleep 3994", "sleep 3995"] {
        common::wait_until(10, sleep, || common::alive(sleep)).await;
    }
    assert_eq!(lines(), "1\n", "the first attempt wrote its line");
    s.kill9().await;
    // The attempts outlive the server in their own process groups...
    assert!(common::alive("sleep 3993"));

    let s = Server::start(dir.path()).await;
    // ...until the restarted server reaps them before anything is re-run: the job that must
    // not run again is gone, and never comes back.
    common::wait_until(10, "the orphan is reaped", || !common::alive("sleep 3994")).await;

    // A lost attempt runs again, as the next attempt, without using the job's retry.
    let run = s
        .wait_run(&retried, 10, |r| {
            r["jobs"][0]["attempt"] == 2 && r["jobs"][0]["status"] == "running"
        })
        .await;
    assert_eq!(job(&run, "then")["status"], "pending");
    common::wait_until(10, "the re-run runs its commands", || {
        common::alive("sleep 3993")
    })
    .await;
    assert_eq!(lines(), "1\n2\n", "one line per attempt, each attempt once");
    assert_eq!(
        common::processes("sleep 3993"),
        1,
        "the first attempt was reaped before the re-run started: never two at once"
    );
    let (_, trail) = s.get(&format!("/api/v1/runs/{retried}/events")).await;
    let events = trail["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["to"] == "lost"), "{trail}");
    assert!(
        events.iter().any(|e| e["note"]
            .as_str()
            .is_some_and(|n| n.contains("not counted against retries"))),
        "{trail}"
    );

    // `rerun_lost: false`: the job fails, saying why.
    let run = s.wait_finished(&no_rerun, 10).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(job(&run, "once")["status"], "failed");
    assert_eq!(job(&run, "once")["attempt"], 1);
    let (_, trail) = s.get(&format!("/api/v1/runs/{no_rerun}/events")).await;
    assert!(
        trail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["to"] == "failed"
                && e["note"] == "lost: its server or agent stopped while it ran"),
        "{trail}"
    );
    assert!(!common::alive("sleep 3994"), "not run again");

    // The waiting run's lost job runs again too; its dependent still waits for it.
    let run = s
        .wait_run(&waiting, 10, |r| {
            r["jobs"][0]["attempt"] == 2 && r["jobs"][0]["status"] == "running"
        })
        .await;
    assert_eq!(job(&run, "b")["status"], "pending");
    for id in [&retried, &waiting] {
        s.post(&format!("/api/v1/runs/{id}/cancel"), "application/json", "")
            .await;
        assert_eq!(s.wait_finished(id, 10).await["status"], "cancelled");
    }
}

#[tokio::test]
async fn a_second_server_or_local_run_on_the_same_data_dir_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let held = s.submit_yaml("jobs:\n  a: {run: [\"sleep 3996\"]}\n").await;
    common::wait_until(10, "the job runs", || common::alive("sleep 3996")).await;
    let pid = s.child.id().unwrap();
    let spec = dir.path().join("spec.yml");
    std::fs::write(&spec, "jobs:\n  a: {run: [\"true\"]}\n").unwrap();
    let spec = spec.to_str().unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0", "--data-dir"][..],
        &["run", spec, "--data-dir"][..],
    ] {
        let out = tokio::process::Command::new(common::gantry_bin())
            .args(args)
            .arg(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is in use by another gantry") && err.contains(&format!("PID {pid}")),
            "{args:?}: {err}"
        );
    }
    // The first server's job was left alone.
    assert!(common::alive("sleep 3996"));
    let (_, run) = s.get(&format!("/api/v1/runs/{held}")).await;
    assert_eq!(run["jobs"][0]["status"], "running");
    s.post(
        &format!("/api/v1/runs/{held}/cancel"),
        "application/json",
        "",
    )
    .await;
    s.wait_finished(&held, 10).await;
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

//! The Store contract, checked on a real SQLite database. Written against `dyn Store` so the
//! PostgreSQL adapter can run the same checks.

use gantry_core::spec::RunContext;
use gantry_core::{JobStatus, RunStatus};
use gantry_engine::ports::*;
use gantry_store::SqliteStore;

#[macro_use]
mod common;
use common::{event, open, run};

fn audit(run: &str, to: &str, at: i64) -> Write {
    Write::Audit(AuditRecord {
        seq: 0,
        at_ms: at,
        trace_id: format!("trace-{run}"),
        run_id: run.into(),
        job: Some("a".into()),
        attempt: Some(1),
        from: Some("pending".into()),
        to: to.into(),
        note: None,
    })
}

both!(async fn batch_round_trip_keeps_the_last_state_of_each_row(backend) {
    let (_d, s) = open(backend).await;
    let r = run("01A", 1000);
    let mut job = r.jobs[0].clone();
    let mut writes = vec![Write::InsertRun(Box::new(r.clone()))];
    for status in [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded] {
        job.status = status;
        job.exit_code = (status == JobStatus::Succeeded).then_some(0);
        writes.push(Write::UpdateJob {
            run_id: "01A".into(),
            job: job.clone(),
        });
        writes.push(audit("01A", status.as_str(), 1001));
    }
    writes.push(Write::UpdateRun {
        id: "01A".into(),
        status: RunStatus::Running,
        cancel_requested: false,
        started_at_ms: Some(1001),
        finished_at_ms: None,
    });
    s.commit(&writes).await.unwrap();

    let got = s.get_run("01A").await.unwrap().unwrap();
    assert_eq!(got.status, RunStatus::Running);
    assert_eq!(got.jobs[0].status, JobStatus::Succeeded);
    assert_eq!(got.jobs[0].exit_code, Some(0));
    assert_eq!(got.jobs[1].status, JobStatus::Pending);
    assert_eq!(got.spec, r.spec);
    assert_eq!(got.context, r.context);
    let trail = s.audit_trail("01A").await.unwrap();
    assert_eq!(
        trail.iter().map(|a| a.to.as_str()).collect::<Vec<_>>(),
        ["queued", "running", "succeeded"]
    );
    assert!(trail.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(s.get_run("nope").await.unwrap().is_none());
});

both!(async fn lists_newest_first_with_status_filter_and_unfinished(backend) {
    let (_d, s) = open(backend).await;
    s.commit(&[
        Write::InsertRun(Box::new(run("01A", 1))),
        Write::InsertRun(Box::new(run("01B", 2))),
        Write::InsertRun(Box::new(run("01C", 3))),
    ])
    .await
    .unwrap();
    s.commit(&[Write::UpdateRun {
        id: "01B".into(),
        status: RunStatus::Failed,
        cancel_requested: false,
        started_at_ms: Some(2),
        finished_at_ms: Some(5),
    }])
    .await
    .unwrap();
    let all = s.list_runs(RunFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["01C", "01B", "01A"]
    );
    assert_eq!(all[0].jobs.len(), 2);
    let failed = s
        .list_runs(RunFilter {
            status: Some(RunStatus::Failed),
            limit: 10,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    let open = s.unfinished_runs().await.unwrap();
    assert_eq!(
        open.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["01A", "01C"]
    );
    let two = s
        .list_runs(RunFilter {
            status: None,
            limit: 2,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
});

both!(async fn lists_a_page_before_an_id_and_by_the_runs_context(backend) {
    let (_d, s) = open(backend).await;
    let mut pushed = run("01B", 2);
    pushed.context = RunContext {
        event: Some("push".into()),
        branch: Some("main".into()),
        repo: Some("o/r".into()),
        ..RunContext::default()
    };
    let api = |id: &str, created| {
        let mut r = run(id, created);
        r.context = RunContext::of_event("api");
        Write::InsertRun(Box::new(r))
    };
    s.commit(&[
        api("01A", 1),
        Write::InsertRun(Box::new(pushed)),
        api("01C", 3),
    ])
    .await
    .unwrap();
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let list = |f: RunFilter| {
        let s = s.clone();
        async move { ids(s.list_runs(f).await.unwrap()) }
    };
    let before = |id: &str| RunFilter {
        before: Some(id.into()),
        ..RunFilter::default()
    };
    assert_eq!(list(before("01C")).await, ["01B", "01A"]);
    assert_eq!(list(before("01A")).await, Vec::<String>::new());
    assert_eq!(
        list(RunFilter {
            limit: 1,
            ..before("01C")
        })
        .await,
        ["01B"]
    );
    for f in [
        RunFilter {
            repo: Some("o/r".into()),
            ..RunFilter::default()
        },
        RunFilter {
            branch: Some("main".into()),
            ..RunFilter::default()
        },
        RunFilter {
            event: Some("push".into()),
            status: Some(RunStatus::Queued),
            ..RunFilter::default()
        },
    ] {
        assert_eq!(list(f.clone()).await, ["01B"], "{f:?}");
    }
    let other = RunFilter {
        branch: Some("dev".into()),
        ..RunFilter::default()
    };
    assert!(list(other).await.is_empty());
    let failed_push = RunFilter {
        event: Some("push".into()),
        status: Some(RunStatus::Failed),
        ..RunFilter::default()
    };
    assert!(list(failed_push).await.is_empty());
});

both!(async fn a_failed_batch_leaves_nothing_behind(backend) {
    let (_d, s) = open(backend).await;
    s.commit(&[Write::InsertRun(Box::new(run("01A", 1)))])
        .await
        .unwrap();
    // Inserting the same run again violates the primary key: the whole batch must roll back.
    let err = s
        .commit(&[
            audit("01A", "x", 1),
            Write::InsertRun(Box::new(run("01A", 1))),
        ])
        .await;
    assert!(err.is_err());
    assert!(s.audit_trail("01A").await.unwrap().is_empty());
});

both!(async fn a_failed_batch_of_job_moves_leaves_nothing_and_the_next_commits(backend) {
    let (_d, s) = open(backend).await;
    s.commit(&[Write::InsertRun(Box::new(run("01A", 1)))])
        .await
        .unwrap();
    let mut job = JobRecord::pending(0, "a");
    job.status = JobStatus::Running;
    let moved = |run_id: &str| Write::UpdateJob {
        run_id: run_id.into(),
        job: job.clone(),
    };
    // Only job moves and audit records (the batches of a busy run), one of them for a run
    // that does not exist: the whole batch rolls back.
    let err = s
        .commit(&[moved("01A"), audit("01A", "running", 2), moved("nope")])
        .await;
    assert!(err.is_err());
    assert!(s.audit_trail("01A").await.unwrap().is_empty());
    let got = s.get_run("01A").await.unwrap().unwrap();
    assert_eq!(got.jobs[0].status, JobStatus::Pending);
    // The store goes on: audit records alone, job moves alone, then both.
    s.commit(&[audit("01A", "queued", 3)]).await.unwrap();
    s.commit(&[moved("01A")]).await.unwrap();
    s.commit(&[moved("01A"), audit("01A", "running", 4)])
        .await
        .unwrap();
    let trail = s.audit_trail("01A").await.unwrap();
    assert_eq!(
        trail.iter().map(|a| a.to.as_str()).collect::<Vec<_>>(),
        ["queued", "running"]
    );
    let got = s.get_run("01A").await.unwrap().unwrap();
    assert_eq!(got.jobs[0].status, JobStatus::Running);
});

both!(async fn job_moves_of_several_runs_keep_each_runs_audit_trail(backend) {
    let (_d, s) = open(backend).await;
    for id in ["01A", "01B"] {
        s.commit(&[Write::InsertRun(Box::new(run(id, 1)))])
            .await
            .unwrap();
    }
    let mut job = JobRecord::pending(1, "b");
    job.status = JobStatus::Queued;
    let moved = |run_id: &str| Write::UpdateJob {
        run_id: run_id.into(),
        job: job.clone(),
    };
    // Audit records of two runs in one batch of moves, then of one run only.
    s.commit(&[
        moved("01A"),
        audit("01A", "queued", 2),
        moved("01B"),
        audit("01B", "queued", 3),
    ])
    .await
    .unwrap();
    s.commit(&[audit("01B", "running", 4), audit("01B", "succeeded", 5)])
        .await
        .unwrap();
    let trail = |id: &'static str| {
        let s = s.clone();
        async move {
            s.audit_trail(id)
                .await
                .unwrap()
                .into_iter()
                .map(|a| (a.trace_id, a.run_id, a.to, a.at_ms))
                .collect::<Vec<_>>()
        }
    };
    let a =
        |id: &str, to: &str, at: i64| (format!("trace-{id}"), id.to_string(), to.to_string(), at);
    assert_eq!(trail("01A").await, [a("01A", "queued", 2)]);
    assert_eq!(
        trail("01B").await,
        [
            a("01B", "queued", 3),
            a("01B", "running", 4),
            a("01B", "succeeded", 5)
        ]
    );
    for id in ["01A", "01B"] {
        let got = s.get_run(id).await.unwrap().unwrap();
        assert_eq!(got.jobs[1].status, JobStatus::Queued);
    }
});

both!(async fn leases_are_exclusive_until_they_expire(backend) {
    let (_d, s) = open(backend).await;
    assert!(s.try_lease("run:1", "a", 100, 0).await.unwrap());
    assert!(
        !s.try_lease("run:1", "b", 150, 50).await.unwrap(),
        "held by a"
    );
    assert!(
        s.try_lease("run:1", "a", 200, 60).await.unwrap(),
        "a renews its own"
    );
    assert!(
        s.try_lease("run:1", "b", 400, 201).await.unwrap(),
        "expired, b takes it"
    );
    s.commit(&[Write::ReleaseLease {
        name: "run:1".into(),
        holder: "a".into(),
    }])
    .await
    .unwrap();
    assert!(
        !s.try_lease("run:1", "c", 500, 300).await.unwrap(),
        "a cannot release b's lease"
    );
    s.commit(&[Write::ReleaseLease {
        name: "run:1".into(),
        holder: "b".into(),
    }])
    .await
    .unwrap();
    assert!(s.try_lease("run:1", "c", 500, 300).await.unwrap());
});

both!(async fn expiry_deletes_only_what_is_old_enough(backend) {
    let (_d, s) = open(backend).await;
    let day = 86_400_000;
    s.commit(&[
        Write::InsertRun(Box::new(run("01OLD", 0))),
        Write::InsertRun(Box::new(run("01NEW", 0))),
        Write::InsertRun(Box::new(run("01RUNNING", 0))),
    ])
    .await
    .unwrap();
    s.commit(&[
        Write::UpdateRun {
            id: "01OLD".into(),
            status: RunStatus::Succeeded,
            cancel_requested: false,
            started_at_ms: Some(0),
            finished_at_ms: Some(10),
        },
        Write::UpdateRun {
            id: "01NEW".into(),
            status: RunStatus::Succeeded,
            cancel_requested: false,
            started_at_ms: Some(0),
            finished_at_ms: Some(2 * day),
        },
        audit("01OLD", "old", 10),
        event("old-delivery", 10),
        event("new-delivery", 2 * day),
        audit("01NEW", "new", 2 * day),
    ])
    .await
    .unwrap();
    let now = 2 * day + 1000;
    let retention = Retention {
        working_ms: day,
        audit_ms: day,
        logs_ms: day,
    };
    let expired = s.expire(&retention, now).await.unwrap();
    assert_eq!(expired.runs, 1);
    assert_eq!(expired.audit_events, 1);
    assert_eq!(expired.events, 1);
    assert!(s.get_run("01OLD").await.unwrap().is_none());
    assert!(s.get_run("01NEW").await.unwrap().is_some());
    assert!(
        s.get_run("01RUNNING").await.unwrap().is_some(),
        "unfinished runs never expire"
    );
    assert_eq!(
        s.expire(&retention, now).await.unwrap(),
        Expired::default(),
        "a second sweep finds nothing"
    );
});

both!(async fn reopening_keeps_committed_state(backend) {
    let (place, s) = open(backend).await;
    let big = format!("{{\"blob\": \"{}\"}}", "needle-".repeat(2000));
    let Write::InsertEvent(mut e) = event("big", 10) else {
        unreachable!()
    };
    e.payload = big.clone();
    s.commit(&[Write::InsertRun(Box::new(run("01A", 1))), Write::InsertEvent(e.clone())])
        .await
        .unwrap();
    drop(s);
    let s = place.store().await;
    assert!(s.get_run("01A").await.unwrap().is_some());
    assert_eq!(s.get_event("ev-big").await.unwrap().unwrap().payload, big);
    let again = s.commit(&[Write::InsertEvent(e)]).await.unwrap();
    assert_eq!(again.duplicate_events.len(), 1, "a stored delivery is not stored again");
});

#[tokio::test]
async fn large_payloads_are_written_once_beside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let big = format!("{{\"blob\": \"{}\"}}", "needle-".repeat(2000));
    let with = |delivery: &str, at: i64, payload: &str| {
        let Write::InsertEvent(mut e) = event(delivery, at) else {
            unreachable!()
        };
        e.payload = payload.to_string();
        Write::InsertEvent(e)
    };
    let day = 86_400_000;
    {
        let s = SqliteStore::open(&path).await.unwrap();
        // A duplicate in the same batch as new ones: its bytes may land in the segment, its
        // row does not.
        s.commit(&[with("old", 10, &big), with("small", 10, "{\"a\": 1}")])
            .await
            .unwrap();
        let again = s.commit(&[with("old", 11, &big)]).await.unwrap();
        assert_eq!(
            again.duplicate_events.len(),
            1,
            "a repeated delivery is not stored"
        );
    }
    // After a restart, payloads are read back from their segment.
    let s = SqliteStore::open(&path).await.unwrap();
    s.commit(&[with("new", 2 * day, &big)]).await.unwrap();
    assert_eq!(s.get_event("ev-old").await.unwrap().unwrap().payload, big);
    assert_eq!(
        s.event_by_delivery("new").await.unwrap().unwrap().payload,
        big
    );
    assert_eq!(
        s.get_event("ev-small").await.unwrap().unwrap().payload,
        "{\"a\": 1}"
    );
    // SQLite itself holds none of the large payloads.
    drop(s);
    let mut in_db = 0;
    for f in ["g.db", "g.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
            in_db += bytes.windows(14).filter(|w| w == b"needle-needle-").count();
        }
    }
    assert_eq!(in_db, 0, "large payloads are not in the database");
    let segments = || {
        std::fs::read_dir(dir.path().join("g.payloads"))
            .unwrap()
            .count()
    };
    assert_eq!(segments(), 2, "one segment per store life");
    // Expiry: the old segment goes once no row points into it; the one in use stays.
    let s = SqliteStore::open(&path).await.unwrap();
    let retention = Retention {
        working_ms: day,
        audit_ms: day,
        logs_ms: day,
    };
    assert_eq!(s.expire(&retention, 2 * day + 1).await.unwrap().events, 2);
    assert_eq!(segments(), 1);
    assert_eq!(s.get_event("ev-new").await.unwrap().unwrap().payload, big);
}

// Job and audit rows travel to the database as JSON: every field, NULLs, negative and large
// numbers, quotes, backslashes and non-ASCII text come back as written, in order, in batches
// larger than any one statement used to take.
both!(async fn every_job_and_audit_field_round_trips_in_large_batches(backend) {
    let (_d, s) = open(backend).await;
    let mut r = run("01J", 1);
    let name = |i: usize| format!("j{i} \"q\" \\ é ✓ 'x'");
    r.jobs = (0..1500).map(|i| JobRecord::pending(i, &name(i))).collect();
    s.commit(&[Write::InsertRun(Box::new(r.clone()))])
        .await
        .unwrap();
    let mut writes = Vec::new();
    let mut want = r.jobs.clone();
    for (i, job) in want.iter_mut().enumerate() {
        *job = JobRecord {
            index: i as u32,
            name: name(i),
            status: if i % 2 == 0 {
                JobStatus::Failed
            } else {
                JobStatus::Succeeded
            },
            attempt: 1 + (i as u32 % 3),
            exit_code: (i % 3 != 0).then_some(if i % 2 == 0 { -(i as i32) } else { 0 }),
            started_at_ms: Some(1_700_000_000_000 + i as i64),
            finished_at_ms: (i % 5 != 0).then_some(i64::MAX - i as i64),
            not_before_ms: (i % 7 == 0).then_some(42),
            retries_used: i as u32 % 4,
            lost_reruns: i as u32 % 2,
            claimed: i % 3 == 1,
        };
        writes.push(Write::UpdateJob {
            run_id: "01J".into(),
            job: job.clone(),
        });
        writes.push(Write::Audit(AuditRecord {
            seq: 0,
            at_ms: 1_700_000_000_000 + i as i64,
            trace_id: "trace-01J".into(),
            run_id: "01J".into(),
            job: (i % 4 != 0).then(|| name(i)),
            attempt: (i % 4 != 1).then_some(i as u32),
            from: (i % 4 != 2).then(|| "running".to_string()),
            to: format!("to-{i}"),
            note: (i % 4 != 3).then(|| format!("note {i}: \"{}\"\n\ttab \\ ü", name(i))),
        }));
    }
    s.commit(&writes).await.unwrap();

    let got = s.get_run("01J").await.unwrap().unwrap();
    assert_eq!(got.jobs, want);
    let trail = s.audit_trail("01J").await.unwrap();
    let sent: Vec<AuditRecord> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Audit(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(trail.len(), sent.len());
    for (got, sent) in trail.iter().zip(&sent) {
        assert_eq!(
            AuditRecord {
                seq: 0,
                ..got.clone()
            },
            *sent
        );
    }
    assert!(trail.windows(2).all(|w| w[0].seq < w[1].seq));
});

both!(async fn audit_seqs_follow_commit_order_and_are_never_handed_out_twice(backend) {
    let (_d, s) = open(backend).await;
    let day = 86_400_000;
    for id in ["01A", "01B"] {
        s.commit(&[Write::InsertRun(Box::new(run(id, 1)))])
            .await
            .unwrap();
    }
    s.commit(&[
        audit("01A", "queued", 1),
        audit("01A", "running", 2),
        audit("01A", "succeeded", 3),
    ])
    .await
    .unwrap();
    // Two runs' records interleaved in one batch.
    s.commit(&[
        audit("01B", "queued", 4),
        audit("01A", "cancelled", 5),
        audit("01B", "running", 6),
    ])
    .await
    .unwrap();
    let seqs = |id: &'static str| {
        let s = s.clone();
        async move {
            s.audit_trail(id)
                .await
                .unwrap()
                .into_iter()
                .map(|a| (a.seq, a.to))
                .collect::<Vec<_>>()
        }
    };
    let a = seqs("01A").await;
    let b = seqs("01B").await;
    let tos = |v: &[(i64, String)]| v.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();
    assert_eq!(tos(&a), ["queued", "running", "succeeded", "cancelled"]);
    assert_eq!(tos(&b), ["queued", "running"]);
    let mut all: Vec<i64> = a.iter().chain(&b).map(|(seq, _)| *seq).collect();
    assert!(a.windows(2).all(|w| w[0].0 < w[1].0), "{a:?}");
    assert!(b.windows(2).all(|w| w[0].0 < w[1].0), "{b:?}");
    assert!(
        a[..3].iter().all(|x| b.iter().all(|y| x.0 < y.0)),
        "a later commit's records come after an earlier one's: {a:?} {b:?}"
    );
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "each record has its own seq");

    // Everything expires; the next record still gets a seq never seen before.
    let retention = Retention {
        working_ms: day,
        audit_ms: day,
        logs_ms: day,
    };
    let expired = s.expire(&retention, 2 * day).await.unwrap();
    assert_eq!(expired.audit_events, 6);
    assert!(seqs("01A").await.is_empty());
    s.commit(&[audit("01A", "again", 3 * day)]).await.unwrap();
    let again = seqs("01A").await;
    assert_eq!(again.len(), 1);
    assert!(again[0].0 > *all.last().unwrap(), "{again:?} after {all:?}");
});

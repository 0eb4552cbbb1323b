//! Leases with several servers on one database: each server has its own store (its own
//! pools) on the same database, and of those racing for a lease exactly one gets it.

use common::Place;
use gantry_engine::ports::*;

#[macro_use]
mod common;

both!(async fn of_servers_racing_for_a_lease_exactly_one_gets_it(backend) {
    let place = Place::new(backend);
    let stores = [place.store().await, place.store().await, place.store().await];
    for round in 0..5i64 {
        let name = format!("run:{round}");
        let mut racers = Vec::new();
        for (i, s) in stores.iter().enumerate() {
            for k in 0..4 {
                let (s, name) = (s.clone(), name.clone());
                racers.push(tokio::spawn(async move {
                    let holder = format!("server-{i}-{k}");
                    let won = s.try_lease(&name, &holder, 10_000, 1_000).await.unwrap();
                    won.then_some(holder)
                }));
            }
        }
        let mut winners = Vec::new();
        for r in racers {
            winners.extend(r.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        // The holder renews it through a batch; the others still cannot take it until it
        // expires, and then one can.
        let holder = winners.pop().unwrap();
        stores[1]
            .commit(&[Write::RenewLeases {
                names: vec![name.clone()],
                holder: holder.clone(),
                expires_at_ms: 20_000,
            }])
            .await
            .unwrap();
        assert!(!stores[2].try_lease(&name, "late", 30_000, 15_000).await.unwrap());
        assert!(stores[2].try_lease(&name, "late", 30_000, 20_001).await.unwrap());
        stores[0]
            .commit(&[Write::ReleaseLease { name: name.clone(), holder: holder.clone() }])
            .await
            .unwrap();
        assert!(!stores[0].try_lease(&name, &holder, 40_000, 20_002).await.unwrap(), "released by its old holder only");
    }
});

both!(async fn runs_whose_lease_lapsed_are_orphans_and_their_old_holder_learns_it_lost_them(backend) {
    let place = Place::new(backend);
    let (a, b) = (place.store().await, place.store().await);
    let mut batch = Vec::new();
    for id in ["r1", "r2", "r3"] {
        batch.push(Write::InsertRun(Box::new(common::run(id, 1))));
    }
    // r1 and r2 are server A's; r3 was never leased (its server died before it could).
    batch.push(Write::RenewLeases {
        names: vec!["run:r1".into(), "run:r2".into()],
        holder: "a".into(),
        expires_at_ms: 10_000,
    });
    a.commit(&batch).await.unwrap();
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(b.orphaned_runs(5_000, 10).await.unwrap()), ["r3"]);
    assert_eq!(ids(b.orphaned_runs(10_001, 10).await.unwrap()), ["r1", "r2", "r3"]);
    assert_eq!(ids(b.orphaned_runs(10_001, 1).await.unwrap()), ["r1"], "at most the limit");

    // B adopts r2 after A's lease lapsed; A, renewing late, keeps r1 and learns r2 is gone.
    // r4 is A's too, but its batch is not committed yet: not lost.
    assert!(b.try_lease("run:r2", "b", 50_000, 10_001).await.unwrap());
    let mine = vec!["r1".to_string(), "r2".to_string(), "r4".to_string()];
    assert_eq!(a.renew_run_leases(&mine, "a", 30_000).await.unwrap(), ["r2"]);
    assert!(!b.try_lease("run:r1", "b", 40_000, 25_000).await.unwrap(), "renewed to 30 000");
    assert_eq!(ids(b.orphaned_runs(25_000, 10).await.unwrap()), ["r3"]);
    // A finished run is nobody's orphan.
    let mut done = common::run("r3", 1);
    done.status = gantry_core::RunStatus::Succeeded;
    a.commit(&[Write::UpdateRun {
        id: "r3".into(),
        status: done.status,
        cancel_requested: false,
        started_at_ms: Some(2),
        finished_at_ms: Some(3),
    }])
    .await
    .unwrap();
    assert!(b.orphaned_runs(25_000, 10).await.unwrap().is_empty());
    // Another server finished a run A still thinks it steps (r3 had no lease): lost.
    assert_eq!(a.renew_run_leases(&["r3".into()], "a", 31_000).await.unwrap(), ["r3"]);
    assert!(a.renew_run_leases(&[], "a", 1).await.unwrap().is_empty());
});

both!(async fn a_cancel_request_for_another_servers_run_is_taken_once(backend) {
    let place = Place::new(backend);
    let (a, b) = (place.store().await, place.store().await);
    a.commit(&[Write::InsertRun(Box::new(common::run("r1", 1)))]).await.unwrap();
    assert!(b.request_cancel("r1", 5).await.unwrap(), "unfinished: recorded");
    assert!(b.request_cancel("r1", 6).await.unwrap(), "asked twice: still one request");
    assert!(!b.request_cancel("none", 5).await.unwrap(), "no such run");
    let ids = vec!["r1".to_string(), "r2".to_string()];
    assert_eq!(a.take_cancel_requests(&ids).await.unwrap(), ["r1"]);
    assert!(a.take_cancel_requests(&ids).await.unwrap().is_empty(), "taken once");
    assert!(a.take_cancel_requests(&[]).await.unwrap().is_empty());
    a.commit(&[Write::UpdateRun {
        id: "r1".into(),
        status: gantry_core::RunStatus::Succeeded,
        cancel_requested: false,
        started_at_ms: Some(2),
        finished_at_ms: Some(3),
    }])
    .await
    .unwrap();
    assert!(!b.request_cancel("r1", 7).await.unwrap(), "finished: nothing to cancel");
});

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

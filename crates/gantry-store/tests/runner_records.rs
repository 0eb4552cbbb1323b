//! The Store contract for ephemeral runners' records, on real SQLite and PostgreSQL databases.

use gantry_engine::ports::*;

#[macro_use]
mod common;

fn runner(name: &str, pool: &str, queued_at_ms: i64) -> RunnerRecord {
    RunnerRecord {
        name: name.into(),
        pool: pool.into(),
        repository: "acme/web".into(),
        job_id: 7,
        run_attempt: 1,
        job_name: "build".into(),
        labels: vec!["self-hosted".into()],
        phase: gantry_core::runners::lifecycle::Phase::Waiting,
        container: None,
        trace_id: "t".into(),
        event_id: None,
        queued_at_ms,
        started_at_ms: None,
        claimed_at_ms: None,
        finished_at_ms: None,
        launches: 0,
        note: None,
    }
}

both!(async fn runner_records_are_written_whole_listed_newest_first_and_expire_once_done(backend) {
    use gantry_core::runners::lifecycle::Phase;
    let (_place, store) = common::open(backend).await;
    let a = runner("gantry-a-1-1", "a", 1_000);
    let mut b = runner("gantry-b-2-1", "b", 2_000);
    store
        .commit(&[
            Write::PutRunner(Box::new(a.clone())),
            Write::PutRunner(Box::new(b.clone())),
        ])
        .await
        .unwrap();
    b.phase = Phase::Running { runner_id: 9 };
    b.container = Some("pid 4".into());
    b.launches = 1;
    store
        .commit(&[Write::PutRunner(Box::new(b.clone()))])
        .await
        .unwrap();
    assert_eq!(
        store.get_runner("gantry-b-2-1").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.get_runner("nope").await.unwrap(), None);
    let all = store.list_runners(RunnerFilter::default()).await.unwrap();
    assert_eq!(all, [b.clone(), a.clone()], "newest first");
    let only_a = RunnerFilter {
        pool: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(
        store.list_runners(only_a).await.unwrap(),
        std::slice::from_ref(&a)
    );
    let one = RunnerFilter {
        limit: 1,
        ..Default::default()
    };
    assert_eq!(store.list_runners(one).await.unwrap().len(), 1);

    // Done: no longer active, and gone once past the retention; an active one stays.
    let mut done = a.clone();
    done.phase = Phase::Done;
    done.finished_at_ms = Some(3_000);
    store
        .commit(&[Write::PutRunner(Box::new(done))])
        .await
        .unwrap();
    let active = RunnerFilter {
        active: true,
        ..Default::default()
    };
    assert_eq!(
        store.list_runners(active.clone()).await.unwrap(),
        [b.clone()]
    );
    let retention = Retention {
        working_ms: 1_000,
        ..Default::default()
    };
    store.expire(&retention, 10_000).await.unwrap();
    assert_eq!(store.get_runner("gantry-a-1-1").await.unwrap(), None);
    assert_eq!(store.list_runners(active).await.unwrap(), [b]);
});

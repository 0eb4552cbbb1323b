//! The `AgentQueue` contract on both backends, written against `dyn AgentQueue`: an
//! entry is taken by one agent only, a result is taken once, a lease expires only once past
//! its time, tokens are kept as given (hashes) and revoked, and an earlier life's open
//! entries are closed at start.

use common::{Backend, Place};
use gantry_engine::ports::*;
use std::sync::Arc;

#[macro_use]
mod common;

async fn open(backend: Backend) -> (Place, Arc<dyn AgentQueue>) {
    let place = Place::new(backend);
    let queue = place.agents().await;
    (place, queue)
}

fn entry(id: &str, attempt: u32, at: i64) -> QueuedJob {
    QueuedJob {
        id: id.into(),
        run_id: "run1".into(),
        job: "build".into(),
        attempt,
        trace_id: "t".into(),
        labels: vec!["linux".into()],
        task: "{}".into(),
        state: QueueState::Queued,
        agent: None,
        lease_expires_ms: None,
        cancel_requested: false,
        result: None,
        created_at_ms: at,
    }
}

both!(async fn an_entry_is_taken_once_and_its_result_kept_once(backend) {
    let (_d, q) = open(backend).await;
    q.enqueue(&entry("e1", 1, 10)).await.unwrap();
    q.enqueue(&entry("e2", 2, 5)).await.unwrap();
    let open_ids: Vec<String> = q
        .open(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(open_ids, ["e2", "e1"], "oldest first");
    // Two agents race for one entry: one wins.
    let (a, b) = tokio::join!(q.take("e1", "a", 1_000), q.take("e1", "b", 1_000));
    assert!(a.unwrap() ^ b.unwrap());
    let holder = q.get("e1").await.unwrap().unwrap().agent.unwrap();
    let other = if holder == "a" { "b" } else { "a" };
    assert_eq!(
        q.renew("e1", other, 2_000).await.unwrap(),
        None,
        "not its lease"
    );
    assert_eq!(q.renew("e1", &holder, 2_000).await.unwrap(), Some(false));
    q.request_cancel("e1").await.unwrap();
    assert_eq!(q.renew("e1", &holder, 2_000).await.unwrap(), Some(true));
    assert!(
        !q.expire("e1", 1_999).await.unwrap(),
        "the lease runs to 2000"
    );
    let done = |r| q.finish("e1", QueueState::Taken, QueueState::Done, Some(r));
    assert!(done(r#"{"exit_code":0}"#).await.unwrap());
    assert!(!done(r#"{"exit_code":1}"#).await.unwrap(), "once");
    let e = q.find("run1", "build", 1).await.unwrap().unwrap();
    assert_eq!(
        (e.state, e.result.as_deref()),
        (QueueState::Done, Some(r#"{"exit_code":0}"#))
    );
    assert!(
        !q.expire("e1", 10_000).await.unwrap(),
        "a done entry does not expire"
    );
    // A lease past its time is lost, and its result is not taken.
    assert!(q.take("e2", "a", 500).await.unwrap());
    assert!(q.expire("e2", 500).await.unwrap());
    assert!(
        !q.finish("e2", QueueState::Taken, QueueState::Done, Some("{}"))
            .await
            .unwrap()
    );
    assert_eq!(q.get("e2").await.unwrap().unwrap().state, QueueState::Lost);
    assert!(q.open(10).await.unwrap().is_empty());
});

both!(async fn tokens_agents_and_an_earlier_life_s_entries(backend) {
    let (_d, q) = open(backend).await;
    assert!(q.create_token("fleet", &[1; 32], 5).await.unwrap());
    assert!(
        !q.create_token("fleet", &[2; 32], 6).await.unwrap(),
        "names are unique"
    );
    assert_eq!(
        q.token_hashes().await.unwrap(),
        [("fleet".to_string(), vec![1; 32])]
    );
    q.touch_token("fleet", 5_000).await.unwrap();
    let listed = q.list_tokens().await.unwrap();
    assert_eq!(
        (listed[0].created_at_ms, listed[0].last_used_ms),
        (5, Some(5_000))
    );
    let agent = AgentRecord {
        name: "a1".into(),
        token: "fleet".into(),
        labels: vec!["gpu".into(), "linux".into()],
        slots: 2,
        last_seen_ms: 7,
    };
    q.put_agent(&agent).await.unwrap();
    q.put_agent(&AgentRecord {
        last_seen_ms: 8,
        ..agent.clone()
    })
    .await
    .unwrap();
    q.touch_agent("a1", 9).await.unwrap();
    assert_eq!(
        q.list_agents().await.unwrap(),
        [AgentRecord {
            last_seen_ms: 9,
            ..agent
        }]
    );
    assert!(q.revoke_token("fleet").await.unwrap());
    assert!(!q.revoke_token("fleet").await.unwrap());
    assert!(q.token_hashes().await.unwrap().is_empty());

    q.enqueue(&entry("e1", 1, 1)).await.unwrap();
    q.enqueue(&entry("e2", 2, 2)).await.unwrap();
    q.take("e2", "a1", 100).await.unwrap();
    // An entry of a run another server holds (a replica on the same database) is its own.
    let mut theirs = entry("e9", 1, 2);
    theirs.run_id = "run9".into();
    q.enqueue(&theirs).await.unwrap();
    let store = _d.store().await;
    assert!(store.try_lease("run:run9", "other", 1_000, 0).await.unwrap());
    assert!(store.try_lease("run:run1", "me", 1_000, 0).await.unwrap());
    assert_eq!(q.abandon_open("me", 500).await.unwrap(), 2);
    let open: Vec<String> = q.open(10).await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(open, ["e9"], "another server's run keeps its entry");
    assert_eq!(q.abandon_open("me", 2_000).await.unwrap(), 1, "its lease lapsed");
    assert!(q.open(10).await.unwrap().is_empty());
    assert!(!q.take("e1", "a1", 100).await.unwrap());
    // Finished entries go once old enough; open ones never.
    q.enqueue(&entry("e3", 3, 3)).await.unwrap();
    assert_eq!(q.sweep(2).await.unwrap(), 1);
    assert_eq!(q.sweep(10).await.unwrap(), 2, "e2 and e9");
    assert_eq!(q.open(10).await.unwrap().len(), 1);
    assert!(q.get("e1").await.unwrap().is_none());
});

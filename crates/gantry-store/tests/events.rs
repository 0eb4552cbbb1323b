//! The Store contract for events, checked on a real SQLite database: deduplication by
//! delivery id, newest first, filters and keyset pages.

use gantry_engine::ports::*;

#[macro_use]
mod common;
use common::{event, open};

both!(async fn events_dedupe_by_delivery_and_list_newest_first(backend) {
    let (_d, s) = open(backend).await;
    let first = s.commit(&[event("a", 1), event("b", 2)]).await.unwrap();
    assert!(first.duplicate_events.is_empty());
    // The same delivery again (a new event id): ignored, reported, not an error.
    let Write::InsertEvent(mut again) = event("a", 3) else {
        unreachable!()
    };
    again.id = "ev-a-again".into();
    let second = s.commit(&[Write::InsertEvent(again)]).await.unwrap();
    assert_eq!(
        second.duplicate_events.iter().collect::<Vec<_>>(),
        ["ev-a-again"]
    );
    let list = s.list_events(EventFilter::default()).await.unwrap();
    assert_eq!(
        list.iter()
            .map(|e| e.delivery_id.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert!(list[0].payload.is_empty(), "listing leaves payloads out");
    let a = s.event_by_delivery("a").await.unwrap().unwrap();
    assert_eq!((a.received_at_ms, a.payload.as_str()), (1, "{}"));
    assert!(s.event_by_delivery("zz").await.unwrap().is_none());
    let none = s
        .list_events(EventFilter {
            source: Some("custom.app".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
});

both!(async fn events_page_by_keyset_even_within_one_millisecond(backend) {
    let (_d, s) = open(backend).await;
    let batch = [event("x", 5), event("y", 5), event("z", 5), event("w", 4)];
    s.commit(&batch).await.unwrap();
    let page = async |before: Option<String>| {
        let f = EventFilter {
            before,
            limit: 1,
            ..Default::default()
        };
        s.list_events(f)
            .await
            .unwrap()
            .first()
            .map(|e| e.id.clone())
    };
    let (mut seen, mut before) = (Vec::new(), None);
    while let Some(id) = page(before).await {
        seen.push(id.clone());
        before = Some(id);
    }
    // Newest first, ties by id descending; none skipped, none twice; an unknown id: nothing.
    assert_eq!(seen, ["ev-z", "ev-y", "ev-x", "ev-w"]);
    assert_eq!(page(Some("ev-nothing".into())).await, None);
});

both!(async fn a_batch_sets_several_outcomes_the_last_of_each_event_staying(backend) {
    // A synced batch of events and outcomes only (webhook intake; one statement on
    // PostgreSQL) and an unsynced one (a transaction), alike.
    for durability in [Durability::Disk, Durability::Os] {
        let (_d, s) = open(backend).await;
        s.commit(&[event("a", 1), event("b", 2)]).await.unwrap();
        let outcome = |id: &str, o: &str| Write::SetEventOutcome {
            id: id.into(),
            outcome: o.into(),
        };
        // Outcomes of stored events and of one inserted in the same batch (before and after
        // it), one event's twice; a delivery stored already: not inserted, reported.
        let mut c = event("c", 3);
        if let Write::InsertEvent(e) = &mut c {
            e.installation_id = Some(42);
            e.action = Some("queued".into());
            e.payload = "x".repeat(20_000);
        }
        let Write::InsertEvent(mut again) = event("b", 4) else {
            unreachable!()
        };
        again.id = "ev-b-again".into();
        let batch = [
            outcome("ev-c", "too early"),
            outcome("ev-a", "first"),
            c,
            Write::InsertEvent(again),
            outcome("ev-b", "ignored"),
            outcome("ev-b-again", "not stored"),
            outcome("ev-c", "started run r1"),
            outcome("ev-a", "second"),
            outcome("ev-missing", "nothing to set"),
        ];
        let committed = s
            .commit_prepared(&batch, s.prepare(&batch), durability)
            .await
            .unwrap();
        assert_eq!(
            committed.duplicate_events.iter().collect::<Vec<_>>(),
            ["ev-b-again"],
            "{durability:?}"
        );
        let get = async |id: &str| s.get_event(id).await.unwrap().unwrap();
        assert_eq!(get("ev-a").await.outcome.as_deref(), Some("second"));
        let b = get("ev-b").await;
        assert_eq!((b.outcome.as_deref(), b.delivery_id.as_deref()), (Some("ignored"), Some("b")));
        let c = get("ev-c").await;
        assert_eq!(c.outcome.as_deref(), Some("started run r1"), "{durability:?}");
        assert_eq!(
            (c.installation_id, c.action.as_deref(), c.payload.len()),
            (Some(42), Some("queued"), 20_000)
        );
        assert!(s.get_event("ev-missing").await.unwrap().is_none());
        assert!(s.get_event("ev-b-again").await.unwrap().is_none());
    }
});

both!(async fn a_batch_of_many_events_reports_each_duplicate(backend) {
    let (_d, s) = open(backend).await;
    let first: Vec<Write> = (0..70).map(|i| event(&format!("d{i}"), i)).collect();
    assert!(s.commit(&first).await.unwrap().duplicate_events.is_empty());
    // 100 more: every even one a delivery already stored (a new event id), one repeated
    // within the batch; the statement's chunks split them.
    let mut again = Vec::new();
    for i in 0..100 {
        let Write::InsertEvent(mut e) = event(&format!("d{}", if i % 2 == 0 { i / 2 } else { 100 + i }), 100 + i)
        else {
            unreachable!()
        };
        e.id = format!("new-{i}");
        again.push(Write::InsertEvent(e));
    }
    let Write::InsertEvent(mut twice) = event("d101", 300) else {
        unreachable!()
    };
    twice.id = "new-twice".into();
    again.push(Write::InsertEvent(twice));
    let c = s.commit(&again).await.unwrap();
    let mut dup: Vec<&String> = c.duplicate_events.iter().collect();
    dup.sort();
    let mut want: Vec<String> = (0..100).step_by(2).map(|i| format!("new-{i}")).collect();
    want.push("new-twice".into());
    want.sort();
    assert_eq!(dup, want.iter().collect::<Vec<_>>());
    assert_eq!(s.get_event("new-1").await.unwrap().unwrap().delivery_id.as_deref(), Some("d101"));
    assert!(s.get_event("new-0").await.unwrap().is_none());
});

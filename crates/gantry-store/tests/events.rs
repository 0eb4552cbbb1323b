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

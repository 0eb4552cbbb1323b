//! Large event payloads in an object store, on both backends: the row keeps the object's key,
//! size and digest (and no payload); every reader gets the payload back; a payload that cannot
//! be had is an error naming the event and the key; the object is there before the row
//! commits, and a payload the object store refuses goes to the row; expiry deletes the expired events' objects and old ones no row points to. The
//! object store here is an in-memory `Blobs` that counts its calls and can be made to fail.

use async_trait::async_trait;
use gantry_engine::ports::*;
use gantry_store::{PayloadBlobs, PgStore, SqliteStore};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[macro_use]
mod common;
use common::{Backend, Place, event, run};

/// Objects in memory: key → (bytes, written at, ms).
#[derive(Default)]
struct Mem {
    objects: Mutex<BTreeMap<String, (Vec<u8>, i64)>>,
    /// Calls of any kind.
    calls: AtomicUsize,
    fail: AtomicBool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Mem {
    fn check(&self, op: &'static str, key: &str) -> Result<(), BlobError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(BlobError::Store {
                store: "mem://test".into(),
                op,
                key: key.into(),
                cause: "refused".into(),
            });
        }
        Ok(())
    }
    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(b, _)| b.clone())
    }
    fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }
    fn put_at(&self, key: &str, bytes: &[u8], at_ms: i64) {
        let mut objects = self.objects.lock().unwrap();
        objects.insert(key.into(), (bytes.to_vec(), at_ms));
    }
}

#[async_trait]
impl Blobs for Mem {
    fn describe(&self) -> String {
        "mem://test".into()
    }
    // Files are the log archive's; payloads never use them.
    async fn put_file(&self, key: &str, _: &Path) -> Result<(), BlobError> {
        self.check("put_file", key)?;
        panic!("put_file {key}: payloads are put whole")
    }
    async fn get_file(&self, key: &str, _: &Path) -> Result<bool, BlobError> {
        self.check("get_file", key)?;
        panic!("get_file {key}: payloads are got whole")
    }
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.check("put", key)?;
        self.put_at(key, &bytes, now_ms());
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        self.check("get", key)?;
        Ok(self.object(key))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        self.check("list", prefix)?;
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, at))| BlobMeta {
                key: k.clone(),
                modified_ms: *at,
                size: b.len() as u64,
            })
            .collect())
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.check("delete", key)?;
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

const MIN: u64 = 256 << 10;

/// The place's store with its payloads of 256 KiB or more in `mem` (none: a store without).
async fn store(place: &Place, mem: Option<&Arc<Mem>>) -> Arc<dyn Store> {
    let blobs = mem.map(|m| PayloadBlobs::new(m.clone(), MIN));
    match &place.pg {
        Some(db) => {
            let s = PgStore::connect(&db.url).await.unwrap();
            Arc::new(match blobs {
                Some(b) => s.with_payload_blobs(b),
                None => s,
            })
        }
        None => {
            let s = SqliteStore::open(&place.dir.path().join("g.db"))
                .await
                .unwrap();
            Arc::new(match blobs {
                Some(b) => s.with_payload_blobs(b),
                None => s,
            })
        }
    }
}

/// The event's row as stored: its detail, and its payload's key, size and digest.
type RowOf = (String, Option<String>, Option<i64>, Option<String>);

async fn row_of(place: &Place, id: &str) -> RowOf {
    const SQL: &str =
        "SELECT detail, payload_key, payload_size, payload_digest FROM events WHERE id = $1";
    match &place.pg {
        Some(db) => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let row = sqlx::query_as(SQL).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            row
        }
        None => {
            let url = format!("sqlite://{}", place.dir.path().join("g.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let row = sqlx::query_as(SQL).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            row
        }
    }
}

/// A payload of `len` bytes or a little more, JSON, with a marker.
fn payload(len: usize, marker: &str) -> String {
    format!("{{\"m\": \"{marker}\", \"pad\": \"{}\"}}", "x".repeat(len))
}

fn with_payload(delivery: &str, at: i64, body: &str) -> Write {
    let Write::InsertEvent(mut e) = event(delivery, at) else {
        unreachable!()
    };
    e.payload = body.to_string();
    Write::InsertEvent(e)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

both!(async fn large_payloads_go_to_the_object_store_and_every_reader_gets_them_back(backend) {
    let place = Place::new(backend);
    let mem = Arc::new(Mem::default());
    let s = store(&place, Some(&mem)).await;
    // Small and middling events never touch the object store.
    let small = payload(100, "small");
    let middling = payload(20_000, "middling");
    s.commit(&[with_payload("small", 1, &small), with_payload("mid", 1, &middling)])
        .await
        .unwrap();
    assert_eq!(mem.calls.load(Ordering::SeqCst), 0, "small events stay off the object store");
    // A large one alone (webhook intake), and one in a batch with a run.
    let big = payload(300_000, "big");
    let huge = payload(3_000_000, "huge");
    s.commit(&[with_payload("big", 2, &big)]).await.unwrap();
    s.commit(&[Write::InsertRun(Box::new(run("01R", 2))), with_payload("huge", 3, &huge)])
        .await
        .unwrap();
    assert_eq!(mem.keys(), ["events/ev-big.json", "events/ev-huge.json"]);
    assert_eq!(mem.object("events/ev-big.json").unwrap(), big.as_bytes());

    // The row keeps where, not what.
    let (detail, key, size, digest) = row_of(&place, "ev-huge").await;
    assert_eq!(detail, "", "the payload is not in the row");
    assert_eq!(key.as_deref(), Some("events/ev-huge.json"));
    assert_eq!(size, Some(huge.len() as i64));
    assert_eq!(digest, Some(sha256(huge.as_bytes())));
    let (detail, key, ..) = row_of(&place, "ev-small").await;
    assert_eq!((detail.as_str(), key), (small.as_str(), None));

    // Every reader, also after a restart.
    drop(s);
    let s = store(&place, Some(&mem)).await;
    assert_eq!(s.get_event("ev-big").await.unwrap().unwrap().payload, big);
    assert_eq!(s.event_by_delivery("huge").await.unwrap().unwrap().payload, huge);
    assert_eq!(s.get_event("ev-mid").await.unwrap().unwrap().payload, middling);
    assert_eq!(s.get_event("ev-small").await.unwrap().unwrap().payload, small);
    let undecided = s.undecided_events("github", &["push"], 10).await.unwrap();
    let payloads: Vec<&str> = undecided.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(payloads, [&middling, &small, &big, &huge], "by time, then id");
    // Listing reads no payloads.
    let calls = mem.calls.load(Ordering::SeqCst);
    assert_eq!(s.list_events(EventFilter::default()).await.unwrap().len(), 4);
    assert_eq!(mem.calls.load(Ordering::SeqCst), calls);
});

both!(async fn a_payload_that_cannot_be_had_is_an_error_naming_the_event_and_the_key(backend) {
    let place = Place::new(backend);
    let mem = Arc::new(Mem::default());
    let s = store(&place, Some(&mem)).await;
    let big = payload(300_000, "big");
    s.commit(&[with_payload("big", 1, &big), with_payload("b2", 1, &big)])
        .await
        .unwrap();
    let error = async |s: &Arc<dyn Store>, id: &str| s.get_event(id).await.unwrap_err().to_string();

    // Unreachable: the store's error, with the event and the key.
    mem.fail.store(true, Ordering::SeqCst);
    let e = error(&s, "ev-big").await;
    assert!(e.contains("event ev-big") && e.contains("events/ev-big.json") && e.contains("refused"), "{e}");
    let e = s.undecided_events("github", &["push"], 10).await.unwrap_err().to_string();
    assert!(e.contains("cannot read its payload") && e.contains("events/ev-b"), "{e}");
    mem.fail.store(false, Ordering::SeqCst);

    // Gone, or not the payload stored: never an empty or wrong payload.
    mem.objects.lock().unwrap().remove("events/ev-big.json");
    let e = error(&s, "ev-big").await;
    assert!(e.contains("event ev-big") && e.contains("events/ev-big.json is missing from the object store mem://test"), "{e}");
    mem.put_at("events/ev-b2.json", &big.as_bytes()[1..], now_ms());
    let e = error(&s, "ev-b2").await;
    assert!(e.contains("event ev-b2") && e.contains("events/ev-b2.json") && e.contains("is not the one stored"), "{e}");
    mem.put_at("events/ev-b2.json", big.replace("big", "bug").as_bytes(), now_ms());
    let e = error(&s, "ev-b2").await;
    assert!(e.contains("is not the one stored"), "same size, other bytes: {e}");

    // A store without an object store cannot read it either, and says so.
    let without = store(&place, None).await;
    let e = error(&without, "ev-b2").await;
    assert!(e.contains("event ev-b2") && e.contains("events/ev-b2.json") && e.contains("GANTRY_BLOB_URL"), "{e}");
});

both!(async fn an_object_store_that_fails_leaves_the_payload_to_the_database(backend) {
    let place = Place::new(backend);
    let mem = Arc::new(Mem::default());
    let s = store(&place, Some(&mem)).await;
    mem.fail.store(true, Ordering::SeqCst);
    let big = payload(300_000, "big");
    // The commit goes through (the journal must not stop while the object store is down),
    // with the payload in the row.
    s.commit(&[with_payload("big", 1, &big)]).await.unwrap();
    let (detail, key, ..) = row_of(&place, "ev-big").await;
    assert_eq!((detail.as_str(), key), (big.as_str(), None));
    mem.fail.store(false, Ordering::SeqCst);
    assert_eq!(s.get_event("ev-big").await.unwrap().unwrap().payload, big);
    assert!(mem.keys().is_empty());
    // Back up, the next large payload goes to it.
    s.commit(&[with_payload("big2", 1, &big)]).await.unwrap();
    assert_eq!(mem.keys(), ["events/ev-big2.json"]);
});

both!(async fn expiry_deletes_the_payloads_of_expired_events_and_old_leftovers(backend) {
    let place = Place::new(backend);
    let mem = Arc::new(Mem::default());
    let s = store(&place, Some(&mem)).await;
    let big = payload(300_000, "big");
    let day = 86_400_000;
    s.commit(&[with_payload("old", 10, &big)]).await.unwrap();
    s.commit(&[with_payload("new", 2 * day, &big)]).await.unwrap();
    // A repeated delivery: its copy was uploaded, no row points to it.
    let Write::InsertEvent(mut again) = with_payload("new", 2 * day, &big) else {
        unreachable!()
    };
    again.id = "ev-new-again".into();
    let dup = s.commit(&[Write::InsertEvent(again)]).await.unwrap();
    assert_eq!(dup.duplicate_events.len(), 1);
    assert!(mem.object("events/ev-new-again.json").is_some());
    // Left by uploads whose commit never came: one long ago, one just now (its commit may
    // still be on its way).
    mem.put_at("events/crashed.json", b"{}", now_ms() - 2 * 3_600_000);
    mem.put_at("events/ev-new-again.json", big.as_bytes(), now_ms() - 2 * 3_600_000);
    mem.put_at("events/in-flight.json", b"{}", now_ms());
    mem.put_at("logs/r.log", b"not a payload", now_ms() - 2 * 3_600_000);

    let retention = Retention { working_ms: day, audit_ms: day, logs_ms: day };
    let expired = s.expire(&retention, 2 * day + 1).await.unwrap();
    assert_eq!((expired.events, expired.payload_blobs), (1, 3), "{expired:?}");
    assert_eq!(mem.keys(), ["events/ev-new.json", "events/in-flight.json", "logs/r.log"]);
    assert_eq!(s.get_event("ev-new").await.unwrap().unwrap().payload, big);
    let again = s.expire(&retention, 2 * day + 1).await.unwrap();
    assert_eq!(again, Expired::default(), "a second sweep finds nothing");
});

#[tokio::test]
async fn on_sqlite_middling_payloads_still_go_to_segments() {
    let place = Place::new(Backend::Sqlite);
    let mem = Arc::new(Mem::default());
    let s = store(&place, Some(&mem)).await;
    let middling = payload(20_000, "middling");
    let big = payload(300_000, "big");
    s.commit(&[
        with_payload("mid", 1, &middling),
        with_payload("big", 1, &big),
    ])
    .await
    .unwrap();
    let (detail, key, ..) = row_of(&place, "ev-mid").await;
    assert_eq!((detail.as_str(), key), ("", None), "in a segment");
    let segments: u64 = std::fs::read_dir(place.dir.path().join("g.payloads"))
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(
        segments,
        middling.len() as u64,
        "the large one is not in a segment"
    );
    assert_eq!(
        s.get_event("ev-mid").await.unwrap().unwrap().payload,
        middling
    );
    assert_eq!(s.get_event("ev-big").await.unwrap().unwrap().payload, big);
}

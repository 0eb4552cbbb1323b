//! Large event payloads in an object store (the engine's `Blobs` port), on either backend: an
//! event whose payload is at least [`PayloadBlobs`]' threshold (256 KiB by default: the
//! largest event EventBridge takes; a GitHub delivery may be 25 MB) is written as the object
//! `events/<id>.json` before the transaction that inserts its row commits (durable: S3 has
//! it once it answers, a folder's file and directory entry are synced), and the row keeps its
//! key, size and SHA-256 digest instead of the payload (`detail` is `''`). Readers get the
//! payload back whole, its size and digest checked; one that cannot be read is an error that
//! names the event and the key, never an empty payload. An upload that fails, or does not
//! answer within 15 s, leaves its payload to the database (its row), logged: the journal's
//! commits wait for this one, and an object store that is down must not stop them.
//!
//! A crash (or a failed commit) between the upload and the commit leaves an object no row
//! points to, as does a repeated delivery (its copy is uploaded before the insert finds the
//! delivery stored): each expiry deletes the objects of the events it deletes, then those of
//! `events/` older than an hour that no row points to ([`PayloadBlobs::sweep`]).

use crate::rows::Cols;
use gantry_engine::ports::{Blobs, EventRecord, StoreError, StoreResult};
use sha2::Digest as _;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Payloads at least this long go to the object store by default.
pub const DEFAULT_PAYLOAD_BLOB_MIN: u64 = 256 << 10;

/// How long a commit waits for its batch's uploads before storing their payloads in the
/// database instead.
pub(crate) const UPLOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The smallest threshold accepted: below it, payloads go to the row (or a segment).
pub const MIN_PAYLOAD_BLOB_MIN: u64 = 1 << 10;

/// Where the objects are under the store's root (or prefix).
const PREFIX: &str = "events/";

/// An object older than this that no row points to is left over (an upload whose commit
/// never came); younger ones may belong to a commit still on its way.
const ORPHAN_GRACE_MS: i64 = 3_600_000;

/// The object store large payloads go to, and from what size.
pub struct PayloadBlobs {
    blobs: Arc<dyn Blobs>,
    min_bytes: usize,
    grace_ms: i64,
}

impl PayloadBlobs {
    /// Payloads of `min_bytes` or more go to `blobs` (at least [`MIN_PAYLOAD_BLOB_MIN`]).
    pub fn new(blobs: Arc<dyn Blobs>, min_bytes: u64) -> PayloadBlobs {
        PayloadBlobs {
            blobs,
            min_bytes: min_bytes.max(MIN_PAYLOAD_BLOB_MIN) as usize,
            grace_ms: ORPHAN_GRACE_MS,
        }
    }

    /// How old an object no row points to must be before a sweep deletes it (tests: 0).
    pub fn with_orphan_grace_ms(mut self, grace_ms: i64) -> PayloadBlobs {
        self.grace_ms = grace_ms;
        self
    }

    pub(crate) fn min_bytes(&self) -> usize {
        self.min_bytes
    }

    fn goes_out(&self, e: &EventRecord) -> bool {
        e.payload.len() >= self.min_bytes
    }

    /// Deletes the objects of `keys` (events just deleted); how many.
    pub(crate) async fn delete(&self, keys: &[String]) -> u64 {
        let mut n = 0;
        for key in keys {
            match self.blobs.delete(key).await {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::warn!(cause = %e, "cannot delete an expired event's payload; a later sweep will")
                }
            }
        }
        n
    }

    /// The objects under `events/` written more than the grace ago, by key: candidates for
    /// [`PayloadBlobs::sweep`], listed before the rows are read (a row committed after this
    /// list points to an object written within the grace).
    pub(crate) async fn old_objects(&self) -> Vec<String> {
        let cutoff = now_ms() - self.grace_ms;
        match self.blobs.list(PREFIX).await {
            Ok(listed) => listed
                .into_iter()
                .filter(|m| m.modified_ms <= cutoff)
                .map(|m| m.key)
                .collect(),
            Err(e) => {
                tracing::warn!(cause = %e, "cannot list event payloads to sweep");
                Vec::new()
            }
        }
    }

    /// Deletes the objects of `old` (from [`PayloadBlobs::old_objects`]) no row points to
    /// (`referenced`, read after the listing); how many.
    pub(crate) async fn sweep(&self, old: Vec<String>, referenced: &HashSet<String>) -> u64 {
        let gone: Vec<String> = old
            .into_iter()
            .filter(|k| !referenced.contains(k))
            .collect();
        self.delete(&gone).await
    }
}

/// After an expiry has committed: deletes the objects of the expired events (`keys`), then the
/// old ones no row points to (`referenced` reads the rows' keys, after the listing); how many.
pub(crate) async fn after_expiry<F>(
    to: &PayloadBlobs,
    keys: &[String],
    referenced: impl FnOnce() -> F,
) -> StoreResult<u64>
where
    F: std::future::Future<Output = StoreResult<HashSet<String>>>,
{
    let mut n = to.delete(keys).await;
    let old = to.old_objects().await;
    if !old.is_empty() {
        n += to.sweep(old, &referenced().await?).await;
    }
    Ok(n)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An event's payload in the object store, as its row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobRef {
    pub key: String,
    pub size: i64,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// The object an event's payload goes to (ids are ULIDs; anything else is kept to a safe
/// spelling, hex if need be).
pub(crate) fn key_of(event_id: &str) -> String {
    let safe = !event_id.is_empty()
        && event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if safe {
        format!("{PREFIX}{event_id}.json")
    } else {
        format!("{PREFIX}x{}.json", hex::encode(event_id))
    }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// One event's upload, done: its id, and where its payload is or why it is not there.
type Put = (String, Result<BlobRef, String>);

/// A batch's large payloads on their way to the object store.
#[derive(Default)]
pub(crate) struct Uploads {
    running: Option<JoinHandle<Vec<Put>>>,
}

impl Uploads {
    /// Starts uploading the payloads of `events` that go to `to` (none: nothing starts, and
    /// a batch of small events costs nothing here).
    pub fn start(to: Option<&Arc<PayloadBlobs>>, events: &[&EventRecord]) -> Uploads {
        let Some(to) = to else {
            return Uploads::default();
        };
        let big: Vec<(String, Vec<u8>)> = events
            .iter()
            .filter(|e| to.goes_out(e))
            .map(|e| (e.id.clone(), e.payload.as_bytes().to_vec()))
            .collect();
        if big.is_empty() {
            return Uploads::default();
        }
        let to = to.clone();
        let mut puts = tokio::task::JoinSet::new();
        for (id, bytes) in big {
            let to = to.clone();
            puts.spawn(async move {
                let put = async {
                    let (digest, bytes) =
                        tokio::task::spawn_blocking(move || (digest_of(&bytes), bytes))
                            .await
                            .map_err(|e| format!("payload digest: {e}"))?;
                    let at = BlobRef {
                        key: key_of(&id),
                        size: bytes.len() as i64,
                        digest,
                    };
                    to.blobs
                        .put(&at.key, bytes)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(at)
                };
                let done = put.await;
                (id, done)
            });
        }
        Uploads {
            running: Some(tokio::spawn(async move {
                let mut done = Vec::new();
                while let Some(put) = puts.join_next().await {
                    if let Ok(put) = put {
                        done.push(put);
                    }
                }
                done
            })),
        }
    }

    /// Whether nothing was started.
    pub fn is_empty(&self) -> bool {
        self.running.is_none()
    }

    /// Waits (at most [`UPLOAD_WAIT`]) until the payloads are in the object store: where each
    /// is, by event id. A payload whose upload failed or did not answer in time is left out, to
    /// be stored as it would be without an object store (logged): an object store that is
    /// down or slow must not stop the journal, whose commits wait for this one.
    pub async fn durable(self) -> HashMap<String, BlobRef> {
        let Some(running) = self.running else {
            return HashMap::new();
        };
        let done = match tokio::time::timeout(UPLOAD_WAIT, running).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                tracing::warn!(cause = %e, "event payload uploads stopped; the payloads go to the database");
                return HashMap::new();
            }
            Err(_) => {
                tracing::warn!(
                    wait_s = UPLOAD_WAIT.as_secs(),
                    "event payload uploads did not finish in time; the payloads go to the database"
                );
                return HashMap::new();
            }
        };
        let mut refs = HashMap::new();
        for (id, put) in done {
            match put {
                Ok(at) => {
                    refs.insert(id, at);
                }
                Err(e) => tracing::warn!(
                    event_id = %id,
                    cause = %e,
                    "cannot store the event's payload in the object store; it goes to the database"
                ),
            }
        }
        refs
    }
}

/// Fills in `event`'s payload from the object store when its row points there (`row` is the
/// event's whole row); a payload that cannot be had is an error naming the event and the key.
pub(crate) async fn fill(
    from: Option<&PayloadBlobs>,
    row: &impl Cols,
    event: &mut EventRecord,
) -> StoreResult<()> {
    let Some(key) = row.opt_text("payload_key")? else {
        return Ok(());
    };
    let id = &event.id;
    let size = row.opt_int("payload_size")?.unwrap_or(-1);
    let digest = row.opt_text("payload_digest")?.unwrap_or_default();
    let Some(from) = from else {
        return Err(StoreError::Corrupt(format!(
            "event {id}: its payload is in an object store as {key}, but this server has none \
             configured (GANTRY_BLOB_URL)"
        )));
    };
    let where_ = from.blobs.describe();
    let bytes = from
        .blobs
        .get(&key)
        .await
        .map_err(|e| StoreError::Database(format!("event {id}: cannot read its payload: {e}")))?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "event {id}: its payload {key} is missing from the object store {where_}"
            ))
        })?;
    let (got, bytes) = tokio::task::spawn_blocking(move || (digest_of(&bytes), bytes))
        .await
        .map_err(|e| StoreError::Database(format!("payload digest: {e}")))?;
    if bytes.len() as i64 != size || got != digest {
        return Err(StoreError::Corrupt(format!(
            "event {id}: its payload {key} in the object store {where_} is not the one stored \
             ({} bytes, {got}; the event's row says {size} bytes, {digest})",
            bytes.len()
        )));
    }
    event.payload = String::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt(format!("event {id}: its payload {key} is not UTF-8")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_the_event_id_or_its_hex() {
        assert_eq!(
            super::key_of("01JD8X3QK4W5T6Y7Z8A9B0C1D2"),
            "events/01JD8X3QK4W5T6Y7Z8A9B0C1D2.json"
        );
        assert_eq!(super::key_of("ev-big"), "events/ev-big.json");
        assert_eq!(super::key_of("../x"), "events/x2e2e2f78.json");
    }
}

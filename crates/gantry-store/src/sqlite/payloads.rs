//! Large event payloads on the SQLite store: written to a segment (`crate::segments`) while
//! the batch's transaction runs, durable before it commits, read back with their row.

use crate::payload_blobs::PayloadBlobs;
use crate::rows::{db, event_from_row};
use crate::segments::{Location, SEGMENT_MIN_BYTES, Segments};
use gantry_engine::ports::{EventRecord, StoreError, StoreResult};
use sqlx::Row;

/// A batch's payloads, being written: where each event's payload goes (`None`: in its row).
pub(crate) struct Payloads {
    pub places: Vec<Option<Location>>,
    written: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Payloads {
    /// Starts writing the large payloads of `events` (in order) to a segment, but for those
    /// of `blob_min` bytes or more (they go to the object store).
    pub fn start(
        segments: &Segments,
        events: &[&EventRecord],
        blob_min: Option<usize>,
    ) -> StoreResult<Payloads> {
        let big = |e: &EventRecord| {
            e.payload.len() >= SEGMENT_MIN_BYTES && blob_min.is_none_or(|m| e.payload.len() < m)
        };
        let lens: Vec<usize> = events
            .iter()
            .filter(|e| big(e))
            .map(|e| e.payload.len())
            .collect();
        if lens.is_empty() {
            return Ok(Payloads {
                places: vec![None; events.len()],
                written: None,
            });
        }
        let mut buf = Vec::with_capacity(lens.iter().sum());
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for e in events.iter().filter(|e| big(e)) {
            buf.extend_from_slice(e.payload.as_bytes());
            first = first.min(e.received_at_ms);
            last = last.max(e.received_at_ms);
        }
        let (at, reserved) = segments
            .reserve(&lens, (first, last))
            .map_err(|e| StoreError::Database(format!("cannot open a payload segment: {e}")))?;
        let mut at = at.into_iter();
        Ok(Payloads {
            places: events
                .iter()
                .map(|e| if big(e) { at.next() } else { None })
                .collect(),
            written: Some(tokio::task::spawn_blocking(move || reserved.write(&buf))),
        })
    }

    /// Waits until the payloads are durable.
    pub async fn durable(self) -> StoreResult<()> {
        match self.written {
            None => Ok(()),
            Some(w) => w
                .await
                .map_err(|e| StoreError::Database(format!("payload writer stopped: {e}")))?
                .map_err(|e| StoreError::Database(format!("cannot write event payloads: {e}"))),
        }
    }
}

/// An event row with its payload, read from its segment or the object store when it is not
/// in the row.
pub(crate) async fn event_with_payload(
    segments: &std::sync::Arc<Segments>,
    blobs: Option<&PayloadBlobs>,
    row: &sqlx::sqlite::SqliteRow,
) -> StoreResult<EventRecord> {
    let mut event = event_from_row(row, true)?;
    crate::payload_blobs::fill(blobs, row, &mut event).await?;
    let segment: Option<i64> = row.try_get("payload_segment").map_err(db)?;
    if let Some(segment) = segment {
        let at = Location {
            segment,
            offset: row.try_get("payload_offset").map_err(db)?,
            len: row.try_get("payload_len").map_err(db)?,
        };
        let segs = segments.clone();
        let bytes = tokio::task::spawn_blocking(move || segs.read(at))
            .await
            .map_err(|e| StoreError::Database(format!("payload reader stopped: {e}")))?
            .map_err(|e| {
                StoreError::Corrupt(format!("event {}: payload unreadable: {e}", event.id))
            })?;
        event.payload = String::from_utf8(bytes).map_err(|_| {
            StoreError::Corrupt(format!("event {}: payload is not UTF-8", event.id))
        })?;
    }
    Ok(event)
}

/// Runs blocking segment file work off the async threads; `what` names it in errors.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Database(format!("cannot {what}: {e}")))?
        .map_err(|e| StoreError::Database(format!("cannot {what}: {e}")))
}

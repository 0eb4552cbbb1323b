//! Payload segments: large event payloads are written once, appended to a segment file beside
//! the database, instead of into SQLite (where each would be written twice, to the WAL and
//! again at the checkpoint). The event's row keeps only where its payload is.
//!
//! A batch's payloads are written in one write and made durable (`fdatasync`) before the
//! transaction that points at them commits (the write runs while the transaction's statements
//! do), so a committed row always finds its payload.
//! A crash in between leaves bytes no row points at, which are harmless. Segments rotate every
//! hour (or at 256 MiB); retention deletes a whole file once no row points into it.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Payloads at least this long go to a segment; shorter ones stay in their row.
pub(crate) const SEGMENT_MIN_BYTES: usize = 1024;
const ROTATE_AFTER_MS: i64 = 3_600_000;
const ROTATE_AFTER_BYTES: u64 = 256 << 20;

/// Where a payload is: segment (its start time, ms), offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub segment: i64,
    pub offset: i64,
    pub len: i64,
}

#[derive(Debug)]
pub(crate) struct Segments {
    dir: PathBuf,
    current: Mutex<Option<Open>>,
}

#[derive(Debug)]
struct Open {
    started_ms: i64,
    file: std::sync::Arc<File>,
    /// Reserved so far (written, or being written).
    len: u64,
}

/// Room reserved in a segment.
#[derive(Debug)]
pub(crate) struct Reserved {
    file: std::sync::Arc<File>,
    offset: u64,
}

impl Reserved {
    /// Writes the reserved payloads (concatenated) and makes them durable. A failed write
    /// leaves a hole no committed row points into.
    pub(crate) fn write(self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(buf, self.offset)?;
        self.file.sync_data()
    }
}

impl Segments {
    pub(crate) fn new(dir: PathBuf) -> Segments {
        Segments {
            dir,
            current: Mutex::new(None),
        }
    }

    fn path(&self, segment: i64) -> PathBuf {
        self.dir.join(format!("{segment}.seg"))
    }

    /// Reserves room for payloads of lengths `lens`, received between `first_ms` and
    /// `last_ms`: their locations, and the place to write them with [`Reserved::write`].
    /// Reservations never overlap, so their writes may run while the next is reserved.
    pub(crate) fn reserve(
        &self,
        lens: &[usize],
        (first_ms, last_ms): (i64, i64),
    ) -> std::io::Result<(Vec<Location>, Reserved)> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // A segment holds payloads received within about an hour, and at most 256 MiB, so
        // old ones stop being written and can be deleted.
        let rotate = current.as_ref().is_none_or(|o| {
            last_ms - o.started_ms >= ROTATE_AFTER_MS || o.len >= ROTATE_AFTER_BYTES
        });
        if rotate {
            *current = Some(self.open_new(first_ms, current.as_ref().map(|o| o.started_ms))?);
        }
        let open = current.as_mut().expect("opened above");
        let start = open.len;
        let mut out = Vec::with_capacity(lens.len());
        for len in lens {
            out.push(Location {
                segment: open.started_ms,
                offset: open.len as i64,
                len: *len as i64,
            });
            open.len += *len as u64;
        }
        Ok((
            out,
            Reserved {
                file: open.file.clone(),
                offset: start,
            },
        ))
    }

    /// A new segment, named by `now_ms` (after the previous one, so names stay unique).
    fn open_new(&self, now_ms: i64, previous: Option<i64>) -> std::io::Result<Open> {
        std::fs::create_dir_all(&self.dir)?;
        let started_ms = previous.map_or(now_ms, |p| now_ms.max(p + 1));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path(started_ms))?;
        let len = file.metadata()?.len();
        // The new name must be durable too, or a crash could lose the whole file.
        File::open(&self.dir)?.sync_all()?;
        Ok(Open {
            started_ms,
            file: std::sync::Arc::new(file),
            len,
        })
    }

    pub(crate) fn read(&self, at: Location) -> std::io::Result<Vec<u8>> {
        let file = File::open(self.path(at.segment))?;
        let mut buf = vec![0; at.len as usize];
        file.read_exact_at(&mut buf, at.offset as u64)?;
        Ok(buf)
    }

    /// The segment being written, if any.
    fn current_started(&self) -> Option<i64> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|o| o.started_ms)
    }

    /// The segments on disk and the one being written, for [`Segments::remove_unreferenced`].
    pub(crate) fn snapshot(&self) -> std::io::Result<Snapshot> {
        let current = self.current_started();
        let mut names = Vec::new();
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    if let Some(n) = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".seg"))
                        .and_then(|n| n.parse::<i64>().ok())
                    {
                        names.push(n);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Snapshot { names, current })
    }

    /// Deletes the segments of `snap` that no row pointed into (`referenced`, read in the same
    /// transaction as `snap` was taken). Segments written since, and the ones being written
    /// then and now, are kept: a segment stops being written only after the rows pointing into
    /// it have committed, so any other unreferenced segment can have no row.
    pub(crate) fn remove_unreferenced(
        &self,
        snap: &Snapshot,
        referenced: &std::collections::HashSet<i64>,
    ) -> std::io::Result<usize> {
        let now = self.current_started();
        let mut removed = 0;
        for n in &snap.names {
            if referenced.contains(n) || Some(*n) == snap.current || Some(*n) == now {
                continue;
            }
            match std::fs::remove_file(self.path(*n)) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// What [`Segments::snapshot`] saw.
#[derive(Debug)]
pub(crate) struct Snapshot {
    names: Vec<i64>,
    current: Option<i64>,
}

/// The segment folder for the database at `db_path`.
pub(crate) fn dir_for(db_path: &Path) -> PathBuf {
    db_path.with_extension("payloads")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_reads_rotates_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::new(dir.path().join("p"));
        let append = |s: &Segments, buf: &[u8], lens: &[usize], at: i64| {
            let (locs, r) = s.reserve(lens, (at, at)).unwrap();
            r.write(buf).unwrap();
            locs
        };
        let a = append(&s, b"onesecond", &[3, 6], 1_000);
        assert_eq!(a[1].offset, 3);
        assert_eq!(s.read(a[0]).unwrap(), b"one");
        assert_eq!(s.read(a[1]).unwrap(), b"second");
        // An hour later a new segment starts; the old one stays readable.
        let late = 1_000 + ROTATE_AFTER_MS;
        let b = append(&s, b"three", &[5], late);
        assert_ne!(b[0].segment, a[0].segment);
        assert_eq!(s.read(a[1]).unwrap(), b"second");
        // Reopened (a restart), appends go on after what is there.
        let s2 = Segments::new(dir.path().join("p"));
        let c = append(&s2, b"four", &[4], 1_000);
        assert_eq!(c[0].segment, 1_000);
        assert_eq!(c[0].offset, 9);
        assert_eq!(s2.read(c[0]).unwrap(), b"four");
        // Only segments no row points into go, never the one being written.
        let snap = s.snapshot().unwrap();
        let none = std::collections::HashSet::new();
        assert_eq!(s.remove_unreferenced(&snap, &none).unwrap(), 1);
        assert!(s.read(a[0]).is_err());
        assert_eq!(s.read(b[0]).unwrap(), b"three");
        let keep_b: std::collections::HashSet<i64> = [b[0].segment].into();
        let snap = s2.snapshot().unwrap();
        assert_eq!(s2.remove_unreferenced(&snap, &keep_b).unwrap(), 0);
        assert_eq!(s.read(b[0]).unwrap(), b"three");
    }
}

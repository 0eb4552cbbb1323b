//! Job logs: one append-only file per run (`logs/<run>.log`), holding the output of every
//! attempt of every job of that run as frames. Appending never creates a file per attempt (on
//! a busy disk creating inodes is what a small job costs most), and an attempt's log is read
//! back by walking the frames, skipping other attempts' payloads without reading them.
//!
//! A frame is `0xA7, name length (u16 LE), attempt (u32 LE), payload length (u32 LE), name,
//! payload`. Writers of one run share a lock, so frames never interleave; a frame cut short by
//! a crash is dropped when the file is next opened for writing in a new process, so later
//! frames stay readable.
//!
//! An attempt's output is kept up to the log limit (64 MiB unless configured); what the job
//! writes past it is dropped, and the log says so once. The engine's own notes are always
//! written. Readers stream: [`Logs::reader`] walks the frames a frame at a time, so reading a
//! log costs a buffer, not the log's size.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

const MAGIC: u8 = 0xA7;
const HEADER: usize = 11;
/// Output is cut into frames of at most this many bytes.
const MAX_FRAME: usize = 64 * 1024;
/// How much of its output an attempt's log keeps unless configured otherwise.
pub const DEFAULT_LOG_LIMIT: u64 = 64 << 20;

/// Every run's log file under one folder; cheap to clone.
#[derive(Debug, Clone)]
pub struct Logs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Bytes of output each attempt's log keeps.
    limit: u64,
    /// Run logs open for writing, by run id: held open while the run is active (`Some`), and
    /// reachable while any attempt's writer is alive, so there is one writer per file.
    open: Mutex<HashMap<String, Open>>,
}

/// A run log any live writer can reach, and the engine's hold on it while the run is active.
type Open = (Weak<RunLog>, Option<Arc<RunLog>>);

/// Released entries are swept out of the map once it holds this many.
const SWEEP_AT: usize = 256;

/// One run's log file, open for appending.
#[derive(Debug)]
struct RunLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

/// Where one attempt writes its output (clones write to the same log, and share its limit).
#[derive(Debug, Clone)]
pub struct AttemptLog {
    run: Arc<RunLog>,
    job: Arc<str>,
    attempt: u32,
    limit: u64,
    /// Output bytes written so far, by this writer and its clones.
    written: Arc<AtomicU64>,
}

impl Logs {
    /// Logs that keep up to [`DEFAULT_LOG_LIMIT`] of each attempt's output.
    pub fn new(dir: impl Into<PathBuf>) -> Logs {
        Logs::with_limit(dir, DEFAULT_LOG_LIMIT)
    }

    /// Logs that keep up to `limit` bytes of each attempt's output.
    pub fn with_limit(dir: impl Into<PathBuf>, limit: u64) -> Logs {
        Logs {
            inner: Arc::new(Inner {
                dir: dir.into(),
                limit,
                open: Mutex::default(),
            }),
        }
    }

    /// Bytes of output each attempt's log keeps.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// The file holding every attempt's output of the run.
    pub fn path(&self, run_id: &str) -> PathBuf {
        self.inner.dir.join(format!("{run_id}.log"))
    }

    /// The writer for one attempt. The run's file is created by the first write.
    pub fn attempt(&self, run_id: &str, job: &str, attempt: u32) -> AttemptLog {
        let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        let live = open.get(run_id).and_then(|(weak, _)| weak.upgrade());
        let run = match live {
            Some(run) => run,
            None => {
                if open.len() >= SWEEP_AT {
                    open.retain(|_, (weak, held)| held.is_some() || weak.strong_count() > 0);
                }
                let run = Arc::new(RunLog {
                    path: self.path(run_id),
                    file: Mutex::new(None),
                });
                open.insert(
                    run_id.to_string(),
                    (Arc::downgrade(&run), Some(run.clone())),
                );
                run
            }
        };
        AttemptLog {
            run,
            job: job.into(),
            attempt,
            limit: self.inner.limit,
            written: Arc::default(),
        }
    }

    /// Closes the run's file once its attempts' writers are gone (a later attempt reopens it).
    pub fn release(&self, run_id: &str) {
        let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, held)) = open.get_mut(run_id) {
            *held = None;
        }
    }

    /// An attempt's whole log in memory (empty when it wrote nothing). For small logs and
    /// tests; serving a log goes through [`Logs::reader`].
    pub fn read(&self, run_id: &str, job: &str, attempt: u32) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.reader(run_id, job, attempt)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// An attempt's log as it is now, read a frame at a time: what it costs is a buffer, not
    /// the log's size. Output appended after this call is not part of it.
    pub fn reader(&self, run_id: &str, job: &str, attempt: u32) -> std::io::Result<AttemptReader> {
        AttemptReader::open(&self.path(run_id), job, attempt)
    }

    /// The attempt's output in the whole frames from `offset` on, at most about `max` bytes
    /// of it (one frame more at most), and the offset to continue from (for following a live
    /// log).
    pub fn read_from(
        &self,
        run_id: &str,
        job: &str,
        attempt: u32,
        offset: u64,
        max: usize,
    ) -> std::io::Result<(Vec<u8>, u64)> {
        read_attempt(&self.path(run_id), job, attempt, offset, max)
    }

    /// The attempts a run's log file holds output of, in the order they first wrote (none
    /// when there is no file).
    pub fn attempts(&self, run_id: &str) -> std::io::Result<Vec<(String, u32)>> {
        let file = match File::open(self.path(run_id)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let seen = std::cell::RefCell::new(Vec::<(String, u32)>::new());
        walk(file, 0, &mut Vec::new(), 0, usize::MAX, |name, at| {
            let name = String::from_utf8_lossy(name);
            let mut seen = seen.borrow_mut();
            if !seen.iter().any(|(n, a)| *n == name && *a == at) {
                seen.push((name.into_owned(), at));
            }
            false
        })?;
        Ok(seen.into_inner())
    }

    /// The last `lines` lines of an attempt's log (from at most its last 256 KiB).
    pub fn tail(&self, run_id: &str, job: &str, attempt: u32, lines: usize) -> Option<String> {
        const WINDOW: usize = 256 * 1024;
        let file = File::open(self.path(run_id)).ok()?;
        let mut bytes = Vec::new();
        walk(file, 0, &mut bytes, WINDOW, usize::MAX, |name, at| {
            name == job.as_bytes() && at == attempt
        })
        .ok()?;
        if bytes.len() > WINDOW {
            bytes.drain(..bytes.len() - WINDOW);
        }
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        Some(all[all.len().saturating_sub(lines)..].join("\n"))
    }
}

impl AttemptLog {
    /// What this attempt has written so far.
    pub fn contents(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        AttemptReader::open(&self.run.path, &self.job, self.attempt)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Whether the attempt's output has reached the log limit: what it writes now is dropped
    /// (a copier may skip its work on it).
    pub fn is_cut(&self) -> bool {
        self.written.load(Ordering::Relaxed) >= self.limit
    }

    /// Appends the job's output to the attempt's log, up to the log limit: the output that
    /// passes it is dropped, and the log says so once. Never fails for the limit, so a copier
    /// keeps draining the job's output and the job runs on.
    pub fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        let len = bytes.len() as u64;
        let before = self.written.fetch_add(len, Ordering::Relaxed);
        if before >= self.limit {
            return Ok(()); // cut before: already said
        }
        let room = self.limit - before;
        if len <= room {
            return self.write_frames(bytes);
        }
        self.write_frames(&bytes[..room as usize])?;
        self.write_frames(
            format!(
                "\ngantry: log cut at {}; the job's further output was dropped\n",
                gantry_core::size::format_bytes(self.limit)
            )
            .as_bytes(),
        )
    }

    /// Appends a line the engine writes itself (a note, a reason), on a line of its own; not
    /// counted against the log limit, and never dropped.
    pub fn note(&self, line: &str) {
        let _ = self.write_frames(format!("{line}\n").as_bytes());
    }

    /// Appends bytes to the attempt's log, as one or more whole frames.
    fn write_frames(&self, mut bytes: &[u8]) -> std::io::Result<()> {
        let mut file = self.run.file.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_none() {
            *file = Some(open_for_append(&self.run.path)?);
        }
        let Some(f) = file.as_mut() else {
            unreachable!("opened above")
        };
        let mut frame = Vec::with_capacity(HEADER + self.job.len() + bytes.len().min(MAX_FRAME));
        while !bytes.is_empty() {
            let (chunk, rest) = bytes.split_at(bytes.len().min(MAX_FRAME));
            frame.clear();
            frame.push(MAGIC);
            frame.extend_from_slice(&(self.job.len() as u16).to_le_bytes());
            frame.extend_from_slice(&self.attempt.to_le_bytes());
            frame.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            frame.extend_from_slice(self.job.as_bytes());
            frame.extend_from_slice(chunk);
            f.write_all(&frame)?;
            bytes = rest;
        }
        Ok(())
    }
}

impl Write for AttemptLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.append(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn read_attempt(
    path: &Path,
    job: &str,
    attempt: u32,
    offset: u64,
    max: usize,
) -> std::io::Result<(Vec<u8>, u64)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let end = walk(file, offset, &mut out, usize::MAX, max, |name, at| {
        name == job.as_bytes() && at == attempt
    })?;
    Ok((out, end))
}

/// One attempt's log read from its run's file a frame at a time ([`Logs::reader`]): the
/// frames whole when it was opened, the other attempts' payloads skipped unread.
#[derive(Debug)]
pub struct AttemptReader {
    /// `None` when the run has no log file yet.
    r: Option<BufReader<File>>,
    /// The file's length when opened: a frame that does not end by then (cut short by a crash,
    /// or being written) ends the log.
    end: u64,
    pos: u64,
    job: Vec<u8>,
    attempt: u32,
    /// Payload bytes of the current frame not yet read out.
    left: u64,
    name: Vec<u8>,
}

impl AttemptReader {
    fn open(path: &Path, job: &str, attempt: u32) -> std::io::Result<AttemptReader> {
        let file = match File::open(path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let end = match &file {
            Some(f) => f.metadata()?.len(),
            None => 0,
        };
        Ok(AttemptReader {
            r: file.map(|f| BufReader::with_capacity(64 * 1024, f)),
            end,
            pos: 0,
            job: job.as_bytes().to_vec(),
            attempt,
            left: 0,
            name: Vec::new(),
        })
    }
}

impl Read for AttemptReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(r) = self.r.as_mut() else {
            return Ok(0);
        };
        while self.left == 0 {
            let mut header = [0u8; HEADER];
            if self.pos + HEADER as u64 > self.end
                || !read_full(r, &mut header)?
                || header[0] != MAGIC
            {
                self.r = None;
                return Ok(0);
            }
            let name_len = u16::from_le_bytes([header[1], header[2]]) as usize;
            let attempt = u32::from_le_bytes(header[3..7].try_into().expect("4 bytes"));
            let len = u64::from(u32::from_le_bytes(
                header[7..11].try_into().expect("4 bytes"),
            ));
            let frame_end = self.pos + (HEADER + name_len) as u64 + len;
            self.name.resize(name_len, 0);
            if frame_end > self.end || !read_full(r, &mut self.name)? {
                self.r = None;
                return Ok(0);
            }
            self.pos = frame_end;
            if self.name == self.job && attempt == self.attempt {
                self.left = len;
            } else {
                r.seek_relative(len as i64)?;
            }
        }
        let n = (buf.len() as u64).min(self.left) as usize;
        let n = r.read(&mut buf[..n])?;
        if n == 0 {
            // The file shrank under us (a sweep): what was read stands.
            self.r = None;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Opens (creating it and its folder if need be) a run's log for appending; a frame left cut
/// short by an earlier process is dropped first. (No other writer of this process has the
/// file open: `Logs::attempt` keeps one `RunLog` per file while any writer lives.)
fn open_for_append(path: &Path) -> std::io::Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .create(true)
            .append(true)
            .open(path)
    };
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()?
        }
        other => other?,
    };
    let len = file.metadata()?.len();
    if len > 0 {
        let whole = walk(
            file.try_clone()?,
            0,
            &mut Vec::new(),
            0,
            usize::MAX,
            |_, _| false,
        )?;
        if whole < len {
            file.set_len(whole)?;
        }
    }
    Ok(file)
}

/// Walks the frames from `offset`, appending to `out` the payload of each frame whose job name
/// and attempt `wanted` accepts (other payloads are skipped unread), until `out` holds
/// `stop_at` bytes or more. Returns the offset just past the last whole frame walked. Only
/// about the last `keep` bytes are kept in `out`.
fn walk(
    file: File,
    offset: u64,
    out: &mut Vec<u8>,
    keep: usize,
    stop_at: usize,
    wanted: impl Fn(&[u8], u32) -> bool,
) -> std::io::Result<u64> {
    let file_len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(64 * 1024, file);
    r.seek(SeekFrom::Start(offset))?;
    let mut pos = offset;
    let mut header = [0u8; HEADER];
    let mut name = Vec::new();
    loop {
        if out.len() >= stop_at || !read_full(&mut r, &mut header)? || header[0] != MAGIC {
            return Ok(pos);
        }
        let name_len = u16::from_le_bytes([header[1], header[2]]) as usize;
        let attempt = u32::from_le_bytes(header[3..7].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(header[7..11].try_into().expect("4 bytes"));
        name.resize(name_len, 0);
        if !read_full(&mut r, &mut name)? {
            return Ok(pos);
        }
        if wanted(&name, attempt) {
            let start = out.len();
            out.resize(start + len as usize, 0);
            if !read_full(&mut r, &mut out[start..])? {
                out.truncate(start);
                return Ok(pos);
            }
            if out.len() > keep.saturating_mul(2) {
                out.drain(..out.len() - keep);
            }
        } else {
            if pos + ((HEADER + name_len) as u64) + u64::from(len) > file_len {
                return Ok(pos);
            }
            r.seek_relative(i64::from(len))?;
        }
        pos += (HEADER + name_len) as u64 + u64::from(len);
    }
}

/// Fills `buf`; false if the file ends first.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_read_back_apart_and_a_cut_frame_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::new(dir.path().join("logs"));
        let a1 = logs.attempt("r1", "a", 1);
        let b1 = logs.attempt("r1", "b", 1);
        a1.append(b"one\n").unwrap();
        b1.append(b"other\n").unwrap();
        a1.append(b"two\n").unwrap();
        let big = vec![b'x'; MAX_FRAME * 2 + 5];
        b1.append(&big).unwrap();
        logs.attempt("r1", "a", 2).note("retry");
        assert_eq!(logs.read("r1", "a", 1).unwrap(), b"one\ntwo\n");
        assert_eq!(logs.read("r1", "a", 2).unwrap(), b"retry\n");
        let mut want = b"other\n".to_vec();
        want.extend_from_slice(&big);
        assert_eq!(logs.read("r1", "b", 1).unwrap(), want);
        assert_eq!(logs.read("r1", "c", 1).unwrap(), b"");
        assert_eq!(logs.read("nope", "a", 1).unwrap(), b"");

        // Following: only what came after the offset.
        let (_, end) = logs.read_from("r1", "a", 1, 0, usize::MAX).unwrap();
        a1.append(b"three\n").unwrap();
        assert_eq!(
            logs.read_from("r1", "a", 1, end, usize::MAX).unwrap().0,
            b"three\n"
        );

        // A crash cut the last frame short: readers stop before it; a new process's first
        // write drops it, and what it writes after is readable.
        drop((a1, b1));
        logs.release("r1");
        let path = logs.path("r1");
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().append(true).open(&path).unwrap();
        (&f).write_all(&[MAGIC, 1, 0, 1, 0, 0, 0, 9, 0, 0, 0, b'a', b'z'])
            .unwrap();
        assert_eq!(logs.read("r1", "a", 1).unwrap(), b"one\ntwo\nthree\n");
        let again = Logs::new(dir.path().join("logs"));
        again.attempt("r1", "a", 1).append(b"four\n").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            len + (HEADER + 1 + 5) as u64
        );
        assert_eq!(
            again.read("r1", "a", 1).unwrap(),
            b"one\ntwo\nthree\nfour\n"
        );
        assert_eq!(again.tail("r1", "a", 1, 2).unwrap(), "three\nfour");
    }

    #[test]
    fn output_past_the_limit_is_dropped_and_the_log_says_so_once() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::with_limit(dir.path(), 10 << 10);
        let a = logs.attempt("r", "a", 1);
        let copier = a.clone(); // clones share the count
        a.note("$ make");
        for _ in 0..10 {
            copier.append(&[b'x'; 1500]).unwrap();
        }
        assert!(a.is_cut());
        a.note("gantry: exit 0");
        let log = String::from_utf8(logs.read("r", "a", 1).unwrap()).unwrap();
        let cut = "\ngantry: log cut at 10 KiB; the job's further output was dropped\n";
        assert_eq!(
            log,
            format!("$ make\n{}{cut}gantry: exit 0\n", "x".repeat(10 << 10))
        );
        // Another attempt has its own allowance.
        logs.attempt("r", "a", 2).append(b"fresh\n").unwrap();
        assert_eq!(logs.read("r", "a", 2).unwrap(), b"fresh\n");
        assert_eq!(Logs::new(dir.path()).limit(), 64 << 20);
    }

    #[test]
    fn a_reader_streams_one_attempt_in_small_reads_and_stops_at_a_cut_frame() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::new(dir.path());
        let (a, b) = (logs.attempt("r", "a", 1), logs.attempt("r", "b", 1));
        let mut want = Vec::new();
        for i in 0..50u8 {
            let chunk = vec![b'a' + i % 26; MAX_FRAME + usize::from(i) * 997];
            a.append(&chunk).unwrap();
            b.append(b"other attempt\n").unwrap();
            want.extend_from_slice(&chunk);
        }
        let mut got = Vec::new();
        let mut reader = logs.reader("r", "a", 1).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == want, "{} bytes, wanted {}", got.len(), want.len());
        // Output appended after opening is not part of it; a frame cut short ends it.
        let mut reader = logs.reader("r", "a", 1).unwrap();
        a.append(b"later").unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), want.len());
        let f = OpenOptions::new()
            .append(true)
            .open(logs.path("r"))
            .unwrap();
        (&f).write_all(&[MAGIC, 1, 0, 1, 0, 0, 0, 9, 0, 0, 0, b'a', b'z'])
            .unwrap();
        let tail = logs.read("r", "a", 1).unwrap();
        assert!(tail.ends_with(b"later"), "the cut frame is left out");
        assert!(logs.read("none", "a", 1).unwrap().is_empty());
        // Following: a bounded amount at a time, whole frames, in order.
        let (mut offset, mut followed) = (0, Vec::new());
        loop {
            let (chunk, next) = logs.read_from("r", "a", 1, offset, 100 << 10).unwrap();
            assert!(chunk.len() < (100 << 10) + MAX_FRAME);
            if next == offset {
                break;
            }
            followed.extend_from_slice(&chunk);
            offset = next;
        }
        assert!(followed == tail);
    }
}

//! A job's output on its way to the attempt's log: the job writes into a pipe (stdout and
//! stderr share it, so their lines stay interleaved as written) and a copier task appends what
//! arrives to the log, masking each line first when the job has secrets. Output past the log
//! limit is still read (the job must not block on a full pipe) but neither masked nor kept.
//!
//! A secret's form may be wrapped onto the next line (base64 at 76 columns): a line that ends
//! where a form may begin is held back until the next line comes (or [`HOLD`] passes), and
//! what was written last is kept so that a form begun there is masked where it goes on.

use gantry_core::secret::Masker;
use gantry_engine::logs::AttemptLog;
use std::io::{PipeWriter, Write};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A line longer than this is masked and written without waiting for its end.
const MAX_PENDING: usize = 64 * 1024;
/// How long a line held back waits for the next before it is written anyway (a job that
/// pauses mid-line of a wrapped form then shows that line's part of it unmasked).
pub const HOLD: Duration = Duration::from_millis(200);

/// Our end of a job's output pipe, known to the reactor.
pub struct Output(tokio::net::unix::pipe::Receiver);

/// A new output pipe: the write end to give the job (as its stdout and stderr), and ours.
/// Both ends are close-on-exec; only ours is non-blocking (the job writes to a blocking pipe,
/// as to a terminal).
pub fn pipe() -> std::io::Result<(PipeWriter, Output)> {
    let (reader, writer) = std::io::pipe()?;
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())?;
    Ok((writer, Output(reader)))
}

impl Output {
    /// Starts copying what arrives into `log`; the copy ends when every write end is closed.
    pub fn copy_into(self, log: AttemptLog, masker: Masker) -> tokio::task::JoinHandle<()> {
        tokio::spawn(copy(self.0, log, masker))
    }
}

async fn copy(mut from: impl tokio::io::AsyncRead + Unpin, mut to: AttemptLog, masker: Masker) {
    // Read into spare capacity: nothing to zero first.
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut out = (!masker.is_empty()).then(|| LineMasker::new(to.clone(), masker));
    loop {
        buf.clear();
        let read = match out.as_mut().filter(|m| m.holds_lines()) {
            // `read_buf` is cancel-safe: nothing read is lost when the wait ends first.
            Some(masked) => match tokio::time::timeout(HOLD, from.read_buf(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    masked.flush_held();
                    continue;
                }
            },
            None => from.read_buf(&mut buf).await,
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if to.is_cut() {
            continue;
        }
        match out.as_mut() {
            Some(masked) => masked.write(&buf),
            None => {
                let _ = to.write_all(&buf);
            }
        }
    }
    if let Some(masked) = out {
        masked.finish();
    }
}

/// Writes output to a log a line at a time, each line masked.
pub struct LineMasker<W: Write = AttemptLog> {
    to: W,
    masker: Masker,
    /// Output not written yet: a whole line held back (it may end where a form of a secret
    /// begins that goes on in the next), then a line not ended yet.
    pending: Vec<u8>,
    /// The end of what was written last, unmasked: a form begun there is masked where it goes
    /// on.
    written: Vec<u8>,
}

impl<W: Write> LineMasker<W> {
    pub fn new(to: W, masker: Masker) -> LineMasker<W> {
        LineMasker {
            to,
            masker,
            pending: Vec::new(),
            written: Vec::new(),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') else {
            if self.pending.len() > MAX_PENDING {
                self.emit(self.pending.len());
            }
            return;
        };
        let last = self.pending[..end].iter().rposition(|b| *b == b'\n');
        let last_line = last.map_or(0, |i| i + 1);
        if self.masker.may_continue(&self.pending[last_line..=end])
            && self.pending.len() <= MAX_PENDING
        {
            self.emit(last_line);
        } else {
            self.emit(end + 1);
        }
    }

    /// Whether a whole line is held back, waiting for the next.
    pub fn holds_lines(&self) -> bool {
        self.pending.contains(&b'\n')
    }

    /// Writes the lines held back without waiting any longer for the next.
    pub fn flush_held(&mut self) {
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.emit(end + 1);
        }
    }

    /// Writes the first `n` pending bytes, masked.
    fn emit(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let out = self.masker.mask_after(&self.written, &self.pending[..n]);
        let _ = self.to.write_all(&out);
        // Enough of it for the longest form as the text may spell it (escapes, line breaks).
        let keep = 4 * self.masker.longest();
        self.written.extend_from_slice(&self.pending[..n]);
        if self.written.len() > keep {
            self.written.drain(..self.written.len() - keep);
        }
        self.pending.drain(..n);
    }

    /// Writes what is left (a last line without its newline); returns the writer.
    pub fn finish(mut self) -> W {
        self.emit(self.pending.len());
        self.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_masked_even_when_split_across_reads() {
        let masker = Masker::new(["hunter22"]);
        let mut out = LineMasker::new(Vec::new(), masker);
        // Three bytes at a time, so the secret is split across writes.
        for piece in b"pw=hunter22\nagain hunter22 end".chunks(3) {
            out.write(piece);
        }
        assert_eq!(out.to.as_slice(), b"pw=***\n", "whole lines go out at once");
        assert_eq!(out.finish(), b"pw=***\nagain *** end");
    }

    #[test]
    fn base64_wrapped_across_writes_is_masked_and_ordinary_lines_go_out_at_once() {
        use base64::Engine as _;
        let secret = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("token={secret}\nuser=ci\n"));
        // Wrapped so that the value's base64 spans two lines, each line written on its own.
        let lines: Vec<&str> = vec![&encoded[..20], &encoded[20..]];
        let mut out = LineMasker::new(Vec::new(), Masker::new([secret]));
        out.write(b"ordinary line\n");
        assert_eq!(out.to.as_slice(), b"ordinary line\n", "not held back");
        out.write(format!("{}\n", lines[0]).as_bytes());
        assert!(
            out.holds_lines(),
            "a line ending where the form begins waits for the next"
        );
        out.write(format!("{}\n", lines[1]).as_bytes());
        let text = String::from_utf8(out.finish()).unwrap();
        let masked: Vec<&str> = text.lines().collect();
        assert_eq!(masked.len(), 3, "{text}");
        assert!(
            masked[1].ends_with("***") && masked[2].starts_with("***"),
            "{text}"
        );
        assert!(!text.replace('\n', "").contains(&encoded[10..30]), "{text}");

        // Held for too long, the line goes out; the rest of the form is still masked.
        let mut out = LineMasker::new(Vec::new(), Masker::new([secret]));
        out.write(format!("{}\n", lines[0]).as_bytes());
        out.flush_held();
        assert_eq!(out.to, format!("{}\n", lines[0]).as_bytes());
        out.write(format!("{}\n", lines[1]).as_bytes());
        let text = String::from_utf8(out.finish()).unwrap();
        assert!(text.lines().nth(1).unwrap().starts_with("***"), "{text}");
    }
}

//! A job's output on its way to the attempt's log: the job writes into a pipe (stdout and
//! stderr share it, so their lines stay interleaved as written) and a copier task appends what
//! arrives to the log, masking each line first when the job has secrets.

use gantry_core::secret::Masker;
use gantry_engine::logs::AttemptLog;
use std::io::{PipeWriter, Write};
use tokio::io::AsyncReadExt;

/// A line longer than this is masked and written without waiting for its end.
const MAX_PENDING: usize = 64 * 1024;

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
        match from.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
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
    pending: Vec<u8>,
}

impl<W: Write> LineMasker<W> {
    pub fn new(to: W, masker: Masker) -> LineMasker<W> {
        LineMasker {
            to,
            masker,
            pending: Vec::new(),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            let rest = self.pending.split_off(end + 1);
            let _ = self.to.write_all(&self.masker.mask_bytes(&self.pending));
            self.pending = rest;
        } else if self.pending.len() > MAX_PENDING {
            let _ = self.to.write_all(&self.masker.mask_bytes(&self.pending));
            self.pending.clear();
        }
    }

    /// Writes what is left (a last line without its newline); returns the writer.
    pub fn finish(mut self) -> W {
        let _ = self.to.write_all(&self.masker.mask_bytes(&self.pending));
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
}

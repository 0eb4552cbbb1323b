//! A job's output with its secrets hidden: the job writes into a pipe (stdout and stderr share
//! it, so their lines stay interleaved as written) and a copier masks each line before it
//! reaches the log file. Only jobs with secrets pay for the copy; others write to the file.

use gantry_core::secret::Masker;
use std::fs::File;
use std::io::{PipeWriter, Read, Write};

/// A line longer than this is masked and written without waiting for its end.
const MAX_PENDING: usize = 64 * 1024;

/// Starts copying from a new pipe into `log`; returns the pipe's write end for the job.
pub fn start(
    log: File,
    masker: Masker,
) -> std::io::Result<(PipeWriter, tokio::task::JoinHandle<()>)> {
    let (reader, writer) = std::io::pipe()?;
    let copier = tokio::task::spawn_blocking(move || copy(reader, log, &masker));
    Ok((writer, copier))
}

fn copy(mut from: impl Read, to: File, masker: &Masker) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = LineMasker::new(to, masker.clone());
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        out.write(&buf[..n]);
    }
    out.finish();
}

/// Writes output to a log a line at a time, each line masked.
pub struct LineMasker {
    to: File,
    masker: Masker,
    pending: Vec<u8>,
}

impl LineMasker {
    pub fn new(to: File, masker: Masker) -> LineMasker {
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

    pub fn finish(mut self) {
        let _ = self.to.write_all(&self.masker.mask_bytes(&self.pending));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_masked_even_when_split_across_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let masker = Masker::new(["hunter22"]);
        // A reader that hands out three bytes at a time.
        struct Slow(Vec<u8>, usize);
        impl Read for Slow {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = 3.min(self.0.len() - self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let input = b"pw=hunter22\nagain hunter22 end".to_vec();
        copy(Slow(input, 0), File::create(&path).unwrap(), &masker);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "pw=***\nagain *** end"
        );
    }
}

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

fn copy(mut from: impl Read, mut to: File, masker: &Masker) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
            let rest = pending.split_off(end + 1);
            let _ = to.write_all(&masker.mask_bytes(&pending));
            pending = rest;
        } else if pending.len() > MAX_PENDING {
            let _ = to.write_all(&masker.mask_bytes(&pending));
            pending.clear();
        }
    }
    let _ = to.write_all(&masker.mask_bytes(&pending));
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

//! `gantry run -v`: every job's output as it is written, each line prefixed by its job (and
//! attempt, from the second), on standard output, while the progress lines go to standard
//! error. Follows the attempts the run's committed writes name, reading their logs from where
//! it left off.

use gantry_engine::logs::Logs;
use gantry_engine::ports::Write;

/// The attempts followed.
#[derive(Default)]
pub struct Follower {
    run_id: String,
    /// In the order they started: output read in one pass is printed in that order.
    attempts: Vec<Followed>,
}

/// One attempt's log: where it was read up to, and the part of a line not printed yet.
struct Followed {
    job: String,
    attempt: u32,
    offset: u64,
    partial: Vec<u8>,
}

/// At most this much of one attempt's log is read per pass.
const CHUNK: usize = 256 * 1024;

impl Follower {
    pub fn new(run_id: &str) -> Follower {
        Follower {
            run_id: run_id.to_string(),
            attempts: Vec::new(),
        }
    }

    fn follow(&mut self, job: &str, attempt: u32) {
        if !self
            .attempts
            .iter()
            .any(|f| f.job == job && f.attempt == attempt)
        {
            self.attempts.push(Followed {
                job: job.to_string(),
                attempt,
                offset: 0,
                partial: Vec::new(),
            });
        }
    }

    /// Takes a committed batch: the attempts of this run it names are followed from now on.
    pub fn observe(&mut self, batch: &[Write]) {
        for w in batch {
            if let Write::UpdateJob { run_id, job } = w
                && run_id == &self.run_id
                && job.started_at_ms.is_some()
            {
                self.follow(&job.name, job.attempt);
            }
        }
    }

    /// Follows the attempts a run read back from the store has started (after missed
    /// batches).
    pub fn seed(&mut self, run: &gantry_engine::ports::RunRecord) {
        for job in run.jobs.iter().filter(|j| j.started_at_ms.is_some()) {
            self.follow(&job.name, job.attempt);
        }
    }

    /// Prints what the followed logs gained since the last pass: whole lines, or with `all`
    /// (the run ended) the rest too.
    pub fn pass(&mut self, logs: &Logs, all: bool) {
        let mut out = String::new();
        for Followed {
            job,
            attempt,
            offset,
            partial,
        } in &mut self.attempts
        {
            let prefix = if *attempt > 1 {
                format!("{job}#{attempt} | ")
            } else {
                format!("{job} | ")
            };
            while let Ok((bytes, next)) =
                logs.read_from(&self.run_id, job, *attempt, *offset, CHUNK)
                && !bytes.is_empty()
            {
                *offset = next;
                partial.extend_from_slice(&bytes);
            }
            let cut = if all {
                partial.len()
            } else {
                partial
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1)
            };
            let done: Vec<u8> = partial.drain(..cut).collect();
            for line in String::from_utf8_lossy(&done).lines() {
                out.push_str(&prefix);
                out.push_str(line);
                out.push('\n');
            }
        }
        if !out.is_empty() {
            outln!("{}", out.trim_end_matches('\n'));
        }
    }
}

//! Live progress of a run on a terminal (a redrawn job table), or plain lines when the output is
//! not a terminal. Fed by committed state changes only, so what it shows is durable.

use gantry_core::JobStatus;
use gantry_core::spec::RunSpec;
use gantry_engine::ports::Write;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::time::Instant;

pub struct Progress {
    run_id: String,
    /// The run's spec (its jobs' names, for the terminal's table), shared with the run's
    /// inserted record.
    spec: Option<std::sync::Arc<RunSpec>>,
    status: Vec<JobStatus>,
    attempt: Vec<u32>,
    tty: bool,
    drawn_lines: usize,
    last_draw: Option<Instant>,
    started: Instant,
}

/// Most job lines shown at once on a terminal; the rest are summarised in the header.
const MAX_LINES: usize = 20;

impl Progress {
    /// `jobs`: how many jobs the run has.
    pub fn new(run_id: &str, jobs: usize) -> Self {
        Progress {
            run_id: run_id.to_string(),
            spec: None,
            status: vec![JobStatus::Pending; jobs],
            attempt: vec![1; jobs],
            tty: std::io::stderr().is_terminal(),
            drawn_lines: 0,
            last_draw: None,
            started: Instant::now(),
        }
    }

    /// One line per change even on a terminal (no redrawn table): for when job output is
    /// printed too (`-v`).
    pub fn plain(mut self) -> Self {
        self.tty = false;
        self
    }

    /// Takes a committed batch; prints the changes that belong to this run.
    pub fn observe(&mut self, batch: &[Write]) {
        let mut changed = false;
        // One write per batch: stderr is unbuffered, and a run can have thousands of changes.
        let mut lines = String::new();
        for w in batch {
            if let Write::InsertRun(run) = w
                && run.id == self.run_id
            {
                self.spec = Some(run.spec.clone());
            }
            if let Write::UpdateJob { run_id, job } = w
                && run_id == &self.run_id
            {
                let i = job.index as usize;
                if self.status[i] != job.status || self.attempt[i] != job.attempt {
                    self.status[i] = job.status;
                    self.attempt[i] = job.attempt;
                    changed = true;
                    if !self.tty {
                        let exit = job
                            .exit_code
                            .filter(|c| *c != 0)
                            .map(|c| format!(" (exit {c})"))
                            .unwrap_or_default();
                        let _ = writeln!(
                            lines,
                            "{:>7.2}s {} {}{exit}",
                            self.started.elapsed().as_secs_f64(),
                            job.name,
                            job.status
                        );
                    }
                }
            }
        }
        if !lines.is_empty() {
            let _ = std::io::stderr().write_all(lines.as_bytes());
        }
        if changed && self.tty && self.last_draw.is_none_or(|t| t.elapsed().as_millis() >= 80) {
            self.draw();
        }
    }

    pub fn finish(&mut self) {
        if self.tty {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let mut out = String::new();
        if self.drawn_lines > 0 {
            out.push_str(&format!("\x1b[{}F\x1b[J", self.drawn_lines));
        }
        let count = |s: JobStatus| self.status.iter().filter(|x| **x == s).count();
        let done = self.status.iter().filter(|s| s.is_terminal()).count();
        out.push_str(&format!(
            "{done}/{} jobs done · {} running · {} succeeded · {} failed · {} skipped · {:.1}s\n",
            self.status.len(),
            count(JobStatus::Running),
            count(JobStatus::Succeeded),
            count(JobStatus::Failed) + count(JobStatus::TimedOut),
            count(JobStatus::Skipped),
            self.started.elapsed().as_secs_f64()
        ));
        // Running first, then failed, then the rest in spec order.
        let mut order: Vec<usize> = (0..self.status.len()).collect();
        order.sort_by_key(|&i| match self.status[i] {
            JobStatus::Running => 0,
            JobStatus::Failed | JobStatus::TimedOut => 1,
            JobStatus::Queued => 2,
            _ => 3,
        });
        let shown = order.iter().take(MAX_LINES);
        let mut lines = 1;
        for &i in shown {
            let (mark, colour) = match self.status[i] {
                JobStatus::Succeeded => ("✓", "32"),
                JobStatus::Failed | JobStatus::TimedOut => ("✗", "31"),
                JobStatus::Running => ("▶", "33"),
                JobStatus::Skipped | JobStatus::Cancelled => ("-", "90"),
                _ => ("·", "90"),
            };
            let retry = if self.attempt[i] > 1 {
                format!(" (attempt {})", self.attempt[i])
            } else {
                String::new()
            };
            out.push_str(&format!(
                "  \x1b[{colour}m{mark}\x1b[0m {} {}{retry}\n",
                self.spec
                    .as_ref()
                    .and_then(|s| s.jobs.get(i))
                    .map_or("?", |j| j.name.as_str()),
                self.status[i]
            ));
            lines += 1;
        }
        self.drawn_lines = lines;
        self.last_draw = Some(Instant::now());
        let _ = std::io::stderr().write_all(out.as_bytes());
    }
}

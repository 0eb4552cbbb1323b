//! `/metrics` in Prometheus text format. Counts come from committed state changes (the journal),
//! so the numbers describe durable state.

use gantry_engine::ports::Write;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub runs_created: AtomicU64,
    jobs_by_status: Mutex<BTreeMap<String, u64>>,
    runs_by_status: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn observe(&self, batch: &[Write]) {
        let mut jobs = self
            .jobs_by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut runs = self
            .runs_by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for w in batch {
            match w {
                Write::InsertRun(_) => {
                    self.runs_created.fetch_add(1, Ordering::Relaxed);
                }
                Write::UpdateJob { job, .. } => {
                    *jobs.entry(job.status.to_string()).or_default() += 1
                }
                Write::UpdateRun { status, .. } if status.is_terminal() => {
                    *runs.entry(status.to_string()).or_default() += 1
                }
                _ => {}
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP gantry_http_requests_total HTTP requests received.\n# TYPE gantry_http_requests_total counter\n");
        out.push_str(&format!(
            "gantry_http_requests_total {}\n",
            self.http_requests.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP gantry_runs_created_total Runs created.\n# TYPE gantry_runs_created_total counter\n");
        out.push_str(&format!(
            "gantry_runs_created_total {}\n",
            self.runs_created.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP gantry_runs_finished_total Runs finished, by status.\n# TYPE gantry_runs_finished_total counter\n");
        for (status, n) in self
            .runs_by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "gantry_runs_finished_total{{status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP gantry_job_transitions_total Job state changes, by the status entered.\n# TYPE gantry_job_transitions_total counter\n");
        for (status, n) in self
            .jobs_by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "gantry_job_transitions_total{{status=\"{status}\"}} {n}\n"
            ));
        }
        out
    }
}

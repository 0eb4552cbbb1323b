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

/// The runner pools: runners by pool and phase, waiting jobs, and the queue → start latency
/// (a queued job's notice to its runner running) as a histogram.
pub fn runners(r: &gantry_engine::runners::RunnerPools) -> String {
    let mut out = String::new();
    out.push_str("# HELP gantry_runners Ephemeral runners not yet done, by pool and phase.\n# TYPE gantry_runners gauge\n");
    let pools = r.pools();
    for p in &pools {
        for (phase, n) in &p.by_phase {
            out.push_str(&format!(
                "gantry_runners{{pool=\"{}\",state=\"{phase}\"}} {n}\n",
                p.name
            ));
        }
    }
    out.push_str("# HELP gantry_runner_pool_capacity Most runners a pool runs at once.\n# TYPE gantry_runner_pool_capacity gauge\n");
    for p in &pools {
        out.push_str(&format!(
            "gantry_runner_pool_capacity{{pool=\"{}\"}} {}\n",
            p.name, p.max_runners
        ));
    }
    let h = r.latency();
    out.push_str("# HELP gantry_runner_start_seconds From a queued job's notice to its runner running.\n# TYPE gantry_runner_start_seconds histogram\n");
    for (bound, n) in &h.buckets {
        out.push_str(&format!(
            "gantry_runner_start_seconds_bucket{{le=\"{bound}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "gantry_runner_start_seconds_bucket{{le=\"+Inf\"}} {}\n",
        h.count
    ));
    out.push_str(&format!("gantry_runner_start_seconds_sum {}\n", h.sum_s));
    out.push_str(&format!("gantry_runner_start_seconds_count {}\n", h.count));
    out
}

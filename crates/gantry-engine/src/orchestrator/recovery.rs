//! Recovery at start-up: stop attempts orphaned by a crash, take the lease of each unfinished
//! run, record its running attempts as lost, and its claimed ones (they may have started; see
//! `step.rs`) — each job's first lost attempt runs again without counting against its retries,
//! unless it says `rerun_lost: false` — and queue every such run for a step. [`Actor::take_over`] is the same for one run, also used when a run is adopted
//! from another server (`takeover.rs`).

use super::active::ActiveRun;
use super::{Actor, EngineError};
use gantry_core::JobStatus;
use gantry_core::dag::{Outcome, RetryPolicy, Stepper};
use tracing::{info, warn};

impl Actor {
    pub(super) async fn recover(&mut self) -> Result<(), EngineError> {
        // First make sure nothing from the previous life is still running, so that re-running
        // a lost attempt can never overlap with it.
        for executor in self.executors.values() {
            let n = executor.reap_orphans().await;
            if n > 0 {
                warn!(
                    stopped = n,
                    "stopped attempts orphaned by the previous server"
                );
            }
        }
        let now = self.clock.now_ms();
        let expires = now + self.config.lease_ttl_ms;
        let mut writes = Vec::new();
        let mut adopted = 0;
        for record in self.store.unfinished_runs().await? {
            if !self
                .store
                .try_lease(
                    &format!("run:{}", record.id),
                    &self.config.owner,
                    expires,
                    now,
                )
                .await?
            {
                continue; // another server is driving it
            }
            self.take_over(&record, "run adopted after a restart", now, &mut writes);
            adopted += 1;
        }
        if adopted > 0 {
            info!(runs = adopted, "recovered unfinished runs");
        }
        self.journal.append_durable(writes).await?;
        Ok(())
    }

    /// Makes a run whose lease this server now holds one of its active runs: its attempts
    /// recorded as running or claimed (on a server that stopped) are lost, and each job's first
    /// lost attempt runs again; the run is noted as adopted, with `why`, and stepped.
    pub(super) fn take_over(
        &mut self,
        record: &crate::ports::RunRecord,
        why: &str,
        now: i64,
        writes: &mut Vec<crate::ports::Write>,
    ) {
        let mut run = ActiveRun::from_record(record);
        for i in 0..run.state.jobs.len() {
            let j = &run.state.jobs[i];
            let was = match j.status {
                JobStatus::Running => "was running",
                JobStatus::Queued if j.claimed => "was about to start (it may have)",
                _ => continue,
            };
            let attempt = j.attempt;
            let policy = RetryPolicy::of(&run.spec.jobs[i]);
            writes.push(run.note(
                Some(i),
                "lost",
                format!("attempt {attempt} {was} when its server stopped"),
                now,
            ));
            if let Some(t) = run.state.on_result(i, attempt, Outcome::Lost, policy, now) {
                run.writes_for(&t, now, writes);
            }
        }
        // Its claims ended with the losses above (queued jobs the stepper did not leave running
        // moved): the stepper starts from the state as it is now.
        run.claims.clear();
        run.stepper = Stepper::new(run.spec.graph(), &run.state);
        writes.push(run.note(None, "recovered", why.into(), now));
        self.dirty.push(run.id.clone());
        self.runs.insert(run.id.clone(), run);
    }
}

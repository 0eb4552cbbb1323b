//! Stepping the runs that something happened to, and starting what the steps dispatch.
//!
//! Write-ahead: an attempt's process starts only once the record says it may have started,
//! and with it everything appended before (the run itself, the results its needs ended with,
//! its own earlier attempts), so after a crash of this process the record never says less
//! than what ran. Nobody outside is told, so those batches need only reach the operating
//! system; the next synced commit takes them to the disk.
//!
//! Waiting for that commit between a job's end and the next job's start would put a commit on
//! the way of every job. So a step that fills the free slots goes on to *claim* queued attempts
//! for the slots that free next (at most as many as there are slots; only jobs whose lost
//! attempt may run again): a claim is recorded, and after a crash counts as a lost attempt.
//! When a slot frees, a claimed attempt whose claim is committed (its journal mark written)
//! starts at once, its `running` record following unwaited; any other dispatched attempt
//! waits for the commit of the batch that dispatches it.

use super::Actor;
use super::start::{Start, launch_for};
use crate::ports::{CancelSignal, Write};
use gantry_core::dag::{Action, Slots};
use tokio::sync::watch;
use tracing::{info, info_span, warn};

impl Actor {
    pub(super) fn step_dirty(&mut self) {
        if self.dirty.is_empty() {
            self.append(Vec::new());
            return;
        }
        let mut ids = std::mem::take(&mut self.dirty);
        ids.sort();
        ids.dedup();
        let now = self.clock.now_ms();
        let written = self.journal.written_mark();
        let mark = self.last_mark + 1;
        let held: usize = self.runs.values().map(|r| r.claims.len()).sum();
        let mut ahead = self.config.max_parallel.saturating_sub(held);
        let mut writes = Vec::new();
        let mut finished = Vec::new();
        // Attempts to start now (their claims are committed), and after this step's commit.
        let (mut now_starts, mut later_starts) = (Vec::new(), Vec::new());
        let mut claimed = false;
        for id in ids {
            let Some(run) = self.runs.get_mut(&id) else {
                continue;
            };
            let slots = Slots {
                free: self.config.max_parallel.saturating_sub(self.running),
                ahead,
            };
            let plan = run.stepper.step(
                &run.spec,
                run.spec.graph(),
                &run.ctx,
                &run.state,
                now,
                slots,
            );
            run.wake_at_ms = plan.wake_at_ms;
            run.starved = plan.starved;
            for action in plan.actions {
                match action {
                    Action::Kill { job } => {
                        if let Some(c) = run.cancels.get(&job) {
                            let _ = c.send(true);
                        }
                    }
                    Action::Claim { job } => {
                        if let Some(t) = run.state.apply(action, now) {
                            run.writes_for(&t, now, &mut writes);
                        }
                        run.claims.insert(job, mark);
                        ahead = ahead.saturating_sub(1);
                        claimed = true;
                    }
                    Action::Dispatch { job } => {
                        // Its claim, if it had one, goes back to the budget (as in the step).
                        let claimed = run.state.jobs[job].claimed;
                        ahead += usize::from(claimed);
                        let claim = run.claims.remove(&job).filter(|_| claimed);
                        if let Some(t) = run.state.apply(action, now) {
                            run.writes_for(&t, now, &mut writes);
                        }
                        self.running += 1;
                        let (cancel_tx, cancel_rx) = watch::channel(false);
                        run.cancels.insert(job, cancel_tx);
                        let start = Start {
                            span: info_span!("job", trace_id = %run.trace_id, run_id = %run.id, job = %run.spec.jobs[job].name),
                            launch: launch_for(&self.layout, &self.logs, run, job),
                            executor: self.executors.get(&run.spec.jobs[job].executor).cloned(),
                            spec: run.spec.clone(),
                            ctx: run.ctx.clone(),
                            job,
                            cancel: CancelSignal(cancel_rx),
                        };
                        match claim {
                            Some(m) if m <= written => now_starts.push(start),
                            _ => later_starts.push(start),
                        }
                    }
                    Action::FinishRun { status } => {
                        if let Some(t) = run.state.apply(action, now) {
                            run.writes_for(&t, now, &mut writes);
                        }
                        writes.push(Write::ReleaseLease {
                            name: format!("run:{id}"),
                            holder: self.config.owner.clone(),
                        });
                        info!(run_id = %id, trace_id = %run.trace_id, %status, "run finished");
                        finished.push(id.clone());
                    }
                    other => {
                        if let Some(t) = run.state.apply(other, now) {
                            run.writes_for(&t, now, &mut writes);
                        }
                        // A claimed attempt cancelled (or otherwise moved on) holds no claim.
                        if let Action::Cancel { job } | Action::Skip { job, .. } = other {
                            run.claims.remove(&job);
                        }
                    }
                }
            }
        }
        for id in finished {
            self.runs.remove(&id);
            self.logs.release(&id);
        }
        let all = self.after_results(writes);
        if claimed || !later_starts.is_empty() {
            // Marked when it claims, so that the claims' attempts can start without waiting
            // once it is written.
            let durable = if claimed {
                self.last_mark = mark;
                self.journal.append_marked(all, mark)
            } else {
                self.journal.append_written(all)
            };
            if !later_starts.is_empty() {
                let (preparation, tx) = (self.preparation.clone(), self.tx.clone());
                tokio::spawn(async move {
                    if let Err(e) = durable.wait().await {
                        // The journal has stopped: the engine is going down, and recovery will
                        // find these attempts recorded as running and never started.
                        warn!(cause = %e, "attempts not started: their dispatch is not durable");
                        return;
                    }
                    for start in later_starts {
                        tokio::spawn(start.run(preparation.clone(), tx.clone()));
                    }
                });
            }
        } else if now_starts.is_empty() {
            self.append(all);
        } else {
            // Their claims are committed: the record of their start follows them.
            self.journal.append_unsynced(all);
        }
        for start in now_starts {
            tokio::spawn(start.run(self.preparation.clone(), self.tx.clone()));
        }
    }
}

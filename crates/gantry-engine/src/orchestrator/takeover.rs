//! Several servers on one database: each active run is stepped by the one server holding its
//! `run:<id>` lease. Every watchdog tick a server renews the leases of its runs (one
//! statement) and learns which it lost — taken by another server after they lapsed, as when
//! this one was paused past the lease — and drops those runs, stopping their attempts (the new
//! holder runs them again). And it looks for orphans, unfinished runs whose lease lapsed
//! because their server stopped renewing (it died), takes their leases and adopts them, as
//! recovery does at start: attempts recorded as running are lost and run again once. And it
//! takes the cancel requests other servers stored for its runs.

use super::{Actor, Command};
use crate::ports::RunRecord;
use std::collections::HashSet;
use tracing::{info, warn};

/// Orphans adopted per look, at most (the next look takes more).
const ADOPT_AT_ONCE: u32 = 100;

impl Actor {
    /// Renews this server's run leases and looks for orphans, off the actor's loop: what it
    /// finds comes back as [`Command::LeasesLost`] and [`Command::Orphans`].
    pub(super) fn keep_leases(&mut self, now: i64) {
        let ids: Vec<String> = self.runs.keys().cloned().collect();
        let names: Vec<String> = ids.iter().map(|id| format!("run:{id}")).collect();
        let (store, tx) = (self.store.clone(), self.tx.clone());
        let owner = self.config.owner.clone();
        let expires = now + self.config.lease_ttl_ms;
        tokio::spawn(async move {
            match store.renew_leases(&names, &owner, expires).await {
                Ok(held) => {
                    let held: HashSet<String> = held.into_iter().collect();
                    let lost: Vec<String> = names
                        .into_iter()
                        .filter(|n| !held.contains(n))
                        .filter_map(|n| n.strip_prefix("run:").map(str::to_string))
                        .collect();
                    if !lost.is_empty() {
                        let _ = tx.send(Command::LeasesLost { run_ids: lost });
                    }
                }
                Err(e) => warn!(cause = %e, "cannot renew the run leases"),
            }
            // Cancels asked of another server for runs stepped here.
            match store.take_cancel_requests(&ids).await {
                Ok(asked) => {
                    for id in asked {
                        let (reply, _) = tokio::sync::oneshot::channel();
                        let _ = tx.send(Command::Cancel { id, reply });
                    }
                }
                Err(e) => warn!(cause = %e, "cannot read the cancel requests"),
            }
            let orphans = match store.orphaned_runs(now, ADOPT_AT_ONCE).await {
                Ok(o) => o,
                Err(e) => {
                    warn!(cause = %e, "cannot look for orphaned runs");
                    return;
                }
            };
            let mut taken = Vec::new();
            for run in orphans {
                match store
                    .try_lease(&format!("run:{}", run.id), &owner, expires, now)
                    .await
                {
                    Ok(true) => taken.push(run),
                    Ok(false) => {} // another server took it first
                    Err(e) => warn!(run_id = %run.id, cause = %e, "cannot take an orphan's lease"),
                }
            }
            if !taken.is_empty() {
                let _ = tx.send(Command::Orphans { records: taken });
            }
        });
    }

    /// Drops runs whose lease another server holds now, stopping their attempts here.
    pub(super) fn leases_lost(&mut self, run_ids: Vec<String>) {
        for id in run_ids {
            let Some(run) = self.runs.remove(&id) else {
                continue;
            };
            warn!(run_id = %id, trace_id = %run.trace_id, "lost the run's lease to another server; stopping its attempts here");
            self.running = self.running.saturating_sub(run.cancels.len());
            for cancel in run.cancels.values() {
                let _ = cancel.send(true);
            }
            self.logs.release(&id);
        }
    }

    /// Adopts runs whose leases this server has just taken from a server that stopped.
    pub(super) fn adopt_orphans(&mut self, records: Vec<RunRecord>, now: i64) {
        let mut writes = Vec::new();
        for record in records {
            // Our own run whose renewal came late: still ours, nothing to adopt.
            if self.runs.contains_key(&record.id) {
                continue;
            }
            info!(run_id = %record.id, trace_id = %record.trace_id, "adopting a run whose server stopped renewing its lease");
            let why = format!(
                "run adopted by {}: the server stepping it stopped renewing its lease",
                self.config.owner
            );
            self.take_over(&record, &why, now, &mut writes);
        }
        self.append(writes);
    }
}

//! Several servers on one database: each active run is stepped by the one server holding its
//! `run:<id>` lease. Every watchdog tick a server renews the leases of its runs (one
//! statement) and learns which it lost — taken by another server after they lapsed, as when
//! this one was paused past the lease — and drops those runs, stopping their attempts (the new
//! holder runs them again). And it looks for orphans, unfinished runs whose lease lapsed
//! because their server stopped renewing (it died), takes their leases and adopts them, as
//! recovery does at start: attempts recorded as running are lost and run again once. And it
//! takes the cancel requests other servers stored for its runs.

use super::{Actor, Command, EngineError};
use crate::ports::{RunRecord, Store};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use tracing::{info, warn};

/// Orphans adopted per look, at most (the next look takes more).
const ADOPT_AT_ONCE: u32 = 100;

impl Actor {
    /// Renews this server's run leases and looks for orphans, off the actor's loop: what it
    /// finds comes back as [`Command::LeasesLost`], [`Command::Cancel`] and
    /// [`Command::Orphans`]. A look still going (a slow database) is not doubled; when no
    /// renewal has succeeded for half the lease, this server drops its runs, since another
    /// may adopt them once the lease lapses.
    pub(super) fn keep_leases(&mut self, now: i64) {
        let keeping = self.keeping.clone();
        if keeping.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let ids: Vec<String> = self.runs.keys().cloned().collect();
        let (store, tx) = (self.store.clone(), self.tx.clone());
        let owner = self.config.owner.clone();
        let ttl = self.config.lease_ttl_ms;
        let expires = now + ttl;
        tokio::spawn(async move {
            let lost: HashSet<String> = match store.renew_run_leases(&ids, &owner, expires).await {
                Ok(lost) => {
                    keeping.renewed_ms.store(now, Ordering::Release);
                    lost.into_iter().collect()
                }
                Err(e) => {
                    warn!(cause = %e, "cannot renew the run leases");
                    let since = keeping.renewed_ms.load(Ordering::Acquire);
                    if since > 0 && now - since > ttl / 2 {
                        warn!(
                            "no lease renewed for half a lease: dropping this server's runs, which another may adopt"
                        );
                        ids.iter().cloned().collect()
                    } else {
                        HashSet::new()
                    }
                }
            };
            if !lost.is_empty() {
                let run_ids = lost.iter().cloned().collect();
                let _ = tx.send(Command::LeasesLost { run_ids });
            }
            // Cancels asked of another server for runs still stepped here.
            let held: Vec<String> = ids.into_iter().filter(|id| !lost.contains(id)).collect();
            match store.take_cancel_requests(&held).await {
                Ok(asked) => {
                    for id in asked {
                        let (reply, _) = tokio::sync::oneshot::channel();
                        let _ = tx.send(Command::Cancel { id, reply });
                    }
                }
                Err(e) => warn!(cause = %e, "cannot read the cancel requests"),
            }
            adopt(&*store, &owner, expires, now, &tx).await;
            keeping.busy.store(false, Ordering::Release);
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

/// Takes the leases of orphans (one server wins each) and hands them to the actor.
async fn adopt(
    store: &dyn Store,
    owner: &str,
    expires: i64,
    now: i64,
    tx: &tokio::sync::mpsc::UnboundedSender<Command>,
) {
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
            .try_lease(&format!("run:{}", run.id), owner, expires, now)
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
}

/// The lease renewal's state between ticks.
#[derive(Debug, Default)]
pub(super) struct LeaseKeeping {
    /// A renewal is under way.
    busy: AtomicBool,
    /// When a renewal last succeeded (ms; 0: never yet).
    renewed_ms: AtomicI64,
}

/// Takes a finished run's lease for a re-run here: of several servers asked at once, one
/// re-runs it; and a cancel asked before it ended does not cancel the re-run.
pub(super) async fn claim_for_rerun(engine: &super::Engine, id: &str) -> Result<(), EngineError> {
    let now = engine.clock_now();
    let (owner, ttl) = engine.lease_holder();
    let lease = format!("run:{id}");
    if !engine
        .store()
        .try_lease(&lease, owner, now + ttl, now)
        .await?
    {
        return Err(EngineError::CannotRerun {
            id: id.to_string(),
            why: "another server is re-running it".into(),
        });
    }
    engine
        .store()
        .take_cancel_requests(&[id.to_string()])
        .await?;
    Ok(())
}

//! The log archive: with an object store configured, each finished run's log file goes to it
//! (`logs/<run>.log`, replaced when a re-run finishes again), so that any server sharing the
//! store can show it, and a reader asking for a run whose file is not here (another server
//! ran it, or the file was removed) gets it from there. Without one, logs stay in the data
//! dir's `logs` folder, which is then the only copy.
//!
//! The upload follows the commit that finishes the run (every attempt has ended by then, so
//! the file is whole); one that a crash or an unreachable store stopped is made again by
//! [`LogArchive::catch_up`], at start and with every janitor pass. The archive keeps logs as
//! long as the data dir does ([`crate::ports::Retention::logs_ms`]).

use crate::journal::Journal;
use crate::logs::Logs;
use crate::ports::{BlobError, Blobs, Store, Write};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{info, warn};

/// A run log's key in the object store.
pub fn key(run_id: &str) -> String {
    format!("logs/{run_id}.log")
}

/// Run logs and the object store they are archived in; cheap to clone.
#[derive(Clone)]
pub struct LogArchive {
    blobs: Arc<dyn Blobs>,
    logs: Logs,
}

impl LogArchive {
    pub fn new(blobs: Arc<dyn Blobs>, logs: Logs) -> LogArchive {
        LogArchive { blobs, logs }
    }

    /// Where the archive is, for people.
    pub fn describe(&self) -> String {
        self.blobs.describe()
    }

    /// Copies the run's log file to the store. `Ok(false)` when the run wrote no log here.
    pub async fn archive(&self, run_id: &str) -> Result<bool, BlobError> {
        let path = self.logs.path(run_id);
        if !path.exists() {
            return Ok(false);
        }
        self.blobs.put_file(&key(run_id), &path).await?;
        Ok(true)
    }

    /// Makes sure the run's log file is here, fetching it from the store when it is not.
    /// `Ok(false)` when neither has it (the run wrote nothing yet, or runs elsewhere).
    pub async fn restore(&self, run_id: &str) -> Result<bool, BlobError> {
        let path = self.logs.path(run_id);
        if path.exists() {
            return Ok(true);
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|cause| BlobError::File {
                    what: "cannot create",
                    path: dir.display().to_string(),
                    cause,
                })?;
        }
        self.blobs.get_file(&key(run_id), &path).await
    }

    /// Archives the log of every finished run here whose archived copy is missing or of
    /// another size than the file (a log only grows: a re-run appends, a timed-out attempt's
    /// last output may land after the upload); returns how many it archived.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<usize, BlobError> {
        let archived: HashMap<String, u64> = self
            .blobs
            .list("logs/")
            .await?
            .into_iter()
            .map(|m| (m.key, m.size))
            .collect();
        let dir = self.logs.path("x");
        let Some(dir) = dir.parent() else {
            return Ok(0);
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(0);
        };
        let mut done = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(run_id) = name.strip_suffix(".log") else {
                continue;
            };
            let size = entry.metadata().map_or(0, |m| m.len());
            if archived.get(&key(run_id)) == Some(&size) {
                continue;
            }
            let finished = matches!(
                store.get_run(run_id).await,
                Ok(Some(run)) if run.status.is_terminal()
            );
            if finished && self.archive(run_id).await? {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Deletes archived logs last written before `before_ms`; returns how many.
    pub async fn expire(&self, before_ms: i64) -> Result<u64, BlobError> {
        let mut n = 0;
        for m in self.blobs.list("logs/").await? {
            if m.modified_ms < before_ms {
                self.blobs.delete(&m.key).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Archives each run's log once the batch that finishes the run is committed, for as long
    /// as the journal runs (a failure is logged; the next catch-up makes it again).
    pub fn start(&self, journal: &Journal) {
        let mut committed = journal.subscribe();
        let archive = self.clone();
        // Uploads at once, at most this many (many runs may finish together).
        let uploads = Arc::new(tokio::sync::Semaphore::new(8));
        tokio::spawn(async move {
            loop {
                let batch = match committed.recv().await {
                    Ok(b) => b,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        warn!(
                            skipped = n,
                            "log archive fell behind; the next catch-up archives what it missed"
                        );
                        continue;
                    }
                    Err(_) => return,
                };
                for w in batch.iter() {
                    if let Write::UpdateRun {
                        id,
                        status,
                        finished_at_ms: Some(_),
                        ..
                    } = w
                        && status.is_terminal()
                    {
                        let (archive, id) = (archive.clone(), id.clone());
                        let Ok(slot) = uploads.clone().acquire_owned().await else {
                            return;
                        };
                        tokio::spawn(async move {
                            match archive.archive(&id).await {
                                Ok(true) => info!(run_id = %id, "run log archived"),
                                Ok(false) => {}
                                Err(e) => {
                                    warn!(run_id = %id, cause = %e, "cannot archive the run's log")
                                }
                            }
                            drop(slot);
                        });
                    }
                }
            }
        });
    }
}

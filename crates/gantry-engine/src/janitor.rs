//! The janitor: a reconciler that deletes what has outlived its retention:
//! finished runs (working data, default 1 day), audit events (90 days), logs, and workspaces
//! with the artifacts jobs kept (7 days), and jobs' caches not used for as long as logs are
//! kept. It takes no input, is safe to run twice, and runs on a timer and on demand.

use crate::layout::Layout;
use crate::ports::{Expired, Retention, Store, StoreResult};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct JanitorReport {
    #[serde(flatten)]
    pub store: Expired,
    pub run_logs: u64,
    pub workspaces: u64,
}

/// One pass: expire stored data, then the log files and workspaces of runs older than allowed.
pub async fn sweep(
    store: &dyn Store,
    layout: &Layout,
    retention: &Retention,
    now_ms: i64,
) -> StoreResult<JanitorReport> {
    let expired = store.expire(retention, now_ms).await?;
    let run_logs = remove_older(&layout.logs_dir(), retention.logs_ms).await;
    // A run's artifacts go with its workspaces.
    let workspaces = remove_older(&layout.work_dir(), retention.working_ms).await
        + remove_older(&layout.artifacts_dir(), retention.working_ms).await
        + remove_unused_caches(&layout.root().join("cache"), retention.logs_ms).await;
    Ok(JanitorReport {
        store: expired,
        run_logs,
        workspaces,
    })
}

/// Removes the caches (`…/keys/KEY` under `dir`, any depth) not used for `age_ms`: a restore
/// touches its key's folder. Bounded: scopes are repositories and their fork pull requests.
async fn remove_unused_caches(dir: &Path, age_ms: i64) -> u64 {
    let mut removed = 0;
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(mut entries) = tokio::fs::read_dir(&folder).await else {
            continue;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if !entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name() == "keys" {
                removed += remove_older(&entry.path(), age_ms).await;
            } else {
                folders.push(entry.path());
            }
        }
    }
    removed
}

/// Removes the entries of `dir` last modified more than `age_ms` ago.
async fn remove_older(dir: &Path, age_ms: i64) -> u64 {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return 0;
    };
    let cutoff = SystemTime::now() - Duration::from_millis(age_ms.max(0) as u64);
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        if meta.modified().is_ok_and(|m| m < cutoff) {
            let path = entry.path();
            let gone = if meta.is_dir() {
                tokio::fs::remove_dir_all(&path).await
            } else {
                tokio::fs::remove_file(&path).await
            };
            if gone.is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

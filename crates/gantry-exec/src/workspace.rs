//! What every executor does before a job's commands: an empty workspace, the engine's notes,
//! and the source checked out — all written to the attempt's log masked. Workspaces that
//! jobs leave empty are kept in a pool and renamed into place for later jobs: on a busy disk,
//! creating a folder (a new inode) costs far more than renaming one.

use crate::git::GitSources;
use gantry_core::secret::Masker;
use gantry_engine::ports::Launch;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Empty workspaces kept for reuse; more than this are left where they are.
const POOL_SIZE: usize = 64;

/// Empty folders, left behind by finished attempts, to become later attempts' workspaces.
#[derive(Debug, Default)]
pub(crate) struct WorkspacePool {
    empty: Mutex<Vec<PathBuf>>,
}

impl WorkspacePool {
    /// Takes the finished attempt's workspace into the pool if the job left it empty.
    pub(crate) fn recycle(&self, workspace: &Path) {
        let empty = std::fs::read_dir(workspace).is_ok_and(|mut d| d.next().is_none());
        if !empty {
            return;
        }
        let mut pool = self.empty.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_SIZE {
            pool.push(workspace.to_path_buf());
        }
    }

    /// Moves a pooled empty folder to `to`; false (and nothing changed at `to`) if there is
    /// none, or it cannot be moved there (the caller then makes the folder itself).
    fn take_into(&self, to: &Path) -> bool {
        loop {
            let Some(from) = self.empty.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                return false;
            };
            let moved = match std::fs::rename(&from, to) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.is_dir() => {
                    // The new workspace's parent is missing, not the pooled folder.
                    to.parent()
                        .is_some_and(|dir| std::fs::create_dir_all(dir).is_ok())
                        && std::fs::rename(&from, to).is_ok()
                }
                other => other.is_ok(),
            };
            if moved {
                return true;
            }
            if to.exists() {
                // Something is already there (an earlier attempt's workspace): keep the
                // pooled folder for another job and let the caller empty this one.
                self.empty
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(from);
                return false;
            }
            // The pooled folder is gone (swept) or on another filesystem: try the next one.
        }
    }
}

/// Makes the attempt's workspace (empty).
pub(crate) fn prepare(launch: &Launch, pool: &WorkspacePool) -> std::io::Result<()> {
    if pool.take_into(&launch.workspace) {
        return Ok(());
    }
    // The common case costs one mkdir; folders are made and an earlier attempt's workspace
    // is emptied only when the first try says so.
    match std::fs::create_dir(&launch.workspace) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_dir_all(&launch.workspace)?;
            std::fs::create_dir(&launch.workspace)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&launch.workspace)?
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Writes the engine's notes and checks out the source, both into the log (masked).
pub(crate) async fn before_commands(
    git: Option<&GitSources>,
    launch: &Launch,
    masker: &Masker,
) -> Result<(), String> {
    let mut lines = launch.notes.clone();
    let result = match (&launch.checkout, git) {
        (None, _) => Ok(()),
        (Some(_), None) => {
            Err("this job has a `source` but no git checkout is configured here".to_string())
        }
        (Some(c), Some(git)) => git.checkout(c, &launch.workspace, &mut lines).await,
    };
    if let Err(why) = &result {
        lines.push(format!("gantry: {why}"));
    }
    for line in lines {
        launch.log.note(&masker.mask(&line));
    }
    result.map_err(|e| masker.mask(&e))
}

/// Everything before the commands, for any executor: the workspace, the masker for the job's
/// secrets, the notes and the checkout. `None` (already logged) when the job cannot start.
pub(crate) async fn start(
    git: Option<&GitSources>,
    pool: &WorkspacePool,
    launch: &Launch,
) -> Option<Masker> {
    if let Err(e) = prepare(launch, pool) {
        tracing::warn!(cause = %e, "cannot prepare the workspace");
        launch
            .log
            .note(&format!("gantry: cannot prepare the workspace: {e}"));
        return None;
    }
    let masker = Masker::new(launch.secrets.iter().map(|(_, v)| v.expose()));
    if let Err(why) = before_commands(git, launch, &masker).await {
        tracing::warn!(cause = %why, "cannot prepare the job's source");
        return None;
    }
    Some(masker)
}

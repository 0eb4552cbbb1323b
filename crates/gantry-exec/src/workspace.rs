//! What every executor does before a job's commands: an empty workspace and a fresh log,
//! the engine's notes, and the source checked out — all written to the log masked.

use crate::git::GitSources;
use gantry_core::secret::Masker;
use gantry_engine::ports::Launch;
use std::fs::File;
use std::io::Write as _;

/// Makes the attempt's workspace (empty) and creates its log file.
pub(crate) fn prepare(launch: &Launch) -> std::io::Result<File> {
    // The common case costs one mkdir and one create; folders are made and an earlier
    // attempt's workspace is emptied only when the first try says so.
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
    let log = match File::create(&launch.log_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = launch.log_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            File::create(&launch.log_path)?
        }
        other => other?,
    };
    Ok(log)
}

/// Writes the engine's notes and checks out the source, both into the log (masked).
pub(crate) async fn before_commands(
    git: Option<&GitSources>,
    launch: &Launch,
    log: &mut File,
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
        let _ = log.write_all(masker.mask(&format!("{line}\n")).as_bytes());
    }
    result.map_err(|e| masker.mask(&e))
}

/// Everything before the commands, for any executor: the workspace and log, the masker for the
/// job's secrets, the notes and the checkout. `None` (already logged) when the job cannot start.
pub(crate) async fn start(git: Option<&GitSources>, launch: &Launch) -> Option<(File, Masker)> {
    let mut log = match prepare(launch) {
        Ok(log) => log,
        Err(e) => {
            tracing::warn!(cause = %e, "cannot prepare workspace or log");
            return None;
        }
    };
    let masker = Masker::new(launch.secrets.iter().map(|(_, v)| v.expose()));
    if let Err(why) = before_commands(git, launch, &mut log, &masker).await {
        tracing::warn!(cause = %why, "cannot prepare the job's source");
        return None;
    }
    Some((log, masker))
}

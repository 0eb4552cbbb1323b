//! What every executor does before a job's commands: a new, empty workspace at the job's place
//! (`work/<run>/<job>`), then the engine's notes and the source checkout, both written to the
//! attempt's log, masked.
//!
//! Each attempt gets a new folder. What an earlier attempt left at the place is first moved
//! aside (renamed to a `.trash-…` name beside it) and removed in the background, so an attempt's
//! start never waits for a big delete. The files an attempt leaves stay at its place, where
//! people look for them, until the job's next attempt or the janitor removes them.

use crate::git::GitSources;
use crate::tree::WorkingTree;
use gantry_core::dag::Outcome;
use gantry_core::secret::Masker;
use gantry_engine::logs::AttemptLog;
use gantry_engine::ports::{Artifacts, JobCache, Launch};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::task::JoinHandle;

/// Numbers the names things are moved aside to (with our pid: unique among living servers).
static TRASH_NAMES: AtomicU64 = AtomicU64::new(0);

/// Makes `place` a new, empty folder (with its parents). Whatever was there is moved aside and
/// removed in the background; the handle of that removal is returned, if there was any.
/// Needs a Tokio runtime (the removal is a blocking task).
pub(crate) fn fresh(place: &Path) -> io::Result<Option<JoinHandle<()>>> {
    // Not `create_dir_all`: the folder must be the one made here, empty. Usually nothing is
    // there yet and its parent exists: one `mkdir`.
    match std::fs::create_dir(place) {
        Ok(()) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = place.parent() {
                std::fs::create_dir_all(parent)?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let removal =
        move_aside(place)?.map(|trash| tokio::task::spawn_blocking(move || remove(&trash)));
    std::fs::create_dir(place)?;
    Ok(removal)
}

/// Renames what is at `place` (if anything) to a free `.trash-<name>-<pid>-<n>` beside it, and
/// returns that name.
fn move_aside(place: &Path) -> io::Result<Option<PathBuf>> {
    let Some(name) = place.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a folder", place.display()),
        ));
    };
    let name = name.to_string_lossy();
    loop {
        let n = TRASH_NAMES.fetch_add(1, Ordering::Relaxed);
        let trash = place.with_file_name(format!(".trash-{name}-{}-{n}", std::process::id()));
        match std::fs::symlink_metadata(&trash) {
            // An earlier life's, still there (it stopped while removing it): another name.
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        return match std::fs::rename(place, &trash) {
            Ok(()) => Ok(Some(trash)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
    }
}

/// Removes a folder with everything in it (or a file, or a link — not what it points to).
fn remove(path: &Path) {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        tracing::warn!(cause = %e, path = %path.display(), "cannot remove an earlier attempt's files");
    }
}

/// Gives the workspace (with what the checkout put there) to the user jobs run as, and lets
/// that user through the run's folder above it (0711, listing nothing), which the server made
/// private. (The work dir itself is the operator's: it must let the user through.)
pub(crate) fn hand_over(place: &Path, user: &crate::RunAs) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    crate::isolation::chown_tree(place, user.uid, user.gid)?;
    if let Some(run) = place.parent() {
        std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

/// Lets a container's user (`container: {user: …}`) use the workspace mounted at
/// `/workspace`: a numeric `uid[:gid]` gets it (and what the checkout put there); a name, which
/// only the image's user database knows, gets a workspace anyone may write. Without a user the
/// container runs as the image's (usually root) and nothing changes.
pub(crate) fn for_container_user(place: &Path, user: Option<&str>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Some(user) = user else { return Ok(()) };
    let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
    match (uid.parse::<u32>(), gid.parse::<u32>().ok()) {
        (Ok(uid), gid) => crate::isolation::chown_tree(place, uid, gid.unwrap_or(uid)),
        (Err(_), _) => std::fs::set_permissions(place, std::fs::Permissions::from_mode(0o777)),
    }
}

/// Writes the engine's notes and checks out the source (or, in a local run, copies the
/// working tree), both into the log (masked).
pub(crate) async fn before_commands(
    git: Option<&GitSources>,
    tree: Option<&WorkingTree>,
    launch: &Launch,
    masker: &Masker,
) -> Result<(), String> {
    let mut lines = launch.notes.clone();
    let result = match (&launch.checkout, git) {
        (None, _) => match tree {
            None => Ok(()),
            Some(tree) => {
                let root = tree.root().display().to_string();
                let (tree, dest) = (tree.clone(), launch.workspace.clone());
                match tokio::task::spawn_blocking(move || tree.copy_into(&dest)).await {
                    Ok(Ok(n)) => {
                        lines.push(format!(
                            "gantry: copied {n} files of the working tree {root}"
                        ));
                        Ok(())
                    }
                    Ok(Err(e)) => Err(format!("cannot copy the working tree {root}: {e}")),
                    Err(e) => Err(format!("cannot copy the working tree {root}: {e}")),
                }
            }
        },
        (Some(_), None) => {
            Err("this job has a `source` but no git checkout is configured here".to_string())
        }
        (Some(c), Some(git)) => git.checkout(c, &launch.workspace, &mut lines).await,
    };
    // What the jobs it needs kept, over what the checkout or the tree put there.
    let result = match result {
        Ok(()) if !launch.artifacts.take.is_empty() => {
            let (artifacts, dest) = (launch.artifacts.clone(), launch.workspace.clone());
            match tokio::task::spawn_blocking(move || crate::artifacts::lay_in(&artifacts, &dest))
                .await
            {
                Ok(Ok(laid)) => {
                    lines.extend(laid);
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(e) => Err(format!("cannot lay in the artifacts: {e}")),
            }
        }
        other => other,
    };
    // Then the job's cache, if its key has one.
    let result = match (result, &launch.cache) {
        (Ok(()), Some(cache)) => {
            let (cache, dest) = (cache.clone(), launch.workspace.clone());
            match tokio::task::spawn_blocking(move || crate::cache::restore(&cache, &dest)).await {
                Ok(Ok(line)) => {
                    lines.push(line);
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(e) => Err(format!("cannot restore the cache: {e}")),
            }
        }
        (other, _) => other,
    };
    if let Err(why) = &result {
        lines.push(format!("gantry: {why}"));
    }
    for line in lines {
        launch.log.note(&masker.mask(&line));
    }
    result.map_err(|e| masker.mask(&e))
}

/// Everything before the commands, for any executor: a new, empty workspace at the job's place
/// (`launch.workspace`, made absolute), the masker for the job's secrets, the notes and the
/// checkout. `None` (already logged) when the job cannot start.
pub async fn start(
    git: Option<&GitSources>,
    tree: Option<&WorkingTree>,
    launch: &mut Launch,
) -> Option<Masker> {
    let prepared = std::path::absolute(&launch.workspace).and_then(|place| {
        fresh(&place)?;
        Ok(place)
    });
    match prepared {
        Ok(place) => launch.workspace = place,
        Err(e) => {
            tracing::warn!(cause = %e, workspace = %launch.workspace.display(), "cannot prepare the workspace");
            launch
                .log
                .note(&format!("gantry: cannot prepare the workspace: {e}"));
            return None;
        }
    }
    let masker = Masker::new(launch.secrets.iter().map(|(_, v)| v.expose()));
    if let Err(why) = before_commands(git, tree, launch, &masker).await {
        tracing::warn!(cause = %why, "cannot prepare the job's source");
        return None;
    }
    Some(masker)
}

/// What is needed of a launch after its commands (the launch itself goes to the attempt).
pub(crate) struct AfterCommands {
    artifacts: Artifacts,
    cache: Option<JobCache>,
    workspace: PathBuf,
    log: AttemptLog,
}

impl AfterCommands {
    pub(crate) fn of(launch: &Launch) -> AfterCommands {
        AfterCommands {
            artifacts: launch.artifacts.clone(),
            cache: launch.cache.clone(),
            workspace: launch.workspace.clone(),
            log: launch.log.clone(),
        }
    }

    /// An attempt that succeeded keeps its artifacts (one that cannot keep them fails,
    /// saying why) and saves its cache when its key had none (a cache that cannot be saved
    /// is only noted); any other outcome stands.
    pub(crate) async fn finish(self, outcome: Outcome) -> Outcome {
        if outcome != Outcome::Succeeded || (self.artifacts.keep.is_empty() && self.cache.is_none())
        {
            return outcome;
        }
        let AfterCommands {
            artifacts,
            cache,
            workspace,
            log,
        } = self;
        let workspace = std::path::absolute(&workspace).unwrap_or(workspace);
        let done = tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            if let Some(cache) = &cache {
                match crate::cache::save(cache, &workspace) {
                    Ok(line) => lines.extend(line),
                    Err(why) => lines.push(format!("gantry: {why} (the job stands)")),
                }
            }
            crate::artifacts::keep(&artifacts, &workspace).map(|kept| {
                lines.extend(kept);
                lines
            })
        })
        .await
        .unwrap_or_else(|e| Err(format!("cannot keep the artifacts: {e}")));
        match done {
            Ok(lines) => {
                for line in lines {
                    log.note(&line);
                }
                outcome
            }
            Err(why) => {
                log.note(&format!("gantry: {why}"));
                Outcome::Failed { exit_code: None }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn each_attempt_gets_a_new_empty_folder_and_the_earlier_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().join("r1/a");
        assert!(fresh(&place).unwrap().is_none(), "nothing to move aside");
        assert!(names(&place).is_empty());
        // The first attempt leaves files, a folder tree and a link to something outside.
        std::fs::create_dir_all(place.join("d/e")).unwrap();
        std::fs::write(place.join("d/e/f"), "x").unwrap();
        std::fs::write(place.join("left"), "x").unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, place.join("link")).unwrap();
        let first = std::fs::metadata(&place).unwrap().ino();

        let removal = fresh(&place)
            .unwrap()
            .expect("the earlier files were moved aside");
        assert!(names(&place).is_empty(), "the new folder is empty");
        assert_ne!(
            std::fs::metadata(&place).unwrap().ino(),
            first,
            "a new folder, not the old one emptied"
        );
        removal.await.unwrap();
        assert_eq!(
            names(&dir.path().join("r1")),
            ["a"],
            "what was moved aside is gone"
        );
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "keep",
            "links are not followed"
        );
    }

    #[tokio::test]
    async fn a_file_at_the_place_and_taken_trash_names_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().join("r1/a");
        std::fs::create_dir_all(dir.path().join("r1")).unwrap();
        std::fs::write(&place, "not a folder").unwrap();
        // The names the next moves aside would take, left by an earlier life that stopped
        // midway. (The other test here takes at most two names meanwhile: at least two of
        // these are tried, and skipped.)
        let next = TRASH_NAMES.load(Ordering::Relaxed);
        let taken: Vec<PathBuf> = (next..next + 4)
            .map(|n| {
                let taken = dir
                    .path()
                    .join(format!("r1/.trash-a-{}-{n}", std::process::id()));
                std::fs::create_dir(&taken).unwrap();
                std::fs::write(taken.join("old"), "").unwrap();
                taken
            })
            .collect();
        let removal = fresh(&place).unwrap().expect("the file was moved aside");
        assert!(place.is_dir() && names(&place).is_empty());
        removal.await.unwrap();
        for t in &taken {
            assert_eq!(names(t), ["old"], "not reused: {}", t.display());
        }
        assert_eq!(names(&dir.path().join("r1")).len(), 1 + taken.len());
    }
}

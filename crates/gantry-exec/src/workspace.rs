//! What every executor does before a job's commands: an empty workspace, the engine's notes,
//! and the source checked out — all written to the attempt's log masked — and what becomes of
//! the workspace after them.
//!
//! A job runs in a *slot*: a folder `.ws-<n>` in its run's work folder, held open. A slot the
//! job left empty (the usual case for a job that builds nothing in place) goes back to a pool
//! and is the next job's workspace as it is: no folder is made or renamed (on a busy disk, a
//! `mkdir` costs ~100 µs, a `rename` ~15 µs). Whether the job left it empty: a folder's change
//! time moves whenever a name is made, removed or moved in it, so a slot whose change time is
//! still the one it had when it was last read empty is empty (one `fstat`). Otherwise the open
//! folder is read (a rewind and two `getdents`: on ext4 ~2-6 µs, as a one-block folder is read
//! through its hash tree). A change time is trusted only when a later change is sure to give
//! another one: it is older than the kernel's coarse clock (which stamps changes) by more than
//! the filesystem's granularity could hide, and that granularity is finer than a millisecond.
//! (An inotify watch per slot did the same; but closing the inotify instance waits for the
//! kernel's SRCU grace period, ~16 ms here, which `gantry run` paid on every exit.) A slot left
//! with files in it is moved to the job's own place (`work/<run>/<job>`, replacing what an
//! earlier attempt left there), where people look for them.

use crate::git::GitSources;
use gantry_core::secret::Masker;
use gantry_engine::ports::Launch;
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, RenameFlags, open, renameat2};
use nix::sys::stat::Mode;
use nix::sys::stat::fstat;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Empty slots kept for reuse; more than this are closed and left where they are.
const POOL_SIZE: usize = 64;

/// An empty folder, open, in a run's work folder (its parent).
#[derive(Debug)]
struct Slot {
    path: PathBuf,
    dir: OwnedFd,
    /// Its change time when it was last read empty, if a later change is sure to move it.
    empty_as_of: Option<ChangeTime>,
}

/// A folder's change time (`st_ctime`), seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChangeTime(i64, i64);

impl ChangeTime {
    fn of(st: &nix::sys::stat::FileStat) -> ChangeTime {
        ChangeTime(st.st_ctime, st.st_ctime_nsec)
    }

    /// This change time, if any change made from now on is sure to get another one: it has
    /// nanoseconds that are not whole milliseconds (the filesystem stamps finer than 1 ms), and
    /// it is more than 2 ms older than the coarse clock the kernel stamps changes with.
    fn trusted(self) -> Option<ChangeTime> {
        use nix::time::{ClockId, clock_gettime};
        let now = clock_gettime(ClockId::CLOCK_REALTIME_COARSE).ok()?;
        let as_ns = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        let margin = 2_000_000;
        let fine = self.1 % 1_000_000 != 0;
        let old = as_ns(self.0, self.1) + margin < as_ns(now.tv_sec(), now.tv_nsec());
        (fine && old).then_some(self)
    }
}

/// A job's workspace while it runs: the slot, and the job's own place its files go to if it
/// leaves any.
#[derive(Debug)]
pub(crate) struct Workspace {
    slot: Slot,
    place: PathBuf,
}

impl Workspace {
    /// Where the job runs.
    pub(crate) fn path(&self) -> &Path {
        &self.slot.path
    }

    /// The workspace folder, open (a job's process enters it with `fchdir`).
    pub(crate) fn dir(&self) -> BorrowedFd<'_> {
        self.slot.dir.as_fd()
    }
}

/// Slots that finished jobs left empty, to be later jobs' workspaces.
#[derive(Debug, Default)]
pub(crate) struct WorkspacePool {
    free: Mutex<Vec<Slot>>,
    /// Numbers slot names; a name taken (by an earlier life of the server) is skipped.
    next: AtomicU64,
}

/// The run's work folder a job's place is in.
fn folder_of(place: &Path) -> PathBuf {
    match place.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl WorkspacePool {
    /// An empty workspace for the job whose own place is `place`: a pooled slot of the same
    /// run as it is, else a pooled slot of another run moved into this run's folder, else a
    /// new folder.
    pub(crate) fn take(&self, place: &Path) -> std::io::Result<Workspace> {
        let folder = folder_of(place);
        let slot = match self.pooled_in(&folder) {
            Some(slot) => slot,
            None => match self.pop().and_then(|other| self.move_into(other, &folder)) {
                Some(slot) => slot,
                None => self.make(&folder)?,
            },
        };
        Ok(Workspace {
            slot,
            place: place.to_path_buf(),
        })
    }

    /// A pooled slot in `folder` whose folder still exists (a run's files can expire while
    /// its slot waits, and the run be re-run).
    fn pooled_in(&self, folder: &Path) -> Option<Slot> {
        loop {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let i = free.iter().rposition(|s| s.path.parent() == Some(folder))?;
            let slot = free.swap_remove(i);
            drop(free);
            if fstat(&slot.dir).is_ok_and(|st| st.st_nlink > 0) {
                return Some(slot);
            }
        }
    }

    /// The most recently pooled slot, of any run.
    fn pop(&self) -> Option<Slot> {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// A free name for a slot in `folder`.
    fn name_in(&self, folder: &Path) -> PathBuf {
        folder.join(format!(".ws-{}", self.next.fetch_add(1, Ordering::Relaxed)))
    }

    /// Moves a pooled slot into `folder`; `None` if it cannot be (its folder was swept, or
    /// is on another filesystem): it is closed and left.
    fn move_into(&self, slot: Slot, folder: &Path) -> Option<Slot> {
        std::fs::create_dir_all(folder).ok()?;
        loop {
            let path = self.name_in(folder);
            match renameat2(
                AT_FDCWD,
                &slot.path,
                AT_FDCWD,
                &path,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => {
                    return Some(Slot {
                        path,
                        empty_as_of: None,
                        ..slot
                    });
                }
                Err(Errno::EEXIST) => continue,
                Err(_) => return None,
            }
        }
    }

    /// A new empty slot in `folder` (made with its parents).
    fn make(&self, folder: &Path) -> std::io::Result<Slot> {
        let path = loop {
            let path = self.name_in(folder);
            match std::fs::create_dir(&path) {
                Ok(()) => break path,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(folder)?
                }
                Err(e) => return Err(e),
            }
        };
        let dir = open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Slot {
            path,
            dir,
            empty_as_of: None,
        })
    }

    /// After the job: a workspace it left empty goes back to the pool; one with files in it
    /// is moved to the job's place (replacing an earlier attempt's files there). Returns where
    /// the job's files are, if it left any.
    pub(crate) fn give_back(&self, mut ws: Workspace) -> Option<PathBuf> {
        if let Some(empty_as_of) = still_empty(&ws.slot) {
            ws.slot.empty_as_of = empty_as_of;
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            if free.len() < POOL_SIZE {
                free.push(ws.slot);
            }
            return None;
        }
        let Workspace { slot, place } = ws;
        drop(slot.dir);
        let moved = clear(&place).and_then(|()| std::fs::rename(&slot.path, &place));
        match moved {
            Ok(()) => Some(place),
            Err(e) => {
                tracing::warn!(cause = %e, workspace = %slot.path.display(), place = %place.display(), "cannot move the job's files to its place");
                Some(slot.path)
            }
        }
    }
}

/// `Some` if the slot is empty, with the change time to trust next time (see the module's doc).
fn still_empty(slot: &Slot) -> Option<Option<ChangeTime>> {
    let changed = fstat(&slot.dir).ok().map(|st| ChangeTime::of(&st));
    if changed.is_some() && changed == slot.empty_as_of {
        return Some(slot.empty_as_of);
    }
    // Read after the change time was taken: a change made meanwhile is either seen here or
    // moves the change time away from the one kept.
    crate::spawn::dir_is_empty(slot.dir.as_fd())
        .unwrap_or(false)
        .then(|| changed.and_then(ChangeTime::trusted))
}

/// Removes whatever is at a job's place (an earlier attempt's files).
fn clear(place: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(place) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(place),
        Ok(_) => std::fs::remove_file(place),
        Err(_) => Ok(()),
    }
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

/// Everything before the commands, for any executor: the workspace (which `launch.workspace`
/// then names), the masker for the job's secrets, the notes and the checkout. `None` (already
/// logged) when the job cannot start.
pub(crate) async fn start(
    git: Option<&GitSources>,
    pool: &WorkspacePool,
    launch: &mut Launch,
) -> Option<(Masker, Workspace)> {
    if launch.attempt > 1 {
        // What an earlier attempt left in the job's place is not this attempt's.
        let _ = clear(&launch.workspace);
    }
    let ws = match pool.take(&launch.workspace) {
        Ok(ws) => ws,
        Err(e) => {
            tracing::warn!(cause = %e, "cannot prepare the workspace");
            launch
                .log
                .note(&format!("gantry: cannot prepare the workspace: {e}"));
            return None;
        }
    };
    launch.workspace = ws.path().to_path_buf();
    let masker = Masker::new(launch.secrets.iter().map(|(_, v)| v.expose()));
    if let Err(why) = before_commands(git, launch, &masker).await {
        tracing::warn!(cause = %why, "cannot prepare the job's source");
        pool.give_back(ws);
        return None;
    }
    Some((masker, ws))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_slot_is_reused_only_while_nothing_is_left_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let pool = WorkspacePool::default();
        let place = dir.path().join("r1/a");
        let ws = pool.take(&place).unwrap();
        let first = ws.path().to_path_buf();
        assert_eq!(pool.give_back(ws), None, "nothing was made");
        // Something made and removed again: found empty.
        let ws = pool.take(&place).unwrap();
        assert_eq!(ws.path(), first, "the same folder");
        std::fs::write(ws.path().join("tmp"), "").unwrap();
        std::fs::remove_file(ws.path().join("tmp")).unwrap();
        assert_eq!(pool.give_back(ws), None);
        // Something moved in and left: the folder goes to the job's place.
        let ws = pool.take(&place).unwrap();
        assert_eq!(ws.path(), first);
        std::fs::write(dir.path().join("outside"), "x").unwrap();
        std::fs::rename(dir.path().join("outside"), ws.path().join("moved-in")).unwrap();
        assert_eq!(pool.give_back(ws), Some(place.clone()));
        assert_eq!(names(&place), ["moved-in"]);
        assert!(!first.exists());
    }

    #[test]
    fn a_pooled_slot_whose_folder_was_removed_is_not_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let pool = WorkspacePool::default();
        let place = dir.path().join("r1/a");
        let ws = pool.take(&place).unwrap();
        assert_eq!(pool.give_back(ws), None);
        // The janitor expires the run's files while the slot is pooled; the run is re-run.
        std::fs::remove_dir_all(dir.path().join("r1")).unwrap();
        let ws = pool.take(&place).unwrap();
        assert!(ws.path().is_dir(), "a new folder: {}", ws.path().display());
        std::fs::write(ws.path().join("f"), "").unwrap();
    }

    #[test]
    fn a_slot_whose_change_time_is_trusted_is_still_read_once_anything_changes_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let pool = WorkspacePool::default();
        let place = dir.path().join("r1/a");
        let ws = pool.take(&place).unwrap();
        let slot = ws.path().to_path_buf();
        // Made long enough ago for its change time to be trusted once it is read empty.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(pool.give_back(ws), None);
        let trusted = pool.free.lock().unwrap()[0].empty_as_of;
        assert!(trusted.is_some(), "ext4 and tmpfs stamp in nanoseconds");
        // Nothing changed: empty without reading it, and still trusted.
        let ws = pool.take(&place).unwrap();
        assert_eq!(pool.give_back(ws), None);
        assert_eq!(pool.free.lock().unwrap()[0].empty_as_of, trusted);
        // A file made at once after it was handed out moves the change time: it is read.
        let ws = pool.take(&place).unwrap();
        std::fs::write(slot.join("left"), "x").unwrap();
        assert_eq!(pool.give_back(ws), Some(place.clone()));
        assert_eq!(names(&place), ["left"]);
        // Made and removed: read, found empty, and its new change time too recent to trust.
        let ws = pool.take(&dir.path().join("r1/b")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(pool.give_back(ws), None);
        let ws = pool.take(&dir.path().join("r1/b")).unwrap();
        std::fs::write(ws.path().join("tmp"), "").unwrap();
        std::fs::remove_file(ws.path().join("tmp")).unwrap();
        assert_eq!(pool.give_back(ws), None);
        assert_eq!(pool.free.lock().unwrap()[0].empty_as_of, None);
    }

    #[test]
    fn change_times_are_trusted_only_when_fine_grained_and_old_enough() {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE).unwrap();
        let ago = |ms: i64| {
            let ns = now.tv_sec() * 1_000_000_000 + now.tv_nsec() - ms * 1_000_000 + 123;
            ChangeTime(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
        };
        assert!(ago(1000).trusted().is_some());
        assert!(ago(0).trusted().is_none(), "changes this tick can share it");
        assert!(
            ago(1).trusted().is_none(),
            "within the margin of the coarse clock"
        );
        assert!(
            ChangeTime(ago(1000).0, 0).trusted().is_none(),
            "stamped in whole seconds"
        );
        assert!(
            ChangeTime(ago(1000).0, 7_000_000).trusted().is_none(),
            "stamped in whole milliseconds"
        );
    }
}

//! The data dir a server or a local run works in: made on first use, held by one process at a
//! time (an exclusive lock on its `lock` file, which names the holder's PID), and the instance
//! id made once for it, which names this Gantry's processes and containers.

use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The data dir, held: nobody else can use it until this is dropped (or the process ends, even
/// by `kill -9`: the lock goes with the open file).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Makes the folder if needed and takes its lock. Another holder makes this fail with an
    /// error naming the folder and the holder's PID; nothing in the folder is touched then.
    pub fn lock(path: &Path) -> anyhow::Result<DataDir> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create the data dir {}", path.display()))?;
        // Private to its owner: it holds the database, the logs and the secret store's key.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make the data dir {} private", path.display()))?;
        // What an earlier release made there with looser modes becomes private too.
        for entry in std::fs::read_dir(path)
            .with_context(|| format!("cannot read the data dir {}", path.display()))?
            .flatten()
        {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let mode = if kind.is_dir() {
                0o700
            } else if kind.is_file() {
                0o600
            } else {
                continue;
            };
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode));
        }
        let lock_path = path.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    pid => format!("another gantry (PID {pid})"),
                };
                anyhow::bail!(
                    "the data dir {} is in use by {holder}; stop it, or give this one another --data-dir",
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        // Ours now: say who holds it.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", lock_path.display()))?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: file,
        })
    }

    /// Holds the data dir until the process ends, however it ends: after the runtime and the
    /// jobs and writes it still drives have stopped, not when a command's code returns.
    pub fn until_exit(self) -> &'static DataDir {
        Box::leak(Box::new(self))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This data dir's instance id, made on its first use and kept in `node-id`: it names
    /// this Gantry's lease holder, job processes and containers, stable across restarts.
    pub fn instance_id(&self) -> anyhow::Result<String> {
        let file = self.path.join("node-id");
        match std::fs::read_to_string(&file) {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            _ => {
                let id = format!("node-{}", gantry_engine::ids::new_run_id().to_lowercase());
                std::fs::write(&file, &id)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                Ok(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let first = DataDir::lock(&path).unwrap();
        let err = DataDir::lock(&path).unwrap_err().to_string();
        assert!(err.contains("is in use by another gantry"), "{err}");
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        drop(first);
        let again = DataDir::lock(&path).unwrap();
        let id = again.instance_id().unwrap();
        assert!(id.starts_with("node-"), "{id}");
        assert_eq!(again.instance_id().unwrap(), id, "made once");
    }
}

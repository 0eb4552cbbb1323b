//! Where the engine keeps files under the data directory: job logs and workspaces.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path) -> Self {
        Layout {
            root: data_dir.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// `logs/<run>/<job>.<attempt>.log`: one file per attempt, so a retry does not overwrite
    /// the log of the attempt that failed.
    pub fn log_path(&self, run_id: &str, job: &str, attempt: u32) -> PathBuf {
        self.logs_dir()
            .join(run_id)
            .join(format!("{job}.{attempt}.log"))
    }

    /// `work/<run>/<job>`: the job's workspace (emptied before each attempt).
    pub fn workspace(&self, run_id: &str, job: &str) -> PathBuf {
        self.work_dir().join(run_id).join(job)
    }
}

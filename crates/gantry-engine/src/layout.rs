//! Where the engine keeps files under the data directory: job logs (see `logs`), workspaces
//! and the artifacts jobs keep for the jobs that need them.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    work: PathBuf,
}

impl Layout {
    /// Workspaces under `data_dir/work`.
    pub fn new(data_dir: &Path) -> Self {
        Layout {
            root: data_dir.to_path_buf(),
            work: data_dir.join("work"),
        }
    }

    /// Workspaces under `work` instead (for jobs running as another user, who cannot enter
    /// the data dir).
    pub fn with_work_dir(mut self, work: &Path) -> Self {
        self.work = work.to_path_buf();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.work.clone()
    }

    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// `artifacts/<run>/<job>`: what the job's latest successful attempt kept.
    pub fn artifacts(&self, run_id: &str, job: &str) -> PathBuf {
        self.artifacts_dir().join(run_id).join(job)
    }

    /// `work/<run>/<job>`: the job's workspace. Each attempt runs in a new, empty folder here
    /// (the executors move an earlier attempt's files aside and remove them), and the files
    /// the latest attempt left stay here.
    pub fn workspace(&self, run_id: &str, job: &str) -> PathBuf {
        self.work_dir().join(run_id).join(job)
    }
}

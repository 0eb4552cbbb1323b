//! Where the engine keeps files under the data directory: job logs (see `logs`) and workspaces.

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

    /// `work/<run>/<job>`: the job's workspace. Each attempt runs in a new, empty folder here
    /// (the executors move an earlier attempt's files aside and remove them), and the files
    /// the latest attempt left stay here.
    pub fn workspace(&self, run_id: &str, job: &str) -> PathBuf {
        self.work_dir().join(run_id).join(job)
    }
}

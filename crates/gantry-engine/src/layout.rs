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

    /// Where jobs' caches live: `cache/local` for local runs, `cache/repo/OWNER/NAME` for a
    /// repository's runs, and under it `pr-N` for a pull request from a fork (whose code
    /// may read and write only its own).
    pub fn cache_scope(&self, repo: Option<&str>, fork_pr: Option<u64>) -> PathBuf {
        let base = self.root.join("cache");
        let Some((owner, name)) = repo.and_then(|r| r.split_once('/')) else {
            return base.join("local");
        };
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let scope = base.join("repo").join(clean(owner)).join(clean(name));
        match fork_pr {
            Some(n) => scope.join(format!("pr-{n}")),
            None => scope,
        }
    }

    /// `work/<run>/<job>`: the job's workspace. Each attempt runs in a new, empty folder here
    /// (the executors move an earlier attempt's files aside and remove them), and the files
    /// the latest attempt left stay here.
    pub fn workspace(&self, run_id: &str, job: &str) -> PathBuf {
        self.work_dir().join(run_id).join(job)
    }
}

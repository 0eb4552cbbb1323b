//! A local run's working tree: the files of the folder `gantry run` works on, copied into each
//! job's workspace before its commands (as `act` does), so jobs see the code as it is on disk.
//! In a git repository, the files git would list (committed, changed and new; what
//! `.gitignore` ignores left out); elsewhere, every file. Gantry's own folder (`.gantry`) and
//! `.git` never go. Files are copied, never linked: a job that writes to one changes its copy.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

/// What is copied: the files under `root`, listed once when the run starts.
#[derive(Debug, Clone)]
pub struct WorkingTree {
    root: PathBuf,
    files: Vec<PathBuf>,
}

impl WorkingTree {
    /// The files under `root` (made absolute), without anything under `skip` (the run's data
    /// dir, when it is inside). The error names the folder and why it cannot be read.
    pub fn list(root: &Path, skip: &[PathBuf]) -> Result<WorkingTree, String> {
        let root = std::path::absolute(root)
            .and_then(|r| r.canonicalize())
            .map_err(|e| format!("cannot read the folder {}: {e}", root.display()))?;
        if !root.is_dir() {
            return Err(format!("{} is not a folder", root.display()));
        }
        let skip: Vec<PathBuf> = skip
            .iter()
            .filter_map(|s| std::path::absolute(s).ok())
            .filter_map(|s| s.canonicalize().ok().or(Some(s)))
            .collect();
        let listed = match git_files(&root) {
            Some(files) => files,
            None => {
                let mut files = Vec::new();
                walk(&root, Path::new(""), &mut files)
                    .map_err(|e| format!("cannot read the folder {}: {e}", root.display()))?;
                files
            }
        };
        let files = listed
            .into_iter()
            .filter(|f| {
                let first = f.components().next();
                !matches!(first, Some(Component::Normal(n)) if n == ".gantry" || n == ".git")
                    && !skip.iter().any(|s| root.join(f).starts_with(s))
            })
            .collect();
        Ok(WorkingTree { root, files })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Copies the files into `dest` (an empty folder), keeping modes and symbolic links; a
    /// file gone since the listing is passed over. The number copied.
    pub fn copy_into(&self, dest: &Path) -> io::Result<usize> {
        copy_listed(&self.root, &self.files, dest)
    }
}

pub(crate) use crate::safe_copy::copy_listed;

/// What `git ls-files` lists under `root` (tracked, and untracked but not ignored); `None`
/// when `root` is not in a git repository or git cannot be run.
fn git_files(root: &Path) -> Option<Vec<PathBuf>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut files: Vec<PathBuf> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .filter(|p| p.is_relative() && !p.components().any(|c| c == Component::ParentDir))
        .collect();
    files.sort();
    files.dedup();
    Some(files)
}

/// What a path of `root` names, as files relative to `root`: the file (or link) itself, every
/// file under it when it is a folder, nothing when it is missing. `rel` itself is not
/// followed if it is a link.
pub(crate) fn files_at(root: &Path, rel: &Path) -> io::Result<Vec<PathBuf>> {
    let at = root.join(rel);
    match std::fs::symlink_metadata(&at) {
        Ok(m) if m.is_dir() => {
            let mut files = Vec::new();
            walk(&at, rel, &mut files)?;
            Ok(files)
        }
        Ok(_) => Ok(vec![rel.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Every file and link under `dir` (relative to the tree's root, `rel`), `.git` left out;
/// links are not followed.
pub(crate) fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name == ".git" {
            continue;
        }
        let path = rel.join(&name);
        if e.file_type()?.is_dir() {
            walk(&e.path(), &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    fn files_of(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        walk(dir, Path::new(""), &mut out).unwrap();
        out.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn a_repositorys_committed_changed_and_new_files_are_copied_and_ignored_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("src")).unwrap();
        git(&root, &["init", "--quiet"]);
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        std::fs::write(root.join("Makefile"), "test:\n\ttrue\n").unwrap();
        std::fs::write(root.join("src/lib.rs"), "old").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "--quiet", "-m", "x"]);
        std::fs::write(root.join("src/lib.rs"), "changed").unwrap();
        std::fs::write(root.join("new.txt"), "new").unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("target/big"), "built").unwrap();
        std::fs::write(root.join("run.log"), "log").unwrap();
        std::fs::create_dir_all(root.join(".gantry/local")).unwrap();
        std::fs::write(root.join(".gantry/local/db"), "db").unwrap();
        let script = root.join("build.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("Makefile", root.join("link")).unwrap();

        let tree = WorkingTree::list(&root, &[]).unwrap();
        let dest = dir.path().join("ws");
        std::fs::create_dir(&dest).unwrap();
        assert_eq!(tree.copy_into(&dest).unwrap(), 6);
        assert_eq!(
            files_of(&dest),
            [
                ".gitignore",
                "Makefile",
                "build.sh",
                "link",
                "new.txt",
                "src/lib.rs"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("src/lib.rs")).unwrap(),
            "changed"
        );
        let mode = std::fs::metadata(dest.join("build.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            Path::new("Makefile")
        );
        // A job's write changes its copy only.
        std::fs::write(dest.join("Makefile"), "mine").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("Makefile")).unwrap(),
            "test:\n\ttrue\n"
        );
    }
}

//! Artifacts on the executor's side. Before a job's commands, what the jobs it needs kept is
//! laid into its workspace; after they succeed, the files its `artifacts` name are copied out
//! of the workspace into its store (a new folder renamed into place, so a store is never
//! half-written). Links are kept as links and never followed, on either side (`safe_copy`);
//! a path that leads out of the workspace through one is refused, naming it.

use crate::safe_copy::stage_beside;
use crate::tree::{copy_listed, files_at, walk};
use gantry_core::spec::artifacts::{glob_keeps, is_glob};
use gantry_engine::ports::Artifacts;
use std::io;
use std::path::{Path, PathBuf};

/// Copies each needed job's store into `workspace`; the log lines saying what came from where.
pub(crate) fn lay_in(artifacts: &Artifacts, workspace: &Path) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for (job, store) in &artifacts.take {
        if !store.is_dir() {
            lines.push(format!("gantry: {job} kept no artifacts"));
            continue;
        }
        let mut files = Vec::new();
        walk(store, Path::new(""), &mut files)
            .and_then(|()| copy_listed(store, &files, workspace))
            .map_err(|e| format!("cannot lay in the artifacts of {job}: {e}"))?;
        lines.push(format!(
            "gantry: laid in {} artifact file(s) of {job}",
            files.len()
        ));
    }
    Ok(lines)
}

/// The workspace files `artifacts.keep` names, relative to it; the log lines for paths that
/// matched nothing. A path through a link out of the workspace is an error.
fn kept_files(keep: &[String], workspace: &Path) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    let real_workspace = workspace
        .canonicalize()
        .map_err(|e| format!("cannot read the workspace: {e}"))?;
    let mut all: Option<Vec<PathBuf>> = None;
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for path in keep {
        let before = files.len();
        if is_glob(path) {
            if all.is_none() {
                let mut listed = Vec::new();
                walk(workspace, Path::new(""), &mut listed)
                    .map_err(|e| format!("cannot read the workspace: {e}"))?;
                all = Some(listed);
            }
            let listed = all.as_deref().unwrap_or_default();
            files.extend(
                listed
                    .iter()
                    .filter(|f| glob_keeps(path, &f.to_string_lossy()))
                    .cloned(),
            );
        } else {
            let rel = PathBuf::from(path.trim_start_matches("./").trim_end_matches('/'));
            let at = workspace.join(&rel);
            // Every folder on the way must be a real one inside the workspace.
            if let Some(parent) = at.parent()
                && parent.exists()
                && !parent
                    .canonicalize()
                    .is_ok_and(|p| p.starts_with(&real_workspace))
            {
                return Err(format!(
                    "artifact path `{path}` leads out of the workspace through a link"
                ));
            }
            files
                .extend(files_at(workspace, &rel).map_err(|e| format!("cannot read {path}: {e}"))?);
        }
        if files.len() == before {
            notes.push(format!("gantry: artifact path `{path}` matched no file"));
        }
    }
    files.sort();
    files.dedup();
    Ok((files, notes))
}

/// Keeps what `artifacts.keep` names of `workspace` in `artifacts.store`, replacing what was
/// there; the log lines saying what was kept.
pub(crate) fn keep(artifacts: &Artifacts, workspace: &Path) -> Result<Vec<String>, String> {
    if artifacts.keep.is_empty() {
        return Ok(Vec::new());
    }
    let (files, mut lines) = kept_files(&artifacts.keep, workspace)?;
    let store = &artifacts.store;
    let parent = store
        .parent()
        .ok_or_else(|| format!("{} is not a store folder", store.display()))?;
    let name = store.file_name().unwrap_or_default().to_string_lossy();
    let fail = |e: io::Error| format!("cannot keep the artifacts in {}: {e}", store.display());
    let (temp, copied) = stage_beside(store, workspace, &files).map_err(fail)?;
    // The earlier attempt's store goes, then the new one takes its name. A crash between the
    // two leaves none: the attempt's success was not recorded yet, so it runs again and keeps
    // them again, and no job that needs it has started.
    if store.exists() {
        let old = parent.join(format!(".old-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(store, &old).map_err(fail)?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(&temp, store).map_err(fail)?;
    lines.push(format!(
        "gantry: kept {copied} artifact file(s) ({})",
        artifacts.keep.join(", ")
    ));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_files_are_laid_into_a_needing_jobs_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("dist/sub")).unwrap();
        std::fs::create_dir_all(ws.join("logs/deep")).unwrap();
        std::fs::write(ws.join("dist/app"), "bin").unwrap();
        std::fs::write(ws.join("dist/sub/x"), "x").unwrap();
        std::fs::write(ws.join("logs/a.txt"), "a").unwrap();
        std::fs::write(ws.join("logs/deep/b.txt"), "b").unwrap();
        std::fs::write(ws.join("other"), "no").unwrap();
        let store = dir.path().join("artifacts/run/build");
        let a = Artifacts {
            keep: vec!["dist/".into(), "logs/*.txt".into(), "missing".into()],
            store: store.clone(),
            take: vec![],
        };
        let lines = keep(&a, &ws).unwrap();
        assert!(
            lines.iter().any(|l| l.contains("kept 3 artifact file(s)")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("`missing` matched no file")),
            "{lines:?}"
        );
        // Kept again (a later attempt): replaced whole.
        std::fs::remove_file(ws.join("dist/sub/x")).unwrap();
        keep(&a, &ws).unwrap();
        let into = dir.path().join("next");
        std::fs::create_dir(&into).unwrap();
        let take = Artifacts {
            take: vec![
                ("build".into(), store),
                ("lint".into(), dir.path().join("artifacts/run/lint")),
            ],
            ..Artifacts::default()
        };
        let lines = lay_in(&take, &into).unwrap();
        assert_eq!(
            lines,
            [
                "gantry: laid in 2 artifact file(s) of build",
                "gantry: lint kept no artifacts"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(into.join("dist/app")).unwrap(),
            "bin"
        );
        assert!(into.join("logs/a.txt").exists() && !into.join("logs/deep/b.txt").exists());
        assert!(!into.join("other").exists() && !into.join("dist/sub/x").exists());
    }

    #[test]
    fn a_path_through_a_link_out_of_the_workspace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), ws.join("dist")).unwrap();
        let a = Artifacts {
            keep: vec!["dist/secret".into()],
            store: dir.path().join("store"),
            take: vec![],
        };
        let err = keep(&a, &ws).unwrap_err();
        assert!(err.contains("leads out of the workspace"), "{err}");
        // The link itself (not what it points at) may be kept.
        let a = Artifacts {
            keep: vec!["dist".into(), "**".into()],
            ..a
        };
        keep(&a, &ws).unwrap();
        let kept = dir.path().join("store/dist");
        assert!(
            std::fs::symlink_metadata(&kept)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

//! Jobs' caches on the executor's side. Before the commands, the cache of the job's key (its
//! name plus a hash of its `files`) is restored into the workspace when there is one; after
//! the commands succeed, the `paths` are saved under that key when there was none — written
//! to a new folder and renamed into place, so a cache is whole or absent, and the first of
//! two jobs saving the same key wins.

use crate::safe_copy::read_regular;
use crate::safe_copy::stage_beside;
use crate::tree::{copy_listed, files_at, walk};
use gantry_engine::ports::JobCache;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The largest file hashed into a key.
const MAX_KEY_FILE: u64 = 64 << 20;

/// The key's folder: `scope/keys/KEY[-HASH]`, the hash (FNV-1a, 64 bits) of the `files` in
/// order, their paths and contents (a missing file, or one that is not a regular file, counts
/// as missing). Read without following links, at most 64 MiB each.
fn key_dir(cache: &JobCache, workspace: &Path) -> Result<PathBuf, String> {
    let mut key = cache.spec.key.clone();
    if !cache.spec.files.is_empty() {
        let mut h: u64 = 0xcbf29ce484222325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
            }
        };
        for f in &cache.spec.files {
            feed(f.as_bytes());
            feed(&[0]);
            match read_regular(workspace, Path::new(f), MAX_KEY_FILE) {
                Ok(Some(bytes)) => feed(&bytes),
                Ok(None) => feed(b"\0missing\0"),
                Err(e) => return Err(format!("the cache key's file {f}: {e}")),
            }
        }
        key = format!("{key}-{h:016x}");
    }
    Ok(cache.scope.join("keys").join(key))
}

/// Restores the key's cache into `workspace`, if there is one; the log line saying which. The
/// key is worked out here, once: the save after the commands uses it (a job that changes its
/// lock file saves under the key it was restored with). A key that cannot be worked out
/// leaves the job without a cache, said in the log.
pub(crate) fn restore(cache: &JobCache, workspace: &Path) -> Result<String, String> {
    let dir = match key_dir(cache, workspace) {
        Ok(dir) => dir,
        Err(why) => return Ok(format!("gantry: no cache: {why}")),
    };
    let _ = cache.resolved.set(dir.clone());
    let key = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    if !dir.is_dir() {
        return Ok(format!(
            "gantry: cache {key}: none yet (saved if the job succeeds)"
        ));
    }
    // Used: the janitor keeps caches by when they were last used.
    let _ = File::open(&dir).and_then(|d| d.set_modified(std::time::SystemTime::now()));
    let mut files = Vec::new();
    walk(&dir, Path::new(""), &mut files)
        .and_then(|()| copy_listed(&dir, &files, workspace))
        .map_err(|e| format!("cannot restore the cache {key}: {e}"))?;
    Ok(format!(
        "gantry: cache {key}: restored {} file(s)",
        files.len()
    ))
}

/// After a success: saves the `paths` under the key restore worked out when it had no cache;
/// the log line, if anything was saved. Paths are read without following links.
pub(crate) fn save(cache: &JobCache, workspace: &Path) -> Result<Option<String>, String> {
    let Some(dir) = cache.resolved.get().cloned() else {
        return Ok(None);
    };
    if dir.exists() {
        return Ok(None);
    }
    let key = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let fail = |e: io::Error| format!("cannot save the cache {key}: {e}");
    let mut files = Vec::new();
    for p in &cache.spec.paths {
        let rel = PathBuf::from(p.trim_start_matches("./").trim_end_matches('/'));
        files.extend(files_at(workspace, &rel).map_err(fail)?);
    }
    // (A listing raced through a swapped link lists names the copy then cannot reach.)
    let (temp, copied) = stage_beside(&dir, workspace, &files).map_err(fail)?;
    if std::fs::rename(&temp, &dir).is_err() {
        // Another job saved this key meanwhile: its cache stands.
        let _ = std::fs::remove_dir_all(&temp);
        return Ok(None);
    }
    Ok(Some(format!("gantry: cache {key}: saved {copied} file(s)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_core::spec::CacheSpec;

    #[test]
    fn saved_after_a_miss_restored_on_a_hit_and_a_new_key_when_the_lock_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = JobCache {
            spec: CacheSpec {
                key: "deps".into(),
                files: vec!["deps.lock".into()],
                paths: vec!["vendor/".into(), "tool.bin".into()],
            },
            scope: dir.path().join("cache/local"),
            resolved: Default::default(),
        };
        let first = dir.path().join("w1");
        std::fs::create_dir_all(first.join("vendor/a")).unwrap();
        std::fs::write(first.join("deps.lock"), "v1").unwrap();
        std::fs::write(first.join("vendor/a/lib"), "lib").unwrap();
        std::fs::write(first.join("tool.bin"), "t").unwrap();
        assert!(restore(&cache, &first).unwrap().contains("none yet"));
        // The job changes its lock file: the save keeps the key it was restored with.
        std::fs::write(first.join("deps.lock"), "changed by the job").unwrap();
        let saved = save(&cache, &first).unwrap().unwrap();
        assert!(saved.contains("saved 2 file(s)"), "{saved}");
        assert_eq!(save(&cache, &first).unwrap(), None, "a hit saves nothing");

        let fresh = |c: &JobCache| JobCache {
            resolved: Default::default(),
            ..c.clone()
        };
        let cache = fresh(&cache);
        let second = dir.path().join("w2");
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("deps.lock"), "v1").unwrap();
        assert!(
            restore(&cache, &second)
                .unwrap()
                .contains("restored 2 file(s)")
        );
        assert_eq!(
            std::fs::read_to_string(second.join("vendor/a/lib")).unwrap(),
            "lib"
        );

        let cache = fresh(&cache);
        let third = dir.path().join("w3");
        std::fs::create_dir_all(&third).unwrap();
        std::fs::write(third.join("deps.lock"), "v2").unwrap();
        assert!(restore(&cache, &third).unwrap().contains("none yet"));
        assert!(!third.join("vendor").exists());
    }
}

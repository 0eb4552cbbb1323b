//! A job's `cache: {key, files, paths}`: folders (dependencies, build output) restored before
//! its commands from an earlier run with the same key, and saved after it succeeds when there
//! was nothing to restore. The key is the given name plus, with `files`, a hash of those
//! files' contents (a lock file), so a change to them starts a new cache.

use super::model::CacheSpec;
use super::node::Node;
use super::read::{Reader, join, lookup};

/// A cache key's name: letters, digits, `.`, `_` and `-`, at most 128, not starting with `.`.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && !key.starts_with('.')
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cache key `{}` must be letters, digits, `.`, `_` and `-` (at most 128), not starting with `.`",
            key.escape_debug()
        ))
    }
}

impl Reader {
    /// `cache:` of a job.
    pub(super) fn cache(
        &mut self,
        node: &Node,
        path: &str,
        job: Option<&str>,
    ) -> Option<CacheSpec> {
        let map = self.mapping(
            node,
            path,
            job,
            "`cache` must be a mapping with `key`, `paths` and optionally `files`",
        )?;
        self.check_keys(map, &["key", "files", "paths"], path, job);
        let key = match lookup(map, "key") {
            None => {
                self.err(path, job, node.pos, "`cache` needs a `key`");
                None
            }
            Some(n) => self.string(n, &join(path, "key"), job).filter(|k| {
                let checked = check_key(k);
                if let Err(why) = &checked {
                    self.err(&join(path, "key"), job, n.pos, why.clone());
                }
                checked.is_ok()
            }),
        };
        let mut list = |name: &str, required: bool| -> Vec<String> {
            let at = join(path, name);
            let Some(n) = lookup(map, name) else {
                if required {
                    self.err(path, job, node.pos, format!("`cache` needs `{name}`"));
                }
                return Vec::new();
            };
            let items = self.strings(n, &|| at.clone(), job).unwrap_or_default();
            if required && items.is_empty() {
                self.err(&at, job, n.pos, format!("`{name}` is empty"));
            }
            items
                .into_iter()
                .enumerate()
                .filter_map(|(i, (s, p))| {
                    let checked = super::artifacts::check_path(&s).and_then(|()| {
                        if super::artifacts::is_glob(&s) {
                            Err(format!(
                                "cache path `{s}` is a glob: name files and folders"
                            ))
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(why) = &checked {
                        self.err(&format!("{at}[{i}]"), job, p, why.clone());
                    }
                    checked.ok().map(|()| s)
                })
                .collect()
        };
        let files = list("files", false);
        let paths = list("paths", true);
        Some(CacheSpec {
            key: key?,
            files,
            paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key("cargo-v1.2_x").is_ok());
        for bad in ["", "a b", "a/b", ".", "..", ".hidden", &"k".repeat(129)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}

//! Parsers for the fields of a job that need more than "a string or a list": `when`,
//! durations, `retries`, `env`, `source`; and the "did you mean" suggestion for misspellings.
//! Each reports problems through the [`Reader`] and returns a usable default.

use super::model::*;
use super::node::{Node, Value};
use super::read::{Reader, entries, join, lookup, valid_env_name};
use crate::duration::parse_duration_ms;
use std::collections::BTreeMap;

impl Reader {
    /// `when:` — a mapping, or a list of mappings of which any one lets the job run.
    pub(super) fn when(&mut self, node: &Node, path: &str, job: Option<&str>) -> When {
        let Value::Seq(items) = &node.value else {
            return When {
                any: vec![self.condition(node, path, job)],
            };
        };
        if items.is_empty() {
            self.err(
                path,
                job,
                node.pos,
                "`when` is an empty list; give at least one condition",
            );
            return When::default();
        }
        let any = items
            .iter()
            .enumerate()
            .map(|(i, n)| self.condition(n, &format!("{path}[{i}]"), job))
            .collect();
        When { any }
    }

    fn condition(&mut self, node: &Node, path: &str, job: Option<&str>) -> Condition {
        let mut cond = Condition::default();
        let Some(map) = self.mapping(
            node,
            path,
            job,
            "a `when` condition must be a mapping with `status`, `event`, `branch`, `tag` or `path`",
        ) else {
            return cond;
        };
        self.check_keys(
            map,
            &["status", "event", "branch", "tag", "path"],
            path,
            job,
        );
        if let Some(n) = lookup(map, "status") {
            let sp = join(path, "status");
            let items = self.strings(n, &|| sp.clone(), job).unwrap_or_default();
            if items.is_empty() {
                self.err(
                    &sp,
                    job,
                    n.pos,
                    "`status` is empty; use success, failure or both",
                );
            } else {
                cond.status.success = false;
                for (s, p) in items {
                    match s.as_str() {
                        "success" => cond.status.success = true,
                        "failure" => cond.status.failure = true,
                        other => self.err(
                            &sp,
                            job,
                            p,
                            format!("unknown status `{other}`; expected success or failure"),
                        ),
                    }
                }
            }
        }
        let list = |b: &mut Self, key: &str| -> Vec<String> {
            lookup(map, key)
                .map(|n| {
                    b.strings(n, &|| join(path, key), job)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect()
                })
                .unwrap_or_default()
        };
        cond.event = list(self, "event");
        cond.branch = list(self, "branch");
        cond.tag = list(self, "tag");
        cond.path = list(self, "path");
        cond
    }

    /// `container: {user, cpus, memory, network}`.
    pub(super) fn container(
        &mut self,
        node: &Node,
        path: &str,
        job: Option<&str>,
    ) -> ContainerOpts {
        let mut c = ContainerOpts::default();
        let Some(map) = self.mapping(
            node,
            path,
            job,
            "`container` must be a mapping with `user`, `cpus`, `memory` or `network`",
        ) else {
            return c;
        };
        self.check_keys(map, &["user", "cpus", "memory", "network"], path, job);
        if let Some(n) = lookup(map, "user") {
            c.user = match &n.value {
                Value::Int(i) if *i >= 0 => Some(i.to_string()),
                _ => self.string(n, &join(path, "user"), job),
            };
        }
        if let Some(n) = lookup(map, "cpus") {
            let cpus = match n.value {
                Value::Int(i) => Some(i as f64),
                Value::Float(f) => Some(f),
                _ => None,
            };
            match cpus {
                Some(x) if x > 0.0 && x <= 256.0 => {
                    c.cpus_milli = Some((x * 1000.0).round() as u32)
                }
                _ => self.err(
                    &join(path, "cpus"),
                    job,
                    n.pos,
                    "`cpus` must be a number of CPUs above 0, like 1.5",
                ),
            }
        }
        if let Some(n) = lookup(map, "memory") {
            match n.as_str().map(crate::size::parse_bytes) {
                Some(Ok(b)) if b >= 6 << 20 => c.memory_bytes = Some(b),
                Some(Ok(_)) => self.err(
                    &join(path, "memory"),
                    job,
                    n.pos,
                    "`memory` must be at least 6m (Docker's minimum)",
                ),
                Some(Err(e)) => self.err(&join(path, "memory"), job, n.pos, e),
                None => self.err(
                    &join(path, "memory"),
                    job,
                    n.pos,
                    "`memory` must be a size like 512m or 2g",
                ),
            }
        }
        if let Some(n) = lookup(map, "network") {
            c.network = self.string(n, &join(path, "network"), job);
        }
        c
    }

    pub(super) fn duration(
        &mut self,
        node: &Node,
        path: &str,
        job: Option<&str>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match &node.value {
            Value::Int(i) if *i >= 0 => parse_duration_ms(&i.to_string()),
            Value::Str(s) => parse_duration_ms(s),
            _ => Err(format!(
                "expected a duration like `10m` or a number of seconds, found {}",
                node.kind()
            )),
        };
        match parsed {
            Err(msg) => {
                self.err(path, job, node.pos, msg);
                None
            }
            Ok(ms) if ms < min => {
                self.err(path, job, node.pos, "duration must be greater than zero");
                None
            }
            Ok(ms) if ms > max => {
                self.err(
                    path,
                    job,
                    node.pos,
                    format!(
                        "{} is longer than the limit of {}",
                        crate::duration::format_duration_ms(ms),
                        crate::duration::format_duration_ms(max)
                    ),
                );
                None
            }
            Ok(ms) => Some(ms),
        }
    }

    /// `true` or `false`.
    pub(super) fn boolean(&mut self, node: &Node, path: &str, job: Option<&str>) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.err(
                    path,
                    job,
                    node.pos,
                    format!("expected true or false, found {}", node.kind()),
                );
                None
            }
        }
    }

    pub(super) fn retries(&mut self, node: &Node, path: &str, job: Option<&str>) -> (u32, u64) {
        let count = |b: &mut Self, n: &Node, p: &str| match n.value {
            Value::Int(i) if (0..=MAX_RETRIES as i64).contains(&i) => i as u32,
            _ => {
                b.err(
                    p,
                    job,
                    n.pos,
                    format!("expected a number of retries from 0 to {MAX_RETRIES}"),
                );
                0
            }
        };
        match entries(node) {
            None => (count(self, node, path), DEFAULT_RETRY_BACKOFF_MS),
            Some(map) => {
                self.check_keys(map, &["count", "backoff"], path, job);
                let c = lookup(map, "count")
                    .map(|n| count(self, n, &join(path, "count")))
                    .unwrap_or(1);
                let b = lookup(map, "backoff")
                    .and_then(|n| self.duration(n, &join(path, "backoff"), job, 0, 3_600_000))
                    .unwrap_or(DEFAULT_RETRY_BACKOFF_MS);
                (c, b)
            }
        }
    }

    pub(super) fn env(
        &mut self,
        node: &Node,
        path: &str,
        job: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some(map) = self.mapping(
            node,
            path,
            job,
            "expected a mapping of variable name to value",
        ) else {
            return env;
        };
        for (k, v) in map {
            let at = join(path, &k.name);
            if !valid_env_name(&k.name) {
                self.err(
                    &at,
                    job,
                    k.pos,
                    format!("`{}` is not a valid environment variable name", k.name),
                );
            } else if k.name.starts_with("GANTRY_") {
                self.err(&at, job, k.pos, "names starting with GANTRY_ are reserved");
            }
            match v.scalar_text() {
                Some(text) => {
                    env.insert(k.name.clone(), text);
                }
                None => self.err(
                    &at,
                    job,
                    v.pos,
                    format!("expected a string, number or boolean, found {}", v.kind()),
                ),
            }
        }
        env
    }

    pub(super) fn source(&mut self, node: &Node, path: &str, job: Option<&str>) -> Option<Source> {
        let map = self.mapping(node, path, job, "expected a mapping with `git`")?;
        self.check_keys(map, &["git"], path, job);
        let git = lookup(map, "git")?;
        let gp = join(path, "git");
        let g = self.mapping(git, &gp, job, "expected a mapping with `url` and `ref`")?;
        self.check_keys(g, &["url", "ref"], &gp, job);
        let url = match lookup(g, "url") {
            Some(n) => self.string(n, &join(&gp, "url"), job)?,
            None => {
                self.err(&join(&gp, "url"), job, git.pos, "missing `url`");
                return None;
            }
        };
        let git_ref = lookup(g, "ref").and_then(|n| self.string(n, &join(&gp, "ref"), job));
        Some(Source {
            git: GitSource { url, git_ref },
        })
    }
}

/// The allowed word nearest to a misspelling, if it is near enough to be a likely typo.
pub(super) fn closest<'a>(
    word: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    options
        .into_iter()
        .map(|o| (edit_distance(word, o), o))
        .filter(|(d, o)| *d <= 2.max(o.len() / 4) && *d < o.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

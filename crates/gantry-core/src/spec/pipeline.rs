//! What a pipeline file (`.gantry.yml`) adds to a run spec: `on:` (which pushes and pull
//! requests start it, with GitHub Actions' filter semantics), `concurrency:` (a newer run
//! cancels the older one of the same group) and `report:`. The filters are checked here
//! against a [`RunContext`], purely.

use super::model::{RunContext, glob_match};
use super::node::{Node, Value};
use super::read::{Reader, join, lookup};
use serde::{Deserialize, Serialize};

/// `on:` — the events that start a pipeline. An absent key means that event does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triggers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<TriggerFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<TriggerFilter>,
}

/// Globs over branches, tags and changed paths; a leading `!` excludes (the last matching
/// pattern decides, as in GitHub Actions). Empty lists filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Pull request actions (default: opened, synchronize, reopened).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

/// Pull request actions that start a pipeline unless `types:` says otherwise.
pub const DEFAULT_PR_TYPES: [&str; 3] = ["opened", "synchronize", "reopened"];

/// `concurrency:` — runs of one group: a newer one cancels the older still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    /// `{branch}`, `{pr}`, `{event}` and `{repo}` are filled from the run's context. Default:
    /// `{name}/{branch}` for pushes, `{name}/pr-{pr}` for pull requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub cancel_in_progress: bool,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            group: None,
            cancel_in_progress: true,
        }
    }
}

impl Concurrency {
    /// The group key of a run of pipeline `name` in `ctx`, scoped to its repository.
    pub fn group_key(&self, name: &str, ctx: &RunContext) -> String {
        let pr = ctx.pr.map(|n| n.to_string()).unwrap_or_default();
        let branch = ctx.branch.clone().unwrap_or_default();
        let default = match ctx.pr {
            Some(n) => format!("{name}/pr-{n}"),
            None => format!("{name}/{}", ctx.tag.as_deref().unwrap_or(&branch)),
        };
        let group = match &self.group {
            Some(g) => g
                .replace("{branch}", &branch)
                .replace("{pr}", &pr)
                .replace("{event}", ctx.event.as_deref().unwrap_or(""))
                .replace("{repo}", ctx.repo.as_deref().unwrap_or("")),
            None => default,
        };
        format!("{}:{group}", ctx.repo.as_deref().unwrap_or(""))
    }
}

/// GitHub Actions' include/exclude list: the last pattern that matches decides.
fn list_matches(patterns: &[String], value: &str) -> bool {
    let mut hit = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if glob_match(neg, value) => hit = false,
            None if glob_match(p, value) => hit = true,
            _ => {}
        }
    }
    hit
}

impl Triggers {
    /// Whether a push or pull request (`ctx`, with the pull request's `action`) starts the
    /// pipeline; if not, why, in words fit for the event's record.
    pub fn accepts(&self, ctx: &RunContext, action: Option<&str>) -> Result<(), String> {
        let event = ctx.event.as_deref().unwrap_or("");
        match event {
            "push" => {
                let f = self.push.as_ref().ok_or("`on:` has no `push` trigger")?;
                if let Some(tag) = &ctx.tag {
                    if f.tags.is_empty() && !f.branches.is_empty() {
                        return Err(format!(
                            "tag `{tag}` pushed; `on.push` filters branches only"
                        ));
                    }
                    if !f.tags.is_empty() && !list_matches(&f.tags, tag) {
                        return Err(format!("tag `{tag}` does not match `on.push.tags`"));
                    }
                    return Ok(()); // paths are not evaluated for tags
                }
                let branch = ctx.branch.as_deref().unwrap_or("");
                if f.branches.is_empty() && !f.tags.is_empty() {
                    return Err(format!(
                        "branch `{branch}` pushed; `on.push` filters tags only"
                    ));
                }
                if !f.branches.is_empty() && !list_matches(&f.branches, branch) {
                    return Err(format!(
                        "branch `{branch}` does not match `on.push.branches`"
                    ));
                }
                paths_match(f, ctx, "on.push.paths")
            }
            "pull_request" => {
                let f = self
                    .pull_request
                    .as_ref()
                    .ok_or("`on:` has no `pull_request` trigger")?;
                let action = action.unwrap_or("");
                let typed = if f.types.is_empty() {
                    DEFAULT_PR_TYPES.contains(&action)
                } else {
                    f.types.iter().any(|t| t == action)
                };
                if !typed {
                    return Err(format!(
                        "pull request action `{action}` is not one of `on.pull_request.types`"
                    ));
                }
                let base = ctx.branch.as_deref().unwrap_or("");
                if !f.branches.is_empty() && !list_matches(&f.branches, base) {
                    return Err(format!(
                        "base branch `{base}` does not match `on.pull_request.branches`"
                    ));
                }
                paths_match(f, ctx, "on.pull_request.paths")
            }
            other => Err(format!("pipelines are not started by `{other}` events")),
        }
    }
}

fn paths_match(f: &TriggerFilter, ctx: &RunContext, key: &str) -> Result<(), String> {
    match &ctx.changed_files {
        Some(files) if !f.paths.is_empty() => {
            if files.iter().any(|file| list_matches(&f.paths, file)) {
                Ok(())
            } else {
                Err(format!("no changed file matches `{key}`"))
            }
        }
        _ => Ok(()),
    }
}

const TRIGGER_EVENTS: [&str; 2] = ["push", "pull_request"];
const PR_ACTIONS: [&str; 7] = [
    "opened",
    "synchronize",
    "reopened",
    "closed",
    "edited",
    "labeled",
    "ready_for_review",
];

impl Reader {
    /// `on: push`, `on: [push, pull_request]` or `on: {push: {branches: [...]}, ...}`.
    pub(super) fn triggers(&mut self, node: &Node) -> Triggers {
        let mut t = Triggers::default();
        let mut enable = |b: &mut Self, name: &str, pos, filter: TriggerFilter| match name {
            "push" => t.push = Some(filter),
            "pull_request" => t.pull_request = Some(filter),
            other => b.err(
                &join("on", other),
                None,
                pos,
                format!(
                    "unknown trigger `{other}`; expected one of: {}",
                    TRIGGER_EVENTS.join(", ")
                ),
            ),
        };
        match &node.value {
            Value::Map(entries) => {
                self.check_keys(entries, &TRIGGER_EVENTS, "on", None);
                for (k, v) in entries {
                    if TRIGGER_EVENTS.contains(&k.name.as_str()) {
                        let f = self.trigger_filter(&k.name, v);
                        enable(self, &k.name, k.pos, f);
                    }
                }
            }
            _ => {
                let names = self
                    .strings(node, &|| "on".into(), None)
                    .unwrap_or_default();
                if names.is_empty() {
                    self.err("on", None, node.pos, "`on` names no event");
                }
                for (name, pos) in names {
                    enable(self, &name, pos, TriggerFilter::default());
                }
            }
        }
        t
    }

    fn trigger_filter(&mut self, event: &str, node: &Node) -> TriggerFilter {
        let mut f = TriggerFilter::default();
        if matches!(node.value, Value::Null) {
            return f;
        }
        let path = join("on", event);
        let Some(map) = self.mapping(node, &path, None, "a trigger must be a mapping of filters")
        else {
            return f;
        };
        let allowed: &[&str] = if event == "push" {
            &["branches", "tags", "paths"]
        } else {
            &["branches", "paths", "types"]
        };
        self.check_keys(map, allowed, &path, None);
        let list = |b: &mut Self, key: &str| -> Vec<String> {
            let Some(n) = lookup(map, key) else {
                return Vec::new();
            };
            let items = b.strings(n, &|| join(&path, key), None).unwrap_or_default();
            if items.is_empty() {
                b.err(&join(&path, key), None, n.pos, format!("`{key}` is empty"));
            }
            for (s, pos) in &items {
                if s.is_empty() || s == "!" {
                    b.err(&join(&path, key), None, *pos, "empty pattern");
                }
            }
            items.into_iter().map(|(s, _)| s).collect()
        };
        f.branches = list(self, "branches");
        f.tags = list(self, "tags");
        f.paths = list(self, "paths");
        f.types = list(self, "types");
        if let Some(n) = lookup(map, "types") {
            for t in &f.types {
                if !PR_ACTIONS.contains(&t.as_str()) {
                    self.err(
                        &join(&path, "types"),
                        None,
                        n.pos,
                        format!(
                            "unknown pull request action `{t}`; expected one of: {}",
                            PR_ACTIONS.join(", ")
                        ),
                    );
                }
            }
        }
        f
    }

    /// `concurrency: false`, `concurrency: GROUP` or `{group, cancel_in_progress}`.
    pub(super) fn concurrency(&mut self, node: &Node) -> Option<Concurrency> {
        match &node.value {
            Value::Bool(false) => None,
            Value::Str(group) => Some(Concurrency {
                group: Some(group.clone()),
                cancel_in_progress: true,
            }),
            _ => {
                let mut c = Concurrency::default();
                let map = self.mapping(
                    node,
                    "concurrency",
                    None,
                    "`concurrency` must be false, a group name or a mapping with `group` and `cancel_in_progress`",
                )?;
                self.check_keys(map, &["group", "cancel_in_progress"], "concurrency", None);
                if let Some(n) = lookup(map, "group") {
                    c.group = self.string(n, "concurrency.group", None);
                }
                if let Some(n) = lookup(map, "cancel_in_progress") {
                    match n.value {
                        Value::Bool(b) => c.cancel_in_progress = b,
                        _ => self.err(
                            "concurrency.cancel_in_progress",
                            None,
                            n.pos,
                            format!("expected true or false, found {}", n.kind()),
                        ),
                    }
                }
                Some(c)
            }
        }
    }

    /// `report: comment` (or a list): what a pipeline posts besides commit statuses.
    pub(super) fn report(&mut self, node: &Node) -> Vec<String> {
        let items = self
            .strings(node, &|| "report".into(), None)
            .unwrap_or_default();
        let mut out = Vec::new();
        for (s, pos) in items {
            match s.as_str() {
                "comment" | "status" => out.push(s),
                other => self.err(
                    "report",
                    None,
                    pos,
                    format!("unknown report `{other}`; expected comment or status"),
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Format, Limits, parse_spec};

    fn triggers(yaml: &str) -> Triggers {
        let text = format!("{yaml}\njobs: {{t: {{run: [make]}}}}\n");
        parse_spec(text.as_bytes(), Format::Yaml, "p", &Limits::default())
            .unwrap()
            .on
            .unwrap()
    }

    fn push(branch: &str, files: Option<&[&str]>) -> RunContext {
        RunContext {
            event: Some("push".into()),
            branch: Some(branch.into()),
            changed_files: files.map(|f| f.iter().map(|s| s.to_string()).collect()),
            ..RunContext::default()
        }
    }

    #[test]
    fn push_filters_follow_github_actions() {
        let t = triggers("on: {push: {branches: ['main', 'release/**', '!release/old/*']}}");
        assert!(t.accepts(&push("main", None), None).is_ok());
        assert!(t.accepts(&push("release/1/x", None), None).is_ok());
        let err = t.accepts(&push("release/old/x", None), None).unwrap_err();
        assert!(err.contains("does not match `on.push.branches`"), "{err}");
        assert!(t.accepts(&push("dev", None), None).is_err());
        let pr = RunContext {
            event: Some("pull_request".into()),
            ..push("main", None)
        };
        assert_eq!(
            t.accepts(&pr, Some("opened")).unwrap_err(),
            "`on:` has no `pull_request` trigger"
        );
        let mut tag = push("", None);
        tag.branch = None;
        tag.tag = Some("v1".into());
        assert!(t.accepts(&tag, None).unwrap_err().contains("branches only"));
        let tags = triggers("on: {push: {tags: ['v*']}}");
        assert!(tags.accepts(&tag, None).is_ok());
        assert!(tags.accepts(&push("main", None), None).is_err());
        let any = triggers("on: push");
        assert!(any.accepts(&tag, None).is_ok() && any.accepts(&push("x", None), None).is_ok());
    }

    #[test]
    fn paths_and_pull_request_types() {
        let t = triggers("on: {pull_request: {branches: [main], paths: ['src/**']}}");
        let pr = |action: &str, base: &str, files: &[&str]| {
            let ctx = RunContext {
                event: Some("pull_request".into()),
                pr: Some(3),
                ..push(base, Some(files))
            };
            t.accepts(&ctx, Some(action))
        };
        assert!(pr("opened", "main", &["src/a.rs"]).is_ok());
        assert!(pr("synchronize", "main", &["README", "src/x/y.rs"]).is_ok());
        assert!(pr("closed", "main", &["src/a.rs"]).is_err());
        assert!(pr("opened", "dev", &["src/a.rs"]).is_err());
        let err = pr("opened", "main", &["docs/a.md"]).unwrap_err();
        assert_eq!(err, "no changed file matches `on.pull_request.paths`");
        let closed = triggers("on: {pull_request: {types: [closed]}}");
        let ctx = RunContext {
            event: Some("pull_request".into()),
            ..push("main", None)
        };
        assert!(closed.accepts(&ctx, Some("closed")).is_ok());
        assert!(closed.accepts(&ctx, Some("opened")).is_err());
    }

    #[test]
    fn bad_triggers_are_listed_with_positions() {
        let text = "on:\n  push: {branch: [main]}\n  pull_request: {types: [merged]}\n  schedule: x\njobs: {t: {run: [make]}}\n";
        let err = parse_spec(text.as_bytes(), Format::Yaml, "p", &Limits::default()).unwrap_err();
        let all = err.to_string();
        assert!(
            all.contains("on.push.branch") && all.contains("did you mean `branches`"),
            "{all}"
        );
        assert!(
            all.contains("unknown pull request action `merged`"),
            "{all}"
        );
        assert!(all.contains("unknown key `schedule`"), "{all}");
        assert!(all.contains("line 2, column 10"), "line numbers: {all}");
    }

    #[test]
    fn concurrency_groups() {
        let ctx = RunContext {
            repo: Some("o/r".into()),
            ..push("main", None)
        };
        assert_eq!(Concurrency::default().group_key("ci", &ctx), "o/r:ci/main");
        let c = Concurrency {
            group: Some("deploy-{branch}".into()),
            cancel_in_progress: false,
        };
        assert_eq!(c.group_key("ci", &ctx), "o/r:deploy-main");
        let pr = RunContext { pr: Some(9), ..ctx };
        assert_eq!(Concurrency::default().group_key("ci", &pr), "o/r:ci/pr-9");
    }
}

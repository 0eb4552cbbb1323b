//! The validated run spec: what a run is made of once a YAML/JSON spec, a pipeline file or
//! seed 1's `orders` payload has been checked. Stored as JSON with each run; only
//! [`super::parse_spec`] builds one from user input.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default job timeout when a spec gives none.
pub const DEFAULT_TIMEOUT_MS: u64 = 60 * 60 * 1000;
/// Longest timeout a job may ask for: a day, so a forgotten job cannot hold a slot for weeks.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
/// Most retries a job may ask for.
pub const MAX_RETRIES: u32 = 10;
/// First retry waits this long; each further retry waits twice as long as the one before.
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    pub jobs: Vec<JobSpec>,
    /// A pipeline file's trigger filter (`on:`), kept as written; used by pipelines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<serde_json::Value>,
    /// The pull request a run reports to (seed 1's `pr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<PrRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    /// Commands run in order in one `sh -e` session.
    pub run: Vec<String>,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub when: When,
    pub timeout_ms: u64,
    #[serde(default)]
    pub retries: u32,
    pub retry_backoff_ms: u64,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Secret names; values come from the secret store at dispatch.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub executor: ExecutorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    Local,
    Docker,
    Agent,
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Docker => "docker",
            ExecutorKind::Agent => "agent",
        }
    }
}

/// Woodpecker-style condition. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct When {
    /// Run when all needs succeeded (`success`), when something upstream failed (`failure`),
    /// or both. Default: `[success]`.
    pub status: StatusCondition,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event: Vec<String>,
    /// Branch names or glob patterns (`release/*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branch: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCondition {
    pub success: bool,
    pub failure: bool,
}

impl Default for When {
    fn default() -> Self {
        When {
            status: StatusCondition {
                success: true,
                failure: false,
            },
            event: Vec::new(),
            branch: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub git: GitSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    pub url: String,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrRef {
    pub repo: String,
    pub number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

/// What a run was started from, for `when: {event, branch}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

impl When {
    /// Whether the run's context satisfies the `event` and `branch` keys.
    pub fn context_matches(&self, ctx: &RunContext) -> bool {
        let event_ok = self.event.is_empty()
            || ctx
                .event
                .as_deref()
                .is_some_and(|e| self.event.iter().any(|want| want == e));
        let branch_ok = self.branch.is_empty()
            || ctx
                .branch
                .as_deref()
                .is_some_and(|b| self.branch.iter().any(|pat| glob_match(pat, b)));
        event_ok && branch_ok
    }
}

/// `*` matches any run of characters except `/`, `**` any run at all, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => (0..=t.len()).any(|i| go(&p[2..], &t[i..])),
            Some('*') => {
                for i in 0..=t.len() {
                    if go(&p[1..], &t[i..]) {
                        return true;
                    }
                    if i < t.len() && t[i] == '/' {
                        return false;
                    }
                }
                false
            }
            Some('?') => !t.is_empty() && t[0] != '/' && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("main", "main", true),
            ("main", "mainline", false),
            ("release/*", "release/1.2", true),
            ("release/*", "release/1/2", false),
            ("release/**", "release/1/2", true),
            ("v?", "v1", true),
            ("*", "feature/x", false),
            ("**", "feature/x", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p} vs {t}");
        }
    }

    #[test]
    fn context_conditions() {
        let when = When {
            event: vec!["push".into()],
            branch: vec!["main".into()],
            ..When::default()
        };
        let ctx = |e: &str, b: &str| RunContext {
            event: Some(e.into()),
            branch: Some(b.into()),
        };
        assert!(when.context_matches(&ctx("push", "main")));
        assert!(!when.context_matches(&ctx("pull_request", "main")));
        assert!(!when.context_matches(&ctx("push", "dev")));
        assert!(!when.context_matches(&RunContext::default()));
        assert!(When::default().context_matches(&RunContext::default()));
    }
}

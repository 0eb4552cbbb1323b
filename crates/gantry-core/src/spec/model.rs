//! The validated run spec: what a run is made of once a YAML/JSON spec, a pipeline file or
//! the `orders` payload has been checked. Stored as JSON with each run; only
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    pub jobs: Vec<JobSpec>,
    /// A pipeline file's triggers (`on:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<super::pipeline::Triggers>,
    /// A pipeline's concurrency group; pipelines have one unless `concurrency: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<super::pipeline::Concurrency>,
    /// What a pipeline posts besides commit statuses (`comment`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<String>,
    /// The pull request a run reports to (the `orders` payload's `pr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<PrRef>,
    /// The job graph, once built: read it through [`RunSpec::graph`].
    #[serde(skip)]
    pub graph: super::graph::GraphCell,
}

/// A job as stored with its run. What a job leaves at its default is left out of the JSON
/// (a 1000-job DAG's spec: 213 KB -> 60 KB) and read back as that default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    /// Commands run in order in one `sh -e` session.
    pub run: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(default, skip_serializing_if = "When::is_default")]
    pub when: When,
    #[serde(
        default = "default_timeout",
        skip_serializing_if = "is_default_timeout"
    )]
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    #[serde(
        default = "default_backoff",
        skip_serializing_if = "is_default_backoff"
    )]
    pub retry_backoff_ms: u64,
    /// An attempt lost to a server crash runs once more without counting against `retries`
    /// (the default); `false` fails the job instead.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub rerun_lost: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Secret names; values come from the secret store at dispatch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "ExecutorKind::is_local")]
    pub executor: ExecutorKind,
    /// Labels an agent must have to run the job (`runs_on`): such a job runs on an agent
    /// (in Docker there when it has an `image`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_on: Vec<String>,
    /// Boxed, as `container`: most jobs have neither, and a job is then much smaller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<Source>>,
    /// How the job's container runs (docker jobs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<ContainerOpts>>,
    /// What the AWS executor does instead of commands (the deployer's jobs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<Box<AwsTask>>,
    /// Workspace paths (a file, a folder, or a glob of files) kept when the job succeeds and
    /// laid into the workspaces of the jobs that need it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Folders restored from an earlier run with the same key, and saved after a miss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Box<CacheSpec>>,
}

/// A job's `cache`: see `spec::cache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSpec {
    pub key: String,
    /// Files whose contents are hashed into the key (e.g. a lock file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// What is restored and saved: files and folders of the workspace.
    pub paths: Vec<String>,
}

/// Work the AWS executor does in place of commands: a deployment's deploy of the checked-out
/// repository, or sanity tests of what is deployed. Made by the deployer, not read from
/// user specs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AwsTask {
    Deploy {
        stack_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    Test {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stack_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn is_default_timeout(ms: &u64) -> bool {
    *ms == DEFAULT_TIMEOUT_MS
}

fn default_backoff() -> u64 {
    DEFAULT_RETRY_BACKOFF_MS
}

fn is_default_backoff(ms: &u64) -> bool {
    *ms == DEFAULT_RETRY_BACKOFF_MS
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `container: {user, cpus, memory, network}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOpts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Thousandths of a CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_milli: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    #[default]
    Local,
    Docker,
    Agent,
    /// The deployer's jobs: work done against AWS in the server's process.
    Aws,
    /// An ECS task of `[executors.ecs]`'s task definition runs the commands.
    Ecs,
    /// A build of `[executors.codebuild]`'s project runs the commands (its buildspec).
    Codebuild,
    /// One synchronous invocation of `[executors.lambda]`'s function (at most 15 minutes).
    Lambda,
}

impl ExecutorKind {
    fn is_local(&self) -> bool {
        *self == ExecutorKind::Local
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Docker => "docker",
            ExecutorKind::Agent => "agent",
            ExecutorKind::Aws => "aws",
            ExecutorKind::Ecs => "ecs",
            ExecutorKind::Codebuild => "codebuild",
            ExecutorKind::Lambda => "lambda",
        }
    }

    /// Whether the job runs on an AWS service rather than on this host or an agent.
    pub fn is_remote(self) -> bool {
        matches!(
            self,
            ExecutorKind::Ecs | ExecutorKind::Codebuild | ExecutorKind::Lambda
        )
    }
}

/// `when:` (Woodpecker style): one condition, or a list of conditions of which any one lets
/// the job run. Within a condition every key must hold (AND); across the list, any (OR).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct When {
    /// Empty for a job without `when:`, which has the one default condition: read them
    /// through [`When::conditions`] (no list is made for every job).
    pub any: Vec<Condition>,
}

/// One `when:` condition. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Run when all needs succeeded (`success`), when something upstream failed (`failure`),
    /// or both. Default: `[success]`.
    pub status: StatusCondition,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event: Vec<String>,
    /// Branch names or glob patterns (`release/*`); for pull requests, the base branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branch: Vec<String>,
    /// Tag names or glob patterns (`v*`); holds only for tag pushes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<String>,
    /// Globs over changed files (`src/**`); holds when any changed file matches, or when the
    /// run's changed files are unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCondition {
    pub success: bool,
    pub failure: bool,
}

/// `[success]`, any event, branch, tag and path.
const DEFAULT_CONDITION: Condition = Condition {
    status: StatusCondition {
        success: true,
        failure: false,
    },
    event: Vec::new(),
    branch: Vec::new(),
    tag: Vec::new(),
    path: Vec::new(),
};

/// The conditions of a job without `when:`.
static DEFAULT_CONDITIONS: [Condition; 1] = [DEFAULT_CONDITION];

impl Default for Condition {
    fn default() -> Self {
        DEFAULT_CONDITION
    }
}

impl When {
    /// The conditions of which any one lets the job run; never empty.
    pub fn conditions(&self) -> &[Condition] {
        if self.any.is_empty() {
            &DEFAULT_CONDITIONS
        } else {
            &self.any
        }
    }

    fn is_default(&self) -> bool {
        self.conditions() == DEFAULT_CONDITIONS
    }
}

/// Whens are equal when they hold the same conditions (no `when:` and `when: {status: success}`
/// are the same).
impl PartialEq for When {
    fn eq(&self, other: &When) -> bool {
        self.conditions() == other.conditions()
    }
}

impl Eq for When {}

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

/// What a run was started from: the event and, for pipelines, where in the repository. Jobs
/// see it as `GANTRY_*` variables; `when:` conditions are evaluated against it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    /// `push`, `pull_request`, `webhook`, `api`, `manual`, or a bus event's detail-type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The pushed branch, or a pull request's base branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The commit the run is for (a push's head, a pull request's head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<u64>,
    /// The pull request comes from a fork: its code is not trusted with secrets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fork: bool,
    /// Files changed by the push or pull request; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_files: Option<Vec<String>>,
    /// A newer run of the same group cancels this one while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_group: Option<String>,
}

impl RunContext {
    /// A context that only names the event (API, CLI and webhook runs).
    pub fn of_event(event: &str) -> RunContext {
        RunContext {
            event: Some(event.to_string()),
            ..RunContext::default()
        }
    }
}

impl Condition {
    /// Whether the run's context satisfies the `event`, `branch`, `tag` and `path` keys.
    pub fn context_matches(&self, ctx: &RunContext) -> bool {
        let one_of = |want: &[String], have: Option<&str>, glob: bool| {
            want.is_empty()
                || have.is_some_and(|h| {
                    want.iter()
                        .any(|w| if glob { glob_match(w, h) } else { w == h })
                })
        };
        let path_ok = self.path.is_empty()
            || match &ctx.changed_files {
                None => true,
                Some(files) => files
                    .iter()
                    .any(|f| self.path.iter().any(|p| glob_match(p, f))),
            };
        one_of(&self.event, ctx.event.as_deref(), false)
            && one_of(&self.branch, ctx.branch.as_deref(), true)
            && one_of(&self.tag, ctx.tag.as_deref(), true)
            && path_ok
    }

    /// Whether the status part lets the job run, given how its needs ended.
    pub fn status_matches(&self, all_needs_ok: bool, upstream_failure: bool) -> bool {
        let s = self.status;
        // `[success, failure]` means "whatever happened": run once the needs have ended.
        if s.success && s.failure {
            return true;
        }
        (all_needs_ok && s.success) || (upstream_failure && s.failure)
    }
}

/// `*` matches any run of characters except `/`, `**` any run at all, `?` one character.
/// Time and memory grow with the pattern's length times the text's, whatever the pattern
/// (trying each split of the text for each star, as a naive matcher does, is exponential).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (np, nt) = (p.len(), t.len());
    // `rest[j]` (for the pattern from `i + 1` or `i + 2` on) and `here[j]` (from `i` on):
    // whether that part of the pattern matches `t[j..]`. Filled from the pattern's end.
    let mut rest = vec![false; nt + 1];
    rest[nt] = true; // the empty pattern matches the empty text
    let mut after_pair = vec![false; nt + 1]; // the row two pattern positions on
    for i in (0..np).rev() {
        let mut here = vec![false; nt + 1];
        let double = p[i] == '*' && p.get(i + 1) == Some(&'*');
        for j in (0..=nt).rev() {
            here[j] = match p[i] {
                '*' if double => after_pair[j] || (j < nt && here[j + 1]),
                '*' => rest[j] || (j < nt && t[j] != '/' && here[j + 1]),
                '?' => j < nt && t[j] != '/' && rest[j + 1],
                c => j < nt && t[j] == c && rest[j + 1],
            };
        }
        after_pair = std::mem::replace(&mut rest, here);
    }
    rest[0]
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

    /// The matcher as the rules say it, trying every split: the oracle for small inputs.
    fn by_splits(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => {
                (0..=t.len()).any(|i| by_splits(&p[2..], &t[i..]))
            }
            Some('*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| by_splits(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && t[0] != '/' && by_splits(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && by_splits(&p[1..], &t[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn globs_match_as_trying_every_split_would(p in "[ab/*?]{0,8}", t in "[ab/]{0,8}") {
            let (pc, tc): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
            proptest::prop_assert_eq!(glob_match(&p, &t), by_splits(&pc, &tc), "{} vs {}", p, t);
        }
    }

    #[test]
    fn many_stars_are_answered() {
        // The input fuzzing found: a matcher trying every split took 39 s on it (release
        // build); this one takes pattern × text steps. (The fuzz targets' 10 s timeout is
        // what catches a slow matcher; this pins the answers.)
        let pattern = format!("{}b", "**a".repeat(12));
        assert!(!glob_match(&pattern, &"a".repeat(40)));
        assert!(glob_match(&pattern, &format!("{}b", "a".repeat(40))));
        assert!(glob_match("**a*a*a", "x/aaa"));
        assert!(!glob_match("*a*a*a", "x/aaa"));
    }

    #[test]
    fn context_conditions() {
        let cond = Condition {
            event: vec!["push".into()],
            branch: vec!["main".into()],
            ..Condition::default()
        };
        let ctx = |e: &str, b: &str| RunContext {
            event: Some(e.into()),
            branch: Some(b.into()),
            ..RunContext::default()
        };
        assert!(cond.context_matches(&ctx("push", "main")));
        assert!(!cond.context_matches(&ctx("pull_request", "main")));
        assert!(!cond.context_matches(&ctx("push", "dev")));
        assert!(!cond.context_matches(&RunContext::default()));
        assert!(Condition::default().context_matches(&RunContext::default()));
    }

    #[test]
    fn tag_and_path_conditions() {
        let tag = Condition {
            tag: vec!["v*".into()],
            ..Condition::default()
        };
        let mut ctx = RunContext::of_event("push");
        assert!(!tag.context_matches(&ctx), "a branch push has no tag");
        ctx.tag = Some("v1.2".into());
        assert!(tag.context_matches(&ctx));
        let path = Condition {
            path: vec!["src/**".into()],
            ..Condition::default()
        };
        assert!(path.context_matches(&ctx), "unknown changed files: holds");
        ctx.changed_files = Some(vec!["docs/a.md".into()]);
        assert!(!path.context_matches(&ctx));
        ctx.changed_files = Some(vec!["docs/a.md".into(), "src/x/y.rs".into()]);
        assert!(path.context_matches(&ctx));
    }
}

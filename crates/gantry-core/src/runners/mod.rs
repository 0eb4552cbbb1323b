//! Runner pools for GitHub Actions' just-in-time runners, as `[runners.NAME]` in gantry.toml
//! spells them, checked when the config is read; which pool serves a queued `workflow_job`
//! (GitHub's rule: every label of the job is one of the pool's, case-insensitively); and the
//! name a job's runner is registered under, one per job and attempt. `lifecycle.rs`: one job's
//! runner from the queued job to its removal.

pub mod lifecycle;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[runners.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolDef {
    /// The labels the pool's runners carry (and so the jobs it serves).
    pub labels: Vec<String>,
    /// `org:NAME` or `repo:OWNER/NAME`: where the runners are registered.
    pub scope: String,
    /// `docker` (a container of `image`) or `local` (a process on this host).
    #[serde(default = "default_executor")]
    pub executor: String,
    #[serde(default)]
    pub image: Option<String>,
    /// The runner's command; `{jitconfig}` in an argument is replaced by the runner's
    /// just-in-time config, which the runner also finds in `ACTIONS_RUNNER_INPUT_JITCONFIG`.
    pub command: Vec<String>,
    #[serde(default = "default_max")]
    pub max_runners: u32,
    #[serde(default = "default_group")]
    pub runner_group_id: u64,
    /// A registered runner that has claimed no job by then is removed (`5m`).
    #[serde(default = "default_boot_timeout")]
    pub boot_timeout: String,
    /// The runner's work folder, relative to where it runs (`_work`).
    #[serde(default = "default_work_folder")]
    pub work_folder: String,
}

fn default_executor() -> String {
    "docker".into()
}
fn default_max() -> u32 {
    10
}
fn default_group() -> u64 {
    1
}
fn default_boot_timeout() -> String {
    "5m".into()
}
fn default_work_folder() -> String {
    "_work".into()
}

/// Where a pool's runners are registered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    Org(String),
    /// `owner/name`.
    Repo(String),
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, String> {
        let part = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match text.split_once(':') {
            Some(("org", org)) if part(org) => Ok(Scope::Org(org.to_string())),
            Some(("repo", repo))
                if repo
                    .split_once('/')
                    .is_some_and(|(o, n)| part(o) && part(n)) =>
            {
                Ok(Scope::Repo(repo.to_string()))
            }
            _ => Err(format!(
                "scope `{text}` must be `org:NAME` or `repo:OWNER/NAME`"
            )),
        }
    }

    /// Whether a job of `repo` (`owner/name`) can be run by a runner registered here.
    pub fn covers(&self, repo: &str) -> bool {
        match self {
            Scope::Org(org) => repo
                .split_once('/')
                .is_some_and(|(owner, _)| owner.eq_ignore_ascii_case(org)),
            Scope::Repo(r) => r.eq_ignore_ascii_case(repo),
        }
    }
}

impl PoolDef {
    /// Every problem with the pool `name`, each naming its field.
    pub fn check(&self, name: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let at = |field: &str| format!("runners.{name}.{field}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || name.is_empty()
        {
            problems.push(format!(
                "runners.{name}: a pool's name is letters, digits, `-` and `_`"
            ));
        }
        if self.labels.is_empty() || self.labels.iter().any(|l| l.trim().is_empty()) {
            problems.push(format!(
                "{}: give at least one label, none empty",
                at("labels")
            ));
        }
        if let Err(e) = Scope::parse(&self.scope) {
            problems.push(format!("{}: {e}", at("scope")));
        }
        match (self.executor.as_str(), &self.image) {
            ("docker", None) => problems.push(format!(
                "{}: a `docker` pool needs the runner's image",
                at("image")
            )),
            ("docker", Some(_)) | ("local", None) => {}
            ("local", Some(_)) => problems.push(format!(
                "{}: a `local` pool runs on this host and takes no image",
                at("image")
            )),
            (other, _) => problems.push(format!(
                "{}: `{other}` is not `docker` or `local`",
                at("executor")
            )),
        }
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            problems.push(format!("{}: give the runner's command", at("command")));
        }
        if self.work_folder.trim().is_empty() {
            problems.push(format!("{}: give a folder", at("work_folder")));
        }
        if self.max_runners == 0 {
            problems.push(format!("{}: at least 1", at("max_runners")));
        }
        if let Err(e) = crate::duration::parse_duration_ms(&self.boot_timeout) {
            problems.push(format!("{}: {e}", at("boot_timeout")));
        }
        problems
    }

    /// `boot_timeout` in milliseconds (checked by [`PoolDef::check`]; 5 minutes if invalid).
    pub fn boot_timeout_ms(&self) -> u64 {
        crate::duration::parse_duration_ms(&self.boot_timeout).unwrap_or(300_000)
    }

    /// Whether the pool serves a job with these labels: every one of the job's labels is one
    /// of the pool's, case-insensitively (GitHub's rule). A job without labels is no one's.
    pub fn serves(&self, job_labels: &[String]) -> bool {
        !job_labels.is_empty()
            && job_labels
                .iter()
                .all(|j| self.labels.iter().any(|p| p.eq_ignore_ascii_case(j)))
    }
}

/// The pool that serves a queued job of `repo` with `labels`: the first by name whose labels
/// cover the job's and whose scope covers the repository.
pub fn pool_for<'p>(
    pools: &'p BTreeMap<String, PoolDef>,
    repo: &str,
    labels: &[String],
) -> Option<(&'p str, &'p PoolDef)> {
    pools
        .iter()
        .find(|(_, p)| p.serves(labels) && Scope::parse(&p.scope).is_ok_and(|s| s.covers(repo)))
        .map(|(n, p)| (n.as_str(), p))
}

/// The name a job's runner is registered under: one per job and attempt, so that
/// redeliveries, and the same job arriving through an org hook and a repository hook, find
/// the runner already registered instead of making a second.
pub fn runner_name(pool: &str, job_id: u64, run_attempt: u32) -> String {
    format!("gantry-{pool}-{job_id}-{run_attempt}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pool(labels: &[&str]) -> PoolDef {
        PoolDef {
            labels: labels.iter().map(|l| l.to_string()).collect(),
            scope: "org:acme".into(),
            executor: "docker".into(),
            image: Some("runner:1".into()),
            command: vec!["run.sh".into(), "--jitconfig".into(), "{jitconfig}".into()],
            max_runners: 10,
            runner_group_id: 1,
            boot_timeout: "5m".into(),
            work_folder: "_work".into(),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_job_is_served_when_all_its_labels_are_the_pools() {
        let p = pool(&["self-hosted", "linux", "x64"]);
        assert!(p.serves(&strings(&["self-hosted", "Linux"])));
        assert!(p.serves(&strings(&["SELF-HOSTED", "linux", "x64"])));
        assert!(!p.serves(&strings(&["self-hosted", "gpu"])));
        assert!(!p.serves(&[]));
    }

    #[test]
    fn the_first_pool_by_name_whose_scope_covers_the_repository_serves() {
        let mut pools = BTreeMap::new();
        pools.insert("b-linux".to_string(), pool(&["self-hosted", "linux"]));
        let mut web = pool(&["self-hosted", "linux"]);
        web.scope = "repo:other/web".into();
        pools.insert("a-web".to_string(), web);
        let labels = strings(&["self-hosted", "linux"]);
        assert_eq!(pool_for(&pools, "acme/api", &labels).unwrap().0, "b-linux");
        assert_eq!(pool_for(&pools, "other/web", &labels).unwrap().0, "a-web");
        assert!(pool_for(&pools, "else/x", &labels).is_none());
        assert!(pool_for(&pools, "acme/api", &strings(&["windows"])).is_none());
    }

    #[test]
    fn bad_pools_list_every_problem_by_field() {
        let bad = PoolDef {
            labels: vec![],
            scope: "team:x".into(),
            executor: "vm".into(),
            image: None,
            command: vec![" ".into()],
            max_runners: 0,
            runner_group_id: 1,
            boot_timeout: "soon".into(),
            work_folder: "".into(),
        };
        let problems = bad.check("linux");
        for field in [
            "labels",
            "scope",
            "executor",
            "command",
            "max_runners",
            "boot_timeout",
            "work_folder",
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("runners.linux.{field}"))),
                "{field}: {problems:?}"
            );
        }
        assert!(pool(&["x"]).check("linux").is_empty());
        let mut local = pool(&["x"]);
        local.executor = "local".into();
        assert_eq!(local.check("l").len(), 1, "a local pool takes no image");
    }

    #[test]
    fn scopes() {
        assert_eq!(Scope::parse("org:acme").unwrap(), Scope::Org("acme".into()));
        assert_eq!(
            Scope::parse("repo:acme/web").unwrap(),
            Scope::Repo("acme/web".into())
        );
        for bad in ["org:", "repo:acme", "acme", "repo:a/b/c", "org:a b"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        assert!(Scope::Org("Acme".into()).covers("acme/web"));
        assert!(!Scope::Org("acme".into()).covers("acme-evil/web"));
        assert!(Scope::Repo("acme/web".into()).covers("ACME/Web"));
    }

    proptest! {
        #[test]
        fn serving_is_label_inclusion_ignoring_case(
            pool_labels in proptest::collection::vec("[a-cA-C]{1,2}", 1..5),
            job_labels in proptest::collection::vec("[a-cA-C]{1,2}", 1..5),
        ) {
            let p = PoolDef { labels: pool_labels.clone(), ..pool(&["x"]) };
            let lower = |v: &[String]| v.iter().map(|s| s.to_lowercase()).collect::<std::collections::BTreeSet<_>>();
            let want = lower(&job_labels).is_subset(&lower(&pool_labels));
            prop_assert_eq!(p.serves(&job_labels), want);
        }

        #[test]
        fn runner_names_are_one_per_job_and_attempt(a in 0u64..1000, b in 0u64..1000, x in 1u32..4, y in 1u32..4) {
            prop_assert_eq!(runner_name("p", a, x) == runner_name("p", b, y), a == b && x == y);
        }
    }
}

//! `gantry.toml`: the server's settings file. Every setting is also a flag and an environment
//! variable; a flag or variable wins over the file, the file over the default. The file is
//! `--config FILE` (or `GANTRY_CONFIG`), else `./gantry.toml` when it exists.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub mod check;
pub mod registries;
pub mod settings;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_parallel: Option<usize>,
    pub api_token: Option<String>,
    pub github_webhook_secret: Option<String>,
    pub webhook_secret: Option<String>,
    pub github_token: Option<String>,
    pub github_app_id: Option<String>,
    pub github_app_private_key: Option<String>,
    pub github_api_url: Option<String>,
    pub public_url: Option<String>,
    pub report_interval: Option<String>,
    /// `"64m"`, or a number of bytes.
    pub log_limit: Option<Size>,
    pub secret_key_file: Option<PathBuf>,
    pub git_allowed_url_prefixes: Option<Vec<String>>,
    /// Names of the server's environment variables local jobs get (nothing else is passed).
    pub pass_env: Option<Vec<String>>,
    /// The unprivileged user local jobs run as when the server runs as root.
    pub run_as: Option<String>,
    /// Where workspaces go [default: DATA_DIR/work]; outside the data dir with `run_as`.
    pub work_dir: Option<PathBuf>,
    /// What jobs of pull requests from forks may do: `containers` (only jobs with `image:`
    /// run), `off` (their pipelines do not run), `local` (anything, as other jobs).
    pub fork_jobs: Option<String>,
    /// Hosts (`name` or `name:port`) that rules' `http` targets may reach although they are
    /// loopback, private or link-local addresses.
    pub allow_internal_hosts: Option<Vec<String>>,
    /// `[registries."HOST[:PORT]"]`: credentials for pulling images (`registries.rs`).
    #[serde(default)]
    pub registries: std::collections::BTreeMap<String, registries::RegistryDef>,
    /// Origins of web apps that may call the API from a browser (CORS).
    pub cors_origins: Option<Vec<String>>,
    /// How long a client has to send a request's head (`10s`).
    pub header_read_timeout: Option<String>,
    #[serde(default)]
    pub retention: Retention,
    /// `[agents]`: agents on other hosts.
    #[serde(default)]
    pub agents: AgentsConfig,
    /// Event bus rules (`[[rules]]`): each a `name`, a `pattern` or a `schedule`, and a `target`,
    /// with the same fields as a rule created through the API.
    #[serde(default)]
    pub rules: Vec<toml::Value>,
    /// `[services.NAME]`: containers started by events, behind target groups.
    #[serde(default)]
    pub services: std::collections::BTreeMap<String, gantry_core::services::ServiceDef>,
    #[serde(default)]
    pub target_groups: std::collections::BTreeMap<String, gantry_core::services::TargetGroupDef>,
    /// Per-repository settings, by `owner/name`.
    #[serde(default)]
    pub repos: std::collections::BTreeMap<String, RepoConfig>,
    /// `[runners.NAME]`: pools of ephemeral GitHub Actions runners.
    #[serde(default)]
    pub runners: std::collections::BTreeMap<String, gantry_core::runners::PoolDef>,
    /// How often the runner reconciler lists GitHub's queued jobs and runners (`1m`).
    pub runners_reconcile: Option<String>,
    /// `[executors.ecs]`, `[executors.codebuild]`, `[executors.lambda]`: where jobs of those
    /// executors run (docs/executors-aws.md).
    #[serde(default)]
    pub executors: gantry_core::remote::ExecutorsDef,
    /// `[aws.rate_limits]`: the account's token bucket per AWS action Gantry paces
    /// (docs/services.md), AWS's published defaults for the others.
    #[serde(default)]
    pub aws: gantry_core::aws_limits::AwsDef,
    /// The file as read (its name as shown, and its text), to point problems at lines.
    #[serde(skip)]
    source: Option<(String, String)>,
}

/// A size as `"64m"` or as a number of bytes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    pub fn text(self) -> String {
        match self {
            Size::Bytes(n) => n.to_string(),
            Size::Text(t) => t,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Pull requests from forks get the secrets their jobs name (off by default: a fork's
    /// code could print them).
    #[serde(default)]
    pub secrets_for_forks: bool,
}

/// `[agents]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// How long an agent holds a job without renewing its lease (`60s`).
    pub lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub runs: Option<String>,
    pub audit: Option<String>,
    pub logs: Option<String>,
}

impl FileConfig {
    /// The `[[rules]]` as rule definitions (their own fields are checked when compiled);
    /// every rule that is not one is named, at its line.
    pub fn rule_defs(&self) -> anyhow::Result<Vec<gantry_core::bus::rule::RuleDef>> {
        let mut problems = Vec::new();
        let mut defs = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let parsed = serde_json::to_value(r)
                .and_then(serde_json::from_value::<gantry_core::bus::rule::RuleDef>);
            match parsed {
                Ok(d) => defs.push(d),
                Err(e) => problems.push(self.at(self.rule_line(i))(&format!("rules[{i}]: {e}"))),
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(defs)
    }

    /// Prefixes a problem with `FILE:LINE: ` (or `FILE: `) when the settings came from a file.
    pub fn at(&self, line: Option<usize>) -> impl Fn(&str) -> String + '_ {
        move |problem| match (&self.source, line) {
            (Some((shown, _)), Some(l)) => format!("{shown}:{l}: {problem}"),
            (Some((shown, _)), None) => format!("{shown}: {problem}"),
            (None, _) => problem.to_string(),
        }
    }

    /// The line of the header `[table.name]`, if the file has one.
    pub fn table_line(&self, table: &str, name: &str) -> Option<usize> {
        table_line(&self.source.as_ref()?.1, table, name)
    }

    /// The line of the `i`th `[[rules]]` header (from 0), if the rules are written so.
    pub fn rule_line(&self, i: usize) -> Option<usize> {
        let text = &self.source.as_ref()?.1;
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.trim().replace(' ', "").starts_with("[[rules]]"))
            .nth(i)
            .map(|(n, _)| n + 1)
    }

    /// Reads `explicit` (which must exist), or `./gantry.toml` if present, or nothing.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<FileConfig> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new("gantry.toml").is_file() => PathBuf::from("gantry.toml"),
            None => return Ok(FileConfig::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let shown = path.display().to_string();
        let mut c = match toml::from_str::<FileConfig>(&text) {
            Ok(c) => c,
            Err(e) => match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                    bail!("{shown}:{line}:{column}: {}", e.message().trim_end())
                }
                None => bail!("{shown}: {}", e.message().trim_end()),
            },
        };
        c.source = Some((shown, text));
        let mut problems = Vec::new();
        if c.max_parallel == Some(0) {
            problems.push(c.at(None)("max_parallel must be at least 1"));
        }
        for (name, pool) in &c.runners {
            let at = c.at(c.table_line("runners", name));
            problems.extend(pool.check(name).iter().map(|p| at(p)));
        }
        for p in c.executors.check() {
            // `executors.ecs.cluster: …` is under `[executors.ecs]`.
            let kind = p.split('.').nth(1).unwrap_or("");
            problems.push(c.at(c.table_line("executors", kind))(&p));
        }
        for p in c.aws.check() {
            problems.push(c.at(c.table_line("aws", "rate_limits"))(&p));
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(c)
    }
}

/// The line (from 1) of the header `[table.name]` in `text` (quoted or not), if written so.
fn table_line(text: &str, table: &str, name: &str) -> Option<usize> {
    let wanted = [
        format!("{table}.{name}"),
        format!("{table}.\"{name}\""),
        format!("{table}.'{name}'"),
    ];
    text.lines()
        .position(|l| {
            let l = l.trim();
            l.strip_prefix('[')
                .and_then(|l| l.split(']').next())
                .is_some_and(|h| wanted.iter().any(|w| h.replace(' ', "") == *w))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_rejects_unknown_ones() {
        let dir = std::env::temp_dir().join(format!("gantry-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("ok.toml");
        std::fs::write(&ok, "listen = \"127.0.0.1:9999\"\ndata_dir = \"/var/lib/gantry\"\nmax_parallel = 3\nlog_limit = \"2m\"\n[retention]\nruns = \"2d\"\n").unwrap();
        let c = FileConfig::load(Some(&ok)).unwrap();
        assert!(matches!(c.log_limit, Some(Size::Text(ref t)) if t == "2m"));
        let bytes = dir.join("bytes.toml");
        std::fs::write(&bytes, "log_limit = 4096\n").unwrap();
        let c2 = FileConfig::load(Some(&bytes)).unwrap();
        assert_eq!(c2.log_limit.map(Size::text).as_deref(), Some("4096"));
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(c.max_parallel, Some(3));
        assert_eq!(c.retention.runs.as_deref(), Some("2d"));
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "listen = \"x\"\nlisten_port = 3\n").unwrap();
        let err = FileConfig::load(Some(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("listen_port") && err.contains("bad.toml"),
            "{err}"
        );
        assert!(
            FileConfig::load(Some(&dir.join("missing.toml")))
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_runner_pool_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.toml");
        let good = "[runners.linux]\nlabels = [\"self-hosted\"]\nscope = \"org:acme\"\nimage = \"r:1\"\ncommand = [\"run.sh\", \"--jitconfig\", \"{jitconfig}\"]\n";
        std::fs::write(&path, format!("listen = \"127.0.0.1:1\"\n\n{good}\n[runners.gpu]\nlabels = []\nscope = \"team:x\"\nexecutor = \"docker\"\ncommand = [\"run.sh\"]\n")).unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("gantry.toml:9: runners.gpu.labels"), "{err}");
        assert!(err.contains("gantry.toml:9: runners.gpu.scope"), "{err}");
        assert!(err.contains("runners.gpu.image"), "{err}");
        assert!(!err.contains("runners.linux"), "{err}");
        std::fs::write(&path, good).unwrap();
        let c = FileConfig::load(Some(&path)).unwrap();
        assert_eq!(c.runners["linux"].max_runners, 10);
        std::fs::write(&path, format!("{good}colour = \"red\"\n")).unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("colour") && err.contains("gantry.toml:6:1:"),
            "{err}"
        );
    }

    #[test]
    fn bad_executors_are_refused_with_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.toml");
        std::fs::write(&path, "[executors.ecs]\ncluster = \"\"\ntask_definition = \"runner\"\ncontainer = \"main\"\nlaunch_type = \"SPOT\"\n\n[executors.lambda]\nfunction = \"\"\n").unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("gantry.toml:1: executors.ecs.cluster: is empty"),
            "{err}"
        );
        assert!(
            err.contains("gantry.toml:1: executors.ecs.launch_type: `SPOT`"),
            "{err}"
        );
        assert!(
            err.contains("gantry.toml:7: executors.lambda.function: is empty"),
            "{err}"
        );
        std::fs::write(
            &path,
            "[executors.codebuild]\nproject = \"ci\"\nimage = \"x\"\n",
        )
        .unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("image") && err.contains("gantry.toml:3:1:"),
            "{err}"
        );
        std::fs::write(&path, "[executors.codebuild]\nproject = \"ci\"\n").unwrap();
        let c = FileConfig::load(Some(&path)).unwrap();
        assert_eq!(c.executors.codebuild.unwrap().project, "ci");
    }
}

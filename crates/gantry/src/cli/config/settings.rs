//! The server's settings: flags, environment variables, `gantry.toml` and defaults merged and
//! checked, every problem at once. The one validation path: `gantry serve` starts from
//! [`settings`], and `gantry config check` runs it and prints what it refuses.

use super::{FileConfig, Size};
use crate::cli::serve::ServeArgs;
use crate::server::origin::Origin;
use crate::wiring;
use anyhow::{Context, bail};
use gantry_engine::ports::Retention;
use gantry_store::SecretKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The shortest API token `serve` accepts: a guessable token is no token.
const MIN_TOKEN_CHARS: usize = 32;

/// The server's settings after flags, environment, `gantry.toml` and defaults are merged.
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_parallel: usize,
    pub token: Option<String>,
    pub retention: Retention,
    pub log_limit: u64,
    pub github_secret: Option<String>,
    pub webhook_secret: Option<String>,
    pub github: Option<GitHubSettings>,
    /// `None`: the key file in the data dir (made on first start).
    pub secret_key: Option<SecretKey>,
    pub git_allowed: Vec<String>,
    pub fork_secrets: std::collections::HashSet<String>,
    pub fork_jobs: gantry_engine::ForkJobs,
    pub isolation: gantry_exec::Isolation,
    pub work_dir: Option<PathBuf>,
    pub allow_internal_hosts: Vec<String>,
    pub rules: Vec<gantry_core::bus::rule::RuleDef>,
    pub base_dir: PathBuf,
    pub services: std::collections::BTreeMap<String, gantry_core::services::ServiceDef>,
    pub target_groups: std::collections::BTreeMap<String, gantry_core::services::TargetGroupDef>,
    /// `GANTRY_PUBLIC_URL`'s origin: a name and an origin of the server besides its address.
    pub public: Option<Origin>,
    pub cors: Vec<Origin>,
    pub header_read_timeout: Duration,
    /// Credentials for image pulls: `[registries]`, then the Docker config file's.
    pub registries: gantry_exec::RegistryAuth,
    pub runners: gantry_engine::runners::RunnersConfig,
    /// How long an agent holds a job without renewing its lease.
    pub agent_lease_ms: u64,
    /// Where `ecs`, `codebuild` and `lambda` jobs run.
    pub executors: gantry_core::remote::ExecutorsDef,
    /// `[aws.rate_limits]`: the account's AWS buckets.
    pub aws: gantry_core::aws_limits::AwsDef,
}

impl Settings {
    /// The settings as the dashboard's Settings page shows them: secrets only as set or not.
    pub fn configured(&self) -> crate::dashboard::Configured {
        let path = |p: &Path| p.display().to_string();
        let clean = match &self.isolation {
            gantry_exec::Isolation::Clean(c) => Some(c),
            gantry_exec::Isolation::Inherit => None,
        };
        let mut fork_secrets: Vec<String> = self.fork_secrets.iter().cloned().collect();
        fork_secrets.sort();
        crate::dashboard::Configured {
            listen: self.listen.to_string(),
            public_url: self.public.as_ref().map(ToString::to_string),
            cors_origins: self.cors.iter().map(ToString::to_string).collect(),
            header_read_timeout_ms: self.header_read_timeout.as_millis() as u64,
            data_dir: path(&self.data_dir),
            database: path(&self.data_dir.join("gantry.db")),
            work_dir: path(
                &self
                    .work_dir
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("work")),
            ),
            secret_key: if self.secret_key.is_some() {
                "given (GANTRY_SECRET_KEY or a key file)"
            } else {
                "the data dir's secret.key"
            },
            api_token: self.token.is_some(),
            github: self.github.as_ref().map(|g| crate::dashboard::GitHubShown {
                auth: g.auth.clone(),
                api_url: g.api_url.clone(),
                report_interval_ms: g.interval_ms,
            }),
            github_webhook_secret: self.github_secret.is_some(),
            webhook_secret: self.webhook_secret.is_some(),
            retain_runs_ms: self.retention.working_ms,
            retain_audit_ms: self.retention.audit_ms,
            retain_logs_ms: self.retention.logs_ms,
            log_limit: self.log_limit,
            max_parallel: self.max_parallel,
            git_allowed: self.git_allowed.clone(),
            allow_internal_hosts: self.allow_internal_hosts.clone(),
            fork_jobs: format!("{:?}", self.fork_jobs).to_lowercase(),
            fork_secrets,
            run_as: self.isolation.run_as().map(|r| r.name.clone()),
            pass_env: clean.map(|c| c.pass.clone()).unwrap_or_default(),
            services: self.services.len(),
            target_groups: self.target_groups.len(),
            runner_pools: self.runners.pools.len(),
            runners_reconcile_ms: self.runners.reconcile_every.as_millis() as u64,
            config_rules: self.rules.len(),
        }
    }
}

/// Reporting to GitHub: on when a token, or an App id and key, are set.
pub struct GitHubSettings {
    /// The client, made here so that a key that is not one is a problem like the others.
    pub client: Arc<gantry_github::GitHub>,
    /// How it authenticates, for the dashboard's Settings page: `a token`, or the App's id
    /// (never the token or the key).
    pub auth: String,
    pub api_url: String,
    pub public_url: Option<String>,
    pub interval_ms: i64,
}

enum GitHubAuth {
    Token(String),
    App { id: String, private_key_pem: String },
}

/// Problems found so far; each step's failure is kept and the next step still runs.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// `r`'s value, or `None` with its error kept (each of its lines a problem).
    fn keep<T>(&mut self, r: anyhow::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.extend(format!("{e:#}").lines().map(String::from));
                None
            }
        }
    }
}

fn duration(
    name: &str,
    given: Option<String>,
    from_file: Option<String>,
    default: &str,
) -> anyhow::Result<i64> {
    let text = given.or(from_file).unwrap_or_else(|| default.to_string());
    let ms = gantry_core::duration::parse_duration_ms(&text)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    Ok(ms as i64)
}

/// A list setting: the variable's comma-separated items (blank ones left out) when it is set,
/// else the file's list.
fn list(var: &str, from_file: Option<Vec<String>>) -> Vec<String> {
    match std::env::var(var) {
        Ok(text) => text
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Err(_) => from_file.unwrap_or_default(),
    }
}

/// A secret-like setting: the variable when set and not empty, else the file's.
fn secret(var: &str, from_file: Option<String>) -> Option<String> {
    std::env::var(var)
        .ok()
        .or(from_file)
        .filter(|s| !s.is_empty())
}

/// Everything `serve` checks before it touches the data dir, every problem listed (one a
/// line, with `FILE:LINE:` where the line is known). What only starting can tell (the port is
/// free, Docker answers, the data dir is not held) is left to `serve`.
pub fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let mut file = FileConfig::load(args.config.as_deref())?;
    let mut p = Problems::default();
    let rules = p.keep(file.rule_defs()).unwrap_or_default();
    let services = std::mem::take(&mut file.services);
    let registries =
        match super::registries::registry_auth(&file.registries, |v| std::env::var(v).ok()) {
            Ok(r) => Some(r),
            Err(e) => {
                // Each line names its entry: `registries."HOST"…`.
                for line in e.to_string().lines() {
                    let host = line
                        .strip_prefix("registries.\"")
                        .and_then(|rest| rest.split('"').next());
                    let at = file.at(host.and_then(|h| file.table_line("registries", h)));
                    p.0.push(at(line));
                }
                None
            }
        };
    let target_groups = std::mem::take(&mut file.target_groups);
    for (name, s) in &services {
        let at = file.at(file.table_line("services", name));
        p.0.extend(s.check(name, &target_groups).into_iter().map(|e| at(&e)));
    }
    p.keep(wiring::target_groups(&services, &target_groups));
    // `run = "specs/x.yml"` in a rule is relative to the config file's folder (`.` for a
    // bare `gantry.toml`, whose parent is the empty path).
    let base_dir = args
        .config
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let listen = match (args.listen, file.listen.take()) {
        (Some(l), _) => Some(l),
        (None, Some(text)) => p.keep(text.parse().with_context(|| {
            format!("config listen: `{text}` is not an address like 127.0.0.1:8080")
        })),
        (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
    };
    let max_parallel = args
        .max_parallel
        .or(file.max_parallel)
        .unwrap_or_else(wiring::default_parallelism);
    if max_parallel == 0 {
        p.0.push("max-parallel must be at least 1".into());
    }
    let token_var = std::env::var("GANTRY_API_TOKEN").ok();
    let token_from = if token_var.is_some() {
        "GANTRY_API_TOKEN".to_string()
    } else {
        let file_name = args.config.as_deref().unwrap_or(Path::new("gantry.toml"));
        format!("api_token in {}", file_name.display())
    };
    let token = token_var
        .or(file.api_token.take())
        .filter(|t| !t.is_empty());
    if token
        .as_ref()
        .is_some_and(|t| t.chars().count() < MIN_TOKEN_CHARS)
    {
        p.0.push(format!(
            "{token_from} is too short: the API token must be at least {MIN_TOKEN_CHARS} characters (make one with `openssl rand -hex 32`)"
        ));
    }
    if let Some(listen) = listen
        && token.is_none()
        && !listen.ip().is_loopback()
    {
        p.0.push(format!(
            "refusing to listen on {listen} without GANTRY_API_TOKEN: anyone who can reach it could run commands here"
        ));
    }
    let public_url = secret("GANTRY_PUBLIC_URL", file.public_url.take());
    let public = match &public_url {
        None => None,
        Some(url) => p.keep(Origin::of_url(url).ok_or_else(|| {
            anyhow::anyhow!(
                "GANTRY_PUBLIC_URL (public_url): `{url}` is not a URL like https://ci.example.com"
            )
        })),
    };
    let cors = list("GANTRY_CORS_ORIGINS", file.cors_origins.take())
        .iter()
        .filter(|o| !o.is_empty())
        .filter_map(|o| p.keep(cors_origin(o)))
        .collect();
    let header_read_timeout = p
        .keep(duration(
            "header-read-timeout",
            std::env::var("GANTRY_HEADER_READ_TIMEOUT").ok(),
            file.header_read_timeout.take(),
            "10s",
        ))
        .unwrap_or(1);
    if header_read_timeout == 0 {
        p.0.push("header-read-timeout must be more than 0".into());
    }
    let github = github(&mut file, public_url, &mut p);
    let mut runners = gantry_engine::runners::RunnersConfig::new(std::mem::take(&mut file.runners));
    if let Some(ms) = p.keep(duration(
        "runners-reconcile",
        std::env::var("GANTRY_RUNNERS_RECONCILE").ok(),
        file.runners_reconcile.take(),
        "1m",
    )) {
        runners.reconcile_every = Duration::from_millis(ms.max(1) as u64);
    }
    if !runners.pools.is_empty() && github.is_none() {
        p.0.push(
            "[runners] need GitHub credentials to register runners: set GANTRY_GITHUB_TOKEN, or GANTRY_GITHUB_APP_ID and GANTRY_GITHUB_APP_PRIVATE_KEY".into(),
        );
    }
    let data_dir = args
        .data_dir
        .or(file.data_dir.take())
        .unwrap_or_else(|| PathBuf::from(".gantry"));
    let secret_key = secret_key(file.secret_key_file.take(), &mut p);
    let git_allowed = list(
        "GANTRY_GIT_ALLOWED_URL_PREFIXES",
        Some(
            file.git_allowed_url_prefixes
                .take()
                .unwrap_or_else(|| vec!["https://github.com/".into()]),
        ),
    );
    let bus_ports = gantry_engine::bus::BusPorts {
        base_dir: base_dir.clone(),
        git_allowed: git_allowed.clone(),
        ..Default::default()
    };
    for (i, e) in gantry_engine::bus::check_config_rules(&rules, &bus_ports) {
        p.0.push(file.at(file.rule_line(i))(&e));
    }
    let run_as = match args.run_as.or(file.run_as.take()) {
        None => None,
        Some(name) if !gantry_exec::running_as_root() => {
            p.0.push(format!(
                "run_as `{name}`: jobs can run as another user only when the server runs as root"
            ));
            None
        }
        Some(name) => p.keep(gantry_exec::RunAs::lookup(&name).map_err(|e| anyhow::anyhow!(e))),
    };
    let work_dir = args.work_dir.or(file.work_dir.take());
    if run_as.is_some() {
        p.keep(work_dir_outside(work_dir.as_deref(), &data_dir));
    }
    let isolation = gantry_exec::Isolation::Clean(gantry_exec::Clean {
        pass: list("GANTRY_PASS_ENV", file.pass_env.take()),
        run_as,
    });
    let fork_jobs = match std::env::var("GANTRY_FORK_JOBS")
        .ok()
        .or(file.fork_jobs.take())
    {
        None => None,
        Some(text) => p.keep(
            text.parse()
                .map_err(|e: String| anyhow::anyhow!("fork_jobs: {e}")),
        ),
    };
    let allow_internal_hosts = list(
        "GANTRY_ALLOW_INTERNAL_HOSTS",
        file.allow_internal_hosts.take(),
    );
    let log_limit = match args.log_limit.or(file.log_limit.take().map(Size::text)) {
        Some(text) => p.keep(wiring::log_limit("log-limit", &text)),
        None => Some(gantry_engine::logs::DEFAULT_LOG_LIMIT),
    };
    let fork_secrets = file
        .repos
        .iter()
        .filter(|(_, r)| r.secrets_for_forks)
        .map(|(name, _)| name.clone())
        .collect();
    let retention = Retention {
        working_ms: p
            .keep(duration(
                "retain-runs",
                args.retain_runs,
                file.retention.runs.take(),
                "1d",
            ))
            .unwrap_or(0),
        audit_ms: p
            .keep(duration(
                "retain-audit",
                args.retain_audit,
                file.retention.audit.take(),
                "90d",
            ))
            .unwrap_or(0),
        logs_ms: p
            .keep(duration(
                "retain-logs",
                args.retain_logs,
                file.retention.logs.take(),
                "7d",
            ))
            .unwrap_or(0),
    };
    let agent_lease_ms = p
        .keep(duration(
            "agent-lease",
            args.agent_lease,
            file.agents.lease.take(),
            "60s",
        ))
        .unwrap_or(0) as u64;
    let (Some(listen), Some(registries), Some(log_limit), true) =
        (listen, registries, log_limit, p.0.is_empty())
    else {
        bail!("{}", p.0.join("\n"));
    };
    Ok(Settings {
        executors: std::mem::take(&mut file.executors),
        aws: std::mem::take(&mut file.aws),
        agent_lease_ms,
        runners,
        public,
        cors,
        header_read_timeout: Duration::from_millis(header_read_timeout as u64),
        registries,
        rules,
        base_dir,
        services,
        target_groups,
        github,
        secret_key,
        git_allowed,
        fork_secrets,
        fork_jobs: fork_jobs.unwrap_or(gantry_engine::ForkJobs::Containers),
        isolation,
        work_dir,
        allow_internal_hosts,
        github_secret: secret("GANTRY_GITHUB_WEBHOOK_SECRET", file.github_webhook_secret),
        webhook_secret: secret("GANTRY_WEBHOOK_SECRET", file.webhook_secret),
        listen,
        data_dir,
        max_parallel,
        token,
        log_limit,
        retention,
    })
}

/// GitHub reporting's settings, if credentials are set.
fn github(
    file: &mut FileConfig,
    public_url: Option<String>,
    p: &mut Problems,
) -> Option<GitHubSettings> {
    let auth = match (
        secret("GANTRY_GITHUB_TOKEN", file.github_token.take()),
        secret("GANTRY_GITHUB_APP_ID", file.github_app_id.take()),
        secret(
            "GANTRY_GITHUB_APP_PRIVATE_KEY",
            file.github_app_private_key.take(),
        ),
    ) {
        (Some(token), _, _) => GitHubAuth::Token(token),
        (None, Some(id), Some(key)) => {
            // The key itself, or the path of a PEM file holding it.
            let private_key_pem = if key.trim_start().starts_with("-----BEGIN") {
                key
            } else {
                p.keep(
                    std::fs::read_to_string(&key)
                        .with_context(|| format!("cannot read the GitHub App private key {key}")),
                )?
            };
            GitHubAuth::App {
                id,
                private_key_pem,
            }
        }
        (None, Some(_), None) => {
            p.0.push("GANTRY_GITHUB_APP_ID is set but GANTRY_GITHUB_APP_PRIVATE_KEY is not".into());
            return None;
        }
        (None, None, Some(_)) => {
            p.0.push("GANTRY_GITHUB_APP_PRIVATE_KEY is set but GANTRY_GITHUB_APP_ID is not".into());
            return None;
        }
        (None, None, None) => return None,
    };
    let api_url = std::env::var("GANTRY_GITHUB_API_URL")
        .ok()
        .or(file.github_api_url.take())
        .unwrap_or_else(|| "https://api.github.com".into());
    let client = match &auth {
        GitHubAuth::Token(t) => gantry_github::GitHub::new(&api_url, t),
        GitHubAuth::App {
            id,
            private_key_pem,
        } => gantry_github::GitHub::with_app(&api_url, id, private_key_pem),
    };
    let client = p.keep(client.map_err(|e| anyhow::anyhow!("GitHub client: {e}")))?;
    let shown = match &auth {
        GitHubAuth::Token(_) => "a token".to_string(),
        GitHubAuth::App { id, .. } => format!("App {id} (private key set)"),
    };
    Some(GitHubSettings {
        client: Arc::new(client),
        auth: shown,
        api_url,
        public_url,
        interval_ms: p.keep(duration(
            "report-interval",
            std::env::var("GANTRY_REPORT_INTERVAL").ok(),
            file.report_interval.take(),
            "2s",
        ))?,
    })
}

/// The secret store's key: given as text, or a file, or (`None`) created in the data dir.
fn secret_key(from_file: Option<PathBuf>, p: &mut Problems) -> Option<SecretKey> {
    match (
        std::env::var("GANTRY_SECRET_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
        std::env::var_os("GANTRY_SECRET_KEY_FILE")
            .map(PathBuf::from)
            .or(from_file),
    ) {
        (Some(text), _) => {
            p.keep(SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("GANTRY_SECRET_KEY: {e}")))
        }
        (None, Some(path)) => {
            let text = p
                .keep(std::fs::read_to_string(&path).with_context(|| {
                    format!("cannot read the secret key file {}", path.display())
                }))?;
            p.keep(SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())))
        }
        (None, None) => None,
    }
}

/// With `run_as`, the work dir must be given and outside the data dir.
fn work_dir_outside(work_dir: Option<&Path>, data_dir: &Path) -> anyhow::Result<()> {
    match work_dir {
        None => bail!(
            "run_as needs a work dir outside the data dir (`--work-dir`, GANTRY_WORK_DIR or work_dir): the data dir is private to the server, so the jobs' user cannot enter it"
        ),
        Some(w) if std::path::absolute(w)?.starts_with(std::path::absolute(data_dir)?) => {
            bail!(
                "the work dir {} is inside the data dir {}: with run_as the jobs' user cannot enter it; put it beside",
                w.display(),
                data_dir.display()
            )
        }
        Some(_) => Ok(()),
    }
}

/// One of `cors_origins`: an origin exactly as a browser sends it.
fn cors_origin(text: &str) -> anyhow::Result<Origin> {
    if text == "*" {
        bail!("cors_origins: `*` is not allowed: list each origin, like https://app.example.com");
    }
    Origin::parse(text).ok_or_else(|| {
        anyhow::anyhow!(
            "cors_origins: `{text}` is not an origin like https://app.example.com (scheme, host and port only)"
        )
    })
}

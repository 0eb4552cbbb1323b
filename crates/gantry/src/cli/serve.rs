//! `gantry serve`: first-start setup of the data directory, then the HTTP API, the orchestrator
//! (with recovery), the watchdog and the janitor, in one process, until SIGTERM or Ctrl-C.

use super::config::{self, FileConfig};
use crate::server::origin::Origin;
use crate::server::{self, AppState, Guard, Metrics, signature::Secret};
use crate::wiring;
use anyhow::{Context, bail};
use gantry_core::spec::Limits;
use gantry_engine::Preparation;
use gantry_engine::bus::{Bus, BusPorts};
use gantry_engine::janitor;
use gantry_engine::pipelines::Pipelines;
use gantry_engine::ports::{Forge, Retention, SecretStore};
use gantry_engine::services::ServiceManager;
use gantry_store::SecretKey;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the janitor sweeps (it also sweeps at start and on SIGUSR1).
const JANITOR_EVERY: Duration = Duration::from_secs(3600);

/// The shortest API token `serve` accepts: a guessable token is no token.
const MIN_TOKEN_CHARS: usize = 32;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "GANTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder for the database, logs and workspaces [default: .gantry].
    #[arg(long, env = "GANTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Settings file (`gantry.toml`); flags and environment variables win over it.
    #[arg(long, env = "GANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Most jobs running at once [default: number of cores].
    #[arg(long, env = "GANTRY_MAX_PARALLEL")]
    pub max_parallel: Option<usize>,
    /// Keep finished runs this long (working data) [default: 1d].
    #[arg(long, env = "GANTRY_RETAIN_RUNS")]
    pub retain_runs: Option<String>,
    /// Keep audit events this long [default: 90d].
    #[arg(long, env = "GANTRY_RETAIN_AUDIT")]
    pub retain_audit: Option<String>,
    /// Keep job logs this long [default: 7d].
    #[arg(long, env = "GANTRY_RETAIN_LOGS")]
    pub retain_logs: Option<String>,
    /// Folder for workspaces [default: DATA_DIR/work]; must be outside the data dir with
    /// `--run-as`.
    #[arg(long, env = "GANTRY_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Unprivileged user local jobs run as (the server must run as root).
    #[arg(long, env = "GANTRY_RUN_AS")]
    pub run_as: Option<String>,
    /// How much of each job's output its log keeps, e.g. `64m`; the rest is dropped [default: 64m].
    #[arg(long, env = "GANTRY_LOG_LIMIT")]
    pub log_limit: Option<String>,
}

/// The server's settings after flags, environment, `gantry.toml` and defaults are merged.
struct Settings {
    listen: SocketAddr,
    data_dir: PathBuf,
    max_parallel: usize,
    token: Option<String>,
    retention: Retention,
    log_limit: u64,
    github_secret: Option<String>,
    webhook_secret: Option<String>,
    github: Option<GitHubSettings>,
    /// `None`: the key file in the data dir (made on first start).
    secret_key: Option<SecretKey>,
    git_allowed: Vec<String>,
    fork_secrets: std::collections::HashSet<String>,
    fork_jobs: gantry_engine::ForkJobs,
    isolation: gantry_exec::Isolation,
    work_dir: Option<PathBuf>,
    allow_internal_hosts: Vec<String>,
    rules: Vec<gantry_core::bus::rule::RuleDef>,
    base_dir: PathBuf,
    services: std::collections::BTreeMap<String, gantry_core::services::ServiceDef>,
    target_groups: std::collections::BTreeMap<String, gantry_core::services::TargetGroupDef>,
    /// `GANTRY_PUBLIC_URL`'s origin: a name and an origin of the server besides its address.
    public: Option<Origin>,
    cors: Vec<Origin>,
    header_read_timeout: Duration,
    /// Credentials for image pulls: `[registries]`, then the Docker config file's.
    registries: gantry_exec::RegistryAuth,
    runners: gantry_engine::runners::RunnersConfig,
}

/// Reporting to GitHub: on when a token, or an App id and key, are set.
struct GitHubSettings {
    auth: GitHubAuth,
    api_url: String,
    public_url: Option<String>,
    interval_ms: i64,
}

enum GitHubAuth {
    Token(String),
    App { id: String, private_key_pem: String },
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

fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let mut file = FileConfig::load(args.config.as_deref())?;
    let rules = file.rule_defs()?;
    let services = std::mem::take(&mut file.services);
    let registries =
        config::registries::registry_auth(&file.registries, |v| std::env::var(v).ok())?;
    let target_groups = std::mem::take(&mut file.target_groups);
    let problems: Vec<String> = services
        .iter()
        .flat_map(|(name, s)| s.check(name, &target_groups))
        .collect();
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    // `run = "specs/x.yml"` in a rule is relative to the config file's folder.
    let base_dir = args
        .config
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let listen = match (args.listen, file.listen) {
        (Some(l), _) => l,
        (None, Some(text)) => text.parse().with_context(|| {
            format!("config listen: `{text}` is not an address like 127.0.0.1:8080")
        })?,
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let max_parallel = args
        .max_parallel
        .or(file.max_parallel)
        .unwrap_or_else(wiring::default_parallelism);
    if max_parallel == 0 {
        bail!("max-parallel must be at least 1");
    }
    let token_var = std::env::var("GANTRY_API_TOKEN").ok();
    let token_from = if token_var.is_some() {
        "GANTRY_API_TOKEN".to_string()
    } else {
        let file_name = args.config.as_deref().unwrap_or(Path::new("gantry.toml"));
        format!("api_token in {}", file_name.display())
    };
    let token = token_var.or(file.api_token).filter(|t| !t.is_empty());
    if token
        .as_ref()
        .is_some_and(|t| t.chars().count() < MIN_TOKEN_CHARS)
    {
        bail!(
            "{token_from} is too short: the API token must be at least {MIN_TOKEN_CHARS} characters (make one with `openssl rand -hex 32`)"
        );
    }
    let public_url = std::env::var("GANTRY_PUBLIC_URL")
        .ok()
        .or(file.public_url)
        .filter(|u| !u.is_empty());
    let public = match &public_url {
        None => None,
        Some(url) => Some(Origin::of_url(url).ok_or_else(|| {
            anyhow::anyhow!(
                "GANTRY_PUBLIC_URL (public_url): `{url}` is not a URL like https://ci.example.com"
            )
        })?),
    };
    let cors = list("GANTRY_CORS_ORIGINS", file.cors_origins)
        .iter()
        .filter(|o| !o.is_empty())
        .map(|o| cors_origin(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let header_read_timeout = duration(
        "header-read-timeout",
        std::env::var("GANTRY_HEADER_READ_TIMEOUT").ok(),
        file.header_read_timeout,
        "10s",
    )?;
    if header_read_timeout == 0 {
        bail!("header-read-timeout must be more than 0");
    }
    let secret = |var: &str, from_file: Option<String>| {
        std::env::var(var)
            .ok()
            .or(from_file)
            .filter(|s| !s.is_empty())
    };
    let auth = match (
        secret("GANTRY_GITHUB_TOKEN", file.github_token),
        secret("GANTRY_GITHUB_APP_ID", file.github_app_id),
        secret("GANTRY_GITHUB_APP_PRIVATE_KEY", file.github_app_private_key),
    ) {
        (Some(token), _, _) => Some(GitHubAuth::Token(token)),
        (None, Some(id), Some(key)) => {
            // The key itself, or the path of a PEM file holding it.
            let private_key_pem = if key.trim_start().starts_with("-----BEGIN") {
                key
            } else {
                std::fs::read_to_string(&key)
                    .with_context(|| format!("cannot read the GitHub App private key {key}"))?
            };
            Some(GitHubAuth::App {
                id,
                private_key_pem,
            })
        }
        (None, Some(_), None) => {
            bail!("GANTRY_GITHUB_APP_ID is set but GANTRY_GITHUB_APP_PRIVATE_KEY is not")
        }
        (None, None, Some(_)) => {
            bail!("GANTRY_GITHUB_APP_PRIVATE_KEY is set but GANTRY_GITHUB_APP_ID is not")
        }
        (None, None, None) => None,
    };
    let github = match auth {
        None => None,
        Some(auth) => Some(GitHubSettings {
            auth,
            api_url: std::env::var("GANTRY_GITHUB_API_URL")
                .ok()
                .or(file.github_api_url)
                .unwrap_or_else(|| "https://api.github.com".into()),
            public_url: public_url.clone(),
            interval_ms: duration(
                "report-interval",
                std::env::var("GANTRY_REPORT_INTERVAL").ok(),
                file.report_interval,
                "2s",
            )?,
        }),
    };
    let mut runners = gantry_engine::runners::RunnersConfig::new(std::mem::take(&mut file.runners));
    runners.reconcile_every = Duration::from_millis(
        duration(
            "runners-reconcile",
            std::env::var("GANTRY_RUNNERS_RECONCILE").ok(),
            file.runners_reconcile,
            "1m",
        )?
        .max(1) as u64,
    );
    if !runners.pools.is_empty() && github.is_none() {
        bail!(
            "[runners] need GitHub credentials to register runners: set GANTRY_GITHUB_TOKEN, or GANTRY_GITHUB_APP_ID and GANTRY_GITHUB_APP_PRIVATE_KEY"
        );
    }
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(".gantry"));
    // The secret store's key: given as text, or a file, or created in the data dir.
    let secret_key = match (
        std::env::var("GANTRY_SECRET_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
        std::env::var_os("GANTRY_SECRET_KEY_FILE")
            .map(PathBuf::from)
            .or(file.secret_key_file),
    ) {
        (Some(text), _) => {
            Some(SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("GANTRY_SECRET_KEY: {e}"))?)
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the secret key file {}", path.display()))?;
            Some(SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
        }
        (None, None) => None,
    };
    let git_allowed = list(
        "GANTRY_GIT_ALLOWED_URL_PREFIXES",
        Some(
            file.git_allowed_url_prefixes
                .unwrap_or_else(|| vec!["https://github.com/".into()]),
        ),
    );
    let run_as = match args.run_as.or(file.run_as) {
        None => None,
        Some(name) => {
            if !gantry_exec::running_as_root() {
                bail!(
                    "run_as `{name}`: jobs can run as another user only when the server runs as root"
                );
            }
            Some(gantry_exec::RunAs::lookup(&name).map_err(|e| anyhow::anyhow!(e))?)
        }
    };
    let work_dir = args.work_dir.or(file.work_dir);
    if run_as.is_some() {
        match &work_dir {
            None => bail!(
                "run_as needs a work dir outside the data dir (`--work-dir`, GANTRY_WORK_DIR or work_dir): the data dir is private to the server, so the jobs' user cannot enter it"
            ),
            Some(w) if std::path::absolute(w)?.starts_with(std::path::absolute(&data_dir)?) => {
                bail!(
                    "the work dir {} is inside the data dir {}: with run_as the jobs' user cannot enter it; put it beside",
                    w.display(),
                    data_dir.display()
                )
            }
            Some(_) => {}
        }
    }
    let isolation = gantry_exec::Isolation::Clean(gantry_exec::Clean {
        pass: list("GANTRY_PASS_ENV", file.pass_env),
        run_as,
    });
    let fork_jobs = match std::env::var("GANTRY_FORK_JOBS").ok().or(file.fork_jobs) {
        None => gantry_engine::ForkJobs::Containers,
        Some(text) => text
            .parse()
            .map_err(|e: String| anyhow::anyhow!("fork_jobs: {e}"))?,
    };
    let allow_internal_hosts = list("GANTRY_ALLOW_INTERNAL_HOSTS", file.allow_internal_hosts);
    let log_limit = match args.log_limit.or(file.log_limit.map(config::Size::text)) {
        Some(text) => wiring::log_limit("log-limit", &text)?,
        None => gantry_engine::logs::DEFAULT_LOG_LIMIT,
    };
    let fork_secrets = file
        .repos
        .iter()
        .filter(|(_, r)| r.secrets_for_forks)
        .map(|(name, _)| name.clone())
        .collect();
    Ok(Settings {
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
        fork_jobs,
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
        retention: Retention {
            working_ms: duration("retain-runs", args.retain_runs, file.retention.runs, "1d")?,
            audit_ms: duration(
                "retain-audit",
                args.retain_audit,
                file.retention.audit,
                "90d",
            )?,
            logs_ms: duration("retain-logs", args.retain_logs, file.retention.logs, "7d")?,
        },
    })
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

pub async fn main(args: ServeArgs) -> anyhow::Result<i32> {
    let Settings {
        listen,
        data_dir,
        max_parallel,
        token,
        retention,
        log_limit,
        github_secret,
        webhook_secret,
        github,
        secret_key,
        git_allowed,
        fork_secrets,
        fork_jobs,
        isolation,
        work_dir,
        allow_internal_hosts,
        rules,
        base_dir,
        services,
        target_groups,
        public,
        cors,
        header_read_timeout,
        registries,
        runners,
    } = settings(args)?;
    if token.is_none() && !listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {listen} without GANTRY_API_TOKEN: anyone who can reach it could run commands here"
        );
    }
    // What the server makes is private to it, and its memory unreadable to its jobs.
    gantry_exec::keep_jobs_out().map_err(|e| anyhow::anyhow!(e))?;
    if isolation.run_as().is_none() && gantry_exec::running_as_root() {
        warn!(
            "the server runs as root and so do its local jobs, which can then read the data dir (secrets, database); set run_as to an unprivileged user"
        );
    }
    // The jobs' user must pass through the work dir (made so if new; an existing one is the
    // operator's, as docs/security.md says).
    if let (Some(work), Some(_)) = (&work_dir, isolation.run_as())
        && !work.exists()
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(work)
            .with_context(|| format!("cannot create the work dir {}", work.display()))?;
        std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o711)).with_context(
            || {
                format!(
                    "cannot open the work dir {} to the jobs' user",
                    work.display()
                )
            },
        )?;
    }
    // Before anything in the data dir is touched: one server per data dir.
    let held = crate::data_dir::DataDir::lock(&data_dir)?.until_exit();
    let data_dir = held.path();
    std::fs::create_dir_all(data_dir.join("blobs"))
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let owner = held.instance_id()?;
    let secret_key = match secret_key {
        Some(key) => key,
        None => SecretKey::load_or_create(&data_dir.join("secret.key"))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let sqlite = wiring::open_sqlite(data_dir).await?;
    let secrets: Arc<dyn SecretStore> = Arc::new(sqlite.secrets(secret_key));
    let store: Arc<dyn gantry_engine::ports::Store> = Arc::new(sqlite);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let client: Option<Arc<gantry_github::GitHub>> = match &github {
        None => None,
        Some(gh) => Some(Arc::new(
            match &gh.auth {
                GitHubAuth::Token(t) => gantry_github::GitHub::new(&gh.api_url, t),
                GitHubAuth::App {
                    id,
                    private_key_pem,
                } => gantry_github::GitHub::with_app(&gh.api_url, id, private_key_pem),
            }
            .map_err(|e| anyhow::anyhow!("GitHub client: {e}"))?,
        )),
    };
    let forge = client.clone().map(|c| c as Arc<dyn Forge>);
    let git = wiring::git_sources(data_dir, git_allowed.clone(), forge.clone());
    let inputs = wiring::JobInputs {
        preparation: Preparation {
            secrets: Some(secrets.clone()),
            fork_secrets,
            fork_jobs,
        },
        git: Some(git.clone()),
        docker: true,
        isolation: isolation.clone(),
        work_dir: work_dir.clone(),
        log_limit: Some(log_limit),
        registries: registries.clone(),
        tree: None,
    };
    let engine =
        wiring::start_engine(data_dir, store.clone(), max_parallel, &owner, true, inputs).await?;

    let mut pipelines = None;
    if let (Some(gh), Some(forge)) = (github, forge) {
        let config = gantry_engine::reporter::ReporterConfig {
            public_url: gh.public_url,
            interval: Duration::from_millis(gh.interval_ms.max(1) as u64),
        };
        gantry_engine::reporter::start(
            store.clone(),
            engine.journal(),
            engine.logs().clone(),
            forge.clone(),
            config,
        );
        let p = Pipelines::new(
            engine.clone(),
            forge,
            git_allowed.clone(),
            Limits::default(),
        )
        .with_fork_jobs(fork_jobs);
        let resumed = p.resume().await?;
        if resumed > 0 {
            info!(resumed, "taking up pipeline events stored before a restart");
        }
        pipelines = Some(p);
        info!(api = %gh.api_url, "reporting to GitHub; pipelines on");
    }

    let metrics = Arc::new(Metrics::default());
    let mut committed = engine.journal().subscribe();
    let m = metrics.clone();
    tokio::spawn(async move {
        loop {
            match committed.recv().await {
                Ok(batch) => m.observe(&batch),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
    });

    let (sweep_now, mut sweep_rx) = tokio::sync::mpsc::channel::<()>(1);
    {
        let store = store.clone();
        let layout = engine.layout().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(JANITOR_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = sweep_rx.recv() => {}
                }
                match janitor::sweep(
                    store.as_ref(),
                    &layout,
                    &retention,
                    gantry_engine::ports::Clock::now_ms(&gantry_engine::ports::SystemClock),
                )
                .await
                {
                    Ok(report) => info!(?report, "janitor swept"),
                    Err(e) => warn!(cause = %e, "janitor sweep failed"),
                }
            }
        });
    }
    {
        // SIGUSR1: run the reconcilers now.
        let engine = engine.clone();
        tokio::spawn(async move {
            let Ok(mut usr1) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
            else {
                return;
            };
            while usr1.recv().await.is_some() {
                engine.poke_watchdog();
                let _ = sweep_now.try_send(());
            }
        });
    }

    let services = if services.is_empty() {
        None
    } else {
        let runtime = gantry_exec::DockerServices::connect()
            .await
            .map_err(|e| anyhow::anyhow!("[services] need Docker: {e}"))?
            .with_registries(registries.clone());
        let groups = wiring::target_groups(&services, &target_groups)?;
        let manager = ServiceManager::new(
            owner.clone(),
            services,
            Arc::new(runtime),
            Arc::new(groups),
            engine.journal().clone(),
            Arc::new(gantry_engine::ports::SystemClock),
        );
        match manager.adopt().await {
            Ok(0) => {}
            Ok(n) => info!(tasks = n, "service tasks taken back after a restart"),
            Err(e) => warn!(cause = %e, "cannot take back service tasks"),
        }
        Some(Arc::new(manager))
    };
    let bus = Bus::start(
        engine.clone(),
        BusPorts {
            http: Some(Arc::new(crate::outbound::HttpPoster::new(
                webhook_secret.as_deref(),
                &allow_internal_hosts,
            )?)),
            services: services
                .clone()
                .map(|s| s as Arc<dyn gantry_engine::ports::Services>),
            base_dir,
            git_allowed: git_allowed.clone(),
            limits: Limits::default(),
        },
        rules,
    )
    .await
    .map_err(|e| anyhow::anyhow!("rules: {e}"))?;

    let runners = match client {
        Some(actions) if !runners.pools.is_empty() => Some(
            wiring::start_runners(
                runners,
                wiring::RunnerSetup {
                    folder: work_dir.as_deref().unwrap_or(data_dir).join("runners"),
                    owner: &owner,
                    isolation,
                    actions,
                    store: store.clone(),
                    journal: engine.journal().clone(),
                    registries: registries.clone(),
                },
            )
            .await?,
        ),
        _ => None,
    };
    let state = AppState {
        runners,
        engine: engine.clone(),
        token: token.map(Arc::from),
        metrics,
        limits: Limits::default(),
        github_secret: github_secret.as_deref().and_then(Secret::new),
        webhook_secret: webhook_secret.as_deref().and_then(Secret::new),
        secrets: Some(secrets),
        pipelines,
        git_allowed: Arc::new(git_allowed),
        bus: Some(bus),
        services,
        deployer: deployer(git),
    };
    let addr = listener.local_addr()?;
    outln!("gantry listening on http://{addr}");
    let _ = std::io::stdout().flush();
    info!(%addr, data_dir = %data_dir.display(), max_parallel, "serving");
    let guard = Arc::new(Guard::new(addr, public, cors));
    server::serve(
        listener,
        server::router(state, guard),
        header_read_timeout,
        shutdown_signal(),
    )
    .await;
    engine.shutdown().await;
    info!("stopped");
    Ok(0)
}

/// The deployer's request-time lookups (branches through git, stacks and functions in AWS).
#[cfg(feature = "aws")]
fn deployer(git: Arc<gantry_exec::GitSources>) -> Option<server::Deployer> {
    Some(server::Deployer {
        git,
        targets: Arc::new(gantry_aws::targets::AwsTargets::new()),
    })
}

/// A build without the AWS executor has no deployer.
#[cfg(not(feature = "aws"))]
fn deployer(_: Arc<gantry_exec::GitSources>) -> Option<server::Deployer> {
    None
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

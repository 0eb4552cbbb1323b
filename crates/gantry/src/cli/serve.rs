//! `gantry serve`: first-start setup of the data directory, then the HTTP API, the orchestrator
//! (with recovery), the watchdog and the janitor, in one process, until SIGTERM or Ctrl-C.

use super::config::settings::{Settings, settings};
use crate::server::{self, AppState, Guard, Metrics, signature::Secret};
use crate::wiring;
use anyhow::Context;
use gantry_core::spec::Limits;
use gantry_engine::Preparation;
use gantry_engine::bus::{Bus, BusPorts};
use gantry_engine::janitor;
use gantry_engine::pipelines::Pipelines;
use gantry_engine::ports::Forge;
use gantry_engine::services::ServiceManager;
use gantry_store::SecretKey;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the janitor sweeps (it also sweeps at start and on SIGUSR1).
const JANITOR_EVERY: Duration = Duration::from_secs(3600);

/// The environment variables `serve` reads besides its flags' (those show `[env: …]` above).
pub const ENV_HELP: &str = "\
Environment (besides the flags' [env: ...]; most are also keys of gantry.toml: docs/config.md):
  GANTRY_API_TOKEN                 bearer token the API requires (at least 32 characters)
  GANTRY_GITHUB_WEBHOOK_SECRET     secret GitHub signs /webhooks/github deliveries with
  GANTRY_WEBHOOK_SECRET            secret /webhook payloads are signed with; signs HTTP targets
  GANTRY_GITHUB_TOKEN              GitHub token: reporting, pipelines, runners
  GANTRY_GITHUB_APP_ID             GitHub App id (with GANTRY_GITHUB_APP_PRIVATE_KEY)
  GANTRY_GITHUB_APP_PRIVATE_KEY    the App's private key, PEM text or a file's path
  GANTRY_GITHUB_API_URL            GitHub API URL [default: https://api.github.com]
  GANTRY_PUBLIC_URL                the URL clients reach the server at (links, Host check)
  GANTRY_CORS_ORIGINS              comma-separated origins of web apps that may call the API
  GANTRY_HEADER_READ_TIMEOUT       time a client has to send a request head [default: 10s]
  GANTRY_REPORT_INTERVAL           at most one PR comment edit per run this often [default: 2s]
  GANTRY_GIT_ALLOWED_URL_PREFIXES  comma-separated prefixes clone URLs must start with
  GANTRY_DATABASE_URL              postgres://USER:PASSWORD@HOST:PORT/NAME: store runs and secrets
                                   in PostgreSQL [default: DATA_DIR/gantry.db, SQLite]
  GANTRY_SECRET_KEY                the secret store's age key (AGE-SECRET-KEY-1...)
  GANTRY_SECRET_KEY_FILE           a file holding that key [default: DATA_DIR/secret.key]
  GANTRY_PASS_ENV                  comma-separated names of variables local jobs get
  GANTRY_FORK_JOBS                 what forks' PR jobs may do: containers, off, local
  GANTRY_ALLOW_INTERNAL_HOSTS      comma-separated internal hosts rules' http targets may reach
  GANTRY_RUNNERS_RECONCILE         how often runner pools are reconciled with GitHub [default: 1m]
  GANTRY_AGENT_LEASE               how long an agent holds a job without renewing [default: 60s]
  GANTRY_LOG                       log filter, e.g. debug or gantry=debug [default: info]
  DOCKER_CONFIG                    folder of the Docker config.json for registry credentials
  ([registries] password_env names further variables; the deployer reads AWS_* variables)";

#[derive(Debug, clap::Args)]
#[command(after_help = ENV_HELP)]
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
    /// An object store for finished runs' logs and large event payloads, shared by every
    /// server that uses it: `s3://bucket[/prefix]` (AWS_* variables as the AWS SDKs read
    /// them) or `file:///folder`. Without one, logs stay in the data dir, and large payloads
    /// go to DATA_DIR/blobs with SQLite, to the database with PostgreSQL.
    #[arg(long, env = "GANTRY_BLOB_URL")]
    pub blob_url: Option<String>,
    /// Event payloads of this size or more go to the object store, the event's row keeping
    /// where, e.g. `256k` [default: 256k].
    #[arg(long, env = "GANTRY_PAYLOAD_BLOB_MIN")]
    pub payload_blob_min: Option<String>,
    /// How long an agent holds a job without renewing its lease, e.g. `60s` [default: 60s].
    #[arg(long, env = "GANTRY_AGENT_LEASE")]
    pub agent_lease: Option<String>,
}

pub async fn main(args: ServeArgs) -> anyhow::Result<i32> {
    let blob_url = args.blob_url.clone();
    let payload_blob_min = match &args.payload_blob_min {
        Some(text) => wiring::payload_blob_min(text)?,
        None => gantry_store::DEFAULT_PAYLOAD_BLOB_MIN,
    };
    let resolved = settings(args)?;
    let mut configured = resolved.configured();
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
        agent_lease_ms,
        executors,
        aws,
    } = resolved;
    // Every AWS client this process makes paces its calls to the account's buckets.
    #[cfg(feature = "aws")]
    gantry_aws::calls::set_rate_limits(&aws);
    #[cfg(not(feature = "aws"))]
    let _ = aws;
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
    let blobs = blob_url.as_deref().map(wiring::blob_store).transpose()?;
    let database_url = wiring::database_url();
    let payloads = wiring::payload_blobs(
        blobs.as_ref(),
        data_dir,
        database_url.is_some(),
        payload_blob_min,
    )?;
    let (store, secrets, agent_queue) =
        wiring::open_server_stores(data_dir, database_url.as_deref(), secret_key, payloads).await?;
    let callback_key = gantry_engine::agents::load_or_create_key(&data_dir.join("callback.key"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let agents = gantry_engine::agents::Agents::new(
        agent_queue,
        callback_key,
        agent_lease_ms,
        Some(secrets.clone()),
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let client: Option<Arc<gantry_github::GitHub>> = github.as_ref().map(|gh| gh.client.clone());
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
        agents: Some(agents.clone()),
        executors,
        public_url: public.as_ref().map(ToString::to_string),
    };
    let engine =
        wiring::start_engine(data_dir, store.clone(), max_parallel, &owner, true, inputs).await?;

    let archive = match blobs {
        Some(blobs) => Some(wiring::log_archive(blobs, &engine, store.as_ref()).await?),
        None => None,
    };

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
        let archive = archive.clone();
        let agents = agents.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(JANITOR_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = sweep_rx.recv() => {}
                }
                let now = gantry_engine::ports::Clock::now_ms(&gantry_engine::ports::SystemClock);
                match janitor::sweep(store.as_ref(), &layout, &retention, now).await {
                    Ok(report) => info!(?report, "janitor swept"),
                    Err(e) => warn!(cause = %e, "janitor sweep failed"),
                }
                if let Some(archive) = &archive {
                    match archive.catch_up(store.as_ref()).await {
                        Ok(0) => {}
                        Ok(n) => info!(logs = n, "archived run logs the archive missed"),
                        Err(e) => warn!(cause = %e, "cannot catch up the log archive"),
                    }
                    if let Err(e) = archive.expire(now - retention.logs_ms).await {
                        warn!(cause = %e, "cannot expire archived logs");
                    }
                }
                // The agents' queue keeps finished entries as long as finished runs' data.
                match agents.queue().sweep(now - retention.working_ms).await {
                    Ok(n) => info!(agent_jobs = n, "agents' queue swept"),
                    Err(e) => warn!(cause = %e, "agents' queue sweep failed"),
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
        let (runtimes, groups) =
            wiring::service_ports(&services, &target_groups, registries.clone()).await?;
        let manager = ServiceManager::new(
            owner.clone(),
            services,
            Arc::new(runtimes),
            Arc::new(groups),
            engine.journal().clone(),
            Arc::new(gantry_engine::ports::SystemClock),
        );
        match manager.adopt().await {
            Ok(0) => {}
            Ok(n) => info!(tasks = n, "service tasks taken back after a restart"),
            Err(e) => warn!(cause = %e, "cannot take back service tasks"),
        }
        let manager = Arc::new(manager);
        manager.watch(gantry_engine::services::WATCH_EVERY);
        Some(manager)
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
    // The address listened on (port 0 in the settings is a port picked now).
    if let Ok(bound) = listener.local_addr() {
        configured.listen = bound.to_string();
    }
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
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
        sessions: Arc::new(crate::dashboard::Sessions::new()),
        configured: Arc::new(configured),
        agents: Some(agents),
        stopping: stopping_rx,
        archive,
    };
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal();
    outln!("gantry listening on http://{addr}");
    let _ = std::io::stdout().flush();
    info!(%addr, data_dir = %data_dir.display(), max_parallel, "serving");
    let guard = Arc::new(Guard::new(addr, public, cors));
    server::serve(
        listener,
        server::router(state, guard),
        header_read_timeout,
        shutdown,
        stopping_tx,
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

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled: called before the address is printed, a signal sent as soon
/// as the server says it listens stops it cleanly instead of killing it.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async fn recv(s: Option<Signal>) {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    async move {
        tokio::select! {
            _ = recv(term) => {}
            _ = recv(int) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every `GANTRY_…` variable the server's code reads is in `serve --help`.
    #[test]
    fn help_names_every_variable_the_server_reads() {
        use clap::Args;
        let help = super::ServeArgs::augment_args(clap::Command::new("serve"))
            .render_long_help()
            .to_string();
        let sources = [
            include_str!("serve.rs"),
            include_str!("config/settings.rs"),
            include_str!("../main.rs"),
        ];
        let mut seen = 0;
        for text in sources {
            for part in text.split("\"GANTRY_").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                if !name.is_empty() && part[name.len()..].starts_with('"') {
                    seen += 1;
                    assert!(help.contains(&format!("GANTRY_{name}")), "GANTRY_{name}");
                }
            }
        }
        assert!(seen > 20, "{seen}");
    }
}

//! `gantry serve`: first-start setup of the data directory, then the HTTP API, the orchestrator
//! (with recovery), the watchdog and the janitor, in one process, until SIGTERM or Ctrl-C.

use super::DataDir;
use crate::server::{self, AppState, Metrics};
use crate::wiring;
use anyhow::{Context, bail};
use gantry_core::spec::Limits;
use gantry_engine::janitor;
use gantry_engine::ports::Retention;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the janitor sweeps (it also sweeps at start and on SIGUSR1).
const JANITOR_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GANTRY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub data: DataDir,
    /// Most jobs running at once (default: number of cores).
    #[arg(long, env = "GANTRY_MAX_PARALLEL")]
    pub max_parallel: Option<usize>,
    /// Keep finished runs this long (working data).
    #[arg(long, env = "GANTRY_RETAIN_RUNS", default_value = "1d", value_parser = parse_duration)]
    pub retain_runs: i64,
    /// Keep audit events this long.
    #[arg(long, env = "GANTRY_RETAIN_AUDIT", default_value = "90d", value_parser = parse_duration)]
    pub retain_audit: i64,
    /// Keep job logs this long.
    #[arg(long, env = "GANTRY_RETAIN_LOGS", default_value = "7d", value_parser = parse_duration)]
    pub retain_logs: i64,
}

fn parse_duration(s: &str) -> Result<i64, String> {
    gantry_core::duration::parse_duration_ms(s).map(|ms| ms as i64)
}

pub async fn main(args: ServeArgs) -> anyhow::Result<i32> {
    let token = std::env::var("GANTRY_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if token.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {} without GANTRY_API_TOKEN: anyone who can reach it could run commands here",
            args.listen
        );
    }
    let data_dir = &args.data.data_dir;
    let owner = first_start(data_dir)?;
    let store = wiring::open_store(data_dir).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let max_parallel = args
        .max_parallel
        .unwrap_or_else(wiring::default_parallelism);
    let engine = wiring::start_engine(data_dir, store.clone(), max_parallel, &owner, true).await?;

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

    let retention = Retention {
        working_ms: args.retain_runs,
        audit_ms: args.retain_audit,
        logs_ms: args.retain_logs,
    };
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

    let state = AppState {
        engine: engine.clone(),
        token: token.map(Arc::from),
        metrics,
        limits: Limits::default(),
    };
    let addr = listener.local_addr()?;
    println!("gantry listening on http://{addr}");
    let _ = std::io::stdout().flush();
    info!(%addr, data_dir = %data_dir.display(), max_parallel, "serving");
    axum::serve(listener, server::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    engine.shutdown().await;
    info!("stopped");
    Ok(0)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Creates the data directory on first start: the node id (this server's stable name, used to
/// hold run leases across restarts), the blob folder and an encryption key. Returns the node id.
fn first_start(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir.join("blobs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let node_file = dir.join("node-id");
    let node = match std::fs::read_to_string(&node_file) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            let id = format!("node-{}", gantry_engine::ids::new_run_id().to_lowercase());
            std::fs::write(&node_file, &id)
                .with_context(|| format!("cannot write {}", node_file.display()))?;
            id
        }
    };
    let key_file = dir.join("secret.key");
    if !key_file.exists() {
        let mut key = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_file)
            .with_context(|| format!("cannot create {}", key_file.display()))?;
        f.write_all(&key)?;
        f.sync_all()?;
    }
    Ok(node)
}

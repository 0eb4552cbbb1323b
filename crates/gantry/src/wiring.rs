//! Assembles an engine from its adapters for a data directory: the SQLite store, the local
//! executor, the system clock. The only place that picks concrete adapters.

use anyhow::Context;
use gantry_core::spec::ExecutorKind;
use gantry_engine::ports::{Store, SystemClock};
use gantry_engine::{Engine, EngineConfig, Executors};
use gantry_exec::LocalExecutor;
use gantry_store::SqliteStore;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Time between TERM and KILL when a job is stopped; short enough that a timed-out job is
/// recorded within 2 s of its deadline.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

pub fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

pub async fn open_store(data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let path = data_dir.join("gantry.db");
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    Ok(Arc::new(store))
}

pub async fn start_engine(
    data_dir: &Path,
    store: Arc<dyn Store>,
    max_parallel: usize,
    owner: &str,
    recover: bool,
) -> anyhow::Result<Engine> {
    let mut config = EngineConfig::new(data_dir.to_path_buf(), max_parallel, owner.to_string());
    config.recover = recover;
    let mut executors: Executors = Executors::new();
    executors.insert(
        ExecutorKind::Local,
        Arc::new(LocalExecutor::new(owner, KILL_GRACE)),
    );
    let engine = Engine::start(config, store, executors, Arc::new(SystemClock))
        .await
        .context("cannot start the engine")?;
    Ok(engine)
}

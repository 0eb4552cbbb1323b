//! Assembles an engine from its adapters for a data directory: the store (the data dir's SQLite
//! database, or PostgreSQL when `GANTRY_DATABASE_URL` names one, for `gantry serve`), the local
//! executor (with git checkout), the system clock. The only place that picks concrete adapters.

use anyhow::Context;
use gantry_core::spec::ExecutorKind;
use gantry_engine::ports::{Blobs, Forge, SecretStore, Store, SystemClock};
use gantry_engine::{Engine, EngineConfig, Executors, Preparation};
use gantry_exec::{GitSources, LocalExecutor};
use gantry_store::{PayloadBlobs, PgStore, SecretKey, SqliteStore};
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
    Ok(Arc::new(open_sqlite(data_dir).await?))
}

/// The data dir's database (also the home of the secret store).
pub async fn open_sqlite(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    let path = data_dir.join("gantry.db");
    SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))
}

/// The object store `url` names (`--blob-url`), checked but not yet reached.
pub fn blob_store(url: &str) -> anyhow::Result<Arc<dyn Blobs>> {
    Ok(Arc::new(gantry_blobs::ObjectBlobs::from_url(url)?))
}

/// Where event payloads of `min_bytes` or more go: the object store of `--blob-url` if there
/// is one; without, a folder of the data dir (`DATA_DIR/blobs`) when the store is the data
/// dir's SQLite database, and their rows on PostgreSQL (a database several servers may
/// share, where one server's folder would not be).
pub fn payload_blobs(
    blobs: Option<&Arc<dyn Blobs>>,
    data_dir: &Path,
    on_postgres: bool,
    min_bytes: u64,
) -> anyhow::Result<Option<PayloadBlobs>> {
    let blobs = match (blobs, on_postgres) {
        (Some(b), _) => b.clone(),
        (None, true) => return Ok(None),
        (None, false) => {
            let dir = data_dir.join("blobs");
            let dir = std::path::absolute(&dir)
                .with_context(|| format!("cannot find the folder {}", dir.display()))?;
            blob_store(&format!("file://{}", dir.display()))?
        }
    };
    Ok(Some(PayloadBlobs::new(blobs, min_bytes)))
}

/// The object store `blobs` as the engine's log archive, started: it archives each run's
/// log as the run finishes, after archiving what it missed (which also proves, before the
/// server answers anyone, that the store is there and answers).
pub async fn log_archive(
    blobs: Arc<dyn Blobs>,
    engine: &Engine,
    store: &dyn Store,
) -> anyhow::Result<gantry_engine::archive::LogArchive> {
    let archive = gantry_engine::archive::LogArchive::new(blobs, engine.logs().clone());
    let caught_up = archive
        .catch_up(store)
        .await
        .with_context(|| format!("cannot use the object store {}", archive.describe()))?;
    archive.start(engine.journal());
    tracing::info!(store = %archive.describe(), caught_up, "archiving run logs");
    Ok(archive)
}

/// The variable that selects PostgreSQL for `gantry serve` (unset: the data dir's SQLite).
pub const DATABASE_URL_VAR: &str = "GANTRY_DATABASE_URL";

/// The server's store, secret store and agents' queue, on one database: PostgreSQL if
/// `database_url` is given (`postgres://user:password@host:port/name`), else the data dir's
/// SQLite database; the store keeps large event payloads in `payloads`, if given.
pub async fn open_server_stores(
    data_dir: &Path,
    database_url: Option<&str>,
    secret_key: SecretKey,
    payloads: Option<PayloadBlobs>,
) -> anyhow::Result<ServerStores> {
    let Some(url) = database_url else {
        let mut sqlite = open_sqlite(data_dir).await?;
        if let Some(p) = payloads {
            sqlite = sqlite.with_payload_blobs(p);
        }
        let secrets = Arc::new(sqlite.secrets(secret_key));
        let agents = Arc::new(sqlite.agents());
        return Ok((Arc::new(sqlite), secrets, agents));
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!(
            "{DATABASE_URL_VAR} must be a postgres:// URL (unset, the store is the data dir's \
             SQLite database, gantry.db)"
        );
    }
    let target = gantry_store::postgres_target(url);
    let mut pg = PgStore::connect(url)
        .await
        .with_context(|| format!("cannot open the store ({DATABASE_URL_VAR})"))?;
    if let Some(p) = payloads {
        pg = pg.with_payload_blobs(p);
    }
    tracing::info!(database = %target, "store: PostgreSQL");
    let secrets = Arc::new(pg.secrets(secret_key));
    let agents = Arc::new(pg.agents());
    Ok((Arc::new(pg), secrets, agents))
}

/// The store, the secret store and the agents' queue of [`open_server_stores`].
pub type ServerStores = (
    Arc<dyn Store>,
    Arc<dyn SecretStore>,
    Arc<dyn gantry_engine::ports::AgentQueue>,
);

/// `GANTRY_DATABASE_URL`, if set and not empty.
pub fn database_url() -> Option<String> {
    std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// What jobs are prepared with besides the engine's basics: secrets, and git checkout.
#[derive(Default)]
pub struct JobInputs {
    pub preparation: Preparation,
    pub git: Option<Arc<GitSources>>,
    /// Connect to Docker for jobs with `image:` (a server always; `gantry run` when needed).
    pub docker: bool,
    /// The environment and user local jobs start with.
    pub isolation: gantry_exec::Isolation,
    /// Where workspaces go, if not `DATA_DIR/work`.
    pub work_dir: Option<std::path::PathBuf>,
    /// Bytes of output each attempt's log keeps (`None`: the engine's default, 64 MiB).
    pub log_limit: Option<u64>,
    /// Credentials for pulling jobs' images (by default the Docker config file's).
    pub registries: gantry_exec::RegistryAuth,
    /// A local run's working tree: jobs without a `source` start with a copy of it.
    pub tree: Option<Arc<gantry_exec::WorkingTree>>,
    /// Agents on other hosts run `runs_on` jobs (a server's).
    pub agents: Option<Arc<gantry_engine::agents::Agents>>,
    /// `[executors]`: ECS, CodeBuild and Lambda jobs (a server's).
    pub executors: gantry_core::remote::ExecutorsDef,
    /// The server's URL as remote workers reach it (their callback URLs).
    pub public_url: Option<String>,
}

/// The smallest log limit accepted: a bare number is bytes, so `64` for `64m` is refused.
pub const MIN_LOG_LIMIT: u64 = 1 << 10;

/// A `--log-limit` as given (`64m`, `1g`, bytes), checked; `what` names it in the error.
pub fn log_limit(what: &str, text: &str) -> anyhow::Result<u64> {
    let n = gantry_core::size::parse_bytes(text).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if n < MIN_LOG_LIMIT {
        anyhow::bail!(
            "{what}: `{text}` is less than 1k (a number without a unit is bytes; e.g. 64m)"
        );
    }
    Ok(n)
}

/// A `--payload-blob-min` as given (`256k`, `1m`, bytes), checked: at least 1k.
pub fn payload_blob_min(text: &str) -> anyhow::Result<u64> {
    let what = "payload-blob-min";
    let n = gantry_core::size::parse_bytes(text).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if n < gantry_store::MIN_PAYLOAD_BLOB_MIN {
        anyhow::bail!(
            "{what}: `{text}` is less than 1k (a number without a unit is bytes; e.g. 256k)"
        );
    }
    Ok(n)
}

pub async fn start_engine(
    data_dir: &Path,
    store: Arc<dyn Store>,
    max_parallel: usize,
    owner: &str,
    recover: bool,
    inputs: JobInputs,
) -> anyhow::Result<Engine> {
    let mut config = EngineConfig::new(data_dir.to_path_buf(), max_parallel, owner.to_string());
    config.recover = recover;
    config.work_dir = inputs.work_dir.clone();
    if let Some(limit) = inputs.log_limit {
        config.log_limit = limit;
    }
    let mut local = LocalExecutor::new(owner, KILL_GRACE).with_isolation(inputs.isolation.clone());
    if let Some(git) = inputs.git.clone() {
        local = local.with_git(git);
    }
    if let Some(tree) = inputs.tree.clone() {
        local = local.with_tree(tree);
    }
    let mut executors: Executors = Executors::new();
    executors.insert(ExecutorKind::Local, Arc::new(local));
    #[cfg(feature = "aws")]
    remote_executors(&mut executors, &inputs, owner).await;
    #[cfg(not(feature = "aws"))]
    if inputs.executors != Default::default() {
        tracing::warn!(
            "[executors] are set, but this build has no AWS adapters (feature `aws`): their jobs fail"
        );
    }
    // Jobs with `image:` run in containers when Docker is reachable; otherwise they fail
    // saying there is no executor for them here.
    if inputs.docker {
        match gantry_exec::DockerExecutor::connect(owner).await {
            Ok(docker) => {
                let mut docker = docker.with_registries(inputs.registries);
                if let Some(git) = inputs.git.clone() {
                    docker = docker.with_git(git);
                }
                if let Some(tree) = inputs.tree.clone() {
                    docker = docker.with_tree(tree);
                }
                executors.insert(ExecutorKind::Docker, Arc::new(docker));
            }
            Err(e) => tracing::info!(cause = %e, "no Docker executor"),
        }
    }
    // The deployer's jobs run in this process against AWS.
    #[cfg(feature = "aws")]
    let sessions = {
        let sessions = gantry_aws::executor::Sessions::new(store.clone());
        let aws = gantry_aws::executor::AwsExecutor::new(
            inputs.git.clone(),
            sessions.clone(),
            gantry_aws::deploy::Tools::from_env(),
        );
        executors.insert(ExecutorKind::Aws, Arc::new(aws));
        sessions
    };
    if let Some(agents) = &inputs.agents {
        let agent = gantry_engine::agents::AgentExecutor::new(agents.clone(), store.clone(), owner);
        executors.insert(ExecutorKind::Agent, Arc::new(agent));
    }
    let agents = inputs.agents.clone();
    let engine = Engine::start_with(
        config,
        store,
        executors,
        Arc::new(SystemClock),
        inputs.preparation,
    )
    .await
    .context("cannot start the engine")?;
    #[cfg(feature = "aws")]
    sessions.attach(engine.journal().clone());
    if let Some(agents) = agents {
        agents.attach(engine.journal().clone(), engine.logs().clone());
    }
    Ok(engine)
}

/// The executors of `[executors]`: ECS tasks, CodeBuild builds and Lambda invocations, each
/// with the clients of its region, reporting through the agents' callback route.
#[cfg(feature = "aws")]
async fn remote_executors(executors: &mut Executors, inputs: &JobInputs, owner: &str) {
    use gantry_aws::jobs::{Remote, codebuild, ecs, lambda};
    let defs = &inputs.executors;
    let remote = |aws: gantry_aws::Aws| Remote {
        aws,
        agents: inputs.agents.clone(),
        public_url: inputs.public_url.clone(),
        owner: owner.to_string(),
        poll: Duration::from_millis(defs.poll_ms()),
    };
    if let Some(d) = &defs.ecs {
        let aws = gantry_aws::Aws::connect(d.region.as_deref()).await;
        let e = ecs::EcsExecutor::new(remote(aws), d.clone());
        executors.insert(ExecutorKind::Ecs, Arc::new(e));
    }
    if let Some(d) = &defs.codebuild {
        let aws = gantry_aws::Aws::connect(d.region.as_deref()).await;
        let e = codebuild::CodebuildExecutor::new(remote(aws), d.clone());
        executors.insert(ExecutorKind::Codebuild, Arc::new(e));
    }
    if let Some(d) = &defs.lambda {
        let aws = gantry_aws::Aws::connect(d.region.as_deref()).await;
        let e = lambda::LambdaExecutor::new(remote(aws), d.clone());
        executors.insert(ExecutorKind::Lambda, Arc::new(e));
    }
}

/// The HAProxy target groups of `gantry.toml`; each group's health checks follow the first
/// service that uses it. (ELBv2 groups are made by [`aws_services`].) Without the AWS
/// adapters, an `elbv2` group or an `ecs` service is an error naming the missing feature.
pub fn target_groups(
    services: &std::collections::BTreeMap<String, gantry_core::services::ServiceDef>,
    groups: &std::collections::BTreeMap<String, gantry_core::services::TargetGroupDef>,
) -> anyhow::Result<gantry_lb::HaproxyTargetGroups> {
    let mut out = std::collections::HashMap::new();
    let mut problems = gantry_core::services::check_groups(groups);
    for (name, g) in groups {
        problems.extend(g.check(name));
        if g.provider == "elbv2" && !cfg!(feature = "aws") {
            problems.push(format!(
                "target_groups.{name}: provider elbv2 needs the AWS adapters (this build was made without the `aws` feature)"
            ));
        }
        if g.provider != "haproxy" {
            continue;
        }
        let check = services
            .values()
            .find(|s| &s.target_group == name)
            .map(|s| s.health_check.clone())
            .unwrap_or_default();
        out.insert(
            name.clone(),
            gantry_lb::HaproxyGroup {
                socket: g.socket.clone().into(),
                backend: g.backend.clone(),
                check_interval_ms: gantry_core::services::ms(&check.interval),
                healthy_threshold: check.healthy_threshold,
            },
        );
    }
    for (name, s) in services {
        if s.runtime == gantry_core::services::Runtime::Ecs && !cfg!(feature = "aws") {
            problems.push(format!(
                "services.{name}: runtime ecs needs the AWS adapters (this build was made without the `aws` feature)"
            ));
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    Ok(gantry_lb::HaproxyTargetGroups::new(out))
}

/// The services' runtimes and target groups: Docker and HAProxy on this host, ECS and ELBv2
/// (clients from the environment: credentials, region, `AWS_ENDPOINT_URL`) where the config
/// asks for them. Docker is connected only when a service runs on it.
pub async fn service_ports(
    services: &std::collections::BTreeMap<String, gantry_core::services::ServiceDef>,
    groups: &std::collections::BTreeMap<String, gantry_core::services::TargetGroupDef>,
    registries: gantry_exec::RegistryAuth,
) -> anyhow::Result<(
    gantry_engine::ports::RoutedRuntimes,
    gantry_engine::ports::RoutedTargetGroups,
)> {
    use gantry_core::services::Runtime;
    let mut runtimes = gantry_engine::ports::RoutedRuntimes::default();
    if services.values().any(|s| s.runtime == Runtime::Docker) {
        let docker = gantry_exec::DockerServices::connect()
            .await
            .map_err(|e| anyhow::anyhow!("[services] on Docker need Docker: {e}"))?
            .with_registries(registries);
        runtimes.docker = Some(Arc::new(docker));
    }
    let haproxy = Arc::new(target_groups(services, groups)?);
    let mut routed = gantry_engine::ports::RoutedTargetGroups::new();
    for (name, g) in groups {
        if g.provider == "haproxy" {
            routed.add(name, haproxy.clone());
        }
    }
    #[cfg(feature = "aws")]
    aws_services(services, groups, &mut runtimes, &mut routed).await;
    Ok((runtimes, routed))
}

/// ECS services and ELBv2 groups, each group on the clients of its region.
#[cfg(feature = "aws")]
async fn aws_services(
    services: &std::collections::BTreeMap<String, gantry_core::services::ServiceDef>,
    groups: &std::collections::BTreeMap<String, gantry_core::services::TargetGroupDef>,
    runtimes: &mut gantry_engine::ports::RoutedRuntimes,
    routed: &mut gantry_engine::ports::RoutedTargetGroups,
) {
    let clients = gantry_aws::Clients::default();
    let mut clusters: Vec<String> = services
        .values()
        .filter_map(|s| s.ecs_placement().map(|p| p.cluster))
        .collect();
    clusters.sort();
    clusters.dedup();
    if !clusters.is_empty() {
        let aws = clients.get(None).await;
        runtimes.ecs = Some(Arc::new(gantry_aws::ecs_services::EcsServices::new(
            aws.ecs.clone(),
            clusters,
            aws.pacer.clone(),
        )));
    }
    let mut by_region: std::collections::BTreeMap<Option<String>, std::collections::HashMap<_, _>> =
        Default::default();
    for (name, g) in groups.iter().filter(|(_, g)| g.provider == "elbv2") {
        let Some(arn) = g.arn.clone() else { continue };
        by_region.entry(g.region.clone()).or_default().insert(
            name.clone(),
            gantry_aws::elbv2::Elbv2Group {
                arn,
                rule: g.listener_rule(),
            },
        );
    }
    for (region, in_region) in by_region {
        let aws = clients.get(region.as_deref()).await;
        let names: Vec<String> = in_region.keys().cloned().collect();
        let adapter: Arc<dyn gantry_engine::ports::TargetGroups> =
            Arc::new(gantry_aws::elbv2::Elbv2TargetGroups::new(
                aws.elbv2.clone(),
                in_region,
                aws.pacer.clone(),
            ));
        for name in names {
            routed.add(&name, adapter.clone());
        }
    }
}

/// What ephemeral runners are started with besides their pools.
pub struct RunnerSetup<'a> {
    /// Where local runners' folders go.
    pub folder: std::path::PathBuf,
    /// This Gantry's instance id (runners' containers and processes are marked with it).
    pub owner: &'a str,
    /// Local runners start as local jobs do.
    pub isolation: gantry_exec::Isolation,
    pub actions: Arc<dyn gantry_engine::ports::Actions>,
    pub store: Arc<dyn Store>,
    pub journal: gantry_engine::journal::Journal,
    /// Credentials for pulling runner images.
    pub registries: gantry_exec::RegistryAuth,
}

/// Ephemeral GitHub Actions runners for the pools of `gantry.toml`, on the hosts they name
/// (Docker, this machine). A pool whose host cannot be had stops the start.
pub async fn start_runners(
    config: gantry_engine::runners::RunnersConfig,
    setup: RunnerSetup<'_>,
) -> anyhow::Result<gantry_engine::runners::RunnerPools> {
    use gantry_engine::ports::RunnerHost;
    let mut hosts: std::collections::BTreeMap<String, Arc<dyn RunnerHost>> = Default::default();
    for (name, pool) in &config.pools {
        if hosts.contains_key(&pool.executor) {
            continue;
        }
        let host: Arc<dyn RunnerHost> = match pool.executor.as_str() {
            "docker" => Arc::new(
                gantry_exec::DockerRunners::connect(setup.owner)
                    .await
                    .map_err(|e| anyhow::anyhow!("runners.{name}: executor docker: {e}"))?
                    .with_registries(setup.registries.clone()),
            ),
            _ => Arc::new(gantry_exec::LocalRunners::new(
                setup.folder.clone(),
                setup.owner,
                setup.isolation.clone(),
                KILL_GRACE,
            )),
        };
        hosts.insert(pool.executor.clone(), host);
    }
    let pools = config.pools.len();
    let store = setup.store.clone();
    let runners = gantry_engine::runners::RunnerPools::start(
        config,
        gantry_engine::runners::RunnerPorts {
            store: setup.store,
            journal: setup.journal,
            actions: setup.actions,
            hosts,
            clock: Arc::new(SystemClock),
        },
    )
    .await
    .context("cannot start the runner pools")?;
    let resumed = runners.resume(store.as_ref()).await?;
    tracing::info!(pools, resumed, "ephemeral runners on");
    Ok(runners)
}

/// Git checkout for a data dir: mirrors under `git/`, the allowed URL prefixes, and a forge
/// for tokens to private repositories.
pub fn git_sources(
    data_dir: &Path,
    allowed: Vec<String>,
    tokens: Option<Arc<dyn Forge>>,
) -> Arc<GitSources> {
    Arc::new(GitSources::new(data_dir.join("git"), allowed, tokens))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_limit_is_a_size_of_at_least_1k() {
        assert_eq!(super::log_limit("x", "64m").unwrap(), 64 << 20);
        assert_eq!(super::log_limit("x", "1024").unwrap(), 1024);
        let err = super::log_limit("log-limit", "64").unwrap_err().to_string();
        assert!(
            err.contains("less than 1k") && err.starts_with("log-limit"),
            "{err}"
        );
        assert!(super::log_limit("x", "lots").is_err());
        assert_eq!(super::payload_blob_min("256k").unwrap(), 256 << 10);
        assert!(super::payload_blob_min("100").is_err());
    }

    #[tokio::test]
    async fn a_database_url_that_is_not_postgres_is_refused_saying_what_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let key = gantry_store::SecretKey::load_or_create(&dir.path().join("k")).unwrap();
        let url = Some("mysql://gantry:pw@db/gantry");
        let err = super::open_server_stores(dir.path(), url, key, None)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("GANTRY_DATABASE_URL must be a postgres:// URL"),
            "{err}"
        );
        assert!(!err.contains("pw"), "{err}");
        assert!(!dir.path().join("gantry.db").exists(), "nothing made");
    }
}

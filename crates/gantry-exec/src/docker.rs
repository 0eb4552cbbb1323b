//! The Docker executor: a job with `image:` runs its commands in one `sh -e` session in a
//! container of that image (Docker Engine API over the local socket), with its workspace
//! mounted at `/workspace`, its env and secrets, and labels naming its run, job, attempt and
//! this server. The log is streamed live (masked); the exit code recorded; timeout and cancel
//! stop the container, and it is removed whatever happens. At start-up, job containers
//! labelled as this server's are orphans (no job of this life owns them) and are removed —
//! only those: not another instance's, and not this instance's service containers.
//!
//! An image the host does not have is pulled first (`pull.rs`), with the registry credentials
//! of [`RegistryAuth`]; the pull counts against the job's timeout, and cancel stops it.
//!
//! Also the Docker adapter for services' containers ([`DockerServices`]).

use crate::git::GitSources;
use crate::local::{note, session_script};
use crate::masked_log::LineMasker;
use crate::pull::ensure_image;
use crate::registry_auth::RegistryAuth;
use crate::workspace;
use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures_util::StreamExt;
use gantry_core::dag::Outcome;
use gantry_core::secret::Masker;
use gantry_engine::ports::{CancelSignal, Executor, LabelSelector, Launch, ListedContainer};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The label holding the owning server's instance id (on job and service containers).
pub use gantry_engine::ports::OWNER_LABEL;

/// The label naming a job container's run; only job containers carry it.
pub const RUN_LABEL: &str = "io.gantry.run";

pub struct DockerExecutor {
    docker: Docker,
    owner: String,
    git: Option<Arc<GitSources>>,
    /// A local run's working tree, copied into the workspace of each job without a `source`.
    tree: Option<Arc<crate::WorkingTree>>,
    /// Seconds between the stop signal and the kill.
    grace_s: i32,
    registries: RegistryAuth,
}

impl DockerExecutor {
    /// Connects to the local Docker Engine; an error says why it cannot be reached.
    pub async fn connect(owner: impl Into<String>) -> Result<DockerExecutor, String> {
        Ok(DockerExecutor {
            docker: connect().await?,
            owner: owner.into(),
            git: None,
            tree: None,
            grace_s: 1,
            registries: RegistryAuth::default(),
        })
    }

    /// Where the credentials for pulling jobs' images come from.
    pub fn with_registries(mut self, registries: RegistryAuth) -> Self {
        self.registries = registries;
        self
    }

    pub fn with_git(mut self, git: Arc<GitSources>) -> Self {
        self.git = Some(git);
        self
    }

    /// Jobs without a `source` start with a copy of `tree` (a local run's working tree).
    pub fn with_tree(mut self, tree: Arc<crate::WorkingTree>) -> Self {
        self.tree = Some(tree);
        self
    }

    async fn remove(&self, id: &str) {
        if let Err(e) = remove(&self.docker, id).await {
            warn!(container = id, cause = %e, "cannot remove container");
        }
    }

    fn body(&self, launch: &Launch, image: &str) -> ContainerCreateBody {
        let mut env: Vec<String> = launch.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend(
            launch
                .secrets
                .iter()
                .map(|(k, v)| format!("{k}={}", v.expose())),
        );
        env.push("GANTRY_WORKSPACE=/workspace".into());
        let labels: HashMap<String, String> = [
            (OWNER_LABEL, self.owner.clone()),
            (RUN_LABEL, launch.run_id.clone()),
            ("io.gantry.job", launch.job.clone()),
            ("io.gantry.attempt", launch.attempt.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let opts = launch.container.clone().unwrap_or_default();
        ContainerCreateBody {
            image: Some(image.to_string()),
            user: opts.user,
            cmd: Some(vec![
                "/bin/sh".into(),
                "-e".into(),
                "-c".into(),
                session_script(&launch.commands),
            ]),
            env: Some(env),
            working_dir: Some("/workspace".into()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                // The workspace is absolute (`workspace::start` made it so): Docker takes a
                // relative source for a volume name.
                binds: Some(vec![format!("{}:/workspace", launch.workspace.display())]),
                nano_cpus: opts.cpus_milli.map(|m| m as i64 * 1_000_000),
                memory: opts.memory_bytes.map(|b| b as i64),
                network_mode: opts.network,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl DockerExecutor {
    /// One attempt: its workspace, then its container, to its end.
    async fn attempt(&self, mut launch: Launch, cancel: CancelSignal) -> Outcome {
        let Some(masker) =
            workspace::start(self.git.as_deref(), self.tree.as_deref(), &mut launch).await
        else {
            return Outcome::Failed { exit_code: None };
        };
        // The server makes its files private; a container's own user gets the workspace.
        let user = launch.container.as_ref().and_then(|c| c.user.as_deref());
        if let Err(e) = workspace::for_container_user(&launch.workspace, user) {
            crate::local::note(
                &launch,
                &format!("gantry: cannot give the workspace to the container's user: {e}"),
            );
            return Outcome::Failed { exit_code: None };
        }
        self.run_in_container(&launch, masker, cancel).await
    }
}

#[async_trait]
impl Executor for DockerExecutor {
    async fn execute(&self, launch: Launch, cancel: CancelSignal) -> Outcome {
        let after = workspace::AfterCommands::of(&launch);
        let outcome = self.attempt(launch, cancel).await;
        after.finish(outcome).await
    }

    async fn reap_orphans(&self) -> usize {
        // This owner's job containers: its service containers (same owner, no run) outlive a
        // restart and are taken back by the service manager instead.
        let owned = format!("{OWNER_LABEL}={}", self.owner);
        let list = labelled(&self.docker, &[owned.as_str(), RUN_LABEL])
            .await
            .unwrap_or_default();
        for c in &list {
            if let Some(id) = &c.id {
                self.remove(id).await;
            }
        }
        list.len()
    }
}

/// Every container, running or not, with all of `labels` (each a name, or `name=value`).
pub(crate) async fn labelled(
    docker: &Docker,
    labels: &[&str],
) -> Result<Vec<bollard::models::ContainerSummary>, bollard::errors::Error> {
    let filters = HashMap::from([(
        "label".to_string(),
        labels.iter().map(|l| l.to_string()).collect(),
    )]);
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
}

impl DockerExecutor {
    /// The job's commands in a container of its image, in the prepared workspace.
    async fn run_in_container(
        &self,
        launch: &Launch,
        masker: Masker,
        mut cancel: CancelSignal,
    ) -> Outcome {
        let Some(image) = launch.image.clone() else {
            note(launch, "gantry: a docker job needs an `image`");
            return Outcome::Failed { exit_code: None };
        };
        // The job's time runs from here: pulling its image is part of it.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(launch.timeout_ms);
        let progress = |line: &str| launch.log.note(&masker.mask(&format!("gantry: {line}")));
        let pulled = tokio::select! {
            pulled = ensure_image(&self.docker, &image, &self.registries, &progress) => pulled,
            _ = tokio::time::sleep_until(deadline) => {
                timed_out(launch);
                return Outcome::TimedOut;
            }
            _ = cancel.cancelled() => {
                note(launch, "gantry: cancelled");
                return Outcome::Cancelled;
            }
        };
        if let Err(e) = pulled {
            note(launch, &masker.mask(&format!("gantry: {e}")));
            return Outcome::Failed { exit_code: None };
        }
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions::default()),
                self.body(launch, &image),
            )
            .await;
        let id = match created {
            Ok(c) => c.id,
            Err(e) => {
                note(
                    launch,
                    &masker.mask(&format!("gantry: cannot create the container: {e}")),
                );
                return Outcome::Failed { exit_code: None };
            }
        };
        if let Err(e) = self.docker.start_container(&id, None).await {
            note(
                launch,
                &masker.mask(&format!("gantry: cannot start the container: {e}")),
            );
            self.remove(&id).await;
            return Outcome::Failed { exit_code: None };
        }
        // Stream the log while waiting for the end.
        let logs = self.docker.logs(
            &id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let mut out = LineMasker::new(launch.log.clone(), masker.clone());
        let cut = launch.log.clone();
        let streamer = tokio::spawn(async move {
            let mut logs = std::pin::pin!(logs);
            loop {
                // A line held back for a wrapped form waits only so long for the next.
                let next = if out.holds_lines() {
                    match tokio::time::timeout(crate::masked_log::HOLD, logs.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            out.flush_held();
                            continue;
                        }
                    }
                } else {
                    logs.next().await
                };
                let Some(Ok(chunk)) = next else { break };
                // Past the log limit the rest is dropped unread: no masking, no writing.
                if cut.is_cut() {
                    continue;
                }
                match chunk {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => out.write(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
            let _ = out.finish();
        });
        let wait = async {
            let mut w = std::pin::pin!(self.docker.wait_container(&id, None));
            match w.next().await {
                Some(Ok(r)) => Some(r.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Some(code)
                }
                _ => None,
            }
        };
        let timeout = tokio::time::sleep_until(deadline);
        let stop = StopContainerOptions {
            t: Some(self.grace_s),
            signal: None,
        };
        let outcome = tokio::select! {
            code = wait => match code {
                Some(0) => Outcome::Succeeded,
                Some(c) => Outcome::Failed { exit_code: Some(c as i32) },
                // The wait ended without an exit code (the Docker Engine restarted, say):
                // the container is removed (killed) below, and the attempt failed here.
                None => Outcome::Failed { exit_code: None },
            },
            _ = timeout => {
                let _ = self.docker.stop_container(&id, Some(stop)).await;
                Outcome::TimedOut
            }
            _ = cancel.cancelled() => {
                let _ = self.docker.stop_container(&id, Some(stop)).await;
                Outcome::Cancelled
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), streamer).await;
        match outcome {
            Outcome::TimedOut => timed_out(launch),
            Outcome::Cancelled => note(launch, "gantry: cancelled"),
            Outcome::Failed { exit_code: None } => note(
                launch,
                "gantry: lost track of the container (the Docker Engine's wait ended without an exit code)",
            ),
            _ => {}
        }
        self.remove(&id).await;
        outcome
    }
}

fn timed_out(launch: &Launch) {
    note(
        launch,
        &format!(
            "gantry: timed out after {}",
            gantry_core::duration::format_duration_ms(launch.timeout_ms)
        ),
    );
}

/// The local Docker Engine, answering.
pub(crate) async fn connect() -> Result<Docker, String> {
    let docker =
        Docker::connect_with_local_defaults().map_err(|e| format!("cannot reach Docker: {e}"))?;
    docker
        .ping()
        .await
        .map_err(|e| format!("cannot reach Docker: {e}"))?;
    Ok(docker)
}

/// Removes a container (and its anonymous volumes), running or not; gone already is fine.
pub(crate) async fn remove(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(opts)).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        other => other,
    }
}

/// Service containers on Docker: long-running, labelled, on the service's network.
pub struct DockerServices {
    docker: Docker,
    registries: RegistryAuth,
}

impl DockerServices {
    pub async fn connect() -> Result<DockerServices, String> {
        Ok(DockerServices {
            docker: connect().await?,
            registries: RegistryAuth::default(),
        })
    }

    /// Where the credentials for pulling services' images come from.
    pub fn with_registries(mut self, registries: RegistryAuth) -> Self {
        self.registries = registries;
        self
    }
}

#[async_trait]
impl gantry_engine::ports::ServiceRuntime for DockerServices {
    async fn start(&self, c: &gantry_engine::ports::ServiceContainer) -> Result<String, String> {
        let progress = |line: &str| info!(image = %c.image, "{line}");
        ensure_image(&self.docker, &c.image, &self.registries, &progress).await?;
        let body = ContainerCreateBody {
            image: Some(c.image.clone()),
            cmd: (!c.command.is_empty()).then(|| c.command.clone()),
            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(c.labels.iter().cloned().collect()),
            host_config: Some(HostConfig {
                network_mode: c.network.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(Some(CreateContainerOptions::default()), body)
            .await
            .map_err(|e| format!("cannot create the container: {e}"))?
            .id;
        if let Err(e) = self.docker.start_container(&id, None).await {
            let _ = remove(&self.docker, &id).await;
            return Err(format!("cannot start the container: {e}"));
        }
        Ok(id)
    }

    async fn state(&self, id: &str) -> Result<gantry_engine::ports::ContainerState, String> {
        let c = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| format!("cannot inspect container {id}: {e}"))?;
        let state = c.state.unwrap_or_default();
        let ip = c.network_settings.and_then(|n| {
            n.networks
                .unwrap_or_default()
                .values()
                .filter_map(|e| e.ip_address.clone())
                .find(|ip| !ip.is_empty())
        });
        Ok(gantry_engine::ports::ContainerState {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            ip,
            reason: state.error.filter(|e| !e.is_empty()),
        })
    }

    async fn list(&self, selectors: &[LabelSelector<'_>]) -> Result<Vec<ListedContainer>, String> {
        let filters: Vec<String> = selectors
            .iter()
            .map(|s| match s.value {
                Some(v) => format!("{}={v}", s.key),
                None => s.key.to_string(),
            })
            .collect();
        let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
        let list = labelled(&self.docker, &filters)
            .await
            .map_err(|e| format!("cannot list containers: {e}"))?;
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c.id else {
                continue;
            };
            let labels: BTreeMap<String, String> =
                c.labels.unwrap_or_default().into_iter().collect();
            // Docker filtered already; this keeps the port's promise whatever it did.
            if !selectors.iter().all(|s| s.matches(&labels)) {
                continue;
            }
            let state = gantry_engine::ports::ServiceRuntime::state(self, &id).await?;
            out.push(ListedContainer { id, labels, state });
        }
        Ok(out)
    }

    async fn stop(&self, id: &str) -> Result<(), String> {
        let _ = self
            .docker
            .stop_container(
                id,
                Some(StopContainerOptions {
                    t: Some(2),
                    signal: None,
                }),
            )
            .await;
        remove(&self.docker, id)
            .await
            .map_err(|e| format!("cannot remove container {id}: {e}"))
    }
}

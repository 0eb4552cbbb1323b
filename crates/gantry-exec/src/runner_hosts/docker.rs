//! Runners as Docker containers of the pool's image, labelled with the runner's name, its
//! pool and this server's instance (so a restarted server finds them, and another instance's
//! are never touched). The container runs the pool's command; it is removed with the runner.

use crate::docker::{OWNER_LABEL, connect, labelled, remove};
use crate::pull::ensure_image;
use crate::registry_auth::RegistryAuth;
use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptions;
use gantry_engine::ports::runners::JITCONFIG_ENV;
use gantry_engine::ports::{HostedRunner, RunnerHost, RunnerLaunch};
use std::collections::HashMap;

/// The label naming a runner container's runner; only runner containers carry it.
pub const RUNNER_LABEL: &str = "io.gantry.runner";
/// The label naming its pool.
pub const POOL_LABEL: &str = "io.gantry.runner-pool";

pub struct DockerRunners {
    docker: Docker,
    instance: String,
    registries: RegistryAuth,
}

impl DockerRunners {
    /// Connects to the local Docker Engine; an error says why it cannot be reached.
    pub async fn connect(instance: &str) -> Result<DockerRunners, String> {
        Ok(DockerRunners {
            docker: connect().await?,
            instance: instance.to_string(),
            registries: RegistryAuth::default(),
        })
    }

    /// Credentials for pulling runner images.
    pub fn with_registries(mut self, registries: RegistryAuth) -> Self {
        self.registries = registries;
        self
    }

    /// This instance's containers of runner `name` (or of every runner).
    async fn containers(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, String> {
        let owner = format!("{OWNER_LABEL}={}", self.instance);
        let runner = match name {
            Some(n) => format!("{RUNNER_LABEL}={n}"),
            None => RUNNER_LABEL.to_string(),
        };
        labelled(&self.docker, &[owner.as_str(), runner.as_str()])
            .await
            .map_err(|e| format!("cannot list containers: {e}"))
    }
}

#[async_trait]
impl RunnerHost for DockerRunners {
    async fn start(&self, launch: RunnerLaunch<'_>) -> Result<String, String> {
        let image = launch
            .image
            .ok_or_else(|| "a docker runner needs an image".to_string())?;
        let name = launch.name;
        let progress = |line: &str| tracing::info!(runner = %name, "{line}");
        ensure_image(&self.docker, image, &self.registries, &progress).await?;
        let labels: HashMap<String, String> = [
            (OWNER_LABEL, self.instance.clone()),
            (RUNNER_LABEL, launch.name.to_string()),
            (POOL_LABEL, launch.pool.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(launch.argv()),
            env: Some(vec![
                format!("{JITCONFIG_ENV}={}", launch.jitconfig.expose()),
                format!("RUNNER_NAME={}", launch.name),
            ]),
            labels: Some(labels),
            host_config: Some(HostConfig::default()),
            ..Default::default()
        };
        // Docker's errors name the image or the daemon's trouble, never the command.
        let id = self
            .docker
            .create_container(Some(CreateContainerOptions::default()), body)
            .await
            .map_err(|e| format!("cannot create the runner's container: {e}"))?
            .id;
        if let Err(e) = self.docker.start_container(&id, None).await {
            let _ = remove(&self.docker, &id).await;
            return Err(format!("cannot start the runner's container: {e}"));
        }
        Ok(id.chars().take(12).collect())
    }

    async fn is_running(&self, name: &str) -> Result<bool, String> {
        Ok(self
            .containers(Some(name))
            .await?
            .iter()
            .any(|c| c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING)))
    }

    async fn remove(&self, name: &str) -> Result<(), String> {
        for c in self.containers(Some(name)).await? {
            if let Some(id) = c.id {
                remove(&self.docker, &id)
                    .await
                    .map_err(|e| format!("cannot remove container {id}: {e}"))?;
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<HostedRunner>, String> {
        Ok(self
            .containers(None)
            .await?
            .into_iter()
            .filter_map(|c| {
                let running = c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING);
                let name = c.labels?.get(RUNNER_LABEL)?.clone();
                Some(HostedRunner { name, running })
            })
            .collect())
    }
}

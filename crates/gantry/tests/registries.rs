//! `[registries]` in gantry.toml reaches the Docker executor: a server pulls a job's image
//! from a registry behind a password, with the password from the environment variable the
//! config file names; without that entry the pull is refused, saying so.

mod common;
#[path = "../../gantry-exec/tests/common/registry.rs"]
mod registry;

use common::Server;
use registry::{Registry, docker_config, push_unique, script, unique};

#[tokio::test]
async fn a_server_pulls_with_the_credentials_of_its_config_file() {
    script("test-deps");
    script("test-images");
    let dir = tempfile::tempdir().unwrap();
    let password = format!("pw-{}", unique());
    let registry = Registry::start(Some(("ci", &password)));
    let push_config = tempfile::tempdir().unwrap();
    docker_config(push_config.path(), &registry.host, "ci", &password);
    let image = push_unique(&registry, "served", Some(push_config.path()));
    let job = format!("jobs:\n  pulled: {{image: \"{image}\", run: [\"cat /stamp\"]}}\n");
    // The server's own Docker config file has nothing for this registry.
    let empty_home = tempfile::tempdir().unwrap();
    let home = empty_home.path().to_str().unwrap();

    // Without a [registries] entry: unauthorized.
    let config = dir.path().join("none.toml");
    std::fs::write(&config, "").unwrap();
    let server = Server::start_with(
        &dir.path().join("data-none"),
        &[
            ("GANTRY_CONFIG", config.to_str().unwrap()),
            ("DOCKER_CONFIG", home),
        ],
    )
    .await;
    let run = server.submit_yaml(&job).await;
    let done = server.wait_finished(&run, 60).await;
    let log = server.job_log(&run, "pulled").await;
    assert_eq!(done["jobs"][0]["status"], "failed", "{log}");
    assert!(log.contains("unauthorized"), "{log}");
    drop(server);

    let config = dir.path().join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            "[registries.\"{}\"]\nusername = \"ci\"\npassword_env = \"TEST_REGISTRY_PASSWORD\"\n",
            registry.host
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            ("GANTRY_CONFIG", config.to_str().unwrap()),
            ("TEST_REGISTRY_PASSWORD", &password),
            ("DOCKER_CONFIG", home),
        ],
    )
    .await;
    let run = server.submit_yaml(&job).await;
    let done = server.wait_finished(&run, 60).await;
    let log = server.job_log(&run, "pulled").await;
    assert_eq!(done["jobs"][0]["status"], "succeeded", "{log}");
    assert!(
        log.contains(&format!("gantry: pulling {image} (with credentials)")),
        "{log}"
    );
    assert!(!log.contains(&password), "{log}");
    let _ = std::process::Command::new("docker")
        .args(["rmi", &image])
        .output();
}

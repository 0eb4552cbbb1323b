//! Image pulls against a real registry: Debian's `docker-registry` (installed by
//! `scripts/test-deps`), started on a free port of 127.0.0.1 (the Docker Engine allows plain
//! HTTP there), open or behind an htpasswd file. Each test pushes an image of its own, made
//! from `gantry-test/busybox:latest` (built by `scripts/test-images`) with one more layer, and
//! removes it locally so that the executor has to pull it.

use gantry_core::dag::Outcome;
use gantry_engine::logs::Logs;
use gantry_engine::ports::{CancelSignal, Executor, Launch, ServiceContainer, ServiceRuntime};
use gantry_exec::{Credentials, DockerExecutor, DockerServices, OWNER_LABEL, RegistryAuth};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use tokio::sync::watch;

#[path = "common/registry.rs"]
mod registry;
use registry::{Registry, docker, docker_config, image_present, push_unique, script, unique};

fn launch(dir: &Path, job: &str, image: &str) -> Launch {
    Launch {
        run_id: "r-pull".into(),
        job: job.into(),
        attempt: 1,
        trace_id: "t".into(),
        commands: vec!["cat /stamp".into()],
        env: vec![],
        timeout_ms: 120_000,
        workspace: dir.join(job).join("ws"),
        log: Logs::new(dir.join("logs")).attempt("r-pull", job, 1),
        image: Some(image.into()),
        secrets: vec![],
        checkout: None,
        notes: vec![],
        container: None,
        aws: None,
        artifacts: Default::default(),
        cache: None,
    }
}

fn log_text(l: &Launch) -> String {
    String::from_utf8_lossy(&l.log.contents().unwrap_or_default()).into_owned()
}

fn signal() -> (watch::Sender<bool>, CancelSignal) {
    let (tx, rx) = watch::channel(false);
    (tx, CancelSignal(rx))
}

fn containers(owner: &str) -> usize {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label={OWNER_LABEL}={owner}"),
    ])
    .lines()
    .count()
}

fn setup() -> tempfile::TempDir {
    script("test-deps");
    script("test-images");
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn a_missing_image_is_pulled_once_with_its_progress_in_the_job_log() {
    let dir = setup();
    let registry = Registry::start(None);
    let owner = format!("pull-test-{}", std::process::id());
    // No credentials anywhere: this registry needs none.
    let none = RegistryAuth::new(BTreeMap::new(), None);
    let ex = DockerExecutor::connect(owner.as_str())
        .await
        .unwrap()
        .with_registries(none.clone());

    let image = push_unique(&registry, "pulled", None);
    let l = launch(dir.path(), "pulls", &image);
    let (_tx, cancel) = signal();
    let outcome = ex.execute(l.clone(), cancel).await;
    let log = log_text(&l);
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    let tag = image.rsplit(':').next().unwrap();
    assert!(log.contains(&format!("gantry: pulling {image}\n")), "{log}");
    assert!(
        log.contains("gantry: layer ") && log.contains(" already here\n"),
        "{log}"
    );
    // The new layer, with its size when Docker's progress gave one (a tiny layer can finish
    // before any progress with a total is reported).
    assert!(
        log.lines()
            .any(|l| l.starts_with("gantry: layer ") && l.contains(" pulled")),
        "the new layer: {log}"
    );
    assert!(
        log.contains(&format!("gantry: pulled {image} (sha256:")),
        "{log}"
    );
    assert!(
        log.contains(&format!("\n{tag}\n")),
        "the job ran in it: {log}"
    );
    assert!(
        log.lines().filter(|l| l.starts_with("gantry: ")).count() <= 6,
        "a few lines, no progress bars: {log}"
    );
    assert!(image_present(&image));

    // Two jobs needing one missing image at once: one pulls, the other waits for it.
    let image2 = push_unique(&registry, "shared", None);
    let (a, b) = (
        launch(dir.path(), "a", &image2),
        launch(dir.path(), "b", &image2),
    );
    let ((_ta, ca), (_tb, cb)) = (signal(), signal());
    let (ra, rb) = tokio::join!(ex.execute(a.clone(), ca), ex.execute(b.clone(), cb));
    let (la, lb) = (log_text(&a), log_text(&b));
    assert_eq!(
        (ra, rb),
        (Outcome::Succeeded, Outcome::Succeeded),
        "{la}\n{lb}"
    );
    let pulls = format!("{la}{lb}").matches("gantry: pulling ").count();
    assert_eq!(pulls, 1, "pulled once:\n{la}\n---\n{lb}");

    // An image the registry does not have: the registry's reason, and no container left.
    let nope = format!("{}/gantry-test/nope:{}", registry.host, unique());
    let l = launch(dir.path(), "nope", &nope);
    let (_tx, cancel) = signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    let log = log_text(&l);
    assert!(
        log.contains(&format!(
            "gantry: image {nope} not found in registry {}: manifest unknown",
            registry.host
        )),
        "{log}"
    );
    assert_eq!(containers(&owner), 0);

    // A registry that does not answer: said so, quickly.
    let down = format!("{}/gantry-test/x:1", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    });
    let l = launch(dir.path(), "down", &down);
    let (_tx, cancel) = signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    let log = log_text(&l);
    assert!(
        log.contains(&format!("gantry: cannot pull image {down} from registry")),
        "{log}"
    );

    // Service containers pull their image too.
    let image3 = push_unique(&registry, "service", None);
    let services = DockerServices::connect()
        .await
        .unwrap()
        .with_registries(none);
    let id = services
        .start(&ServiceContainer {
            image: image3.clone(),
            command: vec!["sleep".into(), "3952".into()],
            env: vec![],
            network: None,
            labels: vec![(OWNER_LABEL.to_string(), owner.clone())],
            ecs: None,
        })
        .await
        .unwrap();
    assert!(services.state(&id).await.unwrap().running);
    services.stop(&id).await.unwrap();
    let err = services
        .start(&ServiceContainer {
            image: nope.clone(),
            command: vec![],
            env: vec![],
            network: None,
            labels: vec![(OWNER_LABEL.to_string(), owner.clone())],
            ecs: None,
        })
        .await
        .unwrap_err();
    assert!(err.contains("not found in registry"), "{err}");
    assert_eq!(containers(&owner), 0);

    for i in [&image, &image2, &image3] {
        let _ = Command::new("docker").args(["rmi", i]).output();
    }
}

#[tokio::test]
async fn a_registry_behind_a_password_takes_credentials_from_the_docker_config_file() {
    let dir = setup();
    let password = format!("pw-{}", unique());
    let registry = Registry::start(Some(("alice", &password)));
    let config_dir = tempfile::tempdir().unwrap();
    let config = docker_config(config_dir.path(), &registry.host, "alice", &password);
    let image = push_unique(&registry, "private", Some(config_dir.path()));
    let owner = format!("pull-auth-{}", std::process::id());
    let executor = |auth: RegistryAuth| {
        let owner = owner.clone();
        async move {
            DockerExecutor::connect(owner)
                .await
                .unwrap()
                .with_registries(auth)
        }
    };

    // No credentials: unauthorized, said so.
    let ex = executor(RegistryAuth::new(
        BTreeMap::new(),
        Some(dir.path().join("no-such-config.json")),
    ))
    .await;
    let l = launch(dir.path(), "anonymous", &image);
    let (_tx, cancel) = signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    let log = log_text(&l);
    assert!(
        log.contains(&format!(
            "gantry: cannot pull image {image} from registry {}: unauthorized",
            registry.host
        )) && log.contains("no credentials for"),
        "{log}"
    );

    // Gantry's configured credentials come first, even when wrong; the password is not shown.
    let wrong = BTreeMap::from([(
        registry.host.clone(),
        Credentials::new("alice", "wrong-password-1234"),
    )]);
    let ex = executor(RegistryAuth::new(wrong, Some(config.clone()))).await;
    let l = launch(dir.path(), "wrong", &image);
    let (_tx, cancel) = signal();
    assert_eq!(
        ex.execute(l.clone(), cancel).await,
        Outcome::Failed { exit_code: None }
    );
    let log = log_text(&l);
    assert!(
        log.contains("unauthorized") && log.contains("refused the credentials"),
        "{log}"
    );
    assert!(!log.contains("wrong-password-1234"), "{log}");
    assert_eq!(containers(&owner), 0);
    assert!(!image_present(&image));

    // The Docker config file's credentials.
    let ex = executor(RegistryAuth::new(BTreeMap::new(), Some(config))).await;
    let l = launch(dir.path(), "authorized", &image);
    let (_tx, cancel) = signal();
    let outcome = ex.execute(l.clone(), cancel).await;
    let log = log_text(&l);
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(
        log.contains(&format!("gantry: pulling {image} (with credentials)")),
        "{log}"
    );
    assert!(!log.contains(&password), "{log}");
    assert!(image_present(&image));
    let _ = Command::new("docker").args(["rmi", &image]).output();
}

#[tokio::test]
async fn a_pull_that_hangs_ends_with_the_jobs_timeout_or_its_cancel() {
    let dir = setup();
    // A "registry" that takes connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let owner = format!("pull-hang-{}", std::process::id());
    let ex = DockerExecutor::connect(owner.as_str()).await.unwrap();

    let mut l = launch(dir.path(), "slow-pull", &format!("{host}/x/y:1"));
    l.timeout_ms = 1_500;
    let (_tx, cancel) = signal();
    let started = std::time::Instant::now();
    assert_eq!(ex.execute(l.clone(), cancel).await, Outcome::TimedOut);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let log = log_text(&l);
    assert!(
        log.contains(&format!("gantry: pulling {host}/x/y:1")),
        "{log}"
    );
    assert!(log.contains("gantry: timed out after"), "{log}");

    let l = launch(dir.path(), "cancelled-pull", &format!("{host}/x/y:2"));
    let (tx, cancel) = signal();
    let run = tokio::spawn({
        let l = l.clone();
        async move { ex.execute(l, cancel).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    tx.send(true).unwrap();
    assert_eq!(run.await.unwrap(), Outcome::Cancelled);
    assert!(log_text(&l).contains("gantry: cancelled"));
    assert_eq!(containers(&owner), 0);
}

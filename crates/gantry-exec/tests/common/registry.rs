//! A real image registry for tests: Debian's `docker-registry` (installed by
//! `scripts/test-deps`) on a free port of 127.0.0.1 (the Docker Engine allows plain HTTP
//! there), open or behind an htpasswd file, and images pushed to it. Shared by the tests of
//! gantry-exec and gantry (`#[path]`), which run `scripts/test-deps` and `scripts/test-images`
//! first.
#![allow(dead_code)]

use base64::Engine as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "gantry-test/busybox:latest";

pub fn script(name: &str) {
    let path = format!("{}/../../scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&path).output().expect("run a setup script");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `docker ARGS`, which must succeed; its stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn image_present(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A `docker-registry` serving a temp dir on 127.0.0.1; killed when dropped.
pub struct Registry {
    child: Child,
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Open, or for `user`'s `password` only.
    pub fn start(user: Option<(&str, &str)>) -> Registry {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
            if let Some((user, password)) = user {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd (apache2-utils, from scripts/test-deps)");
                assert!(out.status.success());
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: gantry-test\n    path: {}\n",
                    file.display()
                ));
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry (scripts/test-deps installs it)");
            let mut registry = Registry {
                child,
                host: format!("127.0.0.1:{port}"),
                _dir: dir,
            };
            if registry.wait_ready() {
                return registry;
            }
            // The port was taken meanwhile: another one.
        }
        panic!("docker-registry did not start");
    }

    /// Until `/v2/` answers (200, or 401 behind a password); false if the registry exited.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&self.host) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.host
                );
                let mut head = [0u8; 12];
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_exact(&mut head).is_ok()
                    && (head.ends_with(b" 200") || head.ends_with(b" 401"))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry on {} never answered /v2/", self.host);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker config dir whose `config.json` holds `user:password` for `host`.
pub fn docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    dir.join("config.json")
}

/// A new image in `registry` (the test image and a layer with `stamp` in `/stamp`), not on
/// this host any more; its reference.
pub fn push_unique(registry: &Registry, name: &str, config_dir: Option<&Path>) -> String {
    let tag = format!("{}-{}", std::process::id(), unique());
    let image = format!("{}/gantry-test/{name}:{tag}", registry.host);
    let builder = format!("gantry-pull-build-{tag}");
    docker(&[
        "run",
        "--name",
        &builder,
        BASE,
        "sh",
        "-c",
        &format!("echo {tag} > /stamp"),
    ]);
    docker(&["commit", &builder, &image]);
    docker(&["rm", "-f", &builder]);
    let mut push = vec![];
    if let Some(dir) = config_dir {
        push.extend(["--config", dir.to_str().unwrap()]);
    }
    push.extend(["push", image.as_str()]);
    docker(&push);
    docker(&["rmi", &image]);
    assert!(!image_present(&image));
    image
}

pub fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

//! A throwaway PostgreSQL cluster for the tests, and a fresh database per test. nextest runs
//! each test in a process of its own: the first to find no live cluster starts one (through
//! `scripts/pg-cluster`, under a lock file, its URL kept in a state file beside it, both under
//! the target dir's tmp); the others use it. `scripts/test` stops it after the tests. A caller's
//! `GANTRY_TEST_PG_URL` is used instead of starting one. Shared with crates/gantry's tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the shared cluster, its lock and its state file live.
pub fn cluster_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gantry-test-pg")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster")
}

/// The URL of the cluster's `postgres` database (or the caller's `GANTRY_TEST_PG_URL`).
pub fn cluster_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("GANTRY_TEST_PG_URL")
            && !url.is_empty()
        {
            return url;
        }
        let root = cluster_root();
        std::fs::create_dir_all(&root).unwrap();
        let lock = std::fs::File::create(root.join("lock")).unwrap();
        lock.lock().unwrap();
        let state = root.join("url");
        if let Ok(url) = std::fs::read_to_string(&state)
            && alive(url.trim())
        {
            return url.trim().to_string();
        }
        let dir = root.join("cluster");
        let _ = Command::new(script()).arg("stop").arg(&dir).status();
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/pg-cluster start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        std::fs::write(&state, &url).unwrap();
        url
    })
    .clone()
}

/// Whether the cluster at `url` still accepts connections (its port is open).
fn alive(url: &str) -> bool {
    let Some(port) = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return false;
    };
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_secs(1),
    )
    .is_ok()
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// Runs `sql` with psql against `url`.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path().join("bin/psql")))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("psql"));
    let out = Command::new(bin)
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A fresh database on the cluster, dropped (with its connections) when this is dropped.
pub struct PgDb {
    pub url: String,
    name: String,
    admin: String,
}

impl PgDb {
    pub fn new() -> PgDb {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = cluster_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "t_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin, &format!("CREATE DATABASE {name}")).unwrap();
        PgDb {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

//! Registry credentials for image pulls: those Gantry was configured with (`[registries]` in
//! `gantry.toml`) first, then the Docker config file's (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): an entry of its `auths` by the registry's host, with `auth`
//! (base64 of `user:password`) or `username` and `password`. Credential stores and helpers
//! (`credsStore`, `credHelpers`) are not consulted.
//!
//! A password is never printed: not in `Debug`, not in an error.

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::warn;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password, for the Docker Engine's request only.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Where a pull's credentials come from; cheap to clone.
#[derive(Clone, Debug)]
pub struct RegistryAuth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// By registry host (`host` or `host:port`), from Gantry's own configuration.
    configured: BTreeMap<String, Credentials>,
    /// The Docker config file, read at each lookup (a `docker login` needs no restart).
    docker_config: Option<PathBuf>,
}

impl Default for RegistryAuth {
    /// No configured credentials; the Docker config file of this process's environment.
    fn default() -> Self {
        RegistryAuth::new(BTreeMap::new(), default_docker_config())
    }
}

impl RegistryAuth {
    /// `configured` by registry host, ahead of the Docker config file at `docker_config`.
    pub fn new(
        configured: BTreeMap<String, Credentials>,
        docker_config: Option<PathBuf>,
    ) -> RegistryAuth {
        let configured = configured
            .into_iter()
            .map(|(host, c)| (normalize_host(&host), c))
            .collect();
        RegistryAuth {
            inner: Arc::new(Inner {
                configured,
                docker_config,
            }),
        }
    }

    /// The credentials for `registry` (a host, `host:port`, or `docker.io`), if any.
    pub fn lookup(&self, registry: &str) -> Option<Credentials> {
        let keys = keys_for(registry);
        for key in &keys {
            if let Some(c) = self.inner.configured.get(key) {
                return Some(c.clone());
            }
        }
        let path = self.inner.docker_config.as_deref()?;
        from_docker_config(path, &keys)
    }

    /// As the Docker Engine takes them with a pull.
    pub(crate) fn docker_credentials(&self, registry: &str) -> Option<DockerCredentials> {
        self.lookup(registry).map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password().to_string()),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        })
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".docker").join("config.json"))
}

/// A registry as a key: no scheme, no path, lower case (`https://Host:5000/v1/` → `host:5000`).
fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let h = h
        .strip_prefix("https://")
        .or_else(|| h.strip_prefix("http://"))
        .unwrap_or(h);
    h.split('/').next().unwrap_or(h).to_ascii_lowercase()
}

/// The keys a registry may be filed under; Docker Hub has several names.
fn keys_for(registry: &str) -> Vec<String> {
    let host = normalize_host(registry);
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => vec![
            "docker.io".into(),
            "index.docker.io".into(),
            "registry-1.docker.io".into(),
        ],
        _ => vec![host],
    }
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The entry of the Docker config file at `path` for the first of `keys` it has.
fn from_docker_config(path: &Path, keys: &[String]) -> Option<Credentials> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(path = %path.display(), cause = %e, "cannot read the Docker config file");
            return None;
        }
    };
    let config: DockerConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            // serde_json's message names a line and column, never the text.
            warn!(path = %path.display(), cause = %e, "the Docker config file is not valid");
            return None;
        }
    };
    let by_host: BTreeMap<String, &AuthEntry> = config
        .auths
        .iter()
        .map(|(k, v)| (normalize_host(k), v))
        .collect();
    let (key, entry) = keys.iter().find_map(|k| by_host.get(k).map(|e| (k, *e)))?;
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        return match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, password)) => Some(Credentials::new(user, password)),
            None => {
                warn!(path = %path.display(), registry = %key, "the Docker config file's `auth` is not base64 of user:password");
                None
            }
        };
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Some(Credentials::new(u, p)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, json: &str) -> PathBuf {
        let p = dir.join("config.json");
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn docker_config_auth_and_username_fields_are_read_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        let path = file(
            dir.path(),
            &format!(
                r#"{{"auths": {{
                    "127.0.0.1:5000": {{"auth": "{auth}"}},
                    "https://Reg.Example.com/v2/": {{"username": "bob", "password": "pw"}},
                    "https://index.docker.io/v1/": {{"auth": "{auth}"}}
                }}, "credsStore": "desktop"}}"#
            ),
        );
        let a = RegistryAuth::new(BTreeMap::new(), Some(path));
        assert_eq!(
            a.lookup("127.0.0.1:5000"),
            Some(Credentials::new("alice", "pa:ss"))
        );
        assert_eq!(
            a.lookup("reg.example.com"),
            Some(Credentials::new("bob", "pw"))
        );
        assert_eq!(
            a.lookup("docker.io"),
            Some(Credentials::new("alice", "pa:ss"))
        );
        assert_eq!(a.lookup("127.0.0.1:5001"), None);
    }

    #[test]
    fn configured_credentials_come_first_and_a_bad_file_is_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("file:pw");
        let path = file(
            dir.path(),
            &format!(r#"{{"auths": {{"reg:5000": {{"auth": "{auth}"}}}}}}"#),
        );
        let configured = BTreeMap::from([("REG:5000".to_string(), Credentials::new("cfg", "x"))]);
        let a = RegistryAuth::new(configured, Some(path.clone()));
        assert_eq!(a.lookup("reg:5000").unwrap().username, "cfg");
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(
            RegistryAuth::new(BTreeMap::new(), Some(path)).lookup("reg:5000"),
            None
        );
        let missing = RegistryAuth::new(BTreeMap::new(), Some(dir.path().join("nope.json")));
        assert_eq!(missing.lookup("reg:5000"), None);
    }

    #[test]
    fn a_password_is_never_in_debug_output() {
        let c = Credentials::new("alice", "hunter2-secret");
        let a = RegistryAuth::new(BTreeMap::from([("r".to_string(), c.clone())]), None);
        for text in [format!("{c:?}"), format!("{a:?}"), format!("{a:#?}")] {
            assert!(!text.contains("hunter2-secret"), "{text}");
            assert!(text.contains("alice"), "{text}");
        }
    }
}

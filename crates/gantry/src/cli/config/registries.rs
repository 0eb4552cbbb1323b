//! `[registries."HOST[:PORT]"]` in `gantry.toml`: credentials for pulling images from a
//! registry, a `username` and `password_env`, the name of an environment variable holding the
//! password (never the password itself in the file). They come before the Docker config file's
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).

use anyhow::bail;
use gantry_exec::{Credentials, RegistryAuth};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One registry's entry, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryDef {
    pub username: String,
    /// The environment variable holding the password.
    pub password_env: String,
    /// Refused with a word on where a password goes.
    #[serde(default)]
    password: Option<toml::Value>,
}

/// The credentials of `defs`, their passwords read through `env`; every problem at once.
pub fn registry_auth(
    defs: &BTreeMap<String, RegistryDef>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<RegistryAuth> {
    let mut problems = Vec::new();
    let mut configured = BTreeMap::new();
    for (host, def) in defs {
        let at = format!("registries.\"{host}\"");
        if let Some(why) = bad_host(host) {
            problems.push(format!("{at}: {why}"));
        }
        if def.password.is_some() {
            problems.push(format!(
                "{at}: a password is not kept in the config file: put it in an environment variable and name that in password_env"
            ));
        }
        if def.username.trim().is_empty() {
            problems.push(format!("{at}.username is empty"));
        }
        let var = def.password_env.as_str();
        let valid_name = var
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            problems.push(format!(
                "{at}.password_env `{var}` is not the name of an environment variable"
            ));
            continue;
        }
        match env(var).filter(|p| !p.is_empty()) {
            Some(password) => {
                configured.insert(host.clone(), Credentials::new(&def.username, password));
            }
            None => problems.push(format!(
                "{at}.password_env: the environment variable {var} is not set"
            )),
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(RegistryAuth::new(
        configured,
        gantry_exec::default_docker_config(),
    ))
}

/// Why `host` is not a registry's `host` or `host:port`, if it is not.
fn bad_host(host: &str) -> Option<String> {
    if host.contains("://") || host.contains('/') {
        return Some("the key is a registry's host (`registry.example.com` or `127.0.0.1:5000`), without scheme or path".into());
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    (!name_ok || !port_ok).then(|| "the key is not a host or host:port".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(toml_text: &str) -> BTreeMap<String, RegistryDef> {
        #[derive(Deserialize)]
        struct File {
            registries: BTreeMap<String, RegistryDef>,
        }
        toml::from_str::<File>(toml_text).unwrap().registries
    }

    #[test]
    fn credentials_take_their_password_from_the_environment() {
        let d = defs(
            "[registries.\"127.0.0.1:5000\"]\nusername = \"ci\"\npassword_env = \"REG_PW\"\n[registries.\"ghcr.io\"]\nusername = \"bot\"\npassword_env = \"GHCR\"\n",
        );
        let auth = registry_auth(&d, |v| match v {
            "REG_PW" => Some("hunter2".into()),
            "GHCR" => Some("token".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            auth.lookup("127.0.0.1:5000"),
            Some(Credentials::new("ci", "hunter2"))
        );
        assert_eq!(auth.lookup("ghcr.io").unwrap().username, "bot");
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn every_problem_is_named_and_no_password_is_shown() {
        let d = defs(
            r#"
[registries."https://reg.example.com/v2"]
username = "a"
password_env = "A"
[registries."reg:99999"]
username = "b"
password_env = "B"
[registries."ok.example.com"]
username = ""
password_env = "1BAD"
[registries."unset.example.com"]
username = "d"
password_env = "UNSET"
[registries."inline.example.com"]
username = "e"
password_env = "E"
password = "in-the-file"
"#,
        );
        let err = registry_auth(&d, |v| (v != "UNSET").then(|| "pw".to_string()))
            .unwrap_err()
            .to_string();
        for want in [
            "registries.\"https://reg.example.com/v2\": the key is a registry's host",
            "registries.\"reg:99999\": the key is not a host or host:port",
            "registries.\"ok.example.com\".username is empty",
            "registries.\"ok.example.com\".password_env `1BAD` is not the name",
            "registries.\"unset.example.com\".password_env: the environment variable UNSET is not set",
            "registries.\"inline.example.com\": a password is not kept in the config file",
        ] {
            assert!(err.contains(want), "{want}\n in: {err}");
        }
        assert!(!err.contains("in-the-file"), "{err}");
    }
}

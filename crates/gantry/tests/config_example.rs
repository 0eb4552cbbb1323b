//! `examples/gantry.toml` as it is: `gantry config check` accepts it, and a real server starts
//! with it (GitHub credentials pointing nowhere for the runner pools, the registry's password
//! variable set, Docker for the services and the docker runner pool) and serves what it
//! describes: its rules, its runner pool, its health.

mod common;

use common::Server;
use std::path::PathBuf;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/gantry.toml")
}

/// What the example needs from the environment to start.
const ENV: [(&str, &str); 3] = [
    ("GANTRY_GITHUB_TOKEN", "ghp_fake-token-for-the-example"),
    // Nothing listens there: the runner reconciler's calls fail and are retried.
    ("GANTRY_GITHUB_API_URL", "http://127.0.0.1:9"),
    ("REGISTRY_PASSWORD", "fake-password"),
];

#[test]
fn config_check_accepts_the_example_and_names_what_is_missing_without_its_env() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(common::gantry_bin());
        cmd.arg("config").arg("check").arg(example());
        for (k, _) in std::env::vars() {
            if k.starts_with("GANTRY_") || k == "REGISTRY_PASSWORD" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied()).output().unwrap()
    };
    let out = run(&ENV);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the environment variable REGISTRY_PASSWORD is not set"),
        "{err}"
    );
    assert!(err.contains("[runners] need GitHub credentials"), "{err}");
}

#[tokio::test]
async fn a_server_starts_with_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let config = example();
    let mut env = vec![("GANTRY_CONFIG", config.to_str().unwrap())];
    env.extend(ENV);
    let server = Server::start_with(&dir.path().join("data"), &env).await;
    let (status, health) = server.get("/healthz").await;
    assert_eq!(status, 200, "{health}");
    let (status, rules) = server.get("/api/v1/rules").await;
    assert_eq!(status, 200, "{rules}");
    let mut names: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["origin"], "config", "{r}");
            r["name"].as_str().unwrap()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "hello-on-request",
            "nightly-hello",
            "notify-failures",
            "start-web"
        ]
    );
    let (status, runners) = server.get("/api/v1/runners").await;
    assert_eq!(status, 200, "{runners}");
    assert!(runners["pools"].to_string().contains("linux"), "{runners}");
    let (status, services) = server.get("/api/v1/services").await;
    assert_eq!(status, 200, "{services}");
}

/// Every key `gantry.toml` takes, as the parser lists them when refusing an unknown one, is in
/// the example (set or commented out) and in docs/config.md: neither can fall behind the code.
#[test]
fn the_example_and_the_reference_name_every_key() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(root.join("examples/gantry.toml")).unwrap();
    let reference = std::fs::read_to_string(root.join("docs/config.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (table, snippet) in [
        ("top level", "__x = 1\n"),
        ("retention", "[retention]\n__x = 1\n"),
        ("agents", "[agents]\n__x = 1\n"),
        ("repos", "[repos.\"a/b\"]\n__x = 1\n"),
        ("registries", "[registries.\"r.example\"]\n__x = 1\n"),
        ("services", "[services.a]\n__x = 1\n"),
        ("health_check", "[services.a]\nhealth_check = { __x = 1 }\n"),
        ("target_groups", "[target_groups.a]\n__x = 1\n"),
        ("runners", "[runners.a]\n__x = 1\n"),
        ("rules", "[[rules]]\n__x = 1\n"),
        ("retry_policy", "[[rules]]\nretry_policy = { __x = 1 }\n"),
    ] {
        let file = dir.path().join("gantry.toml");
        std::fs::write(&file, snippet).unwrap();
        let out = std::process::Command::new(common::gantry_bin())
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let (_, keys) = err
            .split_once("expected ")
            .unwrap_or_else(|| panic!("{table}: {err}"));
        let keys = keys.strip_prefix("one of ").unwrap_or(keys);
        // serde lists them as `a`, as `a` or `b`, or as one of `a`, `b`, `c`.
        for key in keys
            .trim()
            .split(", ")
            .flat_map(|k| k.split(" or "))
            .map(|k| k.trim_matches('`'))
        {
            // `password` is a key refused with a word on where passwords go.
            if key == "password" {
                continue;
            }
            checked += 1;
            let written = example.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} ="))
                    || l.contains(&format!("{{ {key} ="))
                    || l.contains(&format!(", {key} ="))
            }) || example.contains(&format!("[{key}"));
            assert!(written, "{table}: `{key}` is not in examples/gantry.toml");
            assert!(
                [format!("`{key}`"), format!("`[{key}"), format!("`[[{key}")]
                    .iter()
                    .any(|k| reference.contains(k.as_str())),
                "{table}: `{key}` is not in docs/config.md"
            );
        }
    }
    assert!(checked > 60, "{checked}");
}

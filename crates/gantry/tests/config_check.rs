//! `gantry config check` with the real binary (a good file, a missing one, bad TOML, an
//! unknown key, a rule whose spec file is missing, and `serve` refusing that too), the
//! environment variables `serve --help` names, and a server's logs free of colour codes when
//! they go to a pipe.

mod common;

use common::gantry_bin;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `gantry ARGS` in `dir`, with no Gantry settings from the test's environment.
fn gantry(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(gantry_bin());
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("GANTRY_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run gantry")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const RULE: &str = "[[rules]]\nname = \"deploy\"\npattern = { source = [\"custom.app\"] }\ntarget = { run = \"specs/deploy.yml\" }\n";

#[test]
fn a_good_file_is_ok_and_the_default_is_gantry_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    std::fs::write(
        dir.path().join("specs/deploy.yml"),
        "jobs:\n  a: {run: [\"true\"]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gantry.toml"),
        format!("listen = \"127.0.0.1:9999\"\n\n{RULE}"),
    )
    .unwrap();
    let out = gantry(dir.path(), &["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: gantry.toml\n");
    let out = gantry(dir.path(), &["config", "check", "gantry.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_missing_file_bad_toml_and_an_unknown_key_are_refused_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let out = gantry(dir.path(), &["config", "check", "nope.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read config file nope.toml"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    std::fs::write(
        dir.path().join("bad.toml"),
        "listen = \"x\"\nretention = [\n",
    )
    .unwrap();
    let out = gantry(dir.path(), &["config", "check", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("bad.toml:2:"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(
        dir.path().join("unknown.toml"),
        "listen = \"127.0.0.1:1\"\n\n[retention]\nruns = \"1d\"\nforever = true\n",
    )
    .unwrap();
    let out = gantry(dir.path(), &["config", "check", "unknown.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("unknown.toml:5:1: unknown field `forever`"),
        "{err}"
    );
}

#[test]
fn every_problem_is_listed_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gantry.toml"),
        format!(
            "listen = \"0.0.0.0:8080\"\nheader_read_timeout = \"soon\"\n\n{RULE}\n[services.web]\nimage = \"\"\nport = 80\ntarget_group = \"nowhere\"\n\n[registries.\"r.example\"]\nusername = \"ci\"\npassword_env = \"GANTRY_TEST_UNSET_PASSWORD\"\n"
        ),
    )
    .unwrap();
    let out = gantry(dir.path(), &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for want in [
        "refusing to listen on 0.0.0.0:8080 without GANTRY_API_TOKEN",
        "header-read-timeout:",
        "gantry.toml:4: rule `deploy`: target: cannot read specs/deploy.yml",
        "gantry.toml:9: services.web.image is empty",
        "gantry.toml:9: services.web.target_group `nowhere` is not defined",
        "gantry.toml:14: registries.\"r.example\".password_env: the environment variable GANTRY_TEST_UNSET_PASSWORD is not set",
    ] {
        assert!(err.contains(want), "{want}\n in: {err}");
    }
}

#[test]
fn serve_refuses_a_rule_whose_spec_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gantry.toml");
    std::fs::write(&config, RULE).unwrap();
    let out = gantry(dir.path(), &["config", "check", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let check = text(&out.stderr);
    assert!(
        check.contains(":1: rule `deploy`: target: cannot read specs/deploy.yml"),
        "{check}"
    );
    let data = dir.path().join("data");
    let out = gantry(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("rule `deploy`: target: cannot read specs/deploy.yml"),
        "{err}"
    );
    // Refused before the data dir is touched.
    assert!(!data.exists());
}

#[test]
fn serve_help_names_the_environment_variables() {
    let out = gantry(Path::new("."), &["serve", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for var in [
        "GANTRY_API_TOKEN",
        "GANTRY_GIT_ALLOWED_URL_PREFIXES",
        "GANTRY_GITHUB_WEBHOOK_SECRET",
        "GANTRY_SECRET_KEY_FILE",
        "GANTRY_LOG",
        "[env: GANTRY_LISTEN=]",
        "[env: GANTRY_CONFIG=]",
    ] {
        assert!(help.contains(var), "{var}\n in: {help}");
    }
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(gantry_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("GANTRY_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 20];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"gantry listening on ");
    // SIGTERM: the server logs its stop and exits, closing stderr.
    let pid = child.id().to_string();
    assert!(Command::new("kill").arg(&pid).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let log = text(&out.stderr);
    assert!(log.contains("serving") && log.contains("stopped"), "{log}");
    assert!(!log.contains("\x1b["), "{log:?}");
}

#[test]
fn the_environment_is_checked_as_serve_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gantry.toml"), "max_parallel = 2\n").unwrap();
    let out = Command::new(gantry_bin())
        .args(["config", "check"])
        .current_dir(dir.path())
        .env("GANTRY_API_TOKEN", "short")
        .env("GANTRY_GITHUB_APP_ID", "1")
        .env(
            "GANTRY_GITHUB_APP_PRIVATE_KEY",
            "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for want in [
        "GANTRY_API_TOKEN is too short",
        "GitHub client: the GitHub App private key is not an RSA PEM key",
    ] {
        assert!(err.contains(want), "{want}\n in: {err}");
    }
    // A variable that stands for a flag is refused as the flag would be.
    let out = Command::new(gantry_bin())
        .args(["config", "check"])
        .current_dir(dir.path())
        .env("GANTRY_LISTEN", "127.0.0.1:nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("127.0.0.1:nope") && err.contains("--listen"),
        "{err}"
    );
}

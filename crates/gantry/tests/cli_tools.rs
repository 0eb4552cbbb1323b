//! The commands that need no server (the real binary): `gantry --version` names the commit it
//! was built from, `gantry completions SHELL` prints a script for bash, zsh and fish, and
//! `gantry init` writes a starter `.gantry.yml` that `gantry run` accepts and runs, and a
//! `gantry.toml`, refusing to overwrite either without `--force`.

#[path = "common/cli.rs"]
mod cli;
mod common;

use cli::gantry_in;

#[tokio::test]
async fn version_names_the_commit_it_was_built_from() {
    let out = gantry_in(None, &["--version"], b"").await;
    assert_eq!(out.code, 0, "{}", out.all());
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.stdout,
        format!("gantry {} (commit {head})\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _gantry"),
        ("zsh", "#compdef gantry"),
        ("fish", "complete -c gantry"),
    ] {
        let out = gantry_in(None, &["completions", shell], b"").await;
        assert_eq!(out.code, 0, "{shell}: {}", out.all());
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        // Subcommands added here are completed too.
        assert!(out.stdout.contains("services"), "{shell}");
    }
    let out = gantry_in(None, &["completions", "tcsh"], b"").await;
    assert_eq!(out.code, 2, "{}", out.all());
}

#[tokio::test]
async fn init_writes_a_starter_that_runs_and_never_overwrites_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let here = Some(dir.path());
    let out = gantry_in(here, &["init"], b"").await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.stdout, "wrote .gantry.yml\nwrote gantry.toml\n");
    let pipeline = std::fs::read_to_string(dir.path().join(".gantry.yml")).unwrap();
    let settings = std::fs::read_to_string(dir.path().join("gantry.toml")).unwrap();
    assert!(pipeline.starts_with("# "), "commented: {pipeline}");
    assert!(settings.starts_with("# "), "commented: {settings}");

    // `gantry run` accepts it, and its jobs run.
    let out = gantry_in(
        here,
        &["run", ".gantry.yml", "--branch", "main", "--json"],
        b"",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let run: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(common::job(&run, "test")["status"], "succeeded", "{run}");

    // Again: refused, nothing touched; one file there is enough to refuse.
    std::fs::write(dir.path().join("gantry.toml"), "# mine\n").unwrap();
    std::fs::remove_file(dir.path().join(".gantry.yml")).unwrap();
    let out = gantry_in(here, &["init"], b"").await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("gantry.toml already exists here"),
        "{}",
        out.all()
    );
    assert!(!dir.path().join(".gantry.yml").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("gantry.toml")).unwrap(),
        "# mine\n"
    );
    let out = gantry_in(here, &["init", "--force"], b"").await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("gantry.toml")).unwrap(),
        settings
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gantry.yml")).unwrap(),
        pipeline
    );
}

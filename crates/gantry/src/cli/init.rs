//! `gantry init`: writes a commented starter `.gantry.yml` (a pipeline that `gantry run`
//! accepts) and `gantry.toml` (server settings, every line but one commented out) into the
//! current directory, refusing to overwrite either unless `--force`.

use super::BadInput;
use anyhow::Context;
use std::path::Path;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Overwrite `.gantry.yml` and `gantry.toml` if they exist.
    #[arg(long)]
    pub force: bool,
}

/// The starter pipeline.
pub const PIPELINE: &str = r#"# .gantry.yml: this repository's pipeline. With GitHub set up, a push or pull request makes
# Gantry read this file at the event's commit; try it here first, without a server:
#   gantry run .gantry.yml --branch main
name: ci
on:
  push: {branches: [main]}          # also tags: ['v*'], paths: ['src/**'], '!' to exclude
  pull_request: {branches: [main]}  # the base branch
jobs:
  build:
    run: ["echo building"]          # commands, in order, in one `sh -e` session
    timeout: 10m                    # default 1h
    # artifacts: [dist/]            # kept, and laid into the jobs that need this one
    # cache: {key: deps, files: [package-lock.json], paths: [node_modules/]}
  test:
    needs: [build]
    run: ["echo testing"]
    env: {CI: "true"}
    retries: 1                      # or {count: 2, backoff: 5s}
  # deploy:
  #   needs: [test]
  #   when: {event: push, branch: main}
  #   secrets: [DEPLOY_TOKEN]       # gantry secrets set DEPLOY_TOKEN < token.txt
  #   image: alpine:3               # run in a container (Docker)
  #   run: ["./deploy.sh"]
"#;

/// The starter server settings: `gantry serve` in this directory reads it.
pub const SETTINGS: &str = r#"# gantry.toml: settings for `gantry serve` (flags and GANTRY_* variables win over them).
listen = "127.0.0.1:8080"
# data_dir = ".gantry"
# max_parallel = 4
# api_token = "…"                  # better: GANTRY_API_TOKEN (at least 32 characters)
# git_allowed_url_prefixes = ["https://github.com/acme/"]

# Rules route events (PutEvents, webhooks, run state changes) or schedules to targets.
# [[rules]]
# name = "deploy-on-request"
# pattern = { source = ["custom.app"], "detail-type" = ["Deploy"] }
# target = { run = ".gantry.yml" }
#
# [[rules]]
# name = "nightly"
# schedule = "cron(0 3 * * ? *)"
# target = { run = ".gantry.yml" }

# Pull requests from forks get no secrets unless their repository says so.
# [repos."acme/web"]
# secrets_for_forks = false
"#;

pub fn main(args: InitArgs) -> anyhow::Result<i32> {
    let files = [(".gantry.yml", PIPELINE), ("gantry.toml", SETTINGS)];
    if !args.force {
        let existing: Vec<&str> = files
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| Path::new(name).exists())
            .collect();
        if !existing.is_empty() {
            return Err(BadInput(format!(
                "{} already exist{} here: nothing written (--force overwrites)",
                existing.join(" and "),
                if existing.len() == 1 { "s" } else { "" }
            ))
            .into());
        }
    }
    for (name, text) in files {
        std::fs::write(name, text).with_context(|| format!("cannot write {name}"))?;
        outln!("wrote {name}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_starter_settings_are_what_serve_reads() {
        let file: super::super::config::FileConfig = toml::from_str(super::SETTINGS).unwrap();
        assert_eq!(file.listen.as_deref(), Some("127.0.0.1:8080"));
    }
}

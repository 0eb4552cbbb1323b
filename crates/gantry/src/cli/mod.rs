//! The command line (design §5 "CLI"): argument definitions and dispatch to each command.

pub mod client;
pub mod config;
pub mod events;
pub mod pattern;
pub mod progress;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod serve;

use clap::{Args, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

const ABOUT: &str = "Event-driven CI/CD and operations automation engine";
const RUN_ABOUT: &str = "Run a run spec or pipeline file once, locally, without a server";

#[derive(Debug, Parser)]
#[command(name = "gantry", version, about = ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

impl Cli {
    /// Parses the command line. `gantry run …` builds only its own command: it is the one
    /// whose start-up delays a run's first job, and building every command's arguments took
    /// ~0.2 ms of it. Everything else (help and errors included) is as [`Cli::parse`] gives.
    pub fn from_command_line() -> Cli {
        if std::env::args_os().nth(1).is_some_and(|a| a == "run") {
            let matches = run_only().get_matches();
            let run = matches
                .subcommand_matches("run")
                .map(run::RunArgs::from_arg_matches);
            match run {
                Some(Ok(args)) => Cli {
                    command: Cmd::Run(args),
                },
                Some(Err(e)) => e.exit(),
                None => Cli::parse(),
            }
        } else {
            Cli::parse()
        }
    }
}

/// The command line as [`Cli`] has it, with `run` alone among the subcommands.
fn run_only() -> clap::Command {
    clap::Command::new("gantry")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .subcommand_required(true)
        .arg_required_else_help(true)
        // After the arguments: they bring the doc comment of what they flatten as an about.
        .subcommand(run::RunArgs::augment_args(clap::Command::new("run")).about(RUN_ABOUT))
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the server: HTTP API, orchestrator, watchdog and janitor in one process.
    Serve(serve::ServeArgs),
    #[command(about = RUN_ABOUT)]
    Run(run::RunArgs),
    /// Submit a run spec to a server.
    Submit(client::SubmitArgs),
    /// Show runs, or one run with its jobs.
    Status(client::StatusArgs),
    /// Print a job's log (or every job's), optionally following it live.
    Logs(client::LogsArgs),
    /// Cancel a run.
    Cancel(client::CancelArgs),
    /// Re-run a finished run's failed and skipped jobs.
    Rerun(client::CancelArgs),
    /// Manage the server's secrets (values in from stdin, never out).
    #[command(subcommand)]
    Secrets(secrets::SecretsCmd),
    /// Try EventBridge event patterns against events.
    #[command(subcommand)]
    Pattern(pattern::PatternCmd),
    /// Put events on the bus (PutEvents).
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// Work out when EventBridge schedule expressions fire.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
}

/// Where state lives; shared by `serve` and `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// Folder for the database, logs and workspaces (created on first use).
    #[arg(long, env = "GANTRY_DATA_DIR", default_value = ".gantry")]
    pub data_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// What the full command line and the `run`-only one make of `argv`: the parsed `run`
    /// arguments, or the help or error text.
    fn both(argv: &[&str]) -> (String, String) {
        let full = match Cli::command().try_get_matches_from(argv) {
            Ok(m) => match Cli::from_arg_matches(&m) {
                Ok(Cli {
                    command: Cmd::Run(args),
                }) => format!("{args:?}"),
                other => format!("{other:?}"),
            },
            Err(e) => e.render().to_string(),
        };
        let run = match run_only().try_get_matches_from(argv) {
            Ok(m) => format!(
                "{:?}",
                run::RunArgs::from_arg_matches(m.subcommand_matches("run").unwrap()).unwrap()
            ),
            Err(e) => e.render().to_string(),
        };
        (full, run)
    }

    #[test]
    fn the_run_only_command_line_reads_and_refuses_as_the_full_one() {
        for argv in [
            &["gantry", "run", "spec.yml"][..],
            &[
                "gantry",
                "run",
                "spec.yml",
                "--json",
                "--max-parallel",
                "3",
                "--data-dir",
                "d",
                "--event",
                "push",
                "--branch",
                "main",
            ],
            &["gantry", "run", "-"],
            &["gantry", "run", "--help"],
            &["gantry", "run", "-h"],
            &["gantry", "run"],
            &["gantry", "run", "spec.yml", "--max-parallel", "many"],
            &["gantry", "run", "spec.yml", "--bogus"],
            &["gantry", "run", "spec.yml", "--jsn"],
            &["gantry", "run", "a.yml", "b.yml"],
        ] {
            let (full, run) = both(argv);
            assert_eq!(full, run, "{argv:?}");
        }
        let (full, _) = both(&["gantry", "run", "--help"]);
        assert!(
            full.contains("Usage: gantry run [OPTIONS] <FILE>"),
            "{full}"
        );
        assert!(full.contains(RUN_ABOUT), "{full}");
    }
}

//! The command line: argument definitions and dispatch to each command, and how commands
//! print their output.

/// `println!` for a command's output: a reader that has gone away (`gantry status | head`)
/// ends the command quietly, with the status a shell shows for a broken pipe (141).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for a command's output (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

pub mod client;
pub mod config;
pub mod deploy;
pub mod events;
pub mod pattern;
pub mod progress;
pub mod run;
pub mod runners;
pub mod schedule;
pub mod secrets;
pub mod serve;

use clap::{Parser, Subcommand};

const ABOUT: &str = "Event-driven CI/CD and operations automation engine";

#[derive(Debug, Parser)]
#[command(name = "gantry", version, about = ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the server: HTTP API, orchestrator, watchdog and janitor in one process.
    Serve(serve::ServeArgs),
    /// Run a run spec or pipeline file once, locally, without a server.
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
    /// Show the runner pools and their ephemeral GitHub Actions runners.
    Runners(runners::RunnersArgs),
    /// Work out when EventBridge schedule expressions fire.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
    /// Deploy a repository's branch to AWS; show, list and test the deployer's sessions.
    Deploy(deploy::DeployArgs),
    /// Check a `gantry.toml` as `gantry serve` would at start.
    #[command(subcommand)]
    Config(config::check::ConfigCmd),
}

/// Writes a command's output to stdout; a closed reader ends the process (see [`outln!`]).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("gantry: cannot write the output: {e}");
        std::process::exit(1);
    }
}

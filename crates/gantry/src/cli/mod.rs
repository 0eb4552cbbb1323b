//! The command line: argument definitions and dispatch to each command.

pub mod client;
pub mod config;
pub mod events;
pub mod pattern;
pub mod progress;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

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

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

pub mod agents;
pub mod client;
pub mod config;
pub mod deploy;
pub mod events;
pub mod init;
pub mod local_logs;
pub mod pattern;
pub mod progress;
pub mod rules;
pub mod run;
pub mod run_follow;
pub mod run_secrets;
pub mod runners;
pub mod runs;
pub mod schedule;
pub mod secrets;
pub mod serve;
pub mod services;

use clap::{Parser, Subcommand};

const ABOUT: &str = "Event-driven CI/CD and operations automation engine";

/// `gantry --version`: the version and the commit it was built from (`unknown` when built
/// outside a git checkout; see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GANTRY_GIT_COMMIT"),
    ")"
);

/// Input a command cannot use (a file that cannot be read, JSON that is not, an ambiguous run
/// id): the command exits 2, where anything else that stops it exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[derive(Debug, Parser)]
#[command(name = "gantry", version = VERSION, about = ABOUT)]
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
    Submit(runs::SubmitArgs),
    /// Show runs, or one run with its jobs.
    Status(runs::StatusArgs),
    /// Print a job's log (or every job's), optionally following it live.
    Logs(runs::LogsArgs),
    /// Cancel a run.
    Cancel(runs::CancelArgs),
    /// Re-run a finished run's failed and skipped jobs.
    Rerun(runs::CancelArgs),
    /// Manage the server's secrets (values in from stdin, never out).
    #[command(subcommand)]
    Secrets(secrets::SecretsCmd),
    /// Try EventBridge event patterns against events.
    #[command(subcommand)]
    Pattern(pattern::PatternCmd),
    /// Put events on the bus (PutEvents); list and show what came in.
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// List, show, create and delete the bus's rules.
    #[command(subcommand)]
    Rules(rules::RulesCmd),
    /// List, start and stop the services behind the load balancer.
    #[command(subcommand)]
    Services(services::ServicesCmd),
    /// Show the runner pools and their ephemeral GitHub Actions runners.
    Runners(runners::RunnersArgs),
    /// Work out when EventBridge schedule expressions fire.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
    /// Deploy a repository's branch to AWS; show, list and test the deployer's sessions.
    Deploy(deploy::DeployArgs),
    /// Write a starter `.gantry.yml` and `gantry.toml` into the current directory.
    Init(init::InitArgs),
    /// Print a shell completion script (e.g. `gantry completions bash > /etc/bash_completion.d/gantry`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Run jobs for a server on this host (`runs_on` jobs whose labels this agent has).
    Agent(crate::agent::AgentArgs),
    /// Show the agents a server knows: labels, slots, current jobs, last seen.
    Agents(agents::AgentsArgs),
    /// Create, list and revoke the tokens agents authenticate with.
    #[command(subcommand)]
    AgentTokens(agents::AgentTokensCmd),
    /// Check a `gantry.toml` as `gantry serve` would at start.
    #[command(subcommand)]
    Config(config::check::ConfigCmd),
}

/// `gantry completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "gantry", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
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

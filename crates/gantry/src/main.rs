//! `gantry`: the one binary. Parses the command line and hands off; everything else lives in
//! the library crates and in `cli/` and `server/`.

use clap::Parser;
use gantry::cli::{self, Cli, Cmd};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serve = matches!(cli.command, Cmd::Serve(_));
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("GANTRY_LOG")
                .unwrap_or_else(|_| EnvFilter::new(if serve { "info" } else { "warn" })),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: a journal or a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gantry: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Cmd::Serve(a) => cli::serve::main(a).await,
            Cmd::Run(a) => cli::run::main(a).await,
            Cmd::Submit(a) => cli::runs::submit(a).await,
            Cmd::Status(a) => cli::runs::status(a).await,
            Cmd::Logs(a) => cli::runs::logs(a).await,
            Cmd::Cancel(a) => cli::runs::cancel(a, false).await,
            Cmd::Rerun(a) => cli::runs::cancel(a, true).await,
            Cmd::Secrets(c) => cli::secrets::main(c).await,
            Cmd::Pattern(c) => cli::pattern::main(c),
            Cmd::Schedule(c) => cli::schedule::main(c),
            Cmd::Events(c) => cli::events::main(c).await,
            Cmd::Runners(a) => cli::runners::main(a).await,
            Cmd::Deploy(a) => cli::deploy::main(a).await,
            Cmd::Rules(c) => cli::rules::main(c).await,
            Cmd::Services(c) => cli::services::main(c).await,
            Cmd::Init(a) => cli::init::main(a),
            Cmd::Completions { shell } => cli::completions(shell),
            Cmd::Config(c) => cli::config::check::main(c),
            Cmd::Agent(a) => gantry::agent::main(a).await,
            Cmd::Agents(a) => cli::agents::list(a).await,
            Cmd::AgentTokens(c) => cli::agents::tokens(c).await,
        }
    });
    let code = code.unwrap_or_else(|e| {
        eprintln!("gantry: {e:#}");
        // Invalid input exits 2; anything else that stops a command exits 1.
        if e.downcast_ref::<cli::BadInput>().is_some() {
            2
        } else {
            1
        }
    });
    // Jobs and connections still open are the engine's to leave to recovery: don't wait long.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

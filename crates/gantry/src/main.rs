//! `gantry`: the one binary. Parses the command line and hands off; everything else lives in
//! the library crates and in `cli/` and `server/`.

use gantry::cli::{self, Cli, Cmd};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::from_command_line();
    let default_level = if matches!(cli.command, Cmd::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("GANTRY_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    // `serve` answers many clients and drives many runs: a worker per core. Every other
    // command is one client or one run, and runs on this thread alone: no workers to start
    // (the first job starts ~1 ms sooner) and no hand-offs between them (the 1000-job DAG
    // spends ~5% less CPU). SQLite's connections keep their own threads either way.
    let mut builder = if matches!(cli.command, Cmd::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gantry: cannot start the async runtime: {e}");
            std::process::exit(70);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Cmd::Serve(a) => cli::serve::main(a).await,
            Cmd::Run(a) => cli::run::main(a).await,
            Cmd::Submit(a) => cli::client::submit(a).await,
            Cmd::Status(a) => cli::client::status(a).await,
            Cmd::Logs(a) => cli::client::logs(a).await,
            Cmd::Cancel(a) => cli::client::cancel(a, false).await,
            Cmd::Rerun(a) => cli::client::cancel(a, true).await,
            Cmd::Secrets(c) => cli::secrets::main(c).await,
            Cmd::Pattern(c) => cli::pattern::main(c),
            Cmd::Schedule(c) => cli::schedule::main(c),
            Cmd::Events(c) => cli::events::main(c).await,
        }
    });
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gantry: {e:#}");
            // Invalid input exits 2 (design §5); anything else that stops a command exits 1.
            1
        }
    };
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}

//! `gantry`: the one binary. Parses the command line and hands off; everything else lives in
//! the library crates and in `cli/` and `server/`.

// Rust's runtime start-up is skipped: see `main` below.
#![no_main]

use gantry::cli::{self, Cli, Cmd};
use gantry::start_arena::StartArena;
use std::ffi::{c_char, c_int};
use tracing_subscriber::EnvFilter;

/// Small allocations come from an arena while `gantry run` starts its run (`start_arena`):
/// ~8,000 of them before a 1000-job run's first job. 1 MiB of `.bss`, touched only as far as
/// used; once it is full, allocations go to the C allocator as they do after the start-up.
#[global_allocator]
static ALLOC: StartArena<{ 1 << 20 }> = StartArena::new();

/// The process's entry point, called by the C runtime instead of Rust's runtime start-up,
/// which costs `gantry run` ~0.1 ms before its first job: it reads `/proc/self/maps` to find
/// the main thread's stack guard and installs handlers that report a stack overflow by name
/// (here an overflow ends the process with SIGSEGV, unexplained). What that start-up does that
/// Gantry relies on is done here: standard input, output and error are opened on `/dev/null`
/// when closed (so no file or socket Gantry opens becomes one of them), SIGPIPE is ignored (a
/// write to a closed pipe fails instead of killing the process), and a panic exits 101.
/// Arguments still come from `std::env::args` (glibc hands them to the standard library).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: single-threaded here; `argv` holds `argc` C strings, as the C runtime passes
    // them; `poll` reads three initialised structs, `open` a C string, `signal` installs
    // SIG_IGN (no handler code runs).
    unsafe {
        if argc > 1 && std::ffi::CStr::from_ptr(*argv.add(1)) == c"run" {
            ALLOC.open();
        }
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        if libc::poll(fds.as_mut_ptr(), 3, 0) > 0 {
            for f in fds.iter().filter(|f| f.revents & libc::POLLNVAL != 0) {
                // Opened on the lowest free descriptor: the closed one.
                if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != f.fd {
                    libc::abort();
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = std::panic::catch_unwind(gantry).unwrap_or(101);
    // Nothing else flushes standard output on the way out.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

fn gantry() -> c_int {
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
            Cmd::Run(a) => cli::run::main(a, || ALLOC.close()).await,
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

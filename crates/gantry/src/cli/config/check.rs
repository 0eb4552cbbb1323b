//! `gantry config check [FILE]`: runs a settings file through the very checks `gantry serve`
//! makes at start ([`super::settings::settings`], in this environment, as `serve` would read
//! it), and prints `ok: FILE` (exit 0) or every problem, one a line (exit 2).

use super::settings::settings;
use crate::cli::serve::ServeArgs;
use clap::{Args, Command, FromArgMatches, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check a settings file as `gantry serve` would at start (environment included):
    /// `ok: FILE` and exit 0, or every problem and exit 2.
    Check {
        /// The file [default: ./gantry.toml].
        file: Option<PathBuf>,
    },
}

pub fn main(cmd: ConfigCmd) -> anyhow::Result<i32> {
    let ConfigCmd::Check { file } = cmd;
    let file = file.unwrap_or_else(|| PathBuf::from("gantry.toml"));
    // `serve`'s own arguments, from `--config FILE` and the environment (`GANTRY_LISTEN`, …).
    // A variable serve would refuse as its flag's value (`GANTRY_LISTEN=x`) is a problem too.
    let args = ServeArgs::augment_args(Command::new("serve"))
        .try_get_matches_from([
            std::ffi::OsStr::new("serve"),
            "--config".as_ref(),
            file.as_os_str(),
        ])
        .and_then(|m| ServeArgs::from_arg_matches(&m));
    let args = match args {
        Ok(a) => a,
        Err(e) => {
            eprint!("{}", e.render());
            return Ok(2);
        }
    };
    match settings(args) {
        Ok(_) => {
            outln!("ok: {}", file.display());
            Ok(0)
        }
        Err(e) => {
            for line in format!("{e:#}").lines() {
                eprintln!("{line}");
            }
            Ok(2)
        }
    }
}

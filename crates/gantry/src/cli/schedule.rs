//! `gantry schedule next EXPR [--from RFC3339] [--count N]`: the next fire times of an
//! EventBridge `cron(...)` or `rate(...)` expression, one RFC 3339 UTC time per line. A rate
//! counts from `--from`.

use chrono::{DateTime, SecondsFormat, Utc};
use gantry_core::bus::schedule::Schedule;

#[derive(Debug, clap::Subcommand)]
pub enum ScheduleCmd {
    /// Print the next fire times of a schedule expression.
    Next {
        /// `cron(minutes hours day-of-month month day-of-week year)` or `rate(N unit)`.
        expr: String,
        /// Start after this time (RFC 3339) [default: now].
        #[arg(long)]
        from: Option<String>,
        /// The time zone cron fields are in (IANA name, e.g. Europe/Paris) [default: UTC].
        #[arg(long)]
        tz: Option<String>,
        /// How many fire times to print.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

pub fn main(cmd: ScheduleCmd) -> anyhow::Result<i32> {
    let ScheduleCmd::Next {
        expr,
        from,
        tz,
        count,
    } = cmd;
    let schedule = match Schedule::parse_in(&expr, tz.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    let start = match from {
        None => Utc::now(),
        Some(text) => match DateTime::parse_from_rfc3339(&text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                eprintln!("--from `{text}` is not an RFC 3339 time: {e}");
                return Ok(2);
            }
        },
    };
    let mut t = start;
    for _ in 0..count {
        match schedule.next_after(t, start) {
            Some(next) => {
                outln!("{}", next.to_rfc3339_opts(SecondsFormat::Secs, true));
                t = next;
            }
            None => break,
        }
    }
    Ok(0)
}

//! `gantry pattern match PATTERN EVENT` (prints `matched` or `not matched` unless `-q`; exit 0
//! match, 1 no match, 2 invalid pattern) and
//! `gantry pattern test FILE.jsonl` (one `{"pattern", "event"}` per line → one
//! `{"matches": bool}` or `{"error": "…"}` per line, in order). Arguments are JSON text, or
//! `@FILE` to read it from a file.

use anyhow::Context;
use gantry_core::bus::Pattern;
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum PatternCmd {
    /// Does EVENT match PATTERN? Prints `matched` or `not matched`; exit 0 yes, 1 no, 2
    /// invalid pattern or event.
    Match {
        /// An EventBridge event pattern (JSON, or @FILE).
        pattern: String,
        /// An event (JSON, or @FILE).
        event: String,
        /// Print nothing: the exit code says.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Checks many pattern/event pairs: one JSON object per line.
    Test {
        /// JSON Lines file (`-` for stdin).
        file: PathBuf,
    },
    /// Measures matching speed: all PATTERNS (a JSON array) against EVENTS (JSON Lines).
    Bench {
        patterns: PathBuf,
        events: PathBuf,
        /// How long to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

fn text(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}")),
        None => Ok(arg.to_string()),
    }
}

pub fn main(cmd: PatternCmd) -> anyhow::Result<i32> {
    match cmd {
        PatternCmd::Bench {
            patterns,
            events,
            seconds,
        } => bench(&patterns, &events, seconds),
        PatternCmd::Match {
            pattern,
            event,
            quiet,
        } => {
            let pattern = match Pattern::parse(&text(&pattern)?) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(2);
                }
            };
            let event: Value = match serde_json::from_str(&text(&event)?) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("invalid event: not JSON: {e}");
                    return Ok(2);
                }
            };
            let matched = pattern.matches_json(&event);
            if !quiet {
                outln!("{}", if matched { "matched" } else { "not matched" });
            }
            Ok(if matched { 0 } else { 1 })
        }
        PatternCmd::Test { file } => {
            let input: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                Box::new(std::io::BufReader::new(f))
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for line in input.lines() {
                let line = line.context("cannot read the input")?;
                if line.trim().is_empty() {
                    continue;
                }
                writeln!(out, "{}", test_line(&line))?;
            }
            out.flush()?;
            Ok(0)
        }
    }
}

/// One line's answer.
pub fn test_line(line: &str) -> Value {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"error": format!("the line is not JSON: {e}")}),
    };
    let (Some(pattern), Some(event)) = (v.get("pattern"), v.get("event")) else {
        return json!({"error": "each line needs `pattern` and `event`"});
    };
    // A pattern may also be given as a JSON string holding the pattern.
    let compiled = match pattern {
        Value::String(s) => Pattern::parse(s),
        p => Pattern::from_json(p),
    };
    match compiled {
        Ok(p) => json!({"matches": p.matches_json(event)}),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// `gantry pattern bench PATTERNS.json EVENTS.jsonl`: events per second on one thread, from
/// each event's raw bytes to the list of matched patterns (all patterns matched together).
pub fn bench(
    patterns: &std::path::Path,
    events: &std::path::Path,
    seconds: f64,
) -> anyhow::Result<i32> {
    use gantry_core::bus::ruleset::{RuleSet, Scratch};
    let text = std::fs::read_to_string(patterns)
        .with_context(|| format!("cannot read {}", patterns.display()))?;
    let list: Vec<Value> =
        serde_json::from_str(&text).context("patterns: expected a JSON array")?;
    let compiled = list
        .iter()
        .enumerate()
        .map(|(i, p)| Pattern::from_json(p).map_err(|e| anyhow::anyhow!("pattern {i}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let set = RuleSet::new(compiled);
    let raw = std::fs::read(events).with_context(|| format!("cannot read {}", events.display()))?;
    let lines: Vec<&[u8]> = raw
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    anyhow::ensure!(!lines.is_empty(), "no events in {}", events.display());
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let (mut n, mut matched) = (0u64, 0u64);
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        for line in &lines {
            set.matches(line, &mut scratch, &mut out)
                .map_err(|e| anyhow::anyhow!("event {}: {e}", n % lines.len() as u64))?;
            matched += out.len() as u64;
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    outln!(
        "{} patterns, {} events of {} bytes on average: {:.0} events/s on one thread ({:.2} matches per event)",
        set.len(),
        lines.len(),
        bytes / lines.len(),
        n as f64 / secs,
        matched as f64 / n as f64
    );
    Ok(0)
}

//! `gantry run FILE`: runs a spec once, locally, with no server: validate, drive the run with the
//! embedded engine, show progress, print the run object with `--json`. Exit 0 succeeded,
//! 1 failed or cancelled, 2 invalid spec.

use super::progress::Progress;
use crate::view::RunView;
use crate::wiring;
use anyhow::Context;
use gantry_core::RunStatus;
use gantry_core::spec::{self, Format, Limits, RunContext};
use gantry_engine::ports::RunRecord;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run spec or pipeline file (YAML or JSON); `-` reads standard input.
    pub file: PathBuf,
    /// Print the run object as JSON on stdout when the run ends (and nothing else).
    #[arg(long)]
    pub json: bool,
    /// Most jobs running at once (default: number of cores).
    #[arg(long, env = "GANTRY_MAX_PARALLEL")]
    pub max_parallel: Option<usize>,
    /// Folder for this run's database, log and workspaces (created on first use). Not the
    /// server's (`.gantry`): one process holds a data dir at a time, so a local run works
    /// beside a server started in the same folder.
    #[arg(long, env = "GANTRY_RUN_DATA_DIR", default_value = ".gantry/local")]
    pub data_dir: PathBuf,
    /// The event this run stands for, for `when: {event: …}` (default: `manual`).
    #[arg(long, default_value = "manual")]
    pub event: String,
    /// The branch this run stands for, for `when: {branch: …}`.
    #[arg(long)]
    pub branch: Option<String>,
    /// The tag this run stands for, for `when: {tag: …}`.
    #[arg(long)]
    pub tag: Option<String>,
    /// How much of each job's output its log keeps, e.g. `64m`; the rest is dropped [default: 64m].
    #[arg(long, env = "GANTRY_LOG_LIMIT")]
    pub log_limit: Option<String>,
}

/// How much of a failed job's log is shown when the run ends.
const FAILED_LOG_LINES: usize = 10;

pub async fn main(args: RunArgs) -> anyhow::Result<i32> {
    let bytes = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .context("cannot read standard input")?;
        buf
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let format = match args.file.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("yml" | "yaml") => Format::Yaml,
        _ => Format::Auto,
    };
    let default_name = args
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .trim_start_matches('.')
        .to_string();
    let log_limit = args
        .log_limit
        .as_deref()
        .map(|l| wiring::log_limit("log-limit", l))
        .transpose()?;
    let spec = match spec::parse_spec(&bytes, format, &default_name, &Limits::default()) {
        Ok(spec) => spec,
        Err(problems) => {
            eprint!("{}: {problems}", args.file.display());
            return Ok(2);
        }
    };
    // One process per data dir: a server on it would take this run's jobs for orphans.
    let held = crate::data_dir::DataDir::lock(&args.data_dir)?.until_exit();
    let store = wiring::open_store(held.path()).await?;
    // The data dir's instance: a server started on it later recognises this run's lease and
    // whatever of it a crash left running.
    let owner = held.instance_id()?;
    let max_parallel = args
        .max_parallel
        .unwrap_or_else(wiring::default_parallelism);
    let engine = wiring::start_engine(
        held.path(),
        store,
        max_parallel,
        &owner,
        false,
        wiring::JobInputs {
            docker: spec
                .jobs
                .iter()
                .any(|j| j.executor == gantry_core::spec::ExecutorKind::Docker),
            log_limit,
            ..Default::default()
        },
    )
    .await?;
    let mut committed = engine.journal().subscribe();
    let context = RunContext {
        event: Some(args.event.clone()),
        branch: args.branch.clone(),
        tag: args.tag.clone(),
        ..RunContext::default()
    };
    let jobs = spec.jobs.len();
    let submitted = engine.submit(spec, context, None).await?;
    let run_id = submitted.run_id.clone();

    let mut progress = Progress::new(&run_id, jobs);
    // The run as stored, known without reading it back: its inserted record with every later
    // committed write applied. Only if some batches were missed (a lagging subscriber) is the
    // finished run read from the store.
    let mut folded: Option<RunRecord> = None;
    let mut interrupted = false;
    let record = loop {
        tokio::select! {
            batch = committed.recv() => match batch {
                Ok(batch) => {
                    progress.observe(&batch);
                    RunRecord::follow(&mut folded, &run_id, &batch);
                    if let Some(r) = folded.take_if(|r| r.status.is_terminal()) {
                        break r;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    break engine.wait_finished(&run_id).await.context("waiting for the run")?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    anyhow::bail!("the engine stopped before run {run_id} finished");
                }
            },
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                eprintln!("interrupted: cancelling run {run_id}");
                let _ = engine.cancel(&run_id).await;
            }
        }
    };
    while let Ok(batch) = committed.try_recv() {
        progress.observe(&batch);
    }
    progress.finish();
    engine.shutdown().await;

    if args.json {
        outln!("{}", serde_json::to_string_pretty(&RunView::from(&record))?);
    } else {
        let secs = match (record.started_at_ms, record.finished_at_ms) {
            (Some(s), Some(f)) => (f - s) as f64 / 1000.0,
            _ => 0.0,
        };
        outln!(
            "run {} ({}) {} in {secs:.2}s",
            record.name,
            record.id,
            record.status
        );
        for j in record.jobs.iter().filter(|j| j.status.is_failure()) {
            outln!(
                "  {} {}{}",
                j.name,
                j.status,
                j.exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default(),
            );
            let tail = engine
                .logs()
                .tail(&record.id, &j.name, j.attempt, FAILED_LOG_LINES)
                .unwrap_or_default();
            for line in tail.lines() {
                outln!("    | {line}");
            }
        }
    }
    let code = if record.status == RunStatus::Succeeded {
        0
    } else {
        1
    };
    Ok(code)
}

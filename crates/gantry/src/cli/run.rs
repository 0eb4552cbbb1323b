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
    /// Run spec or pipeline file (YAML or JSON); `-` reads standard input [default:
    /// `.gantry.yml`, then `.gantry.yaml`, in the current directory].
    pub file: Option<PathBuf>,
    /// The folder whose files each job starts with (a copy: as git lists them, `.gitignore`
    /// respected, uncommitted changes included; every file outside a git repository).
    #[arg(long, default_value = ".")]
    pub workdir: PathBuf,
    /// Set an environment variable in every job (`K=V`; repeatable; wins over the spec's).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// A secret for jobs that list it in `secrets:` (`NAME=VALUE`, or `NAME` to take its
    /// value from this environment); masked in the output. Repeatable.
    #[arg(long = "secret", value_name = "NAME[=VALUE]")]
    pub secrets: Vec<String>,
    /// Secrets from a dotenv file (`NAME=VALUE` lines, `#` comments). Repeatable.
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_files: Vec<PathBuf>,
    /// Print the run object as JSON on stdout when the run ends (and nothing else).
    #[arg(long, conflicts_with = "verbose")]
    pub json: bool,
    /// Stream every job's output on stdout as it runs, each line prefixed by its job.
    #[arg(short, long)]
    pub verbose: bool,
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

/// `K=V`, with K a variable name.
fn parse_env(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not K=V"))?;
    let name_ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(format!(
            "`{k}` is not a variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// The file to run: the one given, or `.gantry.yml` / `.gantry.yaml` here.
fn spec_file(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(f) = given {
        return Ok(f);
    }
    [".gantry.yml", ".gantry.yaml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no file given and no .gantry.yml or .gantry.yaml here: `gantry run FILE` (or `gantry init` to write one)"
            )
        })
}

pub async fn main(mut args: RunArgs) -> anyhow::Result<i32> {
    let file = match spec_file(args.file.take()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gantry: {e}");
            return Ok(2);
        }
    };
    let bytes = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .context("cannot read standard input")?;
        buf
    } else {
        match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("gantry: cannot read {}: {e}", file.display());
                return Ok(2);
            }
        }
    };
    let format = match file.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("yml" | "yaml") => Format::Yaml,
        _ => Format::Auto,
    };
    let default_name = file
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
    let mut spec = match spec::parse_spec(&bytes, format, &default_name, &Limits::default()) {
        Ok(spec) => spec,
        Err(problems) => {
            eprint!("{}: {problems}", file.display());
            return Ok(2);
        }
    };
    for job in &mut spec.jobs {
        job.env.extend(args.env.iter().cloned());
    }
    let mut secrets = super::run_secrets::LocalSecrets::default();
    let given = args
        .secret_files
        .iter()
        .try_for_each(|f| secrets.add_file(f))
        .and_then(|()| args.secrets.iter().try_for_each(|a| secrets.add_arg(a)));
    if let Err(e) = given {
        eprintln!("gantry: {e}");
        return Ok(2);
    }
    let tree = match gantry_exec::WorkingTree::list(&args.workdir, &[args.data_dir.clone()]) {
        Ok(tree) => std::sync::Arc::new(tree),
        Err(e) => {
            eprintln!("gantry: --workdir: {e}");
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
            tree: Some(tree),
            preparation: gantry_engine::orchestrator::Preparation {
                secrets: Some(std::sync::Arc::new(secrets)),
                ..Default::default()
            },
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
    if args.verbose {
        progress = progress.plain();
    }
    let mut follower = args
        .verbose
        .then(|| super::run_follow::Follower::new(&run_id));
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
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
                    if let Some(f) = &mut follower {
                        f.observe(&batch);
                    }
                    RunRecord::follow(&mut folded, &run_id, &batch);
                    if let Some(r) = folded.take_if(|r| r.status.is_terminal()) {
                        break r;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Some batches were missed: the run as stored now, and the batches from
                    // here on applied to it (a job's record is set whole, so one seen twice
                    // changes nothing).
                    let now = engine
                        .store()
                        .get_run(&run_id)
                        .await
                        .context("reading the run back")?
                        .context("the run is gone")?;
                    if let Some(f) = &mut follower {
                        f.seed(&now);
                    }
                    if now.status.is_terminal() {
                        break now;
                    }
                    folded = Some(now);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    anyhow::bail!("the engine stopped before run {run_id} finished");
                }
            },
            _ = tick.tick(), if follower.is_some() => {
                if let Some(f) = &mut follower {
                    f.pass(engine.logs(), false);
                }
            }
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                eprintln!("interrupted: cancelling run {run_id}");
                let _ = engine.cancel(&run_id).await;
            }
        }
    };
    while let Ok(batch) = committed.try_recv() {
        progress.observe(&batch);
        if let Some(f) = &mut follower {
            f.observe(&batch);
        }
    }
    if let Some(f) = &mut follower {
        f.pass(engine.logs(), true);
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
    // Interrupted (Ctrl-C): 130, as a shell reports a command ended by SIGINT.
    let code = if interrupted {
        130
    } else if record.status == RunStatus::Succeeded {
        0
    } else {
        1
    };
    Ok(code)
}

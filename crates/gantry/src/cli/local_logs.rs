//! `gantry logs RUN [JOB] --data-dir DIR`: a run's logs read straight from a data dir (a local
//! run's `.gantry/local`, or a stopped server's), with no server. The run may be named by a
//! unique prefix of its id; each job's latest attempt is shown. Without `--data-dir`, a run
//! of `gantry run` here given by its whole id (in `GANTRY_RUN_DATA_DIR`, by default
//! `.gantry/local`) is found there before any server is asked: run ids are unique.

use super::BadInput;
use gantry_engine::logs::Logs;
use std::path::{Path, PathBuf};

/// The run id in `logs` that `given` names: itself, or the one id it begins.
fn resolve(logs_dir: &Path, given: &str) -> anyhow::Result<String> {
    let entries = std::fs::read_dir(logs_dir).map_err(|e| {
        BadInput(format!(
            "no logs in {}: {e} (is it a data dir?)",
            logs_dir.display()
        ))
    })?;
    let ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .map(str::to_string)
        })
        .collect();
    if ids.iter().any(|id| id == given) {
        return Ok(given.to_string());
    }
    let matching: Vec<&String> = ids.iter().filter(|id| id.starts_with(given)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(anyhow::anyhow!(
            "run `{given}` not found in {}",
            logs_dir.display()
        )),
        many => Err(BadInput(format!(
            "`{given}` names {} runs: {}",
            many.len(),
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

/// The local runs' data dir here, if it holds the run with the whole id `given` (a prefix
/// could name a server's run too: with a prefix, `--data-dir` says where to look).
pub fn local_run_here(given: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("GANTRY_RUN_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".gantry/local"));
    let an_id = !given.is_empty() && given.chars().all(|c| c.is_ascii_alphanumeric());
    (an_id && dir.join("logs").join(format!("{given}.log")).is_file()).then_some(dir)
}

pub fn logs(data_dir: &Path, run: &str, job: Option<&str>) -> anyhow::Result<i32> {
    let dir = data_dir.join("logs");
    let run = resolve(&dir, run)?;
    let logs = Logs::new(&dir);
    let attempts = logs.attempts(&run)?;
    // Each job once, at its latest attempt, in the order jobs first wrote.
    let mut latest: Vec<(String, u32)> = Vec::new();
    for (name, attempt) in attempts {
        match latest.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = slot.1.max(attempt),
            None => latest.push((name, attempt)),
        }
    }
    if let Some(job) = job {
        let Some((_, attempt)) = latest.iter().find(|(n, _)| n == job) else {
            anyhow::bail!("run {run} has no log of a job `{job}`");
        };
        out!(
            "{}",
            String::from_utf8_lossy(&logs.read(&run, job, *attempt)?)
        );
        return Ok(0);
    }
    for (name, attempt) in &latest {
        outln!("==> {name} <==");
        out!(
            "{}",
            String::from_utf8_lossy(&logs.read(&run, name, *attempt)?)
        );
    }
    Ok(0)
}

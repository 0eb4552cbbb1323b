//! The reporter: keeps each reporting run's PR comment and commit statuses in step with the
//! run (runs with a `pr`, and pipeline runs of a repository's commit). It follows committed
//! changes only, edits at most once per interval per run (debounce), and never blocks or fails
//! a run: a failed call is logged and tried again on the next pass.

use crate::journal::Journal;
use crate::logs::Logs;
use crate::ports::{CommitState, CommitStatus, Forge, ForgeError, RunRecord, Store, Write};
use gantry_core::JobStatus;
use gantry_core::report::comment::{
    self, GITHUB_COMMENT_LIMIT, JobReport, LOG_TAIL_LINES, RunReport,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct ReporterConfig {
    /// Base of links in comments and statuses (`GANTRY_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// At most one round of edits per run this often.
    pub interval: Duration,
}

/// What has been reported of one run.
#[derive(Default)]
struct Tracked {
    sha: Option<String>,
    comments: Vec<u64>,
    last_body: Vec<String>,
    statuses: HashMap<String, CommitState>,
    dirty: bool,
}

pub fn start(
    store: Arc<dyn Store>,
    journal: &Journal,
    logs: Logs,
    forge: Arc<dyn Forge>,
    config: ReporterConfig,
) -> tokio::task::JoinHandle<()> {
    let mut committed = journal.subscribe();
    tokio::spawn(async move {
        let mut runs: BTreeMap<String, Tracked> = BTreeMap::new();
        // Runs a previous life was reporting on.
        if let Ok(open) = store.unfinished_runs().await {
            for r in open.into_iter().filter(|r| target_of(r).is_some()) {
                runs.insert(
                    r.id,
                    Tracked {
                        dirty: true,
                        ..Default::default()
                    },
                );
            }
        }
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = committed.recv() => match batch {
                    Ok(batch) => note_changes(&batch, &mut runs),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => runs.values_mut().for_each(|t| t.dirty = true),
                    Err(_) => break,
                },
                _ = tick.tick() => {
                    let due: Vec<String> = runs.iter().filter(|(_, t)| t.dirty).map(|(id, _)| id.clone()).collect();
                    for id in due {
                        let Some(t) = runs.get_mut(&id) else { continue };
                        match report(store.as_ref(), forge.as_ref(), &logs, &config, &id, t).await {
                            Ok(true) => {
                                info!(run_id = %id, "final report posted");
                                runs.remove(&id);
                            }
                            Ok(false) => t.dirty = false,
                            Err(ForgeError::Permanent(e) | ForgeError::NotFound(e)) => {
                                warn!(run_id = %id, cause = %e, "reporting to GitHub failed and will not be retried");
                                runs.remove(&id);
                            }
                            Err(ForgeError::Transient(e)) => warn!(run_id = %id, cause = %e, "reporting to GitHub failed; retrying"),
                        }
                    }
                }
            }
        }
    })
}

fn note_changes(batch: &[Write], runs: &mut BTreeMap<String, Tracked>) {
    for w in batch {
        match w {
            Write::InsertRun(r) if target_of(r).is_some() => {
                runs.entry(r.id.clone()).or_default().dirty = true;
            }
            Write::UpdateJob { run_id: id, .. } | Write::UpdateRun { id, .. } => {
                if let Some(t) = runs.get_mut(id) {
                    t.dirty = true;
                }
            }
            _ => {}
        }
    }
}

/// One pass for one run. Returns whether the run is finished and fully reported.
async fn report(
    store: &dyn Store,
    forge: &dyn Forge,
    logs: &Logs,
    config: &ReporterConfig,
    id: &str,
    t: &mut Tracked,
) -> Result<bool, ForgeError> {
    let Some(run) = store
        .get_run(id)
        .await
        .map_err(|e| ForgeError::Transient(e.to_string()))?
    else {
        return Ok(true);
    };
    let Some(target) = target_of(&run) else {
        return Ok(true);
    };
    let finished = run.status.is_terminal();
    let bodies = match target.pr {
        Some(_) if target.comment => {
            comment::render(&report_of(&run, logs, config), GITHUB_COMMENT_LIMIT)
        }
        _ => Vec::new(),
    };
    let repo = target.repo.as_str();
    for (i, body) in bodies.iter().enumerate() {
        let number = target.pr.unwrap_or_default();
        if t.last_body.get(i) == Some(body) {
            continue;
        }
        if t.comments.len() <= i {
            let found = forge
                .find_comment(repo, number, &comment::marker(id, i + 1))
                .await?;
            let cid = match found {
                Some(c) => c,
                None => forge.create_comment(repo, number, body).await?,
            };
            t.comments.push(cid);
            if found.is_none() {
                set_body(t, i, body);
                continue;
            }
        }
        forge.edit_comment(repo, t.comments[i], body).await?;
        set_body(t, i, body);
    }
    if t.sha.is_none() {
        t.sha = Some(match (&target.sha, target.pr) {
            (Some(s), _) => s.clone(),
            (None, Some(n)) => forge.pr_head_sha(repo, n).await?,
            (None, None) => return Ok(true),
        });
    }
    let sha = t.sha.clone().unwrap_or_default();
    for j in &run.jobs {
        let (state, description) = match j.status {
            JobStatus::Queued | JobStatus::Running => {
                (CommitState::Pending, format!("{}", j.status))
            }
            JobStatus::Succeeded => (CommitState::Success, "succeeded".to_string()),
            JobStatus::Failed | JobStatus::TimedOut => (CommitState::Failure, j.status.to_string()),
            JobStatus::Cancelled => (CommitState::Error, "cancelled".to_string()),
            JobStatus::Pending | JobStatus::Skipped => continue,
        };
        if t.statuses.get(&j.name) == Some(&state) {
            continue;
        }
        let status = CommitStatus {
            sha: sha.clone(),
            context: format!("gantry/{}", j.name),
            state,
            description: format!("{description} · {}", run.name),
            target_url: config.public_url.as_ref().map(|u| {
                format!(
                    "{}/api/v1/runs/{}/jobs/{}/log",
                    u.trim_end_matches('/'),
                    run.id,
                    j.name
                )
            }),
        };
        forge.set_status(repo, &status).await?;
        t.statuses.insert(j.name.clone(), state);
    }
    Ok(finished)
}

/// Where a run reports: a run's `pr` (comment and statuses), or a pipeline's repository and
/// commit (statuses; a comment on its pull request when the pipeline asks for one).
struct Target {
    repo: String,
    pr: Option<u64>,
    sha: Option<String>,
    comment: bool,
}

fn target_of(run: &RunRecord) -> Option<Target> {
    if let Some(pr) = &run.spec.pr {
        return Some(Target {
            repo: pr.repo.clone(),
            pr: Some(pr.number),
            sha: pr.sha.clone(),
            comment: true,
        });
    }
    let (repo, sha) = (run.context.repo.clone()?, run.context.sha.clone()?);
    Some(Target {
        repo,
        pr: run.context.pr,
        sha: Some(sha),
        comment: run.spec.report.iter().any(|r| r == "comment"),
    })
}

fn set_body(t: &mut Tracked, i: usize, body: &str) {
    if t.last_body.len() <= i {
        t.last_body.resize(i + 1, String::new());
    }
    t.last_body[i] = body.to_string();
}

fn report_of(run: &RunRecord, logs: &Logs, config: &ReporterConfig) -> RunReport {
    RunReport {
        run_id: run.id.clone(),
        name: run.name.clone(),
        status: run.status,
        trace_id: run.trace_id.clone(),
        public_url: config.public_url.clone(),
        jobs: run
            .jobs
            .iter()
            .map(|j| JobReport {
                name: j.name.clone(),
                status: j.status,
                attempt: j.attempt,
                exit_code: j.exit_code,
                duration_ms: match (j.started_at_ms, j.finished_at_ms) {
                    (Some(s), Some(f)) if f >= s && j.status.is_terminal() => Some((f - s) as u64),
                    _ => None,
                },
                log_tail: (run.status.is_terminal() && j.status.is_failure())
                    .then(|| logs.tail(&run.id, &j.name, j.attempt, LOG_TAIL_LINES))
                    .flatten(),
            })
            .collect(),
    }
}

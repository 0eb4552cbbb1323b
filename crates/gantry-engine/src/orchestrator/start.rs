//! Starting a dispatched attempt, once its dispatch is durable: what the executor is given
//! (`Launch`: commands, environment, workspace, log), the preparation (secrets, checkout),
//! the executor's run, and the report of how it ended back to the orchestrator.

use super::active::ActiveRun;
use super::{Command, Preparation};
use crate::layout::Layout;
use crate::logs::Logs;
use crate::ports::{Artifacts, CancelSignal, Executor, JobCache, Launch};
use gantry_core::dag::Outcome;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::Instrument;

/// An attempt dispatched by a step, waiting for its dispatch to be durable.
pub(super) struct Start {
    pub(super) span: tracing::Span,
    pub(super) launch: Launch,
    pub(super) executor: Option<Arc<dyn Executor>>,
    pub(super) spec: Arc<gantry_core::spec::RunSpec>,
    pub(super) ctx: gantry_core::spec::RunContext,
    pub(super) job: usize,
    pub(super) cancel: CancelSignal,
}

impl Start {
    /// Prepares the attempt (secrets, checkout), runs it, and reports how it ended.
    pub(super) async fn run(
        self,
        preparation: Arc<Preparation>,
        tx: mpsc::UnboundedSender<Command>,
    ) {
        let Start {
            span,
            mut launch,
            executor,
            spec,
            ctx,
            job,
            cancel,
        } = self;
        let (run_id, attempt) = (launch.run_id.clone(), launch.attempt);
        async move {
            // Cancelled while its start was being written: nothing is started.
            if cancel.is_cancelled() {
                launch.log.note("gantry: cancelled");
                let _ = tx.send(Command::Ended {
                    run_id,
                    job,
                    attempt,
                    outcome: Outcome::Cancelled,
                });
                return;
            }
            let prepared = preparation
                .prepare(&mut launch, &spec.jobs[job], &ctx)
                .await;
            let outcome = match (prepared, executor) {
                (Err(why), _) => refuse(&launch, &why),
                (Ok(()), Some(ex)) => ex.execute(launch, cancel).await,
                (Ok(()), None) if spec.jobs[job].executor.is_remote() => {
                    let kind = spec.jobs[job].executor.as_str();
                    let why = format!(
                        "no `{kind}` executor here: the server needs [executors.{kind}] in its gantry.toml (docs/executors-aws.md)"
                    );
                    refuse(&launch, &why)
                }
                (Ok(()), None) => refuse(
                    &launch,
                    &format!(
                        "no executor for this job here (image: {}); this engine runs `local` jobs",
                        launch.image.as_deref().unwrap_or("none")
                    ),
                ),
            };
            let _ = tx.send(Command::Ended {
                run_id,
                job,
                attempt,
                outcome,
            });
        }
        .instrument(span)
        .await
    }
}

pub(super) fn launch_for(layout: &Layout, logs: &Logs, run: &ActiveRun, job: usize) -> Launch {
    let spec = &run.spec.jobs[job];
    let attempt = run.state.jobs[job].attempt;
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend([
        ("CI".to_string(), "true".to_string()),
        ("GANTRY".to_string(), "true".to_string()),
        ("GANTRY_RUN_ID".to_string(), run.id.clone()),
        ("GANTRY_RUN_NAME".to_string(), run.name.clone()),
        ("GANTRY_JOB".to_string(), spec.name.clone()),
        ("GANTRY_ATTEMPT".to_string(), attempt.to_string()),
        ("GANTRY_TRACE_ID".to_string(), run.trace_id.clone()),
    ]);
    if let Some(e) = &run.ctx.event {
        env.push(("GANTRY_EVENT".into(), e.clone()));
    }
    let ctx = &run.ctx;
    let pr = ctx.pr.map(|n| n.to_string());
    for (k, v) in [
        ("GANTRY_BRANCH", &ctx.branch),
        ("GANTRY_TAG", &ctx.tag),
        ("GANTRY_REPO", &ctx.repo),
        ("GANTRY_SHA", &ctx.sha),
        ("GANTRY_PR", &pr),
    ] {
        if let Some(v) = v {
            env.push((k.to_string(), v.clone()));
        }
    }
    Launch {
        run_id: run.id.clone(),
        job: spec.name.clone(),
        attempt,
        trace_id: run.trace_id.clone(),
        commands: spec.run.clone(),
        env,
        timeout_ms: spec.timeout_ms,
        workspace: layout.workspace(&run.id, &spec.name),
        log: logs.attempt(&run.id, &spec.name, attempt),
        image: spec.image.clone(),
        secrets: Vec::new(),
        checkout: None,
        notes: Vec::new(),
        container: spec.container.as_deref().cloned(),
        aws: spec.aws.as_deref().cloned(),
        artifacts: Artifacts {
            keep: spec.artifacts.clone(),
            store: layout.artifacts(&run.id, &spec.name),
            take: spec
                .needs
                .iter()
                .filter(|n| {
                    run.spec
                        .jobs
                        .iter()
                        .any(|j| &j.name == *n && !j.artifacts.is_empty())
                })
                .map(|n| (n.clone(), layout.artifacts(&run.id, n)))
                .collect(),
        },
        cache: spec.cache.as_deref().map(|c| JobCache {
            spec: c.clone(),
            scope: layout.cache_scope(
                run.ctx.repo.as_deref(),
                run.ctx.fork.then_some(run.ctx.pr.unwrap_or(0)),
            ),
            resolved: Default::default(),
        }),
    }
}

/// Fails an attempt that cannot start here, saying why in its log.
fn refuse(launch: &Launch, why: &str) -> Outcome {
    launch.log.note(&format!("gantry: {why}"));
    Outcome::Failed { exit_code: None }
}

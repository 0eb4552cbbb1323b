//! Pipelines from repositories: a push or pull request → the repository's `.gantry.yml` at the
//! event's commit → its `on:` filters → a run whose jobs check out that commit. Every stored
//! delivery ends with an outcome on its event: the run it started, or why nothing ran. An
//! invalid file becomes a failed run that says where the problem is (and so a failure status
//! on the commit), never a silent nothing. Deliveries stored but not decided when the server
//! stopped are taken up again at start.

use crate::orchestrator::{Engine, EngineError};
use crate::ports::{EventRecord, Forge, ForgeError, Write};
use gantry_core::forge::github;
use gantry_core::forge::trigger::{PipelineTrigger, pipeline_trigger};
use gantry_core::spec::{self, Format, GitSource, Limits, RunSpec, Source};
use std::sync::Arc;
use std::time::Duration;
use tracing::{Instrument, info, info_span, warn};

/// The pipeline file, at the repository's root.
pub const PIPELINE_FILE: &str = ".gantry.yml";
/// The GitHub events that can start pipelines.
pub const PIPELINE_EVENTS: [&str; 2] = ["push", "pull_request"];

#[derive(Clone)]
pub struct Pipelines {
    engine: Engine,
    forge: Arc<dyn Forge>,
    allowed_urls: Arc<Vec<String>>,
    limits: Limits,
    fork_jobs: crate::ForkJobs,
}

impl std::fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelines")
            .field("allowed_urls", &self.allowed_urls)
            .finish()
    }
}

/// How many times a transient GitHub failure is retried before the event is given up on.
const ATTEMPTS: u32 = 4;

impl Pipelines {
    pub fn new(
        engine: Engine,
        forge: Arc<dyn Forge>,
        allowed_urls: Vec<String>,
        limits: Limits,
    ) -> Pipelines {
        Pipelines {
            engine,
            forge,
            allowed_urls: Arc::new(allowed_urls),
            limits,
            fork_jobs: crate::ForkJobs::default(),
        }
    }

    /// What pull requests from forks may run (with `Off`, their pipelines do not run).
    pub fn with_fork_jobs(mut self, fork_jobs: crate::ForkJobs) -> Pipelines {
        self.fork_jobs = fork_jobs;
        self
    }

    /// Decides a stored GitHub delivery in the background.
    pub fn spawn(&self, event: EventRecord) {
        let this = self.clone();
        let span = info_span!("pipeline", trace_id = %event.trace_id, event_id = %event.id);
        tokio::spawn(async move { this.decide(&event).await }.instrument(span));
    }

    /// Takes up deliveries stored but not decided before a restart.
    pub async fn resume(&self) -> Result<usize, EngineError> {
        let pending = self
            .engine
            .store()
            .undecided_events("github", &PIPELINE_EVENTS, 1000)
            .await?;
        let n = pending.len();
        for event in pending {
            self.spawn(event);
        }
        Ok(n)
    }

    /// Decides one delivery and records the outcome on its event.
    pub async fn decide(&self, event: &EventRecord) {
        let mut wait = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            match self.try_decide(event).await {
                Ok(Some(outcome)) => {
                    info!(%outcome, "pipeline event decided");
                    self.set_outcome(event, outcome).await;
                    return;
                }
                Ok(None) => return, // a run was started; its outcome was written with it
                Err(Failure::Retry(why)) if attempt < ATTEMPTS => {
                    warn!(cause = %why, attempt, "pipeline event: will retry");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(Failure::Retry(why) | Failure::Final(why)) => {
                    warn!(cause = %why, "pipeline event failed");
                    self.set_outcome(event, format!("error: {why}")).await;
                    return;
                }
            }
        }
    }

    async fn set_outcome(&self, event: &EventRecord, outcome: String) {
        let write = Write::SetEventOutcome {
            id: event.id.clone(),
            outcome,
        };
        if let Err(e) = self.engine.journal().append_durable(vec![write]).await {
            warn!(cause = %e, "cannot record the event's outcome");
        }
    }

    /// `Ok(Some(outcome))` when nothing runs or a failed run was recorded with its outcome as
    /// well; `Ok(None)` when a run was started (the outcome was written with it).
    async fn try_decide(&self, event: &EventRecord) -> Result<Option<String>, Failure> {
        let delivery = github::parse(&event.event_type, event.payload.as_bytes())
            .map_err(|e| Failure::Final(e.to_string()))?;
        let PipelineTrigger {
            mut ctx,
            clone_url,
            action,
        } = match pipeline_trigger(&delivery) {
            Ok(t) => t,
            Err(why) => return Ok(Some(format!("ignored: {why}"))),
        };
        if ctx.fork && self.fork_jobs == crate::ForkJobs::Off {
            return Ok(Some(
                "ignored: pull requests from forks do not run here (fork_jobs = off)".into(),
            ));
        }
        let repo = ctx.repo.clone().unwrap_or_default();
        let sha = ctx.sha.clone().unwrap_or_default();
        if let Err(why) = spec::check_clone_url(&self.allowed_urls, &clone_url) {
            return Ok(Some(format!("refused: {why}")));
        }
        let file = match self.forge.file_at(&repo, PIPELINE_FILE, &sha).await {
            Ok(Some(bytes)) => bytes,
            Err(ForgeError::NotFound(e)) if e.contains("No commit found") => {
                return Ok(Some(format!(
                    "error: {repo} has no commit {sha} (force-pushed away, or never pushed?)"
                )));
            }
            Ok(None) | Err(ForgeError::NotFound(_)) => {
                return Ok(Some(format!(
                    "ignored: {repo} has no {PIPELINE_FILE} at {}",
                    short(&sha)
                )));
            }
            Err(ForgeError::Transient(e)) => return Err(Failure::Retry(e)),
            Err(ForgeError::Permanent(e)) => return Err(Failure::Final(e)),
        };
        let spec = match spec::parse_spec(&file, Format::Yaml, PIPELINE_FILE, &self.limits) {
            Ok(spec) => spec,
            Err(problems) => {
                let message = format!("{PIPELINE_FILE} at {}: {problems}", short(&sha));
                return self.failed(event, &ctx, &message).await;
            }
        };
        let Some(on) = spec.on.clone() else {
            return Ok(Some(format!(
                "ignored: {PIPELINE_FILE} has no `on:` block, so no event starts it"
            )));
        };
        if ctx.event.as_deref() == Some("pull_request") && wants_changed_files(&spec) {
            match self
                .forge
                .pull_request_files(&repo, ctx.pr.unwrap_or_default())
                .await
            {
                Ok(files) => ctx.changed_files = Some(files),
                Err(ForgeError::Transient(e)) => return Err(Failure::Retry(e)),
                Err(e) => warn!(cause = %e, "changed files unknown; path filters will hold"),
            }
        }
        if let Err(why) = on.accepts(&ctx, action.as_deref()) {
            return Ok(Some(format!("not triggered: {why}")));
        }
        let spec = match self.with_sources(spec, &clone_url, &sha) {
            Ok(spec) => spec,
            Err(why) => return self.failed(event, &ctx, &why).await,
        };
        if let Some(c) = spec.concurrency.as_ref().filter(|c| c.cancel_in_progress) {
            ctx.concurrency_group = Some(c.group_key(&spec.name, &ctx));
        }
        let submitted = self
            .engine
            .submit_for_event(spec, ctx, Some(event.trace_id.clone()), Some(&event.id))
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        info!(run_id = %submitted.run_id, "pipeline run started");
        Ok(None)
    }

    /// Every job checks out the commit, unless it names its own (allowed) source.
    fn with_sources(&self, mut spec: RunSpec, url: &str, sha: &str) -> Result<RunSpec, String> {
        for job in &mut spec.jobs {
            match &job.source {
                Some(s) => spec::check_clone_url(&self.allowed_urls, &s.git.url)
                    .map_err(|why| format!("job `{}`: {why}", job.name))?,
                None => {
                    job.source = Some(Box::new(Source {
                        git: GitSource {
                            url: url.to_string(),
                            git_ref: Some(sha.to_string()),
                        },
                    }))
                }
            }
        }
        Ok(spec)
    }

    async fn failed(
        &self,
        event: &EventRecord,
        ctx: &gantry_core::spec::RunContext,
        message: &str,
    ) -> Result<Option<String>, Failure> {
        let submitted = self
            .engine
            .submit_failed(
                PIPELINE_FILE,
                "pipeline",
                ctx.clone(),
                Some(event.trace_id.clone()),
                Some(&event.id),
                message.trim_end(),
            )
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        warn!(run_id = %submitted.run_id, "pipeline file is invalid; failed run recorded");
        Ok(None)
    }
}

enum Failure {
    /// Worth trying again (GitHub unavailable, rate limited).
    Retry(String),
    Final(String),
}

fn wants_changed_files(spec: &RunSpec) -> bool {
    spec.on
        .as_ref()
        .and_then(|on| on.pull_request.as_ref())
        .is_some_and(|f| !f.paths.is_empty())
        || spec
            .jobs
            .iter()
            .any(|j| j.when.conditions().iter().any(|c| !c.path.is_empty()))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

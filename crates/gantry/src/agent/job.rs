//! One leased job on the agent: a `Launch` for the local executor (or Docker, for a job with
//! an `image`), its output written to a local log and sent to the server in chunks, its lease
//! renewed on the server's heartbeat period (a stop or a lost lease cancels the job), and its
//! result reported once through the callback path. Secret values reach only the job's
//! environment; the executor masks them in the output before a chunk is read.

use super::client::{AgentApi, Renewed};
use anyhow::Context;
use gantry_core::agents::Report;
use gantry_core::dag::Outcome;
use gantry_engine::agents::Lease;
use gantry_engine::logs::Logs;
use gantry_engine::ports::{Artifacts, CancelSignal, Checkout, Executor, Launch, SecretValue};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OnceCell, watch};
use tracing::Instrument;

/// How often new output is sent.
const LOG_PERIOD: Duration = Duration::from_millis(200);
/// Most bytes of output in one chunk.
const CHUNK: usize = 256 * 1024;

pub struct Runner {
    owner: String,
    work: PathBuf,
    logs: Logs,
    api: Arc<AgentApi>,
    local: Arc<gantry_exec::LocalExecutor>,
    docker: OnceCell<Result<Arc<gantry_exec::DockerExecutor>, String>>,
    /// Checkouts through mirrors under the work dir, without credentials.
    git: Arc<gantry_exec::GitSources>,
}

impl Runner {
    /// `allowed`: the prefixes jobs' clone URLs must start with.
    pub fn new(name: &str, work: &Path, allowed: Vec<String>, api: Arc<AgentApi>) -> Runner {
        let owner = format!("agent-{name}");
        let git = Arc::new(gantry_exec::GitSources::new(
            work.join("git"),
            allowed,
            None,
        ));
        Runner {
            local: Arc::new(
                gantry_exec::LocalExecutor::new(owner.clone(), crate::wiring::KILL_GRACE)
                    .with_git(git.clone()),
            ),
            git,
            owner,
            work: work.to_path_buf(),
            logs: Logs::new(work.join("logs")),
            api,
            docker: OnceCell::new(),
        }
    }

    async fn docker(&self) -> Result<Arc<gantry_exec::DockerExecutor>, String> {
        self.docker
            .get_or_init(|| async {
                gantry_exec::DockerExecutor::connect(self.owner.clone())
                    .await
                    .map(|d| Arc::new(d.with_git(self.git.clone())))
            })
            .await
            .clone()
    }

    /// Runs one leased job to its end and reports it. Errors only when the token is refused.
    pub async fn run(&self, lease: Lease) -> anyhow::Result<()> {
        let span = tracing::info_span!("agent_job", run_id = %lease.run_id, trace_id = %lease.trace_id,
            job = %lease.job, attempt = lease.attempt);
        self.run_leased(lease).instrument(span).await
    }

    async fn run_leased(&self, lease: Lease) -> anyhow::Result<()> {
        tracing::info!("running a job");
        let log = self.logs.attempt(&lease.run_id, &lease.job, lease.attempt);
        let launch = Launch {
            run_id: lease.run_id.clone(),
            job: lease.job.clone(),
            attempt: lease.attempt,
            trace_id: lease.trace_id.clone(),
            commands: lease.task.commands.clone(),
            env: lease.task.env.clone(),
            timeout_ms: lease.task.timeout_ms,
            workspace: self.work.join("work").join(&lease.id),
            log,
            image: lease.task.image.clone(),
            secrets: lease
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), SecretValue::new(v.clone())))
                .collect(),
            checkout: lease.task.checkout.clone().map(|(url, git_ref)| Checkout {
                url,
                git_ref,
                repo: None,
            }),
            notes: Vec::new(),
            container: lease.task.container.clone(),
            aws: None,
            artifacts: Artifacts::default(),
            cache: None,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let executor: Result<Arc<dyn Executor>, String> = match &launch.image {
            None => Ok(self.local.clone()),
            Some(_) => self.docker().await.map(|d| d as Arc<dyn Executor>),
        };
        let mut error = None;
        let outcome = match executor {
            Err(e) => {
                error = Some(format!("this agent cannot run containers: {e}"));
                Outcome::Failed { exit_code: None }
            }
            Ok(ex) => {
                let mut run =
                    tokio::spawn(async move { ex.execute(launch, CancelSignal(stop_rx)).await });
                // The lease was just granted: the first renewal is one period away.
                let period = Duration::from_millis(lease.heartbeat_ms.max(100));
                let mut beat =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                let mut ship = tokio::time::interval(LOG_PERIOD);
                let mut offset = 0u64;
                let mut refused = None;
                let outcome = loop {
                    tokio::select! {
                        ended = &mut run => break ended.unwrap_or(Outcome::Failed { exit_code: None }),
                        _ = beat.tick() => match self.api.heartbeat(&lease.id).await {
                            Ok(Renewed::Keep) => {}
                            Ok(Renewed::Stop) => { let _ = stop_tx.send(true); }
                            Ok(Renewed::Lost) => {
                                tracing::warn!("the lease is no longer this agent's; stopping the job");
                                let _ = stop_tx.send(true);
                            }
                            Err(e) => { let _ = stop_tx.send(true); refused = Some(e); }
                        },
                        _ = ship.tick() => offset = self.ship(&lease, offset).await,
                    }
                };
                if let Some(e) = refused {
                    return Err(e);
                }
                self.ship(&lease, offset).await;
                outcome
            }
        };
        let body = serde_json::to_value(Report::of(&outcome, error)).expect("a report is JSON");
        let (status, message) = self
            .api
            .report(&lease.callback, &body)
            .await
            .context("cannot report the result")?;
        if (200..300).contains(&status) {
            tracing::info!(?outcome, "result reported");
        } else {
            tracing::warn!(status, %message, ?outcome, "the server refused the result");
        }
        self.logs.release(&lease.run_id);
        Ok(())
    }

    /// Sends the output written since `offset`; the offset to go on from.
    async fn ship(&self, lease: &Lease, mut offset: u64) -> u64 {
        loop {
            let (bytes, next) = self
                .logs
                .read_from(&lease.run_id, &lease.job, lease.attempt, offset, CHUNK)
                .unwrap_or_default();
            if bytes.is_empty() {
                return offset;
            }
            if !self.api.log(&lease.id, &bytes).await.unwrap_or(false) {
                return next; // the lease is gone or the server away; the heartbeat decides
            }
            offset = next;
        }
    }
}

//! What a runner's phase asks for, performed off the dispatcher's task once the phase is
//! written: ask GitHub whether the job is still queued, register the runner, start it on its
//! host, remove it, or (after a restart) look for it on its host. Each reports back to the
//! dispatcher as a [`Done`].

use super::Msg;
use crate::journal::Durable;
use crate::ports::runners::JobStatus;
use crate::ports::{
    Actions, ForgeError, JitRegistration, RunnerDeletion, RunnerHost, RunnerLaunch, Scope,
    SecretString,
};
use gantry_core::runners::PoolDef;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{Instrument, warn};

/// How an effect ended.
pub(super) enum Done {
    /// The phase could not be written, so nothing was done.
    NotWritten,
    /// Job `.0`'s status, or `None` when GitHub has no such job.
    Checked(u64, Result<Option<JobStatus>, ForgeError>),
    Registered(Result<Registration, ForgeError>),
    /// The container or process id.
    Started(Result<String, String>),
    Removed(Result<Removal, String>),
    /// Whether the runner's container or process runs.
    Probed(Result<bool, String>),
}

pub(super) enum Registration {
    /// Registered now; the config goes to the runner and nowhere else.
    New { runner_id: u64, jit: SecretString },
    /// Registered before under this name: adopt it.
    Taken { runner_id: u64, running: bool },
    /// The name was taken but the runner is no longer listed (deleted meanwhile): register
    /// again.
    Vanished,
}

pub(super) enum Removal {
    Removed,
    /// GitHub says the runner is running a job: left alone.
    StillBusy,
}

/// What to do.
pub(super) enum Work {
    Check {
        repo: String,
        job_id: u64,
    },
    Register {
        scope: Scope,
        labels: Vec<String>,
    },
    Start {
        jit: SecretString,
    },
    Remove {
        scope: Scope,
        runner_id: Option<u64>,
    },
    Probe,
}

/// Shared by every effect.
#[derive(Clone)]
pub(super) struct Ctx {
    pub actions: Arc<dyn Actions>,
    pub tx: mpsc::UnboundedSender<Msg>,
}

/// The runner an effect is for.
pub(super) struct Target {
    pub name: String,
    pub pool_name: String,
    pub pool: PoolDef,
    pub host: Arc<dyn RunnerHost>,
}

/// Performs `work` for `target` once `written` (its phase) is, and reports back.
pub(super) fn spawn(
    ctx: &Ctx,
    target: Target,
    written: Option<Durable>,
    work: Work,
    trace_id: &str,
) {
    let ctx = ctx.clone();
    let name = target.name.clone();
    let span = tracing::info_span!("runner", runner = %name, trace_id = %trace_id);
    tokio::spawn(
        async move {
            if let Some(w) = written
                && let Err(e) = w.wait().await
            {
                warn!(cause = %e, "a runner's phase was not written; nothing done");
                let _ = ctx.tx.send(Msg::Effect(name, Done::NotWritten));
                return;
            }
            let done = perform(&ctx, &target, work).await;
            let _ = ctx.tx.send(Msg::Effect(name, done));
        }
        .instrument(span),
    );
}

async fn perform(ctx: &Ctx, t: &Target, work: Work) -> Done {
    let (name, pool, host) = (t.name.as_str(), &t.pool, t.host.as_ref());
    match work {
        Work::Check { repo, job_id } => Done::Checked(
            job_id,
            ctx.actions
                .workflow_job(&repo, job_id)
                .await
                .map(|j| j.map(|j| j.status)),
        ),
        Work::Register { scope, labels } => {
            Done::Registered(register(ctx, name, pool, host, &scope, &labels).await)
        }
        Work::Start { jit } => {
            let launch = RunnerLaunch {
                name,
                pool: &t.pool_name,
                image: pool.image.as_deref(),
                command: &pool.command,
                jitconfig: &jit,
            };
            Done::Started(
                host.start(launch)
                    .await
                    .map_err(|e| e.replace(jit.expose(), "***")),
            )
        }
        Work::Remove { scope, runner_id } => {
            Done::Removed(remove(ctx, name, host, &scope, runner_id).await)
        }
        Work::Probe => Done::Probed(host.is_running(name).await),
    }
}

async fn register(
    ctx: &Ctx,
    name: &str,
    pool: &PoolDef,
    host: &dyn RunnerHost,
    scope: &Scope,
    labels: &[String],
) -> Result<Registration, ForgeError> {
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    match ctx
        .actions
        .generate_jit_config(
            scope,
            name,
            pool.runner_group_id,
            &labels,
            &pool.work_folder,
        )
        .await?
    {
        JitRegistration::Registered(jit) => Ok(Registration::New {
            runner_id: jit.runner_id,
            jit: jit.encoded,
        }),
        JitRegistration::AlreadyRegistered => {
            let listed = ctx.actions.list_runners(scope).await?;
            let Some(r) = listed.iter().find(|r| r.name == name) else {
                return Ok(Registration::Vanished);
            };
            let running = host.is_running(name).await.map_err(ForgeError::Transient)?;
            Ok(Registration::Taken {
                runner_id: r.id,
                running,
            })
        }
    }
}

/// Deletes the registration first (so an idle runner cannot claim a job while it goes;
/// GitHub refuses for a busy one, which is then left alone), then the container or process.
async fn remove(
    ctx: &Ctx,
    name: &str,
    host: &dyn RunnerHost,
    scope: &Scope,
    runner_id: Option<u64>,
) -> Result<Removal, String> {
    if let Some(id) = runner_id {
        match ctx.actions.delete_runner(scope, id).await {
            Ok(RunnerDeletion::Deleted | RunnerDeletion::Gone) => {}
            Ok(RunnerDeletion::Busy) => return Ok(Removal::StillBusy),
            Err(e) => return Err(format!("cannot delete runner {id} from GitHub: {e}")),
        }
    }
    host.remove(name).await?;
    Ok(Removal::Removed)
}

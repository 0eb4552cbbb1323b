//! The reconciler: what webhooks missed, found by listing. GitHub's queued jobs in each
//! pool's scope (a lost `queued` delivery still gets its runner), the runners GitHub lists
//! under Gantry's names, and the runners on each host. The dispatcher decides with its
//! current view what is an orphan: a registered runner or hosted runner no active record owns
//! is deleted (never one GitHub reports busy).

use super::effects::Ctx;
use super::{JobNotice, Msg};
use crate::ports::{Runner, RunnerHost, Scope};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{info, warn};

/// What a reconciliation found.
#[derive(Default)]
pub(super) struct Found {
    /// Queued jobs, as notices.
    pub queued: Vec<JobNotice>,
    /// Runners GitHub lists under a pool's names, with their scope.
    pub registered: Vec<(Scope, Runner)>,
    /// Runners on the hosts: (executor, name).
    pub hosted: Vec<(String, String)>,
}

/// Lists everything off the dispatcher's task and reports back.
pub(super) fn spawn(
    ctx: Ctx,
    scopes: BTreeMap<String, Scope>,
    hosts: BTreeMap<String, Arc<dyn RunnerHost>>,
    pools: Vec<String>,
) {
    tokio::spawn(async move {
        let found = find(&ctx, &scopes, &hosts, &pools).await;
        let _ = ctx.tx.send(Msg::Reconciled(found));
    });
}

async fn find(
    ctx: &Ctx,
    scopes: &BTreeMap<String, Scope>,
    hosts: &BTreeMap<String, Arc<dyn RunnerHost>>,
    pools: &[String],
) -> Found {
    let mut found = Found::default();
    let distinct: BTreeSet<&Scope> = scopes.values().collect();
    for scope in distinct {
        match ctx.actions.queued_jobs(scope).await {
            Ok(jobs) => found.queued.extend(jobs.into_iter().map(|j| JobNotice {
                event_id: None,
                trace_id: crate::ids::new_trace_id(),
                action: "queued".into(),
                repository: j.repo,
                job_id: j.id,
                run_attempt: u32::try_from(j.run_attempt).unwrap_or(1).max(1),
                job_name: j.name,
                labels: j.labels,
                runner_name: None,
                conclusion: None,
            })),
            Err(e) => warn!(scope = ?scope, cause = %e, "cannot list queued jobs"),
        }
        // Only names of pools registered in this scope.
        let prefixes: Vec<String> = scopes
            .iter()
            .filter(|(_, s)| *s == scope)
            .map(|(pool, _)| format!("gantry-{pool}-"))
            .collect();
        match ctx.actions.list_runners(scope).await {
            Ok(runners) => found.registered.extend(
                runners
                    .into_iter()
                    .filter(|r| prefixes.iter().any(|p| is_ours(&r.name, p)))
                    .map(|r| (scope.clone(), r)),
            ),
            Err(e) => warn!(scope = ?scope, cause = %e, "cannot list runners"),
        }
    }
    let prefixes: Vec<String> = pools.iter().map(|p| format!("gantry-{p}-")).collect();
    for (executor, host) in hosts {
        match host.list().await {
            Ok(list) => found.hosted.extend(
                list.into_iter()
                    .filter(|r| prefixes.iter().any(|p| is_ours(&r.name, p)))
                    .map(|r| (executor.clone(), r.name)),
            ),
            Err(e) => warn!(executor = %executor, cause = %e, "cannot list hosted runners"),
        }
    }
    found
}

/// Whether `name` is `<prefix><job id>-<attempt>`, or a replacement's `…-r<n>`.
fn is_ours(name: &str, prefix: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let mut parts = rest.split('-');
    let (job, attempt, extra) = (parts.next(), parts.next(), parts.next());
    job.is_some_and(digits)
        && attempt.is_some_and(digits)
        && extra.is_none_or(|r| r.strip_prefix('r').is_some_and(digits))
        && parts.next().is_none()
}

/// Deletes a registration no record owns.
pub(super) fn delete_orphan(ctx: Ctx, scope: Scope, runner: Runner) {
    tokio::spawn(async move {
        match ctx.actions.delete_runner(&scope, runner.id).await {
            Ok(d) => {
                info!(runner = %runner.name, id = runner.id, result = ?d, "orphan registration deleted")
            }
            Err(e) => {
                warn!(runner = %runner.name, cause = %e, "cannot delete an orphan registration")
            }
        }
    });
}

/// Removes a container or process no record owns.
pub(super) fn remove_hosted(host: Arc<dyn RunnerHost>, name: String) {
    tokio::spawn(async move {
        match host.remove(&name).await {
            Ok(()) => info!(runner = %name, "orphan runner removed from its host"),
            Err(e) => warn!(runner = %name, cause = %e, "cannot remove an orphan runner"),
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_pools_runner_names_are_ours() {
        assert!(super::is_ours("gantry-linux-12-1", "gantry-linux-"));
        assert!(!super::is_ours("gantry-linux-gpu-12-1", "gantry-linux-"));
        assert!(!super::is_ours("gantry-linux-12", "gantry-linux-"));
        assert!(super::is_ours("gantry-linux-12-1-r2", "gantry-linux-"));
        assert!(!super::is_ours("gantry-linux-12-1-x", "gantry-linux-"));
        assert!(!super::is_ours("gantry-linux-12-1-r2-3", "gantry-linux-"));
        assert!(!super::is_ours("someone-else", "gantry-linux-"));
    }
}

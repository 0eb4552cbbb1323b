//! What a job needs before its executor starts it: its secrets (resolved from the secret
//! store, repository scope first; withheld from fork pull requests unless the repository is
//! allowed them) and the commit to check out. A job whose secrets cannot be had fails saying
//! which, before anything runs.

use crate::ports::{Checkout, Launch, SecretStore};
use gantry_core::spec::{ExecutorKind, JobSpec, RunContext};
use std::collections::HashSet;
use std::sync::Arc;

/// The ports and policy used to prepare jobs.
#[derive(Clone, Default)]
pub struct Preparation {
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Repositories (`owner/name`) whose fork pull requests may use secrets.
    pub fork_secrets: HashSet<String>,
    /// What jobs of pull requests from forks may do.
    pub fork_jobs: ForkJobs,
}

/// What jobs of a pull request from a fork (someone else's code) may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForkJobs {
    /// Only jobs in containers (`image:`) run; a local job fails saying why.
    #[default]
    Containers,
    /// The pull request's pipeline does not run at all.
    Off,
    /// Anything runs, as for the repository's own branches (only for trusted forks).
    Local,
}

impl std::str::FromStr for ForkJobs {
    type Err = String;
    fn from_str(s: &str) -> Result<ForkJobs, String> {
        match s {
            "containers" => Ok(ForkJobs::Containers),
            "off" => Ok(ForkJobs::Off),
            "local" => Ok(ForkJobs::Local),
            other => Err(format!(
                "`{other}` is not one of `containers`, `off`, `local`"
            )),
        }
    }
}

impl std::fmt::Debug for Preparation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparation")
            .field("secrets", &self.secrets.is_some())
            .field("fork_secrets", &self.fork_secrets)
            .field("fork_jobs", &self.fork_jobs)
            .finish()
    }
}

impl Preparation {
    /// Fills `launch`'s secrets, checkout and notes, or says why the job cannot run.
    pub async fn prepare(
        &self,
        launch: &mut Launch,
        job: &JobSpec,
        ctx: &RunContext,
    ) -> Result<(), String> {
        if ctx.fork {
            match self.fork_jobs {
                ForkJobs::Local => {}
                // A remote job runs with the AWS role of its task, project or function.
                ForkJobs::Containers if job.executor.is_remote() => {
                    return Err(format!(
                        "jobs of a pull request from a fork do not run on AWS (executor {}): they would act with its role (fork_jobs = containers; `local` allows them)",
                        job.executor.as_str()
                    ));
                }
                // An agent's job without `image:` is a process on the agent's host.
                ForkJobs::Containers
                    if job.executor != ExecutorKind::Local
                        && (job.executor != ExecutorKind::Agent || job.image.is_some()) =>
                {
                    // In its own network namespace: not the host's (where the API listens on
                    // loopback), nor another container's.
                    let network = job.container.as_ref().and_then(|c| c.network.as_deref());
                    if let Some(n) = network.filter(|n| !matches!(*n, "none" | "bridge")) {
                        return Err(format!(
                            "a container of a pull request from a fork may use the network `none` or `bridge`, not `{n}`"
                        ));
                    }
                }
                ForkJobs::Containers => {
                    return Err("jobs of a pull request from a fork run only in containers, and this one has no `image:` (fork_jobs = containers)".into());
                }
                ForkJobs::Off => {
                    return Err(
                        "jobs of pull requests from forks do not run here (fork_jobs = off)".into(),
                    );
                }
            }
        }
        if let Some(src) = &job.source {
            let git_ref = src
                .git
                .git_ref
                .clone()
                .or_else(|| ctx.sha.clone())
                .unwrap_or_else(|| "HEAD".into());
            launch.checkout = Some(Checkout {
                url: src.git.url.clone(),
                git_ref,
                repo: ctx.repo.clone(),
            });
        }
        if job.secrets.is_empty() {
            return Ok(());
        }
        let repo = ctx.repo.as_deref();
        if ctx.fork && !repo.is_some_and(|r| self.fork_secrets.contains(r)) {
            launch.notes.push(format!(
                "gantry: secrets withheld from a pull request from a fork: {}",
                job.secrets.join(", ")
            ));
            return Ok(());
        }
        let Some(store) = &self.secrets else {
            return Err(format!(
                "the secrets {} are not available: no secret store is configured",
                job.secrets.join(", ")
            ));
        };
        let resolved = store
            .resolve(&job.secrets, repo)
            .await
            .map_err(|e| e.to_string())?;
        if !resolved.missing.is_empty() {
            return Err(format!(
                "secret{} {} not set ({})",
                if resolved.missing.len() > 1 { "s" } else { "" },
                resolved.missing.join(", "),
                store.missing_hint(repo)
            ));
        }
        launch.secrets = resolved.values;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Resolved, SecretError, SecretMeta, SecretValue};
    use gantry_core::secret::Scope;
    use gantry_core::spec::{Format, Limits, parse_spec};

    /// Knows one secret, `TOKEN`, in every scope.
    struct OneSecret;

    #[async_trait::async_trait]
    impl SecretStore for OneSecret {
        async fn set(&self, _: &Scope, _: &str, _: &str) -> Result<(), SecretError> {
            Ok(())
        }
        async fn list(&self) -> Result<Vec<SecretMeta>, SecretError> {
            Ok(vec![])
        }
        async fn delete(&self, _: &Scope, _: &str) -> Result<bool, SecretError> {
            Ok(false)
        }
        async fn resolve(
            &self,
            names: &[String],
            _: Option<&str>,
        ) -> Result<Resolved, SecretError> {
            let (found, missing): (Vec<String>, Vec<String>) =
                names.iter().cloned().partition(|n| n == "TOKEN");
            let values = found
                .into_iter()
                .map(|n| (n, SecretValue::new("value-1".into())))
                .collect();
            Ok(Resolved { values, missing })
        }
    }

    fn launch() -> Launch {
        Launch {
            run_id: "r".into(),
            job: "j".into(),
            attempt: 1,
            trace_id: "t".into(),
            commands: vec![],
            env: vec![],
            timeout_ms: 1,
            workspace: "/nonexistent".into(),
            log: crate::logs::Logs::new("/nonexistent").attempt("r", "j", 1),
            image: None,
            secrets: vec![],
            checkout: None,
            notes: vec![],
            container: None,
            aws: None,
            artifacts: Default::default(),
            cache: None,
        }
    }

    #[tokio::test]
    async fn forks_get_secrets_only_when_their_repository_allows_it() {
        let yaml =
            b"jobs: {j: {run: [make], secrets: [TOKEN]}, k: {run: [make], secrets: [TOKEN, NOPE]}}";
        let spec = parse_spec(yaml, Format::Yaml, "p", &Limits::default()).unwrap();
        let fork = RunContext {
            repo: Some("o/r".into()),
            fork: true,
            ..RunContext::default()
        };
        let mut prep = Preparation {
            secrets: Some(Arc::new(OneSecret)),
            fork_secrets: HashSet::new(),
            // Local jobs of forks allowed here: this is about their secrets.
            fork_jobs: ForkJobs::Local,
        };
        let mut l = launch();
        prep.prepare(&mut l, &spec.jobs[0], &fork).await.unwrap();
        assert!(l.secrets.is_empty());
        assert_eq!(
            l.notes,
            ["gantry: secrets withheld from a pull request from a fork: TOKEN"]
        );

        prep.fork_secrets.insert("o/r".into());
        let mut l = launch();
        prep.prepare(&mut l, &spec.jobs[0], &fork).await.unwrap();
        assert_eq!(l.secrets.len(), 1);

        let err = prep
            .prepare(&mut launch(), &spec.jobs[1], &RunContext::default())
            .await
            .unwrap_err();
        assert!(
            err.contains("NOPE not set (looked in global; set with `gantry secrets set NAME`)"),
            "{err}"
        );
        let none = Preparation::default();
        let err = none
            .prepare(&mut launch(), &spec.jobs[0], &RunContext::default())
            .await
            .unwrap_err();
        assert!(err.contains("no secret store"), "{err}");
    }

    #[tokio::test]
    async fn jobs_of_forks_run_only_in_containers_unless_allowed() {
        let yaml = b"jobs: {local: {run: [make]}, boxed: {image: 'alpine', run: [make]}}";
        let spec = parse_spec(yaml, Format::Yaml, "p", &Limits::default()).unwrap();
        let fork = RunContext {
            repo: Some("o/r".into()),
            fork: true,
            ..RunContext::default()
        };
        let own = RunContext {
            repo: Some("o/r".into()),
            ..RunContext::default()
        };
        let prep = Preparation::default();
        let why = prep
            .prepare(&mut launch(), &spec.jobs[0], &fork)
            .await
            .unwrap_err();
        assert!(why.contains("only in containers"), "{why}");
        prep.prepare(&mut launch(), &spec.jobs[1], &fork)
            .await
            .unwrap();
        prep.prepare(&mut launch(), &spec.jobs[0], &own)
            .await
            .unwrap();
        let off = Preparation {
            fork_jobs: ForkJobs::Off,
            ..Preparation::default()
        };
        assert!(
            off.prepare(&mut launch(), &spec.jobs[1], &fork)
                .await
                .is_err()
        );
        // A fork's container stays in its own network.
        let yaml = b"jobs: {host: {image: alpine, container: {network: host}, run: [make]}}";
        let host = parse_spec(yaml, Format::Yaml, "p", &Limits::default()).unwrap();
        let why = prep
            .prepare(&mut launch(), &host.jobs[0], &fork)
            .await
            .unwrap_err();
        assert!(why.contains("`host`"), "{why}");
        // On an agent, only in a container too.
        let yaml = b"jobs: {bare: {runs_on: [l], run: [make]}, boxed: {runs_on: [l], image: alpine, run: [make]}}";
        let agent = parse_spec(yaml, Format::Yaml, "p", &Limits::default()).unwrap();
        let why = prep
            .prepare(&mut launch(), &agent.jobs[0], &fork)
            .await
            .unwrap_err();
        assert!(why.contains("only in containers"), "{why}");
        prep.prepare(&mut launch(), &agent.jobs[1], &fork)
            .await
            .unwrap();
        // Never on AWS, where a job acts with the task's, project's or function's role.
        let yaml = b"jobs: {task: {executor: ecs, run: [make]}}";
        let remote = parse_spec(yaml, Format::Yaml, "p", &Limits::default()).unwrap();
        let why = prep
            .prepare(&mut launch(), &remote.jobs[0], &fork)
            .await
            .unwrap_err();
        assert!(why.contains("do not run on AWS (executor ecs)"), "{why}");
        let local = Preparation {
            fork_jobs: ForkJobs::Local,
            ..Preparation::default()
        };
        local
            .prepare(&mut launch(), &spec.jobs[0], &fork)
            .await
            .unwrap();
    }
}

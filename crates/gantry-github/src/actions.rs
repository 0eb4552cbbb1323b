//! GitHub Actions' self-hosted runners and workflow jobs, for ephemeral runners: register a
//! just-in-time runner for a queued job, watch the job, list and delete runners, and find the
//! queued jobs of a scope (for jobs whose webhook was lost). The JIT config is a credential: it
//! lives in a `SecretString` and never reaches `Debug` or an error.

use crate::GitHub;
use gantry_engine::ports::ForgeError;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

pub use gantry_engine::ports::runners::{
    JitConfig, JitRegistration, JobStatus, Runner, RunnerDeletion, Scope as RunnerScope,
    SecretString, WorkflowJob,
};

/// A scope's (key `GitHub::call` authenticates for, REST path prefix).
trait ScopeParts {
    fn parts(&self) -> Result<(&str, String), ForgeError>;
}

impl ScopeParts for RunnerScope {
    fn parts(&self) -> Result<(&str, String), ForgeError> {
        match self {
            RunnerScope::Org(org) if !org.is_empty() && !org.contains('/') => {
                Ok((org, format!("/orgs/{org}")))
            }
            RunnerScope::Repo(repo) if repo.split('/').count() == 2 => {
                Ok((repo, format!("/repos/{repo}")))
            }
            other => Err(ForgeError::Permanent(format!(
                "not a runner scope: {other:?} (an organization, or OWNER/NAME)"
            ))),
        }
    }
}

#[derive(Deserialize)]
struct RawLabel {
    name: String,
}

#[derive(Deserialize)]
struct RawRunner {
    id: u64,
    name: String,
    #[serde(default)]
    os: String,
    status: String,
    busy: bool,
    #[serde(default)]
    labels: Vec<RawLabel>,
}

impl From<RawRunner> for Runner {
    fn from(r: RawRunner) -> Runner {
        Runner {
            id: r.id,
            name: r.name,
            os: r.os,
            online: r.status == "online",
            busy: r.busy,
            labels: r.labels.into_iter().map(|l| l.name).collect(),
        }
    }
}

#[derive(Deserialize)]
struct RawJob {
    id: u64,
    run_id: u64,
    #[serde(default)]
    run_attempt: u64,
    name: String,
    head_sha: String,
    #[serde(default)]
    html_url: String,
    status: String,
    conclusion: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    runner_id: Option<u64>,
    runner_name: Option<String>,
}

impl RawJob {
    fn into_job(self, repo: &str) -> WorkflowJob {
        WorkflowJob {
            id: self.id,
            repo: repo.to_string(),
            run_id: self.run_id,
            run_attempt: self.run_attempt,
            name: self.name,
            head_sha: self.head_sha,
            html_url: self.html_url,
            status: JobStatus::parse(&self.status),
            conclusion: self.conclusion,
            labels: self.labels,
            runner_id: self.runner_id,
            runner_name: self.runner_name,
        }
    }
}

#[derive(Deserialize)]
struct RawRun {
    id: u64,
}

#[derive(Deserialize)]
struct RawRepo {
    full_name: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    disabled: bool,
}

/// The most runners `list_runners` reads (100 pages of 100).
const MAX_RUNNER_PAGES: u32 = 100;
/// The most pages `queued_jobs` reads of any one list (repositories, runs, a run's jobs).
const MAX_LIST_PAGES: u32 = 10;

/// The HTTP status in a `ForgeError` message (`METHOD path: 409 Conflict …`).
fn has_status(m: &str, code: u16) -> bool {
    m.contains(&format!(": {code} "))
}

fn bad_reply(what: &str, e: impl std::fmt::Display) -> ForgeError {
    ForgeError::Permanent(format!("GitHub returned an unexpected {what}: {e}"))
}

impl GitHub {
    /// Registers a just-in-time runner `name` in `scope`'s runner group `runner_group_id`, with
    /// custom `labels` and `work_folder` (relative to the runner's directory; `_work` is usual).
    /// A name already taken answers `AlreadyRegistered`, so a retried call never registers two.
    pub async fn generate_jit_config(
        &self,
        scope: &RunnerScope,
        name: &str,
        runner_group_id: u64,
        labels: &[&str],
        work_folder: &str,
    ) -> Result<JitRegistration, ForgeError> {
        let (key, prefix) = scope.parts()?;
        let body = json!({"name": name, "runner_group_id": runner_group_id, "labels": labels, "work_folder": work_folder});
        let reply = match self
            .call(
                key,
                Method::POST,
                &format!("{prefix}/actions/runners/generate-jitconfig"),
                Some(&body),
            )
            .await
        {
            Err(ForgeError::Permanent(m)) if has_status(&m, 409) => {
                return Ok(JitRegistration::AlreadyRegistered);
            }
            other => other?,
        };
        // Never put `reply` in an error: it holds the credential.
        let runner_id = reply["runner"]["id"].as_u64();
        let runner_name = reply["runner"]["name"].as_str();
        let encoded = reply["encoded_jit_config"].as_str();
        match (runner_id, runner_name, encoded) {
            (Some(runner_id), Some(runner_name), Some(encoded)) if !encoded.is_empty() => {
                Ok(JitRegistration::Registered(JitConfig {
                    runner_id,
                    runner_name: runner_name.to_string(),
                    encoded: SecretString::new(encoded.to_string()),
                }))
            }
            _ => Err(ForgeError::Permanent(
                "GitHub returned a JIT runner without an id, a name or a config".into(),
            )),
        }
    }

    /// Job `job_id` of `repo` (`OWNER/NAME`); `None` if GitHub does not know it (404).
    pub async fn workflow_job(
        &self,
        repo: &str,
        job_id: u64,
    ) -> Result<Option<WorkflowJob>, ForgeError> {
        let reply = match self
            .call(
                repo,
                Method::GET,
                &format!("/repos/{repo}/actions/jobs/{job_id}"),
                None,
            )
            .await
        {
            Err(ForgeError::NotFound(_)) => return Ok(None),
            other => other?,
        };
        let j: RawJob = serde_json::from_value(reply).map_err(|e| bad_reply("job", e))?;
        Ok(Some(j.into_job(repo)))
    }

    /// Every self-hosted runner of `scope`, all pages read.
    pub async fn list_runners(&self, scope: &RunnerScope) -> Result<Vec<Runner>, ForgeError> {
        let (key, prefix) = scope.parts()?;
        let path = format!("{prefix}/actions/runners?per_page=100");
        let items: Vec<RawRunner> = self
            .pages(key, &path, Some("runners"), "runner list", MAX_RUNNER_PAGES)
            .await?;
        Ok(items.into_iter().map(Runner::from).collect())
    }

    /// Every item of a paged list: `path` (asking 100 a page) read page by page, at most
    /// `max_pages`, until a short page or the list's `total_count`; the items are `field` of
    /// each reply (the reply itself when `None`).
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        path: &str,
        field: Option<&str>,
        what: &str,
        max_pages: u32,
    ) -> Result<Vec<T>, ForgeError> {
        let mut all = Vec::new();
        for page in 1..=max_pages {
            let reply = self
                .call(key, Method::GET, &format!("{path}&page={page}"), None)
                .await?;
            let total = reply.get("total_count").and_then(Value::as_u64);
            let items = match field {
                Some(f) => reply.get(f).cloned().unwrap_or(Value::Null),
                None => reply,
            };
            let items: Vec<T> = serde_json::from_value(items).map_err(|e| bad_reply(what, e))?;
            let last = items.len() < 100 || total.is_some_and(|t| u64::from(page) * 100 >= t);
            all.extend(items);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// The queued jobs of `scope` (each with its repository and `runs-on` labels), for
    /// finding jobs whose `workflow_job` webhook never arrived.
    ///
    /// GitHub has no endpoint for an organization's queued jobs, so this walks: the scope's
    /// repositories; in each, the workflow runs with status `queued` and those `in_progress`
    /// (a run is in progress as soon as one of its jobs starts, while its other jobs may still
    /// wait for a runner); and the jobs of each run's latest attempt, keeping the queued ones.
    /// Every list is read page by page (100 a page, at most 10 pages), like `list_runners`.
    ///
    /// An organization's repositories come, with a personal access token, from
    /// `GET /orgs/{org}/repos` (the token needs read access to them: `repo` scope, or a
    /// fine-grained token's metadata), and with a GitHub App from
    /// `GET /installation/repositories` with the organization's installation token (which
    /// needs no permission; `/orgs/{org}/repos` would want more than the organization token's
    /// `organization_self_hosted_runners`). Runs and jobs are read with each repository's own
    /// token (App: a repository-scoped installation token, which needs `actions: read`).
    /// Archived and disabled repositories are skipped, and so is a repository that disappears
    /// (404) during the walk.
    pub async fn queued_jobs(&self, scope: &RunnerScope) -> Result<Vec<WorkflowJob>, ForgeError> {
        scope.parts()?;
        let repos = match scope {
            RunnerScope::Repo(repo) => vec![repo.clone()],
            RunnerScope::Org(org) => self.org_repositories(org).await?,
        };
        let mut jobs: Vec<WorkflowJob> = Vec::new();
        for repo in &repos {
            let runs = match self.active_runs(repo).await {
                Err(ForgeError::NotFound(_)) => continue,
                other => other?,
            };
            for run in runs {
                let listed = match self.run_jobs(repo, run).await {
                    Err(ForgeError::NotFound(_)) => continue,
                    other => other?,
                };
                for job in listed {
                    if job.status == JobStatus::Queued && !jobs.iter().any(|j| j.id == job.id) {
                        jobs.push(job);
                    }
                }
            }
        }
        Ok(jobs)
    }

    /// The repositories of organization `org` (see `queued_jobs`), without archived ones.
    async fn org_repositories(&self, org: &str) -> Result<Vec<String>, ForgeError> {
        let items: Vec<RawRepo> = if self.uses_app() {
            let path = "/installation/repositories?per_page=100";
            self.pages(
                org,
                path,
                Some("repositories"),
                "repository list",
                MAX_LIST_PAGES,
            )
            .await?
        } else {
            let path = format!("/orgs/{org}/repos?type=all&per_page=100");
            self.pages(org, &path, None, "repository list", MAX_LIST_PAGES)
                .await?
        };
        let mut repos: Vec<String> = items
            .into_iter()
            .filter(|r| !r.archived && !r.disabled)
            .map(|r| r.full_name)
            .collect();
        // An installation belongs to one account, but keep only `org`'s repositories anyway.
        repos.retain(|r| {
            r.split_once('/')
                .is_some_and(|(owner, _)| owner.eq_ignore_ascii_case(org))
        });
        Ok(repos)
    }

    /// The ids of `repo`'s runs that may have queued jobs: `queued` ones and `in_progress` ones.
    async fn active_runs(&self, repo: &str) -> Result<Vec<u64>, ForgeError> {
        let mut ids = Vec::new();
        for status in ["queued", "in_progress"] {
            let path = format!("/repos/{repo}/actions/runs?status={status}&per_page=100");
            let runs: Vec<RawRun> = self
                .pages(
                    repo,
                    &path,
                    Some("workflow_runs"),
                    "workflow run list",
                    MAX_LIST_PAGES,
                )
                .await?;
            for run in runs {
                if !ids.contains(&run.id) {
                    ids.push(run.id);
                }
            }
        }
        Ok(ids)
    }

    /// The jobs of the latest attempt of run `run_id` of `repo`.
    async fn run_jobs(&self, repo: &str, run_id: u64) -> Result<Vec<WorkflowJob>, ForgeError> {
        let path = format!("/repos/{repo}/actions/runs/{run_id}/jobs?filter=latest&per_page=100");
        let jobs: Vec<RawJob> = self
            .pages(repo, &path, Some("jobs"), "job list", MAX_LIST_PAGES)
            .await?;
        Ok(jobs.into_iter().map(|j| j.into_job(repo)).collect())
    }

    /// Deletes runner `runner_id` of `scope`: `Busy` while it runs a job, `Gone` if it is not
    /// there (any more).
    pub async fn delete_runner(
        &self,
        scope: &RunnerScope,
        runner_id: u64,
    ) -> Result<RunnerDeletion, ForgeError> {
        let (key, prefix) = scope.parts()?;
        match self
            .call(
                key,
                Method::DELETE,
                &format!("{prefix}/actions/runners/{runner_id}"),
                None,
            )
            .await
        {
            Ok(_) => Ok(RunnerDeletion::Deleted),
            Err(ForgeError::NotFound(_)) => Ok(RunnerDeletion::Gone),
            Err(ForgeError::Permanent(m)) if has_status(&m, 422) => Ok(RunnerDeletion::Busy),
            Err(e) => Err(e),
        }
    }
}

/// The engine's `Actions` port, on GitHub's REST API.
#[async_trait::async_trait]
impl gantry_engine::ports::Actions for GitHub {
    async fn workflow_job(
        &self,
        repo: &str,
        job_id: u64,
    ) -> Result<Option<WorkflowJob>, ForgeError> {
        GitHub::workflow_job(self, repo, job_id).await
    }

    async fn generate_jit_config(
        &self,
        scope: &RunnerScope,
        name: &str,
        runner_group_id: u64,
        labels: &[&str],
        work_folder: &str,
    ) -> Result<JitRegistration, ForgeError> {
        GitHub::generate_jit_config(self, scope, name, runner_group_id, labels, work_folder).await
    }

    async fn list_runners(&self, scope: &RunnerScope) -> Result<Vec<Runner>, ForgeError> {
        GitHub::list_runners(self, scope).await
    }

    async fn delete_runner(
        &self,
        scope: &RunnerScope,
        runner_id: u64,
    ) -> Result<RunnerDeletion, ForgeError> {
        GitHub::delete_runner(self, scope, runner_id).await
    }

    async fn queued_jobs(&self, scope: &RunnerScope) -> Result<Vec<WorkflowJob>, ForgeError> {
        GitHub::queued_jobs(self, scope).await
    }
}

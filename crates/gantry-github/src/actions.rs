//! GitHub Actions' self-hosted runners and workflow jobs, for ephemeral runners: register a
//! just-in-time runner for a queued job, watch the job, list and delete runners. The JIT config
//! is a credential: it lives in a `SecretString` and never reaches `Debug` or an error.

use crate::GitHub;
use gantry_engine::ports::ForgeError;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

/// Where runners are registered: an organization (`Org("acme")`) or a repository
/// (`Repo("acme/infra")`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunnerScope {
    Org(String),
    Repo(String),
}

impl RunnerScope {
    /// (the key `GitHub::call` authenticates for, the REST path prefix).
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

/// A string that is a credential: `Debug` prints `***`; read it with `expose`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> SecretString {
        SecretString(s)
    }

    /// The secret itself, for handing to the one process that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A just-in-time runner's registration: `encoded` is what `run.sh --jitconfig` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitConfig {
    pub runner_id: u64,
    pub runner_name: String,
    pub encoded: SecretString,
}

/// What `generate_jit_config` got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitRegistration {
    Registered(JitConfig),
    /// A runner of that name already exists in the scope (409): an earlier attempt registered
    /// it, so adopt it (find it with `list_runners`) rather than launching a second one.
    AlreadyRegistered,
}

/// A workflow job's `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    InProgress,
    Completed,
    /// GitHub's rarer states (`waiting`, `requested`, `pending`), as given.
    Other(String),
}

impl JobStatus {
    fn parse(s: &str) -> JobStatus {
        match s {
            "queued" => JobStatus::Queued,
            "in_progress" => JobStatus::InProgress,
            "completed" => JobStatus::Completed,
            other => JobStatus::Other(other.to_string()),
        }
    }
}

/// A workflow job, as `GET /repos/{owner}/{repo}/actions/jobs/{id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowJob {
    pub id: u64,
    pub run_id: u64,
    pub run_attempt: u64,
    pub name: String,
    pub head_sha: String,
    pub html_url: String,
    pub status: JobStatus,
    /// `success`, `failure`, `cancelled`… once completed.
    pub conclusion: Option<String>,
    /// The `runs-on` labels.
    pub labels: Vec<String>,
    pub runner_id: Option<u64>,
    pub runner_name: Option<String>,
}

/// A self-hosted runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub id: u64,
    pub name: String,
    pub os: String,
    /// Connected to GitHub (`status: online`).
    pub online: bool,
    pub busy: bool,
    /// Label names, read-only (`self-hosted`, `Linux`…) and custom.
    pub labels: Vec<String>,
}

/// What `delete_runner` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerDeletion {
    Deleted,
    /// Still running a job (422): GitHub refuses; try again after the job.
    Busy,
    /// No such runner (404): already deleted, as a JIT runner is after its job.
    Gone,
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

/// The most runners `list_runners` reads (100 pages of 100).
const MAX_RUNNER_PAGES: u32 = 100;

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
        Ok(Some(WorkflowJob {
            id: j.id,
            run_id: j.run_id,
            run_attempt: j.run_attempt,
            name: j.name,
            head_sha: j.head_sha,
            html_url: j.html_url,
            status: JobStatus::parse(&j.status),
            conclusion: j.conclusion,
            labels: j.labels,
            runner_id: j.runner_id,
            runner_name: j.runner_name,
        }))
    }

    /// Every self-hosted runner of `scope`, all pages read.
    pub async fn list_runners(&self, scope: &RunnerScope) -> Result<Vec<Runner>, ForgeError> {
        let (key, prefix) = scope.parts()?;
        let mut runners = Vec::new();
        for page in 1..=MAX_RUNNER_PAGES {
            let reply = self
                .call(
                    key,
                    Method::GET,
                    &format!("{prefix}/actions/runners?per_page=100&page={page}"),
                    None,
                )
                .await?;
            let items: Vec<RawRunner> =
                serde_json::from_value(reply.get("runners").cloned().unwrap_or(Value::Null))
                    .map_err(|e| bad_reply("runner list", e))?;
            let total = reply["total_count"].as_u64().unwrap_or(0) as usize;
            let last = items.len() < 100;
            runners.extend(items.into_iter().map(Runner::from));
            if last || runners.len() >= total {
                break;
            }
        }
        Ok(runners)
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

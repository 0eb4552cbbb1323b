//! The fake GitHub's repositories and workflow runs, for finding queued jobs whose webhook was
//! lost: `GET /repos/{o}/{r}/actions/runs` (filtered by `status`),
//! `GET /repos/{o}/{r}/actions/runs/{id}/jobs`, and the repositories of an organization
//! (`GET /orgs/{org}/repos`) or of the App installation (`GET /installation/repositories`).
//! Runs are not stored: they are the jobs added with `add_job`, grouped by `run_id` (the latest
//! `run_attempt` of each), with a status rolled up from their jobs as GitHub does.

use super::actions::job_json;
use super::{FakeGitHub, FakeJob, FakeState, Page, error};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

impl FakeGitHub {
    /// Registers repository `OWNER/NAME` (adding a job registers its repository too).
    pub fn add_repo(&self, repo: &str) {
        self.lock().add_repo(repo);
    }

    /// `login` is a personal account, not an organization: its payloads carry no
    /// `organization` and `GET /orgs/{login}/repos` is 404. Every other owner is an
    /// organization.
    pub fn set_personal_account(&self, login: &str) {
        self.lock().personal_accounts.insert(login.to_string());
    }
}

impl FakeState {
    pub(super) fn add_repo(&mut self, repo: &str) {
        if !self.repos.iter().any(|r| r == repo) {
            self.repos.push(repo.to_string());
        }
    }

    pub(super) fn is_org(&self, login: &str) -> bool {
        !login.is_empty() && !self.personal_accounts.contains(login)
    }
}

/// A stable id for a name (FNV-1a), for accounts and repositories.
pub(super) fn account_id(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    hash % 1_000_000_000 + 1
}

/// A repository, as GitHub's repository lists and webhook payloads show it.
pub(super) fn repo_json(st: &FakeState, repo: &str) -> Value {
    let (owner, name) = repo.split_once('/').unwrap_or(("", repo));
    json!({
        "id": account_id(repo), "node_id": format!("R_{}", account_id(repo)),
        "name": name, "full_name": repo, "private": st.private_repos.contains(repo),
        "owner": {
            "login": owner, "id": account_id(owner), "node_id": format!("U_{owner}"),
            "url": format!("https://api.github.com/users/{owner}"),
            "html_url": format!("https://github.com/{owner}"),
            "type": if st.is_org(owner) { "Organization" } else { "User" }, "site_admin": false
        },
        "html_url": format!("https://github.com/{repo}"), "description": null, "fork": false,
        "url": format!("https://api.github.com/repos/{repo}"),
        "clone_url": format!("{}/git/{repo}.git", st.base_url),
        "default_branch": "main", "archived": false, "disabled": false, "visibility": "private",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
        "pushed_at": "2026-11-22T10:00:00Z"
    })
}

/// A run: the jobs of the latest attempt of `run_id`.
struct Run<'a> {
    jobs: Vec<&'a FakeJob>,
}

impl Run<'_> {
    fn first(&self) -> &FakeJob {
        self.jobs[0]
    }

    /// GitHub's roll-up: queued until a job starts, completed once all are.
    fn status(&self) -> &str {
        let all = |s: &str| self.jobs.iter().all(|j| j.status == s);
        if all("queued") {
            "queued"
        } else if all("completed") {
            "completed"
        } else if all("waiting") {
            "waiting"
        } else {
            "in_progress"
        }
    }

    fn conclusion(&self) -> Option<&str> {
        if self.status() != "completed" {
            return None;
        }
        let any = |c: &str| self.jobs.iter().any(|j| j.conclusion.as_deref() == Some(c));
        Some(if any("failure") {
            "failure"
        } else if any("cancelled") {
            "cancelled"
        } else {
            "success"
        })
    }

    fn json(&self, st: &FakeState) -> Value {
        let j = self.first();
        let api = format!(
            "https://api.github.com/repos/{}/actions/runs/{}",
            j.repo, j.run_id
        );
        json!({
            "id": j.run_id, "name": "CI", "node_id": format!("WFR_{}", j.run_id),
            "head_branch": "main", "head_sha": j.head_sha, "path": ".github/workflows/ci.yml",
            "display_title": "CI", "run_number": j.run_id, "event": "push",
            "status": self.status(), "conclusion": self.conclusion(), "workflow_id": 1,
            "url": api, "html_url": format!("https://github.com/{}/actions/runs/{}", j.repo, j.run_id),
            "jobs_url": format!("{api}/jobs"), "logs_url": format!("{api}/logs"),
            "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:05Z",
            "run_attempt": j.run_attempt, "run_started_at": "2026-11-22T10:00:00Z",
            "repository": repo_json(st, &j.repo)
        })
    }
}

/// The runs of `repo`, newest first.
fn runs_of<'a>(st: &'a FakeState, repo: &str) -> Vec<Run<'a>> {
    let mut ids: Vec<u64> = st
        .jobs
        .iter()
        .filter(|j| j.repo == repo)
        .map(|j| j.run_id)
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let attempt = st
                .jobs
                .iter()
                .filter(|j| j.repo == repo && j.run_id == id)
                .map(|j| j.run_attempt)
                .max()
                .unwrap_or(1);
            let mut jobs: Vec<&FakeJob> = st
                .jobs
                .iter()
                .filter(|j| j.repo == repo && j.run_id == id && j.run_attempt == attempt)
                .collect();
            jobs.sort_by_key(|j| j.id);
            Run { jobs }
        })
        .collect()
}

#[derive(Deserialize)]
pub(super) struct RunFilter {
    status: Option<String>,
}

pub(super) async fn list_runs(
    State(f): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(p): Query<Page>,
    Query(filter): Query<RunFilter>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(&headers, format!("GET /repos/{owner}/{repo}/actions/runs")) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    let st = f.lock();
    if !st.repos.contains(&full) {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    }
    // `status` matches a run's status or its conclusion, as GitHub's filter does.
    let runs: Vec<Run> = runs_of(&st, &full)
        .into_iter()
        .filter(|r| {
            filter
                .status
                .as_deref()
                .is_none_or(|s| r.status() == s || r.conclusion() == Some(s))
        })
        .collect();
    let (skip, per) = p.window();
    let page: Vec<Value> = runs
        .iter()
        .skip(skip)
        .take(per)
        .map(|r| r.json(&st))
        .collect();
    Json(json!({"total_count": runs.len(), "workflow_runs": page})).into_response()
}

pub(super) async fn list_run_jobs(
    State(f): State<FakeGitHub>,
    Path((owner, repo, run_id)): Path<(String, String, u64)>,
    Query(p): Query<Page>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"),
    ) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    let st = f.lock();
    let runs = runs_of(&st, &full);
    let Some(run) = runs.iter().find(|r| r.first().run_id == run_id) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let (skip, per) = p.window();
    let page: Vec<Value> = run
        .jobs
        .iter()
        .skip(skip)
        .take(per)
        .map(|j| job_json(j))
        .collect();
    Json(json!({"total_count": run.jobs.len(), "jobs": page})).into_response()
}

pub(super) async fn list_org_repos(
    State(f): State<FakeGitHub>,
    Path(org): Path<String>,
    Query(p): Query<Page>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(&headers, format!("GET /orgs/{org}/repos")) {
        return r;
    }
    let st = f.lock();
    if !st.is_org(&org) {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    }
    let (skip, per) = p.window();
    let page: Vec<Value> = st
        .repos
        .iter()
        .filter(|r| r.split_once('/').is_some_and(|(o, _)| o == org))
        .skip(skip)
        .take(per)
        .map(|r| repo_json(&st, r))
        .collect();
    Json(page).into_response()
}

/// Needs an installation token; the fake's one installation reaches every repository.
pub(super) async fn list_installation_repos(
    State(f): State<FakeGitHub>,
    Query(p): Query<Page>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(&headers, "GET /installation/repositories".into()) {
        return r;
    }
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let st = f.lock();
    if !st.installation_tokens.iter().any(|t| t == given) {
        return error(
            StatusCode::FORBIDDEN,
            "You must authenticate with an installation access token in order to list repositories for an installation.",
            None,
        );
    }
    let (skip, per) = p.window();
    let page: Vec<Value> = st
        .repos
        .iter()
        .skip(skip)
        .take(per)
        .map(|r| repo_json(&st, r))
        .collect();
    Json(
        json!({"total_count": st.repos.len(), "repository_selection": "all", "repositories": page}),
    )
    .into_response()
}

//! The fake GitHub's Actions: self-hosted runners of an organization or a repository
//! (just-in-time registration, listing, deletion) and workflow jobs. A test adds jobs and moves
//! them along; a stand-in runner claims a job and completes it through the fake-only
//! `/_fake/runners/{id}/…` routes, after which the runner is gone, as a JIT runner is after its
//! one job. Each change of a job's status queues a `workflow_job` delivery (`hooks.rs`).

use super::{FakeGitHub, Page, error};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

/// A self-hosted runner registered with the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRunner {
    pub id: u64,
    /// `orgs/ORG` or `repos/OWNER/NAME`: where the runner is registered.
    pub scope: String,
    pub name: String,
    pub runner_group_id: u64,
    /// Custom labels (GitHub adds the read-only `self-hosted`).
    pub labels: Vec<String>,
    pub work_folder: String,
    pub online: bool,
    pub busy: bool,
    /// The credential inside its encoded JIT config.
    pub credential: String,
}

/// A workflow job, as `GET /repos/{owner}/{repo}/actions/jobs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeJob {
    pub id: u64,
    pub repo: String,
    pub run_id: u64,
    pub run_attempt: u64,
    pub name: String,
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed` (or GitHub's rarer `waiting`, `pending`…).
    pub status: String,
    pub conclusion: Option<String>,
    /// The `runs-on` labels.
    pub labels: Vec<String>,
    pub runner_id: Option<u64>,
    pub runner_name: Option<String>,
}

impl FakeJob {
    /// A queued job `id` of run `id * 10`, attempt 1, asking for `labels`.
    pub fn queued(id: u64, labels: &[&str]) -> FakeJob {
        FakeJob {
            id,
            repo: String::new(),
            run_id: id * 10,
            run_attempt: 1,
            name: "build".into(),
            head_sha: "0123456789abcdef0123456789abcdef01234567".into(),
            status: "queued".into(),
            conclusion: None,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            runner_id: None,
            runner_name: None,
        }
    }
}

impl FakeGitHub {
    /// Adds (or replaces) a workflow job of `repo` (registering the repository); a job added
    /// `queued` is delivered to the webhook (`queued`).
    pub fn add_job(&self, repo: &str, job: FakeJob) {
        let mut st = self.lock();
        st.add_repo(repo);
        st.jobs.retain(|j| j.id != job.id);
        let job = FakeJob {
            repo: repo.to_string(),
            ..job
        };
        st.jobs.push(job.clone());
        if job.status == "queued" {
            self.job_event(&mut st, "queued", &job);
        }
    }

    /// Sets a job's `status` and `conclusion` (panics if there is no such job): `completed`
    /// with `cancelled` is a cancellation. A new `queued`, `in_progress`, `completed` or
    /// `waiting` status is delivered to the webhook with that action. A job completed under
    /// its runner frees the runner, which, being just-in-time, is then gone.
    pub fn set_job_status(&self, job_id: u64, status: &str, conclusion: Option<&str>) {
        let mut st = self.lock();
        let job = st
            .jobs
            .iter_mut()
            .find(|j| j.id == job_id)
            .expect("a job the test added");
        let changed = job.status != status;
        let was_running = job.status == "in_progress";
        job.status = status.to_string();
        job.conclusion = conclusion.map(str::to_string);
        let job = job.clone();
        if was_running
            && status == "completed"
            && let Some(runner) = job.runner_id
        {
            st.runners.retain(|r| r.id != runner);
        }
        if changed && ["queued", "in_progress", "completed", "waiting"].contains(&status) {
            self.job_event(&mut st, status, &job);
        }
    }

    /// Removes a job (GitHub forgets jobs of deleted runs).
    pub fn remove_job(&self, job_id: u64) {
        self.lock().jobs.retain(|j| j.id != job_id);
    }

    /// Registers a runner directly, as if configured long ago (for listing and deletion tests).
    pub fn add_runner(&self, scope: &str, name: &str, labels: &[&str], busy: bool) -> u64 {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.runners.push(FakeRunner {
            id,
            scope: scope.to_string(),
            name: name.to_string(),
            runner_group_id: 1,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            work_folder: "_work".into(),
            online: busy,
            busy,
            credential: format!("fake-runner-credential-{id}"),
        });
        id
    }
}

pub(super) fn runner_json(r: &FakeRunner) -> Value {
    let mut labels = vec![json!({"id": 1, "name": "self-hosted", "type": "read-only"})];
    labels.extend(
        r.labels
            .iter()
            .enumerate()
            .map(|(i, l)| json!({"id": i + 2, "name": l, "type": "custom"})),
    );
    json!({
        "id": r.id, "name": r.name, "os": if r.online { "Linux" } else { "unknown" },
        "status": if r.online { "online" } else { "offline" }, "busy": r.busy,
        "ephemeral": true, "runner_group_id": r.runner_group_id, "labels": labels
    })
}

pub(super) fn job_json(j: &FakeJob) -> Value {
    let api = format!("https://api.github.com/repos/{}", j.repo);
    json!({
        "id": j.id, "run_id": j.run_id, "run_attempt": j.run_attempt,
        "run_url": format!("{api}/actions/runs/{}", j.run_id),
        "node_id": format!("CR_{}", j.id), "head_sha": j.head_sha, "head_branch": "main",
        "url": format!("{api}/actions/jobs/{}", j.id),
        "html_url": format!("https://github.com/{}/actions/runs/{}/job/{}", j.repo, j.run_id, j.id),
        "status": j.status, "conclusion": j.conclusion,
        "created_at": "2026-11-22T10:00:00Z", "started_at": "2026-11-22T10:00:05Z",
        "completed_at": if j.status == "completed" { json!("2026-11-22T10:05:00Z") } else { Value::Null },
        "name": j.name, "steps": [], "check_run_url": format!("{api}/check-runs/{}", j.id),
        "labels": j.labels, "runner_id": j.runner_id, "runner_name": j.runner_name,
        "runner_group_id": j.runner_id.map(|_| 1), "runner_group_name": j.runner_id.map(|_| "Default"),
        "workflow_name": "CI"
    })
}

/// The scope of a runner route: `orgs/ORG` (one path segment) or `repos/OWNER/NAME`.
fn scope_of(parts: &[String]) -> String {
    match parts {
        [org] => format!("orgs/{org}"),
        _ => format!("repos/{}", parts.join("/")),
    }
}

#[derive(Deserialize)]
pub(super) struct JitBody {
    name: Option<String>,
    runner_group_id: Option<u64>,
    labels: Option<Vec<String>>,
    work_folder: Option<String>,
}

pub(super) async fn org_jitconfig(
    State(f): State<FakeGitHub>,
    Path(org): Path<String>,
    headers: HeaderMap,
    Json(b): Json<JitBody>,
) -> Response {
    jitconfig(f, scope_of(&[org]), headers, b)
}

pub(super) async fn repo_jitconfig(
    State(f): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(b): Json<JitBody>,
) -> Response {
    jitconfig(f, scope_of(&[owner, repo]), headers, b)
}

fn jitconfig(f: FakeGitHub, scope: String, headers: HeaderMap, b: JitBody) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("POST /{scope}/actions/runners/generate-jitconfig"),
    ) {
        return r;
    }
    let (Some(name), Some(group)) = (b.name, b.runner_group_id) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\nNo subschema in \"oneOf\" matched.\n\"name\" and \"runner_group_id\" are required.",
            None,
        );
    };
    let labels = b.labels.unwrap_or_default();
    if labels.is_empty()
        || labels.len() > 100
        || labels
            .iter()
            .any(|l| l.trim().is_empty() || l.len() > 256 || l.contains(','))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\nFor 'properties/labels', the labels must be 1 to 100 non-empty names.",
            None,
        );
    }
    let mut st = f.lock();
    if st
        .runners
        .iter()
        .any(|r| r.scope == scope && r.name == name)
    {
        return error(
            StatusCode::CONFLICT,
            &format!("Already exists - A runner with the name {name} already exists."),
            None,
        );
    }
    st.next_id += 1;
    let id = st.next_id;
    let runner = FakeRunner {
        id,
        scope,
        name: name.clone(),
        runner_group_id: group,
        labels,
        work_folder: b.work_folder.unwrap_or_else(|| "_work".into()),
        online: false,
        busy: false,
        credential: format!("fake-runner-credential-{id}"),
    };
    // `ServerUrl` is where the runner calls back (the fake, as a container reaches it);
    // `GitHubUrl` the organization or repository, as in a real `.runner`.
    let server = st.public_url.clone().unwrap_or_else(|| st.base_url.clone());
    let github_url = format!(
        "{server}/{}",
        runner.scope.split_once('/').map_or("", |s| s.1)
    );
    let config = json!({
        ".runner": {"AgentId": id, "AgentName": name, "PoolId": group, "WorkFolder": runner.work_folder,
                    "ServerUrl": server, "GitHubUrl": github_url, "Ephemeral": true},
        ".credentials": {"Scheme": "OAuth", "Data": {"token": runner.credential}}
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(config.to_string());
    let body = json!({"runner": runner_json(&runner), "encoded_jit_config": encoded});
    st.runners.push(runner);
    (StatusCode::CREATED, Json(body)).into_response()
}

pub(super) async fn get_job(
    State(f): State<FakeGitHub>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("GET /repos/{owner}/{repo}/actions/jobs/{id}"),
    ) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    match f.lock().jobs.iter().find(|j| j.id == id && j.repo == full) {
        Some(j) => Json(job_json(j)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found", None),
    }
}

pub(super) async fn list_org_runners(
    State(f): State<FakeGitHub>,
    Path(org): Path<String>,
    Query(p): Query<Page>,
    headers: HeaderMap,
) -> Response {
    list_runners(f, scope_of(&[org]), p, headers)
}

pub(super) async fn list_repo_runners(
    State(f): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(p): Query<Page>,
    headers: HeaderMap,
) -> Response {
    list_runners(f, scope_of(&[owner, repo]), p, headers)
}

fn list_runners(f: FakeGitHub, scope: String, p: Page, headers: HeaderMap) -> Response {
    if let Some(r) = f.admit(&headers, format!("GET /{scope}/actions/runners")) {
        return r;
    }
    let (skip, per) = p.window();
    let st = f.lock();
    let all: Vec<&FakeRunner> = st.runners.iter().filter(|r| r.scope == scope).collect();
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(per)
        .map(|r| runner_json(r))
        .collect();
    Json(json!({"total_count": all.len(), "runners": page})).into_response()
}

pub(super) async fn delete_org_runner(
    State(f): State<FakeGitHub>,
    Path((org, id)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Response {
    delete_runner(f, scope_of(&[org]), id, headers)
}

pub(super) async fn delete_repo_runner(
    State(f): State<FakeGitHub>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    delete_runner(f, scope_of(&[owner, repo]), id, headers)
}

fn delete_runner(f: FakeGitHub, scope: String, id: u64, headers: HeaderMap) -> Response {
    if let Some(r) = f.admit(&headers, format!("DELETE /{scope}/actions/runners/{id}")) {
        return r;
    }
    let mut st = f.lock();
    let Some(i) = st
        .runners
        .iter()
        .position(|r| r.id == id && r.scope == scope)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    if st.runners[i].busy {
        let name = st.runners[i].name.clone();
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Bad request - Runner \"{name}\" is still running a job"),
            None,
        );
    }
    st.runners.remove(i);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct ClaimBody {
    job_id: Option<u64>,
}

/// Fake-only: runner `id` comes online and takes job `job_id`, or else the first queued job in
/// its scope whose labels it all has. 404 without such a runner or job; 409 if it is busy.
pub(super) async fn fake_claim(
    State(f): State<FakeGitHub>,
    Path(id): Path<u64>,
    body: Option<Json<ClaimBody>>,
) -> Response {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let mut st = f.lock();
    st.calls.push(format!("POST /_fake/runners/{id}/claim"));
    let Some(r) = st.runners.iter().position(|r| r.id == id) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    if st.runners[r].busy {
        return error(StatusCode::CONFLICT, "The runner is already busy", None);
    }
    let runner = st.runners[r].clone();
    let in_scope = |j: &FakeJob| match runner.scope.split_once('/') {
        Some(("orgs", org)) => j.repo.split_once('/').is_some_and(|(o, _)| o == org),
        Some((_, repo)) => j.repo == repo,
        None => false,
    };
    let fits = |j: &FakeJob| {
        j.labels.iter().all(|l| {
            l.eq_ignore_ascii_case("self-hosted")
                || runner.labels.iter().any(|r| r.eq_ignore_ascii_case(l))
        })
    };
    let Some(j) = st.jobs.iter().position(|j| {
        j.status == "queued" && in_scope(j) && b.job_id.is_none_or(|want| j.id == want) && fits(j)
    }) else {
        return error(StatusCode::NOT_FOUND, "No queued job for this runner", None);
    };
    st.runners[r].online = true;
    st.runners[r].busy = true;
    let job = &mut st.jobs[j];
    job.status = "in_progress".into();
    job.runner_id = Some(runner.id);
    job.runner_name = Some(runner.name.clone());
    let job = job.clone();
    f.job_event(&mut st, "in_progress", &job);
    Json(job_json(&job)).into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct CompleteBody {
    conclusion: Option<String>,
}

/// Fake-only: runner `id` finishes its job with `conclusion` (default `success`) and, being
/// just-in-time, is deleted. 404 without such a runner; 409 if it holds no job.
pub(super) async fn fake_complete(
    State(f): State<FakeGitHub>,
    Path(id): Path<u64>,
    body: Option<Json<CompleteBody>>,
) -> Response {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let mut st = f.lock();
    st.calls.push(format!("POST /_fake/runners/{id}/complete"));
    if !st.runners.iter().any(|r| r.id == id) {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    }
    let Some(job) = st
        .jobs
        .iter_mut()
        .find(|j| j.runner_id == Some(id) && j.status == "in_progress")
    else {
        return error(StatusCode::CONFLICT, "The runner holds no job", None);
    };
    job.status = "completed".into();
    job.conclusion = Some(b.conclusion.unwrap_or_else(|| "success".into()));
    let job = job.clone();
    st.runners.retain(|r| r.id != id);
    f.job_event(&mut st, "completed", &job);
    Json(job_json(&job)).into_response()
}

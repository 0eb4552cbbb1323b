//! A fake GitHub for tests: a real HTTP server that keeps state and answers the REST calls
//! Gantry makes with GitHub's request and response shapes (comments list/create/edit, commit
//! statuses, pull requests). It checks the token, records every call, and can be told to fail
//! the next calls (403 secondary rate limit with `Retry-After`, or a 5xx). `git.rs` adds
//! repositories: git over smart HTTP, the contents API and pull request files; `actions.rs`
//! self-hosted runners (just-in-time registration, listing, deletion) and workflow jobs;
//! `runs.rs` workflow runs and repository lists; `hooks.rs` `workflow_job` webhook deliveries.
//! It listens on loopback, or on every interface (`start_on`) for runners in containers, which
//! reach it at its `public_url`.

mod actions;
mod git;
mod hooks;
mod runs;

pub use actions::{FakeJob, FakeRunner};
pub use hooks::{DeliveryOutcome, FakeDelivery, signature};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub id: u64,
    pub repo: String,
    pub number: u64,
    pub body: String,
    /// Every body the comment has had, first to last.
    pub history: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeStatus {
    pub repo: String,
    pub sha: String,
    pub context: String,
    pub state: String,
    pub description: String,
    pub target_url: Option<String>,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub comments: Vec<FakeComment>,
    pub statuses: Vec<FakeStatus>,
    /// (repo, number) → head sha.
    pub pulls: HashMap<(String, u64), String>,
    /// `METHOD path` of every call, in order.
    pub calls: Vec<String>,
    /// Failures to answer the next calls with: (status, Retry-After seconds).
    pub fail_next: VecDeque<(u16, Option<u64>)>,
    /// Installation tokens issued and still valid.
    pub installation_tokens: Vec<String>,
    /// The bodies of installation token requests (their `repositories` scope), in order.
    pub token_requests: Vec<Value>,
    /// Where bare repositories live (`OWNER/NAME.git`), if git is served.
    pub git_root: Option<std::path::PathBuf>,
    /// Repositories whose git wants a token.
    pub private_repos: std::collections::HashSet<String>,
    /// (repository, whether the request carried a valid token) of each git request.
    pub git_requests: Vec<(String, bool)>,
    /// (repo, number) → files the pull request changes.
    pub pull_files: HashMap<(String, u64), Vec<String>>,
    /// Self-hosted runners of every organization and repository.
    pub runners: Vec<FakeRunner>,
    /// Workflow jobs of every repository.
    pub jobs: Vec<FakeJob>,
    /// Repositories (`OWNER/NAME`), in the order they were added.
    pub repos: Vec<String>,
    /// Webhook deliveries, in the order they were queued.
    pub deliveries: Vec<FakeDelivery>,
    webhook: Option<hooks::Webhook>,
    drop_next: usize,
    personal_accounts: std::collections::HashSet<String>,
    /// The URL the fake answers on (`FakeGitHub::url`).
    base_url: String,
    /// The URL runners are told to call back on; `base_url` unless set.
    public_url: Option<String>,
    /// GitHub App mode: (app id, RS256 public key, installation id).
    app: Option<(String, jsonwebtoken::DecodingKey, u64)>,
    next_id: u64,
}

impl FakeState {
    /// The App installation, when the fake acts as GitHub for an App.
    fn installation_id(&self) -> Option<u64> {
        self.app.as_ref().map(|(_, _, id)| *id)
    }
}

#[derive(Clone)]
pub struct FakeGitHub {
    /// Where the fake answers (`http://127.0.0.1:PORT`, also when it listens on every
    /// interface).
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
    token: Arc<str>,
    /// Indexes into `FakeState::deliveries` of deliveries to send.
    hooks: tokio::sync::mpsc::UnboundedSender<usize>,
}

impl FakeGitHub {
    /// Starts the fake on a free loopback port; it accepts only `Bearer <token>`.
    pub async fn start(token: &str) -> FakeGitHub {
        FakeGitHub::start_on(token, std::net::Ipv4Addr::LOCALHOST.into()).await
    }

    /// Starts the fake on a free port of `ip`: `0.0.0.0` for runners in containers, which
    /// reach it through the Docker bridge (see `set_public_url`).
    pub async fn start_on(token: &str, ip: std::net::IpAddr) -> FakeGitHub {
        let state = Arc::new(Mutex::new(FakeState {
            next_id: 1000,
            ..Default::default()
        }));
        let (hooks, queue) = tokio::sync::mpsc::unbounded_channel();
        let fake = FakeGitHub {
            url: String::new(),
            state,
            token: Arc::from(token),
            hooks,
        };
        let app = Router::new()
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                get(list_comments).post(create_comment),
            )
            .route(
                "/repos/{owner}/{repo}/issues/comments/{id}",
                patch(edit_comment),
            )
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
            .route("/repos/{owner}/{repo}/pulls/{number}", get(get_pull))
            .route(
                "/repos/{owner}/{repo}/pulls/{number}/files",
                get(git::list_pull_files),
            )
            .route(
                "/repos/{owner}/{repo}/contents/{*path}",
                get(git::get_contents),
            )
            .route(
                "/git/{owner}/{repo}/{*rest}",
                get(git::git_http).post(git::git_http),
            )
            .route(
                "/orgs/{org}/actions/runners/generate-jitconfig",
                post(actions::org_jitconfig),
            )
            .route(
                "/repos/{owner}/{repo}/actions/runners/generate-jitconfig",
                post(actions::repo_jitconfig),
            )
            .route(
                "/orgs/{org}/actions/runners",
                get(actions::list_org_runners),
            )
            .route(
                "/repos/{owner}/{repo}/actions/runners",
                get(actions::list_repo_runners),
            )
            .route(
                "/orgs/{org}/actions/runners/{id}",
                delete(actions::delete_org_runner),
            )
            .route(
                "/repos/{owner}/{repo}/actions/runners/{id}",
                delete(actions::delete_repo_runner),
            )
            .route(
                "/repos/{owner}/{repo}/actions/jobs/{id}",
                get(actions::get_job),
            )
            .route("/repos/{owner}/{repo}/actions/runs", get(runs::list_runs))
            .route(
                "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
                get(runs::list_run_jobs),
            )
            .route("/orgs/{org}/repos", get(runs::list_org_repos))
            .route(
                "/installation/repositories",
                get(runs::list_installation_repos),
            )
            .route("/_fake/runners/{id}/claim", post(actions::fake_claim))
            .route("/_fake/runners/{id}/complete", post(actions::fake_complete))
            .route("/repos/{owner}/{repo}/installation", get(get_installation))
            .route("/orgs/{org}/installation", get(get_org_installation))
            .route(
                "/app/installations/{id}/access_tokens",
                post(create_installation_token),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind fake GitHub");
        let port = listener.local_addr().expect("address").port();
        let url = if ip.is_unspecified() {
            format!("http://127.0.0.1:{port}")
        } else {
            format!("http://{}", std::net::SocketAddr::new(ip, port))
        };
        fake.lock().base_url = url.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let fake = FakeGitHub { url, ..fake };
        hooks::start_sender(fake.clone(), queue);
        fake
    }

    /// The port the fake listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("a URL with a port")
    }

    /// The base URL JIT configs tell runners to call back on (`ServerUrl` in `.runner`), e.g.
    /// `http://172.17.0.1:PORT` for a runner in a container; the fake's own `url` by default.
    pub fn set_public_url(&self, url: &str) {
        self.lock().public_url = Some(url.trim_end_matches('/').to_string());
    }

    /// The base URL runners call back on.
    pub fn public_url(&self) -> String {
        let st = self.lock();
        st.public_url.clone().unwrap_or_else(|| st.base_url.clone())
    }

    /// Also act as GitHub for App `app_id`: JWTs signed with the key whose public half is
    /// `public_key_pem` buy tokens for installation `installation_id`.
    pub fn enable_app(&self, app_id: &str, public_key_pem: &str, installation_id: u64) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .expect("an RSA public key in PEM");
        self.lock().app = Some((app_id.to_string(), key, installation_id));
    }

    /// Invalidates every installation token issued so far (as if they expired).
    pub fn revoke_installation_tokens(&self) {
        self.lock().installation_tokens.clear();
    }

    /// Checks an App JWT: RS256 with the App's key, unexpired, issued by the App.
    fn admit_app(&self, headers: &HeaderMap, call: String) -> Result<u64, Box<Response>> {
        let mut st = self.lock();
        st.calls.push(call);
        let Some((app_id, key, installation)) = &st.app else {
            return Err(Box::new(error(StatusCode::NOT_FOUND, "Not Found", None)));
        };
        let jwt = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        validation.set_issuer(&[app_id.as_str()]);
        match jsonwebtoken::decode::<Value>(jwt, key, &validation) {
            Ok(_) => Ok(*installation),
            Err(e) => Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                &format!("A JSON web token could not be decoded ({e})"),
                None,
            ))),
        }
    }

    pub fn add_pull(&self, repo: &str, number: u64, head_sha: &str) {
        self.lock()
            .pulls
            .insert((repo.to_string(), number), head_sha.to_string());
    }

    /// The next call is answered with `status` (and `Retry-After`, if given).
    pub fn fail_next(&self, status: u16, retry_after: Option<u64>) {
        self.lock().fail_next.push_back((status, retry_after));
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call; answers it with an injected failure or a token error if due.
    fn admit(&self, headers: &HeaderMap, call: String) -> Option<Response> {
        let mut st = self.lock();
        st.calls.push(call);
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let known = given == &*self.token || st.installation_tokens.iter().any(|t| t == given);
        if !known {
            return Some(error(StatusCode::UNAUTHORIZED, "Bad credentials", None));
        }
        let (code, retry) = st.fail_next.pop_front()?;
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if code == 403 {
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        } else {
            "Server Error"
        };
        Some(error(status, message, retry))
    }
}

fn error(status: StatusCode, message: &str, retry_after: Option<u64>) -> Response {
    let body =
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"}));
    match retry_after {
        Some(s) => (status, [("retry-after", s.to_string())], body).into_response(),
        None => (status, body).into_response(),
    }
}

fn comment_json(c: &FakeComment) -> Value {
    json!({
        "id": c.id, "node_id": format!("IC_{}", c.id), "body": c.body,
        "html_url": format!("https://github.com/{}/pull/{}#issuecomment-{}", c.repo, c.number, c.id),
        "issue_url": format!("https://api.github.com/repos/{}/issues/{}", c.repo, c.number),
        "user": {"login": "gantry[bot]", "type": "Bot"},
        "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
        "author_association": "NONE"
    })
}

#[derive(Deserialize)]
struct Page {
    per_page: Option<usize>,
    page: Option<usize>,
}

impl Page {
    /// (items to skip, page size), as GitHub pages: 30 unless asked, at most 100.
    fn window(&self) -> (usize, usize) {
        let per = self.per_page.unwrap_or(30).min(100);
        ((self.page.unwrap_or(1).max(1) - 1) * per, per)
    }
}

async fn list_comments(
    State(f): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(p): Query<Page>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("GET /repos/{owner}/{repo}/issues/{number}/comments"),
    ) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    let (skip, per) = p.window();
    let st = f.lock();
    let list: Vec<Value> = st
        .comments
        .iter()
        .filter(|c| c.repo == full && c.number == number)
        .skip(skip)
        .take(per)
        .map(comment_json)
        .collect();
    Json(list).into_response()
}

#[derive(Deserialize)]
struct Body {
    body: Option<String>,
}

/// A comment body as GitHub validates it: present, and at most 65,536 characters.
fn comment_body(b: Body) -> Result<String, Box<Response>> {
    let Some(body) = b.body else {
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"body\" wasn't supplied.",
            None,
        )));
    };
    if body.chars().count() > 65_536 {
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: body is too long (maximum is 65536 characters)",
            None,
        )));
    }
    Ok(body)
}

async fn create_comment(
    State(f): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(b): Json<Body>,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("POST /repos/{owner}/{repo}/issues/{number}/comments"),
    ) {
        return r;
    }
    let body = match comment_body(b) {
        Ok(body) => body,
        Err(r) => return *r,
    };
    let mut st = f.lock();
    st.next_id += 1;
    let c = FakeComment {
        id: st.next_id,
        repo: format!("{owner}/{repo}"),
        number,
        body: body.clone(),
        history: vec![body],
    };
    let json = comment_json(&c);
    st.comments.push(c);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn edit_comment(
    State(f): State<FakeGitHub>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(b): Json<Body>,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("PATCH /repos/{owner}/{repo}/issues/comments/{id}"),
    ) {
        return r;
    }
    let body = match comment_body(b) {
        Ok(body) => body,
        Err(r) => return *r,
    };
    let mut st = f.lock();
    let full = format!("{owner}/{repo}");
    match st
        .comments
        .iter_mut()
        .find(|c| c.id == id && c.repo == full)
    {
        Some(c) => {
            c.body = body.clone();
            c.history.push(body);
            Json(comment_json(c)).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Not Found", None),
    }
}

#[derive(Deserialize)]
struct StatusBody {
    state: String,
    context: Option<String>,
    description: Option<String>,
    target_url: Option<String>,
}

async fn create_status(
    State(f): State<FakeGitHub>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(b): Json<StatusBody>,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("POST /repos/{owner}/{repo}/statuses/{sha}"),
    ) {
        return r;
    }
    if !["pending", "success", "failure", "error"].contains(&b.state.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: state is not included in the list",
            None,
        );
    }
    if b.description
        .as_deref()
        .is_some_and(|d| d.chars().count() > 140)
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: description is too long (maximum is 140 characters)",
            None,
        );
    }
    let status = FakeStatus {
        repo: format!("{owner}/{repo}"),
        sha: sha.clone(),
        context: b.context.unwrap_or_else(|| "default".into()),
        state: b.state,
        description: b.description.unwrap_or_default(),
        target_url: b.target_url,
    };
    let json = json!({"id": 1, "state": status.state, "context": status.context, "description": status.description, "target_url": status.target_url, "url": format!("https://api.github.com/repos/{owner}/{repo}/statuses/{sha}")});
    f.lock().statuses.push(status);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn get_pull(
    State(f): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("GET /repos/{owner}/{repo}/pulls/{number}"),
    ) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    match f.lock().pulls.get(&(full, number)) {
        Some(sha) => Json(json!({"number": number, "state": "open", "head": {"sha": sha, "ref": "feature"}, "base": {"ref": "main"}})).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found", None),
    }
}

async fn get_installation(
    State(f): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match f.admit_app(&headers, format!("GET /repos/{owner}/{repo}/installation")) {
        Ok(id) => {
            Json(json!({"id": id, "account": {"login": owner}, "repository_selection": "all"}))
                .into_response()
        }
        Err(r) => *r,
    }
}

async fn get_org_installation(
    State(f): State<FakeGitHub>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Response {
    match f.admit_app(&headers, format!("GET /orgs/{org}/installation")) {
        Ok(id) => Json(json!({"id": id, "account": {"login": org, "type": "Organization"}, "repository_selection": "all"}))
            .into_response(),
        Err(r) => *r,
    }
}

async fn create_installation_token(
    State(f): State<FakeGitHub>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let installation = match f.admit_app(
        &headers,
        format!("POST /app/installations/{id}/access_tokens"),
    ) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    if installation != id {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    }
    let mut st = f.lock();
    st.token_requests
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    st.next_id += 1;
    let token = format!("ghs_fake{}", st.next_id);
    st.installation_tokens.push(token.clone());
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    (StatusCode::CREATED, Json(json!({"token": token, "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "permissions": {"issues": "write", "statuses": "write"}}))).into_response()
}

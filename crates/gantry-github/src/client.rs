//! The GitHub REST client: token auth, a timeout on every call, retries with backoff on network
//! errors and 5xx, and waits on rate limits (`Retry-After`, or `x-ratelimit-reset` when the
//! remaining quota is 0) up to a bound.

use async_trait::async_trait;
use gantry_engine::ports::{CommitStatus, Forge, ForgeError};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// Every call gives up after this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per call (network errors, 5xx and rate limits are retried).
const ATTEMPTS: u32 = 4;
/// The longest a single rate-limit wait may be; longer limits fail the call as transient, and
/// the reporter tries again on its next pass.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct GitHub {
    http: reqwest::Client,
    base: String,
    auth: Arc<Auth>,
}

enum Auth {
    /// A personal access token (or any fixed token).
    Token(String),
    /// A GitHub App: a JWT signed with its key buys installation tokens, cached per repository.
    App {
        app_id: String,
        key: jsonwebtoken::EncodingKey,
        cache: tokio::sync::Mutex<HashMap<String, Installation>>,
    },
}

#[derive(Clone)]
struct Installation {
    id: u64,
    token: Option<(String, i64)>,
}

/// An installation token is renewed this long before it expires.
const TOKEN_RENEW_BEFORE_S: i64 = 300;

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("base", &self.base)
            .field("token", &"***")
            .finish()
    }
}

impl GitHub {
    /// `base` is the REST root (`https://api.github.com`, a GitHub Enterprise `…/api/v3`, or a
    /// fake); `token` a personal access token or installation token.
    pub fn new(base: &str, token: &str) -> Result<GitHub, ForgeError> {
        GitHub::build(base, Auth::Token(token.to_string()))
    }

    /// Authenticates as GitHub App `app_id` with its PEM private key.
    pub fn with_app(base: &str, app_id: &str, private_key_pem: &str) -> Result<GitHub, ForgeError> {
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|e| {
                ForgeError::Permanent(format!(
                    "the GitHub App private key is not an RSA PEM key: {e}"
                ))
            })?;
        GitHub::build(
            base,
            Auth::App {
                app_id: app_id.to_string(),
                key,
                cache: Default::default(),
            },
        )
    }

    fn build(base: &str, auth: Auth) -> Result<GitHub, ForgeError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent("gantry")
            .build()
            .map_err(|e| ForgeError::Permanent(format!("cannot build the HTTP client: {e}")))?;
        Ok(GitHub {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth: Arc::new(auth),
        })
    }

    /// Authenticated as a GitHub App (installation tokens), not with a fixed token.
    pub(crate) fn uses_app(&self) -> bool {
        matches!(*self.auth, Auth::App { .. })
    }

    /// A JWT for the App itself (valid 9 minutes, back-dated a minute for clock drift).
    fn app_jwt(app_id: &str, key: &jsonwebtoken::EncodingKey) -> Result<String, ForgeError> {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iat": now - 60, "exp": now + 540, "iss": app_id});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            key,
        )
        .map_err(|e| ForgeError::Permanent(format!("cannot sign the GitHub App JWT: {e}")))
    }

    /// The bearer token for calls about `repo`: an `OWNER/NAME` repository, or an organization
    /// (a name without a slash) for its organization-wide calls (self-hosted runners).
    async fn bearer(&self, repo: &str) -> Result<String, ForgeError> {
        let (app_id, key, cache) = match &*self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::App { app_id, key, cache } => (app_id, key, cache),
        };
        let now = chrono::Utc::now().timestamp();
        let mut cache = cache.lock().await;
        if let Some(Installation {
            token: Some((t, exp)),
            ..
        }) = cache.get(repo)
            && *exp - TOKEN_RENEW_BEFORE_S > now
        {
            return Ok(t.clone());
        }
        let jwt = GitHub::app_jwt(app_id, key)?;
        let (installation, scope) = match repo.split_once('/') {
            // Scoped to the one repository: a token handed to a checkout reaches nothing else.
            Some((_, name)) => (
                format!("/repos/{repo}/installation"),
                json!({ "repositories": [name] }),
            ),
            // An organization's token may only manage its self-hosted runners.
            None => (
                format!("/orgs/{repo}/installation"),
                json!({ "permissions": { "organization_self_hosted_runners": "write" } }),
            ),
        };
        let id = match cache.get(repo) {
            Some(i) => i.id,
            None => {
                let inst = self.call_as(&jwt, Method::GET, &installation, None).await?;
                inst["id"].as_u64().ok_or_else(|| {
                    ForgeError::Permanent(format!("the App is not installed on {repo}"))
                })?
            }
        };
        let tok = self
            .call_as(
                &jwt,
                Method::POST,
                &format!("/app/installations/{id}/access_tokens"),
                Some(&scope),
            )
            .await?;
        let token = tok["token"]
            .as_str()
            .ok_or_else(|| ForgeError::Permanent("GitHub returned no installation token".into()))?
            .to_string();
        let expires = tok["expires_at"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map_or(now + 3600, |t| t.timestamp());
        cache.insert(
            repo.to_string(),
            Installation {
                id,
                token: Some((token.clone(), expires)),
            },
        );
        Ok(token)
    }

    /// Forgets a repository's installation token (after GitHub rejected it).
    async fn forget(&self, repo: &str) {
        if let Auth::App { cache, .. } = &*self.auth
            && let Some(i) = cache.lock().await.get_mut(repo)
        {
            i.token = None;
        }
    }

    /// A call about `repo` (or an organization, see `bearer`); with App auth, a rejected (401)
    /// installation token is renewed once.
    pub(crate) async fn call(
        &self,
        repo: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ForgeError> {
        let bearer = self.bearer(repo).await?;
        match self.call_as(&bearer, method.clone(), path, body).await {
            Err(ForgeError::Permanent(m))
                if m.contains(" 401 ") && matches!(*self.auth, Auth::App { .. }) =>
            {
                self.forget(repo).await;
                let bearer = self.bearer(repo).await?;
                self.call_as(&bearer, method, path, body).await
            }
            other => other,
        }
    }

    async fn call_as(
        &self,
        bearer: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ForgeError> {
        let mut backoff = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(bearer)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{method} {path}: {}", without_url(&e));
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp.json::<Value>().await.unwrap_or(Value::Null));
            }
            let wait = rate_limit_wait(&resp);
            let message = resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_default();
            last = format!("{method} {path}: {status} {message}");
            match (status, wait) {
                (StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS, Some(w))
                    if w <= MAX_RATE_LIMIT_WAIT =>
                {
                    warn!(%status, wait_ms = w.as_millis() as u64, attempt, "GitHub rate limit; waiting");
                    tokio::time::sleep(w).await;
                }
                (StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS, Some(_)) => {
                    return Err(ForgeError::Transient(last));
                }
                (s, _) if s.is_server_error() => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                (StatusCode::NOT_FOUND, _) => return Err(ForgeError::NotFound(last)),
                _ => return Err(ForgeError::Permanent(last)),
            }
        }
        Err(ForgeError::Transient(last))
    }
}

/// How long GitHub asks us to wait: `Retry-After` (seconds), or until `x-ratelimit-reset` when
/// `x-ratelimit-remaining` is 0. `None` when the response is not a rate limit.
fn rate_limit_wait(resp: &reqwest::Response) -> Option<Duration> {
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(secs) = h("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    if h("x-ratelimit-remaining") == Some(0) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return h("x-ratelimit-reset")
            .map(|reset| Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    None
}

/// reqwest errors print the URL; keep only what went wrong.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    kind.to_string()
}

#[async_trait]
impl Forge for GitHub {
    async fn find_comment(
        &self,
        repo: &str,
        number: u64,
        marker: &str,
    ) -> Result<Option<u64>, ForgeError> {
        for page in 1..=50 {
            let list = self
                .call(
                    repo,
                    Method::GET,
                    &format!("/repos/{repo}/issues/{number}/comments?per_page=100&page={page}"),
                    None,
                )
                .await?;
            let items = list.as_array().cloned().unwrap_or_default();
            if let Some(c) = items
                .iter()
                .find(|c| c["body"].as_str().is_some_and(|b| b.contains(marker)))
            {
                return Ok(c["id"].as_u64());
            }
            if items.len() < 100 {
                break;
            }
        }
        Ok(None)
    }

    async fn create_comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError> {
        let c = self
            .call(
                repo,
                Method::POST,
                &format!("/repos/{repo}/issues/{number}/comments"),
                Some(&json!({"body": body})),
            )
            .await?;
        c["id"]
            .as_u64()
            .ok_or_else(|| ForgeError::Permanent("GitHub returned a comment without an id".into()))
    }

    async fn edit_comment(
        &self,
        repo: &str,
        comment_id: u64,
        body: &str,
    ) -> Result<(), ForgeError> {
        self.call(
            repo,
            Method::PATCH,
            &format!("/repos/{repo}/issues/comments/{comment_id}"),
            Some(&json!({"body": body})),
        )
        .await
        .map(|_| ())
    }

    async fn set_status(&self, repo: &str, s: &CommitStatus) -> Result<(), ForgeError> {
        let mut body = json!({"state": s.state.as_str(), "context": s.context, "description": truncate(&s.description, 140)});
        if let Some(url) = &s.target_url {
            body["target_url"] = json!(url);
        }
        self.call(
            repo,
            Method::POST,
            &format!("/repos/{repo}/statuses/{}", s.sha),
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    async fn pr_head_sha(&self, repo: &str, number: u64) -> Result<String, ForgeError> {
        let pr = self
            .call(
                repo,
                Method::GET,
                &format!("/repos/{repo}/pulls/{number}"),
                None,
            )
            .await?;
        pr["head"]["sha"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                ForgeError::Permanent(format!("pull request {repo}#{number} has no head sha"))
            })
    }

    async fn file_at(
        &self,
        repo: &str,
        path: &str,
        sha: &str,
    ) -> Result<Option<Vec<u8>>, ForgeError> {
        use base64::Engine as _;
        let url = format!("/repos/{repo}/contents/{path}?ref={sha}");
        let file = match self.call(repo, Method::GET, &url, None).await {
            // GitHub answers 404 both for a missing file and for a missing commit; only the
            // first means "no such file".
            Err(ForgeError::NotFound(m)) if !m.contains("No commit found") => return Ok(None),
            other => other?,
        };
        if file["type"].as_str() != Some("file") {
            return Ok(None);
        }
        match file["encoding"].as_str() {
            Some("base64") => {
                let text: String = file["content"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(Some)
                    .map_err(|e| {
                        ForgeError::Permanent(format!("{path}: bad base64 from GitHub: {e}"))
                    })
            }
            other => Err(ForgeError::Permanent(format!(
                "{path} at {sha} cannot be read through the contents API (encoding {}): is it larger than 1 MB?",
                other.unwrap_or("none")
            ))),
        }
    }

    async fn pull_request_files(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError> {
        let mut files = Vec::new();
        for page in 1..=MAX_PR_FILES_PAGES {
            let list = self
                .call(
                    repo,
                    Method::GET,
                    &format!("/repos/{repo}/pulls/{number}/files?per_page=100&page={page}"),
                    None,
                )
                .await?;
            let items = list.as_array().cloned().unwrap_or_default();
            for f in &items {
                for key in ["filename", "previous_filename"] {
                    if let Some(name) = f[key].as_str() {
                        files.push(name.to_string());
                    }
                }
            }
            if items.len() < 100 {
                break;
            }
        }
        Ok(files)
    }

    async fn git_token(&self, repo: &str) -> Result<Option<String>, ForgeError> {
        self.bearer(repo).await.map(Some)
    }
}

/// The most files GitHub lists for a pull request (30 pages of 100).
const MAX_PR_FILES_PAGES: u32 = 30;

/// GitHub rejects status descriptions over 140 characters.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars()
            .take(max - 1)
            .chain(std::iter::once('…'))
            .collect()
    }
}

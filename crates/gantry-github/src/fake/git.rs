//! The fake GitHub's repositories: bare git repositories under one folder, served over git's
//! smart HTTP protocol (through `git http-backend`, as a real git server would) at
//! `/git/OWNER/NAME.git`, and read through the contents API. Private repositories want
//! `Authorization: Basic` with `x-access-token:<token>`, as github.com does.

use super::{FakeGitHub, Page, error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

impl FakeGitHub {
    /// Serves the bare repositories under `root` (as `root/OWNER/NAME.git`).
    pub fn serve_git(&self, root: &std::path::Path) {
        self.lock().git_root = Some(root.to_path_buf());
    }

    /// `OWNER/NAME`'s git needs a token.
    pub fn make_private(&self, repo: &str) {
        self.lock().private_repos.insert(repo.to_string());
    }

    /// The files pull request `number` changes, as `GET …/pulls/{n}/files` lists them.
    pub fn set_pull_files(&self, repo: &str, number: u64, files: &[&str]) {
        self.lock().pull_files.insert(
            (repo.to_string(), number),
            files.iter().map(|f| f.to_string()).collect(),
        );
    }

    /// The clone URL of `OWNER/NAME`.
    pub fn clone_url(&self, repo: &str) -> String {
        format!("{}/git/{repo}.git", self.url)
    }

    fn repo_dir(&self, owner: &str, name: &str) -> Option<std::path::PathBuf> {
        let root = self.lock().git_root.clone()?;
        let dir = root.join(owner).join(format!("{name}.git"));
        dir.is_dir().then_some(dir)
    }

    /// `Basic x-access-token:<token>` (any user name) with a token this fake issued.
    fn git_authorized(&self, headers: &HeaderMap) -> bool {
        let Some(basic) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&decoded);
        let token = text.split_once(':').map_or("", |(_, t)| t);
        let st = self.lock();
        token == &*self.token || st.installation_tokens.iter().any(|t| t == token)
    }
}

#[derive(Deserialize)]
pub(super) struct RefQuery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

/// `GET /repos/{owner}/{repo}/contents/{path}?ref=`: a file, base64 in lines of 60 as GitHub
/// sends it; 404 when the repository, the commit or the path does not exist.
pub(super) async fn get_contents(
    State(f): State<FakeGitHub>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(q): Query<RefQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("GET /repos/{owner}/{repo}/contents/{path}"),
    ) {
        return r;
    }
    let Some(dir) = f.repo_dir(&owner, &repo) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let git_ref = q.git_ref.unwrap_or_else(|| "HEAD".into());
    let commit = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(&dir)
        .args(["cat-file", "-e", &format!("{git_ref}^{{commit}}")])
        .status()
        .await;
    if !commit.is_ok_and(|s| s.success()) {
        let msg = format!("No commit found for the ref {git_ref}");
        return error(StatusCode::NOT_FOUND, &msg, None);
    }
    let out = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(&dir)
        .args(["cat-file", "blob", &format!("{git_ref}:{path}")])
        .output()
        .await;
    let Ok(out) = out else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    if !out.status.success() {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&out.stdout);
    let content: String = b64
        .as_bytes()
        .chunks(60)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect();
    let name = path.rsplit('/').next().unwrap_or(&path).to_string();
    Json(json!({
        "type": "file", "encoding": "base64", "size": out.stdout.len(),
        "name": name, "path": path, "content": content,
        "sha": "0000000000000000000000000000000000000000",
        "url": format!("https://api.github.com/repos/{owner}/{repo}/contents/{path}?ref={git_ref}"),
    }))
    .into_response()
}

/// `GET /repos/{owner}/{repo}/pulls/{number}/files`, paginated.
pub(super) async fn list_pull_files(
    State(f): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(p): Query<Page>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = f.admit(
        &headers,
        format!("GET /repos/{owner}/{repo}/pulls/{number}/files"),
    ) {
        return r;
    }
    let (skip, per) = p.window();
    let st = f.lock();
    let Some(files) = st.pull_files.get(&(format!("{owner}/{repo}"), number)) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let page: Vec<_> = files
        .iter()
        .skip(skip)
        .take(per)
        .map(|name| json!({"filename": name, "status": "modified", "additions": 1, "deletions": 0, "changes": 1}))
        .collect();
    Json(page).into_response()
}

/// Git's smart HTTP for `/git/{owner}/{repo}.git/...`, through `git http-backend` (CGI).
pub(super) async fn git_http(
    State(f): State<FakeGitHub>,
    Path((owner, repo, rest)): Path<(String, String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = repo.trim_end_matches(".git").to_string();
    let full = format!("{owner}/{name}");
    let authorized = f.git_authorized(&headers);
    {
        let mut st = f.lock();
        st.calls.push(format!("GIT {method} /{full}/{rest}"));
        st.git_requests.push((full.clone(), authorized));
        if st.private_repos.contains(&full) && !authorized {
            return (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", "Basic realm=\"GitHub\"")],
                "Invalid username or token.",
            )
                .into_response();
        }
    }
    let root = f.lock().git_root.clone();
    let (Some(_), Some(root)) = (f.repo_dir(&owner, &name), root) else {
        return (StatusCode::NOT_FOUND, "Repository not found.").into_response();
    };
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{owner}/{name}.git/{rest}"))
        .env("REQUEST_METHOD", method.as_str())
        .env("QUERY_STRING", query.unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot run git").into_response();
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let Ok(out) = child.wait_with_output().await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "git failed").into_response();
    };
    let _ = writer.await;
    cgi_response(&out.stdout)
}

/// A CGI answer (headers, blank line, body) as an HTTP response.
fn cgi_response(out: &[u8]) -> Response {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            out.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((end, body_at)) = split else {
        return (StatusCode::BAD_GATEWAY, "bad CGI output").into_response();
    };
    let mut status = StatusCode::OK;
    let mut builder = Response::builder();
    for line in String::from_utf8_lossy(&out[..end]).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("status") {
            status = v
                .split(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::OK);
        } else {
            builder = builder.header(k, v);
        }
    }
    builder
        .status(status)
        .body(axum::body::Body::from(out[body_at..].to_vec()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

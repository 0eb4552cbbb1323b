//! `/deploys`: the deployer's sessions, deployments or test sessions (`?kind=test`), newest
//! first, a page at a time, filtered by status as `GET /deployments?status=` is;
//! `/deploys/{id}`: one session (status, repository, branch, commit, stack or function,
//! IaC type, error), its timestamped log lines, deployed resources, outputs and test results.
//! The data is `server::deployments::{sessions, session}`'s, as the deployer's API shows it.
//! In a build without the deployer (no `aws` feature) the pages say so, with the API's 501.

use super::page::{self, Page};
use super::run::segment;
use super::runs::short_time;
use super::session::Session;
use crate::server::{AppState, deployments as api};
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

/// Sessions on one page.
const PAGE_SIZE: u32 = 50;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time as the dashboard shows it (UTC, to the second).
fn short(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| short_time(t.timestamp_millis()))
        .unwrap_or_else(|_| at.to_string())
}

/// The page for a build without the deployer.
fn unavailable() -> Response {
    page::error(
        StatusCode::NOT_IMPLEMENTED,
        "Not available",
        "Deployments are not available in this build of Gantry: it was built without the deployer (the `aws` feature).",
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// `deploy` (default) or `test`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    /// The last session of the page before.
    #[serde(default)]
    pub after: String,
    /// Sessions on a page (1 to 100).
    #[serde(default)]
    pub limit: String,
}

/// One session in the list.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub path: String,
    pub status: String,
    pub repository: String,
    pub branch: String,
    pub commit: String,
    /// The stack, or a test's function.
    pub target: String,
    pub iac_type: String,
    pub region: String,
    pub created: String,
    pub created_short: String,
}

impl Row {
    fn of(v: &Value) -> Row {
        let id = text(&v["sessionId"]);
        let target = match text(&v["stackName"]) {
            s if s.is_empty() => text(&v["functionName"]),
            s => s,
        };
        let created = text(&v["createdAt"]);
        Row {
            path: segment(&id),
            id,
            status: text(&v["status"]),
            repository: text(&v["repository"]),
            branch: text(&v["branch"]),
            commit: text(&v["commit"]).chars().take(12).collect(),
            target,
            iac_type: text(&v["iacType"]),
            region: text(&v["region"]),
            created_short: short(&created),
            created,
        }
    }
}

#[derive(Template)]
#[template(path = "deploys.html")]
struct DeploysPage {
    page: Page,
    tests: bool,
    status: String,
    statuses: &'static [&'static str],
    rows: Vec<Row>,
    /// The query of the next page, if there is one.
    older: Option<String>,
    first: bool,
    /// The query of the first page (the filters).
    newest: String,
}

/// A query string of these filters (empty ones left out).
fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
    }
}

/// `GET /deploys?kind=&status=&after=`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(f): Query<Filter>,
) -> Response {
    if state.deployer.is_none() {
        return unavailable();
    }
    let kind = match f.kind.as_str() {
        "" | "deploy" => "deploy",
        "test" => "test",
        _ => return page::bad_request("The kind is `deploy` or `test`."),
    };
    let limit = match f.limit.as_str() {
        "" => PAGE_SIZE,
        n => match n.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return page::bad_request("The limit is a whole number from 1 to 100."),
        },
    };
    let status = (!f.status.is_empty()).then_some(f.status.as_str());
    let after = (!f.after.is_empty()).then_some(f.after.as_str());
    let (items, next) = match api::sessions(&state, kind, status, after, limit).await {
        Ok(page) => page,
        Err(e) => return page::from_api(e),
    };
    let kind_q = if kind == "test" { "test" } else { "" };
    let limit_q = if f.limit.is_empty() { "" } else { &f.limit };
    page::render(
        StatusCode::OK,
        &DeploysPage {
            page: Page::new(
                if kind == "test" {
                    "Test sessions"
                } else {
                    "Deployments"
                },
                "/deploys",
                &session.csrf,
            ),
            tests: kind == "test",
            status: f.status.clone(),
            statuses: &api::STATUSES,
            rows: items.iter().map(Row::of).collect(),
            older: next.map(|n| {
                query(&[
                    ("kind", kind_q),
                    ("status", &f.status),
                    ("limit", limit_q),
                    ("after", &n),
                ])
            }),
            first: after.is_none(),
            newest: query(&[("kind", kind_q), ("status", &f.status), ("limit", limit_q)]),
        },
    )
}

/// One log line.
#[derive(Debug)]
pub struct LogLine {
    pub at: String,
    pub at_short: String,
    pub message: String,
}

/// The rows of `v` (an array of objects): each row's cells are the fields `columns`.
fn table(v: &Value, columns: &[&str]) -> Vec<Vec<String>> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|item| columns.iter().map(|c| text(&item[*c])).collect())
        .collect()
}

#[derive(Template)]
#[template(path = "deploy.html")]
struct DeployPage {
    page: Page,
    s: Row,
    tests: bool,
    error: String,
    logs: Vec<LogLine>,
    /// Logical id, type, physical id.
    resources: Vec<Vec<String>>,
    outputs: Vec<(String, String)>,
    /// Name, resource, type, status, duration, error.
    results: Vec<Vec<String>>,
}

/// The session page of `v` (`deploy` or `test` as `kind`).
fn session_page(session: &Session, kind: &str, v: &Value) -> DeployPage {
    let s = Row::of(v);
    let tests = kind == "test";
    DeployPage {
        page: Page::new(
            format!(
                "{} {}",
                if tests { "Test session" } else { "Deployment" },
                s.id
            ),
            "/deploys",
            &session.csrf,
        ),
        tests,
        error: text(&v["error"]),
        logs: v["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let at = text(&l["timestamp"]);
                LogLine {
                    at_short: short(&at),
                    at,
                    message: text(&l["message"]),
                }
            })
            .collect(),
        resources: table(
            &v["deployedResources"],
            &["logicalId", "type", "physicalId"],
        ),
        outputs: v["outputs"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, val)| (k.clone(), text(val)))
            .collect(),
        results: table(
            &v["testResults"],
            &["name", "resource", "type", "status", "durationMs", "error"],
        ),
        s,
    }
}

/// `GET /deploys/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    if state.deployer.is_none() {
        return unavailable();
    }
    match api::session(&state, &id).await {
        Ok(Some((kind, v))) => page::render(StatusCode::OK, &session_page(&session, &kind, &v)),
        Ok(None) => page::not_found("There is no such deployment or test session."),
        Err(e) => page::from_api(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::Template;
    use serde_json::json;

    #[test]
    fn a_session_shows_its_resources_outputs_results_and_logs_escaped() {
        let v = json!({
            "sessionId": "01S", "status": "succeeded", "repository": "https://x/acme/app.git",
            "branch": "main", "commit": "0123456789abcdef", "stackName": "app",
            "createdAt": "2026-01-02T03:04:05.000Z", "error": null, "iacType": "sam",
            "deployedResources": [{"type": "AWS::Lambda::Function", "logicalId": "Hello",
                                   "physicalId": "<script>x</script>"}],
            "outputs": {"HelloArn": "arn:aws:lambda:<b>"},
            "logs": [{"timestamp": "2026-01-02T03:04:06.000Z", "message": "deploying <now>"}],
        });
        let session = Session { csrf: "c".into() };
        let html = session_page(&session, "deploy", &v).render().unwrap();
        assert!(
            html.contains("Deployment <span class=\"id\">01S</span>"),
            "{html}"
        );
        assert!(html.contains("AWS::Lambda::Function") && html.contains("HelloArn"));
        assert!(html.contains("&#60;script&#62;x") && !html.contains("<script>x"));
        assert!(html.contains("deploying &#60;now&#62;"), "{html}");
        assert!(html.contains("2026-01-02 03:04:06"));
        assert!(html.contains("0123456789ab") && !html.contains("0123456789abc"));

        let t = json!({"sessionId": "01T", "status": "failed", "functionName": "fn",
            "error": "1 of 1 failed", "testResults": [{"name": "invoke", "resource": "fn",
            "type": "lambda", "status": "failed", "durationMs": 12, "error": "boom"}]});
        let html = session_page(&session, "test", &t).render().unwrap();
        assert!(
            html.contains("Test session") && html.contains("boom"),
            "{html}"
        );
        assert!(html.contains("1 of 1 failed"));
    }

    #[test]
    fn queries_keep_only_the_filters_given() {
        assert_eq!(query(&[("kind", ""), ("status", "")]), "");
        assert_eq!(
            query(&[("kind", "test"), ("status", "failed"), ("after", "01X")]),
            "?kind=test&status=failed&after=01X"
        );
    }
}

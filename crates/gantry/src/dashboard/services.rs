//! `/services`: each configured service (image, port, target group), whether it runs, its
//! tasks (container, private address, target health) and its last step; `/services/{name}`:
//! one service with its tasks and its audit trail (every start and stop step). Start and stop
//! buttons are forms (CSRF token) calling what `POST /api/v1/services/{name}/start|stop` call
//! (`server::services::{start_one, stop_one}`); a failed start or stop comes back on the
//! service's page with the step that failed. The data is `ServiceManager::list`'s, as
//! `GET /api/v1/services` shows it.

use super::page::{self, Page};
use super::run::segment;
use super::runs::short_time;
use super::session::{CsrfForm, Session, csrf_refusal};
use crate::server::{AppState, services as api};
use crate::view::AuditView;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde_json::Value;

/// Steps shown per service on the list.
const LAST_STEPS: usize = 1;
/// Steps shown on a service's page (the newest).
const MOST_STEPS: usize = 200;

/// One task of a service: a container registered in the service's target group.
#[derive(Debug)]
pub struct TaskRow {
    pub task_id: String,
    pub address: String,
    pub target_group: String,
    pub health: String,
    pub started: String,
}

/// One step of a service's audit trail.
#[derive(Debug)]
pub struct StepRow {
    pub at: String,
    pub at_short: String,
    pub task: String,
    pub step: String,
    pub note: String,
}

impl StepRow {
    fn of(a: &AuditView) -> StepRow {
        let at_short = chrono::DateTime::parse_from_rfc3339(&a.at)
            .map(|t| short_time(t.timestamp_millis()))
            .unwrap_or_else(|_| a.at.clone());
        StepRow {
            at: a.at.clone(),
            at_short,
            task: a.job.clone().unwrap_or_default(),
            step: a.to.clone(),
            note: a.note.clone().unwrap_or_default(),
        }
    }
}

/// One service.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub path: String,
    pub image: String,
    pub port: String,
    pub target_group: String,
    /// `running` (some task) or `stopped`.
    pub state: &'static str,
    pub tasks: Vec<TaskRow>,
    /// The newest steps first.
    pub steps: Vec<StepRow>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Row {
    /// A service as `ServiceManager::list` gives it.
    fn of(s: &Value) -> Row {
        let tasks: Vec<TaskRow> = s["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| TaskRow {
                task_id: text(&t["task_id"]),
                address: format!("{}:{}", text(&t["private_ip"]), text(&t["port"])),
                target_group: text(&t["target_group"]),
                health: text(&t["health"]),
                started: t["started_at_ms"]
                    .as_i64()
                    .map(short_time)
                    .unwrap_or_default(),
            })
            .collect();
        let name = text(&s["name"]);
        Row {
            path: segment(&name),
            name,
            image: text(&s["image"]),
            port: text(&s["port"]),
            target_group: text(&s["target_group"]),
            state: if tasks.is_empty() {
                "stopped"
            } else {
                "running"
            },
            tasks,
            steps: Vec::new(),
        }
    }
}

/// A page that ends a request early (boxed: a response is large).
type Early = Box<Response>;

/// Every service (or only `only`), with its newest `steps` steps; `None` when no services
/// are configured.
async fn rows(
    state: &AppState,
    only: Option<&str>,
    steps: usize,
) -> Result<Option<Vec<Row>>, Early> {
    let Ok(m) = api::manager(state) else {
        return Ok(None);
    };
    let listed = m.list().await;
    let mut out = Vec::new();
    for s in listed["services"].as_array().into_iter().flatten() {
        if only.is_some_and(|name| s["name"] != name) {
            continue;
        }
        let mut row = Row::of(s);
        let trail = api::trail(state, &row.name)
            .await
            .map_err(|e| Box::new(page::from_api(e)))?;
        row.steps = trail.iter().rev().take(steps).map(StepRow::of).collect();
        out.push(row);
    }
    Ok(Some(out))
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    page: Page,
    /// `None`: no services are configured.
    rows: Option<Vec<Row>>,
}

/// `GET /services`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let rows = match rows(&state, None, LAST_STEPS).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    page::render(
        StatusCode::OK,
        &ServicesPage {
            page: Page::new("Services", "/services", &session.csrf),
            rows,
        },
    )
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    page: Page,
    s: Row,
    /// What the last start or stop said (a failure's step and reason).
    error: String,
}

/// Service `name`'s page with `status` and `error`, or the 404 page.
async fn service_page(
    state: &AppState,
    session: &Session,
    name: &str,
    status: StatusCode,
    error: String,
) -> Response {
    let all = match rows(state, Some(name), MOST_STEPS).await {
        Ok(r) => r.unwrap_or_default(),
        Err(page) => return *page,
    };
    let Some(s) = all.into_iter().find(|r| r.name == name) else {
        return page::not_found("There is no such service.");
    };
    page::render(
        status,
        &ServicePage {
            page: Page::new(format!("Service {name}"), "/services", &session.csrf),
            s,
            error,
        },
    )
}

/// `GET /services/{name}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    service_page(&state, &session, &name, StatusCode::OK, String::new()).await
}

/// Start or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Stop,
}

async fn act(
    state: &AppState,
    session: &Session,
    name: &str,
    form: &CsrfForm,
    action: Action,
) -> Response {
    if let Some(refused) = csrf_refusal(session, form.csrf.as_deref()) {
        return refused;
    }
    let m = match api::manager(state) {
        Ok(m) => m,
        Err(_) => return page::not_found("No services are configured on this server."),
    };
    if api::known(m, name).is_err() {
        return page::not_found("There is no such service.");
    }
    let done = match action {
        Action::Start => api::start_one(m, name, &Value::Null).await,
        Action::Stop => api::stop_one(m, name).await,
    };
    match done {
        Ok(_) => Redirect::to(&format!("/services/{}", segment(name))).into_response(),
        Err(e) => service_page(state, session, name, e.status, e.message).await,
    }
}

/// `POST /services/{name}/start`.
pub async fn start(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    act(&state, &session, &name, &form, Action::Start).await
}

/// `POST /services/{name}/stop`.
pub async fn stop(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    act(&state, &session, &name, &form, Action::Stop).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_service_runs_while_it_has_tasks() {
        let s = json!({"name": "auth", "image": "img", "port": 8080, "target_group": "tg",
            "tasks": [{"task_id": "abc", "private_ip": "10.0.0.2", "port": 8080,
                       "target_group": "tg", "started_at_ms": 0, "health": "healthy"}]});
        let r = super::Row::of(&s);
        assert_eq!(r.state, "running");
        assert_eq!(r.tasks[0].address, "10.0.0.2:8080");
        assert_eq!(r.tasks[0].health, "healthy");
        let idle = super::Row::of(&json!({"name": "x", "tasks": []}));
        assert_eq!((idle.state, idle.port.as_str()), ("stopped", ""));
    }
}

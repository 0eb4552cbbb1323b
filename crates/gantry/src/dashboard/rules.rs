//! `/rules`: the event bus's rules (name, pattern or schedule, target, enabled); `/rules/new`
//! and `/rules/{name}`, whose forms create and change a rule through the same checks as the
//! API (`Bus::put`: a refused rule comes back on the page with the server's reasons, status
//! 422, and what was typed); a delete form; and a form that tests the rule's pattern against
//! an event with the bus's own matcher (`gantry_core::bus::pattern::Pattern`); `/rules/new/check`
//! checks a pattern for the form's hints as you type.

use super::page::{self, Page};
use super::run::segment;
use super::runs::short_time;
use super::session::{CsrfForm, Session, csrf_refusal};
use crate::server::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use gantry_core::bus::pattern::Pattern;
use gantry_core::bus::rule::RuleDef;
use gantry_engine::bus::{Bus, BusError};
use gantry_engine::ports::RuleRecord;
use serde::Deserialize;
use serde_json::{Value, json};

/// A page that ends a request early (boxed: a response is large).
type Early = Box<Response>;

fn bus_of(state: &AppState) -> Result<&Bus, Early> {
    state.bus.as_ref().ok_or_else(|| {
        Box::new(page::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not available",
            "The event bus is not running on this server.",
        ))
    })
}

/// One row of the list.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub path: String,
    /// The pattern (compact JSON) or `schedule …`.
    pub trigger: String,
    pub target: String,
    pub enabled: bool,
    pub origin: String,
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Row {
    fn of(def: &RuleDef, rec: &RuleRecord) -> Row {
        let trigger = match (&def.pattern, &def.schedule) {
            (Some(p), _) => compact(p),
            (None, Some(s)) => format!("schedule {s}"),
            (None, None) => String::new(),
        };
        Row {
            name: def.name.clone(),
            path: segment(&def.name),
            trigger,
            target: compact(&def.target),
            enabled: def.enabled,
            origin: rec.origin.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    page: Page,
    rows: Vec<Row>,
}

/// `GET /rules`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let bus = match bus_of(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let rows = bus.list().iter().map(|(d, r)| Row::of(d, r)).collect();
    page::render(
        StatusCode::OK,
        &RulesPage {
            page: Page::new("Rules", "/rules", &session.csrf),
            rows,
        },
    )
}

/// What the rule form holds (as typed, when the server refused it).
#[derive(Debug, Default, Deserialize)]
pub struct RuleForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub pattern: String,
    #[serde(default)]
    pub target: String,
    /// A checkbox: present when ticked.
    pub enabled: Option<String>,
}

/// The form's fields for a stored rule.
fn form_of(def: &RuleDef) -> RuleForm {
    RuleForm {
        csrf: None,
        name: def.name.clone(),
        pattern: def
            .pattern
            .as_ref()
            .and_then(|p| serde_json::to_string_pretty(p).ok())
            .unwrap_or_default(),
        target: serde_json::to_string_pretty(&def.target).unwrap_or_default(),
        enabled: def.enabled.then(|| "on".to_string()),
    }
}

/// The rule the form describes, over `base` (what an edit keeps: schedule, inputs, retries).
fn def_of(form: &RuleForm, base: Option<&RuleDef>) -> Result<RuleDef, String> {
    let mut v = base
        .and_then(|b| serde_json::to_value(b).ok())
        .unwrap_or_else(|| json!({}));
    let mut problems = Vec::new();
    v["name"] = json!(form.name.trim());
    match form.pattern.trim() {
        "" => {
            if let Value::Object(o) = &mut v {
                o.remove("pattern");
            }
        }
        text => match serde_json::from_str::<Value>(text) {
            Ok(p) => v["pattern"] = p,
            Err(e) => problems.push(format!("pattern: not JSON: {e}")),
        },
    }
    match serde_json::from_str::<Value>(form.target.trim()) {
        Ok(t) => v["target"] = t,
        Err(e) => problems.push(format!("target: not JSON: {e}")),
    }
    v["enabled"] = json!(form.enabled.is_some());
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// A refusal of the bus as (status, reason), or a whole page for what is no form's fault.
fn refusal(e: BusError) -> Result<(StatusCode, String), Early> {
    match e {
        BusError::Invalid(m) => Ok((StatusCode::UNPROCESSABLE_ENTITY, m)),
        BusError::Exists(_) | BusError::FromConfig(_) => Ok((StatusCode::CONFLICT, e.to_string())),
        BusError::NotFound(_) => Err(Box::new(page::not_found(e.to_string()))),
        BusError::Store(s) => Err(Box::new(page::from_api(crate::server::ApiError::internal(
            s,
        )))),
    }
}

#[derive(Template)]
#[template(path = "rule_new.html")]
struct NewPage {
    page: Page,
    f: RuleForm,
    errors: String,
}

fn new_page(session: &Session, status: StatusCode, f: RuleForm, errors: String) -> Response {
    page::render(
        status,
        &NewPage {
            page: Page::new("New rule", "/rules", &session.csrf),
            f,
            errors,
        },
    )
}

/// `GET /rules/new`.
pub async fn new_form(Extension(session): Extension<Session>) -> Response {
    let f = RuleForm {
        enabled: Some("on".into()),
        ..RuleForm::default()
    };
    new_page(&session, StatusCode::OK, f, String::new())
}

/// `POST /rules/new`.
pub async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<RuleForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, form.csrf.as_deref()) {
        return refused;
    }
    let bus = match bus_of(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let def = match def_of(&form, None) {
        Ok(d) => d,
        Err(m) => return new_page(&session, StatusCode::UNPROCESSABLE_ENTITY, form, m),
    };
    match bus.put(def, true).await {
        Ok(d) => Redirect::to(&format!("/rules/{}", segment(&d.name))).into_response(),
        Err(e) => match refusal(e) {
            Ok((status, m)) => new_page(&session, status, form, m),
            Err(page) => *page,
        },
    }
}

/// The result of testing the pattern against an event.
#[derive(Debug)]
pub struct Tested {
    pub matched: bool,
}

#[derive(Template)]
#[template(path = "rule.html")]
struct RulePage {
    page: Page,
    r: Row,
    created: String,
    updated: String,
    has_pattern: bool,
    f: RuleForm,
    errors: String,
    event: String,
    tested: Option<Tested>,
    test_error: String,
}

impl RulePage {
    fn new(session: &Session, def: &RuleDef, rec: &RuleRecord) -> RulePage {
        RulePage {
            page: Page::new(format!("Rule {}", def.name), "/rules", &session.csrf),
            r: Row::of(def, rec),
            created: short_time(rec.created_at_ms),
            updated: short_time(rec.updated_at_ms),
            has_pattern: def.pattern.is_some(),
            f: form_of(def),
            errors: String::new(),
            event: String::new(),
            tested: None,
            test_error: String::new(),
        }
    }
}

fn find(bus: &Bus, name: &str) -> Result<(RuleDef, RuleRecord), Early> {
    bus.get(name)
        .ok_or_else(|| Box::new(page::not_found("There is no such rule.")))
}

/// `GET /rules/{name}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    let (def, rec) = match bus_of(&state).and_then(|b| find(b, &name)) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    page::render(StatusCode::OK, &RulePage::new(&session, &def, &rec))
}

/// `POST /rules/{name}`: the edit form.
pub async fn update(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(mut form): Form<RuleForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, form.csrf.as_deref()) {
        return refused;
    }
    let bus = match bus_of(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (def, rec) = match find(bus, &name) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    form.name = name.clone();
    let refused = match def_of(&form, Some(&def)) {
        Err(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        Ok(new) => match bus.put(new, false).await {
            Ok(_) => return Redirect::to(&format!("/rules/{}", segment(&name))).into_response(),
            Err(e) => match refusal(e) {
                Ok(r) => r,
                Err(page) => return *page,
            },
        },
    };
    let mut p = RulePage::new(&session, &def, &rec);
    p.f = form;
    p.errors = refused.1;
    page::render(refused.0, &p)
}

/// `POST /rules/{name}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, form.csrf.as_deref()) {
        return refused;
    }
    let bus = match bus_of(&state) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match bus.delete(&name).await {
        Ok(()) => Redirect::to("/rules").into_response(),
        Err(e) => match refusal(e) {
            Ok((status, m)) => page::error(status, "Not deleted", m),
            Err(page) => *page,
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct TestForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub event: String,
}

#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    #[serde(default)]
    pattern: String,
}

/// `GET /rules/new/check?pattern=…`: the pattern checked as saving checks it, for the form's
/// hints as you type: `{"ok": true}` or `{"ok": false, "reason": …}` (empty is fine: a
/// schedule rule has none). Changes nothing, so it needs no CSRF token.
pub async fn check(Query(q): Query<CheckQuery>) -> Response {
    let reason = match q.pattern.trim() {
        "" => None,
        text => Pattern::parse(text)
            .err()
            .map(|e| format!("pattern: {}", e.0)),
    };
    let body = match reason {
        None => json!({ "ok": true }),
        Some(r) => json!({ "ok": false, "reason": r }),
    };
    axum::Json(body).into_response()
}

/// `POST /rules/{name}/test`: does the rule's pattern match this event?
pub async fn test(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<TestForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, form.csrf.as_deref()) {
        return refused;
    }
    let (def, rec) = match bus_of(&state).and_then(|b| find(b, &name)) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let mut p = RulePage::new(&session, &def, &rec);
    p.event = form.event.clone();
    let outcome = match (&def.pattern, serde_json::from_str::<Value>(&form.event)) {
        (None, _) => Err("This rule has a schedule, not a pattern.".to_string()),
        (_, Err(e)) => Err(format!("The event is not JSON: {e}")),
        (Some(pat), Ok(event)) => Pattern::from_json(pat)
            .map(|pat| pat.matches_json(&event))
            .map_err(|e| format!("The pattern is not valid: {}", e.0)),
    };
    match outcome {
        Ok(matched) => {
            p.tested = Some(Tested { matched });
            page::render(StatusCode::OK, &p)
        }
        Err(m) => {
            p.test_error = m;
            page::render(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_rule_or_says_what_is_wrong() {
        let mut f = RuleForm {
            name: "r1".into(),
            pattern: "{\"source\": [\"a\"]}".into(),
            target: "{\"http\": \"https://example.com/\"}".into(),
            ..RuleForm::default()
        };
        let def = def_of(&f, None).unwrap();
        assert_eq!(def.name, "r1");
        assert!(!def.enabled);
        f.pattern = "{nope".into();
        f.target = String::new();
        let e = def_of(&f, None).unwrap_err();
        assert!(
            e.starts_with("pattern: not JSON") && e.contains("; target: not JSON"),
            "{e}"
        );
    }
}

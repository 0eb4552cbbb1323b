//! `/secrets`: the secret store's names and scopes (never a value, nor its length), a form
//! that sets one and a delete button per secret. Both forms go through the same code as
//! `POST /api/v1/secrets` and `DELETE /api/v1/secrets/{scope}/{name}`
//! (`server::secrets::{set_one, delete_one}`); a refused name or scope comes back on the page
//! with the server's reason (422) and what was typed, except the value, which is never sent
//! back.

use super::page::{self, Page};
use super::runs::short_time;
use super::session::{Session, csrf_refusal};
use crate::server::{ApiError, AppState, secrets as api};
use crate::view::rfc3339;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

/// One secret: what is known of it besides its value.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub scope: String,
    pub updated: String,
    pub updated_short: String,
    pub created_short: String,
}

#[derive(Template)]
#[template(path = "secrets.html")]
struct SecretsPage {
    page: Page,
    /// `None`: this server has no secret store.
    rows: Option<Vec<Row>>,
    /// The set form as typed (name and scope; never the value).
    name: String,
    scope: String,
    errors: String,
}

async fn render(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    name: String,
    scope: String,
    errors: String,
) -> Response {
    let rows = match api::store(state) {
        Err(_) => None,
        Ok(store) => match store.list().await {
            Ok(all) => Some(
                all.into_iter()
                    .map(|m| Row {
                        updated: rfc3339(m.updated_at_ms),
                        updated_short: short_time(m.updated_at_ms),
                        created_short: short_time(m.created_at_ms),
                        name: m.name,
                        scope: m.scope,
                    })
                    .collect(),
            ),
            Err(e) => return page::from_api(e.into()),
        },
    };
    page::render(
        status,
        &SecretsPage {
            page: Page::new("Secrets", "/secrets", &session.csrf),
            rows,
            name,
            scope,
            errors,
        },
    )
}

/// `GET /secrets`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    render(
        &state,
        &session,
        StatusCode::OK,
        String::new(),
        "global".into(),
        String::new(),
    )
    .await
}

/// The set form. No `Debug`: it holds a secret's value.
#[derive(Deserialize)]
pub struct SetForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub value: String,
}

/// A refusal of the API as the form's (status, reason), or a whole page for what is no
/// form's fault.
fn refusal(e: ApiError) -> Result<(StatusCode, String), Box<Response>> {
    if e.status == StatusCode::UNPROCESSABLE_ENTITY {
        Ok((e.status, e.message))
    } else {
        Err(Box::new(page::from_api(e)))
    }
}

/// `POST /secrets`: sets (creates or replaces) a secret.
pub async fn set(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<SetForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, form.csrf.as_deref()) {
        return refused;
    }
    let name = form.name.trim().to_string();
    let scope_text = match form.scope.trim() {
        "" => "global".to_string(),
        s => s.to_string(),
    };
    let outcome = match api::scope_of(Some(scope_text.as_str())) {
        Ok(scope) => api::set_one(&state, &scope, &name, &form.value).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Redirect::to("/secrets").into_response(),
        Err(e) => match refusal(e) {
            Ok((status, m)) => render(&state, &session, status, name, scope_text, m).await,
            Err(page) => *page,
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scope: String,
}

/// `POST /secrets/delete`: one secret, named by its scope and name.
pub async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, form.csrf.as_deref()) {
        return refused;
    }
    match api::delete_one(&state, &form.scope, &form.name).await {
        Ok(()) => Redirect::to("/secrets").into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => page::not_found("There is no such secret."),
        Err(e) => match refusal(e) {
            Ok((status, m)) => {
                render(&state, &session, status, String::new(), "global".into(), m).await
            }
            Err(page) => *page,
        },
    }
}

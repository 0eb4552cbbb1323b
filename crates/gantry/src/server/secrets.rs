//! `/api/v1/secrets`: set (create or replace), list (names and scopes only) and delete.
//! Values go in and never come out: no answer and no error message contains one.

use super::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_core::secret::Scope;
use gantry_engine::ports::{SecretError, SecretStore};
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) fn store(state: &AppState) -> Result<&Arc<dyn SecretStore>, ApiError> {
    state.secrets.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "this server has no secret store",
        )
    })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_secret", message)
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Invalid(m) => invalid(m),
            SecretError::Store(m) => ApiError::internal(m),
        }
    }
}

/// `POST /api/v1/secrets` `{"name", "scope", "value"}` (scope defaults to `global`). The body
/// is read by hand so that no parser error can quote the value back.
pub async fn set(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    store(&state)?;
    let v: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body must be a JSON object {\"name\", \"scope\", \"value\"}",
        )
    })?;
    let Some(obj) = v.as_object() else {
        return Err(invalid("the body must be a JSON object"));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["name", "scope", "value"].contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unknown field `{k}`; expected name, scope, value"
        )));
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("`name` is required and must be a string"))?;
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => Scope::Global,
        Some(Value::String(s)) => scope_of(Some(s))?,
        Some(_) => return Err(invalid("`scope` must be a string")),
    };
    let value = obj
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("`value` is required and must be a string"))?;
    set_one(&state, &scope, name, value).await?;
    let body = json!({"name": name, "scope": scope.as_string()});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A scope as the API takes it (`global` when none is given), or the reason it is not one.
pub(crate) fn scope_of(text: Option<&str>) -> Result<Scope, ApiError> {
    match text {
        None => Ok(Scope::Global),
        Some(s) => Scope::parse(s).map_err(invalid),
    }
}

/// Sets (creates or replaces) a secret: `POST /api/v1/secrets` and the dashboard's form.
pub(crate) async fn set_one(
    state: &AppState,
    scope: &Scope,
    name: &str,
    value: &str,
) -> Result<(), ApiError> {
    store(state)?.set(scope, name, value).await?;
    tracing::info!(name, scope = %scope.as_string(), "secret set");
    Ok(())
}

/// Deletes a secret: `DELETE /api/v1/secrets/{scope}/{name}` and the dashboard's button.
pub(crate) async fn delete_one(state: &AppState, scope: &str, name: &str) -> Result<(), ApiError> {
    let scope = scope_of(Some(scope))?;
    if store(state)?.delete(&scope, name).await? {
        tracing::info!(name, scope = %scope.as_string(), "secret deleted");
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no secret `{name}` in scope {}",
            scope.as_string()
        )))
    }
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = store(&state)?.list().await?;
    let items: Vec<Value> = all
        .iter()
        .map(|m| {
            json!({"name": m.name, "scope": m.scope,
                   "created_at": crate::view::rfc3339(m.created_at_ms),
                   "updated_at": crate::view::rfc3339(m.updated_at_ms)})
        })
        .collect();
    Ok(Json(json!({ "secrets": items })).into_response())
}

/// `DELETE /api/v1/secrets/{scope}/{name}`; a repository scope's `/` is sent as `%2F`.
pub async fn delete(
    State(state): State<AppState>,
    Path((scope, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    delete_one(&state, &scope, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

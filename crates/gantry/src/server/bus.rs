//! The event bus over HTTP: `POST /api/v1/events` (PutEvents: up to 10 entries, each answered
//! in order with an `EventId` or an `ErrorCode`/`ErrorMessage`), one event with its
//! deliveries, and `/api/v1/rules` (create, list, get, update, delete; validated on write).

use super::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_core::bus::entry::MAX_ENTRIES;
use gantry_core::bus::rule::RuleDef;
use gantry_engine::bus::{Bus, BusError};
use gantry_engine::ports::RuleRecord;
use serde_json::{Value, json};

fn bus(state: &AppState) -> Result<&Bus, ApiError> {
    state.bus.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "the event bus is not running on this server",
        )
    })
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule", m)
            }
            BusError::NotFound(_) => ApiError::not_found(e.to_string()),
            BusError::Exists(_) | BusError::FromConfig(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            BusError::Store(s) => ApiError::internal(s),
        }
    }
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
}

/// `POST /api/v1/events` `{"Entries": [...]}`.
pub async fn put_events(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let bus = bus(&state)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| validation(format!("the body is not JSON: {e}")))?;
    let Some(entries) = v.get("Entries").and_then(Value::as_array) else {
        return Err(validation("the body must be {\"Entries\": [ ... ]}"));
    };
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(validation(format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and {MAX_ENTRIES} (got {})",
            entries.len()
        )));
    }
    let answers = bus.put_events(entries).await?;
    let failed = answers.iter().filter(|a| a.is_err()).count();
    let entries: Vec<Value> = answers
        .into_iter()
        .map(|a| match a {
            Ok(id) => json!({"EventId": id}),
            Err(e) => json!({"ErrorCode": e.code, "ErrorMessage": e.message}),
        })
        .collect();
    Ok(Json(json!({"FailedEntryCount": failed, "Entries": entries})).into_response())
}

/// `GET /api/v1/events/{id}`: the event as stored (envelope or payload) and its deliveries.
pub async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.engine.store();
    let event = store
        .get_event(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event `{id}` not found")))?;
    let deliveries = store.deliveries_of(&id).await?;
    let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    Ok(Json(json!({
        "id": event.id, "source": event.source, "type": event.event_type,
        "delivery_id": event.delivery_id, "received_at": crate::view::rfc3339(event.received_at_ms),
        "rules_matched": event.rules_matched, "outcome": event.outcome, "event": payload,
        "deliveries": deliveries.iter().map(|d| json!({
            "rule": d.rule, "status": d.status, "attempts": d.attempts, "result": d.result,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

fn rule_json(def: &RuleDef, rec: &RuleRecord) -> Value {
    let mut v = serde_json::to_value(def).unwrap_or_default();
    v["enabled"] = json!(def.enabled);
    v["origin"] = json!(rec.origin);
    v["created_at"] = json!(crate::view::rfc3339(rec.created_at_ms));
    v["updated_at"] = json!(crate::view::rfc3339(rec.updated_at_ms));
    v
}

fn parse_rule(body: &[u8], name: Option<&str>) -> Result<RuleDef, ApiError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the body is not JSON: {e}"),
        )
    })?;
    if let (Some(n), Value::Object(o)) = (name, &mut v) {
        match o.get("name") {
            None => {
                o.insert("name".into(), json!(n));
            }
            Some(given) if given != n => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_rule",
                    format!("the body names rule {given}, the path `{n}`"),
                ));
            }
            _ => {}
        }
    }
    serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rule",
            e.to_string(),
        )
    })
}

pub async fn list_rules(State(state): State<AppState>) -> Result<Response, ApiError> {
    let rules: Vec<Value> = bus(&state)?
        .list()
        .iter()
        .map(|(d, r)| rule_json(d, r))
        .collect();
    Ok(Json(json!({ "rules": rules })).into_response())
}

pub async fn create_rule(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let bus = bus(&state)?;
    let def = bus.put(parse_rule(&body, None)?, true).await?;
    let (def, rec) = bus
        .get(&def.name)
        .ok_or_else(|| ApiError::internal("rule vanished"))?;
    Ok((StatusCode::CREATED, Json(rule_json(&def, &rec))).into_response())
}

pub async fn get_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (def, rec) = bus(&state)?
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("rule `{name}` not found")))?;
    Ok(Json(rule_json(&def, &rec)).into_response())
}

pub async fn update_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bus = bus(&state)?;
    bus.put(parse_rule(&body, Some(&name))?, false).await?;
    let (def, rec) = bus
        .get(&name)
        .ok_or_else(|| ApiError::internal("rule vanished"))?;
    Ok(Json(rule_json(&def, &rec)).into_response())
}

pub async fn delete_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    bus(&state)?.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

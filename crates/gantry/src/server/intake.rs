//! Intake, where events come in: `POST /webhooks/github` (GitHub deliveries) and
//! `POST /webhook` (the `orders` payload). Authenticate, parse at the edge into typed
//! events, store the event durably (group commit), and only then answer 2xx. A repeated
//! delivery id is acknowledged and not stored or processed again; a signed `/webhook` body's
//! delivery id is its SHA-256, so a replayed body is such a repeat. `GET /api/v1/events` lists
//! what was stored.

use super::signature::{self, Secret};
use super::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gantry_core::forge::github::{self, GitHubEvent};
use gantry_core::spec::{self, Format, RunContext};
use gantry_engine::pipelines::PIPELINE_EVENTS;
use gantry_engine::ports::{Clock, EventFilter, EventRecord, SystemClock, Write};
use gantry_engine::runners::JobNotice;
use serde::Deserialize;
use serde_json::json;

/// GitHub caps a delivery at 25 MB.
pub const GITHUB_BODY_LIMIT: usize = 25 << 20;

pub async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(secret) = &state.github_secret else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "GANTRY_GITHUB_WEBHOOK_SECRET is not set: this endpoint accepts no deliveries",
        ));
    };
    check_signature(secret, &headers, "x-hub-signature-256", &body)?;
    let event_name = header_str(&headers, "x-github-event").ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_delivery",
            "missing X-GitHub-Event header",
        )
    })?;
    let delivery_id = header_str(&headers, "x-github-delivery").ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_delivery",
            "missing X-GitHub-Delivery header",
        )
    })?;
    let payload = payload_of(&headers, &body)?;
    let parsed = github::parse(event_name, &payload)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string()))?;
    let payload = String::from_utf8(payload).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_payload",
            "the payload is not valid UTF-8",
        )
    })?;

    let mut record = EventRecord {
        id: gantry_engine::ids::new_run_id(),
        source: "github".into(),
        event_type: event_name.to_string(),
        delivery_id: Some(delivery_id.to_string()),
        action: parsed.action.clone(),
        repository: parsed.repository.clone(),
        installation_id: parsed.installation_id,
        payload,
        trace_id: gantry_engine::ids::new_trace_id(),
        received_at_ms: SystemClock.now_ms(),
        rules_matched: Vec::new(),
        outcome: None,
    };
    // On the bus: source `github`, detail-type the event name, detail the payload. Matched
    // rules' deliveries are written with the event.
    let mut extra = Vec::new();
    if let Some(bus) = state.bus.as_ref().filter(|b| b.has_pattern_rules()) {
        let envelope = json!({
            "version": "0", "id": record.id, "detail-type": event_name, "source": "github",
            "account": "000000000000", "region": "local",
            "time": crate::view::rfc3339(record.received_at_ms),
            "resources": record.repository.iter().collect::<Vec<_>>(),
            "detail": serde_json::from_str::<serde_json::Value>(&record.payload).unwrap_or_default(),
        });
        record.rules_matched = bus.matching(&envelope);
        extra = bus.deliveries(&record.id, &record.rules_matched);
    }
    let pipeline_event = PIPELINE_EVENTS
        .contains(&event_name)
        .then(|| record.clone());
    let stored = match store_once(&state, record, extra).await? {
        Stored::New { id, trace_id } => (id, trace_id),
        Stored::Duplicate { id, delivery } => return Ok(duplicate(&id, delivery.as_deref())),
    };
    if let Some(event) = pipeline_event {
        match &state.pipelines {
            Some(p) => p.spawn(event),
            None => {
                let why = "ignored: no GitHub credentials are configured (GANTRY_GITHUB_TOKEN or a GitHub App), so .gantry.yml cannot be read";
                let write = Write::SetEventOutcome {
                    id: event.id,
                    outcome: why.into(),
                };
                state.engine.journal().append_durable(vec![write]).await?;
            }
        }
    }
    let body = match parsed.event {
        GitHubEvent::Ping { zen, hook_id } => {
            json!({"event_id": stored.0, "pong": true, "zen": zen, "hook_id": hook_id})
        }
        GitHubEvent::WorkflowJob { .. } => {
            let outcome = match JobNotice::of_delivery(&stored.0, &stored.1, &parsed) {
                Some(notice) => runner_notice(&state, notice).await?,
                None => String::new(),
            };
            json!({"event_id": stored.0, "trace_id": stored.1, "outcome": outcome})
        }
        _ => json!({"event_id": stored.0, "trace_id": stored.1}),
    };
    let status = if event_name == "ping" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(body)).into_response())
}

/// Hands a `workflow_job` delivery to the runner pools; what became of it (also the event's
/// outcome).
async fn runner_notice(state: &AppState, notice: JobNotice) -> Result<String, ApiError> {
    if let Some(runners) = &state.runners {
        return Ok(runners.notice(notice).await);
    }
    let outcome = "ignored: no runner pools are configured ([runners] in gantry.toml)";
    if let Some(id) = notice.event_id {
        let write = Write::SetEventOutcome {
            id,
            outcome: outcome.into(),
        };
        state.engine.journal().append_durable(vec![write]).await?;
    }
    Ok(outcome.into())
}

/// `POST /webhook`: the `orders` job payload (or any run spec), signed with `X-Gantry-Signature-256`
/// or carrying the API bearer token.
pub async fn orders(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let signed = header_str(&headers, "x-gantry-signature-256").is_some();
    let by_signature = match (&state.webhook_secret, &state.token) {
        (Some(secret), _) if signed => {
            check_signature(secret, &headers, "x-gantry-signature-256", &body)?;
            true
        }
        (_, Some(token)) if super::bearer_matches(&headers, token) => false,
        (None, None) => false, // open, like the API: `serve` only allows this on loopback
        (Some(_), _) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing X-Gantry-Signature-256 header (or a bearer token)",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token",
            ));
        }
    };
    // The signature covers the body and nothing else: whoever holds a signed body can send it
    // again, with any X-Gantry-Delivery or none. So a signed body's delivery id is its digest,
    // and a replay is a duplicate for as long as the event is kept. A caller with the token
    // (or on an open loopback server) names its own delivery id, if any.
    let delivery_id = if by_signature {
        Some(body_digest(&body))
    } else {
        header_str(&headers, "x-gantry-delivery").map(str::to_string)
    };
    let spec = spec::parse_spec(&body, Format::Json, "orders", &state.limits)?;
    spec::check_sources(&spec, &state.git_allowed)?;
    let payload = String::from_utf8(body.to_vec()).unwrap_or_default(); // parse_spec checked UTF-8
    let record = EventRecord {
        id: gantry_engine::ids::new_run_id(),
        source: "gantry.webhook".into(),
        event_type: "orders".into(),
        delivery_id,
        action: None,
        repository: spec.pr.as_ref().map(|p| p.repo.clone()),
        installation_id: None,
        payload,
        trace_id: gantry_engine::ids::new_trace_id(),
        received_at_ms: SystemClock.now_ms(),
        rules_matched: Vec::new(),
        outcome: None,
    };
    let event = match store_once(&state, record, Vec::new()).await? {
        Stored::New { id, trace_id } => (id, trace_id),
        Stored::Duplicate { id, delivery } => return Ok(duplicate(&id, delivery.as_deref())),
    };
    let context = RunContext::of_event("webhook");
    // The event's outcome (this run) is written with the run.
    let submitted = state
        .engine
        .submit_for_event(spec, context, Some(event.1.clone()), Some(&event.0))
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"run_id": submitted.run_id, "trace_id": submitted.trace_id, "event_id": event.0}))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let filter = EventFilter {
        source: q.source,
        event_type: q.event_type,
        before: q.before,
        limit: super::query::limit(q.limit.as_deref())?,
    };
    let events = state.engine.store().list_events(filter).await?;
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "source": e.source, "type": e.event_type, "delivery_id": e.delivery_id,
                "action": e.action, "repository": e.repository, "installation_id": e.installation_id,
                "trace_id": e.trace_id, "received_at": crate::view::rfc3339(e.received_at_ms),
                "rules_matched": e.rules_matched, "outcome": e.outcome,
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}

enum Stored {
    New {
        id: String,
        trace_id: String,
    },
    Duplicate {
        id: String,
        delivery: Option<String>,
    },
}

/// Stores an event unless its delivery id is already stored. The insert itself decides (the
/// store reports it as a duplicate), so concurrent copies of one delivery cannot both pass.
async fn store_once(
    state: &AppState,
    record: EventRecord,
    extra: Vec<Write>,
) -> Result<Stored, ApiError> {
    let (id, trace_id, delivery) = (
        record.id.clone(),
        record.trace_id.clone(),
        record.delivery_id.clone(),
    );
    // The dispatcher needs waking only when the event brought rule deliveries with it.
    let delivers = extra.iter().any(|w| matches!(w, Write::PutDelivery(_)));
    let committed = state
        .engine
        .journal()
        .append_durable(
            std::iter::once(Write::InsertEvent(Box::new(record)))
                .chain(extra)
                .collect(),
        )
        .await?;
    if let Some(bus) = state.bus.as_ref().filter(|_| delivers) {
        bus.poke();
    }
    if !committed.duplicate_events.contains(&id) {
        return Ok(Stored::New { id, trace_id });
    }
    let existing = match &delivery {
        Some(d) => state.engine.store().event_by_delivery(d).await?,
        None => None,
    };
    Ok(Stored::Duplicate {
        id: existing.map_or(id, |e| e.id),
        delivery,
    })
}

fn duplicate(id: &str, delivery: Option<&str>) -> Response {
    let body = json!({"event_id": id, "duplicate": true, "delivery_id": delivery});
    (StatusCode::OK, Json(body)).into_response()
}

/// `sha256:<hex>` of a body: the delivery id of a signed `/webhook` body.
fn body_digest(body: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

fn check_signature(
    secret: &Secret,
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let display = if name == "x-hub-signature-256" {
        "X-Hub-Signature-256"
    } else {
        "X-Gantry-Signature-256"
    };
    signature::verify(secret, headers.get(name).map(|v| v.as_bytes()), body).map_err(|e| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            e.describe(display),
        )
    })
}

/// The JSON payload: the body itself (`application/json`) or its `payload` field
/// (`application/x-www-form-urlencoded`, which GitHub can be set to send).
fn payload_of(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json" => Ok(body.to_vec()),
        "application/x-www-form-urlencoded" => {
            let fields: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_payload",
                        format!("the form body cannot be decoded: {e}"),
                    )
                })?;
            fields
                .into_iter()
                .find(|(k, _)| k == "payload")
                .map(|(_, v)| v.into_bytes())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_payload",
                        "the form body has no `payload` field",
                    )
                })
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type `{other}` is not accepted; use application/json or application/x-www-form-urlencoded"
            ),
        )),
    }
}

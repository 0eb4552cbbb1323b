//! `/events`: the events that came in (webhooks, GitHub deliveries, PutEvents, run and job
//! changes), newest first, filtered by source and type, a page at a time (the "older" link
//! carries the last id shown: keyset pagination); `/events/{id}`: one event with its payload
//! (pretty JSON, escaped like everything else) and its rule deliveries with their attempts
//! and last result or error. The same data as `GET /api/v1/events` and `/api/v1/events/{id}`.

use super::page::{self, Page};
use super::run::segment;
use super::runs::short_time;
use super::session::Session;
use crate::server::AppState;
use crate::view::rfc3339;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gantry_engine::ports::{EventFilter, EventRecord};
use serde::Deserialize;

/// Events on one page.
pub const PAGE_SIZE: u32 = 50;

/// The page's filters (a GET form) and where it starts.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub source: String,
    #[serde(default, rename = "type")]
    pub event_type: String,
    /// The last id of the previous page: this page holds older events (keyset pagination).
    #[serde(default)]
    pub before: String,
}

impl Filters {
    fn filtered(&self) -> bool {
        !self.source.is_empty() || !self.event_type.is_empty()
    }

    /// The query string of a page with these filters, older than `before` (none: the newest).
    fn query(&self, before: Option<&str>) -> String {
        let mut q: Vec<(&str, &str)> = [("source", &self.source), ("type", &self.event_type)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.as_str()))
            .collect();
        if let Some(b) = before {
            q.push(("before", b));
        }
        serde_urlencoded::to_string(q).unwrap_or_default()
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub path: String,
    pub source: String,
    pub event_type: String,
    pub delivery: String,
    pub rules: String,
    pub outcome: String,
    pub received: String,
    pub received_short: String,
}

/// How the event's delivery id came about (what deduplicates it).
fn delivery_of(e: &EventRecord) -> String {
    match e.delivery_id.as_deref() {
        Some(d) if d.starts_with("sha256:") => format!("signed body {d}"),
        Some(d) => d.to_string(),
        None => String::new(),
    }
}

impl Row {
    fn of(e: &EventRecord) -> Row {
        Row {
            id: e.id.clone(),
            path: segment(&e.id),
            source: e.source.clone(),
            event_type: e.event_type.clone(),
            delivery: delivery_of(e),
            rules: e.rules_matched.join(", "),
            outcome: e.outcome.clone().unwrap_or_default(),
            received: rfc3339(e.received_at_ms),
            received_short: short_time(e.received_at_ms),
        }
    }
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    page: Page,
    f: Filters,
    filtered: bool,
    rows: Vec<Row>,
    /// The query of the next (older) page, when there is one.
    older: Option<String>,
    /// The query of the newest page, when this is not it.
    newest: Option<String>,
}

/// `GET /events?source=&type=&before=`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(f): Query<Filters>,
) -> Response {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let filter = EventFilter {
        source: some(&f.source),
        event_type: some(&f.event_type),
        before: some(&f.before),
        limit: PAGE_SIZE + 1,
    };
    let mut events = match state.engine.store().list_events(filter).await {
        Ok(e) => e,
        Err(e) => return page::from_api(e.into()),
    };
    let more = events.len() > PAGE_SIZE as usize;
    events.truncate(PAGE_SIZE as usize);
    let rows: Vec<Row> = events.iter().map(Row::of).collect();
    let older = match rows.last() {
        Some(last) if more => Some(f.query(Some(&last.id))),
        _ => None,
    };
    let newest = (!f.before.is_empty()).then(|| f.query(None));
    page::render(
        StatusCode::OK,
        &EventsPage {
            page: Page::new("Events", "/events", &session.csrf),
            filtered: f.filtered(),
            f,
            rows,
            older,
            newest,
        },
    )
}

/// One delivery of the event to a rule's target.
#[derive(Debug)]
pub struct DeliveryRow {
    pub rule: String,
    pub rule_path: String,
    pub status: String,
    pub attempts: u32,
    pub result: String,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    page: Page,
    e: Row,
    trace_id: String,
    action: String,
    repository: String,
    payload: String,
    deliveries: Vec<DeliveryRow>,
}

/// The payload as indented JSON (as stored if it is not JSON).
fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| payload.to_string())
}

/// `GET /events/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let store = state.engine.store();
    let event = match store.get_event(&id).await {
        Ok(Some(e)) => e,
        Ok(None) => return page::not_found("There is no such event."),
        Err(e) => return page::from_api(e.into()),
    };
    let deliveries = match store.deliveries_of(&id).await {
        Ok(d) => d,
        Err(e) => return page::from_api(e.into()),
    };
    page::render(
        StatusCode::OK,
        &EventPage {
            page: Page::new(format!("Event {}", event.id), "/events", &session.csrf),
            e: Row::of(&event),
            trace_id: event.trace_id.clone(),
            action: event.action.clone().unwrap_or_default(),
            repository: event.repository.clone().unwrap_or_default(),
            payload: pretty(&event.payload),
            deliveries: deliveries
                .into_iter()
                .map(|d| DeliveryRow {
                    rule_path: segment(&d.rule),
                    rule: d.rule,
                    status: d.status,
                    attempts: d.attempts,
                    result: d.result.unwrap_or_default(),
                })
                .collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn payloads_are_indented_when_they_are_json() {
        assert_eq!(super::pretty("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(super::pretty("not json"), "not json");
    }
}

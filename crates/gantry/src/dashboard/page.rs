//! What every page shares: the frame (title, navigation, the logout form), rendering with the
//! security headers, and the error pages (404, 403, 400, 500) in HTML.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The Content-Security-Policy of every page: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The sections of the navigation, as (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/", "Runs"),
    ("/events", "Events"),
    ("/rules", "Rules"),
    ("/services", "Services"),
    ("/secrets", "Secrets"),
    ("/runners", "Runners"),
    ("/deploys", "Deployments"),
    ("/settings", "Settings"),
];

/// The frame around a page's content.
#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    /// The navigation entry shown as current (its path), or empty.
    pub active: &'static str,
    /// The session's CSRF token, for the logout form; empty when nobody is logged in.
    pub csrf: String,
}

impl Page {
    pub fn new(title: impl Into<String>, active: &'static str, csrf: &str) -> Page {
        Page {
            title: title.into(),
            active,
            csrf: csrf.to_string(),
        }
    }

    pub fn nav(&self) -> &'static [(&'static str, &'static str)] {
        NAV
    }
}

/// Adds the headers every dashboard response carries.
pub fn secure_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A template rendered into a response with `status` (a 500 page if it fails to render).
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    let mut resp = match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>The page failed to render; see the server log.</p>".to_string()),
            )
                .into_response()
        }
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(&mut resp);
    resp
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Page,
    heading: &'static str,
    message: String,
}

/// An error page with `status`.
pub fn error(status: StatusCode, heading: &'static str, message: impl Into<String>) -> Response {
    render(
        status,
        &ErrorPage {
            page: Page::new(heading, "", ""),
            heading,
            message: message.into(),
        },
    )
}

pub fn not_found(message: impl Into<String>) -> Response {
    error(StatusCode::NOT_FOUND, "Not found", message)
}

pub fn forbidden(message: impl Into<String>) -> Response {
    error(StatusCode::FORBIDDEN, "Forbidden", message)
}

pub fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "Bad request", message)
}

/// An API error (store, engine) as a page; internal causes stay in the server log.
pub fn from_api(e: crate::server::ApiError) -> Response {
    match e.status {
        StatusCode::NOT_FOUND => not_found(e.message),
        StatusCode::CONFLICT => error(StatusCode::CONFLICT, "Conflict", e.message),
        s if s.is_client_error() => bad_request(e.message),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server error",
            "Something went wrong; the server log says what.",
        ),
    }
}

/// A duration in ms for people: `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_well() {
        assert_eq!(super::duration(-5), "0ms");
        assert_eq!(super::duration(850), "850ms");
        assert_eq!(super::duration(12_340), "12.3s");
        assert_eq!(super::duration(245_000), "4m 05s");
        assert_eq!(super::duration(7_380_000), "2h 03m");
    }
}

//! The request guard: what every request must be before any route sees it. In order: its
//! `Host` names this server (else 421: DNS rebinding), its `Origin`, if any, is the server's own
//! or a listed CORS origin (else 403: cross-site requests), and a request that changes
//! something carries JSON or YAML (else 415: what a page on another site can send without a
//! preflight; the dashboard's own form routes take form bodies and check a CSRF token).
//! Listed origins get their CORS preflight answered here and `Access-Control-Allow-Origin` on
//! every response.

use super::ApiError;
use super::origin::{Origin, authority_parts};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The body types a request that changes something may carry (parameters allowed).
pub const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
];

/// `/webhooks/github` also takes GitHub's form encoding (its HMAC signature authenticates it).
const GITHUB_FORM: &str = "application/x-www-form-urlencoded";

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";
const ALLOW_HEADERS: &str =
    "authorization, content-type, traceparent, x-gantry-delivery, x-gantry-signature-256";

#[derive(Debug)]
pub struct Guard {
    /// The addresses requests may name in `Host`; `None`: any (listening on every interface).
    hosts: Option<Vec<Origin>>,
    /// What the server's links say it is (`GANTRY_PUBLIC_URL`): a Host and an origin of its own.
    public: Option<Origin>,
    /// Other origins whose pages may call the API (`GANTRY_CORS_ORIGINS`).
    cors: Vec<Origin>,
}

impl Guard {
    /// For a server bound to `listen`. On a loopback address `Host` may name it as
    /// `127.0.0.1`, `localhost` or `[::1]` with its port; on a specific address, that address;
    /// on every interface (`0.0.0.0`, `[::]`), anything: a token is required there, and a
    /// browser never sends it on its own. The public URL is always a name of the server.
    pub fn new(listen: SocketAddr, public: Option<Origin>, cors: Vec<Origin>) -> Guard {
        let ip = listen.ip();
        let port = listen.port();
        let hosts = if ip.is_unspecified() {
            None
        } else if ip.is_loopback() {
            let mut names = vec![Origin::http(ip, port)];
            for name in ["127.0.0.1", "localhost", "[::1]"] {
                let o = Origin {
                    https: false,
                    host: name.into(),
                    port,
                };
                if !names.contains(&o) {
                    names.push(o);
                }
            }
            Some(names)
        } else {
            Some(vec![Origin::http(ip, port)])
        };
        Guard {
            hosts,
            public,
            cors,
        }
    }

    /// Whether `Host` (host, port) names this server.
    fn names_us(&self, host: &str, port: Option<u16>) -> bool {
        let Some(hosts) = &self.hosts else {
            return true;
        };
        hosts
            .iter()
            .chain(&self.public)
            .any(|o| o.is_named_by(host, port))
    }

    fn wrong_host(&self, given: Option<&str>) -> Response {
        let names: Vec<String> = self
            .hosts
            .iter()
            .flatten()
            .chain(&self.public)
            .map(Origin::authority)
            .collect();
        let what = match given {
            Some(h) => format!("this server does not answer to Host `{h}`"),
            None => "the request names no Host".to_string(),
        };
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "wrong_host",
            format!(
                "{what}: use {}, or set GANTRY_PUBLIC_URL (public_url) to the address clients use",
                names.join(", ")
            ),
        )
        .into_response()
    }
}

/// The middleware: refuses what the guard does not let through, answers CORS.
pub async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    // The Host header, and the authority of an absolute-form request target, if given.
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let target = req.uri().authority().map(|a| a.as_str());
    let mut request_host = None;
    for given in [host, target].into_iter().flatten() {
        match authority_parts(given) {
            Some((h, p)) if guard.names_us(&h, p) => request_host = Some((h, p)),
            _ => return guard.wrong_host(Some(given)),
        }
    }
    if request_host.is_none() && guard.hosts.is_some() {
        return guard.wrong_host(None);
    }

    // The origin: none (not a browser, or a same-origin GET), the server's own, or listed.
    let mut cross_origin = None;
    if let Some(value) = req.headers().get(header::ORIGIN) {
        let text = value.to_str().unwrap_or("(not text)");
        let origin = Origin::parse(text);
        let own = |o: &Origin| {
            guard.public.as_ref() == Some(o)
                || request_host
                    .as_ref()
                    .is_some_and(|(h, p)| !o.https && o.is_named_by(h, *p))
        };
        match origin {
            Some(o) if own(&o) => {}
            Some(o) if guard.cors.contains(&o) => cross_origin = Some(value.clone()),
            _ => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden_origin",
                    format!(
                        "requests from origin `{text}` are not allowed: it is not this server's origin; to let a web app there call the API, list it in cors_origins (GANTRY_CORS_ORIGINS)"
                    ),
                )
                .into_response();
            }
        }
    }

    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = match (&cross_origin, preflight) {
        (Some(_), true) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            resp
        }
        _ => match refused_body(req.method(), req.uri().path(), req.headers()) {
            Some(refusal) => refusal,
            None => next.run(req).await,
        },
    };
    if !guard.cors.is_empty() {
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
    }
    if let Some(origin) = cross_origin {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    resp
}

/// A 415 for a request that changes something and carries a body that is not JSON or YAML
/// (or carries a body with no type). A request with no body needs no type, but any type it
/// names must be one of these: an empty HTML form POST is refused too.
fn refused_body(method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return None;
    }
    // The dashboard's forms check a CSRF token (and its cookie is SameSite=Strict).
    let form_ok = path == "/webhooks/github" || crate::dashboard::takes_form(path);
    let mime = headers
        .get(header::CONTENT_TYPE)
        .map(|v| mime_of(v.to_str().unwrap_or("(not text)")));
    let accepted = |m: &str| BODY_TYPES.contains(&m) || (form_ok && m == GITHUB_FORM);
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let problem = match mime {
        Some(m) if accepted(&m) => return None,
        None if !has_body => return None,
        Some(m) => format!("content type `{m}` is not accepted"),
        None => "the request body has no content type".to_string(),
    };
    let also = if form_ok {
        format!(", or {GITHUB_FORM}")
    } else {
        String::new()
    };
    Some(
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "{problem}: send application/json or YAML (application/yaml, application/x-yaml, text/yaml){also}"
            ),
        )
        .into_response(),
    )
}

/// `type/subtype` of a `Content-Type` value, lower case, without parameters.
fn mime_of(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

//! Dashboard sessions: `/login`, `/logout`, the cookie, CSRF tokens, and the middleware that
//! stands before every page.
//!
//! A session is a random id (32 bytes from the OS, hex) kept in memory with its own random CSRF
//! token; the cookie `gantry_session` holds only the id, never the API token. Sessions end on
//! logout, after [`SESSION_TTL`], or when the server restarts. With no API token configured
//! (a loopback server) nobody logs in: a visitor gets a session on the first page, so that
//! forms still carry a CSRF token. The login form's own CSRF token is an HMAC of a random
//! nonce held in a short-lived cookie (`gantry_login`, double submit).

use super::page::{self, Page};
use crate::server::AppState;
use askama::Template;
use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "gantry_session";
const LOGIN_COOKIE: &str = "gantry_login";
/// How long a session lasts from its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest goes first past this.
const MAX_SESSIONS: usize = 10_000;

/// What a page handler learns about the visitor's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
}

#[derive(Debug)]
struct Entry {
    csrf: String,
    expires: Instant,
}

/// The live sessions, and the key that signs login nonces.
#[derive(Debug)]
pub struct Sessions {
    key: [u8; 32],
    live: Mutex<HashMap<String, Entry>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}

/// `n` random bytes from the OS, as hex.
fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS gives random bytes");
    hex::encode(buf)
}

impl Sessions {
    pub fn new() -> Sessions {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS gives random bytes");
        Sessions {
            key,
            live: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session: its id (the cookie's value) and CSRF token.
    pub fn create(&self) -> (String, Session) {
        let id = random_hex(32);
        let csrf = random_hex(32);
        let now = Instant::now();
        let mut live = self.live();
        live.retain(|_, e| e.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(
            id.clone(),
            Entry {
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        (id, Session { csrf })
    }

    /// The session the request's cookie names, if it is live.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let live = self.live();
        let e = live.get(&id).filter(|e| e.expires > Instant::now())?;
        Some(Session {
            csrf: e.csrf.clone(),
        })
    }

    /// Resolves once the session the request's cookie names is over (logged out or expired),
    /// looking once a second: what ends a stream opened with that session.
    pub async fn ended(self: std::sync::Arc<Self>, headers: HeaderMap) {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if self.find(&headers).is_none() {
                return;
            }
        }
    }

    fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.live().remove(&id);
        }
    }

    /// The login form's CSRF token for a nonce.
    fn login_token(&self, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"gantry-login:");
        mac.update(nonce.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the request came over https (directly, or as a proxy in front says).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure over https.
fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if over_https(headers) {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are hex")
}

/// Constant-time comparison of two strings.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Before every page: the visitor's session, or (with a token configured) a redirect to the
/// login page; without a token a new session is made on the spot.
pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(s) = state.sessions.find(req.headers()) {
        req.extensions_mut().insert(s);
        return next.run(req).await;
    }
    if state.token.is_some() {
        return Redirect::to("/login").into_response();
    }
    let (id, s) = state.sessions.create();
    let cookie = set_cookie(req.headers(), COOKIE, &id, "/", None);
    req.extensions_mut().insert(s);
    let mut resp = next.run(req).await;
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

/// A form's `csrf` field checked against the session's token: a 403 page if it is not it.
pub fn csrf_refusal(session: &Session, given: Option<&str>) -> Option<Response> {
    match given {
        Some(g) if same(g, &session.csrf) => None,
        _ => Some(page::forbidden(
            "The form's security token is missing or wrong: reload the page and try again.",
        )),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: Page,
    csrf: String,
    error: Option<&'static str>,
}

fn login_page(
    headers: &HeaderMap,
    state: &AppState,
    status: StatusCode,
    error: Option<&'static str>,
) -> Response {
    let nonce = random_hex(16);
    let csrf = state.sessions.login_token(&nonce);
    let mut resp = page::render(
        status,
        &LoginPage {
            page: Page::new("Log in", "", ""),
            csrf,
            error,
        },
    );
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, &nonce, "/login", Some(600)),
    );
    resp
}

/// `GET /login`: the form (straight to the runs when no token is configured).
pub async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.token.is_none() || state.sessions.find(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(&headers, &state, StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: Option<String>,
    csrf: Option<String>,
}

/// `POST /login`: the right API token starts a session.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(token) = &state.token else {
        return Redirect::to("/").into_response();
    };
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let csrf_ok = !nonce.is_empty()
        && form
            .csrf
            .as_deref()
            .is_some_and(|c| same(c, &state.sessions.login_token(&nonce)));
    if !csrf_ok {
        return page::forbidden(
            "The login form's security token is missing or wrong: reload the page and try again.",
        );
    }
    if !form.token.as_deref().is_some_and(|t| same(t, token)) {
        return login_page(
            &headers,
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That is not the API token."),
        );
    }
    let (id, _) = state.sessions.create();
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, COOKIE, &id, "/", None),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, LOGIN_COOKIE, "", "/login", Some(0)),
    );
    resp
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// `POST /logout`: ends the session (its CSRF token required) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = state.sessions.find(&headers) else {
        return Redirect::to("/login").into_response();
    };
    if let Some(refused) = csrf_refusal(&session, form.csrf.as_deref()) {
        return refused;
    }
    state.sessions.end(&headers);
    let mut resp = Redirect::to(if state.token.is_some() { "/login" } else { "/" }).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, COOKIE, "", "/", Some(0)),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_their_cookie_only() {
        let s = Sessions::new();
        let (id, session) = s.create();
        assert_eq!(id.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={id}")).unwrap(),
        );
        assert_eq!(s.find(&h).unwrap().csrf, session.csrf);
        s.end(&h);
        assert!(s.find(&h).is_none());
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("gantry_session=forged"),
        );
        assert!(s.find(&h).is_none());
        assert_ne!(s.login_token("n1"), s.login_token("n2"));
        assert_ne!(Sessions::new().login_token("n1"), s.login_token("n1"));
    }

    #[test]
    fn cookies_are_secure_over_https_only() {
        let mut h = HeaderMap::new();
        let plain = set_cookie(&h, COOKIE, "abc", "/", None);
        assert_eq!(
            plain,
            "gantry_session=abc; Path=/; HttpOnly; SameSite=Strict"
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let secure = set_cookie(&h, COOKIE, "", "/", Some(0));
        assert_eq!(
            secure,
            "gantry_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        );
    }
}

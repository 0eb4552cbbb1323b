//! What the HTTP API refuses before any handler runs, against a real `gantry serve`: requests
//! for another Host (DNS rebinding), cross-site requests (foreign `Origin`, form and text
//! bodies), CORS for listed origins, short tokens, request heads that never end, and list
//! limits.

mod common;

use common::{Server, TOKEN};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPEC: &str = "jobs:\n  a: {run: [\"true\"]}\n";
const ORDERS: &str = r#"{"orders": [{"name": "a", "cmds": ["true"]}]}"#;

fn port(s: &Server) -> String {
    s.url.rsplit(':').next().unwrap().to_string()
}

/// Sends `method path` with the given headers (Host and Origin included) and body.
async fn send(
    s: &Server,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = s.req(method, path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty() {
        req = req.body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn run_count(s: &Server) -> usize {
    s.get("/api/v1/runs").await.1["runs"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn requests_for_another_host_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let port = port(&s);
    let yaml = [("content-type", "application/yaml")];
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("localhost.evil.example:{port}"),
        "127.0.0.1:1".to_string(),
    ] {
        let mut headers = vec![("host", host.as_str())];
        headers.extend(yaml);
        let (st, _, body) = send(&s, Method::POST, "/api/v1/runs", &headers, SPEC).await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (421, Some("wrong_host")),
            "{host}: {body}"
        );
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&host) && msg.contains("GANTRY_PUBLIC_URL"),
            "{msg}"
        );
        let (st, _, _) = send(&s, Method::GET, "/api/v1/runs", &[("host", &host)], "").await;
        assert_eq!(st, 421, "{host}: reads are refused too");
        let (st, _, _) = send(&s, Method::POST, "/webhook", &headers, ORDERS).await;
        assert_eq!(st, 421, "{host}: /webhook");
    }
    assert_eq!(run_count(&s).await, 0, "nothing ran");
    // The names of a loopback listen, with its port.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (st, _, body) = send(&s, Method::GET, "/api/v1/runs", &[("host", &host)], "").await;
        assert_eq!(st, 200, "{host}: {body}");
    }

    // The public URL's host is accepted too (its default port when the Host has none).
    let other = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        other.path(),
        &[("GANTRY_PUBLIC_URL", "https://ci.example.com/gantry")],
    )
    .await;
    for (host, want) in [
        ("ci.example.com", 200),
        ("ci.example.com:443", 200),
        ("ci.example.com:8443", 421),
        ("other.example.com", 421),
    ] {
        let (st, _, _) = send(&s, Method::GET, "/api/v1/runs", &[("host", host)], "").await;
        assert_eq!(st, want, "{host}");
    }

    // On every interface (a token is required there) any Host is accepted.
    let any = tempfile::tempdir().unwrap();
    let s = Server::start_on(any.path(), "0.0.0.0:0", &[("GANTRY_API_TOKEN", TOKEN)]).await;
    let (st, _, body) = send(
        &s,
        Method::GET,
        "/api/v1/runs",
        &[("host", "gantry.internal:9")],
        "",
    )
    .await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    // What a page on another site can send without a preflight: a text/plain or form POST.
    for path in ["/api/v1/runs", "/webhook"] {
        let body = if path == "/webhook" { ORDERS } else { SPEC };
        let (st, _, resp) = send(
            &s,
            Method::POST,
            path,
            &[
                ("origin", "https://evil.example"),
                ("content-type", "text/plain"),
            ],
            body,
        )
        .await;
        assert_eq!(
            (st, resp["error"]["code"].as_str()),
            (403, Some("forbidden_origin")),
            "{path}: {resp}"
        );
        let msg = resp["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("https://evil.example") && msg.contains("GANTRY_CORS_ORIGINS"),
            "{msg}"
        );
        for ct in [
            Some("text/plain"),
            Some("text/plain; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
            let (st, _, resp) = send(&s, Method::POST, path, &headers, body).await;
            assert_eq!(
                (st, resp["error"]["code"].as_str()),
                (415, Some("unsupported_media_type")),
                "{path} {ct:?}: {resp}"
            );
            let msg = resp["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("application/json") && msg.contains("application/yaml"),
                "{msg}"
            );
        }
    }
    // A form POST with no fields has an empty body and is still refused.
    let (st, _, _) = send(
        &s,
        Method::POST,
        "/api/v1/runs/01NOPE/cancel",
        &[("content-type", "application/x-www-form-urlencoded")],
        "",
    )
    .await;
    assert_eq!(st, 415);
    assert_eq!(run_count(&s).await, 0, "nothing ran");

    // JSON and YAML, with parameters, are accepted; a request with no body needs no type.
    for ct in [
        "application/json; charset=utf-8",
        "Application/YAML",
        "application/x-yaml",
        "text/yaml",
    ] {
        let body = if ct.contains("json") {
            r#"{"jobs": {"a": {"run": ["true"]}}}"#
        } else {
            SPEC
        };
        let (st, _, resp) = send(
            &s,
            Method::POST,
            "/api/v1/runs",
            &[("content-type", ct)],
            body,
        )
        .await;
        assert_eq!(st, 202, "{ct}: {resp}");
    }
    let (st, _, resp) = send(&s, Method::POST, "/api/v1/runs/01NOPE/cancel", &[], "").await;
    assert_eq!(st, 404, "{resp}");
    assert_eq!(run_count(&s).await, 4);
}

#[tokio::test]
async fn listed_origins_get_cors_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[(
            "GANTRY_CORS_ORIGINS",
            "https://app.example.com, http://localhost:3000",
        )],
    )
    .await;
    let app = "https://app.example.com";
    let (st, h, _) = send(
        &s,
        Method::OPTIONS,
        "/api/v1/runs",
        &[
            ("origin", app),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, authorization",
            ),
        ],
        "",
    )
    .await;
    assert_eq!(st, 204, "preflight: {h:?}");
    assert_eq!(h["access-control-allow-origin"], app);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("content-type") && allowed.contains("authorization"),
        "{allowed}"
    );
    assert!(
        h["vary"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("origin")
    );

    let (st, h, resp) = send(
        &s,
        Method::POST,
        "/api/v1/runs",
        &[("origin", app), ("content-type", "application/yaml")],
        SPEC,
    )
    .await;
    assert_eq!(st, 202, "{resp}");
    assert_eq!(h["access-control-allow-origin"], app);
    let (st, h, _) = send(
        &s,
        Method::GET,
        "/api/v1/runs",
        &[("origin", "http://localhost:3000")],
        "",
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(h["access-control-allow-origin"], "http://localhost:3000");
    // An error a listed origin gets is readable there too.
    let (st, h, _) = send(
        &s,
        Method::GET,
        "/api/v1/runs/01NOPE",
        &[("origin", app)],
        "",
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(h["access-control-allow-origin"], app);

    // The server's own origin needs no listing.
    let own = s.url.clone();
    let (st, h, resp) = send(
        &s,
        Method::POST,
        "/api/v1/runs",
        &[("origin", &own), ("content-type", "application/yaml")],
        SPEC,
    )
    .await;
    assert_eq!(st, 202, "{resp}");
    assert!(h.get("access-control-allow-origin").is_none());

    for origin in [
        "https://evil.example",
        "https://app.example.com:8443",
        "http://app.example.com",
        "null",
    ] {
        let (st, h, resp) = send(
            &s,
            Method::OPTIONS,
            "/api/v1/runs",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
        assert_eq!(st, 403, "preflight from {origin}: {resp}");
        assert!(h.get("access-control-allow-origin").is_none());
        let (st, _, resp) = send(&s, Method::GET, "/api/v1/runs", &[("origin", origin)], "").await;
        assert_eq!(
            (st, resp["error"]["code"].as_str()),
            (403, Some("forbidden_origin")),
            "{origin}"
        );
    }
    assert_eq!(run_count(&s).await, 2);
}

async fn serve_exit(env: &[(&str, &str)], config: Option<&std::path::Path>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(common::gantry_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("GANTRY_API_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("serve started instead of refusing")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn short_tokens_are_refused_at_start() {
    let short = "short-token-of-31-chars-0123456";
    assert_eq!(short.chars().count(), 31);
    let (code, err) = serve_exit(&[("GANTRY_API_TOKEN", short)], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("at least 32 characters"), "{err}");
    assert!(!err.contains(short), "the token is never printed: {err}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gantry.toml");
    std::fs::write(&cfg, format!("api_token = \"{short}\"\n")).unwrap();
    let (code, err) = serve_exit(&[], Some(&cfg)).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("at least 32 characters") && err.contains("api_token"),
        "{err}"
    );
    assert!(!err.contains(short), "{err}");

    // 32 characters are enough.
    let ok = "x".repeat(32);
    let s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", &ok)]).await;
    assert_eq!(s.get("/api/v1/runs").await.0, 200);
}

#[tokio::test]
async fn connections_that_never_finish_their_request_head_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_HEADER_READ_TIMEOUT", "300ms")]).await;
    let addr = s.url.strip_prefix("http://").unwrap().to_string();
    // (what is sent, whether it is a request head still to be finished)
    for (what, sent, unfinished) in [
        ("a partial request line", &b"GET /healthz HT"[..], true),
        (
            "a request line and no end of headers",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
            true,
        ),
        ("nothing", b"", true),
        (
            "the start of HTTP/2's preface",
            b"PRI * HTTP/2.0\r\n",
            false,
        ),
    ] {
        let started = Instant::now();
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(sent).await.unwrap();
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a connection that sent {what} was kept open"
        );
        assert!(
            !unfinished || started.elapsed() >= Duration::from_millis(300),
            "{what}: closed before the timeout"
        );
    }
    // A whole request is still served, and an answer that takes longer than the timeout (a
    // followed log) is not cut.
    assert_eq!(s.get("/healthz").await.0, 200);
    let id = s
        .submit_yaml("jobs:\n  t: {run: [\"sleep 1\", \"echo done-late\"]}\n")
        .await;
    let resp = s
        .req(Method::GET, &format!("/api/v1/runs/{id}/jobs/t/log"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let text = tokio::time::timeout(Duration::from_secs(20), resp.text())
        .await
        .expect("the log stream did not end")
        .unwrap();
    assert!(started.elapsed() > Duration::from_millis(300));
    assert!(
        text.contains("data: done-late") && text.contains("event: end"),
        "{text}"
    );
}

#[tokio::test]
async fn list_limits_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    for path in ["/api/v1/runs", "/api/v1/events"] {
        for limit in [
            "4294967295",
            "1001",
            "0",
            "-1",
            "ten",
            "99999999999999999999",
        ] {
            let (st, body) = s.get(&format!("{path}?limit={limit}")).await;
            assert_eq!(
                (st, body["error"]["code"].as_str()),
                (400, Some("invalid_query")),
                "{path}?limit={limit}: {body}"
            );
            let msg = body["error"]["message"].as_str().unwrap();
            assert!(msg.contains("1000") && msg.contains(limit), "{msg}");
        }
        for limit in ["1", "1000"] {
            assert_eq!(s.get(&format!("{path}?limit={limit}")).await.0, 200);
        }
    }
}

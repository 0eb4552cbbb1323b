//! `/live`, the stream that tells pages when runs change, over plain HTTP: a change names the
//! run; without a session (a token set) there is no stream; a stream ends at the first change
//! after logout, and when the server stops (it does not hold the server up). A log followed
//! with the session's cookie ends with the session too.

use super::Browser;
use crate::common::{self, Server};
use futures_util::StreamExt;
use reqwest::header::COOKIE;
use std::time::Duration;

/// A stream's chunks, as they come.
type Chunks = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>;

/// Opens `/live` with the browser's cookies.
async fn open(b: &Browser, query: &str) -> Chunks {
    open_stream(b, &format!("/live{query}")).await
}

/// Opens an event stream at `path` with the browser's cookies.
async fn open_stream(b: &Browser, path: &str) -> Chunks {
    let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let resp = b
        .http
        .get(format!("{}{path}", b.url))
        .header(COOKIE, cookies.join("; "))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    Box::pin(resp.bytes_stream().map(|r| r.map(|b| b.to_vec())))
}

/// Reads the stream until `want` shows in it, or panics after `secs`.
async fn read_until(stream: &mut Chunks, want: &str, secs: u64) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !seen.contains(want) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(other) => panic!("the stream ended before {want}: {other:?} after {seen}"),
            Err(_) => panic!("no {want} within {secs} s: {seen}"),
        }
    }
    seen
}

/// Whether the stream ends (rather than sends more or stays open) within `secs`.
async fn ends(stream: &mut Chunks, secs: u64) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => continue, // keep-alive comments
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_change_names_its_run_and_the_stream_ends_when_the_server_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path()).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.get("/").await.status, 200); // a session
    let mut all = open(&b, "").await;
    let id = s
        .submit_yaml("name: seen\njobs:\n  a: {run: [\"true\"]}\n")
        .await;
    let got = read_until(&mut all, &id, 20).await;
    assert!(got.contains("event: change"), "{got}");
    let mut one = open(&b, &format!("?run={id}")).await;

    // SIGTERM: both streams end, and the server exits well within the grace period.
    let pid = s.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        ends(&mut all, 5).await,
        "/live ended when the server stopped"
    );
    assert!(ends(&mut one, 5).await);
    let exited = tokio::time::timeout(Duration::from_secs(8), s.child.wait()).await;
    assert!(exited.is_ok(), "the server exited with streams open");
}

#[tokio::test]
async fn without_a_session_there_is_no_stream_and_logging_out_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", common::TOKEN)]).await;
    let mut b = Browser::new(&s);
    let refused = b.get("/live").await;
    assert_eq!(refused.status, 303);
    assert_eq!(refused.location(), "/login");

    let form = b.get("/login").await;
    let ok = b
        .post_form(
            "/login",
            &[("token", common::TOKEN), ("csrf", &form.csrf())],
        )
        .await;
    assert_eq!(ok.status, 303);
    let home = b.get("/").await;
    let csrf = home.csrf();
    let mut live = open(&b, "").await;
    let first = s
        .submit_yaml("name: one\njobs:\n  a: {run: [\"true\"]}\n")
        .await;
    read_until(&mut live, &first, 20).await;
    let talking = s
        .submit_yaml(
            "name: talks\njobs:\n  t: {run: [\"while true; do echo tick; sleep 0.2; done\"]}\n",
        )
        .await;
    let mut log = open_stream(&b, &format!("/api/v1/runs/{talking}/jobs/t/log")).await;
    read_until(&mut log, "tick", 20).await;

    // Logged out through a copy of the session's cookie (the stream keeps the old one).
    let mut other = Browser::new(&s);
    other.cookies = b.cookies.clone();
    assert_eq!(
        other.post_form("/logout", &[("csrf", &csrf)]).await.status,
        303
    );
    s.submit_yaml("name: two\njobs:\n  a: {run: [\"true\"]}\n")
        .await;
    assert!(
        ends(&mut live, 20).await,
        "the stream ended at the first change after logout"
    );
    assert!(
        ends(&mut log, 5).await,
        "the log followed with the session's cookie ended with the session"
    );
}

//! The web dashboard in a real browser: Debian's headless Chromium through its WebDriver
//! (`common/browser.rs`), against a real `gantry serve`. Logging in and out with the token,
//! a run's jobs and status changing live (no reload), the graph linking to the logs, a log's
//! lines arriving live with their colours, cancelling a run, a rule refused with the server's
//! reason, and markup in names and logs shown as text; every other section drawn.
//!
//! Jobs wait on gate files the test creates, so that the page is seen in each state; nothing
//! sleeps to synchronise, everything is polled with a deadline. A screenshot of every page
//! is written to `target/screenshots/` (or `$CARGO_TARGET_DIR/screenshots/`).

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::Server;
use serde_json::json;
use std::path::Path;

/// How long a page may take to show a change (pages hear of changes over SSE; a busy machine).
const LIVE: u64 = 20;

/// A shell command that waits until `gate` exists.
fn wait_gate(gate: &Path) -> String {
    format!("while [ ! -e {} ]; do sleep 0.05; done", gate.display())
}

fn open(gate: &Path) {
    std::fs::write(gate, b"").unwrap();
}

/// Sets a marker on `window`: it is gone if the page reloads or navigates.
async fn mark(b: &Browser) {
    b.exec("window.__noReload = 1;", json!([])).await;
}

async fn assert_not_reloaded(b: &Browser, what: &str) {
    let marker = b.exec("return window.__noReload || null;", json!([])).await;
    assert_eq!(marker, json!(1), "the page reloaded or navigated: {what}");
}

async fn no_dialog(b: &Browser) {
    assert_eq!(b.alert_text().await, None, "a dialog opened");
}

/// Logs in through the form with `token`.
async fn log_in(b: &Browser, s: &Server, token: &str) {
    b.goto(&format!("{}/login", s.url)).await;
    let field = b.find("#token").await;
    b.clear(&field).await;
    b.send_keys(&field, token).await;
    b.click(&b.find("form.login button[type=submit]").await)
        .await;
}

async fn status_of(b: &Browser, css: &str) -> String {
    b.text_of(css).await.unwrap_or_default()
}

#[tokio::test]
async fn logging_in_and_out_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", common::TOKEN)]).await;
    let b = Browser::start().await;

    b.goto(&format!("{}/", s.url)).await;
    assert_eq!(b.url().await, format!("{}/login", s.url), "sent to log in");
    assert_eq!(b.text_of("h1").await.as_deref(), Some("Log in"));
    b.screenshot("login").await;

    log_in(&b, &s, "not-the-token-at-all-0123456789abcdef").await;
    let error = b
        .wait_for("the login error", LIVE, async || b.text_of("p.error").await)
        .await;
    assert!(error.contains("not the API token"), "{error}");
    assert_eq!(b.url().await, format!("{}/login", s.url));
    b.screenshot("login-error").await;

    log_in(&b, &s, common::TOKEN).await;
    b.wait_for("the runs page after logging in", LIVE, async || {
        (b.text_of("h1").await.as_deref() == Some("Runs")).then_some(())
    })
    .await;
    assert_eq!(b.url().await, format!("{}/", s.url));
    let cookie = b.exec("return document.cookie;", json!([])).await;
    assert_eq!(cookie, json!(""), "the session cookie is HttpOnly");
    b.screenshot("runs-empty").await;

    b.click(&b.find("form.logout button").await).await;
    b.wait_for("the login page after logging out", LIVE, async || {
        (b.text_of("h1").await.as_deref() == Some("Log in")).then_some(())
    })
    .await;
    assert_eq!(b.url().await, format!("{}/login", s.url));
    b.goto(&format!("{}/runs/01NOSUCHRUN", s.url)).await;
    assert_eq!(
        b.url().await,
        format!("{}/login", s.url),
        "logged out: pages need a login again"
    );
    no_dialog(&b).await;
    b.quit().await;
}

#[tokio::test]
async fn a_run_changes_live_on_its_page_and_in_the_list_and_its_graph_links_to_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", common::TOKEN)]).await;
    let (gate_a, gate_b) = (dir.path().join("gate-a"), dir.path().join("gate-b"));
    let spec = json!({
        "name": "<img src=x onerror=alert(1)><script>alert(2)</script>",
        "jobs": {
            "build": {"run": [format!("echo building; {}", wait_gate(&gate_a))]},
            "test": {"needs": ["build"], "run": [format!("echo testing; {}", wait_gate(&gate_b))]},
            "lint": {"needs": ["build"], "run": ["echo linting"]},
        },
    });
    let id = s.submit_yaml(&spec.to_string()).await;
    s.wait_run(&id, LIVE, |r| {
        common::job(r, "build")["status"] == "running"
    })
    .await;

    let b = Browser::start().await;
    log_in(&b, &s, common::TOKEN).await;
    b.wait_for("the runs page", LIVE, async || {
        b.text_of(&format!("tr[data-run-id=\"{id}\"]")).await
    })
    .await;
    let run_url = format!("{}/runs/{id}", s.url);
    b.goto(&run_url).await;
    no_dialog(&b).await;
    let h1 = b.text_of("h1").await.unwrap();
    assert!(
        h1.contains("<img src=x onerror=alert(1)><script>alert(2)</script>"),
        "the name is shown as text: {h1}"
    );
    assert_eq!(b.find_all("main img, main script").await.len(), 0);
    let job = |name: &str| format!("tr[data-job=\"{name}\"] [data-status]");
    assert_eq!(status_of(&b, "[data-run-status]").await, "running");
    assert_eq!(status_of(&b, &job("build")).await, "running");
    for waiting in ["test", "lint"] {
        let st = status_of(&b, &job(waiting)).await;
        assert!(
            matches!(st.as_str(), "pending" | "queued"),
            "{waiting}: {st}"
        );
    }
    assert_eq!(b.find_all(".graph svg g.node").await.len(), 3);
    let edges = b
        .exec(
            "return [...document.querySelectorAll('.graph svg path.edge')]\
             .map(p => p.getAttribute('d').split('M').length - 1)\
             .reduce((a, n) => a + n, 0);",
            json!([]),
        )
        .await;
    assert_eq!(edges, json!(2), "two needs, two lines in the graph");
    b.full_screenshot("run-running", 1280, 900).await;
    mark(&b).await;

    open(&gate_a);
    b.wait_text(&job("build"), LIVE, |t| t == "succeeded").await;
    b.wait_text(&job("lint"), LIVE, |t| t == "succeeded").await;
    b.wait_text(&job("test"), LIVE, |t| t == "running").await;
    let node = b
        .exec(
            "return document.querySelector('g.node[data-job=\"build\"]').getAttribute('class');",
            json!([]),
        )
        .await;
    assert!(
        node.as_str().unwrap().contains("st-succeeded"),
        "the graph's node follows: {node}"
    );
    assert_eq!(status_of(&b, "[data-run-status]").await, "running");
    assert_not_reloaded(&b, "while the run ran").await;

    open(&gate_b);
    b.wait_text("[data-run-status]", LIVE, |t| t == "succeeded")
        .await;
    b.wait_text(&job("test"), LIVE, |t| t == "succeeded").await;
    // Once the run is over, what only the server draws (durations, the critical path, the
    // buttons) comes too, still without a reload.
    b.wait_for("the finished run's critical path", LIVE, async || {
        b.text_of("p.legend").await
    })
    .await;
    assert_eq!(
        b.find_all("form[action$=\"/cancel\"]").await.len(),
        0,
        "no cancel button on a finished run"
    );
    assert_not_reloaded(&b, "when the run finished").await;
    no_dialog(&b).await;
    b.full_screenshot("run", 1280, 900).await;

    // Dark, and at a phone's width.
    b.prefer_color_scheme("dark").await;
    let dark = b
        .exec(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            json!([]),
        )
        .await;
    assert_eq!(dark, json!(true));
    b.screenshot("run-dark").await;
    b.prefer_color_scheme("light").await;
    b.set_window_size(390, 844).await;
    b.screenshot("run-phone").await;
    b.set_window_size(1280, 900).await;

    // The graph's nodes link to the jobs' logs.
    b.click(&b.find("g.node[data-job=\"test\"]").await).await;
    b.wait_for("the log page of test", LIVE, async || {
        (b.url().await == format!("{run_url}/jobs/test")).then_some(())
    })
    .await;
    b.wait_text("#log", LIVE, |t| t.lines().any(|l| l == "testing"))
        .await;

    // The list follows a run too: a new one appears, and its status changes.
    let gate_c = dir.path().join("gate-c");
    b.goto(&format!("{}/", s.url)).await;
    mark(&b).await;
    let spec = format!(
        "name: second\njobs:\n  only: {{run: [\"{}\"]}}\n",
        wait_gate(&gate_c)
    );
    let second = s.submit_yaml(&spec).await;
    let row = format!("tr[data-run-id=\"{second}\"] [data-status]");
    b.wait_text(&row, LIVE, |t| t == "running").await;
    b.screenshot("runs").await;
    open(&gate_c);
    b.wait_text(&row, LIVE, |t| t == "succeeded").await;
    assert_not_reloaded(&b, "on the runs list").await;
    b.set_window_size(390, 844).await;
    b.screenshot("runs-phone").await;
    b.prefer_color_scheme("dark").await;
    b.set_window_size(1280, 900).await;
    b.screenshot("runs-dark").await;
    b.quit().await;
}

#[tokio::test]
async fn a_log_shows_its_lines_live_with_colours_and_a_run_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let gate = dir.path().join("gate");
    let script = format!(
        "echo first line; printf '\\033[31mred\\033[0m and \\033[1;32mbold green\\033[0m\\n'; \
         echo '<script>alert(3)</script><b>not bold</b>'; {}; echo second line; sleep 60",
        wait_gate(&gate)
    );
    let spec = json!({"name": "logs", "jobs": {"talk": {"run": [script]}}});
    let id = s.submit_yaml(&spec.to_string()).await;
    s.wait_run(&id, LIVE, |r| common::job(r, "talk")["status"] == "running")
        .await;

    let b = Browser::start().await;
    b.goto(&format!("{}/runs/{id}/jobs/talk", s.url)).await;
    // The shell's own `$ command` line comes first: the output's lines are looked for whole.
    b.wait_text("#log", LIVE, |t| {
        t.lines()
            .any(|l| l == "<script>alert(3)</script><b>not bold</b>")
    })
    .await;
    no_dialog(&b).await;
    mark(&b).await;
    let log = b.text_of("#log").await.unwrap();
    assert!(!log.lines().any(|l| l == "second line"), "{log}");
    assert_eq!(b.find_all("#log script, #log b").await.len(), 0);
    let red = b.text_of("#log span.fg1").await;
    assert_eq!(red.as_deref(), Some("red"), "ANSI red is a span");
    let bold = b.attr(&b.find("#log span.fg2").await, "class").await;
    assert!(bold.as_deref().is_some_and(|c| c.contains('b')), "{bold:?}");
    let colour = b
        .exec(
            "return getComputedStyle(document.querySelector('#log span.fg1')).color;",
            json!([]),
        )
        .await;
    assert_ne!(
        colour,
        b.exec(
            "return getComputedStyle(document.getElementById('log')).color;",
            json!([])
        )
        .await,
        "the red span has a colour of its own"
    );
    assert_eq!(status_of(&b, "[data-job-status]").await, "running");
    assert_eq!(
        b.text_of("#follow").await.as_deref(),
        Some("Stop following")
    );

    open(&gate);
    b.wait_text("#log", LIVE, |t| t.lines().any(|l| l == "second line"))
        .await;
    assert_not_reloaded(&b, "while the log grew").await;
    b.full_screenshot("log", 1280, 900).await;
    b.prefer_color_scheme("dark").await;
    b.screenshot("log-dark").await;
    b.prefer_color_scheme("light").await;

    // Cancelling through the run page's button.
    b.goto(&format!("{}/runs/{id}", s.url)).await;
    assert_eq!(status_of(&b, "[data-run-status]").await, "running");
    b.click(&b.find("form[action$=\"/cancel\"] button").await)
        .await;
    b.wait_text("[data-run-status]", LIVE, |t| t == "cancelled")
        .await;
    b.wait_text("tr[data-job=\"talk\"] [data-status]", LIVE, |t| {
        t == "cancelled"
    })
    .await;
    assert_eq!(b.url().await, format!("{}/runs/{id}", s.url));
    assert_eq!(
        s.get(&format!("/api/v1/runs/{id}")).await.1["status"],
        "cancelled"
    );
    b.screenshot("run-cancelled").await;
    no_dialog(&b).await;
    b.quit().await;
}

#[tokio::test]
async fn a_rule_with_an_invalid_pattern_shows_the_reason_and_events_show() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/rules", s.url)).await;
    b.screenshot("rules-empty").await;
    b.click(&b.find("a[href=\"/rules/new\"]").await).await;
    b.wait_for("the new rule form", LIVE, async || {
        (b.text_of("h1").await.as_deref() == Some("New rule")).then_some(())
    })
    .await;

    let fill = async |name: &str, pattern: &str| {
        let field = b.find("input[name=name]").await;
        b.clear(&field).await;
        b.send_keys(&field, name).await;
        let field = b.find("textarea[name=pattern]").await;
        b.clear(&field).await;
        b.send_keys(&field, pattern).await;
        let field = b.find("textarea[name=target]").await;
        b.clear(&field).await;
        b.send_keys(&field, r#"{"http": "https://example.com/hook"}"#)
            .await;
        b.click(&b.find("form.rule-form button[type=submit]").await)
            .await;
    };
    // As you type: the server's reason under the field, then that it is valid.
    let pattern = b.find("textarea[name=pattern]").await;
    b.send_keys(&pattern, r#"{"source": "custom.app"}"#).await;
    let hint = b
        .wait_for("the pattern's hint as you type", LIVE, async || {
            // Not the half-typed pattern's "not JSON": the whole one's reason.
            b.text_of("#pattern-hint.error")
                .await
                .filter(|t| !t.is_empty() && !t.contains("not JSON"))
        })
        .await;
    assert!(hint.starts_with("pattern: "), "{hint}");
    b.clear(&pattern).await;
    b.send_keys(&pattern, r#"{"source": ["custom.app"]}"#).await;
    b.wait_for("the hint that the pattern is valid", LIVE, async || {
        (b.text_of("#pattern-hint").await.as_deref() == Some("The pattern is valid.")).then_some(())
    })
    .await;

    // Not an array of values: the bus refuses it, and the page says why.
    fill("notify", r#"{"source": "custom.app"}"#).await;
    let reason = b
        .wait_for("the server's reason", LIVE, async || {
            b.text_of("p.error .reason").await
        })
        .await;
    assert!(reason.starts_with("pattern: "), "{reason}");
    let kept = b
        .exec(
            "return document.querySelector('textarea[name=pattern]').value;",
            json!([]),
        )
        .await;
    assert_eq!(
        kept,
        json!(r#"{"source": "custom.app"}"#),
        "what was typed is kept"
    );
    assert_eq!(s.get("/api/v1/rules").await.1["rules"], json!([]));
    b.full_screenshot("rule-new-error", 1280, 900).await;

    fill("notify", r#"{"source": ["custom.app"]}"#).await;
    b.wait_for("the new rule's page", LIVE, async || {
        (b.url().await == format!("{}/rules/notify", s.url)).then_some(())
    })
    .await;
    b.full_screenshot("rule", 1280, 900).await;
    b.goto(&format!("{}/rules", s.url)).await;
    assert_eq!(b.find_all("tr[data-rule=\"notify\"]").await.len(), 1);
    b.screenshot("rules").await;

    let entries = json!({"Entries": [{"Source": "custom.app", "DetailType": "Deploy",
        "Detail": "{\"note\": \"<script>alert(4)</script>\"}"}]});
    let (st, answer) = s
        .post("/api/v1/events", "application/json", entries.to_string())
        .await;
    assert_eq!(st, 200, "{answer}");
    let event = answer["Entries"][0]["EventId"]
        .as_str()
        .unwrap()
        .to_string();
    b.goto(&format!("{}/events", s.url)).await;
    assert_eq!(
        b.find_all(&format!("tr[data-event-id=\"{event}\"]"))
            .await
            .len(),
        1
    );
    b.screenshot("events").await;
    b.click(&b.find(&format!("a[href=\"/events/{event}\"]")).await)
        .await;
    let payload = b
        .wait_for("the event's payload", LIVE, async || {
            b.text_of("pre.payload").await
        })
        .await;
    assert!(payload.contains("<script>alert(4)</script>"), "{payload}");
    no_dialog(&b).await;
    b.full_screenshot("event", 1280, 900).await;
    b.set_window_size(390, 844).await;
    b.screenshot("event-phone").await;
    b.quit().await;
}

#[tokio::test]
async fn every_other_section_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    // A job that fails once and then succeeds: two bars on the timeline.
    let marker = dir.path().join("tried");
    let spec = format!(
        "name: flaky\njobs:\n  build: {{run: [\"true\"]}}\n  flaky-test:\n    needs: [build]\n    retries: 1\n    run: [\"if [ -e {m} ]; then echo ok; else touch {m}; exit 1; fi\"]\n",
        m = marker.display()
    );
    let id = s.submit_yaml(&spec).await;
    assert_eq!(s.wait_finished(&id, 30).await["status"], "succeeded");
    let secret = json!({"name": "DEPLOY_KEY", "value": "s3cr3t-value-xyz"});
    let (st, body) = s
        .post("/api/v1/secrets", "application/json", secret.to_string())
        .await;
    assert!(st == 201 || st == 200, "{st} {body}");

    let b = Browser::start().await;
    for (path, title, shot) in [
        (format!("/runs/{id}/timeline"), "Timeline", "timeline"),
        (format!("/runs/{id}/audit"), "Audit trail", "audit"),
        ("/services".to_string(), "Services", "services"),
        ("/secrets".to_string(), "Secrets", "secrets"),
        ("/runners".to_string(), "Runners", "runners"),
        ("/deploys".to_string(), "Deployments", "deploys"),
        ("/settings".to_string(), "Settings", "settings"),
    ] {
        b.goto(&format!("{}{path}", s.url)).await;
        let h1 = b.text_of("h1").await.unwrap_or_default();
        assert!(h1.starts_with(title), "{path}: {h1}");
        b.full_screenshot(shot, 1280, 900).await;
        no_dialog(&b).await;
    }
    b.goto(&format!("{}/runs/{id}/timeline", s.url)).await;
    assert_eq!(
        b.find_all("svg g.node rect").await.len(),
        3,
        "build, and flaky-test twice"
    );
    b.goto(&format!("{}/secrets", s.url)).await;
    let html = b
        .exec("return document.documentElement.outerHTML;", json!([]))
        .await;
    let html = html.as_str().unwrap_or_default();
    assert!(
        html.contains("DEPLOY_KEY") && !html.contains("s3cr3t"),
        "{html}"
    );
    b.set_window_size(390, 844).await;
    b.screenshot("secrets-phone").await;
    b.goto(&format!("{}/settings", s.url)).await;
    b.screenshot("settings-phone").await;
    b.quit().await;
}

//! Snapshot tests of the rendered HTML (insta, in `tests/dashboard/snapshots/`): one finished
//! run's pages (the runs list, the run with its graph, a log with colours, the timeline and the
//! audit trail), the rules and events pages, the login page and a 404, each from a real
//! `gantry serve`. What differs between two runs of the test (ids, times, durations, the CSRF
//! token, the timeline's bar positions) is replaced by a placeholder before comparing; all
//! else — markup, escaping, structure — must match the stored snapshot.

use super::Browser;
use crate::common::Server;
use regex_lite::Regex;

// The jobs run one after another (lint needs slow-test too), so the audit trail and the
// timeline list them in one order every time.

/// What changes from one run of the test to the next, and its placeholder.
fn normalise(html: &str) -> String {
    let rules = [
        (
            r#"name="csrf" value="[^"]+""#,
            r#"name="csrf" value="[csrf]""#,
        ),
        (r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "[ulid]"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "[time]",
        ),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[time]"),
        (r"\b[0-9a-f]{32}\b", "[trace]"),
        (r"\b\d+m \d{2}s\b", "[dur]"),
        (r"\b\d+(\.\d)?(ms|s)\b", "[dur]"),
        (
            r#"<rect x="\d+" y="(\d+)" width="\d+" height="16""#,
            r#"<rect x="[x]" y="$1" width="[w]" height="16""#,
        ),
    ];
    let mut out = html.to_string();
    for (pattern, with) in rules {
        out = Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

#[test]
fn the_placeholders_cover_what_varies() {
    assert_eq!(
        normalise(
            r#"<input name="csrf" value="x-Y_1"> 01KBV4Z8T7M9QX3W2N5R6P0HJD 2026-12-07T15:06:01.123Z 2026-12-07 15:06:01 +850ms 12.3s 4m 05s 0123456789abcdef0123456789abcdef"#
        ),
        r#"<input name="csrf" value="[csrf]"> [ulid] [time] [time] +[dur] [dur] [dur] [trace]"#
    );
}

const SPEC: &str = r#"name: snapshot <b>run</b>
jobs:
  build:
    run:
      - printf 'compiling\n\033[32mok\033[0m <script>x</script>\n'
  slow-test:
    needs: [build]
    run: ["sleep 0.3"]
  lint:
    needs: [build, slow-test]
    run: ["true"]
  fails:
    needs: [slow-test, lint]
    run: ["echo broken >&2; exit 4"]
"#;

#[tokio::test]
async fn pages_render_as_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let id = s.submit_yaml(SPEC).await;
    s.wait_finished(&id, 30).await;
    let rule = serde_json::json!({"name": "notify",
        "pattern": {"source": ["gantry.runs"], "detail-type": ["Run Finished"]},
        "target": {"http": "https://example.com/hook"}});
    let (st, body) = s
        .post("/api/v1/rules", "application/json", rule.to_string())
        .await;
    assert_eq!(st, 201, "{body}");

    let mut b = Browser::new(&s);
    let pages = [
        ("runs", "/".to_string()),
        ("run", format!("/runs/{id}")),
        ("log", format!("/runs/{id}/jobs/build")),
        ("failed_log", format!("/runs/{id}/jobs/fails")),
        ("timeline", format!("/runs/{id}/timeline")),
        ("audit", format!("/runs/{id}/audit")),
        ("rules", "/rules".to_string()),
        ("rule", "/rules/notify".to_string()),
        ("not_found", "/runs/01NOSUCHRUN".to_string()),
    ];
    for (name, path) in pages {
        let p = b.get(&path).await;
        let want = if name == "not_found" { 404 } else { 200 };
        assert_eq!(p.status, want, "{path}: {}", p.body);
        insta::assert_snapshot!(name, normalise(&p.body));
    }
}

#[tokio::test]
async fn the_login_page_renders_as_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", crate::common::TOKEN)]).await;
    let mut b = Browser::new(&s);
    let form = b.get("/login").await;
    assert_eq!(form.status, 200);
    insta::assert_snapshot!("login", normalise(&form.body));
    let csrf = form.csrf();
    let wrong = b
        .post_form("/login", &[("token", "wrong"), ("csrf", &csrf)])
        .await;
    insta::assert_snapshot!("login_refused", normalise(&wrong.body));
}

//! The Events and Rules pages: events put through the API listed and shown with their
//! outcome and escaped payload; rules created, refused with the server's reasons, edited,
//! tested against events, and deleted through forms that need the CSRF token.

use super::{Browser, csp_ok};
use crate::common::Server;
use serde_json::json;

#[tokio::test]
async fn events_show_with_their_outcome_and_an_escaped_payload() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (st, answer) = s
        .post(
            "/webhook",
            "application/json",
            r#"{"orders": [{"name": "a", "cmds": ["true"]}]}"#,
        )
        .await;
    assert_eq!(st, 202, "{answer}");
    let hook_id = answer["event_id"].as_str().unwrap().to_string();
    let run_id = answer["run_id"].as_str().unwrap().to_string();
    let entries = json!({"Entries": [{"Source": "custom.app", "DetailType": "Deploy",
        "Detail": "{\"note\": \"<script>alert(1)</script>\"}"}]});
    let (st, answer) = s
        .post("/api/v1/events", "application/json", entries.to_string())
        .await;
    assert_eq!(st, 200, "{answer}");
    let put_id = answer["Entries"][0]["EventId"]
        .as_str()
        .unwrap()
        .to_string();

    let mut b = Browser::new(&s);
    let list = b.get("/events").await;
    assert_eq!(list.status, 200);
    assert!(list.html());
    csp_ok(&list);
    assert!(!list.body.contains("coming soon"));
    let at_put = list
        .body
        .find(&format!("data-event-id=\"{put_id}\""))
        .unwrap();
    let at_hook = list
        .body
        .find(&format!("data-event-id=\"{hook_id}\""))
        .unwrap();
    assert!(at_put < at_hook, "newest first");
    assert!(
        list.body.contains(&format!("started run {run_id}")),
        "{}",
        list.body
    );
    assert!(list.body.contains("custom.app") && list.body.contains("gantry.webhook"));

    let one = b.get(&format!("/events/{hook_id}")).await;
    assert_eq!(one.status, 200);
    csp_ok(&one);
    assert!(one.body.contains(&format!("started run {run_id}")));
    assert!(one.body.contains("&#34;orders&#34;"), "{}", one.body);

    let put = b.get(&format!("/events/{put_id}")).await;
    assert_eq!(put.status, 200);
    csp_ok(&put);
    assert!(!put.body.contains("<script>alert"), "{}", put.body);
    assert!(
        put.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(put.body.contains("Deploy"));

    let missing = b.get("/events/01NOSUCHEVENT").await;
    assert_eq!(missing.status, 404);
    assert!(missing.html());
    csp_ok(&missing);
}

#[tokio::test]
async fn rules_are_refused_created_edited_tested_and_deleted_through_forms() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut b = Browser::new(&s);
    let list = b.get("/rules").await;
    assert_eq!(list.status, 200);
    csp_ok(&list);
    assert!(list.body.contains("No rules yet"));
    let csrf = list.csrf();
    let target = r#"{"http": "https://example.com/hook"}"#;

    // The form's hints as you type: the same reason saving would give, changing nothing.
    for (pattern, want) in [
        (r#"{"source": ["custom.app"]}"#, None),
        ("", None),
        (r#"{"source": "custom.app"}"#, Some("pattern: ")),
        (r#"{"source": ["#, Some("pattern: not JSON")),
    ] {
        let q = serde_urlencoded::to_string([("pattern", pattern)]).unwrap();
        let hint = b.get(&format!("/rules/new/check?{q}")).await;
        assert_eq!(hint.status, 200);
        let v: serde_json::Value = serde_json::from_str(&hint.body).unwrap();
        assert_eq!(v["ok"], want.is_none(), "{pattern}: {v}");
        if let Some(want) = want {
            assert!(v["reason"].as_str().unwrap().starts_with(want), "{v}");
        }
    }

    // An invalid pattern: the server's reason, 422, what was typed kept, nothing created.
    let bad = b
        .post_form(
            "/rules/new",
            &[
                ("csrf", &csrf),
                ("name", "notify"),
                ("pattern", r#"{"source": "custom.app"}"#),
                ("target", target),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    csp_ok(&bad);
    assert!(
        bad.body.contains("class=\"reason\">pattern: "),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains("{&#34;source&#34;: &#34;custom.app&#34;}")
    );
    assert!(bad.body.contains("value=\"notify\""));
    assert_eq!(s.get("/api/v1/rules").await.1["rules"], json!([]));
    let not_json = b
        .post_form(
            "/rules/new",
            &[
                ("csrf", &csrf),
                ("name", "notify"),
                ("pattern", "{x"),
                ("target", target),
            ],
        )
        .await;
    assert_eq!(not_json.status, 422);
    assert!(not_json.body.contains("pattern: not JSON"));

    // Without the token: refused.
    let valid = [
        ("name", "notify"),
        ("pattern", r#"{"source": ["custom.app"]}"#),
        ("target", target),
        ("enabled", "on"),
    ];
    assert_eq!(b.post_form("/rules/new", &valid).await.status, 403);
    assert_eq!(s.get("/api/v1/rules").await.1["rules"], json!([]));

    let mut with_csrf = vec![("csrf", csrf.as_str())];
    with_csrf.extend(valid);
    let made = b.post_form("/rules/new", &with_csrf).await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(made.location(), "/rules/notify");
    let (st, rule) = s.get("/api/v1/rules/notify").await;
    assert_eq!(st, 200);
    assert_eq!(rule["pattern"], json!({"source": ["custom.app"]}));
    assert_eq!(rule["enabled"], true);
    let list = b.get("/rules").await;
    assert!(list.body.contains("data-rule=\"notify\""), "{}", list.body);
    let shown = b.get("/rules/notify").await;
    assert_eq!(shown.status, 200);
    csp_ok(&shown);
    assert!(shown.body.contains("https://example.com/hook"));
    assert_eq!(b.post_form("/rules/new", &with_csrf).await.status, 409);

    // Edit: refused with its reason, then saved.
    let bad_edit = b
        .post_form(
            "/rules/notify",
            &[
                ("csrf", &csrf),
                ("pattern", r#"{"source": []}"#),
                ("target", target),
            ],
        )
        .await;
    assert_eq!(bad_edit.status, 422, "{}", bad_edit.body);
    assert!(bad_edit.body.contains("class=\"reason\">pattern: "));
    assert!(bad_edit.body.contains("{&#34;source&#34;: []}"));
    let edit = [
        ("pattern", r#"{"source": ["other.app"]}"#),
        ("target", target),
    ];
    assert_eq!(b.post_form("/rules/notify", &edit).await.status, 403);
    let mut edit_csrf = vec![("csrf", csrf.as_str())];
    edit_csrf.extend(edit);
    let saved = b.post_form("/rules/notify", &edit_csrf).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let rule = s.get("/api/v1/rules/notify").await.1;
    assert_eq!(rule["pattern"], json!({"source": ["other.app"]}));
    assert_eq!(rule["enabled"], false, "the box was not ticked");

    // Test the pattern against events.
    let hit = r#"{"source": "other.app", "detail-type": "X", "detail": {}}"#;
    let miss = r#"{"source": "custom.app", "detail-type": "X", "detail": {}}"#;
    assert_eq!(
        b.post_form("/rules/notify/test", &[("event", hit)])
            .await
            .status,
        403
    );
    let matched = b
        .post_form("/rules/notify/test", &[("csrf", &csrf), ("event", hit)])
        .await;
    assert_eq!(matched.status, 200);
    csp_ok(&matched);
    assert!(
        matched.body.contains(">Matched</strong>"),
        "{}",
        matched.body
    );
    let missed = b
        .post_form("/rules/notify/test", &[("csrf", &csrf), ("event", miss)])
        .await;
    assert!(
        missed.body.contains(">Not matched</strong>"),
        "{}",
        missed.body
    );
    assert!(
        missed.body.contains("&#34;custom.app&#34;"),
        "the event stays"
    );
    let junk = b
        .post_form("/rules/notify/test", &[("csrf", &csrf), ("event", "{")])
        .await;
    assert_eq!(junk.status, 422);
    assert!(junk.body.contains("The event is not JSON"));

    // Delete.
    assert_eq!(b.post_form("/rules/notify/delete", &[]).await.status, 403);
    assert_eq!(s.get("/api/v1/rules/notify").await.0, 200);
    let gone = b
        .post_form("/rules/notify/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(gone.status, 303);
    assert_eq!(gone.location(), "/rules");
    assert_eq!(s.get("/api/v1/rules/notify").await.0, 404);
    let missing = b.get("/rules/notify").await;
    assert_eq!(missing.status, 404);
    assert!(missing.html());
}

#[tokio::test]
async fn events_show_failing_deliveries_and_come_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_ALLOW_INTERNAL_HOSTS", "127.0.0.1")]).await;
    // Nothing listens on port 1: every attempt fails and is retried.
    let rule = json!({"name": "hook", "pattern": {"detail-type": ["Ping"]},
        "target": {"http": "http://127.0.0.1:1/hook"}});
    let (st, body) = s
        .post("/api/v1/rules", "application/json", rule.to_string())
        .await;
    assert_eq!(st, 201, "{body}");
    let mut ids = Vec::new();
    for batch in 0..6 {
        let entries: Vec<_> = (0..10)
            .map(|i| {
                let kind = if batch == 5 && i == 9 { "Ping" } else { "Tick" };
                json!({"Source": "custom.app", "DetailType": kind, "Detail": "{}"})
            })
            .collect();
        let (st, answer) = s
            .post(
                "/api/v1/events",
                "application/json",
                json!({ "Entries": entries }).to_string(),
            )
            .await;
        assert_eq!(st, 200, "{answer}");
        for e in answer["Entries"].as_array().unwrap() {
            ids.push(e["EventId"].as_str().unwrap().to_string());
        }
    }
    let ping = ids.last().unwrap().clone();
    let error = failed_attempt(&s, &ping).await;

    let mut b = Browser::new(&s);
    let one = b.get(&format!("/events/{ping}")).await;
    assert_eq!(one.status, 200);
    csp_ok(&one);
    assert!(one.body.contains("href=\"/rules/hook\""), "{}", one.body);
    let shown_error = error.replace('"', "&#34;").replace('\'', "&#39;");
    assert!(
        one.body.contains(&shown_error) || one.body.contains(&error),
        "{error} in {}",
        one.body
    );

    let first = b.get("/events").await;
    assert_eq!(first.body.matches("<tr data-event-id=").count(), 50);
    assert!(first.body.contains(&format!("data-event-id=\"{ping}\"")));
    assert!(!first.body.contains("Newest events"));
    let last = shown_ids(&first.body).pop().unwrap();
    let older = format!("href=\"/events?before={last}\"");
    assert!(first.body.contains(&older), "{older} in {}", first.body);
    let second = b.get(&format!("/events?before={last}")).await;
    assert_eq!(second.status, 200);
    let rest = shown_ids(&second.body);
    assert_eq!(rest.len(), 10, "{}", second.body);
    assert!(shown_ids(&first.body).iter().all(|id| !rest.contains(id)));
    assert!(second.body.contains("href=\"/events\">Newest events"));
    assert!(!second.body.contains("Older events"));

    // Filters: by source and type (the one Ping), then a type nothing has.
    let ping_only = b.get("/events?source=custom.app&type=Ping").await;
    assert_eq!(
        shown_ids(&ping_only.body),
        std::slice::from_ref(&ping),
        "{}",
        ping_only.body
    );
    assert!(ping_only.body.contains("value=\"custom.app\""));
    assert!(!ping_only.body.contains("Older events"));
    let none = b.get("/events?source=custom.app&type=nothing.such").await;
    assert!(shown_ids(&none.body).is_empty());
    assert!(none.body.contains("No events match these filters"));
}

/// The event ids of a page's table, in order.
fn shown_ids(body: &str) -> Vec<String> {
    body.split("<tr data-event-id=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().to_string())
        .collect()
}

/// The error of the event's first failed attempt, once there is one.
async fn failed_attempt(s: &Server, id: &str) -> String {
    crate::common::eventually(20, "a delivery attempt failed", async || {
        let e = s.get(&format!("/api/v1/events/{id}")).await.1;
        let d = &e["deliveries"][0];
        (d["attempts"].as_u64()? >= 1).then(|| d["result"].as_str().map(str::to_string))?
    })
    .await
}

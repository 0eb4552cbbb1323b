//! Webhook intake against a real server: signed GitHub deliveries (real payloads from
//! `fixtures/github/`), deduplication, bad input, and the seed `orders` webhook.

mod common;

use common::Server;
use gantry::server::signature::{Secret, sign};

const SECRET: &str = "webhook-secret-for-tests";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn deliver(
    s: &Server,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
    content_type: &str,
    signature: Option<String>,
) -> (u16, serde_json::Value) {
    let mut req = s
        .http
        .post(format!("{}/webhooks/github", s.url))
        .header("content-type", content_type)
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

fn signed(body: &[u8]) -> Option<String> {
    Some(sign(&Secret::new(SECRET).unwrap(), body))
}

async fn events(s: &Server) -> Vec<serde_json::Value> {
    s.get("/api/v1/events").await.1["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn without_a_secret_the_endpoint_accepts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let body = fixture("push.json");
    let (st, resp) = deliver(
        &s,
        "push",
        "d-1",
        body.clone(),
        "application/json",
        signed(&body),
    )
    .await;
    assert_eq!(
        (st, resp["error"]["code"].as_str()),
        (503, Some("not_configured"))
    );
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GANTRY_GITHUB_WEBHOOK_SECRET")
    );
    assert!(events(&s).await.is_empty());
}

#[tokio::test]
async fn signed_deliveries_are_stored_once_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_GITHUB_WEBHOOK_SECRET", SECRET)]).await;
    let body = fixture("workflow_job.queued.json");
    let (st, resp) = deliver(
        &s,
        "workflow_job",
        "delivery-1",
        body.clone(),
        "application/json",
        signed(&body),
    )
    .await;
    assert_eq!(st, 202, "{resp}");
    let id = resp["event_id"].as_str().unwrap().to_string();

    // A replay of the same delivery is acknowledged, not stored again.
    let (st, resp) = deliver(
        &s,
        "workflow_job",
        "delivery-1",
        body.clone(),
        "application/json",
        signed(&body),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(resp["duplicate"], true);
    assert_eq!(resp["event_id"], id.as_str());

    // The form-encoded variant GitHub can send; signature over the raw form body.
    let push = fixture("push.json");
    let form = serde_urlencoded::to_string([("payload", String::from_utf8(push).unwrap())])
        .unwrap()
        .into_bytes();
    let (st, _) = deliver(
        &s,
        "push",
        "delivery-2",
        form.clone(),
        "application/x-www-form-urlencoded",
        signed(&form),
    )
    .await;
    assert_eq!(st, 202);

    // Ping is answered; an event Gantry does not act on is still stored and acknowledged.
    let ping = fixture("ping.json");
    let (st, resp) = deliver(
        &s,
        "ping",
        "delivery-3",
        ping.clone(),
        "application/json",
        signed(&ping),
    )
    .await;
    assert_eq!((st, resp["pong"].as_bool()), (200, Some(true)));
    let star = br#"{"action":"created","repository":{"full_name":"octo/repo"}}"#.to_vec();
    let (st, _) = deliver(
        &s,
        "star",
        "delivery-4",
        star.clone(),
        "application/json",
        signed(&star),
    )
    .await;
    assert_eq!(st, 202);

    let list = events(&s).await;
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["type"], "star", "newest first");
    let job = list
        .iter()
        .find(|e| e["delivery_id"] == "delivery-1")
        .unwrap();
    assert_eq!(
        (
            job["source"].as_str(),
            job["type"].as_str(),
            job["action"].as_str()
        ),
        (Some("github"), Some("workflow_job"), Some("queued"))
    );
    assert!(job["repository"].as_str().unwrap().contains('/'));
    assert!(job["installation_id"].is_i64());
    let (_, pushes) = s.get("/api/v1/events?source=github&type=push").await;
    assert_eq!(pushes["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_copies_of_a_delivery_store_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_GITHUB_WEBHOOK_SECRET", SECRET)]).await;
    let body = fixture("pull_request.opened.json");
    let sends = (0..16).map(|_| {
        deliver(
            &s,
            "pull_request",
            "same-delivery",
            body.clone(),
            "application/json",
            signed(&body),
        )
    });
    let results = futures_util::future::join_all(sends).await;
    assert_eq!(
        results.iter().filter(|(st, _)| *st == 202).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().all(|(st, _)| *st == 202 || *st == 200));
    assert_eq!(events(&s).await.len(), 1);
}

#[tokio::test]
async fn rejected_deliveries_say_why_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_GITHUB_WEBHOOK_SECRET", SECRET)]).await;
    let body = fixture("push.json");
    /// (signature header, content type, body, expected status, expected words in the error)
    type Case<'a> = (Option<String>, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            None,
            "application/json",
            body.clone(),
            401,
            "missing X-Hub-Signature-256",
        ),
        (
            Some("sha256=nothex".into()),
            "application/json",
            body.clone(),
            401,
            "64 hex digits",
        ),
        (
            Some(sign(&Secret::new("other").unwrap(), &body)),
            "application/json",
            body.clone(),
            401,
            "does not match",
        ),
        (
            signed(b"{}"),
            "application/json",
            body.clone(),
            401,
            "does not match",
        ),
        (signed(&body), "text/plain", body.clone(), 415, "text/plain"),
        (
            signed(b"{not json"),
            "application/json",
            b"{not json".to_vec(),
            400,
            "`push` payload",
        ),
        (
            signed(b"{\"ref\": 1}"),
            "application/json",
            b"{\"ref\": 1}".to_vec(),
            400,
            "`push` payload",
        ),
        (
            signed(&[0xff, 0xfe]),
            "application/json",
            vec![0xff, 0xfe],
            400,
            "payload",
        ),
    ];
    for (i, (sig, ct, b, want, says)) in cases.into_iter().enumerate() {
        let (st, resp) = deliver(&s, "push", &format!("bad-{i}"), b, ct, sig).await;
        assert_eq!(st, want, "case {i}: {resp}");
        let msg = resp["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "case {i}: {msg}");
    }
    let huge = vec![b' '; 26 << 20];
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/github", s.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", "huge")
        .header(
            "x-hub-signature-256",
            sign(&Secret::new(SECRET).unwrap(), &huge),
        )
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(
        events(&s).await.is_empty(),
        "nothing stored for rejected deliveries"
    );
}

#[tokio::test]
async fn the_orders_webhook_runs_a_signed_payload() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            ("GANTRY_WEBHOOK_SECRET", SECRET),
            ("GANTRY_API_TOKEN", common::TOKEN),
        ],
    )
    .await;
    let orders = br#"{"pr": {"repo": "acme/infra", "number": 7},
        "orders": [{"name": "plan", "cmds": ["echo planning"], "timeout": 60},
                   {"name": "apply", "cmds": ["echo applying"], "dependencies": ["plan"]}]}"#;
    let post = |body: &'static [u8], sig: Option<String>, bearer: Option<&str>| {
        let mut req = s
            .http
            .post(format!("{}/webhook", s.url))
            .header("content-type", "application/json")
            .header("x-gantry-delivery", "order-1");
        if let Some(sig) = sig {
            req = req.header("x-gantry-signature-256", sig);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.body(body).send().await.unwrap();
            (
                resp.status().as_u16(),
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(post(orders, None, None).await.0, 401);
    assert_eq!(
        post(
            orders,
            Some(sign(&Secret::new("wrong").unwrap(), orders)),
            None
        )
        .await
        .0,
        401
    );
    let (st, resp) = post(orders, signed(orders), None).await;
    assert_eq!(st, 202, "{resp}");
    let run = s.wait_finished(resp["run_id"].as_str().unwrap(), 10).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["name"], "acme/infra#7");
    assert_eq!(run["trace_id"], resp["trace_id"]);
    let (st, again) = post(orders, signed(orders), None).await;
    assert_eq!(
        (st, again["duplicate"].as_bool()),
        (200, Some(true)),
        "a repeated delivery runs nothing"
    );

    let bad: &'static [u8] = br#"{"orders": [{"name": "x", "cmds": []}, {"name": "y", "cmds": ["true"], "dependencies": ["zz"]}]}"#;
    let mut s2 = s
        .http
        .post(format!("{}/webhook", s.url))
        .header("content-type", "application/json")
        .bearer_auth(common::TOKEN)
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(s2.status(), 422);
    let body: serde_json::Value = s2.json().await.unwrap();
    assert_eq!(
        body["error"]["problems"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    s2 = s
        .http
        .post(format!("{}/webhook", s.url))
        .header("content-type", "application/json")
        .bearer_auth(common::TOKEN)
        .body(&b"{\"orders\": [{\"name\": \"ok\", \"cmds\": [\"true\"]}]}"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(s2.status(), 202, "the bearer token is also accepted");
    let (_, list) = s.get("/api/v1/events?source=gantry.webhook").await;
    assert_eq!(
        list["events"].as_array().unwrap().len(),
        2,
        "one event per accepted payload"
    );
}

#[tokio::test]
async fn a_replayed_signed_webhook_body_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_with(dir.path(), &[("GANTRY_WEBHOOK_SECRET", SECRET)]).await;
    let orders = br#"{"orders": [{"name": "once", "cmds": ["true"]}]}"#;
    // The delivery id is not signed: a replay may carry none, or a new one.
    let post = |delivery: Option<&'static str>| {
        let mut req = s
            .http
            .post(format!("{}/webhook", s.url))
            .header("content-type", "application/json")
            .header("x-gantry-signature-256", signed(orders).unwrap());
        if let Some(d) = delivery {
            req = req.header("x-gantry-delivery", d);
        }
        async move {
            let resp = req.body(&orders[..]).send().await.unwrap();
            (
                resp.status().as_u16(),
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (st, first) = post(None).await;
    assert_eq!(st, 202, "{first}");
    s.wait_finished(first["run_id"].as_str().unwrap(), 10).await;
    // The event says what it started.
    let (_, event) = s
        .get(&format!(
            "/api/v1/events/{}",
            first["event_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        event["outcome"],
        format!("started run {}", first["run_id"].as_str().unwrap()),
        "{event}"
    );
    for delivery in [None, Some("fresh-id-1"), Some("fresh-id-2")] {
        let (st, again) = post(delivery).await;
        assert_eq!(
            (st, again["duplicate"].as_bool()),
            (200, Some(true)),
            "replay with delivery {delivery:?}: {again}"
        );
        assert_eq!(again["event_id"], first["event_id"]);
    }
    let (_, runs) = s.get("/api/v1/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");

    // The digest is durable: a restarted server still knows the body.
    s.kill9().await;
    let s = Server::start_with(dir.path(), &[("GANTRY_WEBHOOK_SECRET", SECRET)]).await;
    let resp = s
        .http
        .post(format!("{}/webhook", s.url))
        .header("content-type", "application/json")
        .header("x-gantry-signature-256", signed(orders).unwrap())
        .body(&orders[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, runs) = s.get("/api/v1/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
}

//! The event bus end to end over HTTP: rules from gantry.toml and the API, PutEvents with
//! per-entry answers, run and HTTP targets with input transformation, GitHub deliveries and
//! job state changes as events.

mod common;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{Server, eventually, job};
use gantry::server::signature::{Secret, sign};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A local HTTP endpoint that records what it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push((h, b));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

async fn event(server: &Server, id: &str) -> Value {
    server.get(&format!("/api/v1/events/{id}")).await.1
}

/// The run a delivery started, once it has.
async fn started_run(server: &Server, event_id: &str, rule: &str) -> String {
    eventually(20, "a delivery started a run", async || {
        let e = event(server, event_id).await;
        e["deliveries"].as_array()?.iter().find_map(|d| {
            (d["rule"] == rule && d["status"] == "delivered")
                .then(|| {
                    d["result"]
                        .as_str()?
                        .strip_prefix("started run ")
                        .map(str::to_string)
                })
                .flatten()
        })
    })
    .await
}

#[tokio::test]
async fn put_events_route_through_rules_to_runs_and_http_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("specs")).unwrap();
    std::fs::write(
        dir.path().join("specs/deploy.yml"),
        "name: deploy\njobs:\n  deploy:\n    run: ['echo \"deploying $INPUT_SERVICE for $GANTRY_EVENT_ID\"']\n",
    )
    .unwrap();
    let config = dir.path().join("gantry.toml");
    std::fs::write(
        &config,
        r#"
[[rules]]
name = "deploy-on-request"
pattern = { source = ["custom.app"], "detail-type" = ["Deploy"], detail = { env = [{ prefix = "prod" }] } }
input_paths = { service = "$.detail.service" }
target = { run = "specs/deploy.yml" }
"#,
    )
    .unwrap();
    let (hook, got) = receiver().await;
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            ("GANTRY_CONFIG", config.to_str().unwrap()),
            ("GANTRY_WEBHOOK_SECRET", "bus-secret"),
            ("GANTRY_GITHUB_WEBHOOK_SECRET", "gh-secret"),
            // The test's receiver is on loopback, which rules may not reach otherwise.
            ("GANTRY_ALLOW_INTERNAL_HOSTS", "127.0.0.1"),
        ],
    )
    .await;

    // A rule from the API: POST matched events to an endpoint, signed.
    let (status, rule) = server
        .post(
            "/api/v1/rules",
            "application/json",
            json!({"name": "notify", "pattern": {"source": ["custom.app"], "$or": [
                {"detail": {"level": [{"numeric": [">=", 3]}]}},
                {"detail-type": ["Deploy"]}]},
                "target": {"http": hook}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!(rule["origin"], "api");
    let (_, list) = server.get("/api/v1/rules").await;
    let names: Vec<&str> = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deploy-on-request", "notify"]);

    // PutEvents: three entries, one malformed; answered in order.
    let entries = json!({"Entries": [
        {"Source": "custom.app", "DetailType": "Deploy", "Detail": "{\"env\": \"production\", \"service\": \"auth\"}"},
        {"Source": "custom.app", "DetailType": "Deploy", "Detail": "{not json"},
        {"Source": "custom.app", "DetailType": "Alarm", "Detail": "{\"level\": 1}"},
    ]});
    let (status, answer) = server
        .post("/api/v1/events", "application/json", entries.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["FailedEntryCount"], 1);
    let e = answer["Entries"].as_array().unwrap();
    let deploy_id = e[0]["EventId"].as_str().unwrap().to_string();
    assert_eq!(e[1]["ErrorCode"], "MalformedDetail");
    let alarm_id = e[2]["EventId"].as_str().unwrap().to_string();

    let run_id = started_run(&server, &deploy_id, "deploy-on-request").await;
    let run = server.wait_finished(&run_id, 20).await;
    assert_eq!(job(&run, "deploy")["status"], "succeeded");
    let log = reqwest::get(format!(
        "{}/api/v1/runs/{run_id}/jobs/deploy/log",
        server.url
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        log.contains(&format!("deploying auth for {deploy_id}")),
        "{log}"
    );

    let ev = event(&server, &deploy_id).await;
    assert_eq!(ev["rules_matched"], json!(["deploy-on-request", "notify"]));
    assert_eq!(ev["event"]["detail"]["service"], "auth");
    let alarm = event(&server, &alarm_id).await;
    assert_eq!(alarm["rules_matched"], json!([]), "level 1 < 3, not Deploy");
    let (_, listed) = server.get("/api/v1/events?source=custom.app").await;
    let listed_deploy = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == deploy_id.as_str())
        .unwrap();
    assert_eq!(
        listed_deploy["rules_matched"],
        json!(["deploy-on-request", "notify"])
    );

    // The HTTP target got the envelope, signed.
    let (headers, body) = eventually(20, "the http target got the event", async || {
        got.lock().unwrap().first().cloned()
    })
    .await;
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["id"], deploy_id.as_str());
    assert_eq!(sent["detail-type"], "Deploy");
    let secret = Secret::new("bus-secret").unwrap();
    assert_eq!(
        headers["x-gantry-signature-256"].to_str().unwrap(),
        sign(&secret, &body)
    );

    // Bad input: more than 10 entries; invalid rules; rules from gantry.toml are read-only.
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"Source": "a", "DetailType": "b", "Detail": "{}"}))
        .collect();
    let (status, err) = server
        .post(
            "/api/v1/events",
            "application/json",
            json!({"Entries": eleven}).to_string(),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    let (_, all) = server.get("/api/v1/events?source=a").await;
    assert_eq!(all["events"], json!([]), "nothing half-stored");
    for (body, code, why) in [
        (
            json!({"name": "x", "pattern": {"source": []}, "target": {"http": hook}}),
            422,
            "empty arrays",
        ),
        (
            json!({"name": "x", "pattern": {"source": ["a"]}, "target": {"lambda": "arn"}}),
            422,
            "unknown target",
        ),
        (
            json!({"name": "x", "schedule": "cron(0 0 * * * *)", "target": {"http": hook}}),
            422,
            "must be `?`",
        ),
        (
            json!({"name": "x", "pattern": {"source": ["a"]}, "target": {"run": "specs/nope.yml"}}),
            422,
            "cannot read",
        ),
        (
            json!({"name": "notify", "pattern": {"source": ["a"]}, "target": {"http": hook}}),
            409,
            "already exists",
        ),
    ] {
        let (status, err) = server
            .post("/api/v1/rules", "application/json", body.to_string())
            .await;
        assert_eq!(status, code, "{body}: {err}");
        assert!(err.to_string().contains(why), "{err}");
    }
    let put = |name: &str, body: Value| {
        server
            .req(reqwest::Method::PUT, &format!("/api/v1/rules/{name}"))
            .json(&body)
            .send()
    };
    let r = put(
        "deploy-on-request",
        json!({"pattern": {"source": ["x"]}, "target": {"http": hook}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    let r = put(
        "notify",
        json!({"pattern": {"source": ["other"]}, "target": {"http": hook}, "enabled": false}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let (_, one) = server.get("/api/v1/rules/notify").await;
    assert_eq!(
        (one["enabled"].clone(), one["pattern"]["source"][0].clone()),
        (json!(false), json!("other"))
    );
    let del = server
        .req(reqwest::Method::DELETE, "/api/v1/rules/notify")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(server.get("/api/v1/rules/notify").await.0, 404);
}

#[tokio::test]
async fn github_deliveries_and_job_state_changes_are_events_rules_react_to() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(dir.path(), &[("GANTRY_GITHUB_WEBHOOK_SECRET", "gh-secret")]).await;
    let rules = [
        json!({"name": "on-push", "pattern": {"source": ["github"], "detail-type": ["push"],
               "detail": {"ref": ["refs/heads/main"]}},
               "input_paths": {"sha": "$.detail.after"},
               "target": {"run": {"name": "react", "jobs": {"show": {"run": ["echo pushed $INPUT_SHA"]}}}}}),
        json!({"name": "rollback-on-failed-deploy", "pattern": {"source": ["gantry"],
               "detail-type": ["Job State Change"], "detail": {"job": ["deploy"], "status": ["failed"]}},
               "input_paths": {"run": "$.detail.run_id"},
               "target": {"run": {"name": "rollback", "jobs": {"undo": {"run": ["echo rolling back $INPUT_RUN"]}}}}}),
    ];
    for r in rules {
        let (status, body) = server
            .post("/api/v1/rules", "application/json", r.to_string())
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let payload = std::fs::read(format!(
        "{}/../../fixtures/github/push.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut push: Value = serde_json::from_slice(&payload).unwrap();
    push["ref"] = json!("refs/heads/main");
    let body = push.to_string();
    let resp = server
        .http
        .post(format!("{}/webhooks/github", server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", "bus-delivery-1")
        .header(
            "x-hub-signature-256",
            sign(&Secret::new("gh-secret").unwrap(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = started_run(&server, &id, "on-push").await;
    let run = server.wait_finished(&run, 20).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    // A deploy job fails: the rollback rule runs.
    let failing = server
        .submit_yaml("name: release\njobs:\n  deploy:\n    run: ['exit 3']\n")
        .await;
    server.wait_finished(&failing, 20).await;
    let rollback = eventually(20, "a rollback run started", async || {
        let (_, runs) = server.get("/api/v1/runs").await;
        runs["runs"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == "rollback")
            .map(|r| r["id"].as_str().unwrap().to_string())
    })
    .await;
    let rb = server.wait_finished(&rollback, 20).await;
    assert_eq!(rb["status"], "succeeded");
    let log = reqwest::get(format!(
        "{}/api/v1/runs/{rollback}/jobs/undo/log",
        server.url
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(log.contains(&format!("rolling back {failing}")), "{log}");
}

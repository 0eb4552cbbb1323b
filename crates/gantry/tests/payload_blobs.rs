//! Large event payloads in the object store, end to end through `gantry serve`: on the AWS
//! emulator's S3 (moto's server, as `log_archive.rs`), a signed GitHub delivery of 400 KB is
//! kept in the bucket and not in its row, comes back whole through the API and the
//! dashboard, and a rule matching it starts its run; ordinary 13 KB deliveries never reach the
//! bucket. With no object store configured, large payloads go to the
//! data dir's folder.

mod common;
#[path = "common/moto.rs"]
mod moto;

use common::{Server, eventually};
use gantry::server::signature::{Secret, sign};
use serde_json::{Value, json};
use std::path::Path;

const SECRET: &str = "gh-secret-for-payloads";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A push to main of about `len` bytes (a long head commit message), with a marker.
fn big_push(len: usize, marker: &str) -> String {
    let mut push: Value = serde_json::from_slice(&fixture("push.json")).unwrap();
    push["ref"] = json!("refs/heads/main");
    push["head_commit"]["message"] = json!(format!("{marker} {}", "z".repeat(len)));
    push.to_string()
}

/// Sends a signed delivery; its status and answer.
async fn deliver(s: &Server, event: &str, delivery: &str, body: &str) -> (u16, Value) {
    let resp = s
        .http
        .post(format!("{}/webhooks/github", s.url))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            sign(&Secret::new(SECRET).unwrap(), body.as_bytes()),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

/// The event's row in the data dir's database: its detail, and its payload's key and size.
async fn row(data_dir: &Path, id: &str) -> (String, Option<String>, Option<i64>) {
    let url = format!("sqlite://{}?mode=ro", data_dir.join("gantry.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row = sqlx::query_as("SELECT detail, payload_key, payload_size FROM events WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    row
}

#[tokio::test]
async fn a_large_delivery_is_kept_in_s3_served_whole_and_matched_by_rules() {
    let emulator = moto::Emulator::start();
    moto::make_bucket(&emulator, "gantry-blobs").await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = emulator.env();
    env.push(("GANTRY_BLOB_URL".into(), "s3://gantry-blobs/ci".into()));
    env.push(("GANTRY_GITHUB_WEBHOOK_SECRET".into(), SECRET.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_with(dir.path(), &env).await;
    let rule = json!({"name": "on-main", "pattern": {"source": ["github"], "detail-type": ["push"],
        "detail": {"ref": ["refs/heads/main"]}},
        "target": {"run": {"name": "react", "jobs": {"show": {"run": ["echo reacted"]}}}}});
    let (status, body) = s
        .post("/api/v1/rules", "application/json", rule.to_string())
        .await;
    assert_eq!(status, 201, "{body}");

    let body = big_push(400_000, "needle-in-s3");
    let (status, answer) = deliver(&s, "push", "big-1", &body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["event_id"].as_str().unwrap().to_string();

    // In the bucket (before the answer: durable before acknowledged), not in the row.
    let key = format!("events/{id}.json");
    let stored = moto::object(&emulator, &format!("gantry-blobs/ci/{key}")).await;
    assert_eq!(
        stored.as_deref(),
        Some(body.as_bytes()),
        "the payload in S3"
    );
    let (detail, at, size) = row(dir.path(), &id).await;
    assert_eq!(detail, "", "the row holds no payload");
    assert_eq!(
        (at.as_deref(), size),
        (Some(key.as_str()), Some(body.len() as i64))
    );

    // Read back whole: the API's event, the dashboard's event page.
    let (status, event) = s.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(status, 200, "{event}");
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], sent, "the API serves the payload whole");
    let page = s
        .http
        .get(format!("{}/events/{id}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("needle-in-s3"));

    // The rule matched it at intake; its delivery (which reads the event back, from S3: an
    // unreadable payload fails the delivery) started its run.
    assert_eq!(event["rules_matched"], json!(["on-main"]), "{event}");
    let run = eventually(20, "the rule's run", async || {
        let (_, e) = s.get(&format!("/api/v1/events/{id}")).await;
        e["deliveries"].as_array()?.iter().find_map(|d| {
            let result = d["result"].as_str()?;
            result.strip_prefix("started run ").map(str::to_string)
        })
    })
    .await;
    let run = s.wait_finished(&run, 20).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let log = s.job_log(run["id"].as_str().unwrap(), "show").await;
    assert!(log.contains("reacted"), "{log}");

    // An ordinary delivery (13 KB) stays where it did (on SQLite, a segment beside the
    // database) and never reaches the bucket.
    let small = String::from_utf8(fixture("workflow_job.queued.json")).unwrap();
    let (status, answer) = deliver(&s, "workflow_job", "small-1", &small).await;
    assert_eq!(status, 202, "{answer}");
    let small_id = answer["event_id"].as_str().unwrap();
    let (_, at, _) = row(dir.path(), small_id).await;
    assert_eq!(at, None);
    let small_key = format!("gantry-blobs/ci/events/{small_id}.json");
    assert!(moto::object(&emulator, &small_key).await.is_none());
    let (_, event) = s.get(&format!("/api/v1/events/{small_id}")).await;
    assert_eq!(
        event["event"],
        serde_json::from_str::<Value>(&small).unwrap()
    );

    // The same large delivery again: a duplicate, answered with the first event's id.
    let (status, answer) = deliver(&s, "push", "big-1", &body).await;
    assert_eq!(
        (status, answer["event_id"].as_str()),
        (200, Some(id.as_str())),
        "{answer}"
    );
}

#[tokio::test]
async fn without_an_object_store_large_payloads_go_to_the_data_dirs_folder() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_GITHUB_WEBHOOK_SECRET", SECRET)]).await;
    let body = big_push(300_000, "needle-on-disk");
    let (status, answer) = deliver(&s, "push", "big-2", &body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["event_id"].as_str().unwrap();
    let file = dir.path().join("blobs/events").join(format!("{id}.json"));
    assert_eq!(std::fs::read(&file).unwrap(), body.as_bytes());
    let (detail, ..) = row(dir.path(), id).await;
    assert_eq!(detail, "");
    let (_, event) = s.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(
        event["event"]["head_commit"]["message"]
            .as_str()
            .map(|m| &m[..14]),
        Some("needle-on-disk")
    );

    // Gone from the folder: an error (its message, naming the event and the key, in the
    // server's log), never an empty payload.
    std::fs::remove_file(&file).unwrap();
    let (status, event) = s.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(
        (status, event["error"]["code"].as_str()),
        (500, Some("internal")),
        "{event}"
    );
}

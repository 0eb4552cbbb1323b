//! The fake GitHub's webhook: `workflow_job` deliveries to one URL, as GitHub sends them to an
//! organization's or repository's hook. A job that is queued, claimed by a runner (in progress)
//! or completed (by its runner, or by a test cancelling it) queues a delivery; one background
//! task sends them in order, never while holding the fake's state lock, signed with
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`. Every delivery is recorded
//! (`FakeState::deliveries`) with its outcome; a test can redeliver one (same body and
//! `X-GitHub-Delivery`) or drop the next few, as if GitHub lost them.

use super::{FakeGitHub, FakeJob, FakeState};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::hash::BuildHasher;
use std::time::Duration;
use tokio::sync::mpsc;

/// Attempts per delivery when the receiver cannot be reached (GitHub does not retry an answered
/// delivery, whatever its status).
const SEND_ATTEMPTS: u32 = 3;

/// One webhook delivery, as the fake recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDelivery {
    /// The `X-GitHub-Delivery` header: a UUID, kept by a redelivery.
    pub delivery_id: String,
    /// The `X-GitHub-Event` header (`workflow_job`).
    pub event: String,
    pub action: String,
    pub job_id: u64,
    /// The exact bytes sent (and signed).
    pub body: String,
    /// Sent by `redeliver`.
    pub redelivery: bool,
    pub outcome: DeliveryOutcome,
}

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Queued, not sent yet.
    Pending,
    /// Never sent: `drop_deliveries` asked for it.
    Dropped,
    /// Sent; the receiver answered this HTTP status.
    Answered(u16),
    /// Sent, but the receiver could not be reached (after a few attempts).
    Failed(String),
}

/// Where deliveries go.
#[derive(Clone)]
pub(super) struct Webhook {
    url: String,
    secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"***")
            .finish()
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, GitHub's `X-Hub-Signature-256`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A random version-4 UUID, as GitHub's delivery ids are.
fn uuid() -> String {
    let hasher = std::collections::hash_map::RandomState::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let (a, b) = (hasher.hash_one(nanos), hasher.hash_one(!nanos));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Starts the task that sends queued deliveries, one at a time, in order.
pub(super) fn start_sender(fake: FakeGitHub, mut queue: mpsc::UnboundedReceiver<usize>) {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent("GitHub-Hookshot/fake")
            .build()
            .expect("an HTTP client");
        while let Some(index) = queue.recv().await {
            let outcome = send(&fake, &http, index).await;
            fake.lock().deliveries[index].outcome = outcome;
        }
    });
}

async fn send(fake: &FakeGitHub, http: &reqwest::Client, index: usize) -> DeliveryOutcome {
    let (hook, d) = {
        let st = fake.lock();
        (st.webhook.clone(), st.deliveries[index].clone())
    };
    let Some(hook) = hook else {
        return DeliveryOutcome::Failed("no webhook configured".into());
    };
    let mut last = String::new();
    for attempt in 0..SEND_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        let sent = http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-github-event", &d.event)
            .header("x-github-delivery", &d.delivery_id)
            .header("x-github-hook-id", "1")
            .header(
                "x-hub-signature-256",
                signature(&hook.secret, d.body.as_bytes()),
            )
            .body(d.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => return DeliveryOutcome::Answered(resp.status().as_u16()),
            Err(e) if e.is_connect() => last = format!("cannot connect: {e}"),
            Err(e) => return DeliveryOutcome::Failed(e.to_string()),
        }
    }
    DeliveryOutcome::Failed(last)
}

impl FakeGitHub {
    /// Sends `workflow_job` deliveries to `url`, signed with `secret`, from now on.
    pub fn set_webhook(&self, url: &str, secret: &str) {
        self.lock().webhook = Some(Webhook {
            url: url.to_string(),
            secret: secret.to_string(),
        });
    }

    /// The next `n` deliveries are recorded as `Dropped` and never sent (a lost webhook).
    /// Redeliveries are never dropped.
    pub fn drop_deliveries(&self, n: usize) {
        self.lock().drop_next += n;
    }

    /// Sends delivery `delivery_id` again: the same body, signature and `X-GitHub-Delivery`,
    /// recorded as a new delivery with `redelivery` set. Panics on an unknown id.
    pub fn redeliver(&self, delivery_id: &str) {
        let mut st = self.lock();
        let original = st
            .deliveries
            .iter()
            .find(|d| d.delivery_id == delivery_id)
            .expect("a delivery the fake made")
            .clone();
        st.deliveries.push(FakeDelivery {
            redelivery: true,
            outcome: DeliveryOutcome::Pending,
            ..original
        });
        let index = st.deliveries.len() - 1;
        let _ = self.hooks.send(index);
    }

    /// Every delivery so far, in the order they were queued.
    pub fn deliveries(&self) -> Vec<FakeDelivery> {
        self.lock().deliveries.clone()
    }

    /// Every delivery, once none is pending any more (panics after 30 s).
    pub async fn settled_deliveries(&self) -> Vec<FakeDelivery> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let all = self.deliveries();
            if all.iter().all(|d| d.outcome != DeliveryOutcome::Pending) {
                return all;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "deliveries still pending: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Queues a `workflow_job` delivery with `action` for `job` (its state now), if a webhook
    /// is set. Called with the state locked, so deliveries are queued in the order things
    /// happened; the sender takes the lock only to read and record.
    pub(super) fn job_event(&self, st: &mut FakeState, action: &str, job: &FakeJob) {
        if st.webhook.is_none() {
            return;
        }
        let body = payload(st, action, job).to_string();
        let dropped = st.drop_next > 0;
        st.drop_next = st.drop_next.saturating_sub(1);
        st.deliveries.push(FakeDelivery {
            delivery_id: uuid(),
            event: "workflow_job".into(),
            action: action.to_string(),
            job_id: job.id,
            body,
            redelivery: false,
            outcome: if dropped {
                DeliveryOutcome::Dropped
            } else {
                DeliveryOutcome::Pending
            },
        });
        if !dropped {
            let _ = self.hooks.send(st.deliveries.len() - 1);
        }
    }
}

/// A `workflow_job` payload, shaped as GitHub's (see `fixtures/github/workflow_job.*.json`).
fn payload(st: &FakeState, action: &str, job: &FakeJob) -> Value {
    let mut body = json!({
        "action": action,
        "workflow_job": super::actions::job_json(job),
        "repository": super::runs::repo_json(st, &job.repo),
    });
    let owner = job.repo.split_once('/').map_or("", |(o, _)| o);
    if st.is_org(owner) {
        body["organization"] = json!({
            "login": owner, "id": super::runs::account_id(owner),
            "node_id": format!("O_{owner}"),
            "url": format!("https://api.github.com/orgs/{owner}"),
            "repos_url": format!("https://api.github.com/orgs/{owner}/repos"),
            "description": owner
        });
    }
    if let Some(installation) = st.installation_id() {
        body["installation"] =
            json!({"id": installation, "node_id": format!("MDIz{installation}")});
    }
    body["sender"] = json!({
        "login": "octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "url": "https://api.github.com/users/octocat", "html_url": "https://github.com/octocat",
        "type": "User", "site_admin": false
    });
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_test_vector_signs() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn delivery_ids_are_distinct_uuids() {
        let (a, b) = (uuid(), uuid());
        assert_ne!(a, b);
        let lengths: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{a}");
        assert_eq!(&a[14..15], "4", "{a}");
    }
}

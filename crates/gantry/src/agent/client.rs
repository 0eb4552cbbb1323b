//! The agent's HTTP client: its token on every request, the server's answers as results. A
//! refused token (401) is an error that stops the agent; a server that cannot be reached is
//! waited for.

use anyhow::{Context, bail};
use base64::Engine;
use gantry_engine::agents::Lease;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

pub struct AgentApi {
    http: Client,
    base: String,
    token: String,
    pub name: String,
    labels: Vec<String>,
    slots: u32,
}

/// What the server said about a lease when it was renewed.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewed {
    Keep,
    /// The run was cancelled or timed out: stop the job.
    Stop,
    /// The lease is no longer this agent's: stop the job (its result will be refused).
    Lost,
}

/// The server refused the agent's token: the agent stops.
#[derive(Debug, thiserror::Error)]
#[error("the server refused this agent's token (unknown or revoked)")]
pub struct TokenRefused;

fn refused() -> anyhow::Error {
    TokenRefused.into()
}

impl AgentApi {
    pub fn new(
        base: &str,
        token: &str,
        name: &str,
        labels: Vec<String>,
        slots: u32,
    ) -> anyhow::Result<AgentApi> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(AgentApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            name: name.to_string(),
            labels,
            slots,
        })
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(reqwest::Error::without_url)
    }

    /// Registers; the server's lease time.
    pub async fn register(&self) -> anyhow::Result<u64> {
        let body = json!({"name": self.name, "labels": self.labels, "slots": self.slots});
        let resp = self
            .post("/api/v1/agent/register", &body)
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        match resp.status() {
            StatusCode::UNAUTHORIZED => Err(refused()),
            s if s.is_success() => {
                let v: Value = resp.json().await?;
                Ok(v["lease_ms"].as_u64().unwrap_or(0))
            }
            s => bail!(
                "the server refused the registration ({s}): {}",
                message(resp).await
            ),
        }
    }

    /// One long poll: a lease, or none within the server's poll time.
    pub async fn poll(&self) -> anyhow::Result<Option<Lease>> {
        let resp = match self
            .post("/api/v1/agent/poll", &json!({"name": self.name}))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(cause = %e, "cannot reach the server; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Ok(None);
            }
        };
        match resp.status() {
            StatusCode::OK => Ok(Some(resp.json().await.context("a lease")?)),
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::UNAUTHORIZED => Err(refused()),
            // The server does not know this agent (a new database): register again.
            StatusCode::NOT_FOUND => {
                tracing::warn!("the server does not know this agent; registering again");
                match self.register().await {
                    Err(e) if e.is::<TokenRefused>() => return Err(e),
                    Err(e) => tracing::warn!(cause = %e, "cannot register again; retrying"),
                    Ok(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(None)
            }
            s => {
                let why = message(resp).await;
                tracing::warn!(status = %s, message = %why, "poll refused; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(None)
            }
        }
    }

    /// Renews a lease.
    pub async fn heartbeat(&self, id: &str) -> anyhow::Result<Renewed> {
        let path = format!("/api/v1/agent/jobs/{id}/heartbeat");
        let resp = match self.post(&path, &json!({"name": self.name})).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(cause = %e, "cannot renew the lease; retrying");
                return Ok(Renewed::Keep);
            }
        };
        match resp.status() {
            StatusCode::OK => {
                let v: Value = resp.json().await.unwrap_or_default();
                Ok(if v["cancel"] == true {
                    Renewed::Stop
                } else {
                    Renewed::Keep
                })
            }
            StatusCode::UNAUTHORIZED => Err(refused()),
            StatusCode::CONFLICT | StatusCode::NOT_FOUND => Ok(Renewed::Lost),
            _ => Ok(Renewed::Keep),
        }
    }

    /// Sends a chunk of output; false when the lease is no longer this agent's.
    pub async fn log(&self, id: &str, bytes: &[u8]) -> anyhow::Result<bool> {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        let path = format!("/api/v1/agent/jobs/{id}/log");
        let resp = self
            .post(&path, &json!({"name": self.name, "data": data}))
            .await?;
        match resp.status() {
            StatusCode::UNAUTHORIZED => Err(refused()),
            s => Ok(s.is_success()),
        }
    }

    /// Reports the result to the attempt's callback path: the status and the server's message.
    pub async fn report(&self, callback: &str, body: &Value) -> anyhow::Result<(u16, String)> {
        let resp = self
            .http
            .post(format!("{}{callback}", self.base))
            .json(body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            // The URL holds the callback token: never in an error.
            .map_err(reqwest::Error::without_url)?;
        let status = resp.status().as_u16();
        Ok((status, message(resp).await))
    }
}

async fn message(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.unwrap_or_default();
    v["error"]["message"].as_str().unwrap_or("").to_string()
}

//! What the fake-runner and webhook tests share: a webhook receiver that records what it is
//! sent and checks signatures, JIT registration, and the stand-in runner script.

#![allow(dead_code)]

use gantry_github::{GitHub, JitConfig, JitRegistration, RunnerScope};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SECRET: &str = "It's a Secret to Everybody";

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub event: String,
    pub delivery_id: String,
    pub signature: String,
    pub content_type: String,
    pub user_agent: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The signature is `sha256=<hex HMAC-SHA256(SECRET, body)>`, checked in constant time.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(hex_sig) = self.signature.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(sig) = hex::decode(hex_sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&sig).is_ok()
    }
}

/// An HTTP server that records every delivery and answers `status`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(status: u16) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        let app = axum::Router::new().route(
            "/webhooks/github",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let sink = sink.clone();
                    async move {
                        let h = |name: &str| {
                            headers
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        sink.lock().unwrap().push(Received {
                            event: h("x-github-event"),
                            delivery_id: h("x-github-delivery"),
                            signature: h("x-hub-signature-256"),
                            content_type: h("content-type"),
                            user_agent: h("user-agent"),
                            body: body.to_vec(),
                        });
                        axum::http::StatusCode::from_u16(status).unwrap()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/github", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The first `n` requests, once they have come (panics after 30 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..3000 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} deliveries did not come: {:?}", self.received());
    }
}

pub fn repo() -> RunnerScope {
    RunnerScope::Repo("acme/infra".into())
}

pub async fn register(gh: &GitHub, scope: &RunnerScope, name: &str, labels: &[&str]) -> JitConfig {
    match gh
        .generate_jit_config(scope, name, 1, labels, "_work")
        .await
        .unwrap()
    {
        JitRegistration::Registered(c) => c,
        other => panic!("not registered: {other:?}"),
    }
}

/// `scripts/fake-runner.sh`.
pub fn runner_script() -> String {
    format!(
        "{}/../../scripts/fake-runner.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The stand-in runner as a host process under `sh`, with `env`, not yet waited for.
pub fn spawn_runner(config: &JitConfig, env: &[(&str, &str)]) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg(runner_script())
        .arg("--jitconfig")
        .arg(config.encoded.expose())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().expect("run sh")
}

/// (exit code, stdout, stderr) of a finished runner, within 60 s.
pub async fn finish(child: tokio::process::Child) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the runner finishes")
        .expect("its output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

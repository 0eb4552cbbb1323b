//! The HTTP client every server command shares: the server's address and token (`--server`,
//! `GANTRY_SERVER`, `GANTRY_API_TOKEN`), requests, API errors turned into messages, a run
//! found by a unique prefix of its id, and reading a command's input (a file or `-`).

use super::BadInput;
use anyhow::{Context, bail};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Base URL of the Gantry server (`host:port` means http://host:port). The API token, when the server wants one, is read from GANTRY_API_TOKEN.
    #[arg(
        long,
        env = "GANTRY_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_parser = server_url
    )]
    pub server: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--server`: a URL, `http://` added when it names no scheme, without a trailing `/`.
pub fn server_url(given: &str) -> Result<String, String> {
    let url = given.trim().trim_end_matches('/');
    if url.is_empty() {
        return Err("the server's address is empty".into());
    }
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    match url.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(url),
        _ => Err(format!(
            "`{given}` is not an http:// or https:// address (e.g. localhost:8080)"
        )),
    }
}

pub(super) struct Api {
    http: Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub(super) fn new(args: &ServerArgs) -> anyhow::Result<Api> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Api {
            http,
            base: args.server.trim_end_matches('/').to_string(),
            token: std::env::var("GANTRY_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        })
    }

    pub(super) fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub(super) async fn send(&self, r: RequestBuilder) -> anyhow::Result<Response> {
        r.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow::anyhow!(
                    "cannot reach the server at {}: is `gantry serve` running there?",
                    self.base
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot reach the server at {}", self.base))
            }
        })
    }

    /// `GET path`, a success's JSON body, or the API's error as the error.
    pub(super) async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        Ok(ok(self.send(self.req(Method::GET, path)).await?)
            .await?
            .json()
            .await?)
    }

    /// The full id of the run `given` names: its id, or a prefix of exactly one run's id
    /// among the latest runs. Several → [`BadInput`] listing them; none → not found.
    pub(super) async fn resolve_run(&self, given: &str) -> anyhow::Result<String> {
        let exact = self
            .send(self.req(Method::GET, &format!("/api/v1/runs/{}", urlencode(given))))
            .await?;
        if exact.status() != reqwest::StatusCode::NOT_FOUND {
            ok(exact).await?;
            return Ok(given.to_string());
        }
        let body = self
            .get_json(&format!("/api/v1/runs?limit={RUNS_SEARCHED}"))
            .await?;
        let upper = given.to_ascii_uppercase();
        let found: Vec<&str> = body["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
            .filter(|id| id.starts_with(given) || id.starts_with(&upper))
            .collect();
        match found.as_slice() {
            [one] => Ok(one.to_string()),
            [] => bail!("run `{given}` not found"),
            many => Err(BadInput(format!(
                "`{given}` names {} runs: {}; give more of the id",
                many.len(),
                many.join(", ")
            ))
            .into()),
        }
    }
}

/// How many of the latest runs a prefix is looked for in (the list API's most).
const RUNS_SEARCHED: u32 = 1000;

/// Turns an API error body into an error message.
pub(super) async fn ok(resp: Response) -> anyhow::Result<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    let msg = body["error"]["message"]
        .as_str()
        .unwrap_or("no details")
        .to_string();
    bail!("{} ({})", msg, status)
}

/// A command's input: the file's bytes, or standard input for `-`. A file that cannot be read
/// is [`BadInput`].
pub(super) fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .context("cannot read standard input")?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())).into())
}

/// A JSON value as plain text (strings without quotes, null as nothing).
pub(super) fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

/// A path segment or query value, percent-encoded.
pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::server_url;

    #[test]
    fn a_server_without_a_scheme_gets_http() {
        assert_eq!(
            server_url("localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            server_url("https://ci.example/").unwrap(),
            "https://ci.example"
        );
        assert!(server_url("ftp://x").is_err());
        assert!(server_url("  ").is_err());
    }
}

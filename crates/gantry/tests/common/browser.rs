//! A small W3C WebDriver client for the dashboard's browser tests: Debian's headless Chromium
//! driven by its `chromedriver` (both installed by `scripts/test-deps`), JSON over HTTP.
//!
//! [`Browser::start`] starts `chromedriver` on a free port in a process group of its own
//! (killed, with the Chromium it started, when the browser is dropped) and opens a session.
//! Every WebDriver error panics with the command and the driver's own message.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The key of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What a page shows, for a failure's message: the start of its main text.
const SHOWN: &str = "const m = document.querySelector('main') || document.body; \
    return m ? m.innerText.slice(0, 600) : '';";

/// An element found on the page (a reference the driver keeps until the page changes).
#[derive(Debug, Clone)]
pub struct Element(String);

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    driver: Child,
}

/// Installs Chromium and its driver with `scripts/test-deps` when they are missing, and fails
/// saying so if they are still missing then.
fn ensure_chromium() {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return;
    }
    let script = format!("{}/../../scripts/test-deps", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/test-deps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "scripts/test-deps ran, and {CHROMIUM} or {CHROMEDRIVER} is still missing \
         (Debian's chromium and chromium-driver packages)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots/`, else the workspace's
/// `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("screenshots")
}

impl Browser {
    /// Headless Chromium at 1280×900.
    pub async fn start() -> Browser {
        ensure_chromium();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("gantry-chromedriver-{port}.log"));
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut b = Browser {
            http,
            session: String::new(),
            driver,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match b.http.get(format!("{base}/status")).send().await {
                Ok(r) => r.json::<Value>().await.ok(),
                Err(_) => None,
            };
            if ready.is_some_and(|v| v["value"]["ready"] == true) {
                break;
            }
            if let Ok(Some(status)) = b.driver.try_wait() {
                panic!(
                    "chromedriver exited with {status} (its log: {})",
                    log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver was not ready on port {port} in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // An alert stays open, for `alert_text` to find.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--disable-gpu", "--hide-scrollbars"],
            },
        }}});
        let resp = b
            .raw(
                reqwest::Method::POST,
                &format!("{base}/session"),
                Some(caps),
            )
            .await
            .unwrap_or_else(|e| panic!("new WebDriver session: {e}"));
        let id = resp["sessionId"].as_str().expect("a session id");
        b.session = format!("{base}/session/{id}");
        b
    }

    async fn raw(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method.clone(), url);
        if let Some(body) = body {
            req = req.json(&body);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{} ({status}): {}",
                v["value"]["error"].as_str().unwrap_or("?"),
                v["value"]["message"].as_str().unwrap_or("")
            ))
        }
    }

    /// A command of this session; its `value`, or the driver's error as a message.
    pub async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.raw(method, &format!("{}{path}", self.session), body)
            .await
    }

    /// [`Browser::try_cmd`], panicking with the driver's message on an error.
    pub async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        self.try_cmd(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {what}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn title(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/title", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let body = json!({"using": "css selector", "value": css});
        let v = self
            .cmd(reqwest::Method::POST, "/elements", Some(body))
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| Element(e[ELEMENT].as_str().unwrap().to_string()))
            .collect()
    }

    /// The first element `css` selects; panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        let body = json!({"using": "css selector", "value": css});
        let v = self
            .cmd(reqwest::Method::POST, "/element", Some(body))
            .await;
        Element(v[ELEMENT].as_str().unwrap().to_string())
    }

    pub async fn click(&self, e: &Element) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            None,
        )
        .await;
    }

    pub async fn send_keys(&self, e: &Element, text: &str) {
        let body = json!({ "text": text });
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(body),
        )
        .await;
    }

    pub async fn clear(&self, e: &Element) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            None,
        )
        .await;
    }

    /// The element's rendered text.
    pub async fn text(&self, e: &Element) -> String {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.0),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        let path = format!("/element/{}/attribute/{name}", e.0);
        let v = self.cmd(reqwest::Method::GET, &path, None).await;
        v.as_str().map(String::from)
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; what it returns.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// The `textContent` of the first element `css` selects, `None` when there is none. Read
    /// in the page, so that nothing goes stale when a script redraws it.
    pub async fn text_of(&self, css: &str) -> Option<String> {
        let v = self
            .exec(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                json!([css]),
            )
            .await;
        v.as_str().map(String::from)
    }

    /// The text of an open alert, confirm or prompt; `None` when none is open.
    pub async fn alert_text(&self) -> Option<String> {
        match self
            .try_cmd(reqwest::Method::GET, "/alert/text", None)
            .await
        {
            Ok(v) => Some(v.as_str().unwrap_or_default().to_string()),
            Err(e) if e.starts_with("no such alert") => None,
            Err(e) => panic!("WebDriver GET /alert/text: {e}"),
        }
    }

    pub async fn set_window_size(&self, width: u32, height: u32) {
        let body = json!({ "width": width, "height": height });
        self.cmd(reqwest::Method::POST, "/window/rect", Some(body))
            .await;
    }

    /// Emulates `prefers-color-scheme` (Chromium's DevTools command through chromedriver's
    /// `goog/cdp/execute`; plain WebDriver has none).
    pub async fn prefer_color_scheme(&self, scheme: &str) {
        let body = json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        });
        self.cmd(reqwest::Method::POST, "/goog/cdp/execute", Some(body))
            .await;
    }

    /// A screenshot of the viewport, written to `screenshot_dir()/NAME.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("a base64 screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// A screenshot of the whole page, as tall as it is (the window is resized for it, then
    /// back to `width`×`height`).
    pub async fn full_screenshot(&self, name: &str, width: u32, height: u32) -> PathBuf {
        let h = self
            .exec("return document.documentElement.scrollHeight;", json!([]))
            .await
            .as_u64()
            .unwrap_or(height as u64) as u32;
        self.set_window_size(width, h.clamp(height, 4000)).await;
        let path = self.screenshot(name).await;
        self.set_window_size(width, height).await;
        path
    }

    /// Polls `check` every 50 ms until it gives a value, and returns that; panics naming
    /// `what` (and the page's URL) after `secs`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        secs: u64,
        check: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        match self.wait_for_or(secs, check).await {
            Some(v) => v,
            None => {
                let url = self.url().await;
                let shown = self.exec(SHOWN, json!([])).await;
                panic!(
                    "timed out after {secs} s waiting for {what} (at {url}, showing: {})",
                    shown.as_str().unwrap_or_default()
                )
            }
        }
    }

    /// Waits until the first element `css` selects has text `pred` accepts; that text.
    pub async fn wait_text(&self, css: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let what = format!("the text of {css} to change as expected");
        let mut last = None;
        let got = self
            .wait_for_or(secs, async || {
                let t = self.text_of(css).await;
                let ok = t.as_deref().is_some_and(&pred);
                last = t.clone();
                if ok { t } else { None }
            })
            .await;
        got.unwrap_or_else(|| panic!("timed out after {secs} s waiting for {what}: it is {last:?}"))
    }

    /// [`Browser::wait_for`] that gives `None` at the deadline instead of panicking.
    pub async fn wait_for_or<T>(
        &self,
        secs: u64,
        mut check: impl AsyncFnMut() -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check().await {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session (Chromium quits); the driver is killed on drop.
    pub async fn quit(self) {
        let _ = self.try_cmd(reqwest::Method::DELETE, "", None).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and the Chromium it started share the driver's process group.
        let pgid = self.driver.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

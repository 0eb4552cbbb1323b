#![allow(dead_code)]
//! The AWS emulator of the deployer tests: moto's server behind a small proxy
//! (`scripts/aws/emulator.py`, run with the venv that `scripts/test-deps` makes). What it
//! emulates and where it closes moto's gaps is written there; how moto answers is recorded in
//! `tests/moto_emulator.rs`.
//!
//! A test starts one with [`Emulator::start`], gives the code under test [`Emulator::env`]
//! (AWS_ENDPOINT_URL and test credentials), and uses the helpers here, which speak moto's own
//! API (and the emulator's one test-only endpoint) over plain HTTP.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The region the emulator's clients use.
pub const REGION: &str = "us-east-1";
/// The account moto makes everything in.
pub const ACCOUNT: &str = "123456789012";

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Makes the venv (moto, aws-sam-translator) with `scripts/test-deps`, once it has the lock,
/// and returns its path (the script's `test-venv: PATH` line).
pub fn test_venv() -> PathBuf {
    let out = Command::new(repo_root().join("scripts/test-deps"))
        .output()
        .expect("run scripts/test-deps");
    assert!(
        out.status.success(),
        "scripts/test-deps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test-venv: "))
        .unwrap_or_else(|| panic!("scripts/test-deps printed no venv: {stdout}"));
    PathBuf::from(path)
}

/// An `Authorization` header for a plain HTTP request to `service` through the emulator:
/// moto picks the service from a SigV4 credential scope (an unsigned request goes to its S3)
/// and doesn't check the signature.
pub fn fake_authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0"
    )
}

pub struct Emulator {
    /// What clients use as AWS_ENDPOINT_URL: `http://127.0.0.1:PORT`.
    pub url: String,
    /// The venv's Python (boto3 is there too).
    pub python: PathBuf,
    /// How long from spawning it to its "listening" line.
    pub startup: Duration,
    child: Child,
    stderr: tempfile::NamedTempFile,
    http: reqwest::Client,
}

impl Emulator {
    /// Starts the emulator on free ports, once it says it listens (60 s at most).
    pub fn start() -> Emulator {
        let venv = test_venv();
        let python = venv.join("bin/python");
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let began = Instant::now();
        let mut child = Command::new(&python)
            .arg(repo_root().join("scripts/aws/emulator.py"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap())
            // Its own process group, killed whole on drop.
            .process_group(0)
            .spawn()
            .expect("spawn scripts/aws/emulator.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            let _ = lines.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading, so the emulator never blocks on a full pipe.
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(60));
        let startup = began.elapsed();
        let mut emulator = Emulator {
            url: String::new(),
            python,
            startup,
            child,
            stderr,
            http: reqwest::Client::new(),
        };
        let line = match line {
            Ok(line) if !line.is_empty() => line,
            _ => panic!(
                "the emulator did not start in 60 s: {}",
                emulator.stderr_text()
            ),
        };
        emulator.url = line
            .trim()
            .strip_prefix("emulator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        emulator
    }

    /// The environment an AWS SDK client needs to use the emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// What the emulator wrote on stderr so far (moto's warnings and tracebacks).
    pub fn stderr_text(&self) -> String {
        let mut text = String::new();
        let _ = self
            .stderr
            .reopen()
            .and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Runs `code` in the emulator's Python with boto3 clients `ec2`, `ecs`, `elb` (ELBv2),
    /// `codebuild`, `logs` and `iam` on the emulator; `code` sets `out`, returned as JSON.
    pub fn boto(&self, code: &str) -> Value {
        let prelude = "import boto3, json, sys\n\
            kw = dict(endpoint_url=sys.argv[1], region_name='us-east-1', \
                      aws_access_key_id='testing', aws_secret_access_key='testing')\n\
            ec2, ecs, elb, codebuild, logs, iam = (boto3.client(s, **kw) for s in \
                ('ec2', 'ecs', 'elbv2', 'codebuild', 'logs', 'iam'))\n\
            out = None\n";
        let script = format!("{prelude}{code}\nprint(json.dumps(out, default=str))\n");
        let out = Command::new(&self.python)
            .args(["-c", &script, &self.url])
            .output()
            .expect("run the emulator's python");
        assert!(
            out.status.success(),
            "boto3 script failed: {}\n{code}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Runs `scripts/aws/service_fixture.py` (a VPC, subnets, a security group, a cluster, a
    /// task definition `name`, an ALB with a listener, an `ip` target group): their ids.
    pub fn service_fixture(&self, name: &str) -> Value {
        let out = Command::new(&self.python)
            .arg(repo_root().join("scripts/aws/service_fixture.py"))
            .args([&self.url, name])
            .output()
            .expect("run scripts/aws/service_fixture.py");
        assert!(
            out.status.success(),
            "service_fixture: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The next `times` calls (-1: all, until cleared) of `service`'s `action` answer AWS's
    /// error `code` with HTTP `status` (`/_emulator/faults`).
    pub async fn fault(&self, service: &str, action: &str, code: &str, status: u16, times: i32) {
        let body = json!({"service": service, "action": action, "code": code,
                          "status": status, "message": format!("injected {code}"),
                          "times": times});
        assert_eq!(self.post_json("/_emulator/faults", &body).await, 201);
    }

    /// How many injected errors each `service:action` got, and forgets the faults.
    pub async fn faults_served(&self) -> Value {
        let served: Value = self
            .http
            .get(format!("{}/_emulator/faults", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.http
            .delete(format!("{}/_emulator/faults", self.url))
            .send()
            .await
            .unwrap();
        served["served"].clone()
    }

    /// The next ECS task RunTask starts follows `script` (`/_emulator/ecs-tasks`).
    pub async fn script_next_task(&self, script: &Value) {
        assert_eq!(self.post_json("/_emulator/ecs-tasks", script).await, 201);
    }

    /// DescribeTargetHealth's states for `target` (`*`: any) of group `arn`.
    pub async fn target_health(&self, arn: &str, target: &str, states: &Value) {
        let body = json!({"target_group_arn": arn, "target": target, "states": states});
        assert_eq!(self.post_json("/_emulator/target-health", &body).await, 201);
    }

    /// Runs `scripts/aws/selftest.py URL CASE` (boto3 against the emulator) and returns the
    /// JSON it prints.
    pub fn selftest(&self, case: &str) -> Value {
        let out = Command::new(&self.python)
            .arg(repo_root().join("scripts/aws/selftest.py"))
            .args([&self.url, case])
            .envs(self.env())
            .output()
            .expect("run scripts/aws/selftest.py");
        assert!(
            out.status.success(),
            "selftest {case}: {}\nemulator: {}",
            String::from_utf8_lossy(&out.stderr),
            self.stderr_text()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "selftest {case}: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    async fn post_json(&self, path: &str, body: &Value) -> u16 {
        self.http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .status()
            .as_u16()
    }

    /// moto's reset: every resource of every service is gone (the emulator's queued Lambda
    /// results too); Lambda stays without Docker.
    pub async fn reset(&self) {
        let status = self.post_json("/moto-api/reset", &json!({})).await;
        assert_eq!(status, 200, "moto-api/reset");
    }

    /// moto's own queue (`/moto-api/static/lambda-simple/response`): the next invoke of any
    /// function in the region answers 200 with `payload`, no function error.
    pub async fn queue_lambda_result(&self, payload: &str) {
        let body = json!({"results": [payload], "region": REGION, "account_id": ACCOUNT});
        let status = self
            .post_json("/moto-api/static/lambda-simple/response", &body)
            .await;
        assert_eq!(status, 201, "moto-api lambda-simple response");
    }

    /// The emulator's queue for one function (a name or an ARN): its next invoke (every one,
    /// with `repeat`) answers 200 with `payload` and, when given, `X-Amz-Function-Error`.
    pub async fn queue_function_result(
        &self,
        function: &str,
        payload: &Value,
        function_error: Option<&str>,
        repeat: bool,
    ) {
        let body = json!({
            "function": function,
            "payload": payload,
            "function_error": function_error,
            "repeat": repeat,
        });
        let status = self.post_json("/_emulator/lambda-results", &body).await;
        assert_eq!(status, 201, "emulator lambda-results");
    }

    /// A handler of `function` that raises `Exception(message)`, as AWS answers its invoke:
    /// `X-Amz-Function-Error: Unhandled` and `{"errorMessage", "errorType", "stackTrace"}`.
    pub async fn fail_function(&self, function: &str, message: &str, repeat: bool) {
        let payload = json!({
            "errorMessage": message,
            "errorType": "Exception",
            "stackTrace": ["  File \"/var/task/app.py\", line 2, in handler\n"],
        });
        self.queue_function_result(function, &payload, Some("Unhandled"), repeat)
            .await;
    }

    /// An Invoke over plain HTTP (no AWS SDK): status, `X-Amz-Function-Error`, body.
    pub async fn invoke(&self, function: &str, payload: &str) -> (u16, Option<String>, String) {
        let resp = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.url
            ))
            .header("Authorization", fake_authorization("lambda"))
            .header("Content-Type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .expect("invoke");
        let status = resp.status().as_u16();
        let error = resp
            .headers()
            .get("x-amz-function-error")
            .map(|v| v.to_str().unwrap().to_string());
        (status, error, resp.text().await.unwrap())
    }

    /// Forgets every result queued with [`Emulator::queue_function_result`].
    pub async fn clear_function_results(&self) {
        let resp = self
            .http
            .delete(format!("{}/_emulator/lambda-results", self.url))
            .send()
            .await
            .expect("DELETE /_emulator/lambda-results");
        assert!(resp.status().is_success());
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The whole process group: moto's server runs in the emulator's process, but anything
        // it started goes too.
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a bucket on the emulator's S3 (a plain unsigned request: moto routes it to S3).
pub async fn make_bucket(emulator: &Emulator, bucket: &str) {
    let resp = reqwest::Client::new()
        .put(format!("{}/{bucket}", emulator.url))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

/// An object's bytes on the emulator's S3, if it is there.
pub async fn object(emulator: &Emulator, path: &str) -> Option<Vec<u8>> {
    let resp = reqwest::Client::new()
        .get(format!("{}/{path}", emulator.url))
        // Private objects: moto refuses an anonymous read, as S3 does.
        .header("authorization", fake_authorization("s3"))
        .send()
        .await
        .unwrap();
    resp.status()
        .is_success()
        .then_some(resp.bytes().await.unwrap().to_vec())
}

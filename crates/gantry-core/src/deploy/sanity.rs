//! Sanity tests for a deployed stack: which calls prove that what the stack created works,
//! planned from the stack's resources and outputs, and how each call's answer is judged.
//!
//! | resource or output                                 | test                                  |
//! |----------------------------------------------------|---------------------------------------|
//! | `AWS::Lambda::Function`                            | Invoke with `{}`                      |
//! | an output whose value is an `http(s)://` URL       | GET it                                |
//! | `AWS::ApiGateway::Stage`, `AWS::ApiGatewayV2::Stage` | GET the stage's URL, unless a URL output already goes to that API and stage |
//! | `AWS::S3::Bucket`                                  | HeadBucket, then ListObjectsV2 (at most 1 key) |
//! | `AWS::DynamoDB::Table`, `AWS::DynamoDB::GlobalTable` | DescribeTable: ACTIVE               |
//! | IAM roles and policies, anything else              | skipped, with the reason              |
//!
//! SAM's functions, APIs and tables are listed by the stack as the CloudFormation resources they
//! become, so they are covered by the same rules. The plan has one test per resource (sorted by
//! logical id) and per URL output (sorted by key), each with a unique name.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The payload functions are invoked with.
pub const INVOKE_PAYLOAD: &str = "{}";

/// The longest failure message kept, in bytes.
pub const MESSAGE_MAX_BYTES: usize = 1024;

/// API Gateway's execute-api URL, with `{api}`, `{region}` and `{stage}` to fill in. An emulator
/// is reached with a pattern of its own (LocalStack:
/// `http://{api}.execute-api.localhost.localstack.cloud:4566/{stage}`).
pub const EXECUTE_API_PATTERN: &str = "https://{api}.execute-api.{region}.amazonaws.com/{stage}";

/// A resource of the stack, as `DescribeStackResources` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResource {
    /// The CloudFormation type (`AWS::Lambda::Function`).
    pub resource_type: String,
    /// The logical id in the template (`HelloWorldFunction`).
    pub logical_id: String,
    /// The physical id (a function's or table's name, a bucket's name, a stage's name, an
    /// API's id).
    pub physical_id: String,
}

/// An output of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOutput {
    /// The output's key (`HelloWorldApi`).
    pub key: String,
    /// Its value.
    pub value: String,
}

/// One sanity test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanityTest {
    /// A unique readable name (`invoke HelloWorldFunction`, `GET HelloWorldApi`).
    pub name: String,
    /// The logical id of the resource, or the output's key.
    pub resource: String,
    /// The resource's type, or `Output`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// What to do.
    pub kind: TestKind,
}

/// What a sanity test does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TestKind {
    /// Invoke the function with [`INVOKE_PAYLOAD`]; judged by [`judge_invoke`].
    Invoke {
        /// The function's name.
        function: String,
    },
    /// GET the URL; judged by [`judge_http`].
    HttpGet {
        /// The URL.
        url: String,
    },
    /// HeadBucket, then ListObjectsV2 with at most one key; judged by [`judge_bucket`].
    HeadBucket {
        /// The bucket's name.
        bucket: String,
    },
    /// DescribeTable; judged by [`judge_table`].
    DescribeTable {
        /// The table's name.
        table: String,
    },
    /// Nothing is run.
    Skip {
        /// Why.
        reason: String,
    },
}

/// A test's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// It passed.
    Pass,
    /// It failed, and why (at most [`MESSAGE_MAX_BYTES`]).
    Fail {
        /// What went wrong.
        message: String,
    },
}

/// The URL of an API Gateway stage from `pattern` (see [`EXECUTE_API_PATTERN`]). The `$default`
/// stage of an HTTP API is served at the root, so it adds no path.
pub fn execute_api_url(pattern: &str, api: &str, region: &str, stage: &str) -> String {
    let stage = if stage == "$default" { "" } else { stage };
    pattern
        .replace("{api}", api)
        .replace("{region}", region)
        .replace("{stage}", stage)
}

/// The sanity tests for a stack in `region`; stage URLs are built from `execute_api_pattern`
/// (normally [`EXECUTE_API_PATTERN`]).
pub fn plan(
    resources: &[StackResource],
    outputs: &[StackOutput],
    region: &str,
    execute_api_pattern: &str,
) -> Vec<SanityTest> {
    let mut resources: Vec<&StackResource> = resources.iter().collect();
    resources.sort_by(|a, b| {
        (&a.logical_id, &a.resource_type, &a.physical_id).cmp(&(
            &b.logical_id,
            &b.resource_type,
            &b.physical_id,
        ))
    });
    let mut outputs: Vec<&StackOutput> = outputs.iter().collect();
    outputs.sort_by(|a, b| (&a.key, &a.value).cmp(&(&b.key, &b.value)));
    let url_outputs: Vec<(&str, &str)> = outputs
        .iter()
        .filter_map(|o| http_url(&o.value).map(|u| (o.key.as_str(), u)))
        .collect();

    let mut names = BTreeSet::new();
    let mut tests = Vec::new();
    for r in &resources {
        let id = &r.logical_id;
        let (verb, kind) = match r.resource_type.as_str() {
            "AWS::Lambda::Function" => (
                "invoke",
                TestKind::Invoke {
                    function: r.physical_id.clone(),
                },
            ),
            "AWS::ApiGateway::Stage" | "AWS::ApiGatewayV2::Stage" => {
                stage_test(r, &resources, &url_outputs, region, execute_api_pattern)
            }
            "AWS::S3::Bucket" => (
                "bucket",
                TestKind::HeadBucket {
                    bucket: r.physical_id.clone(),
                },
            ),
            "AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable" => (
                "table",
                TestKind::DescribeTable {
                    table: r.physical_id.clone(),
                },
            ),
            other => ("skip", skip(skip_reason(other))),
        };
        tests.push(SanityTest {
            name: unique(&mut names, format!("{verb} {id}")),
            resource: id.clone(),
            resource_type: r.resource_type.clone(),
            kind,
        });
    }
    for (key, url) in url_outputs {
        tests.push(SanityTest {
            name: unique(&mut names, format!("GET {key}")),
            resource: key.to_string(),
            resource_type: "Output".into(),
            kind: TestKind::HttpGet { url: url.into() },
        });
    }
    tests
}

fn skip(reason: impl Into<String>) -> TestKind {
    TestKind::Skip {
        reason: reason.into(),
    }
}

fn skip_reason(resource_type: &str) -> String {
    match resource_type {
        "AWS::IAM::Role" => "IAM roles are not exercised: no safe call proves a role works".into(),
        "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
            "IAM policies are not exercised: no safe call proves a policy works".into()
        }
        "AWS::ApiGateway::RestApi" | "AWS::ApiGatewayV2::Api" => {
            "an API is exercised through its stages and URL outputs".into()
        }
        other => format!("no sanity test for {other}"),
    }
}

/// The test of an API stage: GET its URL, unless a URL output goes to the same API and stage.
fn stage_test(
    stage: &StackResource,
    resources: &[&StackResource],
    url_outputs: &[(&str, &str)],
    region: &str,
    pattern: &str,
) -> (&'static str, TestKind) {
    let api_type = if stage.resource_type == "AWS::ApiGateway::Stage" {
        "AWS::ApiGateway::RestApi"
    } else {
        "AWS::ApiGatewayV2::Api"
    };
    let apis: Vec<&StackResource> = resources
        .iter()
        .copied()
        .filter(|r| r.resource_type == api_type)
        .collect();
    // SAM names a stage after its API (`ServerlessRestApi` → `ServerlessRestApiProdStage`).
    let api = apis
        .iter()
        .filter(|a| stage.logical_id.starts_with(&a.logical_id))
        .max_by_key(|a| a.logical_id.len())
        .or(if apis.len() == 1 { apis.first() } else { None });
    let Some(api) = api else {
        let reason = if apis.is_empty() {
            format!(
                "the stack has no {api_type} for stage {}",
                stage.physical_id
            )
        } else {
            format!(
                "cannot tell which {api_type} stage {} belongs to",
                stage.physical_id
            )
        };
        return ("skip", skip(reason));
    };
    let name = &stage.physical_id;
    let covered = url_outputs.iter().find(|(_, url)| {
        url.contains(&api.physical_id) && (name == "$default" || url.contains(&format!("/{name}")))
    });
    if let Some((key, _)) = covered {
        return ("GET", skip(format!("exercised through output {key}")));
    }
    let url = execute_api_url(pattern, &api.physical_id, region, name);
    ("GET", TestKind::HttpGet { url })
}

/// The value as a URL to GET, when it is one `http://` or `https://` URL with a host.
fn http_url(value: &str) -> Option<&str> {
    let value = value.trim();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))?;
    let host_ok = !rest.is_empty() && !rest.starts_with('/');
    (host_ok && !value.contains(char::is_whitespace)).then_some(value)
}

/// `name`, or `name (2)`, `name (3)`… when it is taken.
fn unique(names: &mut BTreeSet<String>, name: String) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while names.contains(&candidate) {
        candidate = format!("{name} ({n})");
        n += 1;
    }
    names.insert(candidate.clone());
    candidate
}

/// An Invoke passes unless Lambda reports a `FunctionError` (an empty one counts as none). The
/// failure's message is the payload's `errorMessage`, or else the payload itself.
pub fn judge_invoke(function_error: Option<&str>, payload: &[u8]) -> Verdict {
    let Some(kind) = function_error.filter(|e| !e.is_empty()) else {
        return Verdict::Pass;
    };
    let message = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned());
    let message = if message.trim().is_empty() {
        format!("the function failed ({kind}) with an empty payload")
    } else {
        message
    };
    fail(message)
}

/// An HTTP GET passes when the status is below 500: a 403 or 404 still proves the endpoint is
/// served.
pub fn judge_http(url: &str, status: u16) -> Verdict {
    if status < 500 {
        Verdict::Pass
    } else {
        fail(format!("GET {url} answered {status}"))
    }
}

/// A table passes when its status is `ACTIVE`.
pub fn judge_table(table: &str, status: &str) -> Verdict {
    if status == "ACTIVE" {
        Verdict::Pass
    } else {
        fail(format!("table {table} is {status}, not ACTIVE"))
    }
}

/// A bucket passes when both HeadBucket and ListObjectsV2 succeed; each `Err` holds the call's
/// error text.
pub fn judge_bucket(bucket: &str, head: Result<(), &str>, list: Result<(), &str>) -> Verdict {
    match (head, list) {
        (Err(e), _) => fail(format!("HeadBucket {bucket} failed: {e}")),
        (Ok(()), Err(e)) => fail(format!("ListObjectsV2 {bucket} failed: {e}")),
        (Ok(()), Ok(())) => Verdict::Pass,
    }
}

fn fail(message: String) -> Verdict {
    Verdict::Fail {
        message: truncate(message, MESSAGE_MAX_BYTES),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
pub fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = text[..end].to_string();
    cut.push('…');
    cut
}

#[cfg(test)]
#[path = "sanity_tests.rs"]
mod tests;

//! Running a sanity-test plan (`gantry_core::deploy::sanity`) against what is deployed: invoke
//! a function with `{}`, GET a URL, look at a bucket and a table; each test timed, judged by
//! the core's rules, a skipped one passed through with its reason.

use crate::Aws;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use gantry_core::deploy::sanity::{
    self, INVOKE_PAYLOAD, MESSAGE_MAX_BYTES, SanityTest, TestKind, Verdict, judge_bucket,
    judge_http, judge_invoke, judge_table,
};
use serde::Serialize;
use std::time::{Duration, Instant};

/// A GET that has not answered by then fails.
const HTTP_WITHIN: Duration = Duration::from_secs(30);

/// One test's result, as `testResults` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    pub name: String,
    pub resource: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    /// `pass`, `fail` or `skip`.
    pub status: String,
    #[serde(rename = "durationMs")]
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs every test of `plan`, in order; `log` hears each verdict.
pub async fn run(aws: &Aws, plan: &[SanityTest], log: &crate::Log<'_>) -> Vec<TestResult> {
    let http = reqwest::Client::builder()
        .timeout(HTTP_WITHIN)
        .build()
        .unwrap_or_default();
    let mut out = Vec::new();
    for t in plan {
        let started = Instant::now();
        let verdict = match &t.kind {
            TestKind::Skip { reason } => Err(reason.clone()),
            TestKind::Invoke { function } => Ok(invoke(aws, function).await),
            TestKind::HttpGet { url } => Ok(match http.get(url).send().await {
                Ok(resp) => judge_http(url, resp.status().as_u16()),
                Err(e) => Verdict::Fail {
                    message: sanity::truncate(format!("GET {url} failed: {e}"), MESSAGE_MAX_BYTES),
                },
            }),
            TestKind::HeadBucket { bucket } => Ok(bucket_check(aws, bucket).await),
            TestKind::DescribeTable { table } => Ok(table_check(aws, table).await),
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let (status, error) = match verdict {
            Err(reason) => ("skip", Some(reason)),
            Ok(Verdict::Pass) => ("pass", None),
            Ok(Verdict::Fail { message }) => ("fail", Some(message)),
        };
        log(&format!(
            "{status}: {} ({duration_ms} ms){}",
            t.name,
            error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        out.push(TestResult {
            name: t.name.clone(),
            resource: t.resource.clone(),
            resource_type: t.resource_type.clone(),
            status: status.into(),
            duration_ms,
            error,
        });
    }
    out
}

async fn invoke(aws: &Aws, function: &str) -> Verdict {
    match aws
        .lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(INVOKE_PAYLOAD))
        .send()
        .await
    {
        Ok(out) => judge_invoke(
            out.function_error(),
            out.payload().map(|p| p.as_ref()).unwrap_or_default(),
        ),
        Err(e) => Verdict::Fail {
            message: sanity::truncate(
                crate::AwsError::call("Invoke", e).to_string(),
                MESSAGE_MAX_BYTES,
            ),
        },
    }
}

async fn bucket_check(aws: &Aws, bucket: &str) -> Verdict {
    let head = aws.s3.head_bucket().bucket(bucket).send().await;
    let list = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .max_keys(1)
        .send()
        .await;
    let head = head
        .map(|_| ())
        .map_err(|e| crate::AwsError::call("HeadBucket", e).to_string());
    let list = list
        .map(|_| ())
        .map_err(|e| crate::AwsError::call("ListObjectsV2", e).to_string());
    judge_bucket(
        bucket,
        head.as_ref().map(|_| ()).map_err(String::as_str),
        list.as_ref().map(|_| ()).map_err(String::as_str),
    )
}

async fn table_check(aws: &Aws, table: &str) -> Verdict {
    match aws.dynamodb.describe_table().table_name(table).send().await {
        Ok(out) => judge_table(
            table,
            out.table()
                .and_then(|t| t.table_status())
                .map(|s| s.as_str())
                .unwrap_or("unknown"),
        ),
        Err(e) => Verdict::Fail {
            message: sanity::truncate(
                format!(
                    "DescribeTable {table} failed: {}",
                    e.message().unwrap_or("no message")
                ),
                MESSAGE_MAX_BYTES,
            ),
        },
    }
}

//! Gantry's AWS adapters, on the AWS SDK for Rust (the usual credential chain, region and
//! `AWS_ENDPOINT_URL`). `artifacts.rs`: code zipped reproducibly and uploaded to the artifacts
//! bucket. `stack.rs`: a CloudFormation stack deployed through a change set, as
//! the SAM CLI does it. `calls.rs`: retries of throttled calls, and every call counted.
//! `ecs_services.rs` and `elbv2.rs`: services as ECS tasks behind ELBv2 target groups, their
//! reads batched by `coalesce.rs`. `jobs/`: the ECS, CodeBuild and Lambda job executors.

pub mod artifacts;
pub mod bucket;
pub mod calls;
pub mod coalesce;
pub mod deploy;
pub mod ecs_services;
pub mod elbv2;
pub mod executor;
pub mod function;
pub mod jobs;
pub mod sanity;
pub mod stack;
pub mod targets;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};

/// Where a deploy's progress lines go (the session's log).
pub type Log<'a> = dyn Fn(&str) + Send + Sync + 'a;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// An AWS call failed: which, and AWS's code and message.
    #[error("{call}: {message}")]
    Call { call: &'static str, message: String },
    /// The work failed as AWS reported it (a rolled-back stack, a failed change set).
    #[error("{0}")]
    Failed(String),
}

impl AwsError {
    /// An SDK error of `call`, with AWS's error code and message when there are any.
    pub fn call<E>(call: &'static str, e: E) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = match (e.code(), e.message()) {
            (Some(code), Some(m)) => format!("{code}: {m}"),
            (Some(code), None) => code.to_string(),
            _ => DisplayErrorContext(&e).to_string(),
        };
        AwsError::Call { call, message }
    }
}

/// The AWS clients of one region.
#[derive(Debug, Clone)]
pub struct Aws {
    pub region: String,
    pub sdk_config: aws_config::SdkConfig,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Services' tasks and the ECS job executor (standard retries, counted in `calls`).
    pub ecs: aws_sdk_ecs::Client,
    /// Services' target groups and listener rules (standard retries, counted in `calls`).
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// The CodeBuild job executor (standard retries, counted in `calls`).
    pub codebuild: aws_sdk_codebuild::Client,
    /// Remote jobs' logs (standard retries, counted in `calls`).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// The calls of the clients above, and their retries.
    pub calls: calls::CallCounter,
    /// The pace of the calls that start and stop services and remote jobs (learnt from
    /// AWS's throttling), one per region in this process: AWS throttles an account's calls
    /// per region, whichever clients make them.
    pub pacer: std::sync::Arc<calls::Pacer>,
}

impl Aws {
    /// Clients from the environment (credentials, `AWS_ENDPOINT_URL`, …) for `region`, or the
    /// environment's region, or `us-east-1`.
    pub async fn connect(region: Option<&str>) -> Aws {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        // An emulator or S3-compatible store (an endpoint set in the environment) answers on
        // one host, buckets in the path; AWS itself gets virtual-hosted names.
        let custom_endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        Aws::from_config(loader.load().await, custom_endpoint)
    }

    /// Clients of one endpoint (an emulator, an S3-compatible store) with static credentials.
    pub async fn at_endpoint(endpoint: &str, region: &str, key_id: &str, secret: &str) -> Aws {
        let credentials =
            aws_sdk_s3::config::Credentials::new(key_id, secret, None, None, "gantry-static");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .load()
            .await;
        Aws::from_config(config, true)
    }

    fn from_config(mut config: aws_config::SdkConfig, path_style: bool) -> Aws {
        if config.region().is_none() {
            config = config
                .into_builder()
                .region(aws_config::Region::from_static("us-east-1"))
                .build();
        }
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build();
        let calls = calls::CallCounter::default();
        let region_name = config.region().map(|r| r.to_string()).unwrap_or_default();
        // No call of these may hang a start or a stop: each try is bounded.
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(std::time::Duration::from_secs(30))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build();
        let ecs = aws_sdk_ecs::config::Builder::from(&config)
            .retry_config(calls::retry_config())
            .timeout_config(timeouts.clone())
            .interceptor(calls.clone())
            .build();
        let elbv2 = aws_sdk_elasticloadbalancingv2::config::Builder::from(&config)
            .retry_config(calls::retry_config())
            .timeout_config(timeouts.clone())
            .interceptor(calls.clone())
            .build();
        let codebuild = aws_sdk_codebuild::config::Builder::from(&config)
            .retry_config(calls::retry_config())
            .timeout_config(timeouts.clone())
            .interceptor(calls.clone())
            .build();
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(&config)
            .retry_config(calls::retry_config())
            .timeout_config(timeouts.clone())
            .interceptor(calls.clone())
            .build();
        Aws {
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            ecs: aws_sdk_ecs::Client::from_conf(ecs),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2),
            codebuild: aws_sdk_codebuild::Client::from_conf(codebuild),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            calls,
            pacer: calls::Pacer::of_region(&region_name),
            cloudformation: aws_sdk_cloudformation::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            lambda: aws_sdk_lambda::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sdk_config: config,
        }
    }
}

/// Clients made once per region and kept: a client holds its connection pool and its
/// credentials cache, so a session does not pay for new ones.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    by_region: std::sync::Arc<tokio::sync::Mutex<std::collections::HashMap<Option<String>, Aws>>>,
}

impl Clients {
    /// The clients of `region` (or the environment's), made on first use.
    pub async fn get(&self, region: Option<&str>) -> Aws {
        let mut by_region = self.by_region.lock().await;
        let key = region.map(str::to_string);
        if let Some(aws) = by_region.get(&key) {
            return aws.clone();
        }
        let aws = Aws::connect(region).await;
        by_region.insert(key, aws.clone());
        aws
    }
}

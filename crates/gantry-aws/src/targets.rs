//! What a test session names, looked up before the session starts, so `POST /test` refuses a
//! stack or function that is not there instead of starting a session bound to fail. Clients
//! are made once per region and kept.

use crate::Clients;
use async_trait::async_trait;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};
use gantry_engine::ports::{DeployTargets, LookupError};

/// The deployer's AWS account, as the environment names it.
#[derive(Default)]
pub struct AwsTargets {
    clients: Clients,
}

impl AwsTargets {
    pub fn new() -> AwsTargets {
        AwsTargets::default()
    }
}

/// An AWS error that says the thing does not exist (`not_there`) is `Missing`; any other is
/// `Unreachable` (credentials, network, throttling: the request may be tried again).
fn lookup<E: ProvideErrorMetadata + std::error::Error + 'static>(
    call: &str,
    e: E,
    not_there: impl Fn(&str, &str) -> bool,
    missing: String,
) -> LookupError {
    let code = e.code().unwrap_or_default();
    let message = e.message().unwrap_or_default();
    if not_there(code, message) {
        LookupError::Missing(missing)
    } else if code.is_empty() {
        LookupError::Unreachable(format!("{call}: {}", DisplayErrorContext(&e)))
    } else {
        LookupError::Unreachable(format!("{call}: {code}: {message}"))
    }
}

#[async_trait]
impl DeployTargets for AwsTargets {
    async fn check_test_target(
        &self,
        stack_name: Option<&str>,
        function_name: Option<&str>,
        region: Option<&str>,
    ) -> Result<(), LookupError> {
        let aws = self.clients.get(region).await;
        let at = &aws.region;
        if let Some(stack) = stack_name {
            let out = aws
                .cloudformation
                .describe_stacks()
                .stack_name(stack)
                .send()
                .await
                .map_err(|e| {
                    lookup(
                        "DescribeStacks",
                        e,
                        |_, m| m.contains("does not exist"),
                        format!("no stack `{stack}` in {at}"),
                    )
                })?;
            let status = out
                .stacks()
                .first()
                .and_then(|s| s.stack_status())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            // A stack made for a change set never executed, or one deleted, has nothing to test.
            if matches!(
                status.as_str(),
                "REVIEW_IN_PROGRESS" | "DELETE_COMPLETE" | ""
            ) {
                return Err(LookupError::Missing(format!(
                    "stack `{stack}` in {at} has nothing deployed ({status})"
                )));
            }
        }
        if let Some(function) = function_name {
            aws.lambda
                .get_function()
                .function_name(function)
                .send()
                .await
                .map_err(|e| {
                    lookup(
                        "GetFunction",
                        e,
                        |c, _| c == "ResourceNotFoundException",
                        format!("no Lambda function `{function}` in {at}"),
                    )
                })?;
        }
        Ok(())
    }
}

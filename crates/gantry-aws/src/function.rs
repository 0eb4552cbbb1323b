//! A plain Lambda function deployed from a repository's code: its execution role
//! (`<name>-role`, trusted by Lambda, with the basic execution policy) made when missing, then
//! the function created, or its code updated (and its runtime and handler set) when it exists.

use crate::{Aws, AwsError, Log};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const BASIC_EXECUTION: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// What was deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedFunction {
    pub name: String,
    pub arn: String,
    pub role_arn: String,
    /// Made now (else its code was updated).
    pub created: bool,
}

/// The function's execution role's ARN, made if missing.
async fn role(aws: &Aws, function: &str, log: &Log<'_>) -> Result<String, AwsError> {
    let name = format!("{function}-role");
    if let Ok(found) = aws.iam.get_role().role_name(&name).send().await
        && let Some(r) = found.role()
    {
        return Ok(r.arn().to_string());
    }
    let made = aws
        .iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(TRUST)
        .description("Execution role of a function deployed by Gantry")
        .send()
        .await
        .map_err(|e| AwsError::call("CreateRole", e))?;
    aws.iam
        .attach_role_policy()
        .role_name(&name)
        .policy_arn(BASIC_EXECUTION)
        .send()
        .await
        .map_err(|e| AwsError::call("AttachRolePolicy", e))?;
    log(&format!("made the execution role {name}"));
    Ok(made.role().map(|r| r.arn().to_string()).unwrap_or_default())
}

/// Creates function `name` from `zip`, or updates its code.
pub async fn deploy(
    aws: &Aws,
    name: &str,
    runtime: &str,
    handler: &str,
    zip: Vec<u8>,
    log: &Log<'_>,
) -> Result<DeployedFunction, AwsError> {
    let role_arn = role(aws, name, log).await?;
    let runtime = Runtime::from(runtime);
    match aws.lambda.get_function().function_name(name).send().await {
        Ok(_) => {
            let updated = aws
                .lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(zip))
                .send()
                .await
                .map_err(|e| AwsError::call("UpdateFunctionCode", e))?;
            // The configuration follows the repository too (a changed handler or runtime).
            let _ = aws
                .lambda
                .update_function_configuration()
                .function_name(name)
                .runtime(runtime)
                .handler(handler)
                .send()
                .await;
            log(&format!("updated the code of function {name}"));
            Ok(DeployedFunction {
                name: name.to_string(),
                arn: updated.function_arn().unwrap_or_default().to_string(),
                role_arn,
                created: false,
            })
        }
        Err(e) if e.code() == Some("ResourceNotFoundException") => {
            // A new role takes a few seconds to reach Lambda: until then it "cannot be
            // assumed", and the call is tried again.
            let mut wait = std::time::Duration::from_secs(1);
            let made = loop {
                let tried = aws
                    .lambda
                    .create_function()
                    .function_name(name)
                    .runtime(runtime.clone())
                    .handler(handler)
                    .role(&role_arn)
                    .code(
                        FunctionCode::builder()
                            .zip_file(Blob::new(zip.clone()))
                            .build(),
                    )
                    .description("Deployed by Gantry")
                    .send()
                    .await;
                match tried {
                    Err(e)
                        if e.message().is_some_and(|m| m.contains("cannot be assumed"))
                            && wait.as_secs() < 16 =>
                    {
                        log("the new role is not yet usable by Lambda: trying again");
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    other => break other.map_err(|e| AwsError::call("CreateFunction", e))?,
                }
            };
            log(&format!("created function {name}"));
            Ok(DeployedFunction {
                name: name.to_string(),
                arn: made.function_arn().unwrap_or_default().to_string(),
                role_arn,
                created: true,
            })
        }
        Err(e) => Err(AwsError::call("GetFunction", e)),
    }
}

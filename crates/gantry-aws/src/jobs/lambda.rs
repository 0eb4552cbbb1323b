//! `executor: lambda`: an attempt is one synchronous invocation (`RequestResponse`) of
//! `[executors.lambda]`'s function, for short jobs (a job's timeout is within Lambda's 15
//! minutes: checked when the spec is read). The event is the job: `{"run_id", "job",
//! "attempt", "commands", "script", "env", "callback_url"}`. The function's answer is the
//! result (a function error fails the job with its message; `{"exit_code": N}` says how the
//! commands ended), unless the worker reported through its callback first; the tail of its
//! log (`LogType: Tail`, the last 4 KB) goes into the job's log. An invocation cannot be
//! stopped: on cancel or timeout Gantry stops waiting, and the function ends by itself
//! within its own timeout; nor can one be listed, so there are no orphans to reap.

use super::{Remote, close_stopped, environment, reported, settle, woken};
use crate::AwsError;
use async_trait::async_trait;
use aws_sdk_lambda::types::{InvocationType, LogType};
use gantry_core::dag::Outcome;
use gantry_core::remote::{LambdaDef, invocation_outcome, script};
use gantry_engine::ports::{CancelSignal, Executor, Launch};
use serde_json::json;

pub struct LambdaExecutor {
    remote: Remote,
    def: LambdaDef,
    /// Lambda's client with the counted, standard retries of the other job clients.
    client: aws_sdk_lambda::Client,
}

impl LambdaExecutor {
    pub fn new(remote: Remote, def: LambdaDef) -> LambdaExecutor {
        let config = aws_sdk_lambda::config::Builder::from(&remote.aws.sdk_config)
            .retry_config(crate::calls::retry_config())
            .interceptor(remote.aws.calls.clone())
            .build();
        LambdaExecutor {
            client: aws_sdk_lambda::Client::from_conf(config),
            remote,
            def,
        }
    }
}

#[async_trait]
impl Executor for LambdaExecutor {
    async fn execute(&self, launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let failed = Outcome::Failed { exit_code: None };
        let Some(opened) = self.remote.open(&launch, "lambda").await else {
            return failed;
        };
        let env: serde_json::Map<String, serde_json::Value> = environment(&launch, &opened)
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        let event = json!({
            "run_id": launch.run_id,
            "job": launch.job,
            "attempt": launch.attempt,
            "commands": launch.commands,
            "script": script(&launch.commands),
            "env": env,
            "callback_url": opened.callback_url,
        });
        let invoke = self
            .client
            .invoke()
            .function_name(&self.def.function)
            .invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
            .payload(aws_smithy_types::Blob::new(event.to_string().into_bytes()))
            .send();
        tokio::pin!(invoke);
        launch.log.note(&format!(
            "gantry: invoking Lambda function {}",
            self.def.function
        ));
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_millis(launch.timeout_ms);
        let attempt = &opened.attempt;
        loop {
            tokio::select! {
                answer = &mut invoke => {
                    let answer = match answer {
                        Ok(a) => a,
                        Err(e) => {
                            let e = AwsError::call("Invoke", e);
                            let why = format!("cannot invoke Lambda function {}: {e}", self.def.function);
                            return settle(attempt, failed, why, &launch.log).await;
                        }
                    };
                    if let Some(tail) = answer.log_result()
                        && let Ok(bytes) = aws_smithy_types::base64::decode(tail)
                    {
                        let _ = launch.log.append(&bytes);
                    }
                    let payload = answer.payload().map(|p| p.as_ref()).unwrap_or_default();
                    let (o, why) = invocation_outcome(answer.function_error(), payload);
                    return settle(attempt, o, why, &launch.log).await;
                }
                () = woken(attempt) => {
                    if let Some(o) = reported(attempt, &launch.log).await {
                        return o;
                    }
                }
                () = cancel.cancelled() => {
                    close_stopped(attempt).await;
                    launch.log.note("gantry: cancelled; a Lambda invocation cannot be stopped: it ends by itself within the function's timeout");
                    return Outcome::Cancelled;
                }
                () = tokio::time::sleep_until(deadline) => {
                    close_stopped(attempt).await;
                    launch.log.note(&format!("gantry: the job timed out after {} ms; the invocation ends by itself within the function's timeout", launch.timeout_ms));
                    return Outcome::TimedOut;
                }
            }
        }
    }
}

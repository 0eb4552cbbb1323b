//! A CloudFormation stack deployed as the SAM CLI deploys one: a change set (create or update)
//! made from the packaged template, waited for, executed, and the stack waited for while its
//! new events go to the log. An empty change set is success (nothing to change). A stack left
//! in `ROLLBACK_COMPLETE` by a failed create cannot be updated: it is deleted first. A failed
//! deploy says which resource failed and why (the stack's first `*_FAILED` event).

use crate::{AwsError, Log};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, StackEvent};
use serde::Serialize;
use std::collections::HashSet;
use std::time::Duration;

/// How often a change set or stack is looked at while waiting.
const POLL: Duration = Duration::from_millis(500);
/// Longest wait for a stack to settle (CloudFormation's own limit for most resources is
/// lower; a stuck stack is reported, not waited on forever).
const STACK_WITHIN: Duration = Duration::from_secs(60 * 60);

/// What a deployed stack holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Deployed {
    pub stack_id: String,
    pub status: String,
    pub resources: Vec<Resource>,
    pub outputs: Vec<(String, String)>,
    /// The change set was empty: the stack already matched the template.
    pub unchanged: bool,
}

/// A resource of a stack, as `deployedResources` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(rename = "logicalId")]
    pub logical_id: String,
    #[serde(rename = "physicalId")]
    pub physical_id: String,
}

/// Deploys `template` (JSON or YAML text, already packaged) as stack `stack`.
pub async fn deploy(
    cfn: &Client,
    stack: &str,
    template: &str,
    change_set: &str,
    log: &Log<'_>,
) -> Result<Deployed, AwsError> {
    let mut existing = status(cfn, stack).await?;
    if let Some(s) = &existing
        && s.ends_with("_IN_PROGRESS")
    {
        log(&format!("stack {stack} is {s}: waiting for it to settle"));
        existing = Some(settle(cfn, stack, &mut HashSet::new(), log).await?);
    }
    if existing.as_deref() == Some("ROLLBACK_COMPLETE") {
        log(&format!(
            "stack {stack} is ROLLBACK_COMPLETE (its creation failed): deleting it first"
        ));
        cfn.delete_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| AwsError::call("DeleteStack", e))?;
        settle(cfn, stack, &mut HashSet::new(), log).await.ok();
        existing = status(cfn, stack).await?;
    }
    let kind = match existing.as_deref() {
        None | Some("DELETE_COMPLETE") => ChangeSetType::Create,
        Some(_) => ChangeSetType::Update,
    };
    log(&format!(
        "creating change set {change_set} ({} stack {stack})",
        if kind == ChangeSetType::Create {
            "new"
        } else {
            "existing"
        }
    ));
    let made = cfn
        .create_change_set()
        .stack_name(stack)
        .change_set_name(change_set)
        .change_set_type(kind)
        .template_body(template)
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .send()
        .await
        .map_err(|e| AwsError::call("CreateChangeSet", e))?;
    let id = made.id().unwrap_or(change_set).to_string();
    let deadline = tokio::time::Instant::now() + STACK_WITHIN;
    loop {
        let cs = cfn
            .describe_change_set()
            .change_set_name(&id)
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeChangeSet", e))?;
        match cs.status() {
            Some(ChangeSetStatus::CreateComplete) => {
                log(&format!(
                    "change set ready: {} change(s)",
                    cs.changes().len()
                ));
                break;
            }
            Some(ChangeSetStatus::Failed) => {
                let reason = cs.status_reason().unwrap_or_default().to_string();
                if is_empty_change_set(&reason) {
                    log(&format!("no changes: {reason}"));
                    let _ = cfn
                        .delete_change_set()
                        .change_set_name(&id)
                        .stack_name(stack)
                        .send()
                        .await;
                    let mut done = describe(cfn, stack).await?;
                    done.unchanged = true;
                    return Ok(done);
                }
                return Err(AwsError::Failed(format!(
                    "change set {change_set} failed: {reason}"
                )));
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(AwsError::Failed(format!(
                    "change set {change_set} was not ready within {} s",
                    STACK_WITHIN.as_secs()
                )));
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
    // Events before this point are an earlier deploy's.
    let mut seen: HashSet<String> = events(cfn, stack)
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.event_id().map(str::to_string))
        .collect();
    cfn.execute_change_set()
        .change_set_name(&id)
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| AwsError::call("ExecuteChangeSet", e))?;
    log(&format!("executing change set {change_set}"));
    let end = settle(cfn, stack, &mut seen, log).await?;
    if end.ends_with("ROLLBACK_COMPLETE") || end.ends_with("_FAILED") {
        let why = first_failure(cfn, stack)
            .await
            .unwrap_or_else(|| "no resource said why".into());
        return Err(AwsError::Failed(format!("stack {stack} is {end}: {why}")));
    }
    describe(cfn, stack).await
}

/// The stack's resources and outputs now.
pub async fn describe(cfn: &Client, stack: &str) -> Result<Deployed, AwsError> {
    let out = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeStacks", e))?;
    let s = out
        .stacks()
        .first()
        .ok_or_else(|| AwsError::Failed(format!("stack {stack} does not exist")))?;
    let resources = cfn
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeStackResources", e))?;
    Ok(Deployed {
        stack_id: s.stack_id().unwrap_or_default().to_string(),
        status: s
            .stack_status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        outputs: s
            .outputs()
            .iter()
            .map(|o| {
                (
                    o.output_key().unwrap_or_default().to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        resources: resources
            .stack_resources()
            .iter()
            .map(|r| Resource {
                resource_type: r.resource_type().unwrap_or_default().to_string(),
                logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                physical_id: r.physical_resource_id().unwrap_or_default().to_string(),
            })
            .collect(),
        unchanged: false,
    })
}

/// The stack's status, `None` when there is no such stack.
pub async fn status(cfn: &Client, stack: &str) -> Result<Option<String>, AwsError> {
    match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out
            .stacks()
            .first()
            .and_then(|s| s.stack_status())
            .map(|s| s.as_str().to_string())),
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => Ok(None),
        Err(e) => Err(AwsError::call("DescribeStacks", e)),
    }
}

/// Waits until the stack is no longer `*_IN_PROGRESS`, logging its new events; its status
/// then (`DELETE_COMPLETE` when it is gone).
async fn settle(
    cfn: &Client,
    stack: &str,
    seen: &mut HashSet<String>,
    log: &Log<'_>,
) -> Result<String, AwsError> {
    let deadline = tokio::time::Instant::now() + STACK_WITHIN;
    loop {
        if let Ok(mut evs) = events(cfn, stack).await {
            evs.reverse(); // oldest first
            for e in evs {
                let Some(id) = e.event_id() else { continue };
                if seen.insert(id.to_string()) {
                    log(&event_line(&e));
                }
            }
        }
        let now = status(cfn, stack).await?;
        match now {
            None => return Ok("DELETE_COMPLETE".into()),
            Some(s) if !s.ends_with("_IN_PROGRESS") => return Ok(s),
            Some(s) if tokio::time::Instant::now() > deadline => {
                return Err(AwsError::Failed(format!(
                    "stack {stack} still {s} after {} s",
                    STACK_WITHIN.as_secs()
                )));
            }
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// The stack's events, newest first (the first page: enough to follow a deploy).
async fn events(cfn: &Client, stack: &str) -> Result<Vec<StackEvent>, AwsError> {
    let out = cfn
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeStackEvents", e))?;
    Ok(out.stack_events().to_vec())
}

fn event_line(e: &StackEvent) -> String {
    let mut line = format!(
        "{} {} {}",
        e.resource_status().map(|s| s.as_str()).unwrap_or_default(),
        e.resource_type().unwrap_or_default(),
        e.logical_resource_id().unwrap_or_default()
    );
    if let Some(reason) = e.resource_status_reason().filter(|r| !r.is_empty()) {
        line.push_str(": ");
        line.push_str(reason);
    }
    line
}

/// The earliest failed resource of the last deploy, with its reason.
async fn first_failure(cfn: &Client, stack: &str) -> Option<String> {
    let evs = events(cfn, stack).await.ok()?;
    evs.iter()
        .rev()
        .find(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("_FAILED"))
                && e.logical_resource_id() != Some(stack)
        })
        .map(|e| {
            format!(
                "{} ({}) {}: {}",
                e.logical_resource_id().unwrap_or_default(),
                e.resource_type().unwrap_or_default(),
                e.resource_status().map(|s| s.as_str()).unwrap_or_default(),
                e.resource_status_reason().unwrap_or("no reason given")
            )
        })
}

/// Whether a failed change set's reason says it was empty (CloudFormation's wording, and the
/// SAM CLI's test for it).
pub fn is_empty_change_set(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_change_set_is_told_by_its_reason() {
        assert!(super::is_empty_change_set(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(super::is_empty_change_set(
            "No updates are to be performed."
        ));
        assert!(!super::is_empty_change_set("Template format error"));
    }
}

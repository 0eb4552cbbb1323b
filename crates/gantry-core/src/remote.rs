//! Remote job executors' pure parts (`executor: ecs`, `codebuild`, `lambda`): their settings
//! (`[executors.ecs]`, `[executors.codebuild]`, `[executors.lambda]` in gantry.toml), checked;
//! Lambda's 15-minute limit; what a remote attempt is tagged with, so that recovery finds it
//! again; a job's commands as one shell script and as a buildspec; and how a task's, a
//! build's or an invocation's end becomes an [`Outcome`].

use crate::dag::Outcome;
use serde::{Deserialize, Serialize};

/// The longest a Lambda function runs (AWS's limit): a `lambda` job's timeout must be within it.
pub const LAMBDA_MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// How often a remote attempt's service is asked how it is, unless configured.
pub const DEFAULT_POLL: &str = "5s";

/// `[executors]` of gantry.toml: where remote jobs run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorsDef {
    #[serde(default)]
    pub ecs: Option<EcsDef>,
    #[serde(default)]
    pub codebuild: Option<CodebuildDef>,
    #[serde(default)]
    pub lambda: Option<LambdaDef>,
    /// How often a task's, build's status is read while no callback came (`5s`).
    #[serde(default)]
    pub poll: Option<String>,
}

/// `[executors.ecs]`: jobs run as ECS tasks of one task definition, the job's commands as
/// the command of one of its containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsDef {
    pub cluster: String,
    /// `family`, `family:revision` or an ARN.
    pub task_definition: String,
    /// The container whose command becomes the job's script.
    pub container: String,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
    /// `FARGATE` (the default), `EC2` or `EXTERNAL`.
    #[serde(default = "default_launch_type")]
    pub launch_type: String,
    /// The container's `awslogs` group: the job's log is read from it.
    #[serde(default)]
    pub log_group: Option<String>,
    /// The `awslogs-stream-prefix` of the container (streams are `PREFIX/CONTAINER/TASK-ID`).
    #[serde(default)]
    pub log_stream_prefix: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// `[executors.codebuild]`: jobs run as builds of one project, the job's commands as its
/// buildspec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodebuildDef {
    pub project: String,
    /// Where the builds' logs are, when the build does not say (`/aws/codebuild/PROJECT`).
    #[serde(default)]
    pub log_group: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// `[executors.lambda]`: short jobs run as a synchronous invocation of one function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaDef {
    /// A name or an ARN.
    pub function: String,
    #[serde(default)]
    pub region: Option<String>,
}

fn default_launch_type() -> String {
    "FARGATE".into()
}

impl ExecutorsDef {
    /// Every problem of the section, each naming its field.
    pub fn check(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(poll) = &self.poll {
            match crate::duration::parse_duration_ms(poll) {
                Ok(0) | Err(_) => p.push(format!(
                    "executors.poll: `{poll}` is not a duration like `5s`"
                )),
                Ok(_) => {}
            }
        }
        if let Some(e) = &self.ecs {
            let at = |f: &str| format!("executors.ecs.{f}");
            for (field, value) in [
                ("cluster", &e.cluster),
                ("task_definition", &e.task_definition),
                ("container", &e.container),
            ] {
                if value.trim().is_empty() {
                    p.push(format!("{}: is empty", at(field)));
                }
            }
            if !matches!(e.launch_type.as_str(), "FARGATE" | "EC2" | "EXTERNAL") {
                p.push(format!(
                    "{}: `{}` is not FARGATE, EC2 or EXTERNAL",
                    at("launch_type"),
                    e.launch_type
                ));
            }
            if e.launch_type == "FARGATE" && e.subnets.is_empty() {
                p.push(format!(
                    "{}: a FARGATE task needs at least one subnet (awsvpc networking)",
                    at("subnets")
                ));
            }
            p.extend(check_network_ids(&e.subnets, &e.security_groups, at));
            if e.log_stream_prefix.is_some() && e.log_group.is_none() {
                p.push(format!(
                    "{}: needs the `log_group` it is in",
                    at("log_stream_prefix")
                ));
            }
        }
        if let Some(c) = &self.codebuild
            && c.project.trim().is_empty()
        {
            p.push("executors.codebuild.project: is empty".into());
        }
        if let Some(l) = &self.lambda
            && l.function.trim().is_empty()
        {
            p.push("executors.lambda.function: is empty".into());
        }
        p
    }

    /// How often a remote attempt's status is read, in milliseconds.
    pub fn poll_ms(&self) -> u64 {
        self.poll
            .as_deref()
            .and_then(|p| crate::duration::parse_duration_ms(p).ok())
            .filter(|ms| *ms > 0)
            .unwrap_or(5_000)
    }
}

/// Tag keys of a remote attempt (ECS tags, CodeBuild environment variables).
pub const TAG_RUN: &str = "gantry:run";
pub const TAG_JOB: &str = "gantry:job";
pub const TAG_ATTEMPT: &str = "gantry:attempt";
pub const TAG_OWNER: &str = "gantry:owner";

/// Which attempt a remote task or build is, and which Gantry instance started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptTags {
    pub run_id: String,
    pub job: String,
    pub attempt: u32,
    pub owner: String,
}

impl AttemptTags {
    /// As key-value pairs.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (TAG_RUN, self.run_id.clone()),
            (TAG_JOB, self.job.clone()),
            (TAG_ATTEMPT, self.attempt.to_string()),
            (TAG_OWNER, self.owner.clone()),
        ]
    }

    /// From key-value pairs (any others ignored): all four, or none.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let (mut run, mut job, mut attempt, mut owner) = (None, None, None, None);
        for (k, v) in pairs {
            match k {
                TAG_RUN => run = Some(v.to_string()),
                TAG_JOB => job = Some(v.to_string()),
                TAG_ATTEMPT => attempt = v.parse().ok(),
                TAG_OWNER => owner = Some(v.to_string()),
                _ => {}
            }
        }
        Some(AttemptTags {
            run_id: run?,
            job: job?,
            attempt: attempt?,
            owner: owner?,
        })
    }

    /// The environment variable a tag travels in (CodeBuild builds carry no tags of their
    /// own): `gantry:run` → `GANTRY_TAG_RUN`.
    pub fn env_name(tag: &str) -> String {
        format!(
            "GANTRY_TAG_{}",
            tag.trim_start_matches("gantry:").to_ascii_uppercase()
        )
    }

    /// An idempotency token for starting this attempt (ECS `clientToken`, CodeBuild
    /// `idempotencyToken`): the same attempt asked twice starts once.
    pub fn idempotency_token(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(
            format!(
                "{}\n{}\n{}\n{}",
                self.owner, self.run_id, self.job, self.attempt
            )
            .as_bytes(),
        );
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A job's commands as one `sh` script that stops at the first failing command.
pub fn script(commands: &[String]) -> String {
    let mut s = String::from("set -e\n");
    for c in commands {
        s.push_str(c);
        s.push('\n');
    }
    s
}

/// A buildspec (version 0.2) whose build phase runs the job's commands in one shell (the
/// script of [`script`]): YAML, each command a JSON string (valid YAML scalars).
pub fn buildspec(commands: &[String]) -> String {
    let quoted = serde_json::to_string(&script(commands)).expect("a string is JSON");
    format!("version: 0.2\nphases:\n  build:\n    commands:\n      - {quoted}\n")
}

/// How an ECS task that stopped ended: its essential container's exit code, or the task's
/// stop code and reason when the container has none (it never started, it was stopped).
pub fn task_outcome(
    exit_code: Option<i32>,
    stop_code: Option<&str>,
    reason: &str,
) -> (Outcome, String) {
    match exit_code {
        Some(0) => (
            Outcome::Succeeded,
            "the task's container exited with 0".into(),
        ),
        Some(n) => (
            Outcome::Failed { exit_code: Some(n) },
            format!("the task's container exited with {n}: {reason}"),
        ),
        None => (
            Outcome::Failed { exit_code: None },
            format!(
                "the task stopped without an exit code ({}): {reason}",
                stop_code.unwrap_or("no stop code")
            ),
        ),
    }
}

/// A CodeBuild build's status as an outcome; `None` while it is in progress.
pub fn build_outcome(status: &str) -> Option<Outcome> {
    Some(match status {
        "IN_PROGRESS" => return None,
        "SUCCEEDED" => Outcome::Succeeded,
        "TIMED_OUT" => Outcome::TimedOut,
        "STOPPED" => Outcome::Cancelled,
        _ => Outcome::Failed { exit_code: None }, // FAILED, FAULT
    })
}

/// A synchronous Lambda invocation's answer as an outcome: a function error fails it (with
/// the error's message); a payload `{"exit_code": N}` says how the commands ended; any
/// other payload is success.
pub fn invocation_outcome(function_error: Option<&str>, payload: &[u8]) -> (Outcome, String) {
    let json: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    if let Some(kind) = function_error {
        let message = json
            .as_ref()
            .and_then(|j| j.get("errorMessage"))
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        return (
            Outcome::Failed { exit_code: None },
            format!("the function failed ({kind}): {message}"),
        );
    }
    match json
        .as_ref()
        .and_then(|j| j.get("exit_code"))
        .and_then(|c| c.as_i64())
    {
        Some(0) | None => (Outcome::Succeeded, "the function returned".into()),
        Some(n) => (
            Outcome::Failed {
                exit_code: i32::try_from(n).ok(),
            },
            format!("the function's commands exited with {n}"),
        ),
    }
}

/// CodeBuild's phases as log lines, for those not logged yet: `seen` keeps what was logged
/// (a phase's type once it started, and again once it has a status).
pub fn phase_lines(
    phases: &[(String, Option<String>, Option<i64>)],
    seen: &mut Vec<(String, bool)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, status, secs) in phases {
        let done = status.is_some();
        match seen.iter_mut().find(|(k, _)| k == kind) {
            Some((_, was_done)) if *was_done || !done => continue,
            Some(entry) => entry.1 = true,
            None => seen.push((kind.clone(), done)),
        }
        out.push(match (status, secs) {
            (Some(s), Some(d)) => format!("phase {kind}: {s} ({d} s)"),
            (Some(s), None) => format!("phase {kind}: {s}"),
            (None, _) => format!("phase {kind}: started"),
        });
    }
    out
}

#[cfg(test)]
mod tests;

/// Problems with awsvpc subnet and security group ids (`subnet-…`, `sg-…`), each named at
/// `at(field)`: an ECS job executor's and an ECS service's alike.
pub fn check_network_ids(
    subnets: &[String],
    security_groups: &[String],
    at: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut p = Vec::new();
    for s in subnets.iter().filter(|s| !s.starts_with("subnet-")) {
        p.push(format!(
            "{}: `{s}` is not a subnet id (subnet-…)",
            at("subnets")
        ));
    }
    for g in security_groups.iter().filter(|g| !g.starts_with("sg-")) {
        p.push(format!(
            "{}: `{g}` is not a security group id (sg-…)",
            at("security_groups")
        ));
    }
    p
}

//! `executor: codebuild`: an attempt is one build of `[executors.codebuild]`'s project with
//! the job's commands as its buildspec (`buildspecOverride`) and its environment as the
//! build's variables (the attempt's tags among them: builds carry no tags of their own). The
//! build's phases go into the job's log as they pass, its output from CloudWatch Logs; its
//! end is the worker's callback or the build's status (BatchGetBuilds), whichever comes first.
//! Cancel and timeout stop the build; at start, builds of this instance still in progress
//! are found by their variables and stopped.

use super::{
    LogTail, Remote, Wait, close_stopped, environment, note_once, reported, settle, wait_turn,
};
use crate::AwsError;
use async_trait::async_trait;
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType};
use gantry_core::dag::Outcome;
use gantry_core::remote::{
    AttemptTags, CodebuildDef, TAG_OWNER, build_outcome, buildspec, phase_lines,
};
use gantry_engine::ports::{CancelSignal, Executor, Launch};

pub struct CodebuildExecutor {
    remote: Remote,
    def: CodebuildDef,
}

/// A build as one BatchGetBuilds shows it.
struct Seen {
    status: String,
    phases: Vec<(String, Option<String>, Option<i64>)>,
    logs: Option<(String, String)>,
}

impl CodebuildExecutor {
    pub fn new(remote: Remote, def: CodebuildDef) -> CodebuildExecutor {
        CodebuildExecutor { remote, def }
    }

    async fn start(
        &self,
        launch: &Launch,
        env: Vec<(String, String)>,
        tags: &AttemptTags,
    ) -> Result<String, AwsError> {
        let vars = env
            .into_iter()
            .map(|(k, v)| {
                EnvironmentVariable::builder()
                    .name(k)
                    .value(v)
                    .r#type(EnvironmentVariableType::Plaintext)
                    .build()
                    .map_err(|e| AwsError::Failed(format!("a build variable: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // CodeBuild's timeout, in whole minutes (5 to 2160), a little past the job's own.
        let minutes = (launch.timeout_ms.div_ceil(60_000) + 1).clamp(5, 2160) as i32;
        let req = self
            .remote
            .aws
            .codebuild
            .start_build()
            .project_name(&self.def.project)
            .buildspec_override(buildspec(&launch.commands))
            .set_environment_variables_override(Some(vars))
            .idempotency_token(tags.idempotency_token())
            .timeout_in_minutes_override(minutes);
        // Throttled, it waits its turn and goes again (the same idempotency token).
        let out = self
            .remote
            .aws
            .pacer
            .call("codebuild:StartBuild", || req.clone().send())
            .await
            .map_err(|e| AwsError::call("StartBuild", e))?;
        out.build_value()
            .and_then(|b| b.id())
            .map(str::to_string)
            .ok_or_else(|| AwsError::Failed("StartBuild answered no build".into()))
    }

    async fn describe(&self, id: &str) -> Result<Option<Seen>, AwsError> {
        let out = self
            .remote
            .aws
            .codebuild
            .batch_get_builds()
            .ids(id)
            .send()
            .await
            .map_err(|e| AwsError::call("BatchGetBuilds", e))?;
        Ok(out.builds().first().map(|b| Seen {
            status: b
                .build_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "IN_PROGRESS".into()),
            phases: b
                .phases()
                .iter()
                .map(|p| {
                    (
                        p.phase_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        p.phase_status().map(|s| s.as_str().to_string()),
                        p.duration_in_seconds(),
                    )
                })
                .collect(),
            logs: b.logs().and_then(|l| {
                let group = l.group_name().filter(|g| !g.is_empty() && *g != "null")?;
                let stream = l.stream_name().filter(|s| !s.is_empty() && *s != "null")?;
                Some((group.to_string(), stream.to_string()))
            }),
        }))
    }

    /// Where a build's log is when the build does not say: the configured group (or
    /// CodeBuild's default, `/aws/codebuild/PROJECT`), the stream named by the build's id.
    fn default_tail(&self, id: &str) -> LogTail {
        let group = self
            .def
            .log_group
            .clone()
            .unwrap_or_else(|| format!("/aws/codebuild/{}", self.def.project));
        let stream = id.rsplit(':').next().unwrap_or(id).to_string();
        LogTail::new(group, stream)
    }

    async fn stop(&self, id: &str, why: &str, launch: &Launch) {
        match self.remote.aws.codebuild.stop_build().id(id).send().await {
            Ok(_) => launch
                .log
                .note(&format!("gantry: stopped build {id}: {why}")),
            Err(e) => launch.log.note(&format!(
                "gantry: cannot stop build {id}: {}",
                AwsError::call("StopBuild", e)
            )),
        }
    }
}

#[async_trait]
impl Executor for CodebuildExecutor {
    async fn execute(&self, launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let failed = Outcome::Failed { exit_code: None };
        let Some(opened) = self.remote.open(&launch, "codebuild").await else {
            return failed;
        };
        let env = environment(&launch, &opened);
        let id = match self.start(&launch, env, &opened.tags).await {
            Ok(id) => id,
            Err(e) => {
                launch.log.note(&format!(
                    "gantry: cannot start a build of CodeBuild project {}: {e}",
                    self.def.project
                ));
                close_stopped(&opened.attempt).await;
                return failed;
            }
        };
        launch.log.note(&format!("gantry: started build {id}"));
        let mut tail = self.default_tail(&id);
        let mut seen_phases = Vec::new();
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_millis(launch.timeout_ms);
        let attempt = &opened.attempt;
        let mut last_error: Option<String> = None;
        loop {
            if let Some(o) = reported(attempt, &launch.log).await {
                tail.pump(&self.remote.aws, &launch.log).await;
                return o;
            }
            match self.describe(&id).await {
                Ok(Some(seen)) => {
                    if let Some((group, stream)) = seen.logs
                        && (group != tail.group || stream != tail.stream)
                    {
                        tail = LogTail::new(group, stream);
                    }
                    for line in phase_lines(&seen.phases, &mut seen_phases) {
                        launch.log.note(&format!("gantry: {line}"));
                    }
                    if let Some(o) = build_outcome(&seen.status) {
                        tail.pump(&self.remote.aws, &launch.log).await;
                        let why = format!("build {id} ended {}", seen.status);
                        return settle(attempt, o, why, &launch.log).await;
                    }
                }
                Ok(None) => launch
                    .log
                    .note(&format!("gantry: CodeBuild does not know build {id} (yet)")),
                // Tried again each poll until the timeout.
                Err(e) => note_once(
                    &launch.log,
                    &mut last_error,
                    format!("gantry: cannot read the build's status: {e}"),
                ),
            }
            tail.pump(&self.remote.aws, &launch.log).await;
            match wait_turn(
                attempt,
                self.remote.poll,
                &mut cancel,
                deadline,
                launch.timeout_ms,
            )
            .await
            {
                Wait::Look => {}
                Wait::Cancelled => {
                    self.stop(&id, "the run was cancelled", &launch).await;
                    return Outcome::Cancelled;
                }
                Wait::TimedOut(why) => {
                    self.stop(&id, &why, &launch).await;
                    return Outcome::TimedOut;
                }
            }
        }
    }

    /// Builds of the project this instance started that are still in progress (an earlier
    /// life's) are stopped; recovery then runs their attempts again.
    async fn reap_orphans(&self) -> usize {
        let found = match self.orphans().await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(cause = %e, project = %self.def.project, "cannot look for orphaned builds");
                return 0;
            }
        };
        for (id, tags) in &found {
            match self.remote.aws.codebuild.stop_build().id(id).send().await {
                Ok(_) => {
                    tracing::info!(build = %id, run_id = %tags.run_id, job = %tags.job, "stopped an orphaned build")
                }
                Err(e) => {
                    tracing::warn!(build = %id, cause = %AwsError::call("StopBuild", e), "cannot stop an orphaned build")
                }
            }
        }
        found.len()
    }
}

impl CodebuildExecutor {
    /// This instance's builds of the project still in progress (among its latest 100), with
    /// their attempts' tags (from their variables).
    pub async fn orphans(&self) -> Result<Vec<(String, AttemptTags)>, AwsError> {
        let cb = &self.remote.aws.codebuild;
        let ids = cb
            .list_builds_for_project()
            .project_name(&self.def.project)
            .send()
            .await
            .map_err(|e| AwsError::call("ListBuildsForProject", e))?
            .ids()
            .iter()
            .take(100)
            .cloned()
            .collect::<Vec<_>>();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out = cb
            .batch_get_builds()
            .set_ids(Some(ids))
            .send()
            .await
            .map_err(|e| AwsError::call("BatchGetBuilds", e))?;
        let mut found = Vec::new();
        for b in out.builds() {
            if b.build_status().map(|s| s.as_str()) != Some("IN_PROGRESS") {
                continue;
            }
            let vars: Vec<(String, String)> = b
                .environment()
                .map(|e| {
                    e.environment_variables()
                        .iter()
                        .map(|v| (v.name().to_string(), v.value().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let pairs = [
                gantry_core::remote::TAG_RUN,
                gantry_core::remote::TAG_JOB,
                gantry_core::remote::TAG_ATTEMPT,
                TAG_OWNER,
            ]
            .into_iter()
            .filter_map(|tag| {
                let name = AttemptTags::env_name(tag);
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (tag, v.as_str()))
            });
            if let (Some(id), Some(tags)) = (b.id(), AttemptTags::from_pairs(pairs))
                && tags.owner == self.remote.owner
            {
                found.push((id.to_string(), tags));
            }
        }
        Ok(found)
    }
}

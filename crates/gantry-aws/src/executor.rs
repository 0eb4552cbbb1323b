//! The AWS executor: the deployer's jobs, done in the server's process. A `deploy` job checks
//! the branch out into its workspace (as any job's source), deploys it (`deploy.rs`) and
//! records the commit, the kind of infrastructure-as-code, the resources and the outputs on
//! the session; a `test` job plans sanity tests from what is deployed and runs them. Every log
//! line is timestamped (`2026-12-07T10:00:00.123Z message`), which the session's `logs` read.

use crate::deploy::{Tools, deploy};
use crate::stack;
use crate::{Aws, Clients, sanity};
use async_trait::async_trait;
use gantry_core::dag::Outcome;
use gantry_core::deploy::sanity::{EXECUTE_API_PATTERN, StackOutput, StackResource, plan};
use gantry_core::spec::AwsTask;
use gantry_engine::journal::Journal;
use gantry_engine::ports::{CancelSignal, DeploymentRecord, Executor, Launch, Store, Write};
use gantry_exec::GitSources;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// Where sessions' records are read and written: the store, and the engine's journal once the
/// engine runs (the executor is made before it).
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn Store>,
    journal: Arc<OnceLock<Journal>>,
}

impl Sessions {
    pub fn new(store: Arc<dyn Store>) -> Sessions {
        Sessions {
            store,
            journal: Arc::default(),
        }
    }

    /// The engine's journal, through which records are written.
    pub fn attach(&self, journal: Journal) {
        let _ = self.journal.set(journal);
    }

    async fn update(&self, id: &str, change: impl FnOnce(&mut DeploymentRecord)) {
        let Ok(Some(mut rec)) = self.store.get_deployment(id).await else {
            tracing::warn!(session = id, "no session record to update");
            return;
        };
        change(&mut rec);
        // A session taken up again at start runs before the engine is fully up: its journal
        // is attached moments later.
        for _ in 0..500 {
            if self.journal.get().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if let Some(j) = self.journal.get()
            && let Err(e) = j
                .append_durable(vec![Write::PutDeployment(Box::new(rec))])
                .await
        {
            tracing::warn!(session = id, cause = %e, "cannot record the session");
        }
    }
}

pub struct AwsExecutor {
    git: Option<Arc<GitSources>>,
    sessions: Sessions,
    tools: Tools,
    clients: Clients,
}

impl AwsExecutor {
    pub fn new(git: Option<Arc<GitSources>>, sessions: Sessions, tools: Tools) -> AwsExecutor {
        AwsExecutor {
            git,
            sessions,
            tools,
            clients: Clients::default(),
        }
    }
}

/// A log line as a session shows it: its time, then the message.
fn stamp(message: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!("{now} {message}\n")
}

#[async_trait]
impl Executor for AwsExecutor {
    async fn execute(&self, mut launch: Launch, mut cancel: CancelSignal) -> Outcome {
        let Some(task) = launch.aws.clone() else {
            launch.log.note("gantry: an aws job without its task");
            return Outcome::Failed { exit_code: None };
        };
        let log_of = launch.log.clone();
        let log = move |m: &str| {
            let _ = log_of.append(stamp(m).as_bytes());
        };
        let session = launch.run_id.clone();
        let timeout = std::time::Duration::from_millis(launch.timeout_ms);
        let note_log = launch.log.clone();
        let work = async {
            match task {
                AwsTask::Deploy { stack_name, region } => {
                    log("==> checkout");
                    if gantry_exec::prepare_workspace(self.git.as_deref(), None, &mut launch)
                        .await
                        .is_none()
                    {
                        // The checkout's own words, from the log it wrote to.
                        let said = launch.log.contents().ok().and_then(|bytes| {
                            String::from_utf8_lossy(&bytes)
                                .lines()
                                .rev()
                                .find_map(|l| l.trim().strip_prefix("gantry: ").map(str::to_string))
                        });
                        let why = match said {
                            Some(reason) => {
                                format!("the repository could not be checked out: {reason}")
                            }
                            None => "the repository could not be checked out (see the log)".into(),
                        };
                        self.sessions
                            .update(&session, |r| r.error = Some(why))
                            .await;
                        return false;
                    }
                    let commit = head(&launch.workspace).await;
                    if let Some(c) = &commit {
                        log(&format!("at commit {c}"));
                    }
                    self.sessions.update(&session, |r| r.commit = commit).await;
                    let aws = self.clients.get(region.as_deref()).await;
                    log(&format!(
                        "==> deploy to {} as stack {stack_name}",
                        aws.region
                    ));
                    let change_set = format!("gantry-{}-{}", launch.run_id, launch.attempt);
                    match deploy(
                        &aws,
                        &launch.workspace,
                        &stack_name,
                        &change_set,
                        &self.tools,
                        &log,
                    )
                    .await
                    {
                        Ok(d) => {
                            log(&format!(
                                "deployed: {} resource(s){}",
                                d.resources.len(),
                                if d.unchanged { ", nothing changed" } else { "" }
                            ));
                            self.sessions
                                .update(&session, |r| {
                                    r.iac_type = Some(d.iac_type.clone());
                                    r.region = Some(aws.region.clone());
                                    r.resources = json!(d.resources);
                                    r.outputs = outputs_json(&d.outputs);
                                    r.error = None;
                                })
                                .await;
                            true
                        }
                        Err(e) => {
                            let why = e.to_string();
                            log(&format!("failed: {why}"));
                            self.sessions
                                .update(&session, |r| r.error = Some(why))
                                .await;
                            false
                        }
                    }
                }
                AwsTask::Test {
                    stack_name,
                    function_name,
                    region,
                } => {
                    let aws = self.clients.get(region.as_deref()).await;
                    test(
                        &aws,
                        &session,
                        stack_name,
                        function_name,
                        &self.sessions,
                        &log,
                    )
                    .await
                }
            }
        };
        tokio::select! {
            ok = work => if ok { Outcome::Succeeded } else { Outcome::Failed { exit_code: None } },
            () = cancel.cancelled() => {
                let _ = note_log.append(stamp("cancelled: what AWS was asked to do goes on there").as_bytes());
                Outcome::Cancelled
            }
            () = tokio::time::sleep(timeout) => Outcome::TimedOut,
        }
    }
}

async fn test(
    aws: &Aws,
    session: &str,
    stack_name: Option<String>,
    function_name: Option<String>,
    sessions: &Sessions,
    log: &crate::Log<'_>,
) -> bool {
    let (resources, outputs) = match (&stack_name, &function_name) {
        (Some(s), _) => match stack::describe(&aws.cloudformation, s).await {
            Ok(d) => (
                d.resources
                    .iter()
                    .map(|r| StackResource {
                        resource_type: r.resource_type.clone(),
                        logical_id: r.logical_id.clone(),
                        physical_id: r.physical_id.clone(),
                    })
                    .collect(),
                d.outputs
                    .iter()
                    .map(|(k, v)| StackOutput {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            ),
            Err(e) => {
                let why = format!("cannot read stack {s}: {e}");
                log(&why);
                sessions.update(session, |r| r.error = Some(why)).await;
                return false;
            }
        },
        (None, Some(f)) => (
            vec![StackResource {
                resource_type: "AWS::Lambda::Function".into(),
                logical_id: f.clone(),
                physical_id: f.clone(),
            }],
            Vec::new(),
        ),
        (None, None) => return false,
    };
    let tests = plan(&resources, &outputs, &aws.region, EXECUTE_API_PATTERN);
    log(&format!("==> {} sanity test(s)", tests.len()));
    let results = sanity::run(aws, &tests, log).await;
    let failed = results.iter().filter(|r| r.status == "fail").count();
    let error = (failed > 0).then(|| format!("{failed} of {} sanity tests failed", results.len()));
    sessions
        .update(session, |r| {
            r.test_results = json!(results);
            r.error = error.clone();
        })
        .await;
    failed == 0
}

fn outputs_json(outputs: &[(String, String)]) -> Value {
    Value::Object(
        outputs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// The commit checked out at `dir`.
async fn head(dir: &std::path::Path) -> Option<String> {
    // A checkout leaves HEAD detached at the commit: the file holds its SHA.
    let detached = std::fs::read_to_string(dir.join(".git/HEAD")).unwrap_or_default();
    let detached = detached.trim();
    if detached.len() >= 40 && detached.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(detached.to_string());
    }
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

//! Remote job executors: `executor: ecs` (`ecs.rs`, RunTask with the job's commands as a
//! container's command), `executor: codebuild` (`codebuild.rs`, StartBuild with the commands
//! as the buildspec), `executor: lambda` (`lambda.rs`, one synchronous Invoke). What they
//! share is here: the attempt's callback (the agents' signed, single-use URL, passed to the
//! worker as `GANTRY_CALLBACK_URL`), the tags that name an attempt, the job's log read from
//! CloudWatch Logs, and closing an attempt with whichever of the callback and the service's own
//! status comes first.

pub mod codebuild;
pub mod ecs;
pub mod lambda;

use crate::Aws;
use gantry_core::agents::Report;
use gantry_core::dag::Outcome;
use gantry_core::remote::AttemptTags;
use gantry_engine::agents::{Agents, RemoteAttempt};
use gantry_engine::logs::AttemptLog;
use gantry_engine::ports::Launch;
use std::sync::Arc;
use std::time::Duration;

/// What every remote executor is made with.
#[derive(Clone)]
pub struct Remote {
    /// The clients of the executor's region.
    pub aws: Aws,
    /// The callback route's side (none: the service's status alone says how a job ended).
    pub agents: Option<Arc<Agents>>,
    /// The server's URL as workers reach it (`GANTRY_PUBLIC_URL`); without it no callback URL
    /// is passed.
    pub public_url: Option<String>,
    /// This instance's id: remote attempts are tagged with it, and only its own are reaped.
    pub owner: String,
    /// How often the service's status is read while no callback came.
    pub poll: Duration,
}

/// An attempt's remote side, opened: its callback (if any) and its tags.
pub(crate) struct Opened {
    pub attempt: Option<RemoteAttempt>,
    pub callback_url: Option<String>,
    pub tags: AttemptTags,
}

impl Remote {
    /// The tags of `launch`'s attempt.
    pub(crate) fn tags(&self, launch: &Launch) -> AttemptTags {
        AttemptTags {
            run_id: launch.run_id.clone(),
            job: launch.job.clone(),
            attempt: launch.attempt,
            owner: self.owner.clone(),
        }
    }

    /// Checks what a remote job cannot carry, then opens its callback. `None`: the job
    /// cannot start (said in its log).
    pub(crate) async fn open(&self, launch: &Launch, worker: &str) -> Option<Opened> {
        for n in &launch.notes {
            launch.log.note(n);
        }
        if !launch.secrets.is_empty() {
            let names: Vec<&str> = launch.secrets.iter().map(|(k, _)| k.as_str()).collect();
            launch.log.note(&format!(
                "gantry: secrets are not sent to {worker} jobs (their values would be visible in the request AWS keeps): {}; give the remote worker its secrets through AWS (Secrets Manager, the task's or project's own)",
                names.join(", ")
            ));
            return None;
        }
        let attempt = match &self.agents {
            None => None,
            // `aws:…` is no agent's name (an agent's is a label: no `:`), so no agent can
            // renew or write to the entry.
            Some(agents) => match agents
                .remote_attempt(launch, &format!("aws:{worker}"))
                .await
            {
                Ok(a) => Some(a),
                Err(e) => {
                    launch
                        .log
                        .note(&format!("gantry: cannot record the remote attempt: {e}"));
                    return None;
                }
            },
        };
        let callback_url = match (&attempt, &self.public_url) {
            (Some(a), Some(base)) => Some(format!(
                "{}{}",
                base.trim_end_matches('/'),
                a.callback_path()
            )),
            _ => {
                launch.log.note(&format!(
                    "gantry: no callback URL (GANTRY_PUBLIC_URL is not set): the job's end is read from {worker}"
                ));
                None
            }
        };
        Some(Opened {
            attempt,
            callback_url,
            tags: self.tags(launch),
        })
    }
}

/// The environment a remote worker gets: the job's (with the run's context), the attempt's
/// tags, and `GANTRY_CALLBACK_URL` when there is one.
pub(crate) fn environment(launch: &Launch, opened: &Opened) -> Vec<(String, String)> {
    let mut env = launch.env.clone();
    for (k, v) in opened.tags.pairs() {
        env.push((AttemptTags::env_name(k), v));
    }
    if let Some(c) = &launch.checkout {
        env.push(("GANTRY_SOURCE_URL".into(), c.url.clone()));
        env.push(("GANTRY_SOURCE_REF".into(), c.git_ref.clone()));
    }
    if let Some(url) = &opened.callback_url {
        env.push(("GANTRY_CALLBACK_URL".into(), url.clone()));
    }
    env
}

/// Resolves when the attempt's callback may have come; never without a callback.
pub(crate) async fn woken(attempt: &Option<RemoteAttempt>) {
    match attempt {
        Some(a) => a.woken().await,
        None => std::future::pending().await,
    }
}

/// A result the worker reported through its callback, if one came.
pub(crate) async fn reported(attempt: &Option<RemoteAttempt>, log: &AttemptLog) -> Option<Outcome> {
    let report = attempt.as_ref()?.reported().await.ok()??;
    Some(outcome_of(
        &report,
        "the worker reported through its callback",
        log,
    ))
}

/// Closes the attempt with what the service said (unless the callback came first): the
/// outcome that stands.
pub(crate) async fn settle(
    attempt: &Option<RemoteAttempt>,
    outcome: Outcome,
    why: String,
    log: &AttemptLog,
) -> Outcome {
    let mine = Report::of(&outcome, None);
    let Some(a) = attempt else {
        log.note(&format!("gantry: {why}"));
        return outcome;
    };
    match a.close(&mine).await {
        Ok(stands) if stands == mine => {
            log.note(&format!("gantry: {why}"));
            outcome
        }
        Ok(first) => outcome_of(
            &first,
            "the worker reported through its callback first",
            log,
        ),
        Err(e) => {
            log.note(&format!("gantry: cannot record the result ({e}); {why}"));
            outcome
        }
    }
}

/// Closes the attempt as stopped (a late callback is then refused).
pub(crate) async fn close_stopped(attempt: &Option<RemoteAttempt>) {
    if let Some(a) = attempt
        && let Err(e) = a.cancel().await
    {
        tracing::warn!(cause = %e, "cannot close a remote attempt");
    }
}

/// Writes `why` (a status that cannot be read) into the log unless it is what was written
/// last: an error that lasts is said once, however many polls it lasts.
pub(crate) fn note_once(log: &AttemptLog, last: &mut Option<String>, why: String) {
    if last.as_ref() != Some(&why) {
        log.note(&why);
        *last = Some(why);
    }
}

/// How a wait between two looks at a remote attempt ended.
pub(crate) enum Wait {
    /// The callback came or the poll is due: look again.
    Look,
    Cancelled,
    /// The job's timeout passed: why, to say when stopping the remote work.
    TimedOut(String),
}

/// Waits for the attempt's callback, the next poll, cancellation or the deadline; on the last
/// two the attempt's callback is closed first.
pub(crate) async fn wait_turn(
    attempt: &Option<RemoteAttempt>,
    poll: Duration,
    cancel: &mut gantry_engine::ports::CancelSignal,
    deadline: tokio::time::Instant,
    timeout_ms: u64,
) -> Wait {
    tokio::select! {
        () = woken(attempt) => Wait::Look,
        () = tokio::time::sleep(poll) => Wait::Look,
        () = cancel.cancelled() => {
            close_stopped(attempt).await;
            Wait::Cancelled
        }
        () = tokio::time::sleep_until(deadline) => {
            close_stopped(attempt).await;
            Wait::TimedOut(format!("the job timed out after {timeout_ms} ms"))
        }
    }
}

fn outcome_of(report: &Report, said: &str, log: &AttemptLog) -> Outcome {
    let outcome = report
        .outcome()
        .unwrap_or(Outcome::Failed { exit_code: None });
    let detail = match (&report.error, report.exit_code) {
        (Some(e), _) => format!(": {e}"),
        (None, Some(c)) => format!(": exit code {c}"),
        (None, None) => String::new(),
    };
    log.note(&format!("gantry: {said} ({outcome:?}){detail}"));
    outcome
}

/// A CloudWatch Logs stream read into the job's log as it grows.
pub(crate) struct LogTail {
    pub group: String,
    pub stream: String,
    token: Option<String>,
}

impl LogTail {
    pub fn new(group: String, stream: String) -> LogTail {
        LogTail {
            group,
            stream,
            token: None,
        }
    }

    /// Appends the stream's new events to `log` (nothing while the stream does not exist).
    pub async fn pump(&mut self, aws: &Aws, log: &AttemptLog) {
        loop {
            let got = aws
                .logs
                .get_log_events()
                .log_group_name(&self.group)
                .log_stream_name(&self.stream)
                .start_from_head(true)
                .set_next_token(self.token.clone())
                .send()
                .await;
            let Ok(page) = got else {
                return; // not there yet, or unreadable: tried again on the next poll
            };
            for e in page.events() {
                if let Some(m) = e.message() {
                    let _ = log.append(format!("{}\n", m.trim_end_matches('\n')).as_bytes());
                }
            }
            let next = page.next_forward_token().map(str::to_string);
            if next.is_none() || next == self.token {
                self.token = next.or(self.token.take());
                return;
            }
            self.token = next;
        }
    }
}

//! GitHub webhook deliveries as typed events: `push`, `pull_request`, `workflow_job`,
//! `issue_comment`, `ping`, `installation`; any other event name is [`GitHubEvent::Other`]
//! (stored and acknowledged, not acted on). Only the fields Gantry uses are read.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubEvent {
    Ping {
        zen: Option<String>,
        hook_id: Option<i64>,
    },
    Push {
        git_ref: String,
        before: String,
        after: String,
        deleted: bool,
        /// The repository's clone URL (`repository.clone_url`).
        clone_url: Option<String>,
        /// Files added, modified or removed by the pushed commits; `None` when the payload
        /// cannot tell (GitHub lists at most 20 commits).
        changed_files: Option<Vec<String>>,
    },
    PullRequest {
        action: String,
        number: u64,
        head_sha: String,
        head_ref: String,
        base_ref: String,
        /// The base repository's clone URL; the head SHA is fetched from it.
        clone_url: Option<String>,
        /// The head branch lives in another repository (or one that was deleted).
        fork: bool,
    },
    WorkflowJob {
        action: String,
        job_id: i64,
        run_id: i64,
        /// 1 for a run's first attempt; a re-run's jobs are new attempts.
        run_attempt: u32,
        name: Option<String>,
        labels: Vec<String>,
        /// The runner that took the job (from `in_progress` on).
        runner_name: Option<String>,
        /// `success`, `failure`, `cancelled`… once completed.
        conclusion: Option<String>,
    },
    IssueComment {
        action: String,
        number: u64,
        body: String,
        author: String,
        on_pull_request: bool,
    },
    Installation {
        action: String,
    },
    Other {
        event: String,
    },
}

/// A parsed delivery: the typed event plus what every stored event records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event: GitHubEvent,
    pub action: Option<String>,
    /// `owner/name`.
    pub repository: Option<String>,
    pub installation_id: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the `{event}` payload is not what GitHub sends: {reason}")]
pub struct PayloadError {
    pub event: String,
    pub reason: String,
}

/// Every field Gantry reads from any event, so a payload is parsed once whatever its event.
#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
    repository: Option<Repo>,
    installation: Option<Installation>,
    // ping
    zen: Option<String>,
    hook_id: Option<i64>,
    // push
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<String>,
    after: Option<String>,
    deleted: Option<bool>,
    commits: Option<Vec<PushCommit>>,
    // pull_request
    number: Option<u64>,
    pull_request: Option<PullRequest>,
    // workflow_job
    workflow_job: Option<WorkflowJob>,
    // issue_comment
    issue: Option<Issue>,
    comment: Option<Comment>,
}

/// What every stored event records; all that is read of events Gantry does not act on, so an
/// unfamiliar payload shape is never rejected.
#[derive(Deserialize)]
struct Common {
    action: Option<String>,
    repository: Option<Repo>,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct Repo {
    full_name: String,
    clone_url: Option<String>,
}

#[derive(Deserialize)]
struct PushCommit {
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
}

/// GitHub's push payload lists at most this many commits.
const PUSH_COMMITS_LISTED: usize = 20;

#[derive(Deserialize)]
struct Installation {
    id: i64,
}

#[derive(Deserialize)]
struct PullRequest {
    head: GitRef,
    base: GitRef,
}

#[derive(Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    repo: Option<Repo>,
}

#[derive(Deserialize)]
struct WorkflowJob {
    id: i64,
    run_id: i64,
    run_attempt: Option<u32>,
    name: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    runner_name: Option<String>,
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Comment {
    body: String,
    user: User,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

/// Parses a delivery of event `name` (the `X-GitHub-Event` header) from its JSON payload.
pub fn parse(name: &str, payload: &[u8]) -> Result<Delivery, PayloadError> {
    let fail = |reason: String| PayloadError {
        event: name.to_string(),
        reason,
    };
    const KNOWN: [&str; 6] = [
        "ping",
        "push",
        "pull_request",
        "workflow_job",
        "issue_comment",
        "installation",
    ];
    if !KNOWN.contains(&name) {
        let c: Common = serde_json::from_slice(payload).map_err(|err| fail(err.to_string()))?;
        return Ok(Delivery {
            event: GitHubEvent::Other {
                event: name.to_string(),
            },
            action: c.action,
            repository: c.repository.map(|r| r.full_name),
            installation_id: c.installation.map(|i| i.id),
        });
    }
    let e: Envelope = serde_json::from_slice(payload).map_err(|err| fail(err.to_string()))?;
    let need = |field: &str| fail(format!("missing field `{field}`"));
    let event = match name {
        "ping" => GitHubEvent::Ping {
            zen: e.zen,
            hook_id: e.hook_id,
        },
        "push" => GitHubEvent::Push {
            git_ref: e.git_ref.ok_or_else(|| need("ref"))?,
            before: e.before.ok_or_else(|| need("before"))?,
            after: e.after.ok_or_else(|| need("after"))?,
            deleted: e.deleted.unwrap_or(false),
            clone_url: e.repository.as_ref().and_then(|r| r.clone_url.clone()),
            changed_files: e
                .commits
                .as_ref()
                .filter(|c| c.len() < PUSH_COMMITS_LISTED)
                .map(|commits| {
                    let mut files: Vec<String> = commits
                        .iter()
                        .flat_map(|c| c.added.iter().chain(&c.modified).chain(&c.removed))
                        .cloned()
                        .collect();
                    files.sort();
                    files.dedup();
                    files
                }),
        },
        "pull_request" => {
            let pr = e.pull_request.ok_or_else(|| need("pull_request"))?;
            let repo_name = |r: &GitRef| r.repo.as_ref().map(|r| r.full_name.clone());
            let fork = repo_name(&pr.head).is_none() || repo_name(&pr.head) != repo_name(&pr.base);
            let clone_url = pr
                .base
                .repo
                .as_ref()
                .and_then(|r| r.clone_url.clone())
                .or_else(|| e.repository.as_ref().and_then(|r| r.clone_url.clone()));
            GitHubEvent::PullRequest {
                clone_url,
                fork,
                action: e.action.clone().ok_or_else(|| need("action"))?,
                number: e.number.ok_or_else(|| need("number"))?,
                head_sha: pr.head.sha,
                head_ref: pr.head.git_ref,
                base_ref: pr.base.git_ref,
            }
        }
        "workflow_job" => {
            let j = e.workflow_job.ok_or_else(|| need("workflow_job"))?;
            GitHubEvent::WorkflowJob {
                action: e.action.clone().ok_or_else(|| need("action"))?,
                job_id: j.id,
                run_id: j.run_id,
                run_attempt: j.run_attempt.unwrap_or(1).max(1),
                name: j.name,
                labels: j.labels,
                runner_name: j.runner_name.filter(|n| !n.is_empty()),
                conclusion: j.conclusion,
            }
        }
        "issue_comment" => {
            let issue = e.issue.ok_or_else(|| need("issue"))?;
            let comment = e.comment.ok_or_else(|| need("comment"))?;
            GitHubEvent::IssueComment {
                action: e.action.clone().ok_or_else(|| need("action"))?,
                number: issue.number,
                body: comment.body,
                author: comment.user.login,
                on_pull_request: issue.pull_request.is_some(),
            }
        }
        "installation" => GitHubEvent::Installation {
            action: e.action.clone().ok_or_else(|| need("action"))?,
        },
        other => GitHubEvent::Other {
            event: other.to_string(),
        },
    };
    Ok(Delivery {
        event,
        action: e.action,
        repository: e.repository.map(|r| r.full_name),
        installation_id: e.installation.map(|i| i.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../fixtures/github/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn real_payloads_parse_into_typed_events() {
        let d = parse("workflow_job", &fixture("workflow_job.queued.json")).unwrap();
        let GitHubEvent::WorkflowJob { action, labels, .. } = &d.event else {
            panic!("{d:?}")
        };
        assert_eq!(action, "queued");
        assert_eq!(labels, &["self-hosted", "k8s"]);
        assert!(d.repository.is_some() && d.installation_id.is_some());

        let d = parse("push", &fixture("push.json")).unwrap();
        let GitHubEvent::Push { git_ref, after, .. } = &d.event else {
            panic!("{d:?}")
        };
        assert_eq!(git_ref, "refs/heads/master");
        assert_eq!(after.len(), 40);
        assert_eq!(d.action, None);

        for (name, file, action) in [
            ("pull_request", "pull_request.opened.json", "opened"),
            (
                "pull_request",
                "pull_request.synchronize.json",
                "synchronize",
            ),
            ("pull_request", "pull_request.closed.json", "closed"),
            ("issue_comment", "issue_comment.created.json", "created"),
            ("workflow_job", "workflow_job.completed.json", "completed"),
            (
                "workflow_job",
                "workflow_job.in_progress.json",
                "in_progress",
            ),
            ("workflow_job", "workflow_job.waiting.json", "waiting"),
        ] {
            let d = parse(name, &fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(d.action.as_deref(), Some(action), "{file}");
            assert!(!matches!(d.event, GitHubEvent::Other { .. }), "{file}");
        }
        let d = parse("ping", &fixture("ping.json")).unwrap();
        assert!(matches!(
            d.event,
            GitHubEvent::Ping {
                hook_id: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn unknown_events_are_other_and_broken_payloads_say_why() {
        let d = parse(
            "star",
            br#"{"action": "created", "repository": {"full_name": "a/b"}}"#,
        )
        .unwrap();
        assert_eq!(
            d.event,
            GitHubEvent::Other {
                event: "star".into()
            }
        );
        assert_eq!(d.repository.as_deref(), Some("a/b"));
        let err = parse("push", br#"{"before": "x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("`push` payload") && err.reason.contains("ref"),
            "{err}"
        );
        assert!(parse("push", b"not json").is_err());
    }
}

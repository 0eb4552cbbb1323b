//! From a push or pull request to what a pipeline needs: the run's context (event, branch or
//! tag, SHA, PR number, fork), the URL to fetch the commit from and the pull request's action.
//! Events that can never start a pipeline (a deleted branch, a comment) say why.

use super::github::{Delivery, GitHubEvent};
use crate::spec::RunContext;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineTrigger {
    pub ctx: RunContext,
    /// Where the commit is fetched from (the base repository for pull requests).
    pub clone_url: String,
    pub action: Option<String>,
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// What a delivery asks of pipelines, or why it asks nothing.
pub fn pipeline_trigger(d: &Delivery) -> Result<PipelineTrigger, String> {
    let repo = d
        .repository
        .clone()
        .ok_or("the delivery names no repository")?;
    let no_url = || format!("the delivery gives no clone URL for {repo}");
    match &d.event {
        GitHubEvent::Push {
            git_ref,
            after,
            deleted,
            clone_url,
            changed_files,
            ..
        } => {
            if *deleted || after == ZERO_SHA {
                return Err(format!("`{git_ref}` was deleted; nothing to build"));
            }
            let (branch, tag) = if let Some(b) = git_ref.strip_prefix("refs/heads/") {
                (Some(b.to_string()), None)
            } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
                (None, Some(t.to_string()))
            } else {
                return Err(format!("`{git_ref}` is neither a branch nor a tag"));
            };
            Ok(PipelineTrigger {
                clone_url: clone_url.clone().ok_or_else(no_url)?,
                action: None,
                ctx: RunContext {
                    event: Some("push".into()),
                    branch,
                    changed_files: if tag.is_some() {
                        None
                    } else {
                        changed_files.clone()
                    },
                    tag,
                    repo: Some(repo.clone()),
                    sha: Some(after.clone()),
                    ..RunContext::default()
                },
            })
        }
        GitHubEvent::PullRequest {
            action,
            number,
            head_sha,
            base_ref,
            clone_url,
            fork,
            ..
        } => Ok(PipelineTrigger {
            clone_url: clone_url.clone().ok_or_else(no_url)?,
            action: Some(action.clone()),
            ctx: RunContext {
                event: Some("pull_request".into()),
                branch: Some(base_ref.clone()),
                repo: Some(repo.clone()),
                sha: Some(head_sha.clone()),
                pr: Some(*number),
                fork: *fork,
                ..RunContext::default()
            },
        }),
        other => Err(format!(
            "`{}` events do not start pipelines",
            event_name(other)
        )),
    }
}

fn event_name(e: &GitHubEvent) -> &str {
    match e {
        GitHubEvent::Ping { .. } => "ping",
        GitHubEvent::Push { .. } => "push",
        GitHubEvent::PullRequest { .. } => "pull_request",
        GitHubEvent::WorkflowJob { .. } => "workflow_job",
        GitHubEvent::IssueComment { .. } => "issue_comment",
        GitHubEvent::Installation { .. } => "installation",
        GitHubEvent::Other { event } => event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::github::parse;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = env!("CARGO_MANIFEST_DIR");
        std::fs::read(format!("{dir}/../../fixtures/github/{name}")).unwrap()
    }

    #[test]
    fn push_of_a_branch() {
        let d = parse("push", &fixture("push.json")).unwrap();
        let t = pipeline_trigger(&d).unwrap();
        assert_eq!(t.ctx.event.as_deref(), Some("push"));
        assert_eq!(t.ctx.branch.as_deref(), Some("master"));
        assert_eq!(t.ctx.tag, None);
        assert_eq!(t.ctx.sha.as_ref().map(String::len), Some(40));
        assert!(
            t.clone_url.starts_with("https://github.com/"),
            "{}",
            t.clone_url
        );
        assert!(t.ctx.changed_files.is_some());
    }

    #[test]
    fn pull_requests_know_their_base_and_forks() {
        let d = parse("pull_request", &fixture("pull_request.opened.json")).unwrap();
        let t = pipeline_trigger(&d).unwrap();
        assert_eq!(t.ctx.event.as_deref(), Some("pull_request"));
        assert_eq!(t.action.as_deref(), Some("opened"));
        assert!(t.ctx.pr.is_some() && t.ctx.branch.is_some());
        assert!(!t.ctx.fork);
        let mut v: serde_json::Value =
            serde_json::from_slice(&fixture("pull_request.opened.json")).unwrap();
        v["pull_request"]["head"]["repo"]["full_name"] = "someone/fork".into();
        let d = parse("pull_request", &serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(pipeline_trigger(&d).unwrap().ctx.fork);
    }

    #[test]
    fn deleted_branches_and_other_events_say_why() {
        let mut v: serde_json::Value = serde_json::from_slice(&fixture("push.json")).unwrap();
        v["deleted"] = true.into();
        let d = parse("push", &serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(pipeline_trigger(&d).unwrap_err().contains("was deleted"));
        let d = parse("issue_comment", &fixture("issue_comment.created.json")).unwrap();
        assert_eq!(
            pipeline_trigger(&d).unwrap_err(),
            "`issue_comment` events do not start pipelines"
        );
    }
}

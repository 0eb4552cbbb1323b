//! The deployer's requests (`POST /deploy`, `POST /test`) checked, every problem named, and
//! turned into the run a session is: one job of the AWS executor, with the repository checked
//! out for a deploy.

use crate::spec::{AwsTask, ExecutorKind, GitSource, JobSpec, RunSpec, Source, When};
use serde::Deserialize;

/// `POST /deploy`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub repository: String,
    pub branch: String,
    #[serde(default, rename = "stackName")]
    pub stack_name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// `POST /test`'s body: the stack (or the plain function) to test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default, rename = "stackName")]
    pub stack_name: Option<String>,
    #[serde(default, rename = "functionName")]
    pub function_name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// A checked deploy: what the session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub repository: String,
    pub branch: String,
    pub stack_name: String,
    pub region: Option<String>,
}

/// Every problem with a deploy request (an empty list: none).
pub fn check_deploy(r: &DeployRequest) -> Result<Deploy, Vec<String>> {
    let mut problems = Vec::new();
    let repo = repository_name(&r.repository);
    if repo.is_none() {
        problems.push(format!(
            "repository `{}` is not a repository URL like https://github.com/OWNER/NAME",
            shown(&r.repository)
        ));
    }
    if let Err(e) = check_branch(&r.branch) {
        problems.push(e);
    }
    if let Some(s) = &r.stack_name
        && let Err(e) = check_stack_name(s)
    {
        problems.push(e);
    }
    if let Some(region) = &r.region
        && let Err(e) = check_region(region)
    {
        problems.push(e);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let stack_name = r
        .stack_name
        .clone()
        .unwrap_or_else(|| default_stack_name(repo.as_deref().unwrap_or("app"), &r.branch));
    Ok(Deploy {
        repository: r.repository.trim_end_matches('/').to_string(),
        branch: r.branch.clone(),
        stack_name,
        region: r.region.clone(),
    })
}

/// Every problem with a test request.
pub fn check_test(r: &TestRequest) -> Result<AwsTask, Vec<String>> {
    let mut problems = Vec::new();
    match (&r.stack_name, &r.function_name) {
        (None, None) => problems.push("give `stackName` or `functionName`: what to test".into()),
        (Some(_), Some(_)) => problems.push("give `stackName` or `functionName`, not both".into()),
        (Some(s), None) => {
            if let Err(e) = check_stack_name(s) {
                problems.push(e);
            }
        }
        (None, Some(f)) => {
            let ok = !f.is_empty()
                && f.len() <= 140
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
            if !ok {
                problems.push(format!(
                    "functionName `{}` is not a Lambda function name",
                    shown(f)
                ));
            }
        }
    }
    if let Some(repo) = &r.repository
        && repository_name(repo).is_none()
    {
        problems.push(format!(
            "repository `{}` is not a repository URL like https://github.com/OWNER/NAME",
            shown(repo)
        ));
    }
    if let Some(b) = &r.branch
        && let Err(e) = check_branch(b)
    {
        problems.push(e);
    }
    if let Some(c) = &r.commit
        && !(c.len() >= 7 && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        problems.push(format!("commit `{}` is not a commit SHA", shown(c)));
    }
    if let Some(region) = &r.region
        && let Err(e) = check_region(region)
    {
        problems.push(e);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(AwsTask::Test {
        stack_name: r.stack_name.clone(),
        function_name: r.function_name.clone(),
        region: r.region.clone(),
    })
}

/// The run a deploy session is: one `deploy` job of the AWS executor with the branch checked
/// out.
pub fn deploy_spec(d: &Deploy) -> RunSpec {
    let job = aws_job(
        "deploy",
        AwsTask::Deploy {
            stack_name: d.stack_name.clone(),
            region: d.region.clone(),
        },
        Some(Source {
            git: GitSource {
                url: d.repository.clone(),
                git_ref: Some(d.branch.clone()),
            },
        }),
    );
    RunSpec {
        name: format!("deploy {}@{}", d.repository, d.branch),
        jobs: vec![job],
        ..RunSpec::default()
    }
}

/// The run a test session is: one `test` job of the AWS executor.
pub fn test_spec(task: AwsTask, what: &str) -> RunSpec {
    RunSpec {
        name: format!("test {what}"),
        jobs: vec![aws_job("test", task, None)],
        ..RunSpec::default()
    }
}

fn aws_job(name: &str, task: AwsTask, source: Option<Source>) -> JobSpec {
    JobSpec {
        name: name.into(),
        run: Vec::new(),
        needs: Vec::new(),
        when: When::default(),
        timeout_ms: crate::spec::DEFAULT_TIMEOUT_MS,
        retries: 0,
        retry_backoff_ms: crate::spec::DEFAULT_RETRY_BACKOFF_MS,
        // A deploy interrupted by a crash is done again: the stack's state decides what
        // that does (a change set in progress is waited for, an applied one is empty).
        rerun_lost: true,
        env: Default::default(),
        secrets: Vec::new(),
        image: None,
        executor: ExecutorKind::Aws,
        runs_on: Vec::new(),
        source: source.map(Box::new),
        container: None,
        aws: Some(Box::new(task)),
        artifacts: Vec::new(),
        cache: None,
    }
}

/// `name` of `https://host[/path]/owner/name(.git)` (or `http`, `git`, `ssh`), if the URL
/// is a repository's.
pub fn repository_name(url: &str) -> Option<String> {
    let rest = ["https://", "http://", "git://", "ssh://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))?;
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let part = |s: &str| {
        !s.is_empty()
            && !s.chars().all(|c| c == '.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let [host, path @ ..] = segments.as_slice() else {
        return None;
    };
    let [.., owner, name] = path else {
        return None;
    };
    let name = name.strip_suffix(".git").unwrap_or(name);
    (!host.is_empty() && path.iter().all(|s| part(s)) && part(owner) && part(name))
        .then(|| name.to_string())
}

fn check_branch(b: &str) -> Result<(), String> {
    let bad = b.is_empty()
        || b.len() > 255
        || b.starts_with('-')
        || b.starts_with('/')
        || b.ends_with('/')
        || b.ends_with(".lock")
        || b.contains("..")
        || b.contains("@{")
        || b.chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    if bad {
        Err(format!("branch `{}` is not a branch name", shown(b)))
    } else {
        Ok(())
    }
}

/// CloudFormation's rule: a letter, then letters, digits and `-`, at most 128.
fn check_stack_name(s: &str) -> Result<(), String> {
    let ok = s.len() <= 128
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "stackName `{}` is not a stack name (a letter, then letters, digits and -, at most 128)",
            shown(s)
        ))
    }
}

fn check_region(r: &str) -> Result<(), String> {
    let parts: Vec<&str> = r.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "region `{}` is not an AWS region like eu-west-1",
            shown(r)
        ))
    }
}

/// `gantry-<repo>-<branch>`, as a valid stack name.
pub fn default_stack_name(repo: &str, branch: &str) -> String {
    let mut name = String::from("gantry");
    for c in format!("-{repo}-{branch}").chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c.to_ascii_lowercase());
        }
    }
    let name = name.trim_end_matches('-');
    name.chars().take(128).collect()
}

/// A value as shown in an error: at most 100 characters.
fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(repo: &str, branch: &str) -> DeployRequest {
        DeployRequest {
            repository: repo.into(),
            branch: branch.into(),
            stack_name: None,
            region: None,
        }
    }

    #[test]
    fn a_good_request_becomes_one_aws_job_with_the_branch_checked_out() {
        let d = check_deploy(&req("https://github.com/acme/web-app", "feature/x")).unwrap();
        assert_eq!(d.stack_name, "gantry-web-app-feature-x");
        let spec = deploy_spec(&d);
        assert_eq!(spec.jobs.len(), 1);
        let job = &spec.jobs[0];
        assert_eq!(job.executor, ExecutorKind::Aws);
        assert_eq!(
            job.source.as_ref().unwrap().git.git_ref.as_deref(),
            Some("feature/x")
        );
        assert!(matches!(
            job.aws.as_deref(),
            Some(AwsTask::Deploy { stack_name, .. }) if stack_name == "gantry-web-app-feature-x"
        ));
        // It survives being stored.
        let back: RunSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back.jobs[0].aws, job.aws);
    }

    #[test]
    fn every_problem_is_named() {
        let bad = DeployRequest {
            repository: "ftp://x".into(),
            branch: "a..b".into(),
            stack_name: Some("1stack".into()),
            region: Some("mars".into()),
        };
        let problems = check_deploy(&bad).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        for word in ["repository", "branch", "stackName", "region"] {
            assert!(
                problems.iter().any(|p| p.starts_with(word)),
                "{word}: {problems:?}"
            );
        }
        let t = TestRequest {
            repository: None,
            branch: None,
            commit: Some("xyz".into()),
            stack_name: None,
            function_name: None,
            region: None,
        };
        let problems = check_test(&t).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("stackName` or `functionName"))
        );
        assert!(problems.iter().any(|p| p.contains("commit `xyz`")));
    }

    #[test]
    fn default_stack_names_are_valid() {
        for (repo, branch) in [("web", "main"), ("A.B_c", "release/1.2"), ("x", "--")] {
            let name = default_stack_name(repo, branch);
            assert!(check_stack_name(&name).is_ok(), "{name}");
        }
        assert_eq!(
            repository_name("https://github.com/o/r.git").as_deref(),
            Some("r")
        );
        assert_eq!(repository_name("https://github.com/o"), None);
        assert_eq!(
            repository_name("http://127.0.0.1:9/git/acme/web.git").as_deref(),
            Some("web")
        );
        assert_eq!(repository_name("https://github.com/o/../r"), None);
        assert_eq!(
            repository_name("ssh://git@github.com/o/r.git").as_deref(),
            Some("r")
        );
        assert_eq!(
            repository_name("git://127.0.0.1:9418/o/r").as_deref(),
            Some("r")
        );
        assert_eq!(repository_name("git@github.com:o/r.git"), None);
        assert_eq!(repository_name("file:///srv/o/r"), None);
        assert!(check_region("eu-west-1").is_ok() && check_region("us-gov-west-1").is_ok());
    }
}

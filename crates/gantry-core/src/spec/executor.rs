//! A job's `executor:` (by default: agent with `runs_on`, docker with `image`, else local),
//! and what a job of a remote executor (`ecs`, `codebuild`, `lambda`) may not ask for: an
//! `image` (the task definition, project or function has its own), `artifacts` or a `cache`
//! (not carried to AWS), and for `lambda` a timeout beyond Lambda's 15 minutes.

use super::model::ExecutorKind;
use super::node::{Key, Node, Pos};
use super::read::{Reader, join, lookup};
use crate::duration::format_duration_ms;
use crate::remote::LAMBDA_MAX_TIMEOUT_MS;

const KINDS: &str = "local, docker, agent, ecs, codebuild, lambda";

impl Reader {
    /// The job's executor; an unknown one is a problem (and `local` meanwhile).
    pub(super) fn executor(
        &mut self,
        map: &[(Key, Node)],
        runs_on: bool,
        image: bool,
        path: &str,
        job: Option<&str>,
    ) -> ExecutorKind {
        let Some(n) = lookup(map, "executor") else {
            return if runs_on {
                ExecutorKind::Agent
            } else if image {
                ExecutorKind::Docker
            } else {
                ExecutorKind::Local
            };
        };
        match n.as_str() {
            Some("local") => ExecutorKind::Local,
            Some("docker") => ExecutorKind::Docker,
            Some("agent") => ExecutorKind::Agent,
            Some("ecs") => ExecutorKind::Ecs,
            Some("codebuild") => ExecutorKind::Codebuild,
            Some("lambda") => ExecutorKind::Lambda,
            _ => {
                let found = n
                    .scalar_text()
                    .map(|s| format!("`{s}`"))
                    .unwrap_or_else(|| n.kind().to_string());
                self.err(
                    &join(path, "executor"),
                    job,
                    n.pos,
                    format!("unknown executor {found}; expected one of: {KINDS}"),
                );
                ExecutorKind::Local
            }
        }
    }

    /// What a remote executor's job may not have.
    pub(super) fn remote_job(
        &mut self,
        map: &[(Key, Node)],
        executor: ExecutorKind,
        timeout_ms: u64,
        job_pos: Option<Pos>,
        path: &str,
        job: Option<&str>,
    ) {
        if !executor.is_remote() {
            return;
        }
        let kind = executor.as_str();
        let runs_what = match executor {
            ExecutorKind::Ecs => "the task definition's image",
            ExecutorKind::Codebuild => "the project's image",
            _ => "the function's code",
        };
        for (key, why) in [
            (
                "image",
                format!("an {kind} job runs {runs_what}; leave `image` out"),
            ),
            (
                "artifacts",
                format!("`artifacts` are not carried to an {kind} job's remote worker"),
            ),
            (
                "cache",
                format!("a `cache` is not carried to an {kind} job's remote worker"),
            ),
        ] {
            if let Some(n) = lookup(map, key) {
                self.err(&join(path, key), job, n.pos, why);
            }
        }
        if executor == ExecutorKind::Lambda && timeout_ms > LAMBDA_MAX_TIMEOUT_MS {
            let limit = format_duration_ms(LAMBDA_MAX_TIMEOUT_MS);
            let took = format_duration_ms(timeout_ms);
            match lookup(map, "timeout") {
                Some(n) => self.err(
                    &join(path, "timeout"),
                    job,
                    n.pos,
                    format!("a lambda job runs at most {limit} (Lambda's limit); this timeout is {took}"),
                ),
                None => self.err(
                    &join(path, "timeout"),
                    job,
                    job_pos,
                    format!("a lambda job runs at most {limit} (Lambda's limit): give it a `timeout` of {limit} or less (the default is {took})"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{ExecutorKind, Format, Limits, parse_spec};

    fn parse(text: &str) -> Result<crate::spec::RunSpec, Vec<String>> {
        parse_spec(text.as_bytes(), Format::Yaml, "t", &Limits::default())
            .map_err(|p| p.0.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn remote_executors_are_read() {
        let spec = parse(
            "jobs:\n  a: {executor: ecs, run: [make]}\n  b: {executor: codebuild, run: [make]}\n  c: {executor: lambda, timeout: 15m, run: [make]}\n",
        )
        .unwrap();
        let kinds: Vec<_> = spec.jobs.iter().map(|j| j.executor).collect();
        assert_eq!(
            kinds,
            [
                ExecutorKind::Ecs,
                ExecutorKind::Codebuild,
                ExecutorKind::Lambda
            ]
        );
        let err = parse("jobs:\n  a: {executor: fargate, run: [make]}\n").unwrap_err();
        assert!(
            err[0].contains("expected one of: local, docker, agent, ecs, codebuild, lambda"),
            "{err:?}"
        );
    }

    #[test]
    fn a_lambda_job_longer_than_lambda_allows_is_refused_naming_the_limit() {
        let err = parse("jobs:\n  a:\n    executor: lambda\n    timeout: 20m\n    run: [make]\n")
            .unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].contains("at most 15m (Lambda's limit); this timeout is 20m"),
            "{err:?}"
        );
        assert!(err[0].contains("line 4,"), "at the timeout line: {err:?}");
        // No timeout: the default (1h) is too long, and the job is told what to give.
        let err = parse("jobs:\n  a:\n    executor: lambda\n    run: [make]\n").unwrap_err();
        assert!(
            err[0].contains("give it a `timeout` of 15m or less (the default is 1h)"),
            "{err:?}"
        );
        assert!(parse("jobs:\n  a: {executor: lambda, timeout: 900, run: [make]}\n").is_ok());
    }

    #[test]
    fn a_remote_job_takes_no_image_artifacts_or_cache() {
        let err = parse(
            "jobs:\n  a:\n    executor: ecs\n    image: alpine\n    artifacts: [out]\n    cache: {key: k, paths: [x]}\n    run: [make]\n",
        )
        .unwrap_err();
        let all = err.join("\n");
        assert!(
            all.contains("an ecs job runs the task definition's image"),
            "{all}"
        );
        assert!(all.contains("`artifacts` are not carried"), "{all}");
        assert!(all.contains("a `cache` is not carried"), "{all}");
        let err =
            parse("jobs:\n  a: {executor: codebuild, runs_on: [x], run: [make]}\n").unwrap_err();
        assert!(err.join("\n").contains("runs_on"), "{err:?}");
    }
}

//! Fuzzes the webhook payload parsers. The first line of the input is the event: a GitHub
//! event name (`X-GitHub-Event`: push, pull_request, issue_comment, workflow_job, ping,
//! installation or any other) or `orders` for `POST /webhook`; the rest is the body.
//!
//! A GitHub delivery goes through `forge::github::parse` and, when it parses, the pipeline
//! trigger derived from it, the clone URL check, and a pipeline's `on:` filters and
//! concurrency group in the trigger's context. An `orders` body goes through `parse_spec` as
//! JSON, as the `/webhook` handler does (`crates/gantry/src/server/intake.rs`), then the source
//! check and what a run does with a spec. Nothing may panic. (The handler's form-encoded body
//! unwrapping, `payload_of`, lives in the `gantry` binary crate and is not fuzzed here.)
#![no_main]

use gantry_core::forge::github::{self, GitHubEvent};
use gantry_core::forge::trigger::pipeline_trigger;
use gantry_core::spec::{Format, Limits, RunSpec, check_clone_url, check_sources, parse_spec};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The README's pipeline: push and pull request filters with globs and an exclusion.
const PIPELINE: &str = r#"
name: ci
on:
  push: {branches: [main, 'release/**', '!release/old/*'], paths: ['src/**']}
  pull_request: {branches: [main]}
concurrency: {group: '{repo}/{branch}/{pr}/{event}', cancel_in_progress: true}
jobs:
  test:
    run: ["make test"]
  deploy:
    needs: [test]
    when: {event: push, branch: main}
    run: ["./deploy.sh"]
"#;

fn pipeline() -> &'static RunSpec {
    static SPEC: OnceLock<RunSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        parse_spec(PIPELINE.as_bytes(), Format::Yaml, "ci", &Limits::default())
            .expect("the README's pipeline parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let (event, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let event = String::from_utf8_lossy(event);
    let event = event.trim_end_matches('\r');
    let allowed = gantry_fuzz::allowed_prefixes();

    if event == "orders" {
        match parse_spec(body, Format::Json, "orders", &Limits::default()) {
            Ok(spec) => {
                let _ = check_sources(&spec, &allowed).map_err(|p| p.to_string());
                gantry_fuzz::exercise_spec(&spec, body);
            }
            Err(problems) => {
                assert!(!problems.0.is_empty(), "rejected with no problem listed");
                let _ = problems.to_string();
            }
        }
        return;
    }

    let delivery = match github::parse(event, body) {
        Ok(d) => d,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if let GitHubEvent::Other { event: name } = &delivery.event {
        assert_eq!(name, event);
    }
    let Ok(trigger) = pipeline_trigger(&delivery) else {
        return;
    };
    let _ = check_clone_url(&allowed, &trigger.clone_url);
    let spec = pipeline();
    if let Some(on) = &spec.on {
        let _ = on.accepts(&trigger.ctx, trigger.action.as_deref());
    }
    if let Some(c) = &spec.concurrency {
        let _ = c.group_key(&spec.name, &trigger.ctx);
    }
    for job in &spec.jobs {
        for c in job.when.conditions() {
            let _ = c.context_matches(&trigger.ctx);
        }
    }
});

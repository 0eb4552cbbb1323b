use super::*;

fn parse(text: &str) -> Result<RunSpec, Vec<String>> {
    parse_spec(text.as_bytes(), Format::Auto, "run", &Limits::default())
        .map_err(|p| p.0.iter().map(ToString::to_string).collect())
}

#[test]
fn design_example_parses() {
    let spec = parse(
        r#"
name: infra
on: {push: {branches: [main]}, pull_request: {}}
jobs:
  test:
    run: ["pytest -q"]
    image: python:3.11
    timeout: 10m
    env: {CI: "true", N: 3}
    secrets: [OPENAI_API_KEY]
  deploy:
    needs: [test]
    when: {event: push, branch: main}
    run: ["npx cdk deploy --require-approval never"]
    retries: 1
"#,
    )
    .unwrap();
    assert_eq!(spec.name, "infra");
    assert_eq!(spec.jobs.len(), 2);
    let test = &spec.jobs[0];
    assert_eq!(test.executor, ExecutorKind::Docker);
    assert_eq!(test.timeout_ms, 600_000);
    assert_eq!(test.env.get("N").map(String::as_str), Some("3"));
    let deploy = &spec.jobs[1];
    assert_eq!(deploy.needs, vec!["test"]);
    assert_eq!(deploy.when.any[0].event, vec!["push"]);
    assert_eq!(deploy.retries, 1);
    assert_eq!(deploy.executor, ExecutorKind::Local);
    assert!(spec.on.is_some());
}

#[test]
fn json_and_yaml_are_one_schema() {
    let yaml =
        parse("name: x\njobs:\n  a: {run: [\"echo hi\"]}\n  b: {run: \"echo b\", needs: a}\n")
            .unwrap();
    let json =
        parse(r#"{"name":"x","jobs":{"a":{"run":["echo hi"]},"b":{"run":"echo b","needs":"a"}}}"#)
            .unwrap();
    assert_eq!(yaml, json);
}

#[test]
fn orders_payload_is_another_spelling() {
    let orders = parse(
        r#"{"pr": {"repo": "acme/infra", "number": 7},
            "orders": [
              {"name": "plan", "cmds": ["terraform plan"], "timeout": 600, "env_vars": {"TF_IN_AUTOMATION": "1"},
               "secrets": ["AWS_KEY"], "code": {"git": {"url": "https://github.com/acme/infra", "ref": "main"}}},
              {"name": "apply", "cmds": ["terraform apply"], "dependencies": ["plan"]}
            ]}"#,
    )
    .unwrap();
    assert_eq!(orders.name, "acme/infra#7");
    assert_eq!(orders.pr.as_ref().map(|p| p.number), Some(7));
    assert_eq!(orders.jobs[0].timeout_ms, 600_000);
    assert_eq!(
        orders.jobs[0]
            .source
            .as_ref()
            .unwrap()
            .git
            .git_ref
            .as_deref(),
        Some("main")
    );
    assert_eq!(orders.jobs[1].needs, vec!["plan"]);
    assert_eq!(orders.jobs[1].run, vec!["terraform apply"]);
}

#[test]
fn a_command_that_is_not_a_string_is_the_only_problem_reported() {
    // YAML reads `echo "warning: x"` as a mapping; the list is not empty, so only the item is
    // wrong.
    let errs =
        parse("jobs:\n  a:\n    run:\n      - echo ok\n      - echo \"warning: x\"\n").unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("jobs.a.run[1]: expected a string, found a mapping"),
        "{errs:#?}"
    );
}

#[test]
fn every_problem_is_listed_with_positions() {
    let errs = parse(
        "name: broken
jobs:
  build:
    run: []
    timeout: 10x
    colour: red
  test:
    needs: [biuld, test]
    run: [\"true\"]
  bad name:
    run: [\"true\"]
",
    )
    .unwrap_err();
    let want = [
        "line 4, column 10: jobs.build.run: `run` is empty: a job needs at least one command",
        "line 5, column 14: jobs.build.timeout: bad duration `10x`: unknown unit `x` (use ms, s, m, h or d)",
        "line 6, column 5: jobs.build.colour: unknown key `colour`",
        "line 10, column 3: jobs.bad name: job name `bad name` may only use letters",
        "line 8, column 13: jobs.test.needs[0]: unknown job `biuld` in needs (did you mean `build`?)",
        "line 8, column 20: jobs.test.needs[1]: job `test` needs itself",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
}

#[test]
fn cycles_print_their_path() {
    let errs = parse(
        r#"{"jobs": {"a": {"run": ["true"], "needs": ["c"]}, "b": {"run": ["true"], "needs": ["a"]},
                     "c": {"run": ["true"], "needs": ["b"]}, "d": {"run": ["true"], "needs": ["c"]}}}"#,
    )
    .unwrap_err();
    assert_eq!(errs, vec!["jobs.a.needs: dependency cycle: a → b → c → a"]);
}

#[test]
fn bad_documents_say_what_is_wrong() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "the document is empty"),
        (b"{\"jobs\": ", "invalid JSON"),
        (b"jobs: [1,", "line"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b"- a\n- b\n", "must be a mapping with a `jobs` key"),
        (b"name: x\n", "missing `jobs`"),
        (b"jobs: {}\n", "`jobs` is empty"),
        (b"jobs:\n  a: {run: [x], timeout: 0}\n", "greater than zero"),
        (b"jobs:\n  a: {run: [x], timeout: 3d}\n", "longer than the limit of 1d"),
        (b"jobs:\n  a: {run: [x], retries: 99}\n", "from 0 to 10"),
        (b"jobs:\n  a: {run: [x], when: {status: [maybe]}}\n", "unknown status `maybe`"),
        (b"jobs:\n  a: {run: [x], executor: docker}\n", "needs an `image`"),
        (b"jobs:\n  a: {run: [x], env: {GANTRY_X: 1}}\n", "reserved"),
        (b"jobs:\n  a: {run: [x]}\n  a: {run: [y]}\n", "duplicate job name `a`"),
        (b"{\"orders\": [{\"name\": \"x\", \"cmds\": [\"a\"]}, {\"name\": \"x\", \"cmds\": [\"b\"]}]}", "duplicate order name `x`"),
        (b"{\"orders\": [{\"name\": \"x\", \"run\": [\"a\"]}]}", "unknown key `run`"),
    ];
    for (input, want) in cases {
        let errs = parse_spec(input, Format::Auto, "run", &Limits::default()).unwrap_err();
        let text = errs.to_string();
        assert!(
            text.contains(want),
            "{:?}: wanted {want:?} in {text}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_bytes: 100,
        max_jobs: 2,
        max_commands_per_job: 1,
    };
    let big = format!("jobs:\n  a: {{run: [\"{}\"]}}\n", "x".repeat(200));
    let err = parse_spec(big.as_bytes(), Format::Yaml, "r", &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the limit of 100 bytes"), "{err}");
    let many = "jobs: {a: {run: [x]}, b: {run: [x]}, c: {run: [x, y]}}";
    let err = parse_spec(many.as_bytes(), Format::Yaml, "r", &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 jobs is more than the limit of 2"), "{err}");
    assert!(
        err.contains("2 commands is more than the limit of 1"),
        "{err}"
    );
}

#[test]
fn a_stored_job_leaves_its_defaults_out_and_gets_them_back() {
    let spec = parse(
        r#"
jobs:
  plain: {run: ["true"]}
  every:
    run: [make]
    needs: [plain]
    when: {status: [failure], branch: main}
    timeout: 5m
    retries: {count: 2, backoff: 3s}
    env: {A: "1"}
    secrets: [TOKEN]
    image: alpine:3
    executor: docker
"#,
    )
    .unwrap();
    let stored = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        stored["jobs"][0],
        serde_json::json!({"name": "plain", "run": ["true"]}),
        "a job at its defaults is its name and commands"
    );
    let every = stored["jobs"][1].as_object().unwrap();
    for key in [
        "needs",
        "when",
        "timeout_ms",
        "retries",
        "retry_backoff_ms",
        "env",
        "secrets",
        "image",
        "executor",
    ] {
        assert!(
            every.contains_key(key),
            "{key} is kept when not the default"
        );
    }
    assert_eq!(serde_json::from_value::<RunSpec>(stored).unwrap(), spec);
    // Specs stored before defaults were left out read back the same.
    let mut full = serde_json::to_value(&spec.jobs[0]).unwrap();
    let extra = serde_json::json!({
        "needs": [], "when": [{"status": {"success": true, "failure": false}}],
        "timeout_ms": DEFAULT_TIMEOUT_MS, "retries": 0, "retry_backoff_ms": DEFAULT_RETRY_BACKOFF_MS,
        "env": {}, "secrets": [], "executor": "local"
    });
    full.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    assert_eq!(
        serde_json::from_value::<JobSpec>(full).unwrap(),
        spec.jobs[0]
    );
}

#[test]
fn normalized_spec_round_trips_through_json() {
    let spec = parse("jobs:\n  a: {run: [x], when: {status: [success, failure]}, retries: {count: 2, backoff: 50ms}}\n").unwrap();
    let stored = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<RunSpec>(&stored).unwrap(), spec);
    assert_eq!(spec.jobs[0].retry_backoff_ms, 50);
    assert!(spec.jobs[0].when.any[0].status.failure && spec.jobs[0].when.any[0].status.success);
}

#[test]
fn container_options_for_docker_jobs() {
    let yaml = "jobs:\n  t:\n    image: x\n    run: [make]\n    container: {user: 1000, cpus: 1.5, memory: 512m, network: none}\n";
    let spec = parse_spec(yaml.as_bytes(), Format::Yaml, "r", &Limits::default()).unwrap();
    let c = spec.jobs[0].container.clone().unwrap();
    assert_eq!(c.user.as_deref(), Some("1000"));
    assert_eq!(c.cpus_milli, Some(1500));
    assert_eq!(c.memory_bytes, Some(512 << 20));
    assert_eq!(c.network.as_deref(), Some("none"));
    let bad = "jobs:\n  t:\n    run: [make]\n    container: {cpus: 0, memory: lots, gpu: 1}\n";
    let err = parse_spec(bad.as_bytes(), Format::Yaml, "r", &Limits::default())
        .unwrap_err()
        .to_string();
    for part in [
        "need a docker job",
        "`cpus` must be",
        "not a size",
        "unknown key `gpu`",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
}

#[test]
fn no_when_is_the_default_condition_however_it_is_spelled_or_stored() {
    let plain = parse("jobs: {a: {run: [x]}}").unwrap();
    let spelled = parse("jobs: {a: {run: [x], when: {status: success}}}").unwrap();
    assert_eq!(plain.jobs[0].when.conditions(), [Condition::default()]);
    assert_eq!(plain, spelled, "the same conditions");
    let failure = parse("jobs: {a: {run: [x], when: {status: failure}}}").unwrap();
    assert_ne!(plain.jobs[0].when, failure.jobs[0].when);
    // Stored without `when`; a spec stored with the default condition spelled out reads the same.
    let stored = serde_json::to_value(&spelled).unwrap();
    assert!(stored["jobs"][0].get("when").is_none(), "{stored}");
    let old: RunSpec = serde_json::from_str(
        r#"{"name": "run", "jobs": [{"name": "a", "run": ["x"],
            "when": [{"status": {"success": true, "failure": false}}]}]}"#,
    )
    .unwrap();
    assert_eq!(old, plain);
    assert_eq!(old.jobs[0].when.conditions().len(), 1);
}

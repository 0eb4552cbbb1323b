//! The spec reader's tests: what parses, every problem listed with its place, the two
//! spellings, storage round trips; what a spec may cost is in `bounds`.

use super::*;

mod bounds;

fn parse(text: &str) -> Result<RunSpec, Vec<String>> {
    parse_spec(text.as_bytes(), Format::Auto, "run", &Limits::default())
        .map_err(|p| p.0.iter().map(ToString::to_string).collect())
}

#[test]
fn a_spec_with_most_fields_parses() {
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
    rerun_lost: false
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
    assert!(!deploy.rerun_lost);
    assert!(
        test.rerun_lost,
        "lost attempts run again unless a job says not to"
    );
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
fn every_graph_problem_is_listed_with_its_place() {
    // Each case: a spec, and every problem it must give, exactly (graph problems come after
    // the others, cycles last).
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "a cycle alone",
            "jobs:
  a: {run: [x], needs: [d, c]}
  b: {run: [x], needs: [a]}
  c: {run: [x], needs: [b]}
  d: {run: [x]}
",
            &["line 2, column 28: jobs.a.needs: dependency cycle: a → b → c → a"],
        ),
        (
            "a cycle and an unknown need",
            "jobs:
  a:
    run: [x]
    needs: [nope, c]
  b:
    run: [x]
    needs: [a]
  c:
    run: [x]
    needs: [b]
",
            &[
                "line 4, column 13: jobs.a.needs[0]: unknown job `nope` in needs",
                "line 4, column 19: jobs.a.needs: dependency cycle: a → b → c → a",
            ],
        ),
        (
            "an unknown need on the cycle's last job, a misspelt one elsewhere",
            "jobs:
  build: {run: [x], needs: [test]}
  test: {run: [x], needs: [build, ghost]}
  lint: {run: [x], needs: [tset]}
",
            &[
                "line 3, column 35: jobs.test.needs[1]: unknown job `ghost` in needs",
                "line 4, column 28: jobs.lint.needs[0]: unknown job `tset` in needs (did you mean `test`?)",
                "line 2, column 29: jobs.build.needs: dependency cycle: build → test → build",
            ],
        ),
        (
            "a self-need and a cycle",
            "jobs:
  a: {run: [x], needs: [a, b]}
  b: {run: [x], needs: [a]}
",
            &[
                "line 2, column 25: jobs.a.needs[0]: job `a` needs itself",
                "line 2, column 28: jobs.a.needs: dependency cycle: a → b → a",
            ],
        ),
        (
            "two cycles, an unknown need and a self-need",
            "jobs:
  a: {run: [x], needs: [b]}
  b: {run: [x], needs: [a, b]}
  c: {run: [x], needs: [zzz, d]}
  d: {run: [x], needs: [c]}
",
            &[
                "line 3, column 28: jobs.b.needs[1]: job `b` needs itself",
                "line 4, column 25: jobs.c.needs[0]: unknown job `zzz` in needs",
                "line 2, column 25: jobs.a.needs: dependency cycle: a → b → a",
                "line 4, column 30: jobs.c.needs: dependency cycle: c → d → c",
            ],
        ),
        (
            "other problems too",
            "jobs:
  a: {run: [], needs: [b, nope]}
  b: {run: [x], needs: [a]}
",
            &[
                "line 2, column 12: jobs.a.run: `run` is empty: a job needs at least one command",
                "line 2, column 27: jobs.a.needs[1]: unknown job `nope` in needs",
                "line 2, column 24: jobs.a.needs: dependency cycle: a → b → a",
            ],
        ),
        (
            "the orders spelling (JSON: no lines)",
            r#"{"orders": [{"name": "a", "cmds": ["x"], "dependencies": ["b", "nope"]},
                          {"name": "b", "cmds": ["x"], "dependencies": ["a"]}]}"#,
            &[
                "orders[0].dependencies[1]: unknown job `nope` in dependencies",
                "orders[0].dependencies: dependency cycle: a → b → a",
            ],
        ),
    ];
    for (what, text, want) in cases {
        let errs = parse(text).unwrap_err();
        assert_eq!(&errs, want, "{what}");
    }
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
        (
            b"jobs:\n  a: {run: [x], rerun_lost: \"no\"}\n",
            "jobs.a.rerun_lost: expected true or false, found a string",
        ),
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
    rerun_lost: false
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
        "rerun_lost",
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

/// Random specs, each written once as JSON and once as YAML: both spellings must read the same.
mod spellings {
    use super::super::*;
    use proptest::prelude::*;

    /// A document: a scalar or flow list, written as JSON text (which YAML reads the same when
    /// it is a value), or a mapping whose entries keep their order (and their repeats).
    #[derive(Debug, Clone)]
    enum Tree {
        Leaf(String),
        Map(Vec<(String, Tree)>),
    }

    fn quoted(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    fn json(tree: &Tree) -> String {
        match tree {
            Tree::Leaf(text) => text.clone(),
            Tree::Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", quoted(k), json(v)))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }

    /// Block style, each key quoted the JSON way (a YAML double-quoted scalar).
    fn yaml(entries: &[(String, Tree)], indent: usize, out: &mut String) {
        for (k, v) in entries {
            out.push_str(&" ".repeat(indent));
            out.push_str(&quoted(k));
            out.push(':');
            match v {
                Tree::Leaf(text) => out.push_str(&format!(" {text}\n")),
                Tree::Map(m) if m.is_empty() => out.push_str(" {}\n"),
                Tree::Map(m) => {
                    out.push('\n');
                    yaml(m, indent + 2, out);
                }
            }
        }
    }

    fn leaf(v: serde_json::Value) -> Tree {
        Tree::Leaf(v.to_string())
    }

    /// How a job names its needs: by number, as names of earlier jobs (no repeats, so most
    /// specs have no cycle), or as any job's name, repeats allowed.
    #[derive(Debug, Clone)]
    enum Needs {
        Earlier(Vec<usize>),
        Any(Vec<usize>),
    }

    /// A job: its commands (mostly valid), sometimes needs, sometimes another field.
    fn job() -> impl Strategy<Value = (Tree, Option<Needs>, Vec<(String, Tree)>)> {
        // Escapes (`"`, `\`, a tab) and characters beyond ASCII, in valid commands.
        let command = "[a-z][a-z\"\\\\é\t ]{0,3}";
        let run = prop_oneof![
            8 => command.prop_map(|c| leaf(c.into())),
            8 => prop::collection::vec(command, 1..3).prop_map(|cs| leaf(cs.into())),
            1 => prop_oneof![
                prop::collection::vec("[a-z ]{0,2}", 0..3).prop_map(|cs| leaf(cs.into())),
                Just(leaf(7.into())),
                Just(leaf(serde_json::Value::Null)),
                Just(leaf(serde_json::json!(["x", 3]))),
                Just(Tree::Map(vec![])),
            ],
        ];
        let numbers = || prop::collection::vec(0..6usize, 0..4);
        let needs = prop_oneof![
            4 => Just(None),
            6 => numbers().prop_map(|v| Some(Needs::Earlier(v))),
            1 => numbers().prop_map(|v| Some(Needs::Any(v))),
        ];
        let extra = prop_oneof![
            30 => Just(vec![]),
            2 => prop_oneof![Just("5m"), Just("0"), Just("soon")]
                .prop_map(|t| vec![("timeout".to_string(), leaf(t.into()))]),
            2 => (0..12u32).prop_map(|n| vec![("retries".to_string(), leaf(n.into()))]),
            1 => Just(vec![("colour".to_string(), leaf("red".into()))]),
            1 => Just(vec![("needs".to_string(), leaf(serde_json::Value::Null))]),
        ];
        (run, needs, extra)
    }

    fn spec() -> impl Strategy<Value = Tree> {
        let top = prop_oneof![
            4 => Just(vec![]),
            4 => "[a-zé][a-zé ]{0,7}".prop_map(|n| vec![("name".to_string(), leaf(n.into()))]),
            1 => prop_oneof![Just(leaf("".into())), Just(leaf(3.into()))]
                .prop_map(|n| vec![("name".to_string(), n)]),
            1 => Just(vec![(
                "on".to_string(),
                Tree::Map(vec![("push".to_string(), Tree::Map(vec![]))])
            )]),
        ];
        // Jobs are mostly named by their place (`j0`, `j1`, …, which needs name), sometimes a
        // name that repeats one or is invalid.
        let job_name = prop_oneof![
            40 => Just(None),
            1 => "j[0-5]".prop_map(Some),
            1 => prop_oneof![Just("-x".to_string()), Just("a b".to_string())].prop_map(Some),
        ];
        (top, prop::collection::vec((job_name, job()), 0..7)).prop_map(|(mut top, jobs)| {
            let jobs = jobs
                .into_iter()
                .enumerate()
                .map(|(i, (name, (run, needs, extra)))| {
                    let mut fields = vec![("run".to_string(), run)];
                    let needs: Option<Vec<usize>> = needs.map(|needs| match needs {
                        Needs::Any(v) => v,
                        Needs::Earlier(v) => {
                            let mut earlier: Vec<usize> =
                                v.iter().filter(|_| i > 0).map(|n| n % i.max(1)).collect();
                            earlier.sort_unstable();
                            earlier.dedup();
                            earlier
                        }
                    });
                    if let Some(needs) = needs {
                        let names: Vec<String> = needs.iter().map(|n| format!("j{n}")).collect();
                        fields.push(("needs".to_string(), leaf(names.into())));
                    }
                    fields.extend(extra);
                    (name.unwrap_or_else(|| format!("j{i}")), Tree::Map(fields))
                })
                .collect();
            top.push(("jobs".to_string(), Tree::Map(jobs)));
            Tree::Map(top)
        })
    }

    /// The spec, or its problems without their places (JSON's tree has none).
    fn read(text: &str, format: Format) -> Result<RunSpec, Vec<(String, Option<String>, String)>> {
        parse_spec(text.as_bytes(), format, "dflt", &Limits::default()).map_err(|p| {
            p.0.into_iter()
                .map(|p| (p.path, p.job, p.message))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn json_and_yaml_read_the_same(tree in spec()) {
            let Tree::Map(entries) = &tree else { unreachable!() };
            let mut as_yaml = String::new();
            yaml(entries, 0, &mut as_yaml);
            let as_json = json(&tree);
            prop_assert_eq!(
                read(&as_json, Format::Json),
                read(&as_yaml, Format::Yaml),
                "JSON:\n{}\nYAML:\n{}",
                as_json,
                as_yaml
            );
        }
    }
}

/// Cycles are looked for among the valid needs whatever else is wrong.
mod cycles_among_valid_needs {
    use super::super::*;
    use proptest::prelude::*;

    /// A random graph: each job's needs by number, any job's (its own too), no repeats.
    fn graph() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1..8usize).prop_flat_map(|n| {
            prop::collection::vec(
                prop::collection::btree_set(0..n, 0..4).prop_map(|s| s.into_iter().collect()),
                n,
            )
        })
    }

    /// The spec as JSON, each job's needs with `unknown[j]`'s names put in at their places.
    fn spec(needs: &[Vec<usize>], unknown: &[Vec<(usize, String)>]) -> String {
        let jobs: Vec<String> = needs
            .iter()
            .enumerate()
            .map(|(j, row)| {
                let mut names: Vec<String> = row.iter().map(|k| format!("j{k}")).collect();
                for (at, name) in unknown.get(j).into_iter().flatten() {
                    names.insert(at % (names.len() + 1), name.clone());
                }
                format!(
                    r#""j{j}": {{"run": "x", "needs": {}}}"#,
                    serde_json::to_string(&names).unwrap()
                )
            })
            .collect();
        format!(r#"{{"jobs": {{{}}}}}"#, jobs.join(", "))
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse_spec(text.as_bytes(), Format::Json, "r", &Limits::default()) {
            Ok(_) => Vec::new(),
            Err(p) => p.0,
        }
    }

    /// Whether following needs from some job comes back to it (a job needing itself does not
    /// count: that is a problem of its own).
    fn has_cycle(needs: &[Vec<usize>]) -> bool {
        fn reaches(needs: &[Vec<usize>], from: usize, to: usize, seen: &mut Vec<bool>) -> bool {
            needs[from].iter().filter(|&&k| k != from).any(|&k| {
                k == to || (!std::mem::replace(&mut seen[k], true) && reaches(needs, k, to, seen))
            })
        }
        (0..needs.len()).any(|j| reaches(needs, j, j, &mut vec![false; needs.len()]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn unknown_needs_change_no_cycle(
            needs in graph(),
            unknown in prop::collection::vec(
                prop::collection::vec((0..5usize, 0..1000u32), 0..3),
                0..8,
            ),
        ) {
            // Names no job has, distinct within a job.
            let unknown: Vec<Vec<(usize, String)>> = unknown
                .iter()
                .map(|row| row.iter().enumerate().map(|(i, (at, n))| (*at, format!("x{n}_{i}"))).collect())
                .collect();
            let injected: usize = unknown.iter().take(needs.len()).map(Vec::len).sum();
            let clean = problems(&spec(&needs, &[]));
            let with_unknown = problems(&spec(&needs, &unknown));
            let cycles = |ps: &[Problem]| -> Vec<Problem> {
                ps.iter().filter(|p| p.message.starts_with("dependency cycle")).cloned().collect()
            };
            prop_assert_eq!(cycles(&with_unknown), cycles(&clean));
            prop_assert_eq!(!cycles(&clean).is_empty(), has_cycle(&needs));
            // Each unknown need is reported, and nothing else changes.
            let (unknowns, rest): (Vec<Problem>, Vec<Problem>) = with_unknown
                .into_iter()
                .partition(|p| p.message.starts_with("unknown job"));
            prop_assert_eq!(unknowns.len(), injected);
            let rest: Vec<(String, String)> = rest.into_iter().map(|p| (p.job.unwrap_or_default(), p.message)).collect();
            let clean: Vec<(String, String)> = clean.into_iter().map(|p| (p.job.unwrap_or_default(), p.message)).collect();
            prop_assert_eq!(rest, clean);
        }
    }
}

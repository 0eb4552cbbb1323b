//! What a spec may cost: limits on jobs, commands, values and problems, and needs repeated
//! many times, each answered with one short problem.

use super::*;

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_bytes: 100,
        max_values: 1000,
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

/// A spec whose job `b` needs `needs` (JSON).
fn needing(needs: &[String]) -> String {
    serde_json::json!({"jobs": {"a": {"run": ["x"]}, "b": {"run": ["x"], "needs": needs}}})
        .to_string()
}

#[test]
fn a_repeated_need_is_one_problem_for_its_job_however_often_it_is_repeated() {
    // Within the value limit: what the reader itself makes of it.
    let many = needing(&vec!["a".to_string(); 200_000]);
    let err = parse_spec(many.as_bytes(), Format::Json, "r", &Limits::default()).unwrap_err();
    assert_eq!(err.count(), 1, "{err}");
    assert_eq!(
        err.0[0].to_string(),
        "jobs.b.needs[1]: `a` is listed 200000 times; list each need once"
    );
    // Several names: each named once, with how often; repeats of an unknown or a self need are
    // not reported again per repeat, and places are the document's.
    let names: Vec<String> = ["a", "b", "a", "x", "b", "b", "x", "y"]
        .iter()
        .map(|n| n.to_string())
        .collect();
    let err = parse(&needing(&names)).unwrap_err();
    assert_eq!(
        err,
        [
            "jobs.b.needs[2]: `a` (twice), `b` (3 times), `x` (twice) are listed more than once; list each need once",
            "jobs.b.needs[1]: job `b` needs itself",
            "jobs.b.needs[3]: unknown job `x` in needs",
            "jobs.b.needs[7]: unknown job `y` in needs",
        ]
    );
    let seven: Vec<String> = (0..7)
        .flat_map(|i| [format!("n{i}"), format!("n{i}")])
        .collect();
    let err = parse(&needing(&seven)).unwrap_err();
    assert!(
        err[0].ends_with("`n4` (twice) and 2 more are listed more than once; list each need once"),
        "{err:?}"
    );
}

#[test]
fn only_the_first_problems_are_listed_and_the_rest_counted() {
    let unknown: Vec<String> = (0..5000).map(|i| format!("ghost{i}")).collect();
    let err = parse_spec(
        needing(&unknown).as_bytes(),
        Format::Json,
        "r",
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.0.len(), MAX_PROBLEMS);
    assert_eq!(err.count(), 5000);
    assert_eq!(err.0[99].path, "jobs.b.needs[99]");
    let text = err.to_string();
    assert!(text.starts_with("invalid spec: 5000 problems\n"), "{text}");
    assert!(
        text.ends_with("  … and 4900 more problems (only the first 100 are listed)\n"),
        "{text}"
    );
    assert!(text.len() < 10_000, "{} bytes", text.len());
    // More distinct needs than a run may have jobs: one problem, whatever they are.
    let many: Vec<String> = (0..5001).map(|i| format!("n{i}")).collect();
    assert_eq!(
        parse(&needing(&many)).unwrap_err(),
        ["jobs.b.needs: 5001 needs is more than the limit of 5000 jobs per run"]
    );
}

#[test]
fn a_document_with_too_many_values_is_refused_while_it_is_read() {
    let limits = Limits {
        max_values: 1000,
        ..Limits::default()
    };
    // 1000 values: a mapping, 2 keys, a list and 996 scalars.
    let fits = format!(r#"{{"jobs": [{}]}}"#, vec!["1"; 997].join(","));
    let over = format!(r#"{{"jobs": [{}]}}"#, vec!["1"; 998].join(","));
    let json = |t: &str| parse_spec(t.as_bytes(), Format::Json, "r", &limits);
    assert_eq!(
        json(&fits).unwrap_err().1,
        Unreadable::No,
        "read, then invalid"
    );
    let err = json(&over).unwrap_err();
    assert_eq!(err.1, Unreadable::TooLarge);
    assert_eq!(
        err.to_string(),
        "invalid spec: 1 problem\n  - line 1, column 2005: the spec has more than 1000 values \
         (mappings, lists and scalars, keys included), the limit\n"
    );
    // YAML counts the same way, aliases as what they expand to.
    let yaml = |t: &str| parse_spec(t.as_bytes(), Format::Yaml, "r", &limits);
    let flow = |n: usize| format!("jobs: [{}]\n", vec!["1"; n].join(","));
    assert_eq!(yaml(&flow(997)).unwrap_err().1, Unreadable::No);
    let err = yaml(&flow(998)).unwrap_err();
    assert_eq!(err.1, Unreadable::TooLarge, "{err}");
    assert!(err.to_string().contains("more than 1000 values"), "{err}");
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                  jobs: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
    let err = yaml(laughs).unwrap_err();
    assert_eq!(err.1, Unreadable::TooLarge, "{err}");
    // The default limit is the same for both (the YAML reader's own default).
    assert_eq!(Limits::default().max_values, 250_000);
}

//! `gantry pattern match` (exit 0 on a match, 1 on none, 2 on an invalid pattern, saying why;
//! `matched` / `not matched` printed unless `-q`)
//! and `gantry pattern test` (one answer line per line of cases, in order).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn gantry(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::gantry_bin())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn match_exits_0_1_or_2_with_the_reason() {
    let pattern = r#"{"source": ["custom.app"], "detail": {"n": [{"numeric": [">", 2]}]}}"#;
    let (code, _, _) = gantry(&[
        "pattern",
        "match",
        pattern,
        r#"{"source": "custom.app", "detail": {"n": 3}}"#,
    ]);
    assert_eq!(code, 0);
    let (code, _, _) = gantry(&[
        "pattern",
        "match",
        pattern,
        r#"{"source": "custom.app", "detail": {"n": 2}}"#,
    ]);
    assert_eq!(code, 1);
    let (code, _, err) = gantry(&[
        "pattern",
        "match",
        r#"{"source": [{"numeric": [">", "x"]}]}"#,
        "{}",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("bad numeric expression"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(&file, pattern).unwrap();
    let at = format!("@{}", file.display());
    let (code, _, _) = gantry(&[
        "pattern",
        "match",
        &at,
        r#"{"source": "custom.app", "detail": {"n": 9}}"#,
    ]);
    assert_eq!(code, 0);
}

#[test]
fn match_says_matched_or_not_matched_unless_quiet() {
    let pattern = r#"{"source": ["custom.app"]}"#;
    let yes = r#"{"source": "custom.app"}"#;
    let no = r#"{"source": "other"}"#;
    assert_eq!(
        gantry(&["pattern", "match", pattern, yes]),
        (0, "matched\n".to_string(), String::new())
    );
    assert_eq!(
        gantry(&["pattern", "match", pattern, no]),
        (1, "not matched\n".to_string(), String::new())
    );
    for quiet in ["-q", "--quiet"] {
        assert_eq!(
            gantry(&["pattern", "match", quiet, pattern, yes]),
            (0, String::new(), String::new())
        );
        assert_eq!(
            gantry(&["pattern", "match", pattern, no, quiet]),
            (1, String::new(), String::new())
        );
    }
}

#[test]
fn test_answers_each_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.jsonl");
    let lines = [
        r#"{"pattern": {"a": ["x"]}, "event": {"a": "x"}}"#,
        r#"{"pattern": {"a": ["x"]}, "event": {"a": "y"}}"#,
        r#"{"pattern": {"a": []}, "event": {"a": "y"}}"#,
        r#"{"pattern": "{\"a\": [{\"prefix\": \"y\"}]}", "event": {"a": "yes"}}"#,
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let (code, out, _) = gantry(&["pattern", "test", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got[0], r#"{"matches":true}"#);
    assert_eq!(got[1], r#"{"matches":false}"#);
    assert!(
        got[2].starts_with(r#"{"error":"#) && got[2].contains("empty arrays"),
        "{}",
        got[2]
    );
    assert_eq!(got[3], r#"{"matches":true}"#);
    assert_eq!(got.len(), 4);

    let mut child = Command::new(common::gantry_bin())
        .args(["pattern", "test", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines[0].as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"matches":true}"#
    );
}

#[test]
fn schedule_next_prints_rfc3339_utc_times() {
    let (code, out, _) = gantry(&[
        "schedule",
        "next",
        "cron(0 9 ? * 2#1 *)",
        "--from",
        "2026-11-22T00:00:00+02:00",
        "--count",
        "2",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out, "2026-12-07T09:00:00Z\n2027-01-04T09:00:00Z\n");
    let (code, out, _) = gantry(&[
        "schedule",
        "next",
        "rate(1 hour)",
        "--from",
        "2026-11-22T10:30:00Z",
        "--count",
        "1",
    ]);
    assert_eq!((code, out.as_str()), (0, "2026-11-22T11:30:00Z\n"));
    let (code, out, _) = gantry(&[
        "schedule",
        "next",
        "cron(0 9 * * ? *)",
        "--tz",
        "Europe/Paris",
        "--from",
        "2027-03-27T12:00:00Z",
        "--count",
        "1",
    ]);
    assert_eq!((code, out.as_str()), (0, "2027-03-28T07:00:00Z\n"));
    let (code, _, err) = gantry(&["schedule", "next", "cron(0 9 * * * *)"]);
    assert_eq!(code, 2);
    assert!(err.contains("must be `?`"), "{err}");
}

//! The run commands (the real binary) against a real `gantry serve`: a run named by a unique
//! prefix of its id in `status`, `logs`, `cancel` and `rerun` (an ambiguous prefix listed with
//! exit 2, an unknown one not found); `submit -` from stdin with `--event`, `--branch` and
//! `--tag`; `--server` without a scheme; a server that is not there; the environment variables
//! in every client command's help.

#[path = "common/cli.rs"]
mod cli;
mod common;

use cli::{gantry, gantry_in, gantry_stdin};
use common::{Server, job};
use serde_json::Value;

/// The length of the longest common prefix of `a` and `b`.
fn common_len(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

#[tokio::test]
async fn a_run_is_named_by_a_unique_prefix_of_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let failing = server
        .submit_yaml("name: one\njobs:\n  a:\n    run: ['echo hello-from-a', 'exit 3']\n")
        .await;
    let other = server
        .submit_yaml("name: two\njobs:\n  b:\n    run: ['true']\n")
        .await;
    server.wait_finished(&failing, 30).await;
    server.wait_finished(&other, 30).await;
    let shared = common_len(&failing, &other);
    let unique = &failing[..shared + 1];

    let out = gantry(&server, &["status", unique]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .starts_with(&format!("run one ({failing}) failed")),
        "{}",
        out.all()
    );
    let out = gantry(&server, &["status", &unique.to_lowercase(), "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let run: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(run["id"], failing.as_str());
    let out = gantry(&server, &["logs", unique, "a"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("hello-from-a"), "{}", out.all());
    let out = gantry(&server, &["rerun", unique]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.stdout, format!("{failing} queued\n"));
    server.wait_finished(&failing, 30).await;
    let run = server.get(&format!("/api/v1/runs/{failing}")).await.1;
    assert_eq!(job(&run, "a")["attempt"], 2, "{run}");

    // A prefix of both (ids made moments apart share their time's first characters): each
    // named, exit 2, nothing done.
    assert!(shared > 0, "{failing} {other}");
    let out = gantry(&server, &["cancel", &failing[..shared]]).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("names 2 runs")
            && out.stderr.contains(&failing)
            && out.stderr.contains(&other),
        "{}",
        out.all()
    );
    // Run ids start with a digit (a ULID's time): `Z` names none.
    let out = gantry(&server, &["status", "ZZZ"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("run `ZZZ` not found"), "{}", out.all());
    let out = gantry(&server, &["logs", "ZZZ"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
}

#[tokio::test]
async fn submit_reads_stdin_with_the_event_branch_and_tag_it_stands_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let spec = "name: ctx\njobs:\n  \
                main:\n    when: {event: push, branch: main}\n    run: ['true']\n  \
                tagged:\n    when: {tag: 'v*'}\n    run: ['true']\n  \
                dev:\n    when: {branch: dev}\n    run: ['true']\n";
    let out = gantry_stdin(
        &server,
        &[
            "submit", "-", "--event", "push", "--branch", "main", "--tag", "v1.2", "--wait",
            "--json",
        ],
        spec.as_bytes(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let run: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(job(&run, "main")["status"], "succeeded", "{run}");
    assert_eq!(job(&run, "tagged")["status"], "succeeded", "{run}");
    assert_eq!(job(&run, "dev")["status"], "skipped", "{run}");

    // `gantry run` takes the same flags.
    let data = dir.path().join("local");
    let out = gantry_in(
        None,
        &[
            "run",
            "-",
            "--event",
            "push",
            "--branch",
            "main",
            "--tag",
            "v1.2",
            "--json",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        spec.as_bytes(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let local: Value = serde_json::from_str(&out.stdout).unwrap();
    for (name, status) in [
        ("main", "succeeded"),
        ("tagged", "succeeded"),
        ("dev", "skipped"),
    ] {
        assert_eq!(job(&local, name)["status"], status, "{local}");
    }

    // JSON on stdin; without the flags the event is `api`, so `main` is skipped.
    let json = serde_json::json!({"name": "j", "jobs": {"main": {
        "when": {"event": "push"}, "run": ["true"]}, "any": {"run": ["true"]}}});
    let out = gantry_stdin(
        &server,
        &["submit", "-", "--wait", "--json"],
        json.to_string().as_bytes(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let run: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(job(&run, "main")["status"], "skipped", "{run}");
    assert_eq!(job(&run, "any")["status"], "succeeded", "{run}");

    // An invalid spec from stdin is named as such, exit 2.
    let out = gantry_stdin(&server, &["submit", "-"], b"jobs:\n  a: {run: []}\n").await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.starts_with("<stdin>: "), "{}", out.all());
    assert!(out.stderr.contains("`run` is empty"), "{}", out.all());
    // A file that is not there: exit 2.
    let out = gantry(&server, &["submit", "/nonexistent/spec.yml"]).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("cannot read /nonexistent/spec.yml"),
        "{}",
        out.all()
    );
}

#[tokio::test]
async fn the_server_may_be_given_without_a_scheme_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data")).await;
    let port = server.url.rsplit(':').next().unwrap().to_string();
    for address in [format!("localhost:{port}"), format!("127.0.0.1:{port}/")] {
        let out = gantry_in(None, &["status", "--server", &address], b"").await;
        assert_eq!(out.code, 0, "{address}: {}", out.all());
        assert!(out.stdout.starts_with("RUN"), "{}", out.all());
    }

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = free.local_addr().unwrap().port();
    drop(free);
    for args in [
        &["status"][..],
        &["events", "list"][..],
        &["rules", "list"][..],
        &["services", "list"][..],
    ] {
        let mut all = args.to_vec();
        let address = format!("127.0.0.1:{gone}");
        all.extend(["--server", &address]);
        let out = gantry_in(None, &all, b"").await;
        assert_eq!(out.code, 1, "{args:?}: {}", out.all());
        assert!(
            out.stderr.contains(&format!(
                "cannot reach the server at http://127.0.0.1:{gone}: is `gantry serve` running there?"
            )),
            "{args:?}: {}",
            out.all()
        );
    }
}

#[tokio::test]
async fn every_client_command_names_its_environment_in_its_help() {
    let commands: &[&[&str]] = &[
        &["submit"],
        &["status"],
        &["logs"],
        &["cancel"],
        &["rerun"],
        &["events", "put"],
        &["events", "list"],
        &["events", "show"],
        &["rules", "list"],
        &["rules", "show"],
        &["rules", "create"],
        &["rules", "delete"],
        &["services", "list"],
        &["services", "start"],
        &["services", "stop"],
        &["secrets", "set"],
        &["secrets", "list"],
        &["secrets", "rm"],
        &["runners"],
        &["runners", "show"],
        &["deploy"],
        &["deploy", "status"],
        &["deploy", "list"],
        &["deploy", "test"],
    ];
    for cmd in commands {
        for help in ["-h", "--help"] {
            let mut args = cmd.to_vec();
            args.push(help);
            let out = gantry_in(None, &args, b"").await;
            assert_eq!(out.code, 0, "{args:?}: {}", out.all());
            for var in ["GANTRY_SERVER", "GANTRY_API_TOKEN"] {
                assert!(
                    out.stdout.contains(var),
                    "{args:?} lacks {var}: {}",
                    out.stdout
                );
            }
        }
    }
}

//! `gantry run` on your code (the real binary): with no file it runs `.gantry.yml`; each job
//! starts in a copy of the working tree (committed, changed and new files; `.gitignore`
//! respected; `--workdir` for another folder); `--env` reaches every job; Ctrl-C exits 130.

mod common;

use common::{gantry_bin, git};
use std::path::Path;
use std::process::{Command, Output};

fn gantry_run(dir: &Path, args: &[&str]) -> Output {
    Command::new(gantry_bin())
        .arg("run")
        .args(args)
        .current_dir(dir)
        .env_remove("GANTRY_RUN_DATA_DIR")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn jobs_start_in_a_copy_of_the_working_tree_as_git_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "--quiet"]);
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
    std::fs::write(
        root.join("Makefile"),
        "test:\n\tgrep -q changed src/lib.rs\n\ttest -f new.txt\n\ttest ! -e build.log\n\techo tested > out.txt\n",
    )
    .unwrap();
    std::fs::write(root.join("src/lib.rs"), "committed").unwrap();
    std::fs::write(
        root.join(".gantry.yml"),
        "jobs:\n  test:\n    run: [\"make test\"]\n  check:\n    needs: [test]\n    run: [\"test ! -e out.txt\", \"test \\\"$GREETING\\\" = hi\"]\n",
    )
    .unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "--quiet", "-m", "x"]);
    // Uncommitted and new files go with the tree; what .gitignore ignores does not.
    std::fs::write(root.join("src/lib.rs"), "changed").unwrap();
    std::fs::write(root.join("new.txt"), "new").unwrap();
    std::fs::write(root.join("build.log"), "ignored").unwrap();

    let out = gantry_run(root, &["--env", "GREETING=hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The jobs worked on copies: nothing came back into the tree.
    assert!(!root.join("out.txt").exists());

    // Without the variable the second job fails, and its last lines are shown.
    let out = gantry_run(root, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("check failed"), "{}", text(&out));
}

#[test]
fn workdir_names_another_folder_and_a_missing_file_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("deep/er")).unwrap();
    std::fs::write(app.join("deep/er/file"), "x").unwrap();
    std::fs::write(
        dir.path().join("ci.yml"),
        "jobs:\n  a: {run: [\"test -f deep/er/file\", \"test ! -e ci.yml\"]}\n",
    )
    .unwrap();
    let out = gantry_run(dir.path(), &["ci.yml", "--workdir", "app"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = gantry_run(&app, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no .gantry.yml or .gantry.yaml here"),
        "{}",
        text(&out)
    );
    let out = gantry_run(dir.path(), &["ci.yml", "--workdir", "nowhere"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--workdir"), "{}", text(&out));
    let out = gantry_run(dir.path(), &["ci.yml", "--env", "1X=y"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not a variable name"), "{}", text(&out));
    let out = gantry_run(dir.path(), &["missing.yml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot read missing.yml"),
        "{}",
        text(&out)
    );
}

#[test]
fn ctrl_c_cancels_the_run_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".gantry.yaml"),
        "jobs:\n  slow: {run: [\"touch $PWD/../../../../started\", \"sleep 60\"]}\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let child = Command::new(gantry_bin())
        .arg("run")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once the job runs (its workspace is somewhere under the data dir).
    let mut running = false;
    for _ in 0..200 {
        let out = Command::new("find")
            .args([".gantry", "-name", "started"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            running = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(running, "the job did not start");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(started.elapsed().as_secs() < 30, "the job was not stopped");
    assert!(text(&out).contains("cancelled"), "{}", text(&out));
}

#[test]
fn secrets_from_arguments_and_a_dotenv_file_reach_jobs_masked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yml"),
        "jobs:\n  a:\n    secrets: [TOKEN, API_KEY]\n    run: [\"echo token=$TOKEN key=$API_KEY\", \"test \\\"$TOKEN\\\" = tok-123456\", \"false\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("local.env"),
        "# for local runs\nAPI_KEY=\"key-abcdef\"\n",
    )
    .unwrap();
    let out = gantry_run(
        dir.path(),
        &[
            "s.yml",
            "--secret",
            "TOKEN=tok-123456",
            "--secret-file",
            "local.env",
        ],
    );
    let all = text(&out);
    // The job got both (the test passed; `false` failed it), and its shown lines mask them.
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("token=*** key=***"), "{all}");
    assert!(
        !all.contains("tok-123456") && !all.contains("key-abcdef"),
        "{all}"
    );

    // Without one: the job fails saying how to give it.
    let out = gantry_run(dir.path(), &["s.yml", "--secret", "TOKEN=tok-123456"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("secret API_KEY not set"), "{all}");
    assert!(all.contains("--secret-file"), "{all}");
    // A bad file: exit 2 naming the line.
    std::fs::write(dir.path().join("bad.env"), "OK=1\nbroken line\n").unwrap();
    let out = gantry_run(dir.path(), &["s.yml", "--secret-file", "bad.env"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("bad.env:2: not NAME=VALUE"),
        "{}",
        text(&out)
    );
}

#[test]
fn verbose_streams_every_jobs_output_prefixed_by_its_job() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v.yml"),
        "jobs:\n  build: {run: [\"echo one\", \"sleep 0.3\", \"echo two\"]}\n  test:\n    needs: [build]\n    run: [\"printf 'no newline at the end'\"]\n",
    )
    .unwrap();
    let out = gantry_run(dir.path(), &["v.yml", "-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let at = |l: &str| {
        lines
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("no `{l}` in:\n{stdout}"))
    };
    assert!(at("build | one") < at("build | two"), "{stdout}");
    assert!(
        at("build | two") < at("test | no newline at the end"),
        "{stdout}"
    );

    let out = gantry_run(dir.path(), &["v.yml", "-v", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn artifacts_of_a_job_are_laid_into_the_jobs_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yml"),
        r#"jobs:
  build:
    run: ["mkdir -p dist logs", "echo bin > dist/app", "echo l > logs/build.txt", "echo x > scratch"]
    artifacts: [dist/, "logs/*.txt"]
  test:
    needs: [build]
    run: ["test \"$(cat dist/app)\" = bin", "test -f logs/build.txt", "test ! -e scratch"]
  unrelated:
    run: ["test ! -e dist/app"]
  bad:
    run: ["true"]
    artifacts: ["../outside"]
"#,
    )
    .unwrap();
    // An artifact path out of the workspace is a spec problem: nothing runs.
    let out = gantry_run(dir.path(), &["a.yml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("jobs.bad.artifacts[0]")
            && text(&out).contains("outside the workspace"),
        "{}",
        text(&out)
    );
    let spec = std::fs::read_to_string(dir.path().join("a.yml")).unwrap();
    let good = spec.split("  bad:").next().unwrap();
    std::fs::write(dir.path().join("a.yml"), good).unwrap();
    let out = gantry_run(dir.path(), &["a.yml", "-v"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("build | gantry: kept 2 artifact file(s) (dist/, logs/*.txt)"),
        "{all}"
    );
    assert!(
        all.contains("test | gantry: laid in 2 artifact file(s) of build"),
        "{all}"
    );
}

#[test]
fn a_cache_is_saved_after_a_miss_and_restored_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deps.lock"), "v1").unwrap();
    std::fs::write(
        dir.path().join("c.yml"),
        r#"jobs:
  deps:
    cache: {key: deps, files: [deps.lock], paths: [vendor/]}
    run: ["if [ -f vendor/built ]; then echo HIT; else mkdir -p vendor && echo x > vendor/built && echo MISS; fi"]
"#,
    )
    .unwrap();
    let first = text(&gantry_run(dir.path(), &["c.yml", "-v"]));
    assert!(
        first.contains("deps | MISS") && first.contains("saved 1 file(s)"),
        "{first}"
    );
    let second = text(&gantry_run(dir.path(), &["c.yml", "-v"]));
    assert!(
        second.contains("deps | HIT") && second.contains("restored 1 file(s)"),
        "{second}"
    );
    // A changed lock file is a new key.
    std::fs::write(dir.path().join("deps.lock"), "v2").unwrap();
    let third = text(&gantry_run(dir.path(), &["c.yml", "-v"]));
    assert!(third.contains("deps | MISS"), "{third}");
    // A bad cache is a spec problem.
    std::fs::write(
        dir.path().join("bad.yml"),
        "jobs:\n  a:\n    cache: {key: \"a b\", paths: [\"*.o\"]}\n    run: [\"true\"]\n",
    )
    .unwrap();
    let out = gantry_run(dir.path(), &["bad.yml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cache key `a b`") && text(&out).contains("is a glob"),
        "{}",
        text(&out)
    );
}

#[test]
fn tag_and_event_decide_which_jobs_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yml"),
        "jobs:\n  release:\n    when: {tag: 'v*'}\n    run: [\"test \\\"$GANTRY_TAG\\\" = v1.2\"]\n  nightly:\n    when: {event: schedule}\n    run: [\"false\"]\n",
    )
    .unwrap();
    let out = gantry_run(dir.path(), &["t.yml", "--tag", "v1.2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |name: &str| {
        run["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("release"), "succeeded", "{run:#}");
    assert_eq!(status("nightly"), "skipped", "{run:#}");
    let out = gantry_run(dir.path(), &["t.yml", "--event", "schedule", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn logs_of_a_local_run_are_read_from_its_data_dir_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("l.yml"),
        "jobs:\n  one: {run: [\"echo first-job-output\"]}\n  two: {needs: [one], run: [\"echo second-job-output\"]}\n",
    )
    .unwrap();
    let out = gantry_run(dir.path(), &["l.yml", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = run["id"].as_str().unwrap();
    let logs = |args: &[&str]| {
        Command::new(gantry_bin())
            .arg("logs")
            .args(args)
            .args([
                "--data-dir",
                ".gantry/local",
                "--server",
                "http://127.0.0.1:9",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = logs(&[id, "two"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("second-job-output") && !stdout.contains("first-job-output"),
        "{stdout}"
    );
    // Every job, by a prefix of the id.
    let out = logs(&[&id[..10]]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("==> one <==") && stdout.contains("first-job-output"),
        "{stdout}"
    );
    assert!(
        stdout.find("==> one <==") < stdout.find("==> two <=="),
        "{stdout}"
    );
    // A local run's logs are found here without naming the data dir (no server is asked).
    let out = Command::new(gantry_bin())
        .args(["logs", id, "one", "--server", "http://127.0.0.1:9"])
        .current_dir(dir.path())
        .env_remove("GANTRY_RUN_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("first-job-output"));
    let out = logs(&["NOSUCHRUN"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not found"), "{}", text(&out));
    let out = logs(&[id, "nojob"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no log of a job `nojob`"),
        "{}",
        text(&out)
    );
}

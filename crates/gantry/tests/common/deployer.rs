//! The deployer's test rig: fixture repositories on the fake git server's disk, and a server
//! wired to them (and to the AWS emulator, through its environment).

#![allow(dead_code)] // each test file uses part of it

use crate::common::{Server, eventually, git};
use serde_json::{Value, json};
use std::path::Path;

/// A repository `acme/NAME` under `root/git` with `files` on main; its last commit. Its work
/// tree stays at `root/work-NAME` for [`push`].
pub fn repository(root: &Path, name: &str, files: &[(&str, &str)]) -> String {
    let bare = root.join(format!("git/acme/{name}.git"));
    std::fs::create_dir_all(&bare).unwrap();
    git(
        &bare,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
    let work = root.join(format!("work-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    push(root, name, files)
}

/// `files` written into `acme/NAME`'s work tree, committed and pushed to main; the commit.
pub fn push(root: &Path, name: &str, files: &[(&str, &str)]) -> String {
    let bare = root.join(format!("git/acme/{name}.git"));
    let work = root.join(format!("work-{name}"));
    for (path, text) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "--quiet", "-m", "app"]);
    git(
        &work,
        &["push", "--quiet", bare.to_str().unwrap(), "HEAD:main"],
    );
    git(&work, &["rev-parse", "HEAD"])
}

/// A server on `data` with `env` (the emulator's) and `allowed` clone URLs.
pub async fn deployer(data: &Path, env: Vec<(String, String)>, allowed: &str) -> Server {
    let mut env = env;
    env.push((
        "GANTRY_GIT_ALLOWED_URL_PREFIXES".into(),
        allowed.to_string(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with(data, &env).await
}

/// `POST /deploy` of `repo`'s main: the session's id.
pub async fn deploy(server: &Server, repo: &str) -> String {
    let (status, body) = server
        .post(
            "/deploy",
            "application/json",
            json!({"repository": repo, "branch": "main"}).to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "pending");
    body["sessionId"].as_str().unwrap().to_string()
}

/// The session at `path` once it has ended. The statuses it showed on the way are checked to
/// move only forward: pending, running, then succeeded or failed.
pub async fn finished(server: &Server, path: &str) -> Value {
    let rank = |s: &str| match s {
        "pending" => 0,
        "running" => 1,
        "succeeded" | "failed" => 2,
        other => panic!("{path}: status `{other}`"),
    };
    let mut last = 0;
    eventually(180, &format!("{path} finishes"), async || {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{body}");
        let now = rank(body["status"].as_str().unwrap_or_default());
        assert!(now >= last, "{path} went back to {}", body["status"]);
        last = now;
        (now == 2).then_some(body)
    })
    .await
}

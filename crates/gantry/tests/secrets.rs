//! Secrets end to end over HTTP and the CLI: set, list, delete, validation without echoing
//! values, a job that uses one, and its log masked in every encoding.

mod common;

use common::{Server, gantry_bin, job};
use std::io::Write;

const VALUE: &str = "tok-9f8e7d:/+x y";

#[tokio::test]
async fn secrets_are_set_listed_used_masked_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;

    // The CLI reads the value from stdin.
    let mut cli = std::process::Command::new(gantry_bin())
        .args(["secrets", "set", "DEPLOY_TOKEN", "--server", &server.url])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(cli.stdin.take().unwrap(), "{VALUE}").unwrap();
    let out = cli.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let key = std::fs::metadata(dir.path().join("secret.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);

    // Short values, bad names and bad scopes are refused with a reason, never the value.
    for (body, needle) in [
        (r#"{"name":"SHORT","value":"ab1"}"#, "at least 4"),
        (r#"{"name":"bad-name","value":"abcdef"}"#, "not valid"),
        (
            r#"{"name":"X_Y","scope":"team:a","value":"abcdef"}"#,
            "unknown scope",
        ),
        (r#"{"name":"X_Y","value":12345}"#, "`value` is required"),
    ] {
        let (status, err) = server
            .post("/api/v1/secrets", "application/json", body)
            .await;
        assert_eq!(status, 422, "{body}: {err}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
        assert!(!msg.contains("ab1") && !msg.contains("12345"), "{msg}");
    }
    let (status, _) = server
        .post(
            "/api/v1/secrets",
            "application/json",
            r#"{"name":"REPO_ONLY","scope":"repo:acme/web","value":"repo-only-value"}"#,
        )
        .await;
    assert_eq!(status, 201);

    let (status, list) = server.get("/api/v1/secrets").await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(
        text.contains("DEPLOY_TOKEN") && text.contains("repo:acme/web"),
        "{text}"
    );
    assert!(
        !text.contains("tok-9f8e7d") && !text.contains("repo-only-value"),
        "{text}"
    );

    // A job that names the secret gets it, and its log shows it masked in every form.
    let spec = r#"
name: uses-secret
jobs:
  deploy:
    secrets: [DEPLOY_TOKEN]
    run:
      - 'echo "plain: $DEPLOY_TOKEN"'
      - 'printf %s "$DEPLOY_TOKEN" | base64'
      - 'echo "url: tok-9f8e7d%3A%2F%2Bx%20y"'
      - 'echo "quote: tok-9f8e7d%3a/%2bx%20y"'
      - '{ printf "config: %042d" 0; printf %s "$DEPLOY_TOKEN"; head -c 60 /dev/zero | tr "\0" x; } | base64'
      - 'test "$DEPLOY_TOKEN" = "tok-9f8e7d:/+x y" && echo value-seen'
  other:
    run: ['echo "other: ${DEPLOY_TOKEN:-absent}"']
  missing:
    secrets: [NOT_SET_ANYWHERE]
    run: ['echo should-not-run']
"#;
    let id = server.submit_yaml(spec).await;
    let run = server.wait_finished(&id, 30).await;
    assert_eq!(job(&run, "deploy")["status"], "succeeded", "{run}");
    assert_eq!(job(&run, "missing")["status"], "failed", "{run}");
    let log = |name: &str| {
        let url = format!("{}/api/v1/runs/{id}/jobs/{name}/log", server.url);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let deploy = log("deploy").await;
    assert!(
        deploy.contains("value-seen") && deploy.contains("plain: ***"),
        "{deploy}"
    );
    // Python's `urllib.parse.quote` with lower-case hex (`/` left as it is); base64 of a
    // stream holding the value at offset 2, wrapped at 76 inside it (its two sides).
    for leaked in [
        "tok-9f8e7d",
        "dG9rLTlmOGU3ZDovK3ggeQ",
        "b2stOWY4",
        "ZTdkOi8reCB",
    ] {
        assert!(!deploy.contains(leaked), "{leaked} in {deploy}");
    }
    assert!(
        log("other").await.contains("other: absent"),
        "only named secrets"
    );
    let missing = log("missing").await;
    assert!(
        missing.contains("NOT_SET_ANYWHERE not set") && !missing.contains("should-not-run"),
        "{missing}"
    );

    // Delete (repository scopes carry their `/` encoded).
    let del = |path: &str| server.req(reqwest::Method::DELETE, path).send();
    assert_eq!(
        del("/api/v1/secrets/repo:acme%2Fweb/REPO_ONLY")
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        del("/api/v1/secrets/repo:acme%2Fweb/REPO_ONLY")
            .await
            .unwrap()
            .status(),
        404
    );
    let out = std::process::Command::new(gantry_bin())
        .args(["secrets", "rm", "DEPLOY_TOKEN", "--server", &server.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(gantry_bin())
        .args(["secrets", "list", "--server", &server.url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no secrets");
}

//! The Services, Secrets, Runners, Deployments and Settings pages against a real server:
//! each renders its data, escaped; each form needs the CSRF token and does what the API does;
//! a secret's value is never in any page; unknown names and ids get the HTML 404 page.

use super::{Browser, Page, csp_ok};
use crate::common::{Server, TOKEN, eventually};
use crate::deployer;
use crate::rig::Rig;
use gantry_github::fake::{FakeGitHub, FakeJob};
use serde_json::{Value, json};

/// Every page a logged-in visitor can reach from the navigation, and then some.
const PAGES: &[&str] = &[
    "/",
    "/events",
    "/rules",
    "/services",
    "/secrets",
    "/runners",
    "/deploys",
    "/deploys?kind=test",
    "/settings",
];

/// Logs `b` in with the API token.
async fn login(b: &mut Browser) {
    let form = b.get("/login").await;
    let ok = b
        .post_form("/login", &[("token", TOKEN), ("csrf", &form.csrf())])
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

fn not_found(p: &Page, what: &str) {
    assert_eq!(p.status, 404, "{what}: {}", p.body);
    assert!(p.html(), "{what}");
    assert!(p.body.contains("<h1>Not found</h1>"), "{what}");
    csp_ok(p);
}

#[tokio::test]
async fn secrets_are_set_and_deleted_through_forms_and_their_values_never_shown() {
    const VALUE: &str = "sekrit-Zq9-7f3e1a-never-shown";
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", TOKEN)]).await;
    let mut b = Browser::new(&s);
    login(&mut b).await;
    let page = b.get("/secrets").await;
    assert_eq!(page.status, 200);
    csp_ok(&page);
    assert!(page.body.contains("No secrets yet"), "{}", page.body);
    assert!(
        page.body.contains(
            "<input name=\"value\" type=\"password\" required autocomplete=\"new-password\">"
        ),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let set = |name: &'static str, scope: &'static str| {
        vec![("name", name), ("scope", scope), ("value", VALUE)]
    };

    // No token, a forged one: refused, nothing set.
    assert_eq!(
        b.post_form("/secrets", &set("DEPLOY_KEY", "global"))
            .await
            .status,
        403
    );
    let mut forged = set("DEPLOY_KEY", "global");
    forged.push(("csrf", "0123abcd"));
    let refused = b.post_form("/secrets", &forged).await;
    assert_eq!(refused.status, 403);
    csp_ok(&refused);
    assert_eq!(s.get("/api/v1/secrets").await.1["secrets"], json!([]));

    // A bad scope and a bad name: the server's reason, escaped, the value not sent back.
    let mut bad = set("DEPLOY_KEY", "repo:<script>alert(1)</script>");
    bad.push(("csrf", &csrf));
    let bad = b.post_form("/secrets", &bad).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    csp_ok(&bad);
    assert!(bad.body.contains("class=\"reason\">"), "{}", bad.body);
    assert!(!bad.body.contains("<script>alert"), "{}", bad.body);
    assert!(
        bad.body.contains("&#60;script&#62;alert(1)"),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("value=\"DEPLOY_KEY\""),
        "what was typed stays"
    );
    assert!(!bad.body.contains(VALUE));
    let mut bad_name = set("9-bad", "global");
    bad_name.push(("csrf", &csrf));
    let bad_name = b.post_form("/secrets", &bad_name).await;
    assert_eq!(bad_name.status, 422);
    assert!(bad_name.body.contains("not valid"), "{}", bad_name.body);
    assert!(!bad_name.body.contains(VALUE));
    assert_eq!(s.get("/api/v1/secrets").await.1["secrets"], json!([]));

    // Set, through the same code as the API: listed by name and scope only.
    for (name, scope) in [("DEPLOY_KEY", "global"), ("WEB_TOKEN", "repo:acme/web")] {
        let mut ok = set(name, scope);
        ok.push(("csrf", &csrf));
        let done = b.post_form("/secrets", &ok).await;
        assert_eq!((done.status.as_u16(), done.location()), (303, "/secrets"));
    }
    let (_, listed) = s.get("/api/v1/secrets").await;
    let names: Vec<&str> = listed["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    let page = b.get("/secrets").await;
    assert!(page.body.contains("data-secret=\"global/DEPLOY_KEY\""));
    assert!(
        page.body
            .contains("data-secret=\"repo:acme/web/WEB_TOKEN\"")
    );

    // The value is in no page, nor its length.
    for path in PAGES {
        let p = b.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(!p.body.contains(VALUE), "{path} shows the value");
        let length = VALUE.len();
        for shown in [format!("{length} characters"), format!("{length} bytes")] {
            assert!(!p.body.contains(&shown), "{path} shows the length");
        }
    }

    // Delete: the token needed; an unknown secret is a 404 page.
    let del = [("scope", "repo:acme/web"), ("name", "WEB_TOKEN")];
    assert_eq!(b.post_form("/secrets/delete", &del).await.status, 403);
    let mut del_ok = del.to_vec();
    del_ok.push(("csrf", &csrf));
    let gone = b.post_form("/secrets/delete", &del_ok).await;
    assert_eq!((gone.status.as_u16(), gone.location()), (303, "/secrets"));
    let page = b.get("/secrets").await;
    assert!(!page.body.contains("WEB_TOKEN") && page.body.contains("DEPLOY_KEY"));
    not_found(
        &b.post_form("/secrets/delete", &del_ok).await,
        "deleted twice",
    );
    not_found(&b.get("/secrets/DEPLOY_KEY").await, "/secrets/DEPLOY_KEY");
}

#[tokio::test]
async fn settings_show_what_is_configured_with_every_secret_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data<script>x</script>");
    let (gh_token, hook, webhook) = (
        "ghp_distinctive0token0value",
        "hook-secret-distinctive-1",
        "webhook-secret-distinctive-2",
    );
    let s = Server::start_with(
        &data,
        &[
            ("GANTRY_API_TOKEN", TOKEN),
            ("GANTRY_GITHUB_TOKEN", gh_token),
            (
                "GANTRY_GITHUB_API_URL",
                "https://bot:hunter2@ghe.example/api/v3?key=k1",
            ),
            ("GANTRY_GITHUB_WEBHOOK_SECRET", hook),
            ("GANTRY_WEBHOOK_SECRET", webhook),
            ("GANTRY_RETAIN_LOGS", "3d"),
        ],
    )
    .await;
    let mut b = Browser::new(&s);
    login(&mut b).await;
    let p = b.get("/settings").await;
    assert_eq!(p.status, 200);
    csp_ok(&p);
    for secret in [TOKEN, gh_token, hook, webhook, "hunter2", "key=k1"] {
        assert!(!p.body.contains(secret), "{secret} in {}", p.body);
    }
    assert!(!p.body.contains("<script>x"), "the data dir is escaped");
    assert!(p.body.contains("data&#60;script&#62;x&#60;/script&#62;"));
    assert!(p.body.contains("gantry.db"));
    assert!(
        p.body.contains("https://…@ghe.example/api/v3"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<th scope=\"row\">API token</th><td class=\"secret-set\">set</td>")
    );
    assert!(p.body.contains("a token"));
    assert!(
        p.body
            .contains("<th scope=\"row\">Keep job logs</th><td>3d</td>"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains(&s.url.replace("http://", "")),
        "the listen address"
    );
    not_found(&b.get("/settings/x").await, "/settings/x");

    // A bare server: nothing set, GitHub not configured and how to configure it.
    let bare_dir = tempfile::tempdir().unwrap();
    let bare = Server::start(bare_dir.path()).await;
    let p = Browser::new(&bare).get("/settings").await;
    assert_eq!(p.status, 200);
    assert!(
        p.body
            .contains("<th scope=\"row\">API token</th><td class=\"secret-unset\">not set</td>")
    );
    assert!(p.body.contains("GANTRY_GITHUB_TOKEN"));
}

#[tokio::test]
async fn runners_show_their_pools_and_runners_or_how_to_configure_them() {
    let dir = tempfile::tempdir().unwrap();
    let bare = Server::start(dir.path()).await;
    let mut b = Browser::new(&bare);
    let p = b.get("/runners").await;
    assert_eq!(p.status, 200);
    csp_ok(&p);
    assert!(
        p.body.contains("No runner pools are configured"),
        "{}",
        p.body
    );
    assert!(p.body.contains("[runners.NAME]"));
    assert_eq!(b.get("/runners?state=bogus").await.status, 400);
    not_found(&b.get("/runners/gantry-x").await, "/runners/gantry-x");

    let rig = Rig::start(
        r#"
[runners.linux]
labels = ["self-hosted", "linux", "<script>x</script>"]
scope = "repo:acme/web"
executor = "local"
command = ["sh", "-c", "exec {script} --jitconfig \"$ACTIONS_RUNNER_INPUT_JITCONFIG\""]
max_runners = 3
"#,
        "1h",
        false,
    )
    .await;
    let mut b = Browser::new(&rig.server);
    let p = b.get("/runners").await;
    assert_eq!(p.status, 200);
    csp_ok(&p);
    assert!(p.body.contains("<tr data-pool=\"linux\">"), "{}", p.body);
    assert!(p.body.contains("0 of 3") && p.body.contains("repo:acme/web"));
    assert!(!p.body.contains("<script>x") && p.body.contains("&#60;script&#62;x"));

    rig.fake.add_job(
        "acme/web",
        FakeJob {
            name: "build <b>".into(),
            ..FakeJob::queued(701, &["self-hosted", "linux"])
        },
    );
    assert_eq!(rig.job_completed(701, 30).await, "success");
    rig.done("gantry-linux-701-1", 30).await;
    let active = b.get("/runners").await;
    assert!(
        !active.body.contains("gantry-linux-701-1"),
        "done: not active"
    );
    let all = b.get("/runners?state=all").await;
    assert_eq!(all.status, 200);
    assert!(
        all.body.contains("<tr data-runner=\"gantry-linux-701-1\">"),
        "{}",
        all.body
    );
    assert!(all.body.contains("st-done") && all.body.contains("build &#60;b&#62; (#701"));
}

#[tokio::test]
async fn deploys_list_filter_page_and_show_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGitHub::start("unused").await;
    github.serve_git(&dir.path().join("git"));
    deployer::repository(dir.path(), "app", &[("README.md", "# docs only\n")]);
    let allowed = format!("{}/git/", github.url);
    let s = deployer::deployer(&dir.path().join("data"), Vec::new(), &allowed).await;
    let repo = github.clone_url("acme/app");
    let mut b = Browser::new(&s);
    let empty = b.get("/deploys").await;
    assert_eq!(empty.status, 200);
    csp_ok(&empty);
    assert!(empty.body.contains("No deployments"), "{}", empty.body);

    let first = deployer::deploy(&s, &repo).await;
    deployer::finished(&s, &format!("/status/{first}")).await;
    let second = deployer::deploy(&s, &repo).await;
    let done: Value = deployer::finished(&s, &format!("/status/{second}")).await;
    assert_eq!(done["status"], "failed", "{done}");

    let list = b.get("/deploys").await;
    assert_eq!(list.status, 200);
    csp_ok(&list);
    let at = |id: &str| list.body.find(&format!("data-session=\"{id}\"")).unwrap();
    assert!(at(&second) < at(&first), "newest first");
    assert!(list.body.contains(&repo) && list.body.contains("st-failed"));
    let failed = b.get("/deploys?status=failed").await;
    assert!(failed.body.contains(&first) && failed.body.contains(&second));
    let ok = b.get("/deploys?status=succeeded").await;
    assert!(!ok.body.contains(&first) && ok.body.contains("with this status"));
    assert_eq!(b.get("/deploys?status=bogus").await.status, 400);
    assert_eq!(b.get("/deploys?kind=bogus").await.status, 400);
    assert!(
        b.get("/deploys?kind=test")
            .await
            .body
            .contains("No test sessions")
    );

    // A page at a time.
    let one = b.get("/deploys?limit=1").await;
    assert!(one.body.contains(&second) && !one.body.contains(&first));
    let href = one
        .body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .expect("an older link")
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    assert_eq!(href, format!("/deploys?limit=1&after={second}"));
    let older = b.get(&href).await;
    assert!(older.body.contains(&first) && !older.body.contains(&second));
    assert!(older.body.contains("href=\"/deploys?limit=1\">Newest"));

    // One session: what the API says, as a page.
    let p = b.get(&format!("/deploys/{first}")).await;
    assert_eq!(p.status, 200);
    csp_ok(&p);
    let (_, api) = s.get(&format!("/status/{first}")).await;
    let error = api["error"].as_str().unwrap();
    assert!(error.contains("no infrastructure-as-code found"), "{api}");
    assert!(
        p.body.contains("no infrastructure-as-code found"),
        "{}",
        p.body
    );
    assert!(p.body.contains("<th scope=\"col\">Time (UTC)</th>"));
    let logs = api["logs"].as_array().unwrap();
    assert!(!logs.is_empty());
    assert_eq!(
        p.body.matches("<tr><th scope=\"row\"><time").count(),
        logs.len()
    );
    assert!(p.body.contains("Deployed resources") && p.body.contains("Outputs"));
    assert!(p.body.contains(&format!("href=\"/runs/{first}\"")));
    not_found(&b.get("/deploys/01NOSUCHSESSION").await, "/deploys/unknown");
}

/// A `gantry.toml` with one service whose image no Docker can have (its name is not a
/// reference): starting it fails at its first step, quickly and without a registry.
fn broken_service(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("gantry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[services.auth]
image = "gantry-test/<script>x</script>"
command = ["true"]
port = 8080
target_group = "tg"
start_timeout = "5s"

[target_groups.tg]
provider = "haproxy"
socket = "{}/none.sock"
backend = "be"
"#,
            dir.display()
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn services_show_their_state_and_steps_and_start_and_stop_through_forms() {
    let dir = tempfile::tempdir().unwrap();
    let bare = Server::start(&dir.path().join("bare")).await;
    let p = Browser::new(&bare).get("/services").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("No services are configured"), "{}", p.body);

    let config = broken_service(dir.path());
    let s = Server::start_with(
        &dir.path().join("data"),
        &[("GANTRY_CONFIG", config.to_str().unwrap())],
    )
    .await;
    let mut b = Browser::new(&s);
    let list = b.get("/services").await;
    assert_eq!(list.status, 200);
    csp_ok(&list);
    assert!(
        list.body.contains("<tr data-service=\"auth\">"),
        "{}",
        list.body
    );
    assert!(list.body.contains("st-stopped"));
    assert!(!list.body.contains("<script>x") && list.body.contains("&#60;script&#62;x"));
    assert!(list.body.contains("action=\"/services/auth/start\""));
    let csrf = list.csrf();

    assert_eq!(b.post_form("/services/auth/start", &[]).await.status, 403);
    let forged = b
        .post_form("/services/auth/start", &[("csrf", "0123abcd")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(b.post_form("/services/auth/stop", &[]).await.status, 403);
    assert!(
        s.get("/api/v1/services/auth/events").await.1["events"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was tried"
    );

    // Start fails at its first step: the service's page says which, with the API's status.
    let failed = b
        .post_form("/services/auth/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    csp_ok(&failed);
    assert!(
        failed.body.contains("failed at step `start`"),
        "{}",
        failed.body
    );
    assert!(!failed.body.contains("<script>x"));
    let trail = eventually(5, "the failure is audited", async || {
        let (_, t) = s.get("/api/v1/services/auth/events").await;
        (!t["events"].as_array().unwrap().is_empty()).then_some(t)
    })
    .await;
    assert_eq!(trail["events"][0]["to"], "failed");
    let shown = b.get("/services/auth").await;
    assert_eq!(shown.status, 200);
    csp_ok(&shown);
    assert!(
        shown
            .body
            .contains("<span class=\"status st-failed\">failed</span>"),
        "the step is in the trail: {}",
        shown.body
    );
    assert!(b.get("/services").await.body.contains("failed at step"));

    // Stop with no task: refused, as the API refuses it.
    let stop = b.post_form("/services/auth/stop", &[("csrf", &csrf)]).await;
    assert_eq!(stop.status, 409);
    assert!(stop.body.contains("has no running tasks"), "{}", stop.body);

    not_found(&b.get("/services/nope").await, "/services/nope");
    not_found(
        &b.post_form("/services/nope/start", &[("csrf", &csrf)])
            .await,
        "start nope",
    );
    not_found(&b.get("/services/auth/x").await, "/services/auth/x");
}

//! Rules that deploy: a `deploy` target starts a deployer session as `POST /deploy` does, from
//! a matched event (here a pipeline's `Run State Change` to `succeeded`), with its fields
//! filled from the event; the session is listed at `GET /deployments` and named in the
//! delivery's result. No AWS: the sessions fail at checkout (nothing serves the repository),
//! which is not what is tested. Rules with bad deploy targets are refused, every problem named.

mod common;

use common::{Server, eventually};
use serde_json::{Value, json};

const ALLOWED: &str = "http://127.0.0.1:9/git/";

/// The deliveries of gantry's own events (run and job state changes) for `rule`.
async fn deliveries_of(server: &Server, rule: &str) -> Vec<Value> {
    let (_, events) = server.get("/api/v1/events?source=gantry&limit=100").await;
    let mut out = Vec::new();
    for e in events["events"].as_array().cloned().unwrap_or_default() {
        if !e["rules_matched"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n == rule))
        {
            continue;
        }
        let (_, ev) = server
            .get(&format!("/api/v1/events/{}", e["id"].as_str().unwrap()))
            .await;
        for d in ev["deliveries"].as_array().cloned().unwrap_or_default() {
            if d["rule"] == rule {
                let mut d = d;
                d["event"] = ev["event"].clone();
                out.push(d);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_pipeline_that_passes_starts_a_deploy_session_from_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(dir.path(), &[("GANTRY_GIT_ALLOWED_URL_PREFIXES", ALLOWED)]).await;

    // After a `build` run succeeds, deploy the repository named after it.
    let rule = json!({
        "name": "deploy-after-build",
        "pattern": {"source": ["gantry"], "detail-type": ["Run State Change"],
                    "detail": {"status": ["succeeded"], "run_name": ["build"]}},
        "input_paths": {"app": "$.detail.run_name"},
        "target": {"deploy": {"repository": format!("{ALLOWED}acme/{{app}}.git"),
                              "branch": "main", "stack_name": "web-{app}", "region": "eu-west-1"}}
    });
    let (status, body) = server
        .post("/api/v1/rules", "application/json", rule.to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["target"]["deploy"]["branch"], "main");
    // Any run state change: it also sees the deploy sessions' own, which must not deploy
    // again.
    let (status, body) = server
        .post(
            "/api/v1/rules",
            "application/json",
            json!({"name": "redeploy", "pattern": {"source": ["gantry"],
                   "detail-type": ["Run State Change"], "detail": {"event": ["deploy"]}},
                   "target": {"deploy": {"repository": format!("{ALLOWED}acme/other"),
                                         "branch": "main"}}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // A failing run matches nothing; a passing `build` deploys.
    let failing = server
        .submit_yaml("name: build\njobs:\n  test:\n    run: ['exit 1']\n")
        .await;
    server.wait_finished(&failing, 20).await;
    let build = server
        .submit_yaml("name: build\njobs:\n  test:\n    run: ['true']\n")
        .await;
    let run = server.wait_finished(&build, 20).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let (delivery, session) = eventually(20, "the rule started a deploy session", async || {
        let d = deliveries_of(&server, "deploy-after-build")
            .await
            .into_iter()
            .find(|d| d["status"] == "delivered")?;
        let id = d["result"]
            .as_str()?
            .strip_prefix("started deploy session ")?
            .to_string();
        Some((d, id))
    })
    .await;
    assert_eq!(delivery["event"]["detail"]["run_id"], build.as_str());

    // The session as POST /deploy makes it: listed, with the event's values filled in.
    let (status, list) = server.get("/deployments").await;
    assert_eq!(status, 200, "{list}");
    let listed = list["deployments"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "one deploy, for the passing run: {list:#}");
    let s = &listed[0];
    assert_eq!(s["sessionId"], session.as_str());
    assert_eq!(s["repository"], format!("{ALLOWED}acme/build.git").as_str());
    assert_eq!(s["branch"], "main");
    assert_eq!(s["stackName"], "web-build");
    assert_eq!(s["region"], "eu-west-1");
    let (status, one) = server.get(&format!("/status/{session}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["repository"], s["repository"]);
    let (_, run) = server.get(&format!("/api/v1/runs/{session}")).await;
    assert_eq!(run["jobs"][0]["name"], "deploy", "{run}");

    // The session finishes (at checkout, here); its own state change starts no other deploy.
    let refused = eventually(60, "the session's state change was refused", async || {
        deliveries_of(&server, "redeploy")
            .await
            .into_iter()
            .find(|d| d["status"] == "failed")
    })
    .await;
    assert!(
        refused["result"]
            .as_str()
            .unwrap()
            .contains("does not start another deploy"),
        "{refused}"
    );
    let (_, list) = server.get("/deployments").await;
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1, "{list:#}");
}

#[tokio::test]
async fn rules_with_bad_deploy_targets_are_refused_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(dir.path(), &[("GANTRY_GIT_ALLOWED_URL_PREFIXES", ALLOWED)]).await;
    let pattern = json!({"source": ["gantry"], "detail-type": ["Run State Change"]});
    for (target, input_paths, problems) in [
        (
            json!({"repository": "https://github.com/acme/web", "branch": "a..b",
                   "region": "mars", "colour": "red"}),
            json!({}),
            vec![
                "deploy.repository: clone URL `https://github.com/acme/web` is not allowed",
                "deploy.branch `a..b` is not a branch name",
                "deploy.region `mars`",
                "unknown field `colour`",
            ],
        ),
        (
            json!({"repository": format!("{ALLOWED}acme/{{repo}}"), "branch": "{branch}",
                   "stack_name": "1-{branch}"}),
            json!({"branch": "$.detail.branch"}),
            vec![
                "deploy.repository: `{repo}` is not one of the rule's input_paths",
                "deploy.stack_name `1-x` is not a stack name",
                "at most 128) (its placeholders taken as `x`)",
            ],
        ),
        (
            json!({"repository": "http://{host}/git/acme/web", "branch": "main"}),
            json!({"host": "$.detail.host"}),
            vec!["not its host or port"],
        ),
        (
            json!({"branch": "main"}),
            json!({}),
            vec!["deploy.repository is missing"],
        ),
    ] {
        let rule = json!({"name": "bad-deploy", "pattern": pattern, "input_paths": input_paths,
                          "target": {"deploy": target}});
        let (status, err) = server
            .post("/api/v1/rules", "application/json", rule.to_string())
            .await;
        assert_eq!(status, 422, "{rule}: {err}");
        let text = err.to_string();
        for p in problems {
            assert!(text.contains(p), "{p}: {text}");
        }
        assert_eq!(server.get("/api/v1/rules/bad-deploy").await.0, 404);
    }
}

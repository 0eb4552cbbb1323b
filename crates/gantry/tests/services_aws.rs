//! Services on ECS behind an ELBv2 target group, end to end through `gantry serve`, against
//! the AWS emulator (moto behind a proxy, `scripts/aws/emulator.py`) with real SDK clients:
//! start → RunTask → RUNNING → the task's private IP → the listener rule → RegisterTargets →
//! healthy → listed; stop → deregistered once drained → StopTask. Each step's failure (an
//! error injected there, a task that stops before it runs, a target never healthy, a missing
//! cluster, task definition, subnet or target group) is named, and leaves nothing running or
//! registered; throttled calls are retried.
//!
//! What the emulator cannot show: moto runs no task and checks no target's health. Its tasks
//! are RUNNING at once unless a test scripts their lifecycle (`/_emulator/ecs-tasks`), and its
//! targets are healthy once registered unless a test scripts their health
//! (`/_emulator/target-health`), as ELBv2's checks would report it.

#[path = "common/cli.rs"]
mod cli;
mod common;
#[path = "common/moto.rs"]
mod moto;

use common::Server;
use moto::Emulator;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A `gantry.toml` with service `auth` on ECS (fixture `f`) behind group `auth` routed at
/// `/auth/*`, and services that cannot start: on a missing cluster, task definition or subnet,
/// and in a group with a missing target group ARN.
fn config(dir: &Path, f: &Value, start_timeout: &str) -> PathBuf {
    let subnets = f["subnets"].to_string();
    let (cluster, sg) = (
        f["cluster"].as_str().unwrap(),
        f["security_group"].to_string(),
    );
    let tg = f["target_group"].as_str().unwrap();
    let missing_tg = format!("{}/0000000000000000", tg.rsplit_once('/').unwrap().0)
        .replace("auth-tg", "gone-tg");
    let service = |name: &str, cluster: &str, taskdef: &str, subnets: &str, group: &str| {
        format!(
            r#"
[services.{name}]
runtime = "ecs"
cluster = "{cluster}"
task_definition = "{taskdef}"
container = "app"
subnets = {subnets}
security_groups = [{sg}]
command = ["httpd", "-f", "-p", "8080"]
env = {{ ROLE = "auth" }}
port = 8080
target_group = "{group}"
start_timeout = "{start_timeout}"
deregistration_delay = "0s"
"#
        )
    };
    let mut text = String::new();
    text += &service("auth", cluster, "auth", &subnets, "auth");
    text += &service("nocluster", "no-such-cluster", "auth", &subnets, "auth");
    text += &service("notaskdef", cluster, "no-such-family", &subnets, "auth");
    text += &service(
        "nosubnet",
        cluster,
        "auth",
        r#"["subnet-0000000000000000"]"#,
        "auth",
    );
    text += &service("nogroup", cluster, "auth", &subnets, "gone");
    text += &format!(
        r#"
[target_groups.auth]
provider = "elbv2"
arn = "{tg}"
listener_arn = "{}"
path_patterns = ["/auth/*"]
priority = 10

[target_groups.gone]
provider = "elbv2"
arn = "{missing_tg}"
"#,
        f["listener"].as_str().unwrap()
    );
    let path = dir.join("gantry.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn serve(dir: &Path, e: &Emulator, config: &Path) -> Server {
    let mut env: Vec<(String, String)> = e.env();
    env.push(("GANTRY_CONFIG".into(), config.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with(&dir.join("data"), &env).await
}

/// POSTs `/api/v1/services/NAME/ACTION`: the status and the answer.
async fn call(server: &Server, name: &str, action: &str) -> (u16, Value) {
    let resp = server
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/services/{name}/{action}"),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The steps of `service`'s audit trail, each `step: note`.
async fn trail(server: &Server, service: &str) -> Vec<String> {
    let (_, trail) = server
        .get(&format!("/api/v1/services/{service}/events"))
        .await;
    trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["to"].as_str().unwrap(),
                e["note"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Tasks the cluster still runs (desired RUNNING) and targets the group still has.
fn leftovers(e: &Emulator, f: &Value) -> (Value, Value) {
    let got = e.boto(&format!(
        "tasks = ecs.list_tasks(cluster='{}', desiredStatus='RUNNING')['taskArns']\n\
         targets = [d['Target']['Id'] for d in elb.describe_target_health(TargetGroupArn='{}')['TargetHealthDescriptions'] if d['TargetHealth'].get('Reason') != 'Target.NotRegistered']\n\
         out = [tasks, targets]",
        f["cluster"].as_str().unwrap(),
        f["target_group"].as_str().unwrap()
    ));
    (got[0].clone(), got[1].clone())
}

fn error_of(answer: &Value) -> String {
    answer["error"]["message"]
        .as_str()
        .or(answer["error"].as_str())
        .unwrap_or_else(|| panic!("no error in {answer}"))
        .to_string()
}

#[tokio::test]
async fn an_ecs_service_starts_behind_its_alb_rule_and_stops_drained() {
    let e = Emulator::start();
    let f = e.service_fixture("auth");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &f, "20s");
    let server = serve(dir.path(), &e, &cfg).await;
    let tg = f["target_group"].as_str().unwrap();
    // As on AWS: the task provisions before it runs, and the target is `initial` while its
    // first checks run.
    e.script_next_task(&json!({"statuses": ["PROVISIONING", "PENDING", "RUNNING"]}))
        .await;
    e.target_health(
        tg,
        "*",
        &json!([{"state": "initial", "reason": "Elb.RegistrationInProgress",
                 "description": "Target registration is in progress"},
                {"state": "healthy"}]),
    )
    .await;

    let (status, started) = call(&server, "auth", "start").await;
    assert_eq!(status, 201, "{started}");
    let result = &started;
    let arn = result["task_arn"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"));
    let ip = result["private_ip"].as_str().unwrap().to_string();
    assert_eq!(result["runtime"], "ecs");
    assert!(arn.starts_with("arn:aws:ecs:"), "{arn}");

    // RunTask got the service's container overrides, tags and networking.
    let task = e.boto(&format!(
        "out = ecs.describe_tasks(cluster='{}', tasks=['{arn}'], include=['TAGS'])['tasks'][0]",
        f["cluster"].as_str().unwrap()
    ));
    let tags: Vec<String> = task["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}={}",
                t["key"].as_str().unwrap(),
                t["value"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        tags.contains(&"io.gantry.service=auth".to_string()),
        "{tags:?}"
    );
    assert!(
        tags.iter().any(|t| t.starts_with("io.gantry.owner=")),
        "{tags:?}"
    );
    let ov = &task["overrides"]["containerOverrides"][0];
    assert_eq!(ov["name"], "app");
    assert_eq!(ov["command"], json!(["httpd", "-f", "-p", "8080"]));
    assert_eq!(
        ov["environment"],
        json!([{"name": "ROLE", "value": "auth"}])
    );
    assert_eq!(task["startedBy"], "gantry");

    // The listener rule was created, and the task's IP is a target.
    let rules = e.boto(&format!(
        "out = [r for r in elb.describe_rules(ListenerArn='{}')['Rules'] if not r['IsDefault']]",
        f["listener"].as_str().unwrap()
    ));
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    assert_eq!(rules[0]["Priority"], "10");
    assert_eq!(rules[0]["Actions"][0]["TargetGroupArn"], tg);
    let (tasks, targets) = leftovers(&e, &f);
    assert_eq!(tasks, json!([arn]));
    assert_eq!(targets, json!([ip]));

    let steps = trail(&server, "auth").await;
    let names: Vec<&str> = steps.iter().map(|s| s.split(':').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "started",
            "running",
            "routed",
            "registered",
            "health",
            "healthy"
        ],
        "{steps:#?}"
    );
    assert!(
        steps[2].contains("created: /auth/* → auth at priority 10"),
        "{steps:#?}"
    );
    assert!(
        steps[4]
            .contains("initial (Elb.RegistrationInProgress: Target registration is in progress)"),
        "{steps:#?}"
    );

    // Listed as Docker's containers are, with the target's health.
    let (_, list) = server.get("/api/v1/services").await;
    let auth = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "auth")
        .unwrap()
        .clone();
    assert_eq!(auth["runtime"], "ecs");
    assert_eq!(auth["cluster"], f["cluster"]);
    assert_eq!(auth["tasks"][0]["task_arn"], arn);
    assert_eq!(auth["tasks"][0]["health"], "healthy");
    let out = cli::gantry(&server, &["services", "list"]).await;
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("auth "))
        .unwrap_or("");
    assert!(
        line.contains("ecs:auth") && line.ends_with(" 1"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains(&format!(
            "task {}  private_ip {ip}  port 8080  health healthy",
            result["task_id"].as_str().unwrap()
        )),
        "{}",
        out.all()
    );

    // A second server (another instance) on the same listener finds the rule and leaves it
    // alone, and has a task of its own.
    let dir2 = tempfile::tempdir().unwrap();
    let server2 = serve(dir2.path(), &e, &cfg).await;
    let (status, other) = call(&server2, "auth", "start").await;
    assert_eq!(status, 201, "{other}");
    let steps2 = trail(&server2, "auth").await;
    assert!(
        steps2
            .iter()
            .any(|s| s.starts_with("routed:") && s.contains("forwards here already; left alone")),
        "{steps2:#?}"
    );

    // The first server dies and comes back: it takes back its own task (found by its tags,
    // still registered), not the other instance's; a configured cluster that does not exist
    // (`nocluster`'s) hides nothing.
    let mut server = server;
    server.kill9().await;
    let server = serve(dir.path(), &e, &cfg).await;
    common::eventually(10, "the task adopted", async || {
        let steps = trail(&server, "auth").await;
        steps.last().unwrap().starts_with("adopted:").then_some(())
    })
    .await;
    let (_, list) = server.get("/api/v1/services").await;
    let mine = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "auth")
        .unwrap()["tasks"]
        .clone();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["task_arn"], arn);
    assert_eq!(mine[0]["health"], "healthy");
    let (status, _) = call(&server2, "auth", "stop").await;
    assert_eq!(status, 200);
    let (tasks, _) = leftovers(&e, &f);
    assert_eq!(
        tasks,
        json!([arn]),
        "the other instance stopped only its own"
    );

    // Stop: deregistered (drained), then StopTask.
    let (status, stopped) = call(&server, "auth", "stop").await;
    assert_eq!(status, 200, "{stopped}");
    let (tasks, targets) = leftovers(&e, &f);
    assert_eq!((tasks, targets), (json!([]), json!([])));
    let stopped_task = e.boto(&format!(
        "out = ecs.describe_tasks(cluster='{}', tasks=['{arn}'])['tasks'][0]",
        f["cluster"].as_str().unwrap()
    ));
    assert_eq!(stopped_task["lastStatus"], "STOPPED");
    assert_eq!(stopped_task["stoppedReason"], "stopped by Gantry");
    let steps = trail(&server, "auth").await;
    let tail: Vec<&str> = steps[steps.len() - 3..]
        .iter()
        .map(|s| s.split(':').next().unwrap())
        .collect();
    assert_eq!(tail, ["draining", "deregistered", "stopped"], "{steps:#?}");

    // A task that stops by itself (its essential container exits) is noticed: deregistered,
    // no longer listed, and why is in the trail.
    let (status, started) = call(&server, "auth", "start").await;
    assert_eq!(status, 201, "{started}");
    let arn = started["task_arn"].as_str().unwrap().to_string();
    e.boto(&format!(
        "ecs.stop_task(cluster='{}', task='{arn}', reason='Essential container in task exited')",
        f["cluster"].as_str().unwrap()
    ));
    common::eventually(30, "the stopped task noticed", async || {
        let steps = trail(&server, "auth").await;
        let last = steps.last().unwrap().clone();
        last.starts_with("exited:").then_some(last)
    })
    .await;
    assert_eq!(leftovers(&e, &f), (json!([]), json!([])));
    let (_, list) = server.get("/api/v1/services").await;
    assert!(
        list["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["tasks"] == json!([])),
        "{list}"
    );
}

#[tokio::test]
async fn each_failing_step_is_named_and_leaves_nothing_running_or_registered() {
    let e = Emulator::start();
    let f = e.service_fixture("auth");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &f, "3s");
    let server = serve(dir.path(), &e, &cfg).await;
    let tg = f["target_group"].as_str().unwrap();

    // Access denied at each AWS call of a start, once: the start fails at that step.
    for (service, action, step) in [
        ("ecs", "RunTask", "start"),
        ("ecs", "DescribeTasks", "running"),
        ("elasticloadbalancing", "DescribeRules", "route"),
        ("elasticloadbalancing", "CreateRule", "route"),
        ("elasticloadbalancing", "RegisterTargets", "register"),
        ("elasticloadbalancing", "DescribeTargetHealth", "healthy"),
    ] {
        e.fault(service, action, "AccessDeniedException", 400, 1)
            .await;
        let (status, answer) = call(&server, "auth", "start").await;
        assert!(status >= 400, "{action}: {status} {answer}");
        let msg = error_of(&answer);
        assert!(
            msg.contains(&format!("failed at step `{step}`")) && msg.contains("AccessDenied"),
            "{action}: {msg}"
        );
        assert_eq!(leftovers(&e, &f), (json!([]), json!([])), "after {action}");
        assert_eq!(e.faults_served().await[format!("{service}:{action}")], 1);
    }

    // A task that stops before it runs: its reason and exit code.
    e.script_next_task(&json!({"statuses": ["PROVISIONING", "PENDING", "STOPPED"],
        "stopped_reason": "CannotPullContainerError: pull access denied", "exit_code": 1}))
        .await;
    let (_, answer) = call(&server, "auth", "start").await;
    let msg = error_of(&answer);
    assert!(
        msg.contains("failed at step `running`")
            && msg.contains("stopped before it ran: CannotPullContainerError: pull access denied"),
        "{msg}"
    );
    assert_eq!(leftovers(&e, &f), (json!([]), json!([])));

    // A target that never becomes healthy: deregistered and stopped, with the last reason.
    e.target_health(
        tg,
        "*",
        &json!([{"state": "unhealthy", "reason": "Target.ResponseCodeMismatch",
                 "description": "Health checks failed with these codes: [502]"}]),
    )
    .await;
    let (_, answer) = call(&server, "auth", "start").await;
    let msg = error_of(&answer);
    assert!(
        msg.contains("failed at step `healthy`")
            && msg.contains("never became healthy within 3s")
            && msg.contains(
                "Target.ResponseCodeMismatch: Health checks failed with these codes: [502]"
            ),
        "{msg}"
    );
    assert_eq!(leftovers(&e, &f), (json!([]), json!([])));
    let steps = trail(&server, "auth").await;
    let tail: Vec<&str> = steps[steps.len() - 3..]
        .iter()
        .map(|s| s.split(':').next().unwrap())
        .collect();
    assert_eq!(tail, ["deregistered", "stopped", "failed"], "{steps:#?}");
    e.target_health(tg, "*", &json!([{"state": "healthy"}]))
        .await;

    // Missing cluster, task definition, subnet, target group: AWS's words.
    for (service, step, words) in [
        ("nocluster", "start", "ClusterNotFoundException"),
        ("notaskdef", "start", "no-such-family"),
        ("nosubnet", "start", "subnet-0000000000000000"),
        ("nogroup", "register", "TargetGroupNotFound"),
    ] {
        let (status, answer) = call(&server, service, "start").await;
        assert!(status >= 400, "{service}: {answer}");
        let msg = error_of(&answer);
        assert!(
            msg.contains(&format!("failed at step `{step}`")) && msg.contains(words),
            "{service}: {msg}"
        );
        assert_eq!(leftovers(&e, &f), (json!([]), json!([])), "after {service}");
    }

    // Throttled: retried with backoff, and the start succeeds.
    e.fault("ecs", "RunTask", "ThrottlingException", 400, 3)
        .await;
    e.fault(
        "elasticloadbalancing",
        "RegisterTargets",
        "Throttling",
        400,
        2,
    )
    .await;
    let (status, answer) = call(&server, "auth", "start").await;
    assert_eq!(status, 201, "{answer}");
    let served = e.faults_served().await;
    assert_eq!(served["ecs:RunTask"], 3, "{served}");
    assert_eq!(
        served["elasticloadbalancing:RegisterTargets"], 2,
        "{served}"
    );

    // A stop whose deregistration is refused keeps the task (running, registered, listed).
    e.fault(
        "elasticloadbalancing",
        "DeregisterTargets",
        "AccessDenied",
        403,
        -1,
    )
    .await;
    let (status, answer) = call(&server, "auth", "stop").await;
    assert!(status >= 400, "{answer}");
    assert!(
        error_of(&answer).contains("failed at step `deregister`"),
        "{answer}"
    );
    let (tasks, targets) = leftovers(&e, &f);
    assert_eq!(
        (
            tasks.as_array().unwrap().len(),
            targets.as_array().unwrap().len()
        ),
        (1, 1)
    );
    e.faults_served().await;

    // A stop whose StopTask is refused: deregistered already (no traffic reaches it), the
    // task kept and listed; trying again stops it.
    e.fault("ecs", "StopTask", "AccessDeniedException", 400, 1)
        .await;
    let (status, answer) = call(&server, "auth", "stop").await;
    assert!(status >= 400, "{answer}");
    assert!(
        error_of(&answer).contains("failed at step `stop`"),
        "{answer}"
    );
    let (tasks, targets) = leftovers(&e, &f);
    assert_eq!((tasks.as_array().unwrap().len(), targets), (1, json!([])));
    let (status, answer) = call(&server, "auth", "stop").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(leftovers(&e, &f), (json!([]), json!([])));
}

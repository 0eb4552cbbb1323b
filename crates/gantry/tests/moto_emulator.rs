//! The AWS emulator (`scripts/aws/emulator.py`: moto's server behind a small proxy) does what
//! the deployer will need, driven by boto3, a real AWS SDK (`scripts/aws/selftest.py`), or by
//! plain HTTP. Versions: moto[server] 5.2.6 and aws-sam-translator 1.115.0 (boto3/botocore
//! 1.44.x come with moto), pinned in `scripts/test-deps`.
//!
//! Where moto does less than AWS the emulator, not Gantry, closes the gap (each place is
//! commented there):
//! - the SAM transform: moto doesn't apply it; the proxy applies it with aws-sam-translator to
//!   CreateChangeSet / CreateStack / UpdateStack / ValidateTemplate / GetTemplateSummary, as
//!   CloudFormation does on AWS, and reads a TemplateURL from moto's S3 itself (moto would
//!   take the bucket of `http://127.0.0.1:PORT/bucket/key` to be "127");
//! - Lambda runs no code (no Docker here): moto's documented `use_docker: false` setting;
//!   an invoke then answers 200 with its own payload;
//! - a failing resource: moto answers the call with an error and leaves the stack half made;
//!   the emulator rolls it back with AWS's events;
//! - a stack made by change sets: moto keeps no Outputs for it; the emulator computes them;
//! - a CREATE change set for a stack that exists: moto makes a second stack of the same name;
//!   an UPDATE one for a stack whose creation rolled back: moto fails internally; the
//!   emulator answers AWS's ValidationErrors;
//! - resource types moto doesn't emulate (`AWS::ApiGatewayV2::Api`/`Stage`,
//!   `AWS::ApiGateway::Stage`): moto lists them with no id nor type; the emulator keeps a record
//!   with an id that `Ref` gives;
//! - `AWS::ApiGateway::RestApi` with an OpenAPI `Body` (SAM's `Api` events): moto needs a
//!   `Name` and ignores the body; the emulator names it from `info.title` and imports it.
//!
//! What moto still does differently from AWS, which the deployer must not depend on:
//! - everything is synchronous: a change set is CREATE_COMPLETE (or FAILED) as soon as
//!   CreateChangeSet answers, and the stack is CREATE_COMPLETE / UPDATE_COMPLETE /
//!   ROLLBACK_COMPLETE as soon as ExecuteChangeSet answers (no *_IN_PROGRESS to poll through,
//!   though polling works);
//! - no API Gateway endpoint serves requests: the `https://ID.execute-api...` URLs in outputs
//!   can't be fetched (an HTTP GET sanity test needs its own server in a test);
//! - DescribeStackResources gives no PhysicalResourceId for `AWS::Lambda::Permission` and
//!   `AWS::ApiGateway::Deployment`, and each resource's ResourceStatus is the stack's status;
//! - resource events: only the stack's own, plus the failed resource's one that the emulator
//!   adds on a rollback.

#[path = "common/moto.rs"]
mod moto;

use moto::Emulator;
use serde_json::{Value, json};

fn resource_types(stack: &Value) -> Vec<&str> {
    stack["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap_or("<none>"))
        .collect()
}

fn event_statuses(stack: &Value) -> Vec<(String, String)> {
    stack["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["logical_id"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (a) A SAM template (a function with its code in S3, an `Api` and an `HttpApi` event) goes
/// through CreateChangeSet + ExecuteChangeSet on the proxy and ends CREATE_COMPLETE with the
/// transformed resources; (b) the same template again gives an empty change set.
#[test]
fn sam_template_deploys_through_a_change_set() {
    let emulator = Emulator::start();
    eprintln!("emulator started in {:?}", emulator.startup);
    let out = emulator.selftest("sam");

    // The change set: CREATE_COMPLETE / AVAILABLE at once, with the transformed resources.
    let cs = &out["change_set"];
    assert_eq!(cs["status"], "CREATE_COMPLETE", "{out:#}");
    assert_eq!(cs["execution_status"], "AVAILABLE");
    let changes: Vec<(String, String)> = cs["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().into(), c[2].as_str().unwrap().into()))
        .collect();
    for t in [
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::Lambda::Permission",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Stage",
    ] {
        assert!(
            changes.contains(&("Add".into(), t.into())),
            "{t}: {changes:?}"
        );
    }

    // The stack: CREATE_COMPLETE, with every transformed resource and the outputs.
    let stack = &out["stack"];
    assert_eq!(stack["status"], "CREATE_COMPLETE", "{out:#}");
    let types = resource_types(stack);
    for t in [
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGatewayV2::Api",
    ] {
        assert!(types.contains(&t), "{t}: {types:?}");
    }
    assert!(!types.contains(&"<none>"), "{types:?}");
    assert!(
        !types.iter().any(|t| t.starts_with("AWS::Serverless::")),
        "{types:?}"
    );
    let function = stack["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["logical_id"] == "Hello")
        .unwrap();
    // A generated name: STACK-LOGICALID-SUFFIX, as on AWS.
    let name = function["physical_id"].as_str().unwrap();
    assert!(name.starts_with("sam-app-Hello-"), "{name}");
    assert_eq!(
        event_statuses(stack),
        [
            ("sam-app".into(), "REVIEW_IN_PROGRESS".into()),
            ("sam-app".into(), "CREATE_IN_PROGRESS".into()),
            ("sam-app".into(), "CREATE_COMPLETE".into()),
        ]
    );
    let outputs = &stack["outputs"];
    let api = outputs["HelloApi"].as_str().unwrap();
    assert!(
        api.starts_with("https://")
            && api.ends_with(".execute-api.us-east-1.amazonaws.com/Prod/hello"),
        "{api}"
    );
    assert_eq!(
        outputs["HelloFunction"],
        format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
    );
    // A `Ref` to a resource moto doesn't emulate gives the id the emulator made for it.
    assert_eq!(outputs["HttpApiId"].as_str().unwrap().len(), 10);
    // The function as the transform made it (its code from s3://sam-artifacts/hello.zip).
    assert_eq!(out["function"]["Runtime"], "python3.12");
    assert_eq!(out["function"]["Handler"], "app.handler");
    assert_eq!(out["function"]["State"], "Active");
    // The REST API has the OpenAPI body's paths.
    assert_eq!(out["rest_api_paths"], json!(["/", "/hello"]));

    // (b) An empty change set: FAILED / UNAVAILABLE with AWS's own reason (moto's text is
    // AWS's, word for word). The deployer takes this reason as "nothing to deploy", a success.
    let empty = &out["empty_change_set"];
    assert_eq!(empty["status"], "FAILED");
    assert_eq!(empty["execution_status"], "UNAVAILABLE");
    assert_eq!(
        empty["reason"],
        "The submitted information didn't contain changes. Submit different information to \
         create a change set."
    );
    assert_eq!(empty["changes"], json!([]));

    // A SAM template the transform rejects: CreateChangeSet answers 400 ValidationError with
    // the transform's words (AWS reports it as a FAILED change set with this same reason).
    let bad = &out["bad_sam"];
    assert_eq!(bad["code"], "ValidationError", "{out:#}");
    let message = bad["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application \
             Specification document. Number of errors found: 1."
        ),
        "{message}"
    );
    assert!(
        message.contains("'CodeUri' must be of type dict or string."),
        "{message}"
    );
}

/// (c) A plain CloudFormation template (YAML with short forms): an S3 bucket, a DynamoDB table
/// and outputs; HeadBucket and DescribeTable find them. An update by TemplateURL (a template
/// stored in the emulator's S3, addressed path-style on its URL) works too.
#[test]
fn plain_template_makes_a_bucket_a_table_and_outputs() {
    let emulator = Emulator::start();
    let out = emulator.selftest("plain");
    assert_eq!(out["change_set"]["status"], "CREATE_COMPLETE", "{out:#}");
    let stack = &out["stack"];
    assert_eq!(stack["status"], "CREATE_COMPLETE");
    let mut types = resource_types(stack);
    types.sort();
    assert_eq!(types, ["AWS::DynamoDB::Table", "AWS::S3::Bucket"]);
    assert_eq!(
        stack["outputs"],
        json!({
            "BucketName": "plain-app-site",
            "TableName": "plain-app-items",
            "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/plain-app-items",
        })
    );
    assert_eq!(out["head_bucket"], "ok");
    assert_eq!(out["table_status"], "ACTIVE");

    assert_eq!(out["url_change_set"]["status"], "CREATE_COMPLETE");
    assert_eq!(
        out["url_change_set"]["changes"],
        json!([["Modify", "Site", "AWS::S3::Bucket"]])
    );
    assert_eq!(out["url_stack_status"], "UPDATE_COMPLETE");
    assert_eq!(out["url_outputs"]["BucketName"], "plain-app-www");
}

/// (d) Lambda CreateFunction + Invoke without Docker: no code runs. An invoke answers 200 with
/// its own payload (`{}` for `{}`; "Simple Lambda happy path OK" for an empty payload), or
/// with what was queued: moto's queue (any function, never an error) or the emulator's (one
/// function, with `X-Amz-Function-Error: Unhandled` for a handler that raised). A missing
/// function answers 404 ResourceNotFoundException.
#[test]
fn lambda_invokes_without_docker() {
    let emulator = Emulator::start();
    let out = emulator.selftest("lambda");
    assert_eq!(out["state"], "Active", "{out:#}");
    let ok = |payload: &str| json!({"status": 200, "function_error": null, "payload": payload});
    assert_eq!(out["invoke_empty_object"], ok("{}"));
    assert_eq!(out["invoke_payload"], ok("{\"a\": 1}"));
    assert_eq!(out["invoke_no_payload"], ok("Simple Lambda happy path OK"));
    assert_eq!(out["moto_queue_status"], 201);
    assert_eq!(out["invoke_moto_queued"], ok("{\"queued\": true}"));
    assert_eq!(out["emulator_queue_status"], 201);
    let failing = &out["invoke_failing"];
    assert_eq!(failing["status"], 200);
    assert_eq!(failing["function_error"], "Unhandled");
    let error: Value = serde_json::from_str(failing["payload"].as_str().unwrap()).unwrap();
    assert_eq!(error["errorMessage"], "boom");
    assert_eq!(error["errorType"], "Exception");
    // Queued once: the next invoke is the usual echo.
    assert_eq!(out["invoke_after_failing"], ok("{}"));
    assert_eq!(out["raw_invoke"], json!({"status": 200, "body": "{}"}));
    assert_eq!(
        out["invoke_missing"],
        json!({
            "code": "ResourceNotFoundException",
            "message": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing",
            "status": 404,
        })
    );
}

/// (e) A resource moto fails on (a Lambda function whose code is in a bucket that doesn't
/// exist; on AWS it fails the same way) rolls the stack back, with AWS's events and moto's
/// error as the resource's reason; an update that fails ends UPDATE_ROLLBACK_COMPLETE with the
/// old resources.
#[test]
fn failing_resource_rolls_the_stack_back() {
    let emulator = Emulator::start();
    let out = emulator.selftest("rollback");
    let stack = &out["stack"];
    assert_eq!(stack["status"], "ROLLBACK_COMPLETE", "{out:#}");
    assert_eq!(
        event_statuses(stack),
        [
            ("broken-app".into(), "REVIEW_IN_PROGRESS".into()),
            ("broken-app".into(), "CREATE_IN_PROGRESS".into()),
            ("Fn".into(), "CREATE_FAILED".into()),
            ("broken-app".into(), "ROLLBACK_IN_PROGRESS".into()),
            ("broken-app".into(), "ROLLBACK_COMPLETE".into()),
        ]
    );
    let failed = &stack["events"][2];
    assert_eq!(failed["type"], "AWS::Lambda::Function");
    assert_eq!(
        failed["reason"],
        "Resource handler returned message: \"Error occurred while GetObject. S3 Error Code: \
         NoSuchBucket. S3 Error Message: The specified bucket does not exist\" \
         (HandlerErrorCode: InvalidParameterValueException)"
    );
    assert_eq!(
        stack["events"][3]["reason"],
        "The following resource(s) failed to create: [Fn]. Rollback requested by user."
    );
    assert_eq!(stack["resources"], json!([]));
    assert_eq!(out["change_set"]["execution_status"], "EXECUTE_FAILED");
    assert_eq!(out["functions"], json!([]));

    // A stack whose creation rolled back can be neither updated nor created again (AWS's
    // words); deleted, it is gone and can be created anew. A missing stack is a
    // ValidationError too: the deployer tells "does not exist" by this message.
    let missing = |name: &str| {
        json!({
            "code": "ValidationError",
            "message": format!("Stack with id {name} does not exist"),
            "status": 400,
        })
    };
    assert_eq!(out["describe_missing"], missing("broken-app"));
    let update_error = &out["update_rolled_back"];
    assert_eq!(update_error["code"], "ValidationError", "{out:#}");
    let message = update_error["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("Stack:arn:aws:cloudformation:us-east-1:123456789012:stack/broken-app/")
            && message.ends_with(" is in ROLLBACK_COMPLETE state and can not be updated."),
        "{message}"
    );
    assert_eq!(
        out["create_existing"],
        json!({
            "code": "ValidationError",
            "message": "Stack [broken-app] already exists and cannot be created again with the \
                        changeSet [deploy-2].",
            "status": 400,
        })
    );
    assert_eq!(out["describe_deleted"], missing("broken-app"));
    assert_eq!(out["recreated_status"], "CREATE_COMPLETE");

    let update = &out["update"];
    assert_eq!(update["status"], "UPDATE_ROLLBACK_COMPLETE");
    let statuses: Vec<String> = event_statuses(update).into_iter().map(|e| e.1).collect();
    assert_eq!(
        statuses[2..],
        [
            "UPDATE_IN_PROGRESS",
            "UPDATE_FAILED",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE",
        ]
    );
    assert_eq!(resource_types(update), ["AWS::SQS::Queue"]);
}

/// A role and a function `probe` through IAM's and Lambda's own APIs, over plain HTTP.
async fn create_probe(emulator: &Emulator) {
    use base64::Engine;
    let http = reqwest::Client::new();
    // moto's Lambda wants a role that IAM has (AWS's query protocol, form-encoded).
    let role = http
        .post(format!("{}/", emulator.url))
        .header("Authorization", moto::fake_authorization("iam"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("Action", "CreateRole"),
                ("Version", "2010-05-08"),
                ("RoleName", "probe"),
                (
                    "AssumeRolePolicyDocument",
                    "{\"Version\": \"2012-10-17\", \"Statement\": []}",
                ),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        role.status().as_u16(),
        200,
        "{}",
        role.text().await.unwrap()
    );
    let create = http
        .post(format!("{}/2015-03-31/functions", emulator.url))
        .header("Authorization", moto::fake_authorization("lambda"))
        .json(&json!({
            "FunctionName": "probe",
            "Runtime": "python3.12",
            "Role": "arn:aws:iam::123456789012:role/probe",
            "Handler": "app.handler",
            "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(b"not run")},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        create.status().as_u16(),
        201,
        "{}",
        create.text().await.unwrap()
    );
}

/// The helpers of `common/moto.rs` over plain HTTP: create a function through Lambda's REST
/// API, invoke it, queue results and a failure, reset.
#[tokio::test]
async fn helpers_queue_results_and_reset() {
    let emulator = Emulator::start();
    // Startup (a venv already made): about 1.5-3 s here.
    assert!(emulator.startup.as_secs() < 60);
    let env = emulator.env();
    assert!(env.contains(&("AWS_ENDPOINT_URL".into(), emulator.url.clone())));
    assert!(env.contains(&("AWS_REGION".into(), "us-east-1".into())));

    create_probe(&emulator).await;

    assert_eq!(
        emulator.invoke("probe", "{}").await,
        (200, None, "{}".into())
    );
    emulator.queue_lambda_result("{\"from\": \"moto\"}").await;
    assert_eq!(
        emulator.invoke("probe", "{}").await,
        (200, None, "{\"from\": \"moto\"}".into())
    );
    emulator.fail_function("probe", "it broke", true).await;
    for _ in 0..2 {
        let (status, error, body) = emulator.invoke("probe", "{}").await;
        assert_eq!((status, error.as_deref()), (200, Some("Unhandled")));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["errorMessage"], "it broke");
    }
    emulator.clear_function_results().await;
    assert_eq!(
        emulator.invoke("probe", "{}").await,
        (200, None, "{}".into())
    );
    // By ARN too.
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:probe";
    emulator
        .queue_function_result(arn, &json!({"ok": true}), None, false)
        .await;
    assert_eq!(
        emulator.invoke(arn, "{}").await,
        (200, None, "{\"ok\": true}".into())
    );

    emulator.fail_function("probe", "again", true).await;
    emulator.reset().await;
    let (status, _, body) = emulator.invoke("probe", "{}").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("ResourceNotFoundException"), "{body}");
    // Still without Docker after the reset, and the queue is empty.
    create_probe(&emulator).await;
    assert_eq!(
        emulator.invoke("probe", "{}").await,
        (200, None, "{}".into())
    );
}

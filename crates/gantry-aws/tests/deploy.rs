//! The deployer's AWS side against the AWS emulator (moto's server behind a proxy that applies
//! the SAM transform, `scripts/aws/emulator.py`), with real SDK clients: a SAM app packaged and
//! deployed (and deployed again, changing nothing), a CloudFormation stack whose bucket, table
//! and URL pass their sanity tests, a plain Node function created then updated whose raising
//! handler fails its test, a stack that rolls back, and repositories that cannot be deployed.

#[path = "../../gantry/tests/common/moto.rs"]
mod moto;

use gantry_aws::deploy::{DeployError, Deployment, Tools, deploy};
use gantry_aws::{Aws, sanity};
use gantry_core::deploy::sanity::{StackOutput, StackResource, plan};
use moto::Emulator;
use std::path::Path;
use std::sync::Mutex;

async fn aws(e: &Emulator) -> Aws {
    Aws::at_endpoint(&e.url, moto::REGION, "testing", "testing").await
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Deploys `dir`, with the log kept.
async fn deploy_logged(
    aws: &Aws,
    dir: &Path,
    stack: &str,
    change_set: &str,
) -> (Result<Deployment, DeployError>, Vec<String>) {
    let lines = Mutex::new(Vec::new());
    let log = |l: &str| lines.lock().unwrap().push(l.to_string());
    let tools = Tools::from_env();
    let got = deploy(aws, dir, stack, change_set, &tools, &log).await;
    (got, lines.into_inner().unwrap())
}

async fn sanity_of(aws: &Aws, d: &Deployment) -> Vec<sanity::TestResult> {
    let resources: Vec<StackResource> = d
        .resources
        .iter()
        .map(|r| StackResource {
            resource_type: r.resource_type.clone(),
            logical_id: r.logical_id.clone(),
            physical_id: r.physical_id.clone(),
        })
        .collect();
    let outputs: Vec<StackOutput> = d
        .outputs
        .iter()
        .map(|(k, v)| StackOutput {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    let tests = plan(
        &resources,
        &outputs,
        &aws.region,
        gantry_core::deploy::sanity::EXECUTE_API_PATTERN,
    );
    sanity::run(aws, &tests, &|_| {}).await
}

const SAM: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.handler
      Runtime: python3.12
Outputs:
  HelloArn:
    Value: !GetAtt HelloFunction.Arn
"#;

#[tokio::test]
async fn a_sam_app_is_packaged_and_deployed_and_a_second_deploy_changes_nothing() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("template.yaml", SAM),
            (
                "hello/app.py",
                "def handler(event, context):\n    return {}\n",
            ),
            ("hello/.env", "SECRET=never-uploaded"),
        ],
    );
    let (got, log) = deploy_logged(&aws, dir.path(), "sam-app", "gantry-1").await;
    let d = got.unwrap_or_else(|err| panic!("{err}\n{log:#?}\n{}", e.stderr_text()));
    assert_eq!(d.iac_type, "sam");
    assert!(!d.unchanged);
    assert!(
        log.iter()
            .any(|l| l.contains("Transform AWS::Serverless-2016-10-31")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("uploaded hello") && l.contains("HelloFunction")),
        "{log:#?}"
    );
    let function = d
        .resources
        .iter()
        .find(|r| r.resource_type == "AWS::Lambda::Function")
        .unwrap_or_else(|| panic!("{d:#?}"));
    assert_eq!(function.logical_id, "HelloFunction");
    assert!(
        d.outputs
            .iter()
            .any(|(k, v)| k == "HelloArn" && v.contains(":function:"))
    );

    let (again, log) = deploy_logged(&aws, dir.path(), "sam-app", "gantry-2").await;
    let again = again.unwrap_or_else(|err| panic!("{err}\n{log:#?}"));
    assert!(again.unchanged, "same code, same template: {log:#?}");
    assert!(
        log.iter().any(|l| l.starts_with("already uploaded hello")),
        "{log:#?}"
    );

    let results = sanity_of(&aws, &again).await;
    let invoke = results
        .iter()
        .find(|r| r.name == "invoke HelloFunction")
        .unwrap_or_else(|| panic!("{results:#?}"));
    assert_eq!(invoke.status, "pass", "{invoke:?}");
    let role = results
        .iter()
        .find(|r| r.resource_type == "AWS::IAM::Role")
        .unwrap();
    assert_eq!(role.status, "skip");
    assert!(role.error.as_deref().unwrap().contains("IAM"), "{role:?}");
}

#[tokio::test]
async fn a_stacks_bucket_table_and_url_pass_their_sanity_tests() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    // What the stack's URL output points at: answers 200 on /ok and 503 on /down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/ok", axum::routing::get(|| async { "fine" }))
        .route(
            "/down",
            axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no") }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let template = format!(
        r#"AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Site:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: cfn-site
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: cfn-items
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]
      KeySchema: [{{AttributeName: id, KeyType: HASH}}]
Outputs:
  HealthUrl:
    Value: http://{addr}/ok
  DownUrl:
    Value: http://{addr}/down
  BucketName:
    Value: !Ref Site
"#
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("cloudformation.yml", &template)]);
    let (got, log) = deploy_logged(&aws, dir.path(), "cfn-app", "gantry-1").await;
    let d = got.unwrap_or_else(|err| panic!("{err}\n{log:#?}"));
    assert_eq!(d.iac_type, "cloudformation");
    let results = sanity_of(&aws, &d).await;
    let by = |name: &str| {
        results
            .iter()
            .find(|r| r.name.contains(name))
            .unwrap_or_else(|| panic!("no {name}: {results:#?}"))
    };
    assert_eq!(by("Site").status, "pass", "{results:#?}");
    assert_eq!(by("Items").status, "pass", "{results:#?}");
    assert_eq!(by("HealthUrl").status, "pass", "{results:#?}");
    let down = by("DownUrl");
    assert_eq!(down.status, "fail");
    assert!(
        down.error.as_deref().unwrap().contains("answered 503"),
        "{down:?}"
    );
    assert!(results.iter().all(|r| r.duration_ms < 30_000));
}

#[tokio::test]
async fn a_node_function_is_created_then_updated_and_a_raising_handler_fails_its_test() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("package.json", r#"{"name": "hello", "version": "1.0.0"}"#),
            (
                "index.js",
                "exports.handler = async () => ({ ok: true });\n",
            ),
        ],
    );
    let (got, log) = deploy_logged(&aws, dir.path(), "node-fn", "unused").await;
    let d = got.unwrap_or_else(|err| panic!("{err}\n{log:#?}"));
    assert_eq!(d.iac_type, "lambda");
    assert!(
        log.iter().any(|l| l == "created function node-fn"),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "made the execution role node-fn-role"),
        "{log:#?}"
    );
    let (again, log) = deploy_logged(&aws, dir.path(), "node-fn", "unused").await;
    again.unwrap_or_else(|err| panic!("{err}\n{log:#?}"));
    assert!(
        log.iter()
            .any(|l| l == "updated the code of function node-fn"),
        "{log:#?}"
    );

    let results = sanity_of(&aws, &d).await;
    assert_eq!(results[0].name, "invoke node-fn");
    assert_eq!(results[0].status, "pass", "{results:#?}");
    // The emulator runs no code: the handler's raising is queued for the next invoke, as
    // Lambda reports it (`FunctionError: Unhandled` and the error payload).
    e.fail_function("node-fn", "boom: the handler raised", false)
        .await;
    let results = sanity_of(&aws, &d).await;
    assert_eq!(results[0].status, "fail", "{results:#?}");
    assert!(
        results[0]
            .error
            .as_deref()
            .unwrap()
            .contains("boom: the handler raised"),
        "{results:#?}"
    );
}

#[tokio::test]
async fn a_stack_that_rolls_back_names_its_failing_resource_and_can_be_deployed_again() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    let broken = r#"AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Role: arn:aws:iam::123456789012:role/none
      Code: {S3Bucket: no-such-bucket, S3Key: code.zip}
"#;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("stack.yaml", broken)]);
    let (got, log) = deploy_logged(&aws, dir.path(), "broken", "gantry-1").await;
    let err = got.unwrap_err().to_string();
    assert!(
        err.contains("ROLLBACK_COMPLETE")
            && err.contains("Fn (AWS::Lambda::Function) CREATE_FAILED")
            && err.contains("NoSuchBucket"),
        "{err}\n{log:#?}"
    );
    assert!(log.iter().any(|l| l.contains("CREATE_FAILED")), "{log:#?}");
    // Fixed: the rolled-back stack is deleted and made again.
    write(
        dir.path(),
        &[(
            "stack.yaml",
            "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  B:\n    Type: AWS::S3::Bucket\n",
        )],
    );
    let (got, log) = deploy_logged(&aws, dir.path(), "broken", "gantry-2").await;
    got.unwrap_or_else(|err| panic!("{err}\n{log:#?}"));
    assert!(
        log.iter()
            .any(|l| l.contains("ROLLBACK_COMPLETE (its creation failed): deleting")),
        "{log:#?}"
    );
}

#[tokio::test]
async fn what_cannot_be_deployed_here_says_why() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    let tools = Tools {
        // A host without cdk and terraform.
        path: "/nonexistent".into(),
    };
    for (files, want) in [
        (
            vec![("cdk.json", "{\"app\": \"npx ts-node bin/app.ts\"}")],
            "`cdk` is not installed",
        ),
        (
            vec![("main.tf", "resource \"aws_s3_bucket\" \"b\" {}\n")],
            "`terraform` is not installed",
        ),
        (
            vec![("README.md", "# nothing\n")],
            "no infrastructure-as-code found",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &files);
        let err = deploy(&aws, dir.path(), "x", "cs", &tools, &|_| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
}

#[tokio::test]
async fn a_python_function_is_deployed_with_its_handler_and_invoked() {
    let e = Emulator::start();
    let aws = aws(&e).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "lambda_function.py",
            "def lambda_handler(event, context):\n    return {'ok': True}\n",
        )],
    );
    let (got, log) = deploy_logged(&aws, dir.path(), "py-fn", "unused").await;
    let d = got.unwrap_or_else(|err| panic!("{err}\n{log:#?}"));
    assert_eq!(d.iac_type, "lambda");
    assert!(
        log.iter()
            .any(|l| l.contains("lambda_function.lambda_handler")),
        "{log:#?}"
    );
    let f = aws
        .lambda
        .get_function()
        .function_name("py-fn")
        .send()
        .await
        .unwrap();
    let config = f.configuration().unwrap();
    assert_eq!(config.handler(), Some("lambda_function.lambda_handler"));
    assert!(config.runtime().unwrap().as_str().starts_with("python3"));
    let results = sanity_of(&aws, &d).await;
    assert_eq!(results[0].status, "pass", "{results:#?}");
}

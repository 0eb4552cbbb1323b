//! Tests of sanity test planning and judging, on the stacks a SAM hello-world and a
//! CloudFormation template with a bucket and a table create.

use super::*;
use proptest::prelude::*;

fn res(t: &str, logical: &str, physical: &str) -> StackResource {
    StackResource {
        resource_type: t.into(),
        logical_id: logical.into(),
        physical_id: physical.into(),
    }
}

fn out(key: &str, value: &str) -> StackOutput {
    StackOutput {
        key: key.into(),
        value: value.into(),
    }
}

/// What `sam deploy` of the hello-world template leaves in the stack.
fn hello_world() -> (Vec<StackResource>, Vec<StackOutput>) {
    (
        vec![
            res(
                "AWS::Lambda::Function",
                "HelloWorldFunction",
                "hello-HelloWorldFunction-AbC123",
            ),
            res(
                "AWS::IAM::Role",
                "HelloWorldFunctionRole",
                "hello-HelloWorldFunctionRole-XyZ",
            ),
            res(
                "AWS::Lambda::Permission",
                "HelloWorldFunctionHelloWorldPermissionProd",
                "hello-perm",
            ),
            res(
                "AWS::ApiGateway::RestApi",
                "ServerlessRestApi",
                "a1b2c3d4e5",
            ),
            res(
                "AWS::ApiGateway::Deployment",
                "ServerlessRestApiDeployment47fc2d5f9d",
                "dep123",
            ),
            res(
                "AWS::ApiGateway::Stage",
                "ServerlessRestApiProdStage",
                "Prod",
            ),
        ],
        vec![
            out(
                "HelloWorldApi",
                "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/Prod/hello/",
            ),
            out(
                "HelloWorldFunction",
                "arn:aws:lambda:eu-west-1:123456789012:function:hello-HelloWorldFunction-AbC123",
            ),
            out(
                "HelloWorldFunctionIamRole",
                "arn:aws:iam::123456789012:role/hello-HelloWorldFunctionRole-XyZ",
            ),
        ],
    )
}

fn summary(tests: &[SanityTest]) -> Vec<(String, TestKind)> {
    tests
        .iter()
        .map(|t| (t.name.clone(), t.kind.clone()))
        .collect()
}

fn skip(reason: &str) -> TestKind {
    TestKind::Skip {
        reason: reason.into(),
    }
}

#[test]
fn sam_hello_world_stack() {
    let (resources, outputs) = hello_world();
    let tests = plan(&resources, &outputs, "eu-west-1", EXECUTE_API_PATTERN);
    let s = |x: &str| x.to_string();
    assert_eq!(
        summary(&tests),
        [
            (
                s("invoke HelloWorldFunction"),
                TestKind::Invoke {
                    function: s("hello-HelloWorldFunction-AbC123")
                }
            ),
            (
                s("skip HelloWorldFunctionHelloWorldPermissionProd"),
                skip("no sanity test for AWS::Lambda::Permission")
            ),
            (
                s("skip HelloWorldFunctionRole"),
                skip("IAM roles are not exercised: no safe call proves a role works")
            ),
            (
                s("skip ServerlessRestApi"),
                skip("an API is exercised through its stages and URL outputs")
            ),
            (
                s("skip ServerlessRestApiDeployment47fc2d5f9d"),
                skip("no sanity test for AWS::ApiGateway::Deployment")
            ),
            (
                s("GET ServerlessRestApiProdStage"),
                skip("exercised through output HelloWorldApi")
            ),
            (
                s("GET HelloWorldApi"),
                TestKind::HttpGet {
                    url: s("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/Prod/hello/")
                }
            ),
        ]
    );
    assert_eq!(tests[0].resource, "HelloWorldFunction");
    assert_eq!(tests[0].resource_type, "AWS::Lambda::Function");
    assert_eq!(tests[6].resource_type, "Output");
}

#[test]
fn a_stage_without_a_url_output_gets_its_execute_api_url() {
    let (resources, _) = hello_world();
    let tests = plan(&resources, &[], "eu-west-1", EXECUTE_API_PATTERN);
    let stage = tests
        .iter()
        .find(|t| t.resource == "ServerlessRestApiProdStage")
        .unwrap();
    assert_eq!(
        stage.kind,
        TestKind::HttpGet {
            url: "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/Prod".into()
        }
    );
    let local = "http://{api}.execute-api.localhost.localstack.cloud:4566/{stage}";
    let tests = plan(&resources, &[], "us-east-1", local);
    let stage = tests
        .iter()
        .find(|t| t.resource == "ServerlessRestApiProdStage")
        .unwrap();
    assert_eq!(
        stage.kind,
        TestKind::HttpGet {
            url: "http://a1b2c3d4e5.execute-api.localhost.localstack.cloud:4566/Prod".into()
        }
    );
}

#[test]
fn http_api_default_stage_is_the_root() {
    assert_eq!(
        execute_api_url(EXECUTE_API_PATTERN, "xyz", "us-east-1", "$default"),
        "https://xyz.execute-api.us-east-1.amazonaws.com/"
    );
    let resources = [
        res("AWS::ApiGatewayV2::Api", "ServerlessHttpApi", "xyz"),
        res(
            "AWS::ApiGatewayV2::Stage",
            "ServerlessHttpApiApiGatewayDefaultStage",
            "$default",
        ),
    ];
    let tests = plan(&resources, &[], "us-east-1", EXECUTE_API_PATTERN);
    assert_eq!(
        tests[1].kind,
        TestKind::HttpGet {
            url: "https://xyz.execute-api.us-east-1.amazonaws.com/".into()
        }
    );
}

#[test]
fn stages_find_their_api_or_say_why_not() {
    let resources = [
        res("AWS::ApiGateway::RestApi", "Public", "pub1"),
        res("AWS::ApiGateway::RestApi", "Admin", "adm1"),
        res("AWS::ApiGateway::Stage", "PublicProdStage", "prod"),
        res("AWS::ApiGateway::Stage", "Live", "live"),
        res("AWS::ApiGatewayV2::Stage", "Orphan", "v2"),
    ];
    let tests = plan(&resources, &[], "us-east-1", EXECUTE_API_PATTERN);
    let kind = |id: &str| {
        tests
            .iter()
            .find(|t| t.resource == id)
            .unwrap()
            .kind
            .clone()
    };
    assert_eq!(
        kind("PublicProdStage"),
        TestKind::HttpGet {
            url: "https://pub1.execute-api.us-east-1.amazonaws.com/prod".into()
        }
    );
    assert_eq!(
        kind("Live"),
        skip("cannot tell which AWS::ApiGateway::RestApi stage live belongs to")
    );
    assert_eq!(
        kind("Orphan"),
        skip("the stack has no AWS::ApiGatewayV2::Api for stage v2")
    );
}

#[test]
fn cloudformation_bucket_table_and_url_output() {
    let resources = [
        res("AWS::S3::Bucket", "SiteBucket", "site-bucket-1x2y"),
        res("AWS::DynamoDB::Table", "Orders", "stack-Orders-QWE"),
        res(
            "AWS::IAM::ManagedPolicy",
            "ReadOrders",
            "arn:aws:iam::1:policy/read",
        ),
        res("AWS::CloudFront::Distribution", "Cdn", "E2ABC"),
    ];
    let outputs = [
        out(
            "WebsiteURL",
            "http://site-bucket-1x2y.s3-website-us-east-1.amazonaws.com",
        ),
        out("BucketName", "site-bucket-1x2y"),
        out("CdnUrl", " https://d111111abcdef8.cloudfront.net "),
        out("Two", "https://a.example https://b.example"),
        out("NoHost", "https:///path"),
    ];
    let tests = plan(&resources, &outputs, "us-east-1", EXECUTE_API_PATTERN);
    let s = |x: &str| x.to_string();
    assert_eq!(
        summary(&tests),
        [
            (
                s("skip Cdn"),
                skip("no sanity test for AWS::CloudFront::Distribution")
            ),
            (
                s("table Orders"),
                TestKind::DescribeTable {
                    table: s("stack-Orders-QWE")
                }
            ),
            (
                s("skip ReadOrders"),
                skip("IAM policies are not exercised: no safe call proves a policy works")
            ),
            (
                s("bucket SiteBucket"),
                TestKind::HeadBucket {
                    bucket: s("site-bucket-1x2y")
                }
            ),
            (
                s("GET CdnUrl"),
                TestKind::HttpGet {
                    url: s("https://d111111abcdef8.cloudfront.net")
                }
            ),
            (
                s("GET WebsiteURL"),
                TestKind::HttpGet {
                    url: s("http://site-bucket-1x2y.s3-website-us-east-1.amazonaws.com")
                }
            ),
        ]
    );
}

#[test]
fn names_are_unique() {
    let resources = [
        res("AWS::ApiGateway::RestApi", "Api", "id1"),
        res("AWS::ApiGateway::Stage", "Url", "v1"),
    ];
    let outputs = [out("Url", "https://example.com/")];
    let tests = plan(&resources, &outputs, "us-east-1", EXECUTE_API_PATTERN);
    let names: Vec<_> = tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["skip Api", "GET Url", "GET Url (2)"]);
}

#[test]
fn tests_serialize_with_their_kind() {
    let t = SanityTest {
        name: "invoke F".into(),
        resource: "F".into(),
        resource_type: "AWS::Lambda::Function".into(),
        kind: TestKind::Invoke {
            function: "f".into(),
        },
    };
    assert_eq!(
        serde_json::to_value(&t).unwrap(),
        serde_json::json!({"name": "invoke F", "resource": "F", "type": "AWS::Lambda::Function",
            "kind": {"kind": "invoke", "function": "f"}})
    );
}

#[test]
fn invoke_verdicts() {
    assert_eq!(judge_invoke(None, b"{\"statusCode\": 200}"), Verdict::Pass);
    assert_eq!(judge_invoke(Some(""), b"null"), Verdict::Pass);
    let payload = br#"{"errorMessage": "name 'x' is not defined", "errorType": "NameError", "stackTrace": []}"#;
    assert_eq!(
        judge_invoke(Some("Unhandled"), payload),
        Verdict::Fail {
            message: "name 'x' is not defined".into()
        }
    );
    assert_eq!(
        judge_invoke(Some("Unhandled"), b"Task timed out after 3.00 seconds"),
        Verdict::Fail {
            message: "Task timed out after 3.00 seconds".into()
        }
    );
    assert_eq!(
        judge_invoke(Some("Handled"), b""),
        Verdict::Fail {
            message: "the function failed (Handled) with an empty payload".into()
        }
    );
    let long = format!("{{\"errorMessage\": \"{}\"}}", "é".repeat(2000));
    let Verdict::Fail { message } = judge_invoke(Some("Unhandled"), long.as_bytes()) else {
        panic!("expected a failure");
    };
    assert!(message.len() <= MESSAGE_MAX_BYTES && message.ends_with('…'));
}

#[test]
fn http_table_and_bucket_verdicts() {
    assert_eq!(judge_http("https://x/", 200), Verdict::Pass);
    assert_eq!(judge_http("https://x/", 403), Verdict::Pass);
    assert_eq!(judge_http("https://x/", 499), Verdict::Pass);
    assert_eq!(
        judge_http("https://x/", 502),
        Verdict::Fail {
            message: "GET https://x/ answered 502".into()
        }
    );
    assert_eq!(judge_table("t", "ACTIVE"), Verdict::Pass);
    assert_eq!(
        judge_table("t", "CREATING"),
        Verdict::Fail {
            message: "table t is CREATING, not ACTIVE".into()
        }
    );
    assert_eq!(judge_bucket("b", Ok(()), Ok(())), Verdict::Pass);
    assert_eq!(
        judge_bucket("b", Err("403 Forbidden"), Ok(())),
        Verdict::Fail {
            message: "HeadBucket b failed: 403 Forbidden".into()
        }
    );
    assert_eq!(
        judge_bucket("b", Ok(()), Err("AccessDenied")),
        Verdict::Fail {
            message: "ListObjectsV2 b failed: AccessDenied".into()
        }
    );
}

const TYPES: &[&str] = &[
    "AWS::Lambda::Function",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::IAM::Role",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Stage",
    "AWS::SQS::Queue",
];

fn resource() -> impl Strategy<Value = StackResource> {
    (prop::sample::select(TYPES), "[A-C]{1,3}", "[a-c]{1,3}").prop_map(|(t, l, p)| res(t, &l, &p))
}

proptest! {
    #[test]
    fn plans_are_deterministic_complete_and_uniquely_named(
        resources in prop::collection::vec(resource(), 0..8),
        outputs in prop::collection::vec(("[A-C]{1,3}", prop_oneof![Just("https://h/".to_string()), "[a-c]{0,3}"]), 0..4),
        rotate in 0usize..8,
    ) {
        let outputs: Vec<_> = outputs.iter().map(|(k, v)| out(k, v)).collect();
        let a = plan(&resources, &outputs, "us-east-1", EXECUTE_API_PATTERN);
        let mut r2 = resources.clone();
        r2.reverse();
        if !r2.is_empty() { let n = rotate % r2.len(); r2.rotate_left(n); }
        let mut o2 = outputs.clone();
        o2.reverse();
        prop_assert_eq!(&a, &plan(&r2, &o2, "us-east-1", EXECUTE_API_PATTERN));
        let urls = outputs.iter().filter(|o| o.value.starts_with("https://")).count();
        prop_assert_eq!(a.len(), resources.len() + urls);
        let names: BTreeSet<_> = a.iter().map(|t| &t.name).collect();
        prop_assert_eq!(names.len(), a.len());
    }

    #[test]
    fn truncation_keeps_a_char_boundary(text in ".{0,600}", max in 3usize..1100) {
        let cut = truncate(text.clone(), max);
        prop_assert!(cut.len() <= max);
        if text.len() <= max { prop_assert_eq!(cut, text); }
    }
}

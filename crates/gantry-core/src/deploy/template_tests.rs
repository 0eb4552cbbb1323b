//! Tests of reading templates: short forms, JSON, scalars and what is refused.

use super::*;
use serde_json::json;

const HELLO_SAM: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: hello-world
Globals:
  Function:
    Timeout: 3
Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.13
      Events:
        HelloWorld:
          Type: Api
          Properties:
            Path: /hello
            Method: get
Outputs:
  HelloWorldApi:
    Description: API Gateway endpoint URL for Prod stage
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello/"
  HelloWorldFunction:
    Value: !GetAtt HelloWorldFunction.Arn
  HelloWorldFunctionIamRole:
    Value: !GetAtt [HelloWorldFunctionRole, Arn]
"#;

#[test]
fn sam_hello_world_reads_with_long_forms() {
    let t = parse_template(HELLO_SAM).unwrap();
    assert!(is_sam(&t));
    assert!(is_cloudformation(&t));
    assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
    assert_eq!(
        t["Outputs"]["HelloWorldApi"]["Value"],
        json!({"Fn::Sub": "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello/"})
    );
    assert_eq!(
        t["Outputs"]["HelloWorldFunction"]["Value"],
        json!({"Fn::GetAtt": ["HelloWorldFunction", "Arn"]})
    );
    assert_eq!(
        t["Outputs"]["HelloWorldFunctionIamRole"]["Value"],
        json!({"Fn::GetAtt": ["HelloWorldFunctionRole", "Arn"]})
    );
    // Key order is kept, so the body reads like the source.
    let keys: Vec<_> = t.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "AWSTemplateFormatVersion",
            "Transform",
            "Description",
            "Globals",
            "Resources",
            "Outputs"
        ]
    );
}

#[test]
fn every_short_form_has_its_long_form() {
    let yaml = r#"
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition IsProd, !Or [!Condition A, !Condition B]]
Resources:
  X:
    Properties:
      A: !Join ['', [a, !Ref 'AWS::Region']]
      B: !Select [0, !GetAZs '']
      C: !Select [1, !Split [',', !ImportValue Shared-Subnets]]
      D: !If [IsProd, !Ref AWS::NoValue, 2]
      E: !FindInMap [Map, !Ref AWS::Region, Ami]
      F: !Base64 |
        #!/bin/sh
      G: !Cidr [!GetAtt Vpc.CidrBlock, 6, 5]
      H: !GetAZs
      I: !Sub
        - 'arn:${A}:${B}'
        - A: !Ref AWS::Partition
          B: x
      J: !GetAtt Db.Endpoint.Address
      K: !Ref 5
      L: !Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}
      M: !GetAtt [Fn, !Ref Attr]
"#;
    let t = parse_template(yaml).unwrap();
    assert_eq!(
        t["Conditions"],
        json!({
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
            "Both": {"Fn::And": [{"Condition": "IsProd"},
                {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}]},
        })
    );
    assert_eq!(
        t["Resources"]["X"]["Properties"],
        json!({
            "A": {"Fn::Join": ["", ["a", {"Ref": "AWS::Region"}]]},
            "B": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
            "C": {"Fn::Select": [1, {"Fn::Split": [",", {"Fn::ImportValue": "Shared-Subnets"}]}]},
            "D": {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, 2]},
            "E": {"Fn::FindInMap": ["Map", {"Ref": "AWS::Region"}, "Ami"]},
            "F": {"Fn::Base64": "#!/bin/sh\n"},
            "G": {"Fn::Cidr": [{"Fn::GetAtt": ["Vpc", "CidrBlock"]}, 6, 5]},
            "H": {"Fn::GetAZs": ""},
            "I": {"Fn::Sub": ["arn:${A}:${B}", {"A": {"Ref": "AWS::Partition"}, "B": "x"}]},
            "J": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
            "K": {"Ref": "5"},
            "L": {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/k"}}},
            "M": {"Fn::GetAtt": ["Fn", {"Ref": "Attr"}]},
        })
    );
}

#[test]
fn json_templates_read_as_they_are() {
    let t = parse_template(
        r#" {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}, "Outputs": {"N": {"Value": {"Ref": "B"}}}}"#,
    )
    .unwrap();
    assert_eq!(t["Outputs"]["N"]["Value"], json!({"Ref": "B"}));
    assert!(is_cloudformation(&t));
    assert!(!is_sam(&t));
    // Neither JSON nor YAML: the JSON error is the one reported.
    let err = parse_template("{\"Resources\": [}").unwrap_err();
    assert!(matches!(
        err,
        TemplateError::Syntax {
            format: "JSON",
            line: Some(1),
            ..
        }
    ));
}

#[test]
fn transform_may_be_a_list() {
    let t = parse_template(
        "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\nResources: {}\n",
    )
    .unwrap();
    assert!(is_sam(&t));
}

#[test]
fn scalars_keep_what_the_author_wrote() {
    let t = parse_template(
        "Account: 012345678901\nOctal: 0755\nPort: 8080\nRatio: 0.5\nOn: true\nEmpty:\nDate: 2010-09-09\n",
    )
    .unwrap();
    assert_eq!(
        t,
        json!({"Account": "012345678901", "Octal": "0755", "Port": 8080, "Ratio": 0.5,
               "On": true, "Empty": null, "Date": "2010-09-09"})
    );
}

#[test]
fn unknown_and_malformed_tags_are_refused_with_their_place() {
    let err = parse_template("Resources:\n  R:\n    Properties:\n      A: !Reff X\n").unwrap_err();
    assert_eq!(
        err,
        TemplateError::UnknownTag {
            tag: "!Reff".into(),
            path: "Resources.R.Properties.A".into()
        }
    );
    assert!(err.to_string().starts_with("unknown tag !Reff at Resources.R.Properties.A: CloudFormation knows !Ref, !Condition and !And, !Base64"));
    let err = parse_template("Outputs:\n  - !GetAtt Lonely\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "!GetAtt at Outputs.0: \"Lonely\" is not of the form Resource.Attribute"
    );
    let err = parse_template("A: !Ref [x]\n").unwrap_err();
    assert_eq!(err.to_string(), "!Ref at A: expected a name, found a list");
    let err = parse_template("A: !Join\n").unwrap_err();
    assert_eq!(err.to_string(), "!Join at A: it has no argument");
}

#[test]
fn not_a_template() {
    assert_eq!(parse_template("  \n"), Err(TemplateError::Empty));
    assert_eq!(
        parse_template("# only a comment\n"),
        Err(TemplateError::Empty)
    );
    assert_eq!(
        parse_template("- a\n- b\n"),
        Err(TemplateError::NotAMapping { found: "a list" })
    );
    let err = parse_template("a: [1, 2\n").unwrap_err();
    assert!(matches!(
        err,
        TemplateError::Syntax {
            format: "YAML",
            line: Some(_),
            ..
        }
    ));
    let err = parse_template("a: 1\na: 2\n").unwrap_err();
    assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
}

#[test]
fn body_is_compact_json_that_reads_back() {
    let t = parse_template(HELLO_SAM).unwrap();
    let body = template_body(&t);
    assert!(!body.contains('\n'));
    assert!(body.len() < TEMPLATE_BODY_MAX_BYTES);
    assert_eq!(parse_template(&body).unwrap(), t);
}

#[test]
fn parameters_without_a_default_are_listed() {
    let t = parse_template(
        "Parameters:\n  Env: {Type: String, Default: dev}\n  KeyName: {Type: String}\nResources: {}\n",
    )
    .unwrap();
    assert_eq!(parameters_without_default(&t), ["KeyName"]);
}

#[test]
fn a_yaml_flow_mapping_is_not_taken_for_json() {
    let t = parse_template("{Resources: {B: {Type: AWS::S3::Bucket}}}").unwrap();
    assert_eq!(t["Resources"]["B"]["Type"], "AWS::S3::Bucket");
}

#[test]
fn capabilities_follow_what_the_template_creates() {
    let caps = |yaml: &str| required_capabilities(&parse_template(yaml).unwrap());
    assert_eq!(
        caps("Resources:\n  B: {Type: AWS::S3::Bucket}\n"),
        Vec::<&str>::new()
    );
    assert_eq!(
        caps(HELLO_SAM),
        ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    );
    assert_eq!(
        caps(
            "Resources:\n  R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {}}}\n"
        ),
        ["CAPABILITY_IAM"]
    );
    assert_eq!(
        caps("Resources:\n  R: {Type: AWS::IAM::Role, Properties: {RoleName: app-role}}\n"),
        ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    );
    assert_eq!(
        caps("Resources:\n  N: {Type: AWS::CloudFormation::Stack, Properties: {TemplateURL: x}}\n"),
        [
            "CAPABILITY_IAM",
            "CAPABILITY_NAMED_IAM",
            "CAPABILITY_AUTO_EXPAND"
        ]
    );
}

fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[A-Za-z:]{1,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn a_json_template_reads_back_as_itself(
        entries in proptest::collection::vec(("[A-Za-z]{1,8}", json_value()), 1..5),
    ) {
        let template = Value::Object(entries.into_iter().collect());
        let body = template_body(&template);
        proptest::prop_assert_eq!(parse_template(&body).unwrap(), template);
    }
}

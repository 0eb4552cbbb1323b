//! Tests of infrastructure-as-code detection over small repository listings.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

/// A repository: paths and their text (files without text are listed only).
struct Repo(Vec<(&'static str, &'static str)>);

impl Repo {
    fn files(&self) -> Vec<RepoFile> {
        self.0
            .iter()
            .map(|(p, t)| RepoFile {
                path: p.to_string(),
                size: t.len() as u64,
            })
            .collect()
    }

    fn detect(&self) -> Result<Detected, NotFound> {
        self.detect_files(&self.files())
    }

    fn detect_files(&self, files: &[RepoFile]) -> Result<Detected, NotFound> {
        let text: HashMap<_, _> = self.0.iter().copied().collect();
        detect(files, |p| text.get(p).map(|t| t.to_string()))
    }
}

const SAM: &str = "AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\nResources:\n  HelloWorldFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: hello_world/\n      Handler: app.lambda_handler\nOutputs:\n  Arn:\n    Value: !GetAtt HelloWorldFunction.Arn\n";
const CFN: &str =
    "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Bucket:\n    Type: AWS::S3::Bucket\n";
const CFN_JSON_NO_VERSION: &str = r#"{"Resources": {"Table": {"Type": "AWS::DynamoDB::Table"}}}"#;

#[test]
fn sam_template_at_the_root() {
    let repo = Repo(vec![
        ("template.yaml", SAM),
        ("hello_world/app.py", "def lambda_handler(e, c): pass"),
        ("hello_world/requirements.txt", ""),
        ("README.md", "# hello"),
    ]);
    let d = repo.detect().unwrap();
    assert_eq!(d.iac, IacType::Sam);
    assert_eq!(d.template.as_deref(), Some("template.yaml"));
    assert_eq!(d.folder, ".");
    assert_eq!(
        d.reason,
        "SAM: template.yaml declares Transform AWS::Serverless-2016-10-31"
    );
    assert_eq!(d.function, None);
}

#[test]
fn sam_under_any_yaml_or_json_name_and_as_a_list_item() {
    let list =
        "Transform:\n  - AWS::LanguageExtensions\n  - AWS::Serverless-2016-10-31\nResources: {}\n";
    let repo = Repo(vec![
        ("api.yml", list),
        ("docker-compose.yml", "services: {}\n"),
    ]);
    let d = repo.detect().unwrap();
    assert_eq!(
        (d.iac, d.template.as_deref()),
        (IacType::Sam, Some("api.yml"))
    );
    let json = r#"{"Transform": "AWS::Serverless-2016-10-31", "Resources": {}}"#;
    let d = Repo(vec![("serverless.json", json)]).detect().unwrap();
    assert_eq!(d.iac, IacType::Sam);
}

#[test]
fn sam_in_a_well_known_folder_beats_a_function_at_the_root() {
    let repo = Repo(vec![
        ("infra/template.yml", SAM),
        ("package.json", "{}"),
        ("index.js", "exports.handler = async () => ({})"),
    ]);
    let d = repo.detect().unwrap();
    assert_eq!(d.iac, IacType::Sam);
    assert_eq!(d.template.as_deref(), Some("infra/template.yml"));
    assert_eq!(d.folder, "infra");
}

#[test]
fn template_yaml_is_preferred_among_sam_templates() {
    let repo = Repo(vec![
        ("a.yaml", SAM),
        ("template.yaml", SAM),
        ("b.json", SAM),
    ]);
    assert_eq!(
        repo.detect().unwrap().template.as_deref(),
        Some("template.yaml")
    );
}

#[test]
fn cloudformation_by_name_and_content() {
    let repo = Repo(vec![
        ("cloudformation.yml", CFN),
        ("config.yaml", CFN), // not a template's name
    ]);
    let d = repo.detect().unwrap();
    assert_eq!(d.iac, IacType::CloudFormation);
    assert_eq!(d.template.as_deref(), Some("cloudformation.yml"));
    assert_eq!(
        d.reason,
        "CloudFormation: cloudformation.yml declares AWSTemplateFormatVersion"
    );

    let d = Repo(vec![("deploy/stack.json", CFN_JSON_NO_VERSION)])
        .detect()
        .unwrap();
    assert_eq!(d.iac, IacType::CloudFormation);
    assert_eq!(
        d.reason,
        "CloudFormation: deploy/stack.json declares Resources"
    );
    assert_eq!(d.folder, "deploy");

    for name in [
        "network-stack.yaml",
        "vpc.template.json",
        "Template.YML",
        "app.template",
    ] {
        let repo = Repo(vec![(name, CFN)]);
        let d = repo.detect().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.template.as_deref(), Some(name));
    }
    // Named like a template but not one.
    let err = Repo(vec![("stack.yaml", "name: just config\n")])
        .detect()
        .unwrap_err();
    assert!(
        err.looked_for
            .starts_with("no infrastructure-as-code found")
    );
}

#[test]
fn cdk_json() {
    let repo = Repo(vec![
        ("cdk.json", r#"{"app": "python3 app.py"}"#),
        ("app.py", "import aws_cdk"),
        ("requirements.txt", "aws-cdk-lib"),
    ]);
    let d = repo.detect().unwrap();
    assert_eq!(d.iac, IacType::Cdk);
    assert_eq!(d.template, None);
    assert_eq!(d.reason, "CDK: cdk.json found (app: python3 app.py)");
    // cdk.out holds synthesized templates: never looked at.
    let repo = Repo(vec![
        ("cdk/cdk.json", "not json"),
        ("cdk.out/Stack.template.json", CFN_JSON_NO_VERSION),
    ]);
    let d = repo.detect().unwrap();
    assert_eq!((d.iac, d.folder.as_str()), (IacType::Cdk, "cdk"));
    assert_eq!(d.reason, "CDK: cdk/cdk.json found");
}

#[test]
fn terraform_files() {
    let repo = Repo(vec![
        ("terraform/main.tf", "resource \"aws_s3_bucket\" \"b\" {}"),
        ("terraform/variables.tf", ""),
        ("terraform/outputs.tf", ""),
        ("terraform/versions.tf", ""),
        ("terraform/.terraform/modules/x/main.tf", ""),
        ("lambda/handler.py", "def handler(e, c): pass"),
    ]);
    let d = repo.detect().unwrap();
    assert_eq!(d.iac, IacType::Terraform);
    assert_eq!(d.folder, "terraform");
    assert_eq!(
        d.reason,
        "Terraform: 4 .tf files in terraform (main.tf, outputs.tf, variables.tf, …)"
    );
    let d = Repo(vec![("main.tf.json", "{}")]).detect().unwrap();
    assert_eq!(d.reason, "Terraform: 1 .tf file in . (main.tf.json)");
}

#[test]
fn node_function() {
    let repo = Repo(vec![
        ("package.json", r#"{"name": "hello"}"#),
        (
            "index.js",
            "exports.handler = async () => ({statusCode: 200})",
        ),
        ("lib/util.js", ""),
        ("node_modules/left-pad/index.js", ""),
        (".github/workflows/ci.yml", "on: push\n"),
        (".env", "SECRET=1"),
    ]);
    let d = repo.detect().unwrap();
    assert_eq!(d.iac, IacType::Lambda);
    assert_eq!(
        d.reason,
        "Node function: package.json with index.js, handler index.handler"
    );
    let f = d.function.unwrap();
    assert_eq!(f.runtime, Runtime::Nodejs);
    assert_eq!(f.runtime.lambda_runtime(), "nodejs22.x");
    assert_eq!(f.handler, "index.handler");
    assert_eq!(f.entry, "index.js");
    assert_eq!(f.manifest.as_deref(), Some("package.json"));
    // Hidden files and node_modules are not the function's source: the deployer installs.
    assert_eq!(f.files, ["index.js", "lib/util.js", "package.json"]);

    let d = Repo(vec![("src/package.json", "{}"), ("src/handler.mjs", "")])
        .detect()
        .unwrap();
    let f = d.function.unwrap();
    assert_eq!(
        (d.folder.as_str(), f.handler.as_str()),
        ("src", "handler.handler")
    );
    assert_eq!(f.files, ["src/handler.mjs", "src/package.json"]);
}

#[test]
fn python_function_handlers_in_order() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["lambda_function.py", "app.py", "handler.py"],
            "lambda_function.lambda_handler",
        ),
        (&["app.py", "handler.py"], "app.lambda_handler"),
        (&["handler.py"], "handler.handler"),
    ];
    for (names, handler) in cases {
        let mut files: Vec<(&'static str, &'static str)> = names.iter().map(|n| (*n, "")).collect();
        files.push(("requirements.txt", "boto3"));
        files.push(("__pycache__/app.cpython-313.pyc", ""));
        files.push(("tests/test_app.py", ""));
        let d = Repo(files).detect().unwrap();
        let f = d.function.unwrap();
        assert_eq!(f.runtime, Runtime::Python);
        assert_eq!(f.handler, handler);
        assert_eq!(f.manifest.as_deref(), Some("requirements.txt"));
        assert!(f.files.iter().all(|p| !p.contains("pycache")));
    }
    let d = Repo(vec![("lambda_function.py", "")]).detect().unwrap();
    assert_eq!(
        d.reason,
        "Python function: lambda_function.py, handler lambda_function.lambda_handler"
    );
    assert_eq!(d.function.unwrap().manifest, None);
}

#[test]
fn a_node_entry_without_package_json_is_not_a_function() {
    assert!(Repo(vec![("index.js", "")]).detect().is_err());
}

#[test]
fn nothing_found_says_what_was_looked_for() {
    let err = Repo(vec![("README.md", "# hi"), ("main.go", "package main")])
        .detect()
        .unwrap_err();
    assert!(err.to_string().starts_with(
        "no infrastructure-as-code found: looked for a SAM or CloudFormation template \
         (template/cloudformation/stack .yaml/.yml/.json), cdk.json, *.tf, a Node function \
         (package.json with index.js or handler.js), a Python function (lambda_function.py, \
         app.py, handler.py), in the root and the folders infra, infrastructure,"
    ));
    let err = Repo(vec![]).detect().unwrap_err();
    assert!(!err.looked_for.contains(';'));
}

#[test]
fn a_broken_template_is_named_when_nothing_is_found() {
    let err = Repo(vec![("template.yaml", "Resources:\n  A: !Reff x\n")])
        .detect()
        .unwrap_err();
    assert!(
        err.looked_for.ends_with(
            "; template.yaml is not a readable template: unknown tag !Reff at Resources.A: \
             CloudFormation knows !Ref, !Condition and !And, !Base64, !Cidr, !Equals, \
             !FindInMap, !GetAZs, !GetAtt, !If, !ImportValue, !Join, !Length, !Not, !Or, \
             !Select, !Split, !Sub, !ToJsonString, !Transform"
        ),
        "{}",
        err.looked_for
    );
}

#[test]
fn large_files_and_deep_files_are_not_read() {
    let files = vec![
        RepoFile {
            path: "template.yaml".into(),
            size: MAX_READ_BYTES + 1,
        },
        RepoFile {
            path: "a/b/template.yaml".into(),
            size: 10,
        },
    ];
    let mut asked = Vec::new();
    let result = detect(&files, |p| {
        asked.push(p.to_string());
        Some(SAM.to_string())
    });
    assert!(result.is_err());
    assert!(asked.is_empty(), "{asked:?}");
}

#[test]
fn listing_paths_are_normalized() {
    let repo = Repo(vec![("template.yaml", SAM)]);
    let files = [RepoFile {
        path: "./template.yaml".into(),
        size: 10,
    }];
    assert_eq!(
        repo.detect_files(&files).unwrap().template.as_deref(),
        Some("template.yaml")
    );
}

/// Everything a listing may hold, each with text that makes it count.
const ALL: &[(&str, &str)] = &[
    ("template.yaml", SAM),
    ("other.yaml", SAM),
    ("infra/template.json", SAM),
    ("stack.yaml", CFN),
    ("deploy/cloudformation.yml", CFN),
    ("cdk.json", "{}"),
    ("infra/cdk.json", "{}"),
    ("main.tf", ""),
    ("terraform/main.tf", ""),
    ("package.json", "{}"),
    ("index.js", ""),
    ("handler.js", ""),
    ("src/package.json", "{}"),
    ("src/index.js", ""),
    ("lambda_function.py", ""),
    ("app.py", ""),
    ("handler.py", ""),
    ("README.md", ""),
];

proptest! {
    #[test]
    fn detection_does_not_depend_on_listing_order(
        picked in prop::sample::subsequence(ALL.to_vec(), 0..ALL.len()),
        order in any::<prop::sample::Index>(),
    ) {
        let repo = Repo(picked.clone());
        let files = repo.files();
        let mut shuffled = files.clone();
        let n = shuffled.len().max(1);
        shuffled.rotate_left(order.index(n) % n.max(1));
        shuffled.reverse();
        let mut doubled = files.clone();
        doubled.extend(files.iter().cloned());
        let a = repo.detect_files(&files);
        prop_assert_eq!(&a, &repo.detect_files(&shuffled));
        prop_assert_eq!(&a, &repo.detect_files(&doubled));
        // The precedence: the first rule with something to find wins.
        let has = |pred: &dyn Fn(&str) -> bool| picked.iter().any(|(p, _)| pred(p));
        let expected = if has(&|p| p.ends_with("template.yaml") || p == "other.yaml" || p == "infra/template.json") {
            Some(IacType::Sam)
        } else if has(&|p| p == "stack.yaml" || p.ends_with("cloudformation.yml")) {
            Some(IacType::CloudFormation)
        } else if has(&|p| p.ends_with("cdk.json")) {
            Some(IacType::Cdk)
        } else if has(&|p| p.ends_with(".tf")) {
            Some(IacType::Terraform)
        } else if has(&|p| p.ends_with(".py"))
            || (has(&|p| p == "package.json") && has(&|p| p == "index.js" || p == "handler.js"))
            || (has(&|p| p == "src/package.json") && has(&|p| p == "src/index.js"))
        {
            Some(IacType::Lambda)
        } else {
            None
        };
        prop_assert_eq!(a.ok().map(|d| d.iac), expected);
    }
}

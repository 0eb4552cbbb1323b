//! Packaging a template, as `sam package` and `aws cloudformation package` do: the local code
//! paths a template names are found, the deployer zips and uploads each, and the template is
//! rewritten to point at the uploads.
//!
//! The properties looked at (and nothing else: an API's `DefinitionUri`, a nested stack's
//! `TemplateURL` and the like are left as they are):
//!
//! | resource                        | property     | rewritten to                 |
//! |---------------------------------|--------------|------------------------------|
//! | `AWS::Serverless::Function`     | `CodeUri`    | `"s3://bucket/key"`          |
//! | `AWS::Lambda::Function`         | `Code`       | `{"S3Bucket", "S3Key"}`      |
//! | `AWS::Serverless::LayerVersion` | `ContentUri` | `"s3://bucket/key"`          |
//! | `AWS::Lambda::LayerVersion`     | `Content`    | `{"S3Bucket", "S3Key"}`      |
//!
//! A value is local only when it is a string that is not `s3://…`; a mapping (`S3Bucket`/`S3Key`,
//! `Bucket`/`Key`, `ZipFile`) or an intrinsic function is left alone. A local path is relative
//! to the template's folder, and is reported relative to the repository's root; one that leaves
//! the repository (`..` past the root, or absolute) is refused, naming the resource.
//!
//! A SAM function without `CodeUri` takes `Globals.Function.CodeUri`, and without that the
//! template's own folder (`sam package` packages a missing `CodeUri` as the template's
//! directory). Functions with `InlineCode`, `ImageUri` or `PackageType: Image` have no code to
//! upload. When a function takes its code from `Globals`, the rewrite writes the upload into the
//! function itself (as `sam package` applies that global to each function before packaging),
//! and a local `Globals.Function.CodeUri` is removed.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Which of the four packaged properties an artifact is, which decides how it is rewritten.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ArtifactKind {
    /// `AWS::Serverless::Function` `CodeUri`, rewritten to an `s3://` URI.
    ServerlessFunction,
    /// `AWS::Lambda::Function` `Code`, rewritten to `{S3Bucket, S3Key}`.
    LambdaFunction,
    /// `AWS::Serverless::LayerVersion` `ContentUri`, rewritten to an `s3://` URI.
    ServerlessLayer,
    /// `AWS::Lambda::LayerVersion` `Content`, rewritten to `{S3Bucket, S3Key}`.
    LambdaLayer,
}

impl ArtifactKind {
    /// The property under the resource's `Properties` that holds the code.
    pub fn property(self) -> &'static str {
        match self {
            ArtifactKind::ServerlessFunction => "CodeUri",
            ArtifactKind::LambdaFunction => "Code",
            ArtifactKind::ServerlessLayer => "ContentUri",
            ArtifactKind::LambdaLayer => "Content",
        }
    }

    fn of(resource_type: &str) -> Option<ArtifactKind> {
        Some(match resource_type {
            "AWS::Serverless::Function" => ArtifactKind::ServerlessFunction,
            "AWS::Lambda::Function" => ArtifactKind::LambdaFunction,
            "AWS::Serverless::LayerVersion" => ArtifactKind::ServerlessLayer,
            "AWS::Lambda::LayerVersion" => ArtifactKind::LambdaLayer,
            _ => return None,
        })
    }
}

/// A local path the template names, to be zipped and uploaded.
///
/// The deployer zips `local` (a folder's contents; a `.zip` or `.jar` file as it is; any other
/// file into a zip of its own), once per distinct `local`, and uploads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    /// The logical id of the resource (`HelloWorldFunction`).
    pub resource: String,
    /// Where the path is in the template (`Resources.HelloWorldFunction.Properties.CodeUri`);
    /// for a function that takes it from `Globals`, the place the rewrite writes it to.
    pub property: String,
    /// The path relative to the repository's root, normalized (`hello_world`, `.` for the root).
    pub local: String,
    /// Which property it is.
    pub kind: ArtifactKind,
    /// The path came from `Globals.Function.CodeUri`.
    pub from_globals: bool,
}

/// Where an artifact was uploaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
}

impl S3Location {
    /// `s3://bucket/key`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Why a template cannot be packaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// A local path leaves the repository.
    #[error("{resource}: {property} {path:?} is outside the repository")]
    OutsideRepository {
        /// The resource's logical id.
        resource: String,
        /// Where the path is in the template.
        property: String,
        /// The path as written.
        path: String,
    },
    /// The rewrite was given no upload for an artifact's local path.
    #[error("{resource}: {local:?} ({property}) was not uploaded")]
    NotUploaded {
        /// The resource's logical id.
        resource: String,
        /// Where the path is in the template.
        property: String,
        /// The local path without an upload.
        local: String,
    },
}

/// The local code paths of `template`, read from `template_path` (relative to the repository's
/// root), in the order of the template's resources.
pub fn find_artifacts(
    template: &Value,
    template_path: &str,
) -> Result<Vec<Artifact>, PackageError> {
    let base = parent_folder(template_path);
    let globals = template.pointer("/Globals/Function");
    let global_code = globals.and_then(|g| g.get("CodeUri"));
    let global_image = globals.is_some_and(is_image_function);
    let mut found = Vec::new();
    let Some(Value::Object(resources)) = template.get("Resources") else {
        return Ok(found);
    };
    for (id, resource) in resources {
        let Some(kind) = resource
            .get("Type")
            .and_then(Value::as_str)
            .and_then(ArtifactKind::of)
        else {
            continue;
        };
        let props = resource.get("Properties");
        let own = props.and_then(|p| p.get(kind.property()));
        let property = format!("Resources.{id}.Properties.{}", kind.property());
        let (value, from_globals) = match (kind, own) {
            (_, Some(v)) => (Some(v), false),
            (ArtifactKind::ServerlessFunction, None) => {
                if props.is_some_and(|p| p.get("InlineCode").is_some() || is_image_function(p))
                    || global_image
                {
                    continue;
                }
                (global_code, global_code.is_some())
            }
            (_, None) => continue,
        };
        let path = match value {
            Some(Value::String(s)) if s.starts_with("s3://") => continue,
            Some(Value::String(s)) => s.as_str(),
            Some(_) => continue,
            // A SAM function without CodeUri: the template's folder.
            None => "",
        };
        let local = resolve(&base, path).ok_or_else(|| PackageError::OutsideRepository {
            resource: id.clone(),
            property: if from_globals {
                "Globals.Function.CodeUri".into()
            } else {
                property.clone()
            },
            path: path.to_string(),
        })?;
        found.push(Artifact {
            resource: id.clone(),
            property,
            local,
            kind,
            from_globals,
        });
    }
    Ok(found)
}

/// The template with each artifact of [`find_artifacts`] replaced by its upload, looked up by
/// the artifact's `local` path in `uploads`. Every artifact must have an upload.
pub fn rewrite(
    template: &Value,
    template_path: &str,
    uploads: &BTreeMap<String, S3Location>,
) -> Result<Value, PackageError> {
    let artifacts = find_artifacts(template, template_path)?;
    let mut out = template.clone();
    for artifact in &artifacts {
        let location = uploads
            .get(&artifact.local)
            .ok_or_else(|| PackageError::NotUploaded {
                resource: artifact.resource.clone(),
                property: artifact.property.clone(),
                local: artifact.local.clone(),
            })?;
        let value = match artifact.kind {
            ArtifactKind::ServerlessFunction | ArtifactKind::ServerlessLayer => {
                Value::String(location.uri())
            }
            ArtifactKind::LambdaFunction | ArtifactKind::LambdaLayer => serde_json::json!({
                "S3Bucket": location.bucket,
                "S3Key": location.key,
            }),
        };
        let resource = &mut out["Resources"][&artifact.resource];
        if !resource.get("Properties").is_some_and(Value::is_object) {
            resource["Properties"] = Value::Object(Map::new());
        }
        resource["Properties"][artifact.kind.property()] = value;
    }
    // Each function now has its own CodeUri; a local global one would only mislead.
    let global_local = out
        .pointer("/Globals/Function/CodeUri")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.starts_with("s3://"));
    if global_local {
        drop_global_code_uri(&mut out);
    }
    Ok(out)
}

/// Removes `Globals.Function.CodeUri` (now written into each function), and the sections left
/// empty by it.
fn drop_global_code_uri(template: &mut Value) {
    let Some(Value::Object(globals)) = template.get_mut("Globals") else {
        return;
    };
    if let Some(Value::Object(function)) = globals.get_mut("Function") {
        function.remove("CodeUri");
        if function.is_empty() {
            globals.remove("Function");
        }
    }
    if globals.is_empty()
        && let Some(t) = template.as_object_mut()
    {
        t.remove("Globals");
    }
}

fn is_image_function(props: &Value) -> bool {
    props.get("ImageUri").is_some()
        || props.get("PackageType").and_then(Value::as_str) == Some("Image")
}

/// The folder of a repository path, as segments (`infra/template.yaml` → `["infra"]`).
fn parent_folder(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let path = path.replace('\\', "/");
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for part in parts {
        match part {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            p => segments.push(p.to_string()),
        }
    }
    segments
}

/// `path` (as written in a template) resolved against the template's folder, relative to the
/// repository's root; `None` when it leaves the repository.
fn resolve(base: &[String], path: &str) -> Option<String> {
    let path = path.replace('\\', "/");
    let drive = path.len() >= 2 && path.as_bytes()[1] == b':';
    if path.starts_with('/') || drive || path.contains("://") {
        return None;
    }
    let mut segments = base.to_vec();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            p => segments.push(p.to_string()),
        }
    }
    Some(if segments.is_empty() {
        ".".into()
    } else {
        segments.join("/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::template::parse_template;
    use proptest::prelude::*;
    use serde_json::json;

    const PACKAGED: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: nodejs22.x
Resources:
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ./hello/
      Handler: app.handler
  DefaultFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
  InlineFunction:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "exports.handler = async () => 1"
  ImageFunction:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
  UploadedFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://bucket/code.zip
  ObjectFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {Bucket: b, Key: k}
  SubFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: !Sub "s3://${Bucket}/k"
  Plain:
    Type: AWS::Lambda::Function
    Properties:
      Code: ../lambda/plain
      Handler: index.handler
  PlainInline:
    Type: AWS::Lambda::Function
    Properties:
      Code: {ZipFile: "def h(e, c): pass"}
  Deps:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers\deps
  RawLayer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      Content: layer.zip
  Bucket:
    Type: AWS::S3::Bucket
"#;

    fn found(template: &str, path: &str) -> Vec<(String, String, ArtifactKind, bool)> {
        let t = parse_template(template).unwrap();
        find_artifacts(&t, path)
            .unwrap()
            .into_iter()
            .map(|a| (a.resource, a.local, a.kind, a.from_globals))
            .collect()
    }

    #[test]
    fn local_paths_are_found_relative_to_the_repository() {
        use ArtifactKind::*;
        let s = |x: &str| x.to_string();
        assert_eq!(
            found(PACKAGED, "infra/template.yaml"),
            [
                (
                    s("HelloFunction"),
                    s("infra/hello"),
                    ServerlessFunction,
                    false
                ),
                (s("DefaultFunction"), s("infra"), ServerlessFunction, false),
                (s("Plain"), s("lambda/plain"), LambdaFunction, false),
                (s("Deps"), s("infra/layers/deps"), ServerlessLayer, false),
                (s("RawLayer"), s("infra/layer.zip"), LambdaLayer, false),
            ]
        );
        let t = parse_template(PACKAGED).unwrap();
        let a = &find_artifacts(&t, "infra/template.yaml").unwrap()[0];
        assert_eq!(a.property, "Resources.HelloFunction.Properties.CodeUri");
    }

    #[test]
    fn a_function_without_code_uri_is_the_template_folder() {
        let t = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n";
        assert_eq!(found(t, "template.yaml")[0].1, ".");
    }

    #[test]
    fn paths_outside_the_repository_are_refused_naming_the_resource() {
        let t = parse_template(PACKAGED).unwrap();
        let err = find_artifacts(&t, "template.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Plain: Resources.Plain.Properties.Code \"../lambda/plain\" is outside the repository"
        );
        for bad in ["/etc", "C:\\code", "../../x", "a/../../../b", "file:///etc"] {
            let t = json!({"Resources": {"F": {"Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": bad}}}});
            let err = find_artifacts(&t, "x/template.yaml").unwrap_err();
            assert!(
                matches!(err, PackageError::OutsideRepository { ref resource, .. } if resource == "F"),
                "{bad}"
            );
        }
    }

    #[test]
    fn globals_code_uri_applies_to_functions_without_their_own() {
        let t = r#"
Globals:
  Function:
    CodeUri: src/
    Runtime: python3.13
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties: {Handler: a.handler}
  B:
    Type: AWS::Serverless::Function
    Properties: {Handler: b.handler, CodeUri: other}
"#;
        let s = |x: &str| x.to_string();
        assert_eq!(
            found(t, "template.yaml"),
            [
                (s("A"), s("src"), ArtifactKind::ServerlessFunction, true),
                (s("B"), s("other"), ArtifactKind::ServerlessFunction, false),
            ]
        );
        let template = parse_template(t).unwrap();
        let uploads = BTreeMap::from([
            (
                s("src"),
                S3Location {
                    bucket: s("b"),
                    key: s("src.zip"),
                },
            ),
            (
                s("other"),
                S3Location {
                    bucket: s("b"),
                    key: s("other.zip"),
                },
            ),
        ]);
        let out = rewrite(&template, "template.yaml", &uploads).unwrap();
        assert_eq!(
            out["Resources"]["A"]["Properties"]["CodeUri"],
            "s3://b/src.zip"
        );
        assert_eq!(
            out["Globals"],
            json!({"Function": {"Runtime": "python3.13"}})
        );
        assert!(find_artifacts(&out, "template.yaml").unwrap().is_empty());

        let escaping = t.replace("CodeUri: src/", "CodeUri: ../src");
        let err = find_artifacts(&parse_template(&escaping).unwrap(), "t.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "A: Globals.Function.CodeUri \"../src\" is outside the repository"
        );
    }

    #[test]
    fn rewrite_writes_each_kind_in_its_shape() {
        let t = parse_template(PACKAGED).unwrap();
        let uploads: BTreeMap<_, _> = find_artifacts(&t, "infra/template.yaml")
            .unwrap()
            .into_iter()
            .map(|a| {
                let key = format!("{}.zip", a.local.replace('/', "-"));
                (
                    a.local,
                    S3Location {
                        bucket: "art".into(),
                        key,
                    },
                )
            })
            .collect();
        let out = rewrite(&t, "infra/template.yaml", &uploads).unwrap();
        let props = |id: &str| out["Resources"][id]["Properties"].clone();
        assert_eq!(
            props("HelloFunction")["CodeUri"],
            "s3://art/infra-hello.zip"
        );
        assert_eq!(props("DefaultFunction")["CodeUri"], "s3://art/infra.zip");
        assert_eq!(
            props("Plain")["Code"],
            json!({"S3Bucket": "art", "S3Key": "lambda-plain.zip"})
        );
        assert_eq!(
            props("Deps")["ContentUri"],
            "s3://art/infra-layers-deps.zip"
        );
        assert_eq!(
            props("RawLayer")["Content"],
            json!({"S3Bucket": "art", "S3Key": "infra-layer.zip.zip"})
        );
        // What was not local is untouched.
        assert_eq!(
            props("SubFunction"),
            t["Resources"]["SubFunction"]["Properties"]
        );
        assert_eq!(
            props("PlainInline"),
            t["Resources"]["PlainInline"]["Properties"]
        );
        assert!(
            find_artifacts(&out, "infra/template.yaml")
                .unwrap()
                .is_empty()
        );

        let mut missing = uploads.clone();
        missing.remove("infra/layers/deps");
        let err = rewrite(&t, "infra/template.yaml", &missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Deps: \"infra/layers/deps\" (Resources.Deps.Properties.ContentUri) was not uploaded"
        );
    }

    #[test]
    fn a_function_without_properties_gets_them() {
        let t = json!({"Resources": {"F": {"Type": "AWS::Serverless::Function"}}});
        let uploads = BTreeMap::from([(
            ".".to_string(),
            S3Location {
                bucket: "b".into(),
                key: "k".into(),
            },
        )]);
        let out = rewrite(&t, "template.json", &uploads).unwrap();
        assert_eq!(
            out["Resources"]["F"]["Properties"],
            json!({"CodeUri": "s3://b/k"})
        );
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just(String::new()),
            "[a-c]{1,2}",
        ]
    }

    fn rel_path() -> impl Strategy<Value = String> {
        (prop::collection::vec(segment(), 0..5), any::<bool>()).prop_map(|(s, abs)| {
            let p = s.join("/");
            if abs { format!("/{p}") } else { p }
        })
    }

    proptest! {
        #[test]
        fn packaging_never_leaves_the_repository(
            folder in prop::collection::vec("[a-c]{1,2}", 0..3),
            paths in prop::collection::vec(rel_path(), 1..4),
        ) {
            let template_path = folder.iter().cloned().chain(["template.yaml".to_string()]).collect::<Vec<_>>().join("/");
            let mut resources = Map::new();
            for (i, p) in paths.iter().enumerate() {
                resources.insert(format!("F{i}"), json!({"Type": "AWS::Lambda::Function", "Properties": {"Code": p}}));
            }
            let template = json!({"Resources": resources});
            match find_artifacts(&template, &template_path) {
                Ok(artifacts) => {
                    prop_assert_eq!(artifacts.len(), paths.len());
                    let mut uploads = BTreeMap::new();
                    for a in &artifacts {
                        prop_assert!(!a.local.starts_with('/'));
                        prop_assert!(a.local == "." || a.local.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "{}", a.local);
                        uploads.insert(a.local.clone(), S3Location { bucket: "b".into(), key: a.local.clone() });
                    }
                    let out = rewrite(&template, &template_path, &uploads).unwrap();
                    prop_assert!(find_artifacts(&out, &template_path).unwrap().is_empty());
                    let reread = parse_template(&crate::deploy::template::template_body(&out)).unwrap();
                    prop_assert!(find_artifacts(&reread, &template_path).unwrap().is_empty());
                }
                Err(PackageError::OutsideRepository { resource, path, .. }) => {
                    let i: usize = resource[1..].parse().unwrap();
                    prop_assert_eq!(&paths[i], &path);
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}

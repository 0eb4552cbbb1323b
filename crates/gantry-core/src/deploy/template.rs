//! CloudFormation and SAM templates read from YAML or JSON into one `serde_json::Value` with
//! the long forms of the intrinsic functions, and written back as the JSON `TemplateBody` of a
//! change set.
//!
//! YAML templates may use CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, …).
//! The workspace's YAML reader, `serde-saphyr`, hands a node's tag to `serde_saphyr::Tagged`,
//! so no other YAML crate is needed: every node is read as a tagged value and each tag becomes
//! its long form (`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`,
//! `!Condition C` → `{"Condition": "C"}`, any other `!Name v` → `{"Fn::Name": v}`). An
//! unknown tag is refused, as CloudFormation refuses it.
//!
//! Scalars are read as `sam package` (PyYAML) reads them, with one exception that keeps what the
//! author wrote: numbers with a leading zero (`012345678901`, an account id) stay strings.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::Tagged;
use std::fmt;

/// The most `CreateChangeSet` accepts as an inline `TemplateBody`, in bytes; a longer template
/// must be uploaded to S3 and passed as `TemplateURL` (up to 1 MB).
pub const TEMPLATE_BODY_MAX_BYTES: usize = 51_200;

/// The short-form tags CloudFormation knows that become `Fn::<name>` (`!Ref` and `!Condition`
/// are the two without the `Fn::` prefix).
const FN_TAGS: &[&str] = &[
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "GetAtt",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
];

/// Functions whose scalar argument is always a string (`!Ref 5` means the logical id `"5"`).
const STRING_ARGUMENT: &[&str] = &[
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "GetAZs",
    "ImportValue",
    "Base64",
];

/// Why a template could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text is empty or only whitespace and comments.
    #[error("the template is empty")]
    Empty,
    /// The text is not valid YAML (or not valid JSON when it starts with `{`).
    #[error("the template is not valid {format}{}: {message}", at(*line, *column))]
    Syntax {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
        /// 1-based line, when known.
        line: Option<u64>,
        /// 1-based column, when known.
        column: Option<u64>,
    },
    /// The document is not a mapping at its top level.
    #[error("the template is {found}, not a mapping of sections (Resources, Outputs, …)")]
    NotAMapping {
        /// What the document is (`a list`, `a string`, …).
        found: &'static str,
    },
    /// A tag that is not one of CloudFormation's short forms.
    #[error("unknown tag {tag} at {path}: CloudFormation knows !Ref, !Condition and !{}", FN_TAGS.join(", !"))]
    UnknownTag {
        /// The tag as written (`!Reff`).
        tag: String,
        /// Where it is, as dotted keys and list indexes (`Resources.Fn.Properties.Role`).
        path: String,
    },
    /// A short form whose argument cannot be its long form (`!GetAtt Name` without an attribute).
    #[error("{tag} at {path}: {reason}")]
    BadTag {
        /// The tag as written.
        tag: String,
        /// Where it is.
        path: String,
        /// What is wrong with its argument.
        reason: String,
    },
}

fn at(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// Reads a template: JSON when its first non-blank character is `{`, YAML otherwise (the way
/// CloudFormation itself tells them apart). The result has long-form intrinsic functions only,
/// and its top level is a mapping.
pub fn parse_template(text: &str) -> Result<Value, TemplateError> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(TemplateError::Empty);
    }
    let value = if trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => value,
            // A YAML flow mapping (`{Resources: …}`) starts with `{` too.
            Err(e) => parse_yaml(text).map_err(|_| TemplateError::Syntax {
                format: "JSON",
                message: e.to_string(),
                line: Some(e.line() as u64),
                column: Some(e.column() as u64),
            })?,
        }
    } else {
        parse_yaml(text)?
    };
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Err(TemplateError::Empty),
        other => Err(TemplateError::NotAMapping {
            found: kind(&other),
        }),
    }
}

fn parse_yaml(text: &str) -> Result<Value, TemplateError> {
    let mut options = serde_saphyr::Options::default();
    options.leading_zero_numbers_as_strings = true;
    let node = serde_saphyr::from_str_with_options::<TagNode>(text, options).map_err(|e| {
        let location = e.location();
        TemplateError::Syntax {
            format: "YAML",
            message: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .into(),
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
        }
    })?;
    long_form(node, &mut Vec::new())
}

/// The capabilities `CreateChangeSet` must be given for the template:
/// `CAPABILITY_IAM` when it creates IAM resources (SAM's functions create their roles),
/// `CAPABILITY_NAMED_IAM` when one of them is given a name, `CAPABILITY_AUTO_EXPAND` when it
/// has a `Transform`. A nested stack (`AWS::CloudFormation::Stack`,
/// `AWS::Serverless::Application`) may need any of them, so it asks for all three.
pub fn required_capabilities(template: &Value) -> Vec<&'static str> {
    const NAMES: &[&str] = &[
        "RoleName",
        "ManagedPolicyName",
        "UserName",
        "GroupName",
        "InstanceProfileName",
    ];
    let transform = template.get("Transform").is_some();
    let (mut iam, mut named, mut nested) = (transform, false, false);
    if let Some(Value::Object(resources)) = template.get("Resources") {
        for resource in resources.values() {
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            if matches!(
                kind,
                "AWS::CloudFormation::Stack" | "AWS::Serverless::Application"
            ) {
                nested = true;
            } else if kind.starts_with("AWS::IAM::") {
                iam = true;
                let props = resource.get("Properties");
                named |= NAMES.iter().any(|n| props.and_then(|p| p.get(n)).is_some());
            }
        }
    }
    let mut capabilities = Vec::new();
    if iam || named || nested {
        capabilities.push("CAPABILITY_IAM");
    }
    if named || nested {
        capabilities.push("CAPABILITY_NAMED_IAM");
    }
    if transform || nested {
        capabilities.push("CAPABILITY_AUTO_EXPAND");
    }
    capabilities
}

/// The template as the compact JSON `TemplateBody` of `CreateChangeSet` (keys in the order they
/// were read). Compare its length with [`TEMPLATE_BODY_MAX_BYTES`].
pub fn template_body(template: &Value) -> String {
    // A `Value` always serializes: its keys are strings and its numbers finite.
    serde_json::to_string(template).unwrap_or_default()
}

/// Whether the template declares the SAM transform `AWS::Serverless-2016-10-31` (as the value
/// of `Transform` or an item of its list).
pub fn is_sam(template: &Value) -> bool {
    const SAM: &str = "AWS::Serverless-2016-10-31";
    match template.get("Transform") {
        Some(Value::String(s)) => s == SAM,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(SAM)),
        _ => false,
    }
}

/// Whether the template looks like CloudFormation: it has `AWSTemplateFormatVersion` or a
/// `Resources` mapping.
pub fn is_cloudformation(template: &Value) -> bool {
    template.get("AWSTemplateFormatVersion").is_some()
        || template.get("Resources").is_some_and(Value::is_object)
}

/// The names of the template's parameters that have no `Default`: a stack cannot be created
/// without a value for each.
pub fn parameters_without_default(template: &Value) -> Vec<String> {
    let Some(Value::Object(params)) = template.get("Parameters") else {
        return Vec::new();
    };
    params
        .iter()
        .filter(|(_, p)| p.get("Default").is_none())
        .map(|(name, _)| name.clone())
        .collect()
}

/// What a JSON value is, in words.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A YAML node with the tag written on it.
struct TagNode(Raw, Option<String>);

/// A YAML node's value, its children tagged nodes.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<TagNode>),
    Map(Vec<(String, TagNode)>),
}

impl<'de> Deserialize<'de> for TagNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TagNode, D::Error> {
        let Tagged(raw, tag) = Tagged::<Raw>::deserialize(d)?;
        Ok(TagNode(raw, tag))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Uint(v))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, TagNode>()? {
            entries.push((k, v));
        }
        Ok(Raw::Map(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Raw, A::Error> {
        Err(de::Error::custom("unexpected enum"))
    }
}

/// A tagged node as JSON, its short-form tags turned into long forms. `path` is where the node
/// is, for errors.
fn long_form(node: TagNode, path: &mut Vec<String>) -> Result<Value, TemplateError> {
    let TagNode(raw, tag) = node;
    let value = match raw {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::from(i),
        Raw::Uint(u) => Value::from(u),
        Raw::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        Raw::Str(s) => Value::String(s),
        Raw::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(i.to_string());
                out.push(long_form(item, path)?);
                path.pop();
            }
            Value::Array(out)
        }
        Raw::Map(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                path.push(k.clone());
                let v = long_form(v, path)?;
                path.pop();
                out.insert(k, v);
            }
            Value::Object(out)
        }
    };
    match tag {
        None => Ok(value),
        // YAML's own tags (`!!str`, `!!int`, …) were already applied by the reader.
        Some(tag) if tag.starts_with("tag:yaml.org,2002:") => Ok(value),
        Some(tag) => intrinsic(&tag, value, path),
    }
}

/// `!Name value` as its long form.
fn intrinsic(tag: &str, value: Value, path: &[String]) -> Result<Value, TemplateError> {
    let name = tag.strip_prefix('!').unwrap_or(tag);
    let where_ = || {
        if path.is_empty() {
            "the top level".to_string()
        } else {
            path.join(".")
        }
    };
    let key = match name {
        "Ref" | "Condition" => name.to_string(),
        _ if FN_TAGS.contains(&name) => format!("Fn::{name}"),
        _ => {
            return Err(TemplateError::UnknownTag {
                tag: tag.to_string(),
                path: where_(),
            });
        }
    };
    let bad = |reason: String| TemplateError::BadTag {
        tag: tag.to_string(),
        path: where_(),
        reason,
    };
    let value = match value {
        Value::Null if name == "GetAZs" => Value::String(String::new()),
        Value::Bool(_) | Value::Number(_) if STRING_ARGUMENT.contains(&name) => {
            Value::String(value.to_string())
        }
        other => other,
    };
    let value = match (name, value) {
        ("GetAtt", Value::String(s)) => match s.split_once('.') {
            Some((resource, attribute)) if !resource.is_empty() && !attribute.is_empty() => {
                Value::Array(vec![resource.into(), attribute.into()])
            }
            _ => return Err(bad(format!("{s:?} is not of the form Resource.Attribute"))),
        },
        ("GetAtt", list @ Value::Array(_)) => list,
        ("Ref" | "Condition", name @ Value::String(_)) => name,
        ("Ref" | "Condition" | "GetAtt", other) => {
            return Err(bad(format!("expected a name, found {}", kind(&other))));
        }
        (_, Value::Null) => return Err(bad("it has no argument".into())),
        (_, other) => other,
    };
    let mut long = Map::with_capacity(1);
    long.insert(key, value);
    Ok(Value::Object(long))
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;

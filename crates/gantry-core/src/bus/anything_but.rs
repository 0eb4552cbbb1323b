//! `anything-but`: every form EventBridge and aws/event-ruler accept, checked as they check
//! it (`JsonRuleCompiler.processMatchExpression` and the `processAnythingBut…` functions),
//! and what each accepts. Forms: a string, a number, a list of only strings or only numbers,
//! and an object with one of `prefix`, `suffix`, `wildcard`, `equals-ignore-case` whose value
//! is a string or a list of strings.

use super::matcher::{Scalar, Wildcard};
use super::numeric::{comparable, describe};
use serde_json::Value;

/// `anything-but`: the field exists and its value is none of these (an event value of another
/// type than the listed ones is accepted).
#[derive(Debug, Clone, PartialEq)]
pub enum AnythingBut {
    Strs(Vec<String>),
    Nums(Vec<f64>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    Wildcards(Vec<Wildcard>),
    /// Lower-cased.
    IgnoreCase(Vec<String>),
}

impl AnythingBut {
    /// The value of an `anything-but` key. Errors name the rule broken, not the path (the
    /// caller adds it).
    pub fn parse(v: &Value) -> Result<AnythingBut, String> {
        match v {
            Value::String(s) => Ok(AnythingBut::Strs(vec![s.clone()])),
            Value::Number(_) => Ok(AnythingBut::Nums(vec![number(v)?])),
            Value::Array(items) => list(items),
            Value::Object(o) => {
                let mut entries = o.iter();
                let (Some((op, inner)), None) = (entries.next(), entries.next()) else {
                    return Err(if o.is_empty() {
                        "an `anything-but` object needs one of prefix, suffix, wildcard or equals-ignore-case".into()
                    } else {
                        "an `anything-but` object takes exactly one key".into()
                    });
                };
                set(op, inner)
            }
            other => Err(format!(
                "`anything-but` takes a string, a number, a list of them or an object, found {}",
                describe(other)
            )),
        }
    }

    /// Whether one event value is accepted.
    pub fn accepts(&self, v: &Scalar<'_>) -> bool {
        let Scalar::Str(e) = v else {
            return match (self, v) {
                (AnythingBut::Nums(list), Scalar::Num(e)) => !list.contains(e),
                // A number, boolean or null is none of the listed strings.
                _ => true,
            };
        };
        match self {
            AnythingBut::Strs(list) => !list.iter().any(|s| s == e),
            AnythingBut::Nums(_) => true,
            AnythingBut::Prefixes(list) => !list.iter().any(|p| e.starts_with(p.as_str())),
            AnythingBut::Suffixes(list) => !list.iter().any(|p| e.ends_with(p.as_str())),
            AnythingBut::Wildcards(list) => !list.iter().any(|w| w.matches(e)),
            AnythingBut::IgnoreCase(list) => {
                let e = e.to_lowercase();
                !list.contains(&e)
            }
        }
    }
}

fn number(v: &Value) -> Result<f64, String> {
    comparable(v).map_err(|e| format!("`anything-but`: {e}"))
}

/// `["a", "b"]` or `[1, 2]`: event-ruler's `processAnythingButListMatchExpression`.
fn list(items: &[Value]) -> Result<AnythingBut, String> {
    if items.is_empty() {
        return Err("`anything-but` cannot be an empty list".into());
    }
    if let Some(v) = items
        .iter()
        .find(|v| !matches!(v, Value::String(_) | Value::Number(_)))
    {
        return Err(format!(
            "an `anything-but` list takes only strings or only numbers, found {}",
            describe(v)
        ));
    }
    if items.iter().all(Value::is_string) {
        return Ok(AnythingBut::Strs(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ));
    }
    if items.iter().all(Value::is_number) {
        return Ok(AnythingBut::Nums(
            items.iter().map(number).collect::<Result<_, _>>()?,
        ));
    }
    Err("an `anything-but` list takes only strings or only numbers, not both".into())
}

/// `{"prefix": …}`, `{"suffix": …}`, `{"wildcard": …}`, `{"equals-ignore-case": …}`, each with
/// a string or a list of strings: event-ruler's `processAnythingButValuesSet…`.
fn set(op: &str, inner: &Value) -> Result<AnythingBut, String> {
    if !matches!(op, "prefix" | "suffix" | "wildcard" | "equals-ignore-case") {
        return Err(format!(
            "`anything-but` does not take `{op}`; expected prefix, suffix, wildcard or equals-ignore-case"
        ));
    }
    let values: Vec<&Value> = match inner {
        Value::Array(items) => items.iter().collect(),
        Value::String(_) => vec![inner],
        other => {
            return Err(format!(
                "`anything-but` `{op}` takes a string or a list of strings, found {}",
                describe(other)
            ));
        }
    };
    let mut strings = Vec::with_capacity(values.len());
    for v in values {
        let Value::String(s) = v else {
            return Err(format!(
                "`anything-but` `{op}` takes only strings, found {}",
                describe(v)
            ));
        };
        if s.is_empty() && matches!(op, "prefix" | "suffix") {
            return Err(format!("`anything-but` `{op}` cannot be an empty string"));
        }
        strings.push(s.as_str());
    }
    let owned = || strings.iter().map(|s| s.to_string()).collect();
    Ok(match op {
        "prefix" => AnythingBut::Prefixes(owned()),
        "suffix" => AnythingBut::Suffixes(owned()),
        "equals-ignore-case" => {
            AnythingBut::IgnoreCase(strings.iter().map(|s| s.to_lowercase()).collect())
        }
        _ => AnythingBut::Wildcards(
            strings
                .iter()
                .map(|s| Wildcard::parse(s))
                .collect::<Result<_, _>>()?,
        ),
    })
}

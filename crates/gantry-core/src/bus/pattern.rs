//! EventBridge event patterns: parsed and checked once (every reason EventBridge would give for
//! rejecting one), then held as a disjunction of conjunctions — `$or` expanded — of (field
//! path, accepted values). Matching follows EventBridge and aws/event-ruler: a field matches
//! when any of its values accepts any of the event's values at that path; fields of one
//! object inside an array must be matched in the same element.

use super::event::{Flat, Leaf, compatible};
use super::matcher::{AnythingBut, Cidr, Matcher, Range, Wildcard};
use serde_json::{Map, Value};

/// The most conjunctions `$or` may expand into.
pub const MAX_BRANCHES: usize = 1024;
/// The longest pattern text accepted.
pub const MAX_PATTERN_BYTES: usize = 64 * 1024;

/// One field's condition: a dotted path and the values it accepts (any of them).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldTest {
    pub path: String,
    pub any: Vec<Matcher>,
}

/// A compiled pattern: matches when every field of any one branch matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub branches: Vec<Vec<FieldTest>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event pattern: {0}")]
pub struct PatternError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(msg.into()))
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.len() > MAX_PATTERN_BYTES {
            return err(format!(
                "the pattern is {} bytes; the limit is {MAX_PATTERN_BYTES}",
                text.len()
            ));
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| PatternError(format!("not JSON: {e}")))?;
        Pattern::from_json(&v)
    }

    pub fn from_json(v: &Value) -> Result<Pattern, PatternError> {
        let Value::Object(obj) = v else {
            return err("a pattern must be a JSON object");
        };
        let branches = object(obj, "", false)?;
        Ok(Pattern { branches })
    }

    /// Every field path the pattern looks at.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.branches.iter().flatten().map(|f| f.path.as_str())
    }

    pub fn matches_json(&self, event: &Value) -> bool {
        self.matches(&Flat::of(event))
    }

    pub fn matches(&self, event: &Flat<'_>) -> bool {
        self.branches.iter().any(|b| branch_matches(b, event))
    }
}

/// Keys that cannot name a field anywhere inside `$or`: aws/event-ruler's
/// `Constants.RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP` (the operators, the numeric comparison
/// signs, and names it keeps for future operators).
pub const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// The branches of an object at `prefix`: each key adds a condition to every branch; `$or`
/// multiplies them. `in_or`: the object is (inside) an alternative of `$or`.
fn object(
    obj: &Map<String, Value>,
    prefix: &str,
    in_or: bool,
) -> Result<Vec<Vec<FieldTest>>, PatternError> {
    if obj.is_empty() {
        return err("empty objects are not allowed");
    }
    let mut branches: Vec<Vec<FieldTest>> = vec![Vec::new()];
    for (key, value) in obj {
        if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
            let at = if prefix.is_empty() {
                String::new()
            } else {
                format!("`{prefix}`: ")
            };
            return err(format!(
                "{at}`{key}` is a reserved keyword and cannot be used as a field name inside `$or`"
            ));
        }
        let alternatives: Vec<Vec<FieldTest>> = if key == "$or" {
            let Value::Array(items) = value else {
                return err("`$or` must be an array of patterns");
            };
            if items.len() < 2 {
                return err("`$or` needs at least 2 patterns");
            }
            let mut alts = Vec::new();
            for item in items {
                let Value::Object(o) = item else {
                    return err("each item of `$or` must be an object");
                };
                alts.extend(object(o, prefix, true)?);
            }
            alts
        } else {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Value::Object(o) => object(o, &path, in_or)?,
                Value::Array(items) => vec![vec![FieldTest {
                    any: leaf_values(&path, items)?,
                    path,
                }]],
                other => {
                    return err(format!(
                        "`{path}` must be an object or an array, found {}",
                        kind(other)
                    ));
                }
            }
        };
        let mut next = Vec::with_capacity(branches.len() * alternatives.len());
        for b in &branches {
            for alt in &alternatives {
                let mut joined = b.clone();
                for field in alt {
                    // A path given again replaces the earlier condition, as event-ruler's
                    // `writeRules` puts it over the one before.
                    match joined.iter_mut().find(|f| f.path == field.path) {
                        Some(earlier) => *earlier = field.clone(),
                        None => joined.push(field.clone()),
                    }
                }
                next.push(joined);
            }
        }
        if next.len() > MAX_BRANCHES {
            return err(format!(
                "the pattern is too complex: `$or` expands into more than {MAX_BRANCHES} combinations"
            ));
        }
        branches = next;
    }
    Ok(branches)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn leaf_values(path: &str, items: &[Value]) -> Result<Vec<Matcher>, PatternError> {
    if items.is_empty() {
        return err(format!("`{path}`: empty arrays are not allowed"));
    }
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(Matcher::Str(s.clone())),
            Value::Number(n) => Ok(Matcher::Num(n.as_f64().unwrap_or(f64::NAN))),
            Value::Bool(b) => Ok(Matcher::Bool(*b)),
            Value::Null => Ok(Matcher::Null),
            Value::Object(o) => operator(path, o),
            Value::Array(_) => err(format!(
                "`{path}`: a value must be a string, number, boolean, null or an operator object, not an array"
            )),
        })
        .collect()
}

fn string_of<'v>(path: &str, op: &str, v: &'v Value) -> Result<&'v str, PatternError> {
    v.as_str().ok_or_else(|| {
        PatternError(format!(
            "`{path}`: `{op}` must be given a string, found {}",
            kind(v)
        ))
    })
}

/// `{"equals-ignore-case": "x"}` inside `prefix` / `suffix`, or a plain string.
fn maybe_ignore_case<'v>(
    path: &str,
    op: &str,
    v: &'v Value,
) -> Result<(&'v str, bool), PatternError> {
    if let Value::Object(o) = v {
        match (o.len(), o.get("equals-ignore-case")) {
            (1, Some(s)) => Ok((string_of(path, "equals-ignore-case", s)?, true)),
            _ => err(format!(
                "`{path}`: `{op}` takes a string or {{\"equals-ignore-case\": string}}"
            )),
        }
    } else {
        Ok((string_of(path, op, v)?, false))
    }
}

fn operator(path: &str, o: &Map<String, Value>) -> Result<Matcher, PatternError> {
    let mut entries = o.iter();
    let (Some((op, v)), None) = (entries.next(), entries.next()) else {
        return err(format!(
            "`{path}`: an operator object must have exactly one key"
        ));
    };
    let bad = |why: String| PatternError(format!("`{path}`: {why}"));
    Ok(match op.as_str() {
        "prefix" => match maybe_ignore_case(path, op, v)? {
            (s, false) => Matcher::Prefix(s.to_string()),
            (s, true) => Matcher::PrefixIgnoreCase(s.to_lowercase()),
        },
        "suffix" => match maybe_ignore_case(path, op, v)? {
            (s, false) => Matcher::Suffix(s.to_string()),
            (s, true) => Matcher::SuffixIgnoreCase(s.to_lowercase()),
        },
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(string_of(path, op, v)?.to_lowercase()),
        "wildcard" => Matcher::Wildcard(Wildcard::parse(string_of(path, op, v)?).map_err(bad)?),
        "numeric" => {
            let Value::Array(items) = v else {
                return err(format!(
                    "`{path}`: `numeric` takes an array like [\">\", 0, \"<=\", 5]"
                ));
            };
            Matcher::Numeric(Range::parse(items).map_err(bad)?)
        }
        "exists" => match v {
            Value::Bool(b) => Matcher::Exists(*b),
            other => {
                return err(format!(
                    "`{path}`: `exists` must be true or false, found {}",
                    kind(other)
                ));
            }
        },
        "cidr" => Matcher::Cidr(Cidr::parse(string_of(path, op, v)?).map_err(bad)?),
        "anything-but" => Matcher::AnythingBut(AnythingBut::parse(v).map_err(bad)?),
        other => {
            return err(format!(
                "`{path}`: unknown operator `{other}`; expected one of: prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr"
            ));
        }
    })
}

/// Whether every field of `branch` matches, with leaves chosen consistently across arrays.
pub fn branch_matches(branch: &[FieldTest], event: &Flat<'_>) -> bool {
    let mut candidates: Vec<Vec<&Leaf<'_>>> = Vec::with_capacity(branch.len());
    for field in branch {
        let leaves = event.leaves(&field.path);
        if leaves.is_empty() {
            // Only `exists: false` accepts a missing field.
            if field.any.contains(&Matcher::Exists(false)) {
                continue;
            }
            return false;
        }
        let ok: Vec<&Leaf<'_>> = leaves
            .iter()
            .filter(|l| field.any.iter().any(|m| m.accepts(&l.value)))
            .collect();
        if ok.is_empty() {
            return false;
        }
        candidates.push(ok);
    }
    if candidates
        .iter()
        .all(|c| c.iter().all(|l| l.trail.is_empty()))
    {
        return true;
    }
    consistent(&candidates, &mut Vec::new())
}

/// Backtracking choice of one leaf per field with pairwise compatible array trails.
fn consistent<'l>(candidates: &[Vec<&'l Leaf<'l>>], chosen: &mut Vec<&'l Leaf<'l>>) -> bool {
    let Some((first, rest)) = candidates.split_first() else {
        return true;
    };
    for leaf in first {
        if chosen.iter().all(|c| compatible(&c.trail, &leaf.trail)) {
            chosen.push(leaf);
            if consistent(rest, chosen) {
                return true;
            }
            chosen.pop();
        }
    }
    false
}

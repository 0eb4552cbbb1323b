//! A document tree that remembers where each value came from (line and column for YAML), so
//! that spec validation can point at the exact place of every problem. JSON and YAML both load
//! into it; everything after loading is format-agnostic.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Option<Pos>,
}

/// The document could not be parsed at all (as opposed to parsed but invalid).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Option<Pos>,
    /// It was refused for its size (too many values), not for its syntax.
    pub too_large: bool,
}

impl SyntaxError {
    fn too_many_values(max: usize, pos: Option<Pos>) -> SyntaxError {
        SyntaxError {
            message: too_many_values(max),
            pos,
            too_large: true,
        }
    }
}

fn too_many_values(max: usize) -> String {
    format!(
        "the spec has more than {max} values (mappings, lists and scalars, keys included), the limit"
    )
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Scalars as text (numbers and booleans included), for places that take any scalar.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Converts to plain JSON (positions dropped), for values Gantry stores but does not
    /// interpret here (e.g. a pipeline's `on:`).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    pub fn from_json(value: &serde_json::Value) -> Node {
        let value = match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Seq(items.iter().map(Node::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                name: k.clone(),
                                pos: None,
                            },
                            Node::from_json(v),
                        )
                    })
                    .collect(),
            ),
        };
        Node { value, pos: None }
    }
}

/// Parses YAML (1.2) into a positioned tree of at most `max_values` values, aliases expanded
/// (the reader's budget counts what they expand to).
pub fn parse_yaml(text: &str, max_values: usize) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() {
        return Err(SyntaxError {
            message: "the document is empty".into(),
            pos: None,
            too_large: false,
        });
    }
    let mut options = serde_saphyr::Options::default();
    // Repeated keys reach the tree so validation can report each one with its position.
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::PassThrough;
    // YAML 1.2 core schema: `on`, `y`, `no` stay strings (a pipeline's `on:` key is not `true`).
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = max_values;
    options.budget = Some(budget);
    match serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options) {
        Ok(spanned) => Ok(attach(spanned)),
        Err(err) => {
            let pos = err.location().map(|l| Pos {
                line: l.line() as u32,
                column: l.column() as u32,
            });
            // The breach itself, under what wraps it (a snippet, the aliases it came through).
            let mut inner = &err;
            while let serde_saphyr::Error::AliasError { error, .. }
            | serde_saphyr::Error::WithSnippet { error, .. } = inner
            {
                inner = error;
            }
            if let serde_saphyr::Error::Budget { breach, .. } = inner {
                if matches!(breach, serde_saphyr::budget::BudgetBreach::Nodes { .. }) {
                    return Err(SyntaxError::too_many_values(max_values, pos));
                }
                return Err(SyntaxError {
                    message: format!(
                        "the spec is beyond what the YAML reader accepts ({})",
                        budget_breach(breach)
                    ),
                    pos,
                    too_large: true,
                });
            }
            // The crate's Display renders a snippet; the first line is the message itself.
            let message = err
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .to_string();
            Err(SyntaxError {
                message,
                pos,
                too_large: false,
            })
        }
    }
}

/// A budget breach in words (the reader's own rendering is its `Debug`).
fn budget_breach(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => "nested too deeply".into(),
        B::Aliases { .. } | B::Anchors { .. } => "too many aliases or anchors".into(),
        other => format!("{other:?}"),
    }
}

/// Parses JSON into a tree of at most `max_values` values (positions only in the syntax
/// error), straight into nodes.
pub fn parse_json(text: &str, max_values: usize) -> Result<Node, SyntaxError> {
    SCRATCH.with_borrow_mut(|s| {
        s.values = 0;
        s.max_values = max_values;
    });
    let parsed = serde_json::from_str::<PlainNode>(text);
    // Empty after success; what a failed parse left is dropped, and the space given back.
    let over = SCRATCH.with_borrow_mut(|s| std::mem::take(s).values > max_values);
    match parsed {
        Ok(v) => Ok(v.0),
        Err(err) => {
            let pos = Some(Pos {
                line: err.line() as u32,
                column: err.column() as u32,
            });
            if over {
                return Err(SyntaxError::too_many_values(max_values, pos));
            }
            Err(SyntaxError {
                message: format!("invalid JSON: {}", strip_json_position(&err.to_string())),
                pos,
                too_large: false,
            })
        }
    }
}

/// Counts one more value of the JSON being read; an error once there are too many.
fn count_value<E: de::Error>() -> Result<(), E> {
    SCRATCH.with_borrow_mut(|s| {
        s.values += 1;
        if s.values > s.max_values {
            Err(E::custom(too_many_values(s.max_values)))
        } else {
            Ok(())
        }
    })
}

fn strip_json_position(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

fn attach(spanned: Spanned<Node>) -> Node {
    let mut node = spanned.value;
    let (line, column) = (spanned.referenced.line(), spanned.referenced.column());
    if line > 0 {
        node.pos = Some(Pos {
            line: line as u32,
            column: column as u32,
        });
    }
    node
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

fn leaf(value: Value) -> Node {
    Node { value, pos: None }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(leaf(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(leaf(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(leaf(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(leaf(Value::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(leaf(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(leaf(Value::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(leaf(Value::Str(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(leaf(Value::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(attach(item));
        }
        Ok(leaf(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let line = key.referenced.line();
            let pos = (line > 0).then(|| Pos {
                line: line as u32,
                column: key.referenced.column() as u32,
            });
            let value = attach(map.next_value::<Spanned<Node>>()?);
            entries.push((
                Key {
                    name: key.value.0,
                    pos,
                },
                value,
            ));
        }
        Ok(leaf(Value::Map(entries)))
    }
}

/// A node deserialized without positions (from JSON), element by element.
struct PlainNode(Node);

impl<'de> Deserialize<'de> for PlainNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PlainVisitor).map(PlainNode)
    }
}

struct PlainVisitor;

impl<'de> Visitor<'de> for PlainVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        count_value()?;
        NodeVisitor.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        count_value()?;
        NodeVisitor.visit_bool(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        count_value()?;
        NodeVisitor.visit_i64(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        count_value()?;
        NodeVisitor.visit_u64(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        count_value()?;
        NodeVisitor.visit_f64(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        count_value()?;
        NodeVisitor.visit_str(v)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        count_value()?;
        NodeVisitor.visit_string(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        count_value()?;
        let start = SCRATCH.with_borrow(|s| s.items.len());
        while let Some(PlainNode(item)) = seq.next_element()? {
            SCRATCH.with_borrow_mut(|s| s.items.push(item));
        }
        let items = SCRATCH.with_borrow_mut(|s| s.items.drain(start..).collect());
        Ok(leaf(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        count_value()?;
        let start = SCRATCH.with_borrow(|s| s.entries.len());
        while let Some(name) = map.next_key::<String>()? {
            count_value()?; // the key
            let PlainNode(value) = map.next_value()?;
            SCRATCH.with_borrow_mut(|s| s.entries.push((Key { name, pos: None }, value)));
        }
        let entries = SCRATCH.with_borrow_mut(|s| s.entries.drain(start..).collect());
        Ok(leaf(Value::Map(entries)))
    }
}

/// Where a JSON list's or mapping's items gather until it ends (JSON gives no count up
/// front): each is then moved into a vector of exactly its length, instead of one grown by
/// doubling. A 1000-job spec's tree takes a third less memory, and no regrowth copies.
/// The values read so far are counted here too, against the limit the parse was given.
#[derive(Default)]
struct Scratch {
    items: Vec<Node>,
    entries: Vec<(Key, Node)>,
    values: usize,
    max_values: usize,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// A mapping key: any scalar, kept as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_positions_point_at_values_and_keys() {
        let doc = parse_yaml("name: x\njobs:\n  a:\n    run: [\"true\"]\n", 100).unwrap();
        let Value::Map(top) = &doc.value else {
            panic!("{doc:?}")
        };
        assert_eq!(top[1].0.name, "jobs");
        assert_eq!(top[1].0.pos, Some(Pos { line: 2, column: 1 }));
        let Value::Map(jobs) = &top[1].1.value else {
            panic!()
        };
        assert_eq!(jobs[0].0.pos, Some(Pos { line: 3, column: 3 }));
        let Value::Map(job) = &jobs[0].1.value else {
            panic!()
        };
        let Value::Seq(cmds) = &job[0].1.value else {
            panic!()
        };
        assert_eq!(cmds[0].as_str(), Some("true"));
        assert_eq!(cmds[0].pos.map(|p| p.line), Some(4));
    }

    #[test]
    fn yaml_syntax_error_has_a_position() {
        let err = parse_yaml("jobs:\n  a: [1, 2\n", 100).unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
    }

    #[test]
    fn json_loads_without_positions() {
        let doc = parse_json(r#"{"a": [1, "x", null, true, 1.5]}"#, 100).unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"a": [1, "x", null, true, 1.5]})
        );
        let err = parse_json("{\"a\": }", 100).unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(1));
        assert!(err.message.starts_with("invalid JSON"), "{}", err.message);
    }
}

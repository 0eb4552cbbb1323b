//! An event as the matcher sees it: its leaves, each with its dotted path (`detail.state`),
//! its scalar value and its array trail — which element of which array it sits in — so that
//! fields of one object inside an array are matched together (array consistency).

use super::matcher::Scalar;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Which element of which array a leaf is in, outermost first: (array id, index).
pub type Trail = Vec<(u32, u32)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Leaf<'a> {
    pub value: Scalar<'a>,
    pub trail: Trail,
}

/// Leaves by path.
#[derive(Debug, Default)]
pub struct Flat<'a> {
    pub by_path: HashMap<String, Vec<Leaf<'a>>>,
}

impl<'a> Flat<'a> {
    /// Flattens a JSON event (an object; anything else has no fields).
    pub fn of(event: &'a Value) -> Flat<'a> {
        let mut flat = Flat::default();
        let mut next_array = 0u32;
        if let Value::Object(map) = event {
            for (k, v) in map {
                flat.walk(k.clone(), v, &mut Vec::new(), &mut next_array);
            }
        }
        flat
    }

    /// Flattens only the fields under `wanted` paths (and their prefixes): the rest of the
    /// event is skipped.
    pub fn of_wanted(event: &'a Value, wanted: &dyn Fn(&str) -> bool) -> Flat<'a> {
        let mut flat = Flat::default();
        let mut next_array = 0u32;
        if let Value::Object(map) = event {
            for (k, v) in map {
                if wanted(k) {
                    flat.walk_wanted(k.clone(), v, &mut Vec::new(), &mut next_array, wanted);
                }
            }
        }
        flat
    }

    fn walk(&mut self, path: String, v: &'a Value, trail: &mut Trail, next_array: &mut u32) {
        self.walk_wanted(path, v, trail, next_array, &|_| true)
    }

    fn walk_wanted(
        &mut self,
        path: String,
        v: &'a Value,
        trail: &mut Trail,
        next_array: &mut u32,
        wanted: &dyn Fn(&str) -> bool,
    ) {
        let leaf = |value| Leaf {
            value,
            trail: trail.clone(),
        };
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let p = format!("{path}.{k}");
                    if wanted(&p) {
                        self.walk_wanted(p, child, trail, next_array, wanted);
                    }
                }
            }
            Value::Array(items) => {
                let id = *next_array;
                *next_array += 1;
                for (i, item) in items.iter().enumerate() {
                    trail.push((id, i as u32));
                    self.walk_wanted(path.clone(), item, trail, next_array, wanted);
                    trail.pop();
                }
            }
            Value::String(s) => {
                let l = leaf(Scalar::Str(Cow::Borrowed(s.as_str())));
                self.by_path.entry(path).or_default().push(l);
            }
            Value::Number(n) => {
                let l = leaf(Scalar::Num(n.as_f64().unwrap_or(f64::NAN)));
                self.by_path.entry(path).or_default().push(l);
            }
            Value::Bool(b) => {
                let l = leaf(Scalar::Bool(*b));
                self.by_path.entry(path).or_default().push(l);
            }
            Value::Null => {
                let l = leaf(Scalar::Null);
                self.by_path.entry(path).or_default().push(l);
            }
        }
    }

    pub fn leaves(&self, path: &str) -> &[Leaf<'a>] {
        self.by_path.get(path).map_or(&[], Vec::as_slice)
    }
}

/// Two leaves can be matched together unless they sit in different elements of one array.
pub fn compatible(a: &Trail, b: &Trail) -> bool {
    a.iter()
        .all(|(id, i)| b.iter().all(|(id2, j)| id != id2 || i == j))
}

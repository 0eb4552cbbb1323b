//! Many patterns matched together. Compiled once: every field path any pattern mentions gets
//! an id and a place in one [`PathTrie`]; exact values are indexed by (path, value). Per
//! event, the scanner extracts only those paths from the raw bytes, each extracted value
//! marks the field tests it satisfies, and a pattern matches when every test of one of its
//! branches is marked. Ignoring arrays this is exact; when a candidate's values came from
//! inside arrays, array consistency is checked on the extracted values before it counts.

use super::event::{Flat, Leaf};
use super::matcher::{Matcher, Range, Scalar};
use super::pattern::{Pattern, branch_matches};
use super::scan::{Found, PathTrie, ScanError};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct RuleSet {
    patterns: Vec<Pattern>,
    trie: PathTrie,
    paths: Vec<String>,
    /// Field tests: (path id, the matchers other than exact strings/numbers, whether a
    /// missing field satisfies it).
    tests: Vec<Test>,
    /// Per path id: exact string → tests it satisfies.
    exact_str: Vec<HashMap<String, Vec<u32>, FastHash>>,
    /// Path id → (test, matcher) pairs that must be evaluated, numeric ranges apart (they
    /// are the common case for numbers and are checked in a tight loop).
    by_path: Vec<Vec<(u32, Matcher)>>,
    ranges_by_path: Vec<Vec<(u32, Range)>>,
    /// Every branch, numbered: its (pattern, branch) and its test ids
    /// (`branch_tests[branch_start[b]..branch_start[b + 1]]`).
    branch_of: Vec<(u32, u32)>,
    branch_start: Vec<u32>,
    branch_tests: Vec<u32>,
    /// Tests a missing field satisfies (`exists: false`).
    absent_ok: Vec<u32>,
    /// Per test: the numbered branches it anchors.
    test_branches: Vec<Vec<u32>>,
}

/// The exact-value index is keyed by short strings, where SipHash's setup dominates: an
/// FNV-style hash taken a word at a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastHash;

#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::BuildHasher for FastHash {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf29ce484222325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0 ^ w).wrapping_mul(0x100000001b3).rotate_left(29);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        let w = u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 59);
        self.0 = (self.0 ^ w).wrapping_mul(0x100000001b3).rotate_left(29);
    }
    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0 ^ b as u64).wrapping_mul(0x100000001b3);
    }
}

#[derive(Debug, Clone)]
struct Test {
    path: u32,
    /// Every matcher is served by the exact index.
    exact_only: bool,
    absent_ok: bool,
}

/// Reusable per-thread buffers.
#[derive(Debug, Default)]
pub struct Scratch<'a> {
    found: Vec<Found<'a>>,
    complete: Vec<bool>,
    marked: Vec<bool>,
    seen: Vec<bool>,
    arrayed: Vec<bool>,
    hits: Vec<u32>,
    candidates: Vec<u32>,
}

impl RuleSet {
    pub fn new(patterns: Vec<Pattern>) -> RuleSet {
        let mut path_ids: HashMap<String, u32> = HashMap::new();
        let mut dedup: HashMap<(u32, String), u32> = HashMap::new();
        let mut set = RuleSet {
            patterns: Vec::new(),
            trie: PathTrie::new(),
            paths: Vec::new(),
            tests: Vec::new(),
            exact_str: Vec::new(),
            by_path: Vec::new(),
            ranges_by_path: Vec::new(),
            branch_of: Vec::new(),
            branch_start: vec![0],
            branch_tests: Vec::new(),
            absent_ok: Vec::new(),
            test_branches: Vec::new(),
        };
        let mut branches_of_patterns: Vec<Vec<Vec<u32>>> = Vec::new();
        for p in &patterns {
            let mut branches = Vec::new();
            for b in &p.branches {
                let mut ids = Vec::new();
                for f in b {
                    let path = *path_ids.entry(f.path.clone()).or_insert_with(|| {
                        let id = set.paths.len() as u32;
                        set.paths.push(f.path.clone());
                        set.trie.insert(&f.path, id);
                        set.by_path.push(Vec::new());
                        set.ranges_by_path.push(Vec::new());
                        set.exact_str.push(HashMap::default());
                        id
                    });
                    // Identical tests (same path, same values) are evaluated once per event.
                    let key = (path, format!("{:?}", f.any));
                    if let Some(t) = dedup.get(&key) {
                        ids.push(*t);
                        continue;
                    }
                    let test = set.tests.len() as u32;
                    dedup.insert(key, test);
                    let mut exact_only = true;
                    for m in &f.any {
                        match m {
                            Matcher::Str(s) => set.exact_str[path as usize]
                                .entry(s.clone())
                                .or_default()
                                .push(test),
                            Matcher::Numeric(r) => {
                                exact_only = false;
                                set.ranges_by_path[path as usize].push((test, *r));
                            }
                            other => {
                                exact_only = false;
                                set.by_path[path as usize].push((test, other.clone()));
                            }
                        }
                    }
                    set.tests.push(Test {
                        path,
                        absent_ok: f.any.contains(&Matcher::Exists(false)),
                        exact_only,
                    });
                    ids.push(test);
                }
                branches.push(ids);
            }
            branches_of_patterns.push(branches);
        }
        for (pi, branches) in branches_of_patterns.iter().enumerate() {
            for (bi, tests) in branches.iter().enumerate() {
                let b = set.branch_of.len() as u32;
                set.branch_of.push((pi as u32, bi as u32));
                set.branch_tests.extend(tests);
                set.branch_start.push(set.branch_tests.len() as u32);
                // The branch is looked at only when its anchor is marked: an exact-value test
                // if it has one (the most selective kind), else its first test.
                let anchor = tests
                    .iter()
                    .copied()
                    .find(|t| {
                        let t = &set.tests[*t as usize];
                        t.exact_only && !t.absent_ok
                    })
                    .unwrap_or(tests[0]);
                if set.test_branches.len() <= anchor as usize {
                    set.test_branches.resize(anchor as usize + 1, Vec::new());
                }
                set.test_branches[anchor as usize].push(b);
            }
        }
        set.test_branches.resize(set.tests.len(), Vec::new());
        set.absent_ok = (0..set.tests.len() as u32)
            .filter(|t| set.tests[*t as usize].absent_ok)
            .collect();
        set.patterns = patterns;
        set
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Indices of the patterns `event` (raw JSON bytes of an object) matches, in order.
    pub fn matches<'a>(
        &self,
        event: &'a [u8],
        scratch: &mut Scratch<'a>,
        out: &mut Vec<usize>,
    ) -> Result<(), ScanError> {
        out.clear();
        scratch.found.clear();
        self.trie
            .scan(event, &mut scratch.found, &mut scratch.complete)?;
        let marked = &mut scratch.marked;
        marked.clear();
        marked.resize(self.tests.len(), false);
        scratch.seen.clear();
        scratch.seen.resize(self.paths.len(), false);
        scratch.arrayed.clear();
        scratch.arrayed.resize(self.paths.len(), false);
        let hits = &mut scratch.hits;
        hits.clear();
        let mut mark = |t: u32, marked: &mut Vec<bool>| {
            if !marked[t as usize] {
                marked[t as usize] = true;
                hits.push(t);
            }
        };
        for f in &scratch.found {
            let p = f.path_id as usize;
            scratch.seen[p] = true;
            if !f.trail.is_empty() {
                scratch.arrayed[p] = true;
            }
            if let Scalar::Str(s) = &f.value
                && let Some(tests) = self.exact_str[p].get(s.as_ref())
            {
                for t in tests {
                    mark(*t, marked);
                }
            }
            if let Scalar::Num(x) = f.value {
                for (t, r) in &self.ranges_by_path[p] {
                    if r.contains(x) {
                        mark(*t, marked);
                    }
                }
            }
            for (t, m) in &self.by_path[p] {
                if !marked[*t as usize] && m.accepts(&f.value) {
                    mark(*t, marked);
                }
            }
        }
        for t in &self.absent_ok {
            if !scratch.seen[self.tests[*t as usize].path as usize] {
                mark(*t, marked);
            }
        }
        // A branch matches when all its tests are marked; only branches whose anchor test
        // is marked are looked at.
        let candidates = &mut scratch.candidates;
        candidates.clear();
        for t in hits.iter() {
            for b in &self.test_branches[*t as usize] {
                if self.tests_of(*b).iter().all(|t| marked[*t as usize]) {
                    candidates.push(*b);
                }
            }
        }
        let any_arrayed = scratch.arrayed.iter().any(|a| *a);
        let mut flat: Option<Flat<'_>> = None;
        for b in candidates.iter() {
            let (pi, bi) = self.branch_of[*b as usize];
            if out.last() == Some(&(pi as usize)) || out.contains(&(pi as usize)) {
                continue;
            }
            let tests = self.tests_of(*b);
            let ok = !any_arrayed
                || !tests
                    .iter()
                    .any(|t| scratch.arrayed[self.tests[*t as usize].path as usize])
                || {
                    // Values from inside arrays: check array consistency exactly.
                    let flat = flat.get_or_insert_with(|| self.flat_of(&scratch.found));
                    branch_matches(&self.patterns[pi as usize].branches[bi as usize], flat)
                };
            if ok {
                out.push(pi as usize);
            }
        }
        out.sort_unstable();
        Ok(())
    }

    fn tests_of(&self, branch: u32) -> &[u32] {
        let b = branch as usize;
        &self.branch_tests[self.branch_start[b] as usize..self.branch_start[b + 1] as usize]
    }

    fn flat_of<'a>(&self, found: &[Found<'a>]) -> Flat<'a> {
        let mut flat = Flat::default();
        for f in found {
            flat.by_path
                .entry(self.paths[f.path_id as usize].clone())
                .or_default()
                .push(Leaf {
                    value: f.value.clone(),
                    trail: f.trail.clone(),
                });
        }
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop_oneof![Just("a"), Just("ab"), Just("b"), Just("B")].prop_map(Value::from),
            (-2i64..3).prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn event() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            3 => field_value(),
            1 => prop::collection::vec(field_value(), 0..3).prop_map(Value::from),
            1 => prop::collection::vec((field_value(), field_value()), 0..3).prop_map(|v| {
                Value::from(v.into_iter().map(|(x, y)| json!({"x": x, "y": y})).collect::<Vec<_>>())
            }),
        ];
        prop::collection::vec((prop_oneof![Just("p"), Just("q"), Just("r")], leaf), 0..4).prop_map(
            |kv| {
                let mut detail = serde_json::Map::new();
                for (k, v) in kv {
                    detail.insert(k.to_string(), v);
                }
                json!({"source": "s", "detail": detail})
            },
        )
    }

    fn matcher() -> impl Strategy<Value = Value> {
        prop_oneof![
            field_value(),
            Just(json!({"prefix": "a"})),
            Just(json!({"equals-ignore-case": "b"})),
            Just(json!({"anything-but": "a"})),
            Just(json!({"numeric": [">", 0]})),
            Just(json!({"exists": true})),
            Just(json!({"exists": false})),
            Just(json!({"wildcard": "*b"})),
        ]
    }

    fn pattern() -> impl Strategy<Value = Value> {
        let path = prop_oneof![Just("p"), Just("q"), Just("r"), Just("p.x"), Just("p.y")];
        let field = (path, prop::collection::vec(matcher(), 1..3));
        prop::collection::vec(field, 1..3).prop_flat_map(|fields| {
            (Just(fields), any::<bool>()).prop_map(|(fields, or)| {
                let mut obj = serde_json::Map::new();
                for (p, m) in &fields {
                    let (head, tail) = p.split_once('.').unwrap_or((p, ""));
                    let entry = if tail.is_empty() {
                        json!(m)
                    } else {
                        json!({tail: m})
                    };
                    match obj.get_mut(head) {
                        Some(Value::Object(o)) if !tail.is_empty() => {
                            o.insert(tail.to_string(), json!(m));
                        }
                        _ => {
                            obj.insert(head.to_string(), entry);
                        }
                    }
                }
                if or && obj.len() >= 2 {
                    let alts: Vec<Value> = obj.iter().map(|(k, v)| json!({k: v})).collect();
                    json!({"detail": {"$or": alts}})
                } else {
                    json!({"detail": Value::Object(obj)})
                }
            })
        })
    }

    proptest! {
        /// The combined matcher agrees with each pattern matched alone.
        #[test]
        fn agrees_with_patterns_one_by_one(
            patterns in prop::collection::vec(pattern(), 1..6),
            events in prop::collection::vec(event(), 1..6),
        ) {
            let compiled: Vec<Pattern> = patterns.iter().filter_map(|p| Pattern::from_json(p).ok()).collect();
            let set = RuleSet::new(compiled.clone());
            for ev in &events {
                let bytes = serde_json::to_vec(ev).unwrap();
                let mut scratch = Scratch::default();
                let mut got = Vec::new();
                set.matches(&bytes, &mut scratch, &mut got).unwrap();
                let want: Vec<usize> = compiled.iter().enumerate()
                    .filter(|(_, p)| p.matches_json(ev)).map(|(i, _)| i).collect();
                prop_assert_eq!(got, want, "event {}", ev);
            }
        }
    }
}

//! The fast path for the most common spec: JSON of the shape
//! `{"name"?: …, "jobs": {NAME: {"run": …, "needs"?: …}}}`, read straight into a [`RunSpec`]
//! without building the document tree first (for a 1000-job spec the tree is half the memory
//! the parse touches, and the parse is most of the time before the first job starts).
//!
//! It accepts only what the general path accepts, and builds the same spec: anything outside
//! that shape (another key, another type, a duplicate, an escaped key) and any problem at all
//! gives `None`, and the caller takes the general path, which reports every problem with its
//! place. Tests hold the two paths to the same result.

use super::build::{NeedPositions, valid_job_name};
use super::model::*;
use super::{Limits, graph};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Names seen so far, hashed as the graph's index is.
type Seen<'n> = HashSet<&'n str, graph::NameHasher>;

/// The spec, when `text` has the fast path's shape and no problem; `None` otherwise.
pub(super) fn json(text: &str, default_name: &str, limits: &Limits) -> Option<RunSpec> {
    let mut de = serde_json::Deserializer::from_str(text);
    // Every job of this shape has a `"run"` key; a command `"run"` only makes the guess larger.
    // Grown by doubling instead, a 1000-job list was copied ten times (~7% of the parse).
    let guess = memchr::memmem::find_iter(text.as_bytes(), b"\"run\"")
        .count()
        .min(limits.max_jobs);
    let (name, jobs) = Top { limits, guess }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    let name = match name {
        None => default_name.to_string(),
        // The general path reports these.
        Some(n) if n.trim().is_empty() || n.chars().count() > 200 => return None,
        Some(n) => n,
    };
    if jobs.is_empty() {
        return None;
    }
    let spec = RunSpec {
        name,
        jobs,
        on: None,
        concurrency: None,
        report: Vec::new(),
        pr: None,
        graph: Default::default(),
    };
    let mut problems = Vec::new();
    // JSON carries no positions: none are looked up (a need without one has none).
    graph::check(&spec, &NeedPositions::new(), false, &mut problems);
    problems.is_empty().then_some(spec)
}

/// Why the fast path gave up; never shown (the general path says what is wrong).
fn other<E: de::Error>() -> E {
    E::custom("not the fast path's shape")
}

struct Top<'l> {
    limits: &'l Limits,
    /// How many jobs there are likely to be.
    guess: usize,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = (Option<String>, Vec<JobSpec>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = (Option<String>, Vec<JobSpec>);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a run spec")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut name, mut jobs) = (None, None);
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "name" if name.is_none() => name = Some(map.next_value::<String>()?),
                "jobs" if jobs.is_none() => {
                    jobs = Some(map.next_value_seed(Jobs {
                        limits: self.limits,
                        guess: self.guess,
                    })?)
                }
                _ => return Err(other()),
            }
        }
        Ok((name, jobs.ok_or_else(other)?))
    }
}

struct Jobs<'l> {
    limits: &'l Limits,
    guess: usize,
}

impl<'de> DeserializeSeed<'de> for Jobs<'_> {
    type Value = Vec<JobSpec>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Jobs<'_> {
    type Value = Vec<JobSpec>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of jobs")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut jobs = Vec::with_capacity(map.size_hint().unwrap_or(self.guess));
        let mut seen = Seen::with_capacity_and_hasher(self.guess, Default::default());
        while let Some(name) = map.next_key::<&str>()? {
            if jobs.len() == self.limits.max_jobs
                || valid_job_name(name).is_err()
                || !seen.insert(name)
            {
                return Err(other());
            }
            jobs.push(map.next_value_seed(Job {
                name,
                max_commands: self.limits.max_commands_per_job,
            })?);
        }
        Ok(jobs)
    }
}

struct Job<'n> {
    name: &'n str,
    max_commands: usize,
}

impl<'de> DeserializeSeed<'de> for Job<'_> {
    type Value = JobSpec;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Job<'_> {
    type Value = JobSpec;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a job")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut run, mut needs): (Option<Vec<String>>, Option<Vec<String>>) = (None, None);
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "run" if run.is_none() => run = Some(map.next_value::<Strings>()?.0),
                "needs" if needs.is_none() => needs = Some(map.next_value::<Strings>()?.0),
                _ => return Err(other()),
            }
        }
        let run = run.ok_or_else(other)?;
        if run.is_empty()
            || run.len() > self.max_commands
            || run.iter().any(|c| c.trim().is_empty())
        {
            return Err(other());
        }
        let needs = needs.unwrap_or_default();
        if needs
            .iter()
            .enumerate()
            .any(|(i, n)| needs[..i].contains(n))
        {
            return Err(other());
        }
        Ok(JobSpec {
            name: self.name.to_string(),
            run,
            needs,
            when: When::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retries: 0,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            env: BTreeMap::new(),
            secrets: Vec::new(),
            image: None,
            executor: ExecutorKind::Local,
            source: None,
            container: None,
        })
    }
}

/// A string or a list of strings (not null, not empty items' types other than strings).
struct Strings(Vec<String>);

impl<'de> de::Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringsVisitor)
    }
}

struct StringsVisitor;

impl<'de> Visitor<'de> for StringsVisitor {
    type Value = Strings;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Strings, E> {
        Ok(Strings(vec![s.to_string()]))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Strings, E> {
        Ok(Strings(vec![s]))
    }
    /// Lists of one or two (most `run` and `needs`) get a list of their size; JSON gives no
    /// length up front, and growing from one was ~8% of reading a 1000-job spec.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
        let Some(first) = seq.next_element::<String>()? else {
            return Ok(Strings(Vec::new()));
        };
        let Some(second) = seq.next_element::<String>()? else {
            return Ok(Strings(vec![first]));
        };
        let Some(third) = seq.next_element::<String>()? else {
            return Ok(Strings(vec![first, second]));
        };
        let mut out = Vec::with_capacity(8);
        out.extend([first, second, third]);
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(Strings(out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Limits, from_node, parse_json};
    use super::*;
    use proptest::prelude::*;

    /// The general path alone.
    fn general(text: &str) -> Result<RunSpec, String> {
        let doc = parse_json(text).map_err(|e| e.message)?;
        from_node(&doc, "dflt", &Limits::default()).map_err(|p| p.to_string())
    }

    fn fast(text: &str) -> Option<RunSpec> {
        json(text, "dflt", &Limits::default())
    }

    /// The shared benchmark's shape: layers of jobs, each needing two of the layer before.
    fn layered(layers: usize, width: usize) -> String {
        let mut jobs = Vec::new();
        for l in 0..layers {
            for w in 0..width {
                let needs = if l == 0 {
                    String::new()
                } else {
                    format!(
                        r#", "needs": ["j{}_{}", "j{}_{}"]"#,
                        l - 1,
                        w,
                        l - 1,
                        (w + 1) % width
                    )
                };
                jobs.push(format!(r#""j{l}_{w}": {{"run": ["true"]{needs}}}"#));
            }
        }
        format!(
            r#"{{"name": "bench-dag", "jobs": {{{}}}}}"#,
            jobs.join(", ")
        )
    }

    #[test]
    fn a_large_plain_spec_takes_the_fast_path_and_builds_the_same_spec() {
        let text = layered(10, 100);
        let spec = fast(&text).expect("fast path");
        assert_eq!(spec.jobs.len(), 1000);
        assert_eq!(Ok(spec), general(&text));
    }

    #[test]
    fn anything_else_is_left_to_the_general_path() {
        for text in [
            // Valid, but outside the shape: the general path builds these.
            r#"{"jobs": {"a": {"run": "x", "timeout": "5m"}}}"#,
            r#"{"jobs": {"a": {"run": "x"}}, "report": ["comment"]}"#,
            r#"{"orders": [{"name": "a", "cmds": ["x"]}]}"#,
            r#"{"jobs": {"a": {"run": "x", "needs": null}}}"#,
            r#"{"jobs": {"\u0061": {"run": "x"}}}"#,
            // Invalid: the general path reports these, with their places.
            r#"{"jobs": {}}"#,
            r#"{"name": " ", "jobs": {"a": {"run": "x"}}}"#,
            r#"{"name": 5, "jobs": {"a": {"run": "x"}}}"#,
            r#"{"jobs": {"a": {"run": []}}}"#,
            r#"{"jobs": {"a": {"run": ["x", " "]}}}"#,
            r#"{"jobs": {"a": {"run": [1]}}}"#,
            r#"{"jobs": {"a": {"needs": []}}}"#,
            r#"{"jobs": {"a": {"run": "x", "run": "y"}}}"#,
            r#"{"jobs": {"a": {"run": "x", "needs": [], "needs": []}}}"#,
            r#"{"jobs": {"a": {"run": "x"}, "a": {"run": "y"}}}"#,
            r#"{"jobs": {"-a": {"run": "x"}}}"#,
            r#"{"jobs": {"a": {"run": "x", "needs": ["b", "b"]}, "b": {"run": "y"}}}"#,
            r#"{"jobs": {"a": {"run": "x", "needs": "nope"}}}"#,
            r#"{"jobs": {"a": {"run": "x", "needs": "b"}, "b": {"run": "y", "needs": "a"}}}"#,
            r#"{"jobs": {"a": {"run": "x"}}} trailing"#,
            r#"[1, 2]"#,
        ] {
            assert_eq!(fast(text), None, "{text}");
        }
        let limits = Limits {
            max_jobs: 2,
            max_commands_per_job: 1,
            ..Limits::default()
        };
        assert!(
            json(
                r#"{"jobs": {"a": {"run": "x"}, "b": {"run": "y"}}}"#,
                "d",
                &limits
            )
            .is_some()
        );
        assert_eq!(
            json(
                r#"{"jobs": {"a": {"run": "x"}, "b": {"run": "y"}, "c": {"run": "z"}}}"#,
                "d",
                &limits
            ),
            None,
            "more jobs than the limit"
        );
        assert_eq!(
            json(r#"{"jobs": {"a": {"run": ["x", "y"]}}}"#, "d", &limits),
            None,
            "more commands than the limit"
        );
    }

    /// How a random job names its needs: by number, turned into the names of earlier jobs
    /// (so most random specs have no cycle); the first job's point anywhere.
    #[derive(Debug, Clone)]
    enum Needs {
        Absent,
        List(Vec<usize>),
        One(usize),
        Null,
    }

    /// A job of a random spec: its text but for `needs`, and whether it stays within the fast
    /// path's shape.
    fn job() -> impl Strategy<Value = (String, Needs, String, bool)> {
        let run = prop_oneof![
            6 => "[a-z]{1,5}".prop_map(|c| (serde_json::to_string(&c).unwrap(), true)),
            6 => prop::collection::vec("[a-z]{1,4}", 1..3)
                .prop_map(|cs| (serde_json::to_string(&cs).unwrap(), true)),
            1 => prop::collection::vec("[a-z ]{0,2}", 0..3)
                .prop_map(|cs| (serde_json::to_string(&cs).unwrap(), true)),
            1 => Just(("7".to_string(), false)),
            1 => Just(("null".to_string(), false)),
            1 => Just((r#"["x", 3]"#.to_string(), false)),
        ];
        let needs = prop_oneof![
            3 => Just((Needs::Absent, true)),
            5 => prop::collection::vec(0..6usize, 0..4).prop_map(|v| (Needs::List(v), true)),
            2 => (0..6usize).prop_map(|n| (Needs::One(n), true)),
            1 => Just((Needs::Null, false)),
        ];
        let extra = prop_oneof![
            8 => Just((String::new(), true)),
            1 => Just((r#", "timeout": "5m""#.to_string(), false)),
            1 => Just((r#", "retries": 2"#.to_string(), false)),
        ];
        (run, needs, extra).prop_map(|((run, r_ok), (needs, n_ok), (extra, e_ok))| {
            (run, needs, extra, r_ok && n_ok && e_ok)
        })
    }

    fn spec_text() -> impl Strategy<Value = (String, bool)> {
        let name = prop_oneof![
            2 => Just((String::new(), true)),
            2 => "[a-z]{1,8}".prop_map(|n| (format!(r#""name": "{n}", "#), true)),
            1 => Just((r#""name": "", "#.to_string(), true)),
            1 => Just((r#""name": 3, "#.to_string(), false)),
            1 => Just((r#""on": {"push": {}}, "#.to_string(), false)),
        ];
        // Jobs are mostly named by their place (`j0`, `j1`, …, which needs name), sometimes
        // a name that repeats one or is invalid (`-x`, `a b`).
        let job_name = prop_oneof![
            12 => Just(None),
            1 => "j[0-5]".prop_map(Some),
            1 => Just(Some("-x".to_string())),
            1 => Just(Some("a b".to_string())),
        ];
        (name, prop::collection::vec((job_name, job()), 0..7)).prop_map(|((top, t_ok), jobs)| {
            let ok = t_ok && jobs.iter().all(|(_, (_, _, _, ok))| *ok);
            let need = |i: usize, n: usize| {
                if i == 0 {
                    format!("j{n}")
                } else {
                    format!("j{}", n % i)
                }
            };
            let body: Vec<String> = jobs
                .iter()
                .enumerate()
                .map(|(i, (name, (run, needs, extra, _)))| {
                    let name = name.clone().unwrap_or_else(|| format!("j{i}"));
                    let needs = match needs {
                        Needs::Absent => String::new(),
                        Needs::Null => r#", "needs": null"#.to_string(),
                        Needs::One(n) => format!(r#", "needs": "{}""#, need(i, *n)),
                        Needs::List(v) => {
                            let names: Vec<String> = v.iter().map(|n| need(i, *n)).collect();
                            format!(r#", "needs": {}"#, serde_json::to_string(&names).unwrap())
                        }
                    };
                    format!(
                        r#"{}: {{"run": {run}{needs}{extra}}}"#,
                        serde_json::to_string(&name).unwrap()
                    )
                })
                .collect();
            (format!(r#"{{{top}"jobs": {{{}}}}}"#, body.join(", ")), ok)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The fast path never accepts what the general path refuses, and builds the same spec;
        /// within its shape it gives up only on specs the general path refuses.
        #[test]
        fn the_fast_path_agrees_with_the_general_one((text, in_shape) in spec_text()) {
            let general = general(&text);
            match fast(&text) {
                Some(spec) => prop_assert_eq!(Ok(spec), general, "{}", text),
                None => prop_assert!(!in_shape || general.is_err(), "gave up on {} ({:?})", text, general),
            }
        }
    }
}

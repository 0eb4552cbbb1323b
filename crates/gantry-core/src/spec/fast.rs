//! The fast path for the most common spec: JSON of the shape
//! `{"name"?: …, "jobs": {NAME: {"run": …, "needs"?: …}}}`, read straight into a [`RunSpec`]
//! by a scanner made for that shape alone, without a document tree or a general JSON parser
//! (for a 1000-job spec the parse is most of the work before the first job starts; through
//! serde_json's visitors it was ~60 instructions a byte).
//!
//! It accepts only what the general path accepts, and builds the same spec: anything outside
//! that shape (another key, another type, a duplicate, an escape in a string) and any problem
//! at all gives `None`, and the caller takes the general path, which reports every problem
//! with its place. Tests hold the two paths to the same result.

use super::build::{NeedPositions, valid_job_name};
use super::model::*;
use super::{Limits, graph};
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;

/// The spec, when `text` has the fast path's shape and no problem; `None` otherwise.
pub(super) fn json(text: &str, default_name: &str, limits: &Limits) -> Option<RunSpec> {
    let mut scan = Scan {
        text,
        at: 0,
        scratch: Vec::new(),
    };
    let (name, (jobs, index)) = scan.top(limits)?;
    scan.space();
    if scan.at != text.len() {
        return None;
    }
    let name = match name {
        None => default_name.to_string(),
        // The general path reports these.
        Some(n) if n.trim().is_empty() || n.chars().count() > 200 => return None,
        Some(n) => n.to_string(),
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
    // JSON carries no positions: none are looked up (a need without one has none). The name
    // index the scan made (to refuse duplicates) is the one the check needs.
    graph::check_indexed(&spec, &index, &NeedPositions::new(), false, &mut problems);
    problems.is_empty().then_some(spec)
}

/// Where a string's text ends: the first quote, backslash or control character (which JSON
/// does not allow unescaped). Eight bytes at a time: in each, a byte's high bit is set where
/// it is one of those, and the lowest such bit is exact (the borrows that can set others only
/// run upwards from a byte that is one).
fn string_end(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let found = zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

/// The jobs read, and their names' index (name → place).
type Jobs<'t> = (Vec<JobSpec>, graph::JobIndex<'t>);

/// A position in the text; every method gives `None` where the text leaves the shape.
struct Scan<'t> {
    text: &'t str,
    at: usize,
    /// The strings of the list being read (reused, so a list is made at its size).
    scratch: Vec<&'t str>,
}

impl<'t> Scan<'t> {
    /// Skips JSON's whitespace.
    fn space(&mut self) {
        let b = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not taken.
    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.text.as_bytes().get(self.at).copied()
    }

    /// Takes `c` (after whitespace) if it is next.
    fn eat(&mut self, c: u8) -> bool {
        let next = self.peek() == Some(c);
        if next {
            self.at += 1;
        }
        next
    }

    /// A string without escapes (one with any is left to the general path), borrowed.
    fn string(&mut self) -> Option<&'t str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let b = self.text.as_bytes();
        let len = string_end(&b[start..])?;
        if b[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are at ASCII quotes: character boundaries.
        Some(&self.text[start..start + len])
    }

    /// `{}` or `{KEY: VALUE, …}`, each value read by `value` given its key.
    fn object(&mut self, mut value: impl FnMut(&mut Self, &'t str) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            value(self, key)?;
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// A string or a list of strings, as a list of at most `max`.
    fn strings(&mut self, max: usize) -> Option<Vec<String>> {
        if self.peek() == Some(b'"') {
            return Some(vec![self.string()?.to_string()]);
        }
        if !self.eat(b'[') {
            return None;
        }
        self.scratch.clear();
        if !self.eat(b']') {
            loop {
                let s = self.string()?;
                self.scratch.push(s);
                if self.scratch.len() > max {
                    return None;
                }
                if self.eat(b']') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        Some(self.scratch.iter().map(|s| s.to_string()).collect())
    }

    /// The whole spec: its name, if given, and its jobs.
    fn top(&mut self, limits: &Limits) -> Option<(Option<&'t str>, Jobs<'t>)> {
        let (mut name, mut jobs) = (None, None);
        self.object(|scan, key| {
            match key {
                "name" if name.is_none() => name = Some(scan.string()?),
                "jobs" if jobs.is_none() => jobs = Some(scan.jobs(limits)?),
                _ => return None,
            }
            Some(())
        })?;
        Some((name, jobs?))
    }

    /// `{NAME: JOB, …}`, each name valid and new.
    fn jobs(&mut self, limits: &Limits) -> Option<Jobs<'t>> {
        // Every job is an object: the count of `{` is a guess at the number of jobs that is
        // never short (a brace inside a command only makes it larger). Grown by doubling
        // instead, a 1000-job list was copied ten times (~7% of the parse).
        let guess = memchr::memchr_iter(b'{', &self.text.as_bytes()[self.at..])
            .count()
            .min(limits.max_jobs);
        let mut jobs = Vec::with_capacity(guess);
        let mut index = graph::JobIndex::with_capacity_and_hasher(guess, Default::default());
        self.object(|scan, name| {
            if jobs.len() == limits.max_jobs || valid_job_name(name).is_err() {
                return None;
            }
            match index.entry(name) {
                Entry::Occupied(_) => return None,
                Entry::Vacant(v) => v.insert(jobs.len()),
            };
            jobs.push(scan.job(name, limits.max_commands_per_job)?);
            Some(())
        })?;
        Some((jobs, index))
    }

    /// `{"run": …, "needs"?: …}`.
    fn job(&mut self, name: &str, max_commands: usize) -> Option<JobSpec> {
        let (mut run, mut needs): (Option<Vec<String>>, Option<Vec<String>>) = (None, None);
        self.object(|scan, key| {
            match key {
                "run" if run.is_none() => run = Some(scan.strings(max_commands)?),
                "needs" if needs.is_none() => needs = Some(scan.strings(usize::MAX)?),
                _ => return None,
            }
            Some(())
        })?;
        let run = run?;
        if run.is_empty() || run.iter().any(|c| c.trim().is_empty()) {
            return None;
        }
        let needs = needs.unwrap_or_default();
        if needs
            .iter()
            .enumerate()
            .any(|(i, n)| needs[..i].contains(n))
        {
            return None;
        }
        Some(JobSpec {
            name: name.to_string(),
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
    fn a_string_ends_at_its_first_quote_backslash_or_control_character() {
        // Every length up to three words, every place, every kind of end, and bytes around it
        // that are close to those (`!`, `#`, `[`, `]`, space, DEL, UTF-8's high bytes).
        let fill = "a!#[] \u{7f}é€".as_bytes();
        for len in 0..24 {
            for end in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                for extra in 0..3 {
                    let mut text: Vec<u8> = (0..len).map(|i| fill[i % fill.len()]).collect();
                    text.push(end);
                    text.extend(std::iter::repeat_n(b'x', extra));
                    assert_eq!(string_end(&text), Some(len), "{text:?}");
                }
            }
            let plain: Vec<u8> = (0..len).map(|i| fill[i % fill.len()]).collect();
            assert_eq!(string_end(&plain), None, "{plain:?}");
        }
    }

    #[test]
    fn whitespace_and_characters_beyond_ascii_stay_on_the_fast_path() {
        let text = "\r\n{ \"name\" :\t\"déploiement\",\n  \"jobs\": {\"a1\": {\"run\": \"echo ünï\"},\n\
                    \"b\" : { \"needs\" : [ \"a1\" ] , \"run\" : [ \"x\" , \"y\" ] } } }\n";
        let spec = fast(text).expect("fast path");
        assert_eq!(spec.name, "déploiement");
        assert_eq!(spec.jobs[0].run, ["echo ünï"]);
        assert_eq!(spec.jobs[1].needs, ["a1"]);
        assert_eq!(Ok(spec), general(text));
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
            r#"{"jobs": {"a": {"run": "x"},}}"#,
            r#"{"jobs": {"a": {"run": "x"}}"#,
            r#"{"jobs": {"a": {"run": "x" "needs": "b"}, "b": {"run": "y"}}}"#,
            "{\"jobs\": {\"a\": {\"run\": \"tab\there\"}}}",
            r#"{"jobs": {"a": {"run": "say \"hi\""}}}"#,
            "\u{feff}{\"jobs\": {\"a\": {\"run\": \"x\"}}}",
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
            // Escapes (`"`, `\`, a tab) and characters beyond ASCII: valid, and the fast path
            // may leave the escaped ones to the general path.
            1 => "[a-z\"\\\\é\t]{1,4}".prop_map(|c| (serde_json::to_string(&c).unwrap(), false)),
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
        // JSON's whitespace between tokens, in several styles.
        let sep = prop_oneof![Just(", "), Just(","), Just(",\n\t"), Just(" ,\r\n  ")];
        (name, prop::collection::vec((job_name, job()), 0..7), sep).prop_map(
            |((top, t_ok), jobs, sep)| {
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
                let text = format!(r#"{{{top}"jobs": {{{}}}}}"#, body.join(", "));
                // No string holds a comma: only the separators change.
                (text.replace(", ", sep), ok)
            },
        )
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

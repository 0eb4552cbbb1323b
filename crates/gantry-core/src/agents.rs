//! Agents' pure parts: labels (what an agent offers, what a job's `runs_on` asks), which
//! agent may take which job, and a remote worker's result as the callback route takes it.

use crate::dag::Outcome;
use serde::Deserialize;

/// The longest label accepted.
pub const MAX_LABEL: usize = 64;

/// Checks one label: non-empty, at most [`MAX_LABEL`] bytes, letters, digits, `-`, `_`, `.`.
pub fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("a label is empty".into());
    }
    if label.len() > MAX_LABEL {
        return Err(format!("label `{label}` is longer than {MAX_LABEL} bytes"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "label `{label}` has `{c}`; labels are letters, digits, `-`, `_` and `.`"
        ));
    }
    Ok(())
}

/// An agent's labels from `--labels linux,docker`: each checked, duplicates dropped, sorted.
pub fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for l in text.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        check_label(l)?;
        out.push(l.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether an agent with `offered` labels may take a job asking for `wanted`: every label
/// the job asks for is one the agent has (a job asking for none goes to any agent).
pub fn matches(offered: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| offered.iter().any(|o| o == w))
}

/// What is stored of an agent token: its SHA-256 (a token is 32 random bytes, so a hash
/// that leaks does not give the token back).
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A remote worker's result: `{"exit_code": N}`, or `{"outcome": "failed", "error": "…"}`
/// (also `timed_out`, `cancelled`, `succeeded`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

impl Report {
    /// The attempt's outcome, or why the report says none.
    pub fn outcome(&self) -> Result<Outcome, String> {
        match (self.outcome.as_deref(), self.exit_code) {
            (None, None) => Err("a result needs `exit_code` or `outcome`".into()),
            (None, Some(0)) | (Some("succeeded"), None | Some(0)) => Ok(Outcome::Succeeded),
            (None | Some("failed"), code) => Ok(Outcome::Failed { exit_code: code }),
            (Some("timed_out"), _) => Ok(Outcome::TimedOut),
            (Some("cancelled"), _) => Ok(Outcome::Cancelled),
            (Some("succeeded"), Some(n)) => Err(format!("`succeeded` with exit code {n}")),
            (Some(o), _) => Err(format!(
                "unknown outcome `{o}`; expected succeeded, failed, timed_out or cancelled"
            )),
        }
    }

    /// The report of an outcome, as an agent sends it.
    pub fn of(outcome: &Outcome, error: Option<String>) -> Report {
        let (exit_code, o) = match outcome {
            Outcome::Succeeded => (Some(0), None),
            Outcome::Failed { exit_code } => (*exit_code, Some("failed")),
            Outcome::TimedOut => (None, Some("timed_out")),
            Outcome::Cancelled => (None, Some("cancelled")),
            Outcome::Lost => (None, Some("failed")),
        };
        Report {
            exit_code,
            outcome: o.map(String::from),
            error,
        }
    }
}

impl serde::Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = serde_json::Map::new();
        if let Some(c) = self.exit_code {
            m.insert("exit_code".into(), c.into());
        }
        if let Some(o) = &self.outcome {
            m.insert("outcome".into(), o.clone().into());
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), e.clone().into());
        }
        m.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn labels_are_checked_and_matched() {
        assert_eq!(
            parse_labels(" linux, docker,linux,,").unwrap(),
            v(&["docker", "linux"])
        );
        assert!(parse_labels("gpu,a b").is_err());
        assert!(check_label("").is_err());
        assert!(check_label(&"x".repeat(65)).is_err());
        assert!(matches(&v(&["linux", "docker"]), &v(&["docker"])));
        assert!(matches(&v(&["linux"]), &[]));
        assert!(!matches(&v(&["linux"]), &v(&["linux", "gpu"])));
        assert!(!matches(&[], &v(&["linux"])));
    }

    #[test]
    fn tokens_are_kept_as_hashes() {
        let h = token_hash("gat_abc");
        assert!(same_bytes(&h, &token_hash("gat_abc")));
        assert!(!same_bytes(&h, &token_hash("gat_abd")));
        assert!(!same_bytes(&h, &h[..31]));
    }

    #[test]
    fn reports_become_outcomes() {
        let r = |j: &str| serde_json::from_str::<Report>(j).unwrap().outcome();
        assert_eq!(r(r#"{"exit_code":0}"#), Ok(Outcome::Succeeded));
        assert_eq!(
            r(r#"{"exit_code":3}"#),
            Ok(Outcome::Failed { exit_code: Some(3) })
        );
        assert_eq!(
            r(r#"{"outcome":"failed","error":"no docker"}"#),
            Ok(Outcome::Failed { exit_code: None })
        );
        assert_eq!(r(r#"{"outcome":"timed_out"}"#), Ok(Outcome::TimedOut));
        assert!(r("{}").is_err());
        assert!(r(r#"{"outcome":"maybe"}"#).is_err());
        assert!(serde_json::from_str::<Report>(r#"{"exit":0}"#).is_err());
    }

    proptest! {
        #[test]
        fn matching_is_the_subset_relation(
            offered in proptest::collection::vec("[a-d]", 0..4),
            wanted in proptest::collection::vec("[a-d]", 0..4),
        ) {
            let subset = wanted.iter().all(|w| offered.contains(w));
            prop_assert_eq!(matches(&offered, &wanted), subset);
            // More labels on the agent never lose it a job.
            let mut more = offered.clone();
            more.push("e".into());
            prop_assert!(!subset || matches(&more, &wanted));
        }

        #[test]
        fn an_outcome_survives_its_report(code in proptest::option::of(-5i32..300), pick in 0u8..4) {
            let o = match pick {
                0 => Outcome::Succeeded,
                1 => Outcome::Failed { exit_code: code.filter(|c| *c != 0) },
                2 => Outcome::TimedOut,
                _ => Outcome::Cancelled,
            };
            let json = serde_json::to_string(&Report::of(&o, None)).unwrap();
            let back: Report = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.outcome(), Ok(o));
        }
    }
}

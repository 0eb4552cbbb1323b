//! A problem found in a spec: where it is (a path like `jobs.deploy.needs[0]`, and for YAML the
//! line and column) and what is wrong, in words meant for the person who wrote the spec. At
//! most [`MAX_PROBLEMS`] are kept; the rest are only counted, so a hostile spec cannot make its
//! own error answer (or the memory behind it) grow with it.

use super::node::Pos;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// Where in the document: `jobs.deploy.needs[0]`, `orders[2].cmds`, or empty for the whole.
    pub path: String,
    /// The job the problem is in, when it is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    pub message: String,
}

impl Problem {
    pub fn new(
        path: impl Into<String>,
        job: Option<&str>,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            path: path.into(),
            job: job.map(str::to_string),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "line {l}, column {c}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// How many problems an invalid spec lists; those found after are counted, not kept.
pub const MAX_PROBLEMS: usize = 100;

/// The problems of an invalid spec, in document order: the first [`MAX_PROBLEMS`] (`.0`), why
/// the document could not be read if it could not (`.1`), and how many more were found and left
/// out (`.2`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problems(
    pub Vec<Problem>,
    #[serde(skip)] pub Unreadable,
    #[serde(skip)] pub usize,
);

impl Problems {
    /// Every problem found, listed or not.
    pub fn count(&self) -> usize {
        self.0.len() + self.2
    }
}

/// Where a spec's problems gather while it is read: the first [`MAX_PROBLEMS`] kept, the others
/// counted.
#[derive(Debug, Default)]
pub(crate) struct ProblemList {
    kept: Vec<Problem>,
    more: usize,
}

impl ProblemList {
    pub fn push(&mut self, problem: Problem) {
        if self.is_full() {
            self.more += 1;
        } else {
            self.kept.push(problem);
        }
    }

    /// Whether a further problem would only be counted (callers skip costly details then).
    pub fn is_full(&self) -> bool {
        self.kept.len() >= MAX_PROBLEMS
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    pub fn into_problems(self, why: Unreadable) -> Problems {
        Problems(self.kept, why, self.more)
    }
}

impl FromIterator<Problem> for ProblemList {
    fn from_iter<I: IntoIterator<Item = Problem>>(iter: I) -> Self {
        let mut list = ProblemList::default();
        for p in iter {
            list.push(p);
        }
        list
    }
}

/// Whether the document could be read at all: `Yes` for a readable document with problems;
/// otherwise why not (too large, not UTF-8, not JSON/YAML). HTTP maps these to 413/400/422.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unreadable {
    #[default]
    No,
    TooLarge,
    NotUtf8,
    Syntax,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.count();
        writeln!(
            f,
            "invalid spec: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        if self.2 > 0 {
            writeln!(
                f,
                "  … and {} more problem{} (only the first {} are listed)",
                self.2,
                if self.2 == 1 { "" } else { "s" },
                self.0.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

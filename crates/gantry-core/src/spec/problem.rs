//! A problem found in a spec: where it is (a path like `jobs.deploy.needs[0]`, and for YAML the
//! line and column) and what is wrong, in words meant for the person who wrote the spec.

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

/// Every problem of an invalid spec, in document order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problems(pub Vec<Problem>, #[serde(skip)] pub Unreadable);

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
        let n = self.0.len();
        writeln!(
            f,
            "invalid spec: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

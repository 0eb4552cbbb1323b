//! Run specs: the YAML/JSON documents that describe a run (its jobs, their commands and
//! needs, and what a pipeline file adds: triggers, concurrency, reports), their validated
//! model (`model.rs`), and the checks that list every problem at once. The text is parsed into
//! a document tree (`node.rs`), the tree read into a [`RunSpec`] (`read.rs`, with `fields.rs`
//! and `pipeline.rs`), and the needs checked across jobs (`graph.rs`); `problem.rs` says how a
//! problem is reported, `source.rs` which clone URLs a job may fetch.

pub mod artifacts;
pub mod cache;
mod executor;
mod fields;
mod graph;
mod model;
mod node;
mod orders;
mod pipeline;
mod problem;
mod read;
mod runs_on;
mod source;

pub use graph::{GraphCell, JobGraph, Needs};
pub use model::*;
pub use node::{Node, Pos, SyntaxError, parse_json, parse_yaml};
pub use pipeline::{Concurrency, DEFAULT_PR_TYPES, TriggerFilter, Triggers};
pub use problem::{MAX_PROBLEMS, Problem, Problems, Unreadable};
pub use read::valid_job_name;
pub use source::{check_clone_url, check_sources};

/// Bounds on what one spec may ask for, and on what reading it may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    /// Values in the document (mappings, lists and scalars, keys included): what its tree
    /// costs in memory grows with these, not with its bytes (`[1,1,1]` is 2 bytes a value).
    pub max_values: usize,
    pub max_jobs: usize,
    pub max_commands_per_job: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 5000 jobs covers the largest monorepo matrices seen in practice with room to spare;
        // 4 MiB of spec is far beyond any hand-written file. 250,000 values is the YAML
        // reader's own default budget, now for JSON too: 50 per job at 5000 jobs, and a tree
        // of at most a few tens of MiB.
        Limits {
            max_bytes: 4 << 20,
            max_values: 250_000,
            max_jobs: 5000,
            max_commands_per_job: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    /// JSON when the text starts with `{` or `[`, YAML otherwise.
    Auto,
}

/// Parses and validates a run spec (or the `orders` payload): the text is read into a
/// document tree (JSON or YAML) and the tree into a [`RunSpec`], one path whatever the spec.
/// On failure, every problem found is returned, in document order, and nothing else happens.
pub fn parse_spec(
    bytes: &[u8],
    format: Format,
    default_name: &str,
    limits: &Limits,
) -> Result<RunSpec, Problems> {
    let one = |why: Unreadable, msg: String, pos: Option<Pos>| {
        Problems(vec![Problem::new("", None, pos, msg)], why, 0)
    };
    if bytes.len() > limits.max_bytes {
        return Err(one(
            Unreadable::TooLarge,
            format!(
                "the spec is {} bytes, more than the limit of {} bytes",
                bytes.len(),
                limits.max_bytes
            ),
            None,
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        one(
            Unreadable::NotUtf8,
            format!("the spec is not valid UTF-8 (at byte {})", e.valid_up_to()),
            None,
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json = match format {
        Format::Json => true,
        Format::Yaml => false,
        Format::Auto => text.trim_start().starts_with(['{', '[']),
    };
    let doc = if json {
        parse_json(text, limits.max_values)
    } else {
        parse_yaml(text, limits.max_values)
    }
    .map_err(|e| {
        let why = if e.too_large {
            Unreadable::TooLarge
        } else {
            Unreadable::Syntax
        };
        one(why, e.message, e.pos)
    })?;
    from_node(&doc, default_name, limits)
}

/// Validates an already-parsed document (for API bodies that embed a spec).
pub fn from_node(doc: &Node, default_name: &str, limits: &Limits) -> Result<RunSpec, Problems> {
    let mut reader = read::Reader::new(limits.max_jobs, limits.max_commands_per_job);
    let read = reader.run_spec(doc, default_name);
    let mut problems = reader.problems;
    if let Some((spec, need_pos)) = &read {
        let orders =
            matches!(&doc.value, node::Value::Map(m) if m.iter().any(|(k, _)| k.name == "orders"));
        graph::check(spec, need_pos, orders, &mut problems);
    }
    match read {
        Some((spec, _)) if problems.is_empty() => Ok(spec),
        _ => Err(problems.into_problems(Unreadable::No)),
    }
}

#[cfg(test)]
mod tests;

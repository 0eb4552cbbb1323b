//! A job's `runs_on`: the labels an agent must have to run it (a list of non-empty labels, or
//! one label as a string). A job with `runs_on` runs on an agent.

use super::node::Node;
use super::read::Reader;
use crate::agents::check_label;

impl Reader {
    /// The labels of `runs_on`, each checked; every problem is recorded.
    pub(super) fn runs_on(&mut self, node: &Node, path: &str, job: Option<&str>) -> Vec<String> {
        let items = self
            .strings(node, &|| path.to_string(), job)
            .unwrap_or_default();
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for (i, (label, pos)) in items.into_iter().enumerate() {
            match check_label(&label) {
                Ok(()) if !out.contains(&label) => out.push(label),
                Ok(()) => {}
                Err(why) => self.err(&format!("{path}[{i}]"), job, pos, why),
            }
        }
        out
    }
}

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

#[cfg(test)]
mod tests {
    use crate::spec::{ExecutorKind, Format, Limits, parse_spec};

    fn parse(text: &str) -> Result<crate::spec::RunSpec, Vec<String>> {
        parse_spec(text.as_bytes(), Format::Yaml, "t", &Limits::default())
            .map_err(|p| p.0.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn runs_on_sends_a_job_to_an_agent() {
        let spec = parse(
            "jobs:\n  a: {run: [x], runs_on: [linux, docker, linux]}\n  b: {run: [x], runs_on: gpu, image: alpine}\n  c: {run: [x], executor: agent}\n  d: {run: [x]}\n",
        )
        .unwrap();
        let j = |n: &str| spec.jobs.iter().find(|j| j.name == n).unwrap();
        assert_eq!(j("a").runs_on, ["linux", "docker"]);
        assert_eq!(j("a").executor, ExecutorKind::Agent);
        assert_eq!(
            (j("b").executor, j("b").image.as_deref()),
            (ExecutorKind::Agent, Some("alpine"))
        );
        assert_eq!(
            (j("c").executor, j("c").runs_on.len()),
            (ExecutorKind::Agent, 0)
        );
        assert_eq!(
            (j("d").executor, j("d").runs_on.len()),
            (ExecutorKind::Local, 0)
        );
        // Stored and read back.
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""runs_on":["linux","docker"]"#), "{json}");
        let back: crate::spec::RunSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back.jobs[0].runs_on, spec.jobs[0].runs_on);
    }

    #[test]
    fn bad_labels_are_each_reported() {
        let errs = parse(
            "jobs:\n  a: {run: [x], runs_on: ['', 'a b', {x: 1}]}\n  b: {run: [x], runs_on: [l], executor: local}\n  c: {run: [x], run_on: [l]}\n",
        )
        .unwrap_err();
        let all = errs.join("\n");
        assert!(
            all.contains("runs_on[2]") && all.contains("expected a string"),
            "{all}"
        );
        let errs = parse("jobs:\n  a: {run: [x], runs_on: ['', 'a b']}\n").unwrap_err();
        let all = errs.join("\n");
        assert!(
            all.contains("runs_on[0]") && all.contains("a label is empty"),
            "{all}"
        );
        assert!(all.contains("runs_on[1]") && all.contains("`a b`"), "{all}");
        let errs = parse(
            "jobs:\n  b: {run: [x], runs_on: [l], executor: local}\n  c: {run: [x], run_on: [l]}\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(errs.contains("leave `executor` out"), "{errs}");
        assert!(
            errs.contains("run_on") && errs.contains("runs_on"),
            "did you mean: {errs}"
        );
    }
}

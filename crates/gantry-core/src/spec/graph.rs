//! The checks across a spec's jobs, and the job graph they leave. Every need must name another
//! job (unknown names and self-needs are reported), and the needs that do must not form a cycle
//! (each cycle's path is printed). All of these are reported together: the cycles are looked
//! for among the valid needs even when some are not. Also the job graph in index form that the
//! DAG step walks.

use super::fields::closest;
use super::model::RunSpec;
use super::problem::{Problem, ProblemList};
use super::read::NeedPositions;
use std::collections::HashMap;
use std::sync::OnceLock;

/// How a spec's job names are hashed: foldhash, seeded per map (every name and every need is
/// hashed when a spec is read; std's SipHash is several times slower on short keys).
type NameHasher = foldhash::fast::RandomState;

/// Job name → position in the spec.
type JobIndex<'s> = HashMap<&'s str, usize, NameHasher>;

/// Checks the needs of a spec read from its document, adding every problem found to
/// `problems` (which already holds the reader's). The graph of the valid needs is kept on the
/// spec only when `problems` is empty at the end: then the spec is valid and its run steps
/// through that graph.
pub(super) fn check(
    spec: &RunSpec,
    need_pos: &NeedPositions,
    orders: bool,
    problems: &mut ProblemList,
) {
    let index = job_index(spec);
    let needs_key = if orders { "dependencies" } else { "needs" };
    // Rendered only for a problem: most specs have none.
    // A need's index in the document's list (the reader dropped repeated names).
    let doc_index = |ji: usize, ni: usize| {
        need_pos
            .get(ji)
            .and_then(|p| p.get(ni))
            .map_or(ni, |(i, _)| *i)
    };
    let path = |ji: usize, ni: Option<usize>| {
        let at = ni
            .map(|ni| format!("[{}]", doc_index(ji, ni)))
            .unwrap_or_default();
        if orders {
            format!("orders[{ji}].{needs_key}{at}")
        } else {
            format!("jobs.{}.{needs_key}{at}", spec.jobs[ji].name)
        }
    };
    let pos = |ji: usize, ni: usize| need_pos.get(ji).and_then(|p| p.get(ni)).and_then(|p| p.1);
    for (ji, job) in spec.jobs.iter().enumerate() {
        for (ni, need) in job.needs.iter().enumerate() {
            if need == &job.name {
                problems.push(Problem::new(
                    path(ji, Some(ni)),
                    Some(&job.name),
                    pos(ji, ni),
                    format!("job `{need}` needs itself"),
                ));
            } else if !index.contains_key(need.as_str()) {
                // The hint looks at every job: only for problems that will be listed.
                let hint = (!problems.is_full())
                    .then(|| closest(need, spec.jobs.iter().map(|j| j.name.as_str())))
                    .flatten()
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                problems.push(Problem::new(
                    path(ji, Some(ni)),
                    Some(&job.name),
                    pos(ji, ni),
                    format!("unknown job `{need}` in {needs_key}{hint}"),
                ));
            }
        }
    }
    // The graph leaves out the needs just reported, so its cycles are those of the valid needs.
    let graph = JobGraph::with_index(spec, &index);
    for cycle in cycles(&graph) {
        let names: Vec<&str> = cycle.iter().map(|&i| spec.jobs[i].name.as_str()).collect();
        let (first, last) = (cycle[0], names[names.len() - 1]);
        // Placed at the first job's need that closes the cycle (it needs the cycle's last job).
        let closing = spec.jobs[first]
            .needs
            .iter()
            .position(|n| n == last)
            .unwrap_or(0);
        problems.push(Problem::new(
            path(first, None),
            Some(names[0]),
            pos(first, closing),
            format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
        ));
    }
    if problems.is_empty() {
        let _ = spec.graph.0.set(graph);
    }
}

/// A spec's job graph, kept with the spec once validation has built it, so that a run does not
/// build it again. Not stored: a spec read back builds it on first use. Equal whatever it
/// holds, since it follows from the jobs, which a spec never changes once validated.
#[derive(Clone, Default)]
pub struct GraphCell(OnceLock<JobGraph>);

impl PartialEq for GraphCell {
    fn eq(&self, _: &GraphCell) -> bool {
        true
    }
}

impl std::fmt::Debug for GraphCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphCell")
    }
}

impl RunSpec {
    /// The jobs as a graph: the one validation built, or one built now.
    pub fn graph(&self) -> &JobGraph {
        self.graph.0.get_or_init(|| JobGraph::new(self))
    }
}

/// The jobs of a run as indices: `needs[i]` are the jobs job `i` waits for, `dependents[i]`
/// the jobs that wait for job `i` (in job order); `topo` lists every job after all of its
/// needs (for an acyclic graph).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobGraph {
    pub needs: Needs,
    pub dependents: Needs,
    pub topo: Vec<usize>,
}

impl JobGraph {
    /// Builds the graph of the needs that name another job; the others (a name no job has,
    /// the job's own) are dropped (validation reports them).
    pub fn new(spec: &RunSpec) -> JobGraph {
        JobGraph::with_index(spec, &job_index(spec))
    }

    fn with_index(spec: &RunSpec, index: &JobIndex<'_>) -> JobGraph {
        let needs = Needs::from_rows(spec.jobs.iter().map(|j| {
            j.needs
                .iter()
                .filter(|n| **n != j.name)
                .filter_map(|n| index.get(n.as_str()).copied())
        }));
        let dependents = needs.transposed();
        let topo = kahn(&needs, &dependents);
        JobGraph {
            needs,
            dependents,
            topo,
        }
    }
}

/// Every job's needs as job indices, in one flat list: a step looks at the needs of every
/// job still pending, so they lie side by side in memory rather than in an allocation each
/// (measured: the step of a 1000-job run went from ~29 to a few microseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    flat: Vec<usize>,
    /// Job `i`'s needs are `flat[start[i]..start[i + 1]]`.
    start: Vec<usize>,
}

impl Needs {
    /// One row of needs per job, in job order.
    pub fn from_rows<R: IntoIterator<Item = usize>>(rows: impl IntoIterator<Item = R>) -> Needs {
        let rows = rows.into_iter();
        let mut start = Vec::with_capacity(rows.size_hint().0 + 1);
        start.push(0);
        let mut needs = Needs {
            flat: Vec::new(),
            start,
        };
        for row in rows {
            needs.flat.extend(row);
            needs.start.push(needs.flat.len());
        }
        needs
    }

    /// The number of jobs.
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows turned around: row `i` lists the rows that hold `i`, in row order. Every
    /// value must be a row number.
    pub fn transposed(&self) -> Needs {
        let n = self.len();
        let mut start = vec![0; n + 1];
        for &d in &self.flat {
            start[d + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut flat = vec![0; self.flat.len()];
        for (row, values) in self.iter().enumerate() {
            for &d in values {
                flat[next[d]] = row;
                next[d] += 1;
            }
        }
        Needs { flat, start }
    }

    /// Each job's needs, in job order.
    pub fn iter(&self) -> impl Iterator<Item = &[usize]> {
        self.start.windows(2).map(|w| &self.flat[w[0]..w[1]])
    }
}

impl std::ops::Index<usize> for Needs {
    type Output = [usize];

    fn index(&self, job: usize) -> &[usize] {
        &self.flat[self.start[job]..self.start[job + 1]]
    }
}

/// Job name → position in the spec.
fn job_index(spec: &RunSpec) -> JobIndex<'_> {
    let mut index = JobIndex::with_capacity_and_hasher(spec.jobs.len(), Default::default());
    for (i, j) in spec.jobs.iter().enumerate() {
        index.insert(j.name.as_str(), i);
    }
    index
}

/// Kahn's algorithm, stable in spec order. Jobs on a cycle are left out.
fn kahn(needs: &Needs, dependents: &Needs) -> Vec<usize> {
    let n = needs.len();
    let mut missing: Vec<usize> = needs.iter().map(<[usize]>::len).collect();
    let mut ready: std::collections::VecDeque<usize> =
        (0..n).filter(|&j| missing[j] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(j) = ready.pop_front() {
        order.push(j);
        for &k in &dependents[j] {
            missing[k] -= 1;
            if missing[k] == 0 {
                ready.push_back(k);
            }
        }
    }
    order
}

/// One cycle per strongly tangled group, each as the list of its jobs in need order.
fn cycles(graph: &JobGraph) -> Vec<Vec<usize>> {
    let n = graph.needs.len();
    let mut in_topo = vec![false; n];
    for &j in &graph.topo {
        in_topo[j] = true;
    }
    let mut done = in_topo.clone();
    let mut found = Vec::new();
    for start in 0..n {
        if done[start] {
            continue;
        }
        // Every job left out of the topological order has a need that is also left out, so
        // following such needs must come back to a job already on the walk.
        let mut walk = vec![start];
        let mut on_walk = vec![None; n];
        on_walk[start] = Some(0);
        let mut cur = start;
        while let Some(&next) = graph.needs[cur].iter().find(|&&d| !in_topo[d]) {
            if done[next] && on_walk[next].is_none() {
                break; // downstream of a cycle already reported
            }
            if let Some(at) = on_walk[next] {
                found.push(walk[at..].to_vec());
                break;
            }
            on_walk[next] = Some(walk.len());
            walk.push(next);
            cur = next;
        }
        for j in walk {
            done[j] = true;
        }
    }
    // A cycle walked along `needs` reads backwards; print it in run order (a → b: b needs a).
    // Start each at its first job in spec order.
    found
        .into_iter()
        .map(|mut c| {
            c.reverse();
            let first = c
                .iter()
                .enumerate()
                .min_by_key(|(_, j)| **j)
                .map_or(0, |(i, _)| i);
            c.rotate_left(first);
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::problem::{Problem, ProblemList};
    use super::super::{Format, Limits, RunSpec, parse_spec};
    use super::{JobGraph, Needs, check};

    #[test]
    fn a_valid_spec_keeps_the_graph_its_check_built_and_a_stored_one_builds_the_same() {
        let json = r#"{"jobs": {"a": {"run": "x"}, "b": {"run": "y", "needs": ["a"]},
                       "c": {"run": "z", "needs": ["a", "b"]}}}"#;
        let yaml =
            "jobs:\n  a: {run: x}\n  b: {run: y, needs: [a]}\n  c: {run: z, needs: [a, b]}\n";
        // Read from JSON or from YAML, it is kept.
        for (text, format) in [(json, Format::Json), (yaml, Format::Yaml)] {
            let spec = parse_spec(text.as_bytes(), format, "s", &Limits::default()).unwrap();
            let kept = spec.graph.0.get().expect("validation keeps the graph");
            assert_eq!(kept, &JobGraph::new(&spec));
            assert_eq!(kept.topo, [0, 1, 2]);
            assert_eq!(&kept.needs[2], [0, 1].as_slice());
            // A spec read back holds none until asked, then builds the same.
            let stored: RunSpec =
                serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert!(stored.graph.0.get().is_none());
            assert_eq!(stored.graph(), kept);
            assert_eq!(stored, spec, "the graph takes no part in equality");
        }
    }

    #[test]
    fn the_graph_is_kept_only_when_the_spec_has_no_problem_at_all() {
        let text = "jobs: {a: {run: [x]}, b: {run: [y], needs: [a]}}";
        let spec = parse_spec(text.as_bytes(), Format::Yaml, "s", &Limits::default()).unwrap();
        // Read back, the spec holds no graph; its needs are valid.
        let stored: RunSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        let mut problems: ProblemList = [Problem::new(
            "name",
            None,
            None,
            "a problem the reader found",
        )]
        .into_iter()
        .collect();
        check(&stored, &Vec::new(), false, &mut problems);
        let problems = problems.into_problems(Default::default());
        assert_eq!(problems.count(), 1, "{problems:?}");
        assert!(
            stored.graph.0.get().is_none(),
            "a spec with a problem keeps no graph"
        );
        let mut problems = ProblemList::default();
        check(&stored, &Vec::new(), false, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(stored.graph.0.get(), Some(&JobGraph::new(&stored)));
    }

    #[test]
    fn a_graph_leaves_out_needs_that_name_no_other_job() {
        let spec: RunSpec = serde_json::from_str(
            r#"{"name": "r", "jobs": [{"name": "a", "run": ["x"], "needs": ["a", "nope"]},
                                      {"name": "b", "run": ["x"], "needs": ["b", "a"]}]}"#,
        )
        .unwrap();
        let graph = JobGraph::new(&spec);
        assert_eq!(graph.needs.iter().collect::<Vec<_>>(), [&[][..], &[0][..]]);
        assert_eq!(graph.topo, [0, 1]);
    }

    #[test]
    fn needs_keep_each_jobs_row() {
        let rows: Vec<Vec<usize>> = vec![vec![], vec![0], vec![0, 1], vec![]];
        let needs = Needs::from_rows(rows.iter().map(|r| r.iter().copied()));
        assert_eq!(needs.len(), 4);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(&needs[i], row.as_slice(), "job {i}");
        }
        assert_eq!(needs.iter().collect::<Vec<_>>(), rows);
        assert!(Needs::from_rows(Vec::<Vec<usize>>::new()).is_empty());
    }

    #[test]
    fn transposed_rows_list_who_holds_each_row_in_order() {
        let rows: Vec<Vec<usize>> = vec![vec![], vec![0], vec![0, 1], vec![], vec![3, 1, 0]];
        let t = Needs::from_rows(rows.iter().map(|r| r.iter().copied())).transposed();
        let expected: Vec<Vec<usize>> = vec![vec![1, 2, 4], vec![2, 4], vec![], vec![4], vec![]];
        assert_eq!(t.iter().collect::<Vec<_>>(), expected);
        assert!(
            Needs::from_rows(Vec::<Vec<usize>>::new())
                .transposed()
                .is_empty()
        );
    }
}

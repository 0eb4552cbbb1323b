//! Graph checks on a built spec: every need names a job, no job needs itself, no cycles (the
//! cycle's path is printed). Also the job graph in index form that the DAG step walks.

use super::build::NeedPositions;
use super::fields::closest;
use super::model::RunSpec;
use super::problem::Problem;
use std::collections::HashMap;

pub(super) fn check(
    spec: &RunSpec,
    need_pos: &NeedPositions,
    orders: bool,
    problems: &mut Vec<Problem>,
) {
    let index = job_index(spec);
    let needs_key = if orders { "dependencies" } else { "needs" };
    let mut edges_ok = true;
    for (ji, job) in spec.jobs.iter().enumerate() {
        for (ni, need) in job.needs.iter().enumerate() {
            let pos = need_pos.get(ji).and_then(|p| p.get(ni)).copied().flatten();
            // Rendered only for a problem: most specs have none.
            let path = || {
                if orders {
                    format!("orders[{ji}].{needs_key}[{ni}]")
                } else {
                    format!("jobs.{}.{needs_key}[{ni}]", job.name)
                }
            };
            if need == &job.name {
                edges_ok = false;
                problems.push(Problem::new(
                    path(),
                    Some(&job.name),
                    pos,
                    format!("job `{need}` needs itself"),
                ));
            } else if !index.contains_key(need.as_str()) {
                edges_ok = false;
                let hint = closest(need, spec.jobs.iter().map(|j| j.name.as_str()))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                problems.push(Problem::new(
                    path(),
                    Some(&job.name),
                    pos,
                    format!("unknown job `{need}` in {needs_key}{hint}"),
                ));
            }
        }
    }
    if edges_ok {
        for cycle in cycles(&JobGraph::new(spec)) {
            let names: Vec<&str> = cycle.iter().map(|&i| spec.jobs[i].name.as_str()).collect();
            let first = cycle[0];
            let path = if orders {
                format!("orders[{first}].{needs_key}")
            } else {
                format!("jobs.{}.{needs_key}", names[0])
            };
            problems.push(Problem::new(
                path,
                Some(names[0]),
                need_pos
                    .get(first)
                    .and_then(|p| p.first())
                    .copied()
                    .flatten(),
                format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
            ));
        }
    }
}

/// The jobs of a run as indices: `needs[i]` are the jobs job `i` waits for; `topo` lists every
/// job after all of its needs (for an acyclic graph).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobGraph {
    pub needs: Vec<Vec<usize>>,
    pub topo: Vec<usize>,
}

impl JobGraph {
    /// Builds the graph; needs that name no job are dropped (validation reports them).
    pub fn new(spec: &RunSpec) -> JobGraph {
        let index = job_index(spec);
        let needs: Vec<Vec<usize>> = spec
            .jobs
            .iter()
            .map(|j| {
                j.needs
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect()
            })
            .collect();
        let topo = kahn(&needs);
        JobGraph { needs, topo }
    }
}

/// Job name → position in the spec.
fn job_index(spec: &RunSpec) -> HashMap<&str, usize> {
    spec.jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect()
}

/// Kahn's algorithm, stable in spec order. Jobs on a cycle are left out.
fn kahn(needs: &[Vec<usize>]) -> Vec<usize> {
    let n = needs.len();
    let mut dependents = vec![Vec::new(); n];
    let mut missing: Vec<usize> = needs.iter().map(Vec::len).collect();
    for (j, ns) in needs.iter().enumerate() {
        for &d in ns {
            dependents[d].push(j);
        }
    }
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

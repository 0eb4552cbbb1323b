//! A run's job graph laid out for an inline SVG: each job in the layer of its longest path from
//! a root (a job with no needs), layers left to right, jobs in spec order within a layer; and
//! the critical path, the chain of needs whose durations add up to the most.

/// One job as the layout sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// Indexes of the jobs it needs.
    pub needs: Vec<usize>,
    /// How long it ran (ms); 0 if it has not.
    pub duration_ms: i64,
}

/// Box geometry, in SVG user units.
pub const BOX_W: i64 = 168;
pub const BOX_H: i64 = 40;
const COL_GAP: i64 = 56;
const ROW_GAP: i64 = 16;
const PAD: i64 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub index: usize,
    pub layer: usize,
    pub row: usize,
    pub x: i64,
    pub y: i64,
    pub critical: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
    pub critical: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// One per node, in the nodes' order.
    pub boxes: Vec<Placed>,
    pub edges: Vec<Edge>,
    pub width: i64,
    pub height: i64,
    /// The critical path, root first (node indexes).
    pub critical: Vec<usize>,
}

/// The nodes in an order where each comes after what it needs (Kahn). Nodes on a cycle (which a
/// checked spec never has) come last, in their own order, so a bad graph still draws.
fn topological(nodes: &[Node]) -> Vec<usize> {
    let n = nodes.len();
    let mut indegree: Vec<usize> = nodes
        .iter()
        .map(|x| x.needs.iter().filter(|&&d| d < n).count())
        .collect();
    let mut users = vec![Vec::new(); n];
    for (i, node) in nodes.iter().enumerate() {
        for &d in node.needs.iter().filter(|&&d| d < n) {
            users[d].push(i);
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let i = order[next];
        next += 1;
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                order.push(u);
            }
        }
    }
    let placed: Vec<bool> = {
        let mut p = vec![false; n];
        for &i in &order {
            p[i] = true;
        }
        p
    };
    order.extend((0..n).filter(|&i| !placed[i]));
    order
}

pub fn layout(nodes: &[Node]) -> Layout {
    let n = nodes.len();
    let order = topological(nodes);
    let mut position = vec![0; n];
    for (p, &i) in order.iter().enumerate() {
        position[i] = p;
    }
    // Only needs placed earlier count: that drops the back edges of a cycle.
    let position = &position;
    let earlier = |i: usize| {
        nodes[i]
            .needs
            .iter()
            .copied()
            .filter(move |&d| d < n && position[d] < position[i])
    };
    let mut layer = vec![0usize; n];
    // Longest chain by duration ending at each node, and the need it came through.
    let mut total = vec![0i64; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    for &i in &order {
        layer[i] = earlier(i).map(|d| layer[d] + 1).max().unwrap_or(0);
        let best = earlier(i).max_by_key(|&d| (total[d], std::cmp::Reverse(d)));
        total[i] = nodes[i].duration_ms.max(0) + best.map_or(0, |d| total[d]);
        via[i] = best;
    }
    let mut critical = Vec::new();
    if let Some(end) = (0..n).max_by_key(|&i| (total[i], std::cmp::Reverse(i)))
        && total[end] > 0
    {
        let mut at = Some(end);
        while let Some(i) = at {
            critical.push(i);
            at = via[i];
        }
        critical.reverse();
    }
    let mut path_mark = vec![false; n];
    for &i in &critical {
        path_mark[i] = true;
    }
    let on_path = |i: usize| path_mark[i];

    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows_in = vec![0usize; layers];
    let mut boxes = Vec::with_capacity(n);
    for (i, &l) in layer.iter().enumerate() {
        let row = rows_in[l];
        rows_in[l] += 1;
        boxes.push(Placed {
            index: i,
            layer: l,
            row,
            x: PAD + l as i64 * (BOX_W + COL_GAP),
            y: PAD + row as i64 * (BOX_H + ROW_GAP),
            critical: on_path(i),
        });
    }
    let mut edges = Vec::new();
    for i in 0..n {
        for d in earlier(i) {
            let (a, b) = (&boxes[d], &boxes[i]);
            edges.push(Edge {
                from: d,
                to: i,
                x1: a.x + BOX_W,
                y1: a.y + BOX_H / 2,
                x2: b.x,
                y2: b.y + BOX_H / 2,
                critical: on_path(d) && on_path(i) && via[i] == Some(d),
            });
        }
    }
    let rows = rows_in.iter().copied().max().unwrap_or(0) as i64;
    Layout {
        boxes,
        edges,
        width: 2 * PAD + (layers as i64 * (BOX_W + COL_GAP) - COL_GAP).max(0),
        height: 2 * PAD + (rows * (BOX_H + ROW_GAP) - ROW_GAP).max(0),
        critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, needs: &[usize], duration_ms: i64) -> Node {
        Node {
            name: name.into(),
            needs: needs.to_vec(),
            duration_ms,
        }
    }

    #[test]
    fn layers_follow_the_longest_path_from_a_root() {
        // a → b → d, a → d, c alone: d sits after b, not beside it.
        let nodes = [
            node("a", &[], 1),
            node("b", &[0], 1),
            node("c", &[], 1),
            node("d", &[0, 1], 1),
        ];
        let l = layout(&nodes);
        let layers: Vec<usize> = l.boxes.iter().map(|b| b.layer).collect();
        assert_eq!(layers, [0, 1, 0, 2]);
        let rows: Vec<usize> = l.boxes.iter().map(|b| b.row).collect();
        assert_eq!(rows, [0, 0, 1, 0]);
        assert_eq!(l.edges.len(), 3);
        let e = l.edges.iter().find(|e| e.from == 1 && e.to == 3).unwrap();
        assert_eq!((e.x1, e.x2), (l.boxes[1].x + BOX_W, l.boxes[3].x));
        assert!(l.width >= l.boxes[3].x + BOX_W && l.height >= l.boxes[2].y + BOX_H);
    }

    #[test]
    fn the_critical_path_is_the_longest_chain_by_duration() {
        // a(1) → slow(10) → end(1); a → quick(2) → end: the path runs through `slow`,
        // though `quick` comes first in the spec.
        let nodes = [
            node("a", &[], 1),
            node("quick", &[0], 2),
            node("slow", &[0], 10),
            node("end", &[1, 2], 1),
            node("lonely", &[], 5),
        ];
        let l = layout(&nodes);
        assert_eq!(l.critical, [0, 2, 3]);
        let crit: Vec<bool> = l.boxes.iter().map(|b| b.critical).collect();
        assert_eq!(crit, [true, false, true, true, false]);
        let crit_edges: Vec<(usize, usize)> = l
            .edges
            .iter()
            .filter(|e| e.critical)
            .map(|e| (e.from, e.to))
            .collect();
        assert_eq!(crit_edges, [(0, 2), (2, 3)]);

        // A lone long job beats a chain that adds up to less.
        let nodes = [node("a", &[], 3), node("b", &[0], 3), node("big", &[], 7)];
        assert_eq!(layout(&nodes).critical, [2]);
    }

    #[test]
    fn nothing_ran_means_no_critical_path_and_a_cycle_still_draws() {
        let nodes = [node("a", &[], 0), node("b", &[0], 0)];
        assert!(layout(&nodes).critical.is_empty());
        assert_eq!(layout(&[]).boxes.len(), 0);

        let cyclic = [node("a", &[1], 1), node("b", &[0], 1), node("c", &[9], 1)];
        let l = layout(&cyclic);
        assert_eq!(l.boxes.len(), 3);
        assert_eq!(l.edges.len(), 1, "the back edge of the cycle is dropped");
    }
}

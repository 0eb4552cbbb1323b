//! The `orders` spelling of a run (`{"pr": …, "orders": [{"name", "cmds", "dependencies",
//! "timeout", "env_vars", "code"}]}`) and its `pr` reference, read into the same [`RunSpec`]
//! as the `jobs:` spelling.

use super::node::{Key, Value};
use super::read::*;
use super::*;

impl Reader {
    pub(super) fn pr(&mut self, node: &Node) -> Option<PrRef> {
        let map = self.mapping(
            node,
            "pr",
            None,
            "`pr` must be a mapping with `repo` and `number`",
        )?;
        self.check_keys(map, &["repo", "number", "sha"], "pr", None);
        let repo = match lookup(map, "repo") {
            Some(n) => self.string(n, "pr.repo", None),
            None => {
                self.err("pr.repo", None, node.pos, "missing `repo` (owner/name)");
                None
            }
        };
        if let Some(r) = &repo {
            let parts: Vec<&str> = r.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                self.err(
                    "pr.repo",
                    None,
                    lookup(map, "repo").and_then(|n| n.pos),
                    format!("`{r}` is not of the form owner/name"),
                );
            }
        }
        let number = match lookup(map, "number") {
            Some(Node {
                value: Value::Int(n),
                ..
            }) if *n > 0 => Some(*n as u64),
            Some(n) => {
                self.err(
                    "pr.number",
                    None,
                    n.pos,
                    format!(
                        "expected a positive pull request number, found {}",
                        n.kind()
                    ),
                );
                None
            }
            None => {
                self.err("pr.number", None, node.pos, "missing `number`");
                None
            }
        };
        let sha = lookup(map, "sha").and_then(|n| self.string(n, "pr.sha", None));
        Some(PrRef {
            repo: repo?,
            number: number?,
            sha,
        })
    }

    pub(super) fn orders(
        &mut self,
        top: &[(Key, Node)],
        pos: Option<Pos>,
        default_name: &str,
    ) -> Option<(RunSpec, NeedPositions)> {
        self.check_keys(top, &["name", "pr", "orders"], "", None);
        let pr = lookup(top, "pr").and_then(|n| self.pr(n));
        let fallback = pr
            .as_ref()
            .map(|p| format!("{}#{}", p.repo, p.number))
            .unwrap_or_else(|| default_name.to_string());
        let name = self.run_name(top, &fallback);
        let orders = lookup(top, "orders")?;
        let Value::Seq(items) = &orders.value else {
            self.err(
                "orders",
                None,
                orders.pos,
                format!("`orders` must be a list, found {}", orders.kind()),
            );
            return None;
        };
        if items.is_empty() {
            self.err(
                "orders",
                None,
                orders.pos.or(pos),
                "`orders` is empty: a run needs at least one order",
            );
        }
        self.check_count(items.len(), orders.pos, "orders");
        let mut jobs = Vec::new();
        let mut need_pos = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("orders[{i}]");
            let Some(map) = self.mapping(item, &path, None, "an order must be a mapping") else {
                continue;
            };
            let name = match lookup(map, "name") {
                Some(n) => self.string(n, &format!("{path}.name"), None),
                None => {
                    self.err(&format!("{path}.name"), None, item.pos, "missing `name`");
                    None
                }
            };
            let Some(name) = name else { continue };
            let name_pos = lookup(map, "name").and_then(|n| n.pos);
            if let Err(msg) = valid_job_name(&name) {
                self.err(&format!("{path}.name"), Some(&name), name_pos, msg);
            }
            if !names.insert(name.clone()) {
                self.err(
                    &format!("{path}.name"),
                    Some(&name),
                    name_pos,
                    format!("duplicate order name `{name}`"),
                );
            }
            if let Some((job, pos)) = self.job(&name, item, &path, &ORDERS) {
                jobs.push(job);
                need_pos.push(pos);
            }
        }
        Some((
            RunSpec {
                name,
                jobs,
                pr,
                ..RunSpec::default()
            },
            need_pos,
        ))
    }
}

//! Builds a [`RunSpec`] from a document tree, collecting every problem instead of stopping at
//! the first. Both spellings go through here: the run spec (`jobs:` mapping) and seed 1's
//! `orders` payload (a list with `cmds`, `dependencies`, `env_vars`, `code`).

use super::model::*;
use super::node::{Key, Node, Pos, Value};
use super::problem::Problem;
use crate::duration::parse_duration_ms;
use std::collections::BTreeMap;

/// Positions of each job's `needs` entries, for graph problems found after building.
pub(super) type NeedPositions = Vec<Vec<Option<Pos>>>;

/// The user-visible key names of one spelling.
struct Spelling {
    run: &'static str,
    needs: &'static str,
    env: &'static str,
    source: &'static str,
    allowed: &'static [&'static str],
}

const SPEC: Spelling = Spelling {
    run: "run",
    needs: "needs",
    env: "env",
    source: "source",
    allowed: &[
        "run", "needs", "when", "timeout", "retries", "env", "secrets", "image", "executor",
        "source",
    ],
};

const ORDERS: Spelling = Spelling {
    run: "cmds",
    needs: "dependencies",
    env: "env_vars",
    source: "code",
    allowed: &[
        "name",
        "cmds",
        "dependencies",
        "timeout",
        "env_vars",
        "secrets",
        "code",
        "when",
        "retries",
        "image",
        "executor",
    ],
};

pub(super) struct Builder {
    pub problems: Vec<Problem>,
    max_jobs: usize,
    max_commands: usize,
}

fn entries(node: &Node) -> Option<&[(Key, Node)]> {
    match &node.value {
        Value::Map(e) => Some(e),
        _ => None,
    }
}

fn lookup<'a>(map: &'a [(Key, Node)], key: &str) -> Option<&'a Node> {
    map.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
}

/// `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, at most 100 characters.
pub fn valid_job_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("job name is empty".into());
    }
    if name.len() > 100 {
        return Err(format!("job name `{name}` is longer than 100 characters"));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!(
            "job name `{name}` may only use letters, digits, `_`, `.` and `-`, and must start with a letter or digit"
        ));
    }
    Ok(())
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Builder {
    pub fn new(max_jobs: usize, max_commands: usize) -> Self {
        Builder {
            problems: Vec::new(),
            max_jobs,
            max_commands,
        }
    }

    fn err(&mut self, path: &str, job: Option<&str>, pos: Option<Pos>, msg: impl Into<String>) {
        self.problems.push(Problem::new(path, job, pos, msg));
    }

    fn check_keys(&mut self, map: &[(Key, Node)], allowed: &[&str], path: &str, job: Option<&str>) {
        for (i, (k, _)) in map.iter().enumerate() {
            let at = || join(path, &k.name);
            if !allowed.contains(&k.name.as_str()) {
                let hint = closest(&k.name, allowed.iter().copied())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.err(
                    &at(),
                    job,
                    k.pos,
                    format!(
                        "unknown key `{}`{hint}; expected one of: {}",
                        k.name,
                        allowed.join(", ")
                    ),
                );
            } else if map[..i].iter().any(|(prev, _)| prev.name == k.name) {
                self.err(
                    &at(),
                    job,
                    k.pos,
                    format!("key `{}` appears more than once", k.name),
                );
            }
        }
    }

    fn string(&mut self, node: &Node, path: &str, job: Option<&str>) -> Option<String> {
        match node.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.err(
                    path,
                    job,
                    node.pos,
                    format!("expected a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A string or a list of strings.
    /// A string or a list of strings. `path` is only rendered for a problem.
    fn strings(
        &mut self,
        node: &Node,
        path: &dyn Fn() -> String,
        job: Option<&str>,
    ) -> Option<Vec<(String, Option<Pos>)>> {
        match &node.value {
            Value::Str(s) => Some(vec![(s.clone(), node.pos)]),
            Value::Null => Some(Vec::new()),
            Value::Seq(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) => out.push((s.to_string(), item.pos)),
                        None => {
                            ok = false;
                            self.err(
                                &format!("{}[{i}]", path()),
                                job,
                                item.pos,
                                format!("expected a string, found {}", item.kind()),
                            );
                        }
                    }
                }
                ok.then_some(out)
            }
            _ => {
                self.err(
                    &path(),
                    job,
                    node.pos,
                    format!(
                        "expected a string or a list of strings, found {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    /// Builds from a `jobs:`-style run spec or an `orders` payload.
    pub fn run_spec(&mut self, doc: &Node, default_name: &str) -> Option<(RunSpec, NeedPositions)> {
        let Some(top) = entries(doc) else {
            self.err(
                "",
                None,
                doc.pos,
                format!(
                    "a run spec must be a mapping with a `jobs` key, found {}",
                    doc.kind()
                ),
            );
            return None;
        };
        if lookup(top, "orders").is_some() {
            return self.orders(top, doc.pos, default_name);
        }
        self.check_keys(top, &["name", "on", "jobs", "pr"], "", None);
        let name = self.run_name(top, default_name);
        let pr = lookup(top, "pr").and_then(|n| self.pr(n));
        let on = lookup(top, "on").map(Node::to_json);
        let Some(jobs_node) = lookup(top, "jobs") else {
            self.err(
                "jobs",
                None,
                doc.pos,
                "missing `jobs`: a run needs at least one job",
            );
            return None;
        };
        let Some(job_entries) = entries(jobs_node) else {
            self.err(
                "jobs",
                None,
                jobs_node.pos,
                format!(
                    "`jobs` must be a mapping of job name to job, found {}",
                    jobs_node.kind()
                ),
            );
            return None;
        };
        if job_entries.is_empty() {
            self.err(
                "jobs",
                None,
                jobs_node.pos,
                "`jobs` is empty: a run needs at least one job",
            );
        }
        self.check_count(job_entries.len(), jobs_node.pos, "jobs");
        let mut jobs = Vec::new();
        let mut need_pos = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(job_entries.len());
        for (key, node) in job_entries {
            let path = join("jobs", &key.name);
            if let Err(msg) = valid_job_name(&key.name) {
                self.err(&path, Some(&key.name), key.pos, msg);
            }
            if !seen.insert(key.name.as_str()) {
                self.err(
                    &path,
                    Some(&key.name),
                    key.pos,
                    format!("duplicate job name `{}`", key.name),
                );
            }
            if let Some((job, pos)) = self.job(&key.name, node, &path, &SPEC) {
                jobs.push(job);
                need_pos.push(pos);
            }
        }
        Some((RunSpec { name, jobs, on, pr }, need_pos))
    }

    fn check_count(&mut self, n: usize, pos: Option<Pos>, path: &str) {
        if n > self.max_jobs {
            self.err(
                path,
                None,
                pos,
                format!(
                    "{n} jobs is more than the limit of {} jobs per run",
                    self.max_jobs
                ),
            );
        }
    }

    fn run_name(&mut self, top: &[(Key, Node)], default_name: &str) -> String {
        match lookup(top, "name") {
            None => default_name.to_string(),
            Some(n) => match self.string(n, "name", None) {
                Some(s) if s.trim().is_empty() => {
                    self.err("name", None, n.pos, "run name is empty");
                    default_name.to_string()
                }
                Some(s) if s.chars().count() > 200 => {
                    self.err(
                        "name",
                        None,
                        n.pos,
                        "run name is longer than 200 characters",
                    );
                    default_name.to_string()
                }
                Some(s) => s,
                None => default_name.to_string(),
            },
        }
    }

    fn pr(&mut self, node: &Node) -> Option<PrRef> {
        let Some(map) = entries(node) else {
            self.err(
                "pr",
                None,
                node.pos,
                format!(
                    "`pr` must be a mapping with `repo` and `number`, found {}",
                    node.kind()
                ),
            );
            return None;
        };
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

    fn orders(
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
            let Some(map) = entries(item) else {
                self.err(
                    &path,
                    None,
                    item.pos,
                    format!("an order must be a mapping, found {}", item.kind()),
                );
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
                on: None,
                pr,
            },
            need_pos,
        ))
    }

    fn job(
        &mut self,
        name: &str,
        node: &Node,
        path: &str,
        sp: &Spelling,
    ) -> Option<(JobSpec, Vec<Option<Pos>>)> {
        let job = Some(name);
        let Some(map) = entries(node) else {
            self.err(
                path,
                job,
                node.pos,
                format!(
                    "a job must be a mapping with `{}`, found {}",
                    sp.run,
                    node.kind()
                ),
            );
            return None;
        };
        self.check_keys(map, sp.allowed, path, job);

        let run_path = || join(path, sp.run);
        let run = match lookup(map, sp.run) {
            None => {
                self.err(
                    &run_path(),
                    job,
                    node.pos,
                    format!("missing `{}`: a job needs at least one command", sp.run),
                );
                Vec::new()
            }
            Some(n) => {
                let cmds = self.strings(n, &run_path, job).unwrap_or_default();
                if cmds.is_empty() && matches!(n.value, Value::Seq(_) | Value::Null) {
                    self.err(
                        &run_path(),
                        job,
                        n.pos,
                        format!("`{}` is empty: a job needs at least one command", sp.run),
                    );
                }
                for (i, (c, p)) in cmds.iter().enumerate() {
                    if c.trim().is_empty() {
                        self.err(&format!("{}[{i}]", run_path()), job, *p, "command is empty");
                    }
                }
                if cmds.len() > self.max_commands {
                    self.err(
                        &run_path(),
                        job,
                        n.pos,
                        format!(
                            "{} commands is more than the limit of {}",
                            cmds.len(),
                            self.max_commands
                        ),
                    );
                }
                cmds.into_iter().map(|(c, _)| c).collect()
            }
        };

        let needs_path = || join(path, sp.needs);
        let needs_with_pos = match lookup(map, sp.needs) {
            None => Vec::new(),
            Some(n) => self.strings(n, &needs_path, job).unwrap_or_default(),
        };
        for (i, (need, p)) in needs_with_pos.iter().enumerate() {
            if needs_with_pos[..i].iter().any(|(prev, _)| prev == need) {
                self.err(
                    &format!("{}[{i}]", needs_path()),
                    job,
                    *p,
                    format!("`{need}` is listed twice"),
                );
            }
        }

        let when = lookup(map, "when")
            .map(|n| self.when(n, &join(path, "when"), job))
            .unwrap_or_default();

        let timeout_ms = match lookup(map, "timeout") {
            None => DEFAULT_TIMEOUT_MS,
            Some(n) => self
                .duration(n, &join(path, "timeout"), job, 1, MAX_TIMEOUT_MS)
                .unwrap_or(DEFAULT_TIMEOUT_MS),
        };

        let (retries, retry_backoff_ms) = match lookup(map, "retries") {
            None => (0, DEFAULT_RETRY_BACKOFF_MS),
            Some(n) => self.retries(n, &join(path, "retries"), job),
        };

        let env = match lookup(map, sp.env) {
            None => BTreeMap::new(),
            Some(n) => self.env(n, &join(path, sp.env), job),
        };

        let secrets_path = || join(path, "secrets");
        let secrets: Vec<String> = match lookup(map, "secrets") {
            None => Vec::new(),
            Some(n) => self.strings(n, &secrets_path, job).unwrap_or_default().into_iter().enumerate().filter_map(|(i, (s, p))| {
                if valid_env_name(&s) { Some(s) } else {
                    self.err(&format!("{}[{i}]", secrets_path()), job, p, format!("`{s}` is not a valid secret name (letters, digits and `_`, not starting with a digit)"));
                    None
                }
            }).collect(),
        };

        let image = lookup(map, "image").and_then(|n| self.string(n, &join(path, "image"), job));
        if let (Some(img), Some(n)) = (&image, lookup(map, "image"))
            && img.trim().is_empty()
        {
            self.err(&join(path, "image"), job, n.pos, "image is empty");
        }
        let executor = match lookup(map, "executor") {
            None if image.is_some() => ExecutorKind::Docker,
            None => ExecutorKind::Local,
            Some(n) => match n.as_str() {
                Some("local") => ExecutorKind::Local,
                Some("docker") => ExecutorKind::Docker,
                Some("agent") => ExecutorKind::Agent,
                _ => {
                    self.err(
                        &join(path, "executor"),
                        job,
                        n.pos,
                        format!(
                            "unknown executor {}; expected one of: local, docker, agent",
                            n.scalar_text()
                                .map(|s| format!("`{s}`"))
                                .unwrap_or_else(|| n.kind().to_string())
                        ),
                    );
                    ExecutorKind::Local
                }
            },
        };
        if executor == ExecutorKind::Docker && image.is_none() {
            self.err(
                &join(path, "image"),
                job,
                node.pos,
                "the docker executor needs an `image`",
            );
        }
        let source =
            lookup(map, sp.source).and_then(|n| self.source(n, &join(path, sp.source), job));

        // A job with problems is still returned so graph checks see its name and needs; the
        // caller rejects the whole spec when any problem was found.
        let needs = needs_with_pos.iter().map(|(n, _)| n.clone()).collect();
        let positions = needs_with_pos.into_iter().map(|(_, p)| p).collect();
        Some((
            JobSpec {
                name: name.to_string(),
                run,
                needs,
                when,
                timeout_ms,
                retries,
                retry_backoff_ms,
                env,
                secrets,
                image,
                executor,
                source,
            },
            positions,
        ))
    }

    fn when(&mut self, node: &Node, path: &str, job: Option<&str>) -> When {
        let mut when = When::default();
        let Some(map) = entries(node) else {
            self.err(
                path,
                job,
                node.pos,
                format!(
                    "`when` must be a mapping with `status`, `event` or `branch`, found {}",
                    node.kind()
                ),
            );
            return when;
        };
        self.check_keys(map, &["status", "event", "branch"], path, job);
        if let Some(n) = lookup(map, "status") {
            let sp = join(path, "status");
            let items = self.strings(n, &|| sp.clone(), job).unwrap_or_default();
            if items.is_empty() {
                self.err(
                    &sp,
                    job,
                    n.pos,
                    "`status` is empty; use success, failure or both",
                );
            } else {
                when.status.success = false;
                for (s, p) in items {
                    match s.as_str() {
                        "success" => when.status.success = true,
                        "failure" => when.status.failure = true,
                        other => self.err(
                            &sp,
                            job,
                            p,
                            format!("unknown status `{other}`; expected success or failure"),
                        ),
                    }
                }
            }
        }
        if let Some(n) = lookup(map, "event") {
            when.event = self
                .strings(n, &|| join(path, "event"), job)
                .unwrap_or_default()
                .into_iter()
                .map(|(s, _)| s)
                .collect();
        }
        if let Some(n) = lookup(map, "branch") {
            when.branch = self
                .strings(n, &|| join(path, "branch"), job)
                .unwrap_or_default()
                .into_iter()
                .map(|(s, _)| s)
                .collect();
        }
        when
    }

    fn duration(
        &mut self,
        node: &Node,
        path: &str,
        job: Option<&str>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match &node.value {
            Value::Int(i) if *i >= 0 => parse_duration_ms(&i.to_string()),
            Value::Str(s) => parse_duration_ms(s),
            _ => Err(format!(
                "expected a duration like `10m` or a number of seconds, found {}",
                node.kind()
            )),
        };
        match parsed {
            Err(msg) => {
                self.err(path, job, node.pos, msg);
                None
            }
            Ok(ms) if ms < min => {
                self.err(path, job, node.pos, "duration must be greater than zero");
                None
            }
            Ok(ms) if ms > max => {
                self.err(
                    path,
                    job,
                    node.pos,
                    format!(
                        "{} is longer than the limit of {}",
                        crate::duration::format_duration_ms(ms),
                        crate::duration::format_duration_ms(max)
                    ),
                );
                None
            }
            Ok(ms) => Some(ms),
        }
    }

    fn retries(&mut self, node: &Node, path: &str, job: Option<&str>) -> (u32, u64) {
        let count = |b: &mut Self, n: &Node, p: &str| match n.value {
            Value::Int(i) if (0..=MAX_RETRIES as i64).contains(&i) => i as u32,
            _ => {
                b.err(
                    p,
                    job,
                    n.pos,
                    format!("expected a number of retries from 0 to {MAX_RETRIES}"),
                );
                0
            }
        };
        match entries(node) {
            None => (count(self, node, path), DEFAULT_RETRY_BACKOFF_MS),
            Some(map) => {
                self.check_keys(map, &["count", "backoff"], path, job);
                let c = lookup(map, "count")
                    .map(|n| count(self, n, &join(path, "count")))
                    .unwrap_or(1);
                let b = lookup(map, "backoff")
                    .and_then(|n| self.duration(n, &join(path, "backoff"), job, 0, 3_600_000))
                    .unwrap_or(DEFAULT_RETRY_BACKOFF_MS);
                (c, b)
            }
        }
    }

    fn env(&mut self, node: &Node, path: &str, job: Option<&str>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some(map) = entries(node) else {
            self.err(
                path,
                job,
                node.pos,
                format!(
                    "expected a mapping of variable name to value, found {}",
                    node.kind()
                ),
            );
            return env;
        };
        for (k, v) in map {
            let at = join(path, &k.name);
            if !valid_env_name(&k.name) {
                self.err(
                    &at,
                    job,
                    k.pos,
                    format!("`{}` is not a valid environment variable name", k.name),
                );
            } else if k.name.starts_with("GANTRY_") {
                self.err(&at, job, k.pos, "names starting with GANTRY_ are reserved");
            }
            match v.scalar_text() {
                Some(text) => {
                    env.insert(k.name.clone(), text);
                }
                None => self.err(
                    &at,
                    job,
                    v.pos,
                    format!("expected a string, number or boolean, found {}", v.kind()),
                ),
            }
        }
        env
    }

    fn source(&mut self, node: &Node, path: &str, job: Option<&str>) -> Option<Source> {
        let Some(map) = entries(node) else {
            self.err(
                path,
                job,
                node.pos,
                format!("expected a mapping with `git`, found {}", node.kind()),
            );
            return None;
        };
        self.check_keys(map, &["git"], path, job);
        let git = lookup(map, "git")?;
        let gp = join(path, "git");
        let Some(g) = entries(git) else {
            self.err(
                &gp,
                job,
                git.pos,
                format!(
                    "expected a mapping with `url` and `ref`, found {}",
                    git.kind()
                ),
            );
            return None;
        };
        self.check_keys(g, &["url", "ref"], &gp, job);
        let url = match lookup(g, "url") {
            Some(n) => self.string(n, &join(&gp, "url"), job)?,
            None => {
                self.err(&join(&gp, "url"), job, git.pos, "missing `url`");
                return None;
            }
        };
        let git_ref = lookup(g, "ref").and_then(|n| self.string(n, &join(&gp, "ref"), job));
        Some(Source {
            git: GitSource { url, git_ref },
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The allowed word nearest to a misspelling, if it is near enough to be a likely typo.
pub(super) fn closest<'a>(
    word: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    options
        .into_iter()
        .map(|o| (edit_distance(word, o), o))
        .filter(|(d, o)| *d <= 2.max(o.len() / 4) && *d < o.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

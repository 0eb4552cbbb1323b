//! Reads a document tree (JSON or YAML, see `node.rs`) into a [`RunSpec`], collecting every
//! problem instead of stopping at the first. Both spellings go through here: the run spec
//! (`jobs:` mapping) and the `orders` payload (a list with `cmds`, `dependencies`,
//! `env_vars`, `code`; read in `orders.rs`). The fields that need more than a string or a list
//! are read in `fields.rs` and `pipeline.rs`; the checks across jobs (needs, cycles) in
//! `graph.rs`.

use super::fields::closest;
use super::model::*;
use super::node::{Key, Node, Pos, Value};
use super::problem::{Problem, ProblemList};
use std::collections::{BTreeMap, HashMap};

/// Where each job's needs are in the document (their index in its list, and line and column),
/// for graph problems found after reading.
pub(super) type NeedPositions = Vec<JobNeedPositions>;

/// One job's needs: each one's index in the document's list, and its line and column.
pub(super) type JobNeedPositions = Vec<(usize, Option<Pos>)>;

/// How many of a job's repeated needs its one problem names.
const REPEATS_NAMED: usize = 5;

/// The user-visible key names of one spelling.
pub(super) struct Spelling {
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
        "run",
        "needs",
        "when",
        "timeout",
        "retries",
        "rerun_lost",
        "env",
        "secrets",
        "image",
        "executor",
        "runs_on",
        "source",
        "container",
        "artifacts",
        "cache",
    ],
};

pub(super) const ORDERS: Spelling = Spelling {
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
        "rerun_lost",
        "image",
        "executor",
    ],
};

/// Reads one document, keeping the problems it finds; the spec it returns is valid only if
/// `problems` is empty once every check has run.
pub(super) struct Reader {
    pub problems: ProblemList,
    max_jobs: usize,
    max_commands: usize,
}

pub(super) fn entries(node: &Node) -> Option<&[(Key, Node)]> {
    match &node.value {
        Value::Map(e) => Some(e),
        _ => None,
    }
}

pub(super) fn lookup<'a>(map: &'a [(Key, Node)], key: &str) -> Option<&'a Node> {
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

pub(super) fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Reader {
    pub fn new(max_jobs: usize, max_commands: usize) -> Self {
        Reader {
            problems: ProblemList::default(),
            max_jobs,
            max_commands,
        }
    }

    pub(super) fn err(
        &mut self,
        path: &str,
        job: Option<&str>,
        pos: Option<Pos>,
        msg: impl Into<String>,
    ) {
        self.problems.push(Problem::new(path, job, pos, msg));
    }

    /// `node`'s entries if it is a mapping; otherwise reports `<what>, found <its kind>`.
    pub(super) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        job: Option<&str>,
        what: &str,
    ) -> Option<&'n [(Key, Node)]> {
        let map = entries(node);
        if map.is_none() {
            self.err(
                path,
                job,
                node.pos,
                format!("{what}, found {}", node.kind()),
            );
        }
        map
    }

    pub(super) fn check_keys(
        &mut self,
        map: &[(Key, Node)],
        allowed: &[&str],
        path: &str,
        job: Option<&str>,
    ) {
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

    pub(super) fn string(&mut self, node: &Node, path: &str, job: Option<&str>) -> Option<String> {
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

    /// A string or a list of strings. `path` is only rendered for a problem.
    pub(super) fn strings(
        &mut self,
        node: &Node,
        path: &dyn Fn() -> String,
        job: Option<&str>,
    ) -> Option<Vec<(String, Option<Pos>)>> {
        let items = self.str_items(node, path, job)?;
        Some(items.into_iter().map(|(s, p)| (s.to_string(), p)).collect())
    }

    /// [`Reader::strings`] borrowed from the document, for lists that may be long and are
    /// checked before they are kept.
    fn str_items<'n>(
        &mut self,
        node: &'n Node,
        path: &dyn Fn() -> String,
        job: Option<&str>,
    ) -> Option<Vec<(&'n str, Option<Pos>)>> {
        match &node.value {
            Value::Str(s) => Some(vec![(s.as_str(), node.pos)]),
            Value::Null => Some(Vec::new()),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) => out.push((s, item.pos)),
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

    /// Reads a `jobs:`-style run spec or an `orders` payload.
    pub fn run_spec(&mut self, doc: &Node, default_name: &str) -> Option<(RunSpec, NeedPositions)> {
        let top = self.mapping(
            doc,
            "",
            None,
            "a run spec must be a mapping with a `jobs` key",
        )?;
        if lookup(top, "orders").is_some() {
            return self.orders(top, doc.pos, default_name);
        }
        self.check_keys(
            top,
            &["name", "on", "jobs", "pr", "concurrency", "report"],
            "",
            None,
        );
        let name = self.run_name(top, default_name);
        let pr = lookup(top, "pr").and_then(|n| self.pr(n));
        let on = lookup(top, "on").map(|n| self.triggers(n));
        let concurrency = match lookup(top, "concurrency") {
            Some(n) => self.concurrency(n),
            None => on.as_ref().map(|_| Default::default()),
        };
        let report = lookup(top, "report")
            .map(|n| self.report(n))
            .unwrap_or_default();
        let Some(jobs_node) = lookup(top, "jobs") else {
            self.err(
                "jobs",
                None,
                doc.pos,
                "missing `jobs`: a run needs at least one job",
            );
            return None;
        };
        let job_entries = self.mapping(
            jobs_node,
            "jobs",
            None,
            "`jobs` must be a mapping of job name to job",
        )?;
        if job_entries.is_empty() {
            self.err(
                "jobs",
                None,
                jobs_node.pos,
                "`jobs` is empty: a run needs at least one job",
            );
        }
        self.check_count(job_entries.len(), jobs_node.pos, "jobs");
        let mut jobs = Vec::with_capacity(job_entries.len());
        let mut need_pos = Vec::with_capacity(job_entries.len());
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
        let spec = RunSpec {
            name,
            jobs,
            on,
            pr,
            concurrency,
            report,
            graph: Default::default(),
        };
        Some((spec, need_pos))
    }

    pub(super) fn check_count(&mut self, n: usize, pos: Option<Pos>, path: &str) {
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

    pub(super) fn run_name(&mut self, top: &[(Key, Node)], default_name: &str) -> String {
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

    pub(super) fn job(
        &mut self,
        name: &str,
        node: &Node,
        path: &str,
        sp: &Spelling,
    ) -> Option<(JobSpec, JobNeedPositions)> {
        let job = Some(name);
        let map = self.mapping(
            node,
            path,
            job,
            &format!("a job must be a mapping with `{}`", sp.run),
        )?;
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
                // A list whose items are not all strings has been reported item by item.
                let read = self.str_items(n, &run_path, job);
                let unreadable = read.is_none();
                let cmds = read.unwrap_or_default();
                if cmds.is_empty() && !unreadable && matches!(n.value, Value::Seq(_) | Value::Null)
                {
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
                    Vec::new() // the spec is refused: not worth a copy
                } else {
                    cmds.into_iter().map(|(c, _)| c.to_string()).collect()
                }
            }
        };

        let needs_path = || join(path, sp.needs);
        let needs_with_pos = match lookup(map, sp.needs) {
            None => Vec::new(),
            Some(n) => self.str_items(n, &needs_path, job).unwrap_or_default(),
        };
        let needs_with_pos = self.distinct_needs(needs_with_pos, &needs_path, job);

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

        let rerun_lost = match lookup(map, "rerun_lost") {
            None => true,
            Some(n) => self
                .boolean(n, &join(path, "rerun_lost"), job)
                .unwrap_or(true),
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

        let artifacts_path = || join(path, "artifacts");
        let artifacts: Vec<String> = match lookup(map, "artifacts") {
            None => Vec::new(),
            Some(n) => self
                .strings(n, &artifacts_path, job)
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .filter_map(|(i, (s, p))| {
                    let checked = super::artifacts::check_path(&s);
                    if let Err(why) = &checked {
                        self.err(&format!("{}[{i}]", artifacts_path()), job, p, why.clone());
                    }
                    checked.ok().map(|()| s)
                })
                .collect(),
        };

        let cache = lookup(map, "cache").and_then(|n| self.cache(n, &join(path, "cache"), job));

        let image = lookup(map, "image").and_then(|n| self.string(n, &join(path, "image"), job));
        if let (Some(img), Some(n)) = (&image, lookup(map, "image"))
            && img.trim().is_empty()
        {
            self.err(&join(path, "image"), job, n.pos, "image is empty");
        }
        let runs_on = lookup(map, "runs_on").map(|n| self.runs_on(n, &join(path, "runs_on"), job));
        let executor = self.executor(map, runs_on.is_some(), image.is_some(), path, job);
        self.remote_job(map, executor, timeout_ms, node.pos, path, job);
        if let (Some(_), Some(n)) = (&runs_on, lookup(map, "executor"))
            && executor != ExecutorKind::Agent
        {
            let why = "`runs_on` runs the job on an agent; leave `executor` out or make it agent";
            self.err(&join(path, "executor"), job, n.pos, why);
        }
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
        let container = lookup(map, "container").map(|n| {
            if executor != ExecutorKind::Docker
                && !(executor == ExecutorKind::Agent && image.is_some())
            {
                self.err(
                    &join(path, "container"),
                    job,
                    n.pos,
                    "`container` options need a docker job (give it an `image`)",
                );
            }
            self.container(n, &join(path, "container"), job)
        });

        // A job with problems is still returned so graph checks see its name and needs; the
        // caller rejects the whole spec when any problem was found.
        let (needs, positions) = needs_with_pos
            .into_iter()
            .map(|(i, n, p)| (n, (i, p)))
            .unzip();
        Some((
            JobSpec {
                name: name.to_string(),
                run,
                needs,
                when,
                timeout_ms,
                retries,
                retry_backoff_ms,
                rerun_lost,
                env,
                secrets,
                image,
                executor,
                runs_on: runs_on.unwrap_or_default(),
                source: source.map(Box::new),
                container: container.map(Box::new),
                aws: None,
                artifacts,
                cache: cache.map(Box::new),
            },
            positions,
        ))
    }
}

impl Reader {
    /// A job's needs with each name once, each with its index in the document's list. A name
    /// listed more than once is one problem for the job however often it is repeated (at the
    /// first repeat), naming the first few such names; the graph checks then see each name
    /// once, so a repeated unknown or self need is not reported again per repeat.
    fn distinct_needs(
        &mut self,
        needs: Vec<(&str, Option<Pos>)>,
        path: &dyn Fn() -> String,
        job: Option<&str>,
    ) -> Vec<(usize, String, Option<Pos>)> {
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(needs.len());
        let mut repeated: Vec<&str> = Vec::new();
        let mut first_repeat = None;
        let mut keep = Vec::with_capacity(needs.len());
        for (i, (name, pos)) in needs.iter().enumerate() {
            let times = seen.entry(*name).or_insert(0);
            *times += 1;
            keep.push(*times == 1);
            if *times == 2 {
                repeated.push(*name);
                first_repeat.get_or_insert((i, *pos));
            }
        }
        if let Some((at, pos)) = first_repeat {
            let times = |name: &str| match seen[name] {
                2 => "twice".to_string(),
                n => format!("{n} times"),
            };
            let msg = if let [name] = repeated.as_slice() {
                format!("`{name}` is listed {}; list each need once", times(name))
            } else {
                let named: Vec<String> = repeated
                    .iter()
                    .take(REPEATS_NAMED)
                    .map(|name| format!("`{name}` ({})", times(name)))
                    .collect();
                let more = match repeated.len().saturating_sub(REPEATS_NAMED) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                format!(
                    "{}{more} are listed more than once; list each need once",
                    named.join(", ")
                )
            };
            self.err(&format!("{}[{at}]", path()), job, pos, msg);
        }
        let distinct = seen.len();
        if distinct > self.max_jobs {
            // More than any run can have: refused, and the names are not worth a copy.
            self.err(
                &path(),
                job,
                needs.first().and_then(|(_, p)| *p),
                format!(
                    "{distinct} needs is more than the limit of {} jobs per run",
                    self.max_jobs
                ),
            );
            return Vec::new();
        }
        needs
            .into_iter()
            .enumerate()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|((i, (name, pos)), _)| (i, name.to_string(), pos))
            .collect()
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

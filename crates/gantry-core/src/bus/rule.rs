//! Rules: a name, an event pattern or a schedule, input paths and one target, as `gantry.toml`
//! and `/api/v1/rules` spell them — checked on write with every reason, so a stored rule
//! always compiles. Also the input transformer: input paths (`$.detail.service`) read from an
//! event, and `{name}` placeholders filled from them.

pub use super::deploy_target::DeployTarget;
use super::pattern::Pattern;
use super::schedule::Schedule;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A rule as written (and stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The schedule's time zone (IANA name); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What a schedule does about due times missed while the server was down: `once` (fire
    /// once, for the latest; the default), `skip` (fire none), `all` (fire each, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_paths: BTreeMap<String, String>,
    pub target: Value,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
}

fn yes() -> bool {
    true
}

/// EventBridge's retry policy for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_attempts")]
    pub maximum_retry_attempts: u32,
    #[serde(default = "default_age")]
    pub maximum_event_age_in_seconds: u32,
}

fn default_attempts() -> u32 {
    185
}
fn default_age() -> u32 {
    86_400
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            maximum_retry_attempts: default_attempts(),
            maximum_event_age_in_seconds: default_age(),
        }
    }
}

/// Where a matched event goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Submit a run: an inline spec (JSON) or a spec file's path.
    Run(RunTarget),
    /// POST the event to a URL (signed).
    Http(String),
    StartService(String),
    StopService(String),
    /// Start a deployer session, as `POST /deploy` does.
    Deploy(DeployTarget),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunTarget {
    Inline(Value),
    File(String),
}

/// A rule ready to use: its pattern or schedule compiled, its target known.
#[derive(Debug, Clone)]
pub struct Rule {
    pub def: RuleDef,
    pub trigger: Trigger,
    pub target: Target,
    pub inputs: Vec<(String, JsonPath)>,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub enum Trigger {
    Pattern(Pattern),
    Schedule(Schedule),
}

/// `$`, `$.a.b`, `$.a[0].b`, `$['a-b']`: the path forms of EventBridge input transformers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let bad = || format!("`{text}` is not a JSON path like $.detail.service");
        let mut rest = text.strip_prefix('$').ok_or_else(bad)?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(bad());
                }
                steps.push(Step::Key(r[..end].to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix("['") {
                let end = r.find("']").ok_or_else(bad)?;
                steps.push(Step::Key(r[..end].to_string()));
                rest = &r[end + 2..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(bad)?;
                let i = r[..end].parse().map_err(|_| bad())?;
                steps.push(Step::Index(i));
                rest = &r[end + 1..];
            } else {
                return Err(bad());
            }
        }
        Ok(JsonPath(steps))
    }

    pub fn get<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.0.iter().try_fold(v, |v, s| match s {
            Step::Key(k) => v.get(k),
            Step::Index(i) => v.get(*i),
        })
    }
}

const TARGETS: [&str; 5] = ["run", "http", "start_service", "stop_service", "deploy"];

impl Rule {
    /// Checks a rule; every problem, joined, when it is not valid.
    pub fn compile(def: RuleDef) -> Result<Rule, String> {
        let mut problems = Vec::new();
        if let Err(e) = crate::spec::valid_job_name(&def.name) {
            problems.push(format!("name: {}", e.replace("job name", "rule name")));
        }
        let trigger = match (&def.pattern, &def.schedule) {
            (Some(p), None) => match Pattern::from_json(p) {
                Ok(p) => Some(Trigger::Pattern(p)),
                Err(e) => {
                    problems.push(format!("pattern: {}", e.0));
                    None
                }
            },
            (None, Some(s)) => match Schedule::parse_in(s, def.timezone.as_deref()) {
                Ok(s) => Some(Trigger::Schedule(s)),
                Err(e) => {
                    problems.push(format!("schedule: {}", e.0));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push("give either `pattern` or `schedule`, not both".into());
                None
            }
            (None, None) => {
                problems.push("a rule needs a `pattern` or a `schedule`".into());
                None
            }
        };
        if def.timezone.is_some() && def.schedule.is_none() {
            problems.push("`timezone` only applies to a `schedule`".into());
        }
        match def.missed.as_deref() {
            None => {}
            Some("once" | "skip" | "all") if def.schedule.is_some() => {}
            Some("once" | "skip" | "all") => {
                problems.push("`missed` only applies to a `schedule`".into());
            }
            Some(other) => {
                problems.push(format!("missed: `{other}` is not one of once, skip, all"))
            }
        }
        let mut inputs = Vec::new();
        for (name, path) in &def.input_paths {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
                problems.push(format!(
                    "input_paths: `{name}` must be letters, digits and `_`"
                ));
            }
            match JsonPath::parse(path) {
                Ok(p) => inputs.push((name.clone(), p)),
                Err(e) => problems.push(format!("input_paths.{name}: {e}")),
            }
        }
        let target = match target(&def.target, def.input_paths.keys().map(String::as_str)) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(format!("target: {e}"));
                None
            }
        };
        if let Some(r) = def.retry_policy {
            if r.maximum_retry_attempts > 185 {
                problems.push("retry_policy.maximum_retry_attempts must be 0 to 185".into());
            }
            if !(60..=86_400).contains(&r.maximum_event_age_in_seconds) {
                problems
                    .push("retry_policy.maximum_event_age_in_seconds must be 60 to 86400".into());
            }
        }
        match (trigger, target) {
            (Some(trigger), Some(target)) if problems.is_empty() => Ok(Rule {
                retry: def.retry_policy.unwrap_or_default(),
                def,
                trigger,
                target,
                inputs,
            }),
            _ => Err(problems.join("; ")),
        }
    }

    /// The input values an event gives this rule (`$.detail.service` → `service`). Strings
    /// as they are; other JSON as its text; missing paths are absent.
    pub fn inputs_of(&self, event: &Value) -> BTreeMap<String, String> {
        self.inputs
            .iter()
            .filter_map(|(name, path)| {
                let v = path.get(event)?;
                Some((
                    name.clone(),
                    match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                ))
            })
            .collect()
    }
}

fn target<'a>(v: &Value, input_names: impl IntoIterator<Item = &'a str>) -> Result<Target, String> {
    let Value::Object(o) = v else {
        return Err(format!(
            "must be an object with one of: {}",
            TARGETS.join(", ")
        ));
    };
    let mut entries = o.iter();
    let (Some((kind, value)), None) = (entries.next(), entries.next()) else {
        return Err(format!("must have exactly one of: {}", TARGETS.join(", ")));
    };
    let text = |what: &str| {
        value
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("`{kind}` must be {what}"))
    };
    match kind.as_str() {
        "run" => match value {
            Value::String(p) if !p.is_empty() => Ok(Target::Run(RunTarget::File(p.clone()))),
            Value::Object(_) => Ok(Target::Run(RunTarget::Inline(value.clone()))),
            _ => Err("`run` must be a spec object or the path of a spec file".into()),
        },
        "http" => {
            let url = text("a URL")?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("`http` must be an http(s) URL, not `{url}`"));
            }
            super::template::check_url_template(&url)?;
            Ok(Target::Http(url))
        }
        "start_service" => Ok(Target::StartService(text("a service name")?)),
        "stop_service" => Ok(Target::StopService(text("a service name")?)),
        "deploy" => super::deploy_target::parse(value, input_names)
            .map(Target::Deploy)
            .map_err(|p| p.join("; ")),
        other => Err(format!(
            "unknown target `{other}`; expected one of: {}",
            TARGETS.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Value) -> RuleDef {
        serde_json::from_value(v).unwrap()
    }

    use crate::bus::template::fill;

    #[test]
    fn rules_compile_and_transform_input() {
        let r = Rule::compile(def(json!({
            "name": "start-engines",
            "pattern": {"source": ["custom.app"], "detail-type": ["Start ECS Task"]},
            "input_paths": {"service": "$.detail.service", "first": "$.resources[0]"},
            "target": {"start_service": "{service}"}
        })))
        .unwrap();
        let event = json!({"source": "custom.app", "detail-type": "Start ECS Task",
                           "detail": {"service": "auth"}, "resources": ["arn:x"]});
        let inputs = r.inputs_of(&event);
        assert_eq!(inputs["service"], "auth");
        assert_eq!(inputs["first"], "arn:x");
        assert_eq!(
            fill("{service}-{first}-{nope}", &inputs),
            "auth-arn:x-{nope}"
        );
        assert!(r.def.enabled);
        assert_eq!(r.retry, RetryPolicy::default());
        let Trigger::Pattern(p) = &r.trigger else {
            panic!()
        };
        assert!(p.matches_json(&event));
    }

    #[test]
    fn bad_rules_list_every_problem() {
        let e = Rule::compile(def(json!({
            "name": "bad name",
            "pattern": {"source": []},
            "input_paths": {"x": "detail.x"},
            "target": {"lambda": "arn"},
        })))
        .unwrap_err();
        for part in [
            "name:",
            "empty arrays",
            "input_paths.x",
            "unknown target `lambda`",
        ] {
            assert!(e.contains(part), "{part}: {e}");
        }
        let e = Rule::compile(def(
            json!({"name": "n", "schedule": "cron(0 0 * * * *)", "target": {"http": "ftp://x"}}),
        ))
        .unwrap_err();
        assert!(e.contains("schedule:") && e.contains("http(s) URL"), "{e}");
        let e = Rule::compile(def(
            json!({"name": "n", "schedule": "rate(1 day)", "timezone": "Nowhere/X",
            "missed": "sometimes", "target": {"run": "a.yml"}}),
        ))
        .unwrap_err();
        assert!(
            e.contains("unknown time zone") && e.contains("missed: `sometimes`"),
            "{e}"
        );
        assert!(
            Rule::compile(def(json!({"name": "n", "schedule": "cron(0 9 * * ? *)",
            "timezone": "Europe/Paris", "missed": "all", "target": {"run": "a.yml"}})))
            .is_ok()
        );
        let e = Rule::compile(def(json!({"name": "n", "target": {"run": "a.yml"}}))).unwrap_err();
        assert!(e.contains("needs a `pattern` or a `schedule`"), "{e}");
        assert!(
            serde_json::from_value::<RuleDef>(json!({"name": "n", "target": {}, "patern": {}}))
                .is_err()
        );
    }

    #[test]
    fn json_paths() {
        let v = json!({"a": {"b-c": [1, {"d": "x"}]}});
        assert_eq!(
            JsonPath::parse("$.a['b-c'][1].d").unwrap().get(&v),
            Some(&json!("x"))
        );
        assert_eq!(JsonPath::parse("$").unwrap().get(&v), Some(&v));
        for bad in ["a.b", "$.", "$..a", "$[x]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }
}

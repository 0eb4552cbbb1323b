//! The `deploy` target: `{ deploy = { repository, branch, stack_name?, region? } }` starts a
//! deployer session as `POST /deploy` does. Its fields may hold `{name}` placeholders of the
//! rule's inputs: the repository is filled as a URL (values percent-encoded, never in its
//! host), the others as one plain segment each. Checked when the rule is made, with each
//! placeholder taken as `x`; checked again, filled, when an event is delivered.

use super::template::{check_url_template, fill_path, fill_url};
use crate::deploy::request::{Deploy, DeployRequest, check_deploy};
use serde_json::Value;
use std::collections::BTreeMap;

/// A deploy target as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTarget {
    pub repository: String,
    pub branch: String,
    pub stack_name: Option<String>,
    pub region: Option<String>,
}

const FIELDS: [&str; 4] = ["repository", "branch", "stack_name", "region"];

/// Reads and checks a `deploy` target; every problem, each starting `deploy.`.
pub fn parse<'a>(
    v: &Value,
    input_names: impl IntoIterator<Item = &'a str>,
) -> Result<DeployTarget, Vec<String>> {
    let Value::Object(o) = v else {
        return Err(vec![format!(
            "`deploy` must be an object with {}",
            FIELDS.join(", ")
        )]);
    };
    let mut problems = Vec::new();
    for k in o.keys() {
        // `stackName` as the deployer's API spells it.
        if !FIELDS.contains(&k.as_str()) && k != "stackName" {
            problems.push(format!(
                "deploy: unknown field `{k}`; expected {}",
                FIELDS.join(", ")
            ));
        }
    }
    if o.contains_key("stack_name") && o.contains_key("stackName") {
        problems.push("deploy: give `stack_name` once".into());
    }
    let mut field = |name: &str, required: bool| -> Option<String> {
        let value = o
            .get(name)
            .or_else(|| (name == "stack_name").then(|| o.get("stackName")).flatten());
        match value {
            None if required => {
                problems.push(format!("deploy.{name} is missing"));
                None
            }
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => {
                problems.push(format!("deploy.{name} must be a non-empty string"));
                None
            }
        }
    };
    let repository = field("repository", true);
    let branch = field("branch", true);
    let stack_name = field("stack_name", false);
    let region = field("region", false);

    let known: Vec<&str> = input_names.into_iter().collect();
    let written = [
        ("repository", &repository),
        ("branch", &branch),
        ("stack_name", &stack_name),
        ("region", &region),
    ];
    let mut sample = BTreeMap::new();
    for (name, value) in written {
        for p in placeholders(value.as_deref().unwrap_or_default()) {
            if !known.contains(&p) {
                problems.push(format!(
                    "deploy.{name}: `{{{p}}}` is not one of the rule's input_paths"
                ));
            }
            sample.insert(p.to_string(), "x".to_string());
        }
    }
    let mut repo_bad = false;
    if let Some(repo) = &repository {
        repo_bad = true;
        if !(repo.starts_with("https://") || repo.starts_with("http://")) {
            problems.push(format!(
                "deploy.repository must be an http(s) URL, not `{repo}`"
            ));
        } else if let Err(e) = check_url_template(repo) {
            problems.push(format!("deploy.repository: {e}"));
        } else {
            repo_bad = false;
        }
    }
    let (Some(repository), Some(branch)) = (repository, branch) else {
        return Err(problems);
    };
    let target = DeployTarget {
        repository,
        branch,
        stack_name,
        region,
    };
    // The request it makes, each placeholder taken as `x` (a repository already found bad
    // replaced by a good one, so the other fields are still checked).
    let templated = |s: &str| !placeholders(s).is_empty();
    let checked = if repo_bad {
        DeployTarget {
            repository: "https://example.com/o/r".into(),
            ..target.clone()
        }
        .request(&sample)
    } else {
        target.request(&sample)
    };
    if let Err(found) = checked {
        problems.extend(found.into_iter().map(|p| {
            let field = p.split([' ', ':']).next().unwrap_or_default();
            let written = match field {
                "repository" => Some(&target.repository),
                "branch" => Some(&target.branch),
                "stackName" => target.stack_name.as_ref(),
                "region" => target.region.as_ref(),
                _ => None,
            };
            let note = if written.is_some_and(|w| templated(w)) {
                " (its placeholders taken as `x`)"
            } else {
                ""
            };
            format!("deploy.{p}{note}").replacen("deploy.stackName", "deploy.stack_name", 1)
        }));
    }
    if problems.is_empty() {
        Ok(target)
    } else {
        Err(problems)
    }
}

impl DeployTarget {
    /// The deploy an event's inputs make of this target: the repository filled as a URL, the
    /// other fields as one plain segment each, then checked as `POST /deploy` checks it.
    pub fn request(&self, inputs: &BTreeMap<String, String>) -> Result<Deploy, Vec<String>> {
        let one = |what: &str, s: &str| {
            fill_path(s, inputs).map_err(|e| {
                let e = e.replace(
                    "a file path: it must be one plain name",
                    "it: it must be one plain name",
                );
                format!("{what}: {e}")
            })
        };
        let repository =
            fill_url(&self.repository, inputs).map_err(|e| vec![format!("repository: {e}")])?;
        let branch = one("branch", &self.branch);
        let stack_name = self.stack_name.as_deref().map(|s| one("stackName", s));
        let region = self.region.as_deref().map(|s| one("region", s));
        let mut problems = Vec::new();
        let mut ok = |r: Result<String, String>| r.map_err(|e| problems.push(e)).ok();
        let branch = ok(branch);
        let stack_name = stack_name.map(&mut ok);
        let region = region.map(&mut ok);
        if !problems.is_empty() {
            return Err(problems);
        }
        check_deploy(&DeployRequest {
            repository,
            branch: branch.unwrap_or_default(),
            stack_name: stack_name.flatten(),
            region: region.flatten(),
        })
    }
}

/// The `{name}` placeholders in a template (names of letters, digits and `_`).
fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push(name);
                    rest = &after[close + 1..];
                } else {
                    rest = after;
                }
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_target_fills_from_inputs_and_makes_the_deploy() {
        let t = parse(
            &json!({"repository": "https://github.com/acme/{app}", "branch": "{branch}",
                    "stackName": "web-{branch}", "region": "eu-west-1"}),
            ["app", "branch"],
        )
        .unwrap();
        let d = t
            .request(&inputs(&[("app", "web"), ("branch", "main")]))
            .unwrap();
        assert_eq!(d.repository, "https://github.com/acme/web");
        assert_eq!(d.branch, "main");
        assert_eq!(d.stack_name, "web-main");
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        let plain = parse(
            &json!({"repository": "https://github.com/acme/web", "branch": "release/1.2"}),
            [],
        )
        .unwrap();
        let d = plain.request(&BTreeMap::new()).unwrap();
        assert_eq!(d.stack_name, "gantry-web-release-1-2");
    }

    #[test]
    fn values_from_events_cannot_change_the_repository_or_leave_a_segment() {
        let t = parse(
            &json!({"repository": "https://github.com/acme/{app}", "branch": "{branch}"}),
            ["app", "branch"],
        )
        .unwrap();
        for (app, branch, why) in [
            ("../evil", "main", "repository"),
            ("other/repo", "main", "repository"),
            ("..", "main", "repository"),
            ("web", "a/../../b", "branch"),
            ("web", "..", "branch"),
            ("web", "-x", "branch"),
        ] {
            let e = t
                .request(&inputs(&[("app", app), ("branch", branch)]))
                .unwrap_err();
            assert!(
                e.iter().any(|p| p.starts_with(why)),
                "{app} {branch}: {e:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_named() {
        let e = parse(
            &json!({"repository": "https://{host}/acme/web", "branch": "a..b",
                    "stack_name": "1x", "region": 3, "colour": "red"}),
            ["host"],
        )
        .unwrap_err();
        for part in [
            "unknown field `colour`",
            "deploy.region must be",
            "host or port",
        ] {
            assert!(e.iter().any(|p| p.contains(part)), "{part}: {e:?}");
        }
        let e = parse(
            &json!({"repository": "https://github.com/acme/{nope}", "branch": "a..b",
                    "stack_name": "1x", "region": "mars"}),
            ["app"],
        )
        .unwrap_err();
        assert!(e.iter().any(|p| p.contains("`{nope}` is not one")), "{e:?}");
        let e = parse(
            &json!({"repository": "ftp://x/acme/web", "branch": "a..b", "stack_name": "1x",
                    "region": "mars"}),
            [],
        )
        .unwrap_err();
        assert!(e.iter().any(|p| p.contains("http(s) URL")), "{e:?}");
        let e = parse(
            &json!({"repository": "https://github.com/acme", "branch": "{b}..x",
                    "stack_name": "1x", "region": "mars"}),
            ["b"],
        )
        .unwrap_err();
        for part in [
            "deploy.repository",
            "deploy.branch `x..x` is not a branch name (its placeholders taken as `x`)",
            "deploy.stack_name `1x` is not a stack name (a letter",
            "deploy.stack_name",
            "deploy.region",
        ] {
            assert!(e.iter().any(|p| p.starts_with(part)), "{part}: {e:?}");
        }
        assert_eq!(parse(&json!({}), []).unwrap_err().len(), 2);
        assert!(parse(&json!("x"), []).is_err());
    }
}

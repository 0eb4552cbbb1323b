//! Services: a named container with a port, registered in a target group once it runs, as
//! `[services.NAME]` and `[target_groups.NAME]` in gantry.toml spell them; checked when the
//! config is read. Events may override only the fields a service lists in `overridable`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    pub port: u16,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub network: Option<String>,
    pub target_group: String,
    #[serde(default)]
    pub health_check: HealthCheck,
    /// How long starting may take, through healthy (`60s`).
    #[serde(default = "default_start_timeout")]
    pub start_timeout: String,
    /// How long a drained target keeps its connections before it is removed.
    #[serde(default = "default_drain")]
    pub deregistration_delay: String,
    /// Fields an event's `detail.overrides` may set: `image`, `command`, `env`.
    #[serde(default)]
    pub overridable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: default_path(),
            interval: default_interval(),
            healthy_threshold: default_threshold(),
        }
    }
}

fn default_path() -> String {
    "/".into()
}
fn default_interval() -> String {
    "1s".into()
}
fn default_threshold() -> u32 {
    2
}
fn default_start_timeout() -> String {
    "60s".into()
}
fn default_drain() -> String {
    "1s".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupDef {
    /// `haproxy` (later `elbv2`).
    pub provider: String,
    /// The HAProxy Runtime API socket.
    pub socket: String,
    pub backend: String,
}

const OVERRIDABLE: [&str; 3] = ["image", "command", "env"];

impl ServiceDef {
    /// Every problem with a service's definition.
    pub fn check(&self, name: &str, groups: &BTreeMap<String, TargetGroupDef>) -> Vec<String> {
        let mut p = Vec::new();
        if self.image.trim().is_empty() {
            p.push(format!("services.{name}.image is empty"));
        }
        if self.port == 0 {
            p.push(format!("services.{name}.port must be 1-65535"));
        }
        if !groups.contains_key(&self.target_group) {
            p.push(format!(
                "services.{name}.target_group `{}` is not defined in [target_groups]",
                self.target_group
            ));
        }
        for (field, text) in [
            ("start_timeout", &self.start_timeout),
            ("deregistration_delay", &self.deregistration_delay),
            ("health_check.interval", &self.health_check.interval),
        ] {
            if let Err(e) = crate::duration::parse_duration_ms(text) {
                p.push(format!("services.{name}.{field}: {e}"));
            }
        }
        for o in &self.overridable {
            if !OVERRIDABLE.contains(&o.as_str()) {
                p.push(format!(
                    "services.{name}.overridable: `{o}` cannot be overridden; choose from {}",
                    OVERRIDABLE.join(", ")
                ));
            }
        }
        p
    }

    /// This service with an event's `overrides` applied; fields it does not list as
    /// overridable are refused with the reason.
    pub fn with_overrides(&self, overrides: Option<&Value>) -> Result<ServiceDef, String> {
        let mut s = self.clone();
        let Some(o) = overrides else {
            return Ok(s);
        };
        let Value::Object(o) = o else {
            return Err("`overrides` must be an object".into());
        };
        for (k, v) in o {
            if !self.overridable.contains(k) {
                return Err(format!("the event may not override `{k}` of this service"));
            }
            match k.as_str() {
                "image" => s.image = v.as_str().ok_or("`image` must be a string")?.to_string(),
                "command" => {
                    s.command = serde_json::from_value(v.clone())
                        .map_err(|_| "`command` must be a list of strings")?
                }
                "env" => {
                    let env: BTreeMap<String, String> = serde_json::from_value(v.clone())
                        .map_err(|_| "`env` must be an object of strings")?;
                    s.env.extend(env);
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

pub fn ms(text: &str) -> u64 {
    crate::duration::parse_duration_ms(text).unwrap_or(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn services_are_checked_and_overridden_only_where_declared() {
        let groups = BTreeMap::from([(
            "auth".to_string(),
            TargetGroupDef {
                provider: "haproxy".into(),
                socket: "/s".into(),
                backend: "b".into(),
            },
        )]);
        let s: ServiceDef = serde_json::from_value(json!({
            "image": "img", "port": 8080, "target_group": "auth", "overridable": ["env"],
        }))
        .unwrap();
        assert!(s.check("auth", &groups).is_empty());
        let o = s.with_overrides(Some(&json!({"env": {"V": "2"}}))).unwrap();
        assert_eq!(o.env["V"], "2");
        let err = s
            .with_overrides(Some(&json!({"image": "evil"})))
            .unwrap_err();
        assert!(err.contains("may not override `image`"), "{err}");
        let bad: ServiceDef = serde_json::from_value(json!({
            "image": "", "port": 0, "target_group": "nope", "start_timeout": "soon",
            "overridable": ["port"],
        }))
        .unwrap();
        assert_eq!(
            bad.check("x", &groups).len(),
            5,
            "{:?}",
            bad.check("x", &groups)
        );
    }
}

//! Services: a named container with a port, registered in a target group once it runs, as
//! `[services.NAME]` and `[target_groups.NAME]` in gantry.toml spell them; checked when the
//! config is read. A service runs on Docker (this host) or as an ECS task
//! (`runtime = "ecs"`); a target group is an HAProxy backend or an ELBv2 target group
//! (`provider = "elbv2"`), optionally with a listener rule routing a path to it. Events may
//! override only the fields a service lists in `overridable`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// Where its tasks run: `docker` (this host) or `ecs`.
    #[serde(default)]
    pub runtime: Runtime,
    /// The image (Docker only: an ECS task's image is its task definition's).
    #[serde(default)]
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
    /// ECS: the cluster (name or ARN).
    #[serde(default)]
    pub cluster: Option<String>,
    /// ECS: the task definition (`family`, `family:revision` or ARN).
    #[serde(default)]
    pub task_definition: Option<String>,
    /// ECS: the container (in the task definition) that serves `port` and takes `command` and
    /// `env`.
    #[serde(default)]
    pub container: Option<String>,
    /// ECS: the task's subnets (awsvpc networking).
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
    /// ECS: `FARGATE` (the default) or `EC2`.
    #[serde(default)]
    pub launch_type: Option<String>,
}

/// Where a service's tasks run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    #[default]
    Docker,
    Ecs,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Ecs => "ecs",
        }
    }
}

/// Where and how an ECS task of a service is started (checked: every field there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsPlacement {
    pub cluster: String,
    pub task_definition: String,
    pub container: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub launch_type: String,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupDef {
    /// `haproxy` or `elbv2`.
    pub provider: String,
    /// HAProxy: the Runtime API socket.
    #[serde(default)]
    pub socket: String,
    /// HAProxy: the backend.
    #[serde(default)]
    pub backend: String,
    /// ELBv2: the target group's ARN (target type `ip`).
    #[serde(default)]
    pub arn: Option<String>,
    /// ELBv2: a listener to route to this group: a rule forwarding `path_patterns` here at
    /// `priority` is created when the listener has none, and left alone when it has.
    #[serde(default)]
    pub listener_arn: Option<String>,
    #[serde(default)]
    pub path_patterns: Vec<String>,
    #[serde(default)]
    pub priority: Option<u32>,
    /// ELBv2: the region (the environment's by default).
    #[serde(default)]
    pub region: Option<String>,
}

/// A listener rule a target group wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRule {
    pub listener_arn: String,
    pub path_patterns: Vec<String>,
    pub priority: u32,
}

impl TargetGroupDef {
    /// Every problem with a target group's definition.
    pub fn check(&self, name: &str) -> Vec<String> {
        let mut p = Vec::new();
        let at = |f: &str| format!("target_groups.{name}.{f}");
        match self.provider.as_str() {
            "haproxy" => {
                if self.socket.trim().is_empty() {
                    p.push(format!("{} is required for provider haproxy", at("socket")));
                }
                if self.backend.trim().is_empty() {
                    p.push(format!(
                        "{} is required for provider haproxy",
                        at("backend")
                    ));
                }
                for (f, set) in [
                    ("arn", self.arn.is_some()),
                    ("listener_arn", self.listener_arn.is_some()),
                    ("path_patterns", !self.path_patterns.is_empty()),
                    ("priority", self.priority.is_some()),
                    ("region", self.region.is_some()),
                ] {
                    if set {
                        p.push(format!("{} is for provider elbv2, not haproxy", at(f)));
                    }
                }
            }
            "elbv2" => {
                match self.arn.as_deref() {
                    None => p.push(format!(
                        "{} is required for provider elbv2 (the target group's ARN)",
                        at("arn")
                    )),
                    Some(a) if !is_arn(a, "elasticloadbalancing", "targetgroup/") => p.push(
                        format!("{} `{a}` is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)", at("arn")),
                    ),
                    Some(_) => {}
                }
                for (f, set) in [
                    ("socket", !self.socket.is_empty()),
                    ("backend", !self.backend.is_empty()),
                ] {
                    if set {
                        p.push(format!("{} is for provider haproxy, not elbv2", at(f)));
                    }
                }
                match (&self.listener_arn, self.path_patterns.is_empty(), self.priority) {
                    (None, true, None) => {}
                    (Some(l), false, Some(prio)) => {
                        if !is_arn(l, "elasticloadbalancing", "listener/") {
                            p.push(format!("{} `{l}` is not a listener ARN", at("listener_arn")));
                        } else if !is_arn(l, "elasticloadbalancing", "listener/app/") {
                            p.push(format!(
                                "{} `{l}`: path rules are an Application Load Balancer's (listener/app/…)",
                                at("listener_arn")
                            ));
                        }

                        if !(1..=50_000).contains(&prio) {
                            p.push(format!("{} must be 1-50000 (ELBv2's rule priorities)", at("priority")));
                        }
                        if self.path_patterns.len() > 5 {
                            p.push(format!("{}: at most 5 patterns in one rule", at("path_patterns")));
                        }
                        for pat in &self.path_patterns {
                            if !pat.starts_with('/') || pat.len() > 128 {
                                p.push(format!("{} `{pat}` must start with `/` and be at most 128 characters", at("path_patterns")));
                            }
                        }
                    }
                    _ => p.push(format!(
                        "target_groups.{name}: a listener rule needs listener_arn, path_patterns and priority together"
                    )),
                }
            }
            other => p.push(format!(
                "{} `{other}` is not one of: haproxy, elbv2",
                at("provider")
            )),
        }
        p
    }

    /// The listener rule this group wants, if any (once checked).
    pub fn listener_rule(&self) -> Option<ListenerRule> {
        Some(ListenerRule {
            listener_arn: self.listener_arn.clone()?,
            path_patterns: self.path_patterns.clone(),
            priority: self.priority?,
        })
    }
}

/// Problems across target groups: two that want the same priority on one listener.
pub fn check_groups(groups: &BTreeMap<String, TargetGroupDef>) -> Vec<String> {
    let mut seen: BTreeMap<(String, u32), &str> = BTreeMap::new();
    let mut p = Vec::new();
    for (name, g) in groups {
        if let Some(rule) = g.listener_rule()
            && let Some(other) = seen.insert((rule.listener_arn.clone(), rule.priority), name)
        {
            p.push(format!(
                "target_groups.{other} and target_groups.{name} both want priority {} on listener {}",
                rule.priority, rule.listener_arn
            ));
        }
    }
    p
}

/// Whether `text` looks like an ARN of `service` whose resource starts with `resource`.
fn is_arn(text: &str, service: &str, resource: &str) -> bool {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == service
        && parts[5].starts_with(resource)
        && parts[5].len() > resource.len()
}

const OVERRIDABLE: [&str; 3] = ["image", "command", "env"];

impl ServiceDef {
    /// Every problem with a service's definition.
    pub fn check(&self, name: &str, groups: &BTreeMap<String, TargetGroupDef>) -> Vec<String> {
        let mut p = Vec::new();
        match self.runtime {
            Runtime::Docker => {
                if self.image.trim().is_empty() {
                    p.push(format!("services.{name}.image is empty"));
                }
                for (f, set) in [
                    ("cluster", self.cluster.is_some()),
                    ("task_definition", self.task_definition.is_some()),
                    ("container", self.container.is_some()),
                    ("subnets", !self.subnets.is_empty()),
                    ("security_groups", !self.security_groups.is_empty()),
                    ("assign_public_ip", self.assign_public_ip),
                    ("launch_type", self.launch_type.is_some()),
                ] {
                    if set {
                        p.push(format!(
                            "services.{name}.{f} is for runtime = \"ecs\" (this service runs on Docker)"
                        ));
                    }
                }
            }
            Runtime::Ecs => p.extend(self.check_ecs(name)),
        }
        if self.runtime == Runtime::Docker
            && groups
                .get(&self.target_group)
                .is_some_and(|g| g.provider == "elbv2")
        {
            p.push(format!(
                "services.{name}.target_group `{}` is on ELBv2, which takes addresses in its VPC; a Docker container's is on this host: use runtime = \"ecs\" or an haproxy group",
                self.target_group
            ));
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

    fn check_ecs(&self, name: &str) -> Vec<String> {
        let mut p = Vec::new();
        let at = |f: &str| format!("services.{name}.{f}");
        for (f, v) in [
            ("cluster", &self.cluster),
            ("task_definition", &self.task_definition),
            ("container", &self.container),
        ] {
            if v.as_deref().is_none_or(|v| v.trim().is_empty()) {
                p.push(format!("{} is required for runtime = \"ecs\"", at(f)));
            }
        }
        if self.subnets.is_empty() {
            p.push(format!(
                "{} is required for runtime = \"ecs\" (tasks use awsvpc networking)",
                at("subnets")
            ));
        }
        p.extend(crate::remote::check_network_ids(
            &self.subnets,
            &self.security_groups,
            at,
        ));
        if self.assign_public_ip && self.launch_type.as_deref() == Some("EC2") {
            p.push(format!(
                "{}: a public IP is assigned only to FARGATE tasks",
                at("assign_public_ip")
            ));
        }
        if let Some(l) = &self.launch_type
            && l != "FARGATE"
            && l != "EC2"
        {
            p.push(format!(
                "{} `{l}` is not one of: FARGATE, EC2",
                at("launch_type")
            ));
        }
        if !self.image.is_empty() {
            p.push(format!(
                "{}: an ECS task's image is its task definition's; remove it or use runtime = \"docker\"",
                at("image")
            ));
        }
        if self.network.is_some() {
            p.push(format!(
                "{}: ECS tasks use subnets and security_groups, not a Docker network",
                at("network")
            ));
        }
        if self.overridable.iter().any(|o| o == "image") {
            p.push(format!(
                "{}: ECS cannot override a task's image; only command and env",
                at("overridable")
            ));
        }
        p
    }

    /// Where an ECS service's tasks start; `None` for a Docker service (or one not checked).
    pub fn ecs_placement(&self) -> Option<EcsPlacement> {
        if self.runtime != Runtime::Ecs {
            return None;
        }
        Some(EcsPlacement {
            cluster: self.cluster.clone()?,
            task_definition: self.task_definition.clone()?,
            container: self.container.clone()?,
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            assign_public_ip: self.assign_public_ip,
            launch_type: self.launch_type.clone().unwrap_or_else(|| "FARGATE".into()),
        })
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
                ..TargetGroupDef::default()
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

    #[test]
    fn ecs_services_and_elbv2_groups_are_checked() {
        let tg =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/auth/0123456789abcdef";
        let listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
        let groups = BTreeMap::from([(
            "auth".to_string(),
            TargetGroupDef {
                provider: "elbv2".into(),
                arn: Some(tg.into()),
                listener_arn: Some(listener.into()),
                path_patterns: vec!["/auth/*".into()],
                priority: Some(10),
                ..TargetGroupDef::default()
            },
        )]);
        assert!(
            groups["auth"].check("auth").is_empty(),
            "{:?}",
            groups["auth"].check("auth")
        );
        assert_eq!(groups["auth"].listener_rule().unwrap().priority, 10);
        let s: ServiceDef = serde_json::from_value(json!({
            "runtime": "ecs", "cluster": "apps", "task_definition": "auth:3", "container": "app",
            "subnets": ["subnet-1"], "security_groups": ["sg-1"], "port": 8080,
            "target_group": "auth", "overridable": ["command", "env"],
        }))
        .unwrap();
        assert!(
            s.check("auth", &groups).is_empty(),
            "{:?}",
            s.check("auth", &groups)
        );
        let p = s.ecs_placement().unwrap();
        assert_eq!(
            (p.cluster.as_str(), p.launch_type.as_str()),
            ("apps", "FARGATE")
        );
        let bad: ServiceDef = serde_json::from_value(json!({
            "runtime": "ecs", "image": "x", "subnets": ["net-1"], "port": 8080,
            "target_group": "auth", "overridable": ["image"], "launch_type": "LAMBDA",
        }))
        .unwrap();
        let problems = bad.check("auth", &groups).join("\n");
        for want in [
            "services.auth.cluster is required",
            "services.auth.task_definition is required",
            "services.auth.container is required",
            "`net-1` is not a subnet id",
            "`LAMBDA` is not one of",
            "an ECS task's image is its task definition's",
            "ECS cannot override a task's image",
        ] {
            assert!(problems.contains(want), "{want} not in {problems}");
        }
        let docker_with_ecs: ServiceDef = serde_json::from_value(json!({
            "image": "x", "cluster": "c", "port": 1, "target_group": "auth",
        }))
        .unwrap();
        assert!(docker_with_ecs.check("d", &groups)[0].contains("is for runtime = \"ecs\""));
        let bad_group = TargetGroupDef {
            provider: "elbv2".into(),
            arn: Some("arn:aws:s3:::bucket".into()),
            path_patterns: vec!["/x/*".into()],
            socket: "/s".into(),
            ..TargetGroupDef::default()
        };
        let problems = bad_group.check("g").join("\n");
        for want in [
            "is not a target group ARN",
            "target_groups.g.socket is for provider haproxy",
            "needs listener_arn, path_patterns and priority together",
        ] {
            assert!(problems.contains(want), "{want} not in {problems}");
        }
        let nlb = TargetGroupDef {
            provider: "nlb".into(),
            ..TargetGroupDef::default()
        };
        assert!(nlb.check("g")[0].contains("`nlb` is not one of: haproxy, elbv2"));
        let docker_behind_alb: ServiceDef = serde_json::from_value(json!({
            "image": "x", "port": 1, "target_group": "auth",
        }))
        .unwrap();
        assert!(docker_behind_alb.check("d", &groups)[0].contains("is on ELBv2"));
        let public_on_ec2: ServiceDef = serde_json::from_value(json!({
            "runtime": "ecs", "cluster": "c", "task_definition": "t", "container": "app",
            "subnets": ["subnet-1"], "assign_public_ip": true, "launch_type": "EC2",
            "port": 1, "target_group": "auth",
        }))
        .unwrap();
        assert!(public_on_ec2.check("e", &groups)[0].contains("only to FARGATE tasks"));
        let nlb_rule = TargetGroupDef {
            listener_arn: Some(listener.replace("listener/app/", "listener/net/")),
            ..groups["auth"].clone()
        };
        assert!(nlb_rule.check("n")[0].contains("an Application Load Balancer's"));
        let both = BTreeMap::from([
            ("a".to_string(), groups["auth"].clone()),
            ("b".to_string(), groups["auth"].clone()),
        ]);
        assert!(
            check_groups(&both)[0]
                .contains("target_groups.a and target_groups.b both want priority 10")
        );
        assert!(check_groups(&groups).is_empty());
        let haproxy = TargetGroupDef {
            provider: "haproxy".into(),
            ..TargetGroupDef::default()
        };
        assert_eq!(haproxy.check("h").len(), 2);
    }
}

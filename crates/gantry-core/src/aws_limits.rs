//! `[aws.rate_limits]` of gantry.toml: the token bucket AWS keeps for each action Gantry paces
//! (per account and region), checked; and AWS's published defaults, used for the actions the
//! file does not name. A key is the action as IAM names it: `"ecs:RunTask"`,
//! `"elasticloadbalancing:RegisterTargets"`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One action's bucket: `burst` calls at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub burst: u32,
    pub per_second: f64,
}

const fn limit(burst: u32, per_second: f64) -> RateLimit {
    RateLimit { burst, per_second }
}

/// AWS's default buckets for the actions Gantry paces. Sources, as AWS publishes them:
/// - "AWS Fargate throttling quotas" (Amazon ECS Developer Guide), section "Throttling the
///   RunTask API in Fargate": RunTask is limited to 20 calls a second, burst and sustained
///   (each call may start up to 10 tasks; Gantry's start one). Tighter than ECS's own
///   RunTask bucket in "Request throttling for the Amazon ECS API", so it is the one a
///   FARGATE task (Gantry's default launch type) meets first.
/// - "Request throttling for the Amazon ECS API": task read actions (DescribeTasks,
///   ListTasks) 100 burst, 20 a second; task modification (StopTask) taken as the same.
/// - "Request throttling for the Elastic Load Balancing API" (ELB user guide): non-mutating
///   actions (`Describe*`) 40 burst, 10 a second; registration (RegisterTargets,
///   DeregisterTargets) taken as the same; other mutating actions (CreateRule) 20, 5.
/// - CodeBuild publishes no bucket for StartBuild: [`OTHER`].
///
/// An account whose limits differ (raised, or shared with other clients) says so in
/// `[aws.rate_limits]`; Gantry also lowers its estimate when AWS throttles it.
pub const DEFAULTS: &[(&str, RateLimit)] = &[
    ("ecs:RunTask", limit(20, 20.0)),
    ("ecs:DescribeTasks", limit(100, 20.0)),
    ("ecs:StopTask", limit(100, 20.0)),
    ("elasticloadbalancing:DescribeTargetHealth", limit(40, 10.0)),
    (
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        limit(40, 10.0),
    ),
    ("elasticloadbalancing:DescribeRules", limit(40, 10.0)),
    ("elasticloadbalancing:RegisterTargets", limit(40, 10.0)),
    ("elasticloadbalancing:DeregisterTargets", limit(40, 10.0)),
    ("elasticloadbalancing:CreateRule", limit(20, 5.0)),
    ("codebuild:StartBuild", OTHER),
];

/// The bucket assumed for an action AWS publishes none for.
pub const OTHER: RateLimit = limit(20, 5.0);

/// AWS's default bucket for `action` (`service:Action`).
pub fn default_limit(action: &str) -> RateLimit {
    DEFAULTS
        .iter()
        .find(|(a, _)| *a == action)
        .map_or(OTHER, |(_, l)| *l)
}

/// `[aws]` of gantry.toml.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsDef {
    /// `"service:Action" = { burst = N, per_second = R }`: this account's buckets.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimit>,
}

impl AwsDef {
    /// Every problem of the section, each naming its key.
    pub fn check(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (action, l) in &self.rate_limits {
            let at = format!("aws.rate_limits.\"{action}\"");
            if !DEFAULTS.iter().any(|(a, _)| a == action) {
                let known: Vec<&str> = DEFAULTS.iter().map(|(a, _)| *a).collect();
                p.push(format!(
                    "{at}: Gantry makes no such call; the ones it paces are {}",
                    known.join(", ")
                ));
            }
            if l.burst == 0 {
                p.push(format!("{at}: burst must be at least 1"));
            }
            if !(l.per_second.is_finite() && l.per_second > 0.0) {
                p.push(format!(
                    "{at}: per_second must be a number of calls a second above 0, not {}",
                    l.per_second
                ));
            }
        }
        p
    }

    /// The bucket of `action`: the configured one, else AWS's default.
    pub fn limit(&self, action: &str) -> RateLimit {
        self.rate_limits
            .get(action)
            .copied()
            .unwrap_or_else(|| default_limit(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_limits_win_and_every_problem_is_named() {
        let mut def = AwsDef::default();
        assert_eq!(def.limit("ecs:RunTask"), limit(20, 20.0));
        assert_eq!(def.limit("ecs:Unknown"), OTHER);
        def.rate_limits
            .insert("ecs:RunTask".into(), limit(100, 40.0));
        assert_eq!(def.limit("ecs:RunTask"), limit(100, 40.0));
        assert!(def.check().is_empty());
        def.rate_limits.insert("ecs:Runtask".into(), limit(0, 0.0));
        def.rate_limits
            .insert("elasticloadbalancing:CreateRule".into(), limit(1, f64::NAN));
        let p = def.check();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("aws.rate_limits.\"ecs:Runtask\": Gantry makes no such call"));
        assert!(p[1].contains("burst must be at least 1"));
        assert!(p[2].contains("per_second must be"));
        assert!(p[3].starts_with("aws.rate_limits.\"elasticloadbalancing:CreateRule\""));
    }

    #[test]
    fn reads_the_table() {
        let def: AwsDef = serde_json::from_str(
            r#"{"rate_limits": {"ecs:RunTask": {"burst": 100, "per_second": 40},
                "ecs:StopTask": {"burst": 5, "per_second": 0.5}}}"#,
        )
        .unwrap();
        assert_eq!(def.limit("ecs:RunTask"), limit(100, 40.0));
        assert_eq!(def.limit("ecs:StopTask"), limit(5, 0.5));
        let unknown = r#"{"rate_limits": {"ecs:RunTask": {"burst": 1, "rate": 2}}}"#;
        assert!(serde_json::from_str::<AwsDef>(unknown).is_err());
    }
}

//! Target groups on an Application Load Balancer: the `TargetGroups` port over ELBv2 (targets
//! of type `ip`: a task's private IP and its port). Health is `DescribeTargetHealth`'s, with
//! its reason code and description. Draining is ELBv2's own: `DeregisterTargets` starts it,
//! and deregistering waits until the target has left the group. One load balancer serves many
//! services: each group may want a listener rule (path patterns at a priority) forwarding to
//! it, created when the listener has none and left alone when it has. Targets' health is read
//! through a [`Coalescer`]: one `DescribeTargetHealth` per group for all the targets being
//! waited on.

use crate::AwsError;
use crate::calls::Pacer;
use crate::coalesce::{Coalescer, Fetch};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, PathPatternConditionConfig, Rule, RuleCondition, TargetDescription,
    TargetHealthStateEnum,
};
use gantry_core::services::ListenerRule;
use gantry_engine::ports::{Target, TargetGroupError, TargetGroups, TargetHealth, TargetStatus};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One of `gantry.toml`'s target groups on ELBv2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elbv2Group {
    pub arn: String,
    pub rule: Option<ListenerRule>,
}

pub struct Elbv2TargetGroups {
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    groups: HashMap<String, Elbv2Group>,
    /// Groups whose listener rule is known to be there (asked once per server).
    routed: tokio::sync::Mutex<HashSet<String>>,
    /// How long deregistering waits for a target to drain at least (the group's own
    /// deregistration delay, read once, is waited for plus a margin when it is longer).
    drain_timeout: Duration,
    /// Each group's `deregistration_delay.timeout_seconds`, once read.
    delays: tokio::sync::Mutex<HashMap<String, Duration>>,
    /// How often draining is checked.
    drain_poll: Duration,
    /// `DescribeTargetHealth` of a group (by ARN), for everyone waiting on its targets
    /// (`IP:port`).
    health: Arc<Coalescer<String, aws_sdk_elasticloadbalancingv2::types::TargetHealth>>,
    pacer: Arc<Pacer>,
}

fn key(t: &Target) -> String {
    format!("{}:{}", t.address, t.port)
}

impl Elbv2TargetGroups {
    /// `groups` on ELBv2, every call paced by `pacer` (shared with the other AWS adapters).
    pub fn new(
        elbv2: aws_sdk_elasticloadbalancingv2::Client,
        groups: HashMap<String, Elbv2Group>,
        pacer: Arc<Pacer>,
    ) -> Self {
        let (client, pace) = (elbv2.clone(), pacer.clone());
        let fetch: Fetch<String, aws_sdk_elasticloadbalancingv2::types::TargetHealth> =
            Arc::new(move |arn, targets| {
                let (client, pace) = (client.clone(), pace.clone());
                Box::pin(async move {
                    let descriptions = targets
                        .iter()
                        .filter_map(|k| {
                            let (ip, port) = k.rsplit_once(':')?;
                            Some(
                                TargetDescription::builder()
                                    .id(ip)
                                    .port(port.parse().ok()?)
                                    .build(),
                            )
                        })
                        .collect::<Vec<_>>();
                    let out = pace
                        .call("elasticloadbalancing:DescribeTargetHealth", || {
                            client
                                .describe_target_health()
                                .target_group_arn(&arn)
                                .set_targets(Some(descriptions.clone()))
                                .send()
                        })
                        .await
                        .map_err(|e| AwsError::call("DescribeTargetHealth", e).to_string())?;
                    Ok(out
                        .target_health_descriptions()
                        .iter()
                        .filter_map(|d| {
                            let t = d.target()?;
                            let k = format!("{}:{}", t.id()?, t.port()?);
                            Some((k, d.target_health()?.clone()))
                        })
                        .collect())
                })
            });
        Elbv2TargetGroups {
            health: Coalescer::new(fetch, Duration::ZERO, 100),
            pacer,
            elbv2,
            groups,
            routed: tokio::sync::Mutex::new(HashSet::new()),
            delays: tokio::sync::Mutex::new(HashMap::new()),
            drain_timeout: Duration::from_secs(30),
            drain_poll: Duration::from_secs(1),
        }
    }

    /// Waits at most `timeout` for a deregistered target to drain, checking every `poll`.
    pub fn with_drain_wait(mut self, timeout: Duration, poll: Duration) -> Self {
        self.drain_timeout = timeout;
        self.drain_poll = poll;
        self
    }

    fn group(&self, name: &str) -> Result<&Elbv2Group, TargetGroupError> {
        self.groups
            .get(name)
            .ok_or_else(|| TargetGroupError::UnknownGroup(name.to_string()))
    }

    /// How long a target of `g` may take to drain: the group's deregistration delay (ELBv2's
    /// default, 300 s, when it cannot be read) plus 30 s, and never less than
    /// `drain_timeout`.
    async fn drain_wait(&self, g: &Elbv2Group) -> Duration {
        let mut delays = self.delays.lock().await;
        if let Some(d) = delays.get(&g.arn) {
            return *d;
        }
        let read = self
            .pacer
            .call("elasticloadbalancing:DescribeTargetGroupAttributes", || {
                self.elbv2
                    .describe_target_group_attributes()
                    .target_group_arn(&g.arn)
                    .send()
            })
            .await;
        let delay = read
            .ok()
            .and_then(|out| {
                out.attributes()
                    .iter()
                    .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                    .and_then(|a| a.value()?.parse::<u64>().ok())
            })
            .unwrap_or(300);
        let wait = (Duration::from_secs(delay) + Duration::from_secs(30)).max(self.drain_timeout);
        delays.insert(g.arn.clone(), wait);
        wait
    }

    /// Every rule of `listener`.
    async fn rules(&self, listener: &str) -> Result<Vec<Rule>, TargetGroupError> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .pacer
                .call("elasticloadbalancing:DescribeRules", || {
                    self.elbv2
                        .describe_rules()
                        .listener_arn(listener)
                        .set_marker(marker.clone())
                        .send()
                })
                .await
                .map_err(|e| refused("DescribeRules", e))?;
            rules.extend(out.rules().iter().cloned());
            match out.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(rules),
            }
        }
    }

    /// What the listener says for `g`'s rule: a rule forwarding to it, or none; an error when
    /// its priority is another group's.
    async fn existing_rule(
        &self,
        g: &Elbv2Group,
        want: &ListenerRule,
    ) -> Result<Option<String>, TargetGroupError> {
        let rules = self.rules(&want.listener_arn).await?;
        if let Some(r) = rules.iter().find(|r| forwards_to(r, &g.arn)) {
            return Ok(Some(format!(
                "listener rule {} (priority {}, paths {}) forwards here already; left alone",
                r.rule_arn().unwrap_or("?"),
                r.priority().unwrap_or("?"),
                paths(r).join(", ")
            )));
        }
        let prio = want.priority.to_string();
        if let Some(r) = rules.iter().find(|r| r.priority() == Some(prio.as_str())) {
            return Err(TargetGroupError::Refused {
                command: "CreateRule".into(),
                answer: format!(
                    "priority {prio} on listener {} is taken by rule {} (paths {}), which forwards elsewhere",
                    want.listener_arn,
                    r.rule_arn().unwrap_or("?"),
                    paths(r).join(", ")
                ),
            });
        }
        Ok(None)
    }

    /// DescribeTargetHealth of one target.
    async fn target_status(
        &self,
        g: &Elbv2Group,
        t: &Target,
    ) -> Result<TargetStatus, TargetGroupError> {
        let got =
            self.health
                .get(&g.arn, key(t))
                .await
                .map_err(|answer| TargetGroupError::Refused {
                    command: "DescribeTargetHealth".into(),
                    answer,
                })?;
        let Some(h) = got else {
            return Ok(TargetStatus::is(TargetHealth::Unused));
        };
        let not_registered = h
            .reason()
            .is_some_and(|r| r.as_str() == "Target.NotRegistered");
        // `Unused` here means not in the group: ELBv2's `unused` with Target.NotRegistered.
        // Its other `unused` reasons (Target.NotInUse: the group is behind no load balancer,
        // or the task's zone is not the ALB's; Target.IpUnusable; Target.InvalidState) are a
        // registered target that gets no traffic: unhealthy, with the reason.
        let health = match h.state() {
            _ if not_registered => TargetHealth::Unused,
            Some(TargetHealthStateEnum::Healthy) => TargetHealth::Healthy,
            Some(TargetHealthStateEnum::Initial) => TargetHealth::Initial,
            Some(TargetHealthStateEnum::Draining | TargetHealthStateEnum::UnhealthyDraining) => {
                TargetHealth::Draining
            }
            Some(_) | None => TargetHealth::Unhealthy, // unhealthy, unavailable, unused
        };
        let reason = match (h.reason(), h.description()) {
            (Some(r), Some(d)) => Some(format!("{}: {d}", r.as_str())),
            (Some(r), None) => Some(r.as_str().to_string()),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => None,
        };
        Ok(TargetStatus { health, reason })
    }
}

fn description(t: &Target) -> TargetDescription {
    TargetDescription::builder()
        .id(&t.address)
        .port(i32::from(t.port))
        .build()
}

fn refused<E>(call: &'static str, e: E) -> TargetGroupError
where
    E: aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = AwsError::call(call, e).to_string();
    if message.contains("dispatch failure") || message.contains("timeout") {
        TargetGroupError::Unreachable(message)
    } else {
        TargetGroupError::Refused {
            command: call.into(),
            answer: message,
        }
    }
}

/// Whether rule `r` forwards to target group `arn`.
fn forwards_to(r: &Rule, arn: &str) -> bool {
    r.actions().iter().any(|a| {
        a.target_group_arn() == Some(arn)
            || a.forward_config().is_some_and(|f| {
                f.target_groups()
                    .iter()
                    .any(|t| t.target_group_arn() == Some(arn))
            })
    })
}

fn paths(r: &Rule) -> Vec<String> {
    r.conditions()
        .iter()
        .flat_map(|c| {
            c.path_pattern_config()
                .map(|p| p.values().to_vec())
                .unwrap_or_else(|| {
                    if c.field() == Some("path-pattern") {
                        c.values().to_vec()
                    } else {
                        Vec::new()
                    }
                })
        })
        .collect()
}

#[async_trait]
impl TargetGroups for Elbv2TargetGroups {
    async fn route(&self, group: &str) -> Result<Option<String>, TargetGroupError> {
        let g = self.group(group)?;
        let Some(want) = &g.rule else {
            return Ok(None);
        };
        let mut routed = self.routed.lock().await;
        if routed.contains(group) {
            return Ok(None);
        }
        if let Some(found) = self.existing_rule(g, want).await? {
            routed.insert(group.to_string());
            return Ok(Some(found));
        }
        let condition = RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                PathPatternConditionConfig::builder()
                    .set_values(Some(want.path_patterns.clone()))
                    .build(),
            )
            .build();
        let action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(&g.arn)
            .build();
        let created = self
            .pacer
            .call("elasticloadbalancing:CreateRule", || {
                self.elbv2
                    .create_rule()
                    .listener_arn(&want.listener_arn)
                    .priority(want.priority as i32)
                    .conditions(condition.clone())
                    .actions(action.clone())
                    .send()
            })
            .await;
        match created {
            Ok(out) => {
                routed.insert(group.to_string());
                let arn = out
                    .rules()
                    .first()
                    .and_then(|r| r.rule_arn())
                    .unwrap_or("?")
                    .to_string();
                Ok(Some(format!(
                    "listener rule {arn} created: {} → {group} at priority {}",
                    want.path_patterns.join(", "),
                    want.priority
                )))
            }
            Err(e) => {
                // Another server may have created it meanwhile: then it is there.
                let err = refused("CreateRule", e);
                if let Some(found) = self.existing_rule(g, want).await.ok().flatten() {
                    routed.insert(group.to_string());
                    return Ok(Some(found));
                }
                Err(err)
            }
        }
    }

    async fn register(&self, group: &str, t: &Target) -> Result<(), TargetGroupError> {
        let g = self.group(group)?;
        self.pacer
            .call("elasticloadbalancing:RegisterTargets", || {
                self.elbv2
                    .register_targets()
                    .target_group_arn(&g.arn)
                    .targets(description(t))
                    .send()
            })
            .await
            .map_err(|e| refused("RegisterTargets", e))?;
        Ok(())
    }

    /// ELBv2 drains a target as it deregisters it.
    async fn drain(&self, group: &str, t: &Target) -> Result<(), TargetGroupError> {
        let g = self.group(group)?;
        let done = self
            .pacer
            .call("elasticloadbalancing:DeregisterTargets", || {
                self.elbv2
                    .deregister_targets()
                    .target_group_arn(&g.arn)
                    .targets(description(t))
                    .send()
            })
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) => match refused("DeregisterTargets", e) {
                // Not registered (any more): nothing to drain.
                TargetGroupError::Refused { answer, .. } if answer.contains("InvalidTarget") => {
                    Ok(())
                }
                e => Err(e),
            },
        }
    }

    /// Deregisters the target (again: a target already leaving, or gone, is fine), and waits
    /// until ELBv2 says it is no longer registered.
    async fn deregister(&self, group: &str, t: &Target) -> Result<(), TargetGroupError> {
        let g = self.group(group)?;
        let began = Instant::now();
        self.drain(group, t).await?;
        let wait = self.drain_wait(g).await;
        loop {
            if self.target_status(g, t).await?.health == TargetHealth::Unused {
                return Ok(());
            }
            if began.elapsed() > wait {
                return Err(TargetGroupError::StillDraining {
                    target: format!("{}:{}", t.address, t.port),
                    waited_s: began.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(self.drain_poll).await;
        }
    }

    async fn health(&self, group: &str, t: &Target) -> Result<TargetStatus, TargetGroupError> {
        let g = self.group(group)?;
        self.target_status(g, t).await
    }
}

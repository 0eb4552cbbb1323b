//! The event bus, after Amazon EventBridge: PutEvents entries, GitHub deliveries, run and job
//! state changes and schedules all become events; every enabled rule whose pattern matches gets
//! a delivery, stored in the same batch as the event, and a dispatcher carries deliveries to
//! their targets (submit a run, POST to a URL, start or stop a service, start a deploy
//! session), retrying under the rule's retry policy. Rules come from `gantry.toml` (kept in
//! step at start) and the API.

mod dispatch;
mod schedule;

use crate::orchestrator::Engine;
use crate::ports::{
    DeliveryRecord, EventRecord, HttpTarget, RuleRecord, Services, StoreError, Write,
};
use gantry_core::bus::entry::{self, EntryError};
use gantry_core::bus::rule::{Rule, RuleDef, Trigger};
use gantry_core::bus::ruleset::{RuleSet, Scratch};
use gantry_core::spec::Limits;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{0}")]
    Invalid(String),
    #[error("rule `{0}` not found")]
    NotFound(String),
    #[error("rule `{0}` already exists")]
    Exists(String),
    #[error("rule `{0}` is defined in gantry.toml; change it there")]
    FromConfig(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The bus's outward ports and settings.
#[derive(Clone, Default)]
pub struct BusPorts {
    pub http: Option<Arc<dyn HttpTarget>>,
    pub services: Option<Arc<dyn Services>>,
    /// Where `run = "specs/x.yml"` paths of rules are resolved (the config file's folder).
    pub base_dir: PathBuf,
    pub limits: Limits,
    /// Prefixes a `deploy` target's repository must start with
    /// (`GANTRY_GIT_ALLOWED_URL_PREFIXES`); none: no deploy target is allowed.
    pub git_allowed: Vec<String>,
}

#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bus")
    }
}

struct Inner {
    engine: Engine,
    ports: BusPorts,
    /// Compiled rules with their stored records, by name.
    rules: RwLock<Arc<Vec<(Rule, RuleRecord)>>>,
    /// The enabled pattern rules compiled together, with each pattern's rule name.
    matcher: RwLock<Arc<(RuleSet, Vec<String>)>>,
    wake: Notify,
}

impl Bus {
    /// Syncs `gantry.toml`'s rules into the store (adding, replacing, and removing the ones no
    /// longer there), loads every rule, and starts the dispatcher and the scheduler.
    pub async fn start(
        engine: Engine,
        ports: BusPorts,
        config_rules: Vec<RuleDef>,
    ) -> Result<Bus, BusError> {
        let now = engine.clock_now();
        let stored = engine.store().list_rules().await?;
        let problems: Vec<String> = check_config_rules(&config_rules, &ports)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if !problems.is_empty() {
            return Err(BusError::Invalid(problems.join("\n")));
        }
        let mut writes = Vec::new();
        for def in &config_rules {
            let body = serde_json::to_string(def).unwrap_or_default();
            let existing = stored.iter().find(|r| r.name == def.name);
            if existing.is_some_and(|r| r.body == body && r.origin == "config") {
                continue;
            }
            writes.push(Write::PutRule(RuleRecord {
                name: def.name.clone(),
                body,
                origin: "config".into(),
                created_at_ms: existing.map_or(now, |r| r.created_at_ms),
                updated_at_ms: now,
            }));
        }
        for r in stored.iter().filter(|r| r.origin == "config") {
            if !config_rules.iter().any(|d| d.name == r.name) {
                writes.push(Write::DeleteRule {
                    name: r.name.clone(),
                });
            }
        }
        if !writes.is_empty() {
            engine.journal().append_durable(writes).await?;
        }
        let bus = Bus {
            inner: Arc::new(Inner {
                engine,
                ports,
                rules: RwLock::new(Arc::new(Vec::new())),
                matcher: RwLock::new(Arc::new((RuleSet::new(Vec::new()), Vec::new()))),
                wake: Notify::new(),
            }),
        };
        bus.reload().await?;
        tokio::spawn(dispatch::run(bus.clone()));
        tokio::spawn(schedule::run(bus.clone()));
        tokio::spawn(dispatch::publish_state_changes(bus.clone()));
        Ok(bus)
    }

    /// Recompiles the rules from the store.
    async fn reload(&self) -> Result<(), BusError> {
        let records = self.inner.engine.store().list_rules().await?;
        let mut rules = Vec::new();
        for r in records {
            let def: RuleDef = serde_json::from_str(&r.body)
                .map_err(|e| StoreError::Corrupt(format!("rule {}: {e}", r.name)))?;
            match Rule::compile(def) {
                Ok(rule) => rules.push((rule, r)),
                Err(e) => {
                    tracing::warn!(rule = %r.name, cause = %e, "stored rule does not compile; skipped")
                }
            }
        }
        let (patterns, names): (Vec<_>, Vec<_>) = rules
            .iter()
            .filter(|(r, _)| r.def.enabled)
            .filter_map(|(r, _)| match &r.trigger {
                Trigger::Pattern(p) => Some((p.clone(), r.def.name.clone())),
                Trigger::Schedule(_) => None,
            })
            .unzip();
        *self
            .inner
            .matcher
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new((RuleSet::new(patterns), names));
        *self.inner.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        Ok(())
    }

    fn rules(&self) -> Arc<Vec<(Rule, RuleRecord)>> {
        self.inner
            .rules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether any enabled rule has a pattern (so events are worth matching at all).
    pub fn has_pattern_rules(&self) -> bool {
        self.rules()
            .iter()
            .any(|(r, _)| r.def.enabled && matches!(r.trigger, Trigger::Pattern(_)))
    }

    /// Names of the enabled pattern rules that match `envelope`.
    pub fn matching(&self, envelope: &Value) -> Vec<String> {
        let matcher = self
            .inner
            .matcher
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (set, names) = &*matcher;
        if set.is_empty() {
            return Vec::new();
        }
        // All rules at once, on the event's bytes (only the fields rules mention are read).
        let bytes = serde_json::to_vec(envelope).unwrap_or_default();
        let mut scratch = Scratch::default();
        let mut hits = Vec::new();
        if let Err(e) = set.matches(&bytes, &mut scratch, &mut hits) {
            tracing::warn!(cause = %e, "event not matched");
        }
        hits.into_iter().map(|i| names[i].clone()).collect()
    }

    /// The deliveries for an event matched by `rules` (written with the event).
    pub fn deliveries(&self, event_id: &str, rules: &[String]) -> Vec<Write> {
        let now = self.inner.engine.clock_now();
        rules
            .iter()
            .map(|r| {
                Write::PutDelivery(DeliveryRecord {
                    event_id: event_id.to_string(),
                    rule: r.clone(),
                    status: "pending".into(),
                    attempts: 0,
                    next_at_ms: now,
                    result: None,
                    created_at_ms: now,
                })
            })
            .collect()
    }

    /// Lets the dispatcher look for due deliveries now.
    pub fn poke(&self) {
        self.inner.wake.notify_one();
    }

    /// PutEvents: each entry is checked, stored with its matched rules' deliveries (all in
    /// one durable batch) and answered in order with its event id or its error.
    pub async fn put_events(
        &self,
        entries: &[Value],
    ) -> Result<Vec<Result<String, EntryError>>, BusError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut answers = Vec::with_capacity(entries.len());
        let mut writes = Vec::new();
        for e in entries {
            let id = crate::ids::new_run_id();
            match entry::envelope(e, &id, &now) {
                Err(err) => answers.push(Err(err)),
                Ok(envelope) => {
                    let rules = self.matching(&envelope);
                    writes.push(Write::InsertEvent(Box::new(
                        self.record(&id, &envelope, &rules),
                    )));
                    writes.extend(self.deliveries(&id, &rules));
                    answers.push(Ok(id));
                }
            }
        }
        if !writes.is_empty() {
            self.inner.engine.journal().append_durable(writes).await?;
            self.poke();
        }
        Ok(answers)
    }

    /// An event record for an envelope.
    pub fn record(&self, id: &str, envelope: &Value, rules: &[String]) -> EventRecord {
        EventRecord {
            id: id.to_string(),
            source: envelope["source"].as_str().unwrap_or("").to_string(),
            event_type: envelope["detail-type"].as_str().unwrap_or("").to_string(),
            delivery_id: None,
            action: None,
            repository: None,
            installation_id: None,
            payload: envelope.to_string(),
            trace_id: crate::ids::new_trace_id(),
            received_at_ms: self.inner.engine.clock_now(),
            rules_matched: rules.to_vec(),
            outcome: None,
        }
    }

    // ---- rules CRUD (the API) ----

    pub fn list(&self) -> Vec<(RuleDef, RuleRecord)> {
        self.rules()
            .iter()
            .map(|(r, rec)| (r.def.clone(), rec.clone()))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<(RuleDef, RuleRecord)> {
        self.list().into_iter().find(|(d, _)| d.name == name)
    }

    /// Creates (`create`) or replaces a rule from the API; validated first, durable on return.
    pub async fn put(&self, def: RuleDef, create: bool) -> Result<RuleDef, BusError> {
        let existing = self.get(&def.name);
        match (&existing, create) {
            (Some(_), true) => return Err(BusError::Exists(def.name)),
            (None, false) => return Err(BusError::NotFound(def.name)),
            (Some((_, rec)), _) if rec.origin == "config" => {
                return Err(BusError::FromConfig(def.name));
            }
            _ => {}
        }
        check(&def, &self.inner.ports, true).map_err(BusError::Invalid)?;
        let now = self.inner.engine.clock_now();
        let record = RuleRecord {
            name: def.name.clone(),
            body: serde_json::to_string(&def).unwrap_or_default(),
            origin: "api".into(),
            created_at_ms: existing.map_or(now, |(_, r)| r.created_at_ms),
            updated_at_ms: now,
        };
        self.inner
            .engine
            .journal()
            .append_durable(vec![Write::PutRule(record)])
            .await?;
        self.reload().await?;
        Ok(def)
    }

    pub async fn delete(&self, name: &str) -> Result<(), BusError> {
        match self.get(name) {
            None => return Err(BusError::NotFound(name.into())),
            Some((_, rec)) if rec.origin == "config" => {
                return Err(BusError::FromConfig(name.into()));
            }
            _ => {}
        }
        self.inner
            .engine
            .journal()
            .append_durable(vec![Write::DeleteRule { name: name.into() }])
            .await?;
        self.reload().await
    }
}

/// Every problem of `gantry.toml`'s rules, as `Bus::start` refuses them: each with the
/// rule's index and `rule `NAME`: …`. A `run` target's spec file must exist and parse unless
/// its path has a `{placeholder}` (then it is known only when an event comes).
pub fn check_config_rules(defs: &[RuleDef], ports: &BusPorts) -> Vec<(usize, String)> {
    defs.iter()
        .enumerate()
        .filter_map(|(i, def)| {
            let files = match def.target.get("run") {
                Some(Value::String(path)) => !path.contains('{'),
                _ => false,
            };
            check(def, ports, files)
                .err()
                .map(|e| (i, format!("rule `{}`: {e}", def.name)))
        })
        .collect()
}

/// Every problem with a rule: its own (`Rule::compile`'s), then its target's against this
/// server: a `deploy` target's repository must start with an allowed prefix (each placeholder
/// taken as `x`), and (`files`: from the API) a `run` target's spec file must parse.
fn check(def: &RuleDef, ports: &BusPorts, files: bool) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Err(e) = Rule::compile(def.clone()) {
        problems.push(e);
    }
    if let Some(Value::String(path)) = def.target.get("run")
        && files
        && let Err(e) = dispatch::load_spec_file(&ports.base_dir, path, &ports.limits)
    {
        problems.push(format!("target: {e}"));
    }
    if let Some(Value::String(repo)) = def.target.get("deploy").and_then(|d| d.get("repository")) {
        let sample = def
            .input_paths
            .keys()
            .map(|k| (k.clone(), "x".to_string()))
            .collect();
        if let Ok(url) = gantry_core::bus::template::fill_url(repo, &sample)
            && let Err(e) =
                gantry_core::spec::check_clone_url(&ports.git_allowed, url.trim_end_matches('/'))
        {
            problems.push(format!("target: deploy.repository: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

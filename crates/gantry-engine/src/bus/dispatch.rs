//! Carries deliveries to their targets, and publishes run and job state changes on the bus.
//! A delivery is done once its target accepted it (a run or a deploy session was created — in
//! the same batch as the delivery's new state — or the endpoint answered 2xx); otherwise it is retried with
//! exponential backoff until the rule's retry policy gives up.

use super::Bus;
use crate::ports::{DeliveryRecord, Write};
use gantry_core::bus::rule::{RunTarget, Target};
use gantry_core::bus::template::{fill, fill_path, fill_url};
use gantry_core::spec::{self, Format, Limits, RunContext, RunSpec};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tracing::{info, warn};

/// Longest wait between two attempts of one delivery.
const MAX_BACKOFF_MS: i64 = 300_000;

pub(super) async fn run(bus: Bus) {
    // Of several servers on one database, only the lease's holder delivers (each delivery is
    // still at least once: a holder that dies mid-delivery leaves it pending).
    let mut lease = crate::lease::Singleton::new("bus:deliveries");
    while !bus.inner.engine.is_stopped() {
        if !lease.held(&bus.inner.engine).await {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let now = bus.inner.engine.clock_now();
        let pending = match bus.inner.engine.store().pending_deliveries(200).await {
            Ok(p) => p,
            Err(e) => {
                warn!(cause = %e, "cannot read pending deliveries");
                Vec::new()
            }
        };
        let mut next_due: Option<i64> = None;
        for d in pending {
            if d.next_at_ms > now {
                next_due = Some(next_due.map_or(d.next_at_ms, |n| n.min(d.next_at_ms)));
                continue;
            }
            let bus = bus.clone();
            // Deliveries of different events go in parallel; each is written once done.
            tokio::spawn(async move { deliver(&bus, d).await });
        }
        // At most a quarter of the lease: it is renewed well before it could lapse.
        let most = (bus.inner.engine.lease_holder().1 / 4).clamp(10, 5000);
        let wait = next_due.map_or(Duration::from_millis(most as u64), |t| {
            Duration::from_millis((t - now).clamp(10, most) as u64)
        });
        tokio::select! {
            _ = bus.inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Claims nothing: a delivery in flight is only re-sent if the server dies before writing
/// its result (targets see at-least-once delivery, as with EventBridge).
async fn deliver(bus: &Bus, mut d: DeliveryRecord) {
    static IN_FLIGHT: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let key = (d.event_id.clone(), d.rule.clone());
    {
        let mut f = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        if f.contains(&key) {
            return;
        }
        f.push(key.clone());
    }
    let result = attempt(bus, &d).await;
    let now = bus.inner.engine.clock_now();
    d.attempts += 1;
    let rules = bus.rules();
    let retry = rules
        .iter()
        .find(|(r, _)| r.def.name == d.rule)
        .map(|(r, _)| r.retry)
        .unwrap_or_default();
    let writes = match result {
        Outcome::Done(writes) => writes,
        Outcome::Failed { why, retry: again } => {
            let age_s = (now - d.created_at_ms) / 1000;
            let give_up = !again
                || d.attempts > retry.maximum_retry_attempts
                || age_s >= retry.maximum_event_age_in_seconds as i64;
            if give_up {
                warn!(event_id = %d.event_id, rule = %d.rule, cause = %why, "delivery failed; giving up");
                d.status = "failed".into();
            } else {
                let backoff = (1000i64 << d.attempts.min(20)).min(MAX_BACKOFF_MS);
                d.next_at_ms = now + backoff;
            }
            d.result = Some(why);
            vec![Write::PutDelivery(d.clone())]
        }
    };
    if let Err(e) = bus.inner.engine.journal().append_durable(writes).await {
        warn!(cause = %e, "cannot record a delivery");
    }
    IN_FLIGHT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|k| *k != key);
    bus.poke();
}

enum Outcome {
    /// Writes recording success (made durable together).
    Done(Vec<Write>),
    Failed {
        why: String,
        retry: bool,
    },
}

fn failed(why: impl Into<String>, retry: bool) -> Outcome {
    Outcome::Failed {
        why: why.into(),
        retry,
    }
}

async fn attempt(bus: &Bus, d: &DeliveryRecord) -> Outcome {
    let rules = bus.rules();
    let Some((rule, _)) = rules.iter().find(|(r, _)| r.def.name == d.rule) else {
        return failed(format!("rule `{}` no longer exists", d.rule), false);
    };
    let event = match bus.inner.engine.store().get_event(&d.event_id).await {
        Ok(Some(e)) => e,
        Ok(None) => return failed("the event is gone (expired)", false),
        Err(e) => return failed(e.to_string(), true),
    };
    let envelope: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let inputs = rule.inputs_of(&envelope);
    let done = |result: String| {
        let mut d = d.clone();
        d.status = "delivered".into();
        d.attempts += 1;
        d.result = Some(result);
        Write::PutDelivery(d)
    };
    match &rule.target {
        Target::Run(target) => {
            let spec = match target {
                RunTarget::Inline(v) => spec::from_node(
                    &spec::Node::from_json(v),
                    &rule.def.name,
                    &bus.inner.ports.limits,
                )
                .map_err(|p| p.to_string()),
                RunTarget::File(path) => fill_path(path, &inputs).and_then(|path| {
                    load_spec_file(&bus.inner.ports.base_dir, &path, &bus.inner.ports.limits)
                }),
            };
            let mut spec = match spec {
                Ok(s) => s,
                Err(e) => return failed(format!("the run target's spec is invalid: {e}"), false),
            };
            with_inputs(&mut spec, &inputs, &d.event_id);
            let ctx = RunContext::of_event(&event.event_type);
            let submitted = bus
                .inner
                .engine
                .submit_with(spec, ctx, Some(event.trace_id.clone()), |run_id| {
                    vec![done(format!("started run {run_id}"))]
                })
                .await;
            match submitted {
                Ok(s) => {
                    info!(rule = %rule.def.name, run_id = %s.run_id, "rule started a run");
                    Outcome::Done(Vec::new())
                }
                Err(e) => failed(e.to_string(), true),
            }
        }
        Target::Http(url) => {
            let Some(http) = &bus.inner.ports.http else {
                return failed("no HTTP client is configured", false);
            };
            let url = match fill_url(url, &inputs) {
                Ok(url) => url,
                Err(e) => return failed(e, false),
            };
            match http.post(&url, envelope.to_string().as_bytes()).await {
                Ok(status) if (200..300).contains(&status) => {
                    Outcome::Done(vec![done(format!("POST {url}: {status}"))])
                }
                // 4xx other than throttling will not get better by retrying.
                Ok(status) => failed(
                    format!("POST {url}: {status}"),
                    status == 429 || status >= 500,
                ),
                Err(crate::ports::PostError::Refused(e)) => {
                    failed(format!("POST {url}: {e}"), false)
                }
                Err(crate::ports::PostError::Failed(e)) => failed(format!("POST {url}: {e}"), true),
            }
        }
        Target::Deploy(target) => {
            // A rule on `Run State Change` without a filter would deploy again each time its
            // own deploy session finishes.
            if envelope["source"] == "gantry" && envelope["detail"]["event"] == "deploy" {
                return failed(
                    "a deploy session's own state change does not start another deploy",
                    false,
                );
            }
            let deploy = match target.request(&inputs) {
                Ok(d) => d,
                Err(p) => {
                    return failed(
                        format!("the deploy target's request is invalid: {}", p.join("; ")),
                        false,
                    );
                }
            };
            if let Err(e) = spec::check_clone_url(&bus.inner.ports.git_allowed, &deploy.repository)
            {
                return failed(format!("the deploy target's repository: {e}"), false);
            }
            let started = crate::deployments::start_deploy(
                &bus.inner.engine,
                &deploy,
                Some(event.trace_id.clone()),
                |run_id| vec![done(format!("started deploy session {run_id}"))],
            )
            .await;
            match started {
                Ok(s) => {
                    info!(rule = %rule.def.name, session_id = %s.run_id, repository = %deploy.repository,
                        branch = %deploy.branch, "rule started a deploy session");
                    Outcome::Done(Vec::new())
                }
                Err(e) => failed(e.to_string(), true),
            }
        }
        Target::StartService(name) | Target::StopService(name) => {
            let Some(services) = &bus.inner.ports.services else {
                return failed("no services are configured on this server", false);
            };
            let name = fill(name, &inputs);
            let result = match &rule.target {
                Target::StartService(_) => services.start(&name, &envelope["detail"]).await,
                _ => services.stop(&name).await,
            };
            match result {
                Ok(what) => Outcome::Done(vec![done(what)]),
                Err(e) => failed(e, false),
            }
        }
    }
}

/// Every job sees the rule's inputs as `INPUT_<NAME>` and the event's id.
fn with_inputs(spec: &mut RunSpec, inputs: &BTreeMap<String, String>, event_id: &str) {
    for job in &mut spec.jobs {
        for (k, v) in inputs {
            job.env
                .insert(format!("INPUT_{}", k.to_uppercase()), v.clone());
        }
        job.env
            .insert("GANTRY_EVENT_ID".into(), event_id.to_string());
    }
}

/// A `run` target's spec file, relative to the config file's folder and inside it (links
/// followed). An invalid file's problems are not repeated: they would show what the file
/// holds to whoever reads the delivery; `gantry run FILE` lists them.
pub(super) fn load_spec_file(base: &Path, path: &str, limits: &Limits) -> Result<RunSpec, String> {
    let full = base.join(path);
    let real = match (base.canonicalize(), full.canonicalize()) {
        (Ok(base), Ok(real)) if real.starts_with(&base) => real,
        (Ok(_), Ok(_)) => return Err(format!("{path} is outside the rules' folder")),
        (_, Err(e)) => return Err(format!("cannot read {path}: {e}")),
        (Err(e), _) => return Err(format!("cannot read the rules' folder: {e}")),
    };
    // The path checked, not the one given (a link on the way could change in between).
    let bytes = std::fs::read(&real).map_err(|e| format!("cannot read {path}: {e}"))?;
    spec::parse_spec(&bytes, Format::Auto, path, limits).map_err(|p| {
        format!(
            "{path} is not a valid run spec ({} problem{}); `gantry run {path}` lists them",
            p.0.len(),
            if p.0.len() == 1 { "" } else { "s" }
        )
    })
}

/// Run and job state changes as bus events (`source: gantry`, `detail-type: Run State
/// Change` / `Job State Change`), stored only when some rule matches them.
pub(super) async fn publish_state_changes(bus: Bus) {
    let mut committed = bus.inner.engine.journal().subscribe();
    loop {
        let batch = match committed.recv().await {
            Ok(b) => b,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    skipped = n,
                    "state change events skipped (the bus fell behind)"
                );
                continue;
            }
            Err(_) => return,
        };
        let mut writes = Vec::new();
        for w in batch.iter() {
            let (run_id, detail_type, detail) = match w {
                Write::UpdateJob { run_id, job }
                    if job.status.is_terminal()
                        || job.status == gantry_core::JobStatus::Running =>
                {
                    (
                        run_id,
                        "Job State Change",
                        json!({"run_id": run_id, "job": job.name, "status": job.status.to_string(),
                           "attempt": job.attempt, "exit_code": job.exit_code}),
                    )
                }
                Write::UpdateRun { id, status, .. } if status.is_terminal() => (
                    id,
                    "Run State Change",
                    json!({"run_id": id, "status": status.to_string()}),
                ),
                _ => continue,
            };
            if !bus.has_pattern_rules() {
                continue;
            }
            let run = bus
                .inner
                .engine
                .store()
                .get_run(run_id)
                .await
                .ok()
                .flatten();
            let mut detail = detail;
            if let Some(run) = &run {
                detail["run_name"] = json!(run.name);
                for (k, v) in [
                    ("event", &run.context.event),
                    ("branch", &run.context.branch),
                    ("repo", &run.context.repo),
                    ("sha", &run.context.sha),
                ] {
                    if let Some(v) = v {
                        detail[k] = json!(v);
                    }
                }
            }
            let id = crate::ids::new_run_id();
            let envelope = json!({
                "version": "0", "id": id, "detail-type": detail_type, "source": "gantry",
                "account": "000000000000", "region": "local",
                "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "resources": [format!("run/{run_id}")], "detail": detail,
            });
            let rules = bus.matching(&envelope);
            if rules.is_empty() {
                continue;
            }
            writes.push(Write::InsertEvent(Box::new(
                bus.record(&id, &envelope, &rules),
            )));
            writes.extend(bus.deliveries(&id, &rules));
        }
        if !writes.is_empty() {
            if let Err(e) = bus.inner.engine.journal().append_durable(writes).await {
                warn!(cause = %e, "cannot store state change events");
            }
            bus.poke();
        }
    }
}

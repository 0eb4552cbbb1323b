//! Every AWS call Gantry makes, counted, and how throttled calls are retried. Transient
//! failures: the SDK's standard retry mode (backoff with full jitter, [`MAX_ATTEMPTS`] tries).
//! Throttling: the [`Pacer`], which holds each action's calls to what AWS's token bucket lets
//! through (AWS's published figures, or the account's) and retries a throttled call until it
//! goes (the SDK's adaptive mode held a start back for a minute after five throttles; its
//! standard mode gave up on most of 100 starts at once).
//! [`CallCounter`] is an SDK interceptor that counts calls and their retries.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many times the SDK tries a call failing transiently (or throttled: then the [`Pacer`]
/// takes over) before its error is returned.
pub const MAX_ATTEMPTS: u32 = 3;

/// The retry policy of the clients that start and stop services and remote jobs.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(20))
}

/// Calls made and retries among them, since the clients were made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallCount {
    pub calls: u64,
    pub retries: u64,
}

/// Counts each call (once, however many attempts) and each retry.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
}

impl CallCounter {
    pub fn count(&self) -> CallCount {
        CallCount {
            calls: self.calls.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "gantry-call-counter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg
            .load::<RequestAttempts>()
            .is_some_and(|a| a.attempts() > 1)
        {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The error codes AWS answers a throttled call with (what the SDK's retry classifier knows).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
];

/// Whether `e` is AWS saying "too many requests".
pub fn is_throttling<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code().is_some_and(|c| THROTTLING.contains(&c))
}

use crate::bucket::Bucket;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use gantry_core::aws_limits::AwsDef;

/// Paces each action (`service:Action`) to what AWS lets through: a [`Bucket`] per action,
/// AWS's published figures unless the account's are configured ([`set_rate_limits`]), holds a
/// call that would find AWS's bucket empty until a token is back, so many starts at once go
/// at AWS's rate without being throttled, and a lone call never waits. A throttled answer
/// (the real bucket is tighter: other clients of the account, lowered limits) halves and
/// empties the estimate, the calls booked at the old pace book again, and the call is retried
/// at the new one; the estimate recovers over [`crate::bucket::RECOVERY`]. A call throttled
/// for longer than its patience gives AWS's error.
#[derive(Debug, Default)]
pub struct Pacer {
    actions: std::sync::Mutex<std::collections::HashMap<&'static str, Paced>>,
    limits: std::sync::Mutex<AwsDef>,
    throttled: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Paced {
    bucket: Bucket,
    /// How many times the estimate was lowered: a call booked before books again.
    epoch: u64,
}

/// How long one call keeps trying while it is throttled.
pub const PATIENCE: Duration = Duration::from_secs(120);

type ByRegion = std::sync::Mutex<std::collections::HashMap<String, Arc<Pacer>>>;

fn by_region() -> &'static ByRegion {
    static BY_REGION: std::sync::OnceLock<ByRegion> = std::sync::OnceLock::new();
    BY_REGION.get_or_init(Default::default)
}

fn configured() -> &'static std::sync::Mutex<AwsDef> {
    static CONFIGURED: std::sync::OnceLock<std::sync::Mutex<AwsDef>> = std::sync::OnceLock::new();
    CONFIGURED.get_or_init(Default::default)
}

fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The account's buckets (`[aws.rate_limits]` of gantry.toml), for every region's pacer in
/// this process, those made already included (their estimates start again, full).
pub fn set_rate_limits(limits: &AwsDef) {
    *locked(configured()) = limits.clone();
    for pacer in locked(by_region()).values() {
        pacer.set_limits(limits.clone());
    }
}

impl Pacer {
    /// This process's pacer for `region`: the services, the job executors and every other
    /// set of clients of one region share it, as AWS's throttling does.
    pub fn of_region(region: &str) -> Arc<Pacer> {
        locked(by_region())
            .entry(region.to_string())
            .or_insert_with(|| Arc::new(Pacer::with_limits(locked(configured()).clone())))
            .clone()
    }

    /// A pacer of its own, with these buckets (AWS's defaults for the actions not named).
    pub fn with_limits(limits: AwsDef) -> Pacer {
        Pacer {
            limits: std::sync::Mutex::new(limits),
            ..Pacer::default()
        }
    }

    fn set_limits(&self, limits: AwsDef) {
        *locked(&self.limits) = limits;
        locked(&self.actions).clear();
    }

    /// How many answers were throttled (each was retried, or given up on after [`PATIENCE`]).
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Books this action's next call: how long it waits, and the estimate's epoch.
    fn book(&self, action: &'static str) -> (Duration, u64) {
        let now = tokio::time::Instant::now();
        let mut actions = locked(&self.actions);
        let p = actions.entry(action).or_insert_with(|| Paced {
            bucket: Bucket::new(locked(&self.limits).limit(action), now),
            epoch: 0,
        });
        (p.bucket.take(now), p.epoch)
    }

    fn epoch(&self, action: &'static str) -> u64 {
        locked(&self.actions).get(action).map_or(0, |p| p.epoch)
    }

    /// A call sent at `sent` was throttled.
    fn learn(&self, action: &'static str, sent: tokio::time::Instant) {
        let now = tokio::time::Instant::now();
        if let Some(p) = locked(&self.actions).get_mut(action)
            && p.bucket.throttled(sent, now)
        {
            p.epoch += 1;
        }
    }

    /// Runs `call` (one AWS call of `action`, `service:Action`) when AWS's bucket should have
    /// a token for it, again while throttled.
    pub async fn call<T, E, F, Fut>(&self, action: &'static str, mut call: F) -> Result<T, E>
    where
        E: ProvideErrorMetadata,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let began = tokio::time::Instant::now();
        loop {
            let (wait, epoch) = self.book(action);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                if self.epoch(action) != epoch {
                    continue; // the estimate was lowered while this call waited: book again
                }
            }
            let sent = tokio::time::Instant::now();
            match call().await {
                Err(e) if is_throttling(&e) => {
                    self.throttled.fetch_add(1, Ordering::Relaxed);
                    self.learn(action, sent);
                    if began.elapsed() > PATIENCE {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::HEADROOM;

    use aws_smithy_types::error::ErrorMetadata;

    /// An error with AWS's `code`.
    #[derive(Debug)]
    struct Fake(ErrorMetadata);
    impl ProvideErrorMetadata for Fake {
        fn meta(&self) -> &ErrorMetadata {
            &self.0
        }
    }
    fn coded(code: &'static str) -> Fake {
        Fake(ErrorMetadata::builder().code(code).build())
    }

    fn limits(action: &str, burst: u32, per_second: f64) -> AwsDef {
        let mut def = AwsDef::default();
        let limit = gantry_core::aws_limits::RateLimit { burst, per_second };
        def.rate_limits.insert(action.to_string(), limit);
        def
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_calls_wait_longer_and_a_lone_call_never_waits() {
        let pacer = Pacer::with_limits(limits("ecs:RunTask", 10, 10.0 / HEADROOM));
        let began = tokio::time::Instant::now();
        let ok: Result<u32, Fake> = pacer.call("ecs:RunTask", || async { Ok(1) }).await;
        assert_eq!(ok.unwrap(), 1);
        assert_eq!(began.elapsed(), Duration::ZERO);
        // Throttled twice, then let through: the estimate halved twice (10 → 5 → 2.5 a
        // second), the retries waited 200 + 400 ms.
        let mut n = 0;
        let got: Result<u32, Fake> = pacer
            .call("ecs:RunTask", || {
                n += 1;
                let n = n;
                async move {
                    if n <= 2 {
                        Err(coded("ThrottlingException"))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(got.unwrap(), 3);
        assert_eq!(pacer.throttled(), 2);
        let waited = began.elapsed().as_millis();
        assert!((599..=601).contains(&waited), "{waited} ms");
        // Another error is not retried.
        let other: Result<u32, Fake> = pacer
            .call("ecs:RunTask", || async {
                Err(coded("AccessDeniedException"))
            })
            .await;
        assert_eq!(other.unwrap_err().code(), Some("AccessDeniedException"));
        // Throttled for good: AWS's error after the patience.
        let never: Result<u32, Fake> = pacer
            .call("ecs:StopTask", || async { Err(coded("Throttling")) })
            .await;
        assert_eq!(never.unwrap_err().code(), Some("Throttling"));
        assert!(began.elapsed() > PATIENCE);
    }

    /// AWS's token bucket for one action, as the emulator keeps it: a call that finds it
    /// empty is throttled.
    struct Aws {
        tokens: f64,
        burst: f64,
        rate: f64,
        at: tokio::time::Instant,
    }

    impl Aws {
        fn take(&mut self) -> bool {
            let now = tokio::time::Instant::now();
            let dt = now.duration_since(self.at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
            self.at = now;
            let ok = self.tokens >= 1.0;
            if ok {
                self.tokens -= 1.0;
            }
            ok
        }
    }

    /// `n` calls of RunTask at once through `pacer`, against AWS's bucket of `burst` and
    /// `per_second`, each answer 20 ms after its call: how long all took, and the throttles.
    async fn at_once(pacer: Pacer, n: usize, burst: f64, per_second: f64) -> (Duration, u64) {
        let pacer = Arc::new(pacer);
        let aws = Arc::new(std::sync::Mutex::new(Aws {
            tokens: burst,
            burst,
            rate: per_second,
            at: tokio::time::Instant::now(),
        }));
        let began = tokio::time::Instant::now();
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let (pacer, aws) = (pacer.clone(), aws.clone());
                tokio::spawn(async move {
                    let got: Result<(), Fake> = pacer
                        .call("ecs:RunTask", || {
                            let ok = aws.lock().unwrap().take();
                            async move {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                if ok {
                                    Ok(())
                                } else {
                                    Err(coded("ThrottlingException"))
                                }
                            }
                        })
                        .await;
                    got.unwrap();
                })
            })
            .collect();
        for c in calls {
            c.await.unwrap();
        }
        (began.elapsed(), pacer.throttled())
    }

    #[tokio::test(start_paused = true)]
    async fn told_the_account_s_limits_many_calls_at_once_are_never_throttled() {
        let pacer = Pacer::with_limits(limits("ecs:RunTask", 20, 5.0));
        let (took, throttled) = at_once(pacer, 100, 20.0, 5.0).await;
        assert_eq!(throttled, 0);
        // 20 at once, then 80 at 4.5 a second (the headroom kept).
        let s = took.as_secs_f64();
        assert!((17.5..18.5).contains(&s), "{s} s");
    }

    #[tokio::test(start_paused = true)]
    async fn with_aws_s_defaults_against_a_tighter_bucket_the_pacer_learns_it() {
        // AWS's default RunTask bucket (20, 20 a second) against an account at 5 a second.
        let (took, throttled) = at_once(Pacer::default(), 100, 20.0, 5.0).await;
        eprintln!("100 at once, defaults against 20 / 5: {took:?}, {throttled} throttled");
        assert!((1..=10).contains(&throttled), "{throttled} throttled");
        let s = took.as_secs_f64();
        assert!(s < 40.0, "{s} s");
    }
}

//! Every AWS call Gantry makes, counted, and how throttled calls are retried. Transient
//! failures: the SDK's standard retry mode (backoff with full jitter, [`MAX_ATTEMPTS`] tries).
//! Throttling: the [`Pacer`], which spaces one action's calls by what AWS lets through and
//! retries a throttled call until it goes (the SDK's adaptive mode held a start back for a
//! minute after five throttles; its standard mode gave up on most of 100 starts at once).
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

use aws_sdk_ecs::error::ProvideErrorMetadata;

/// Paces one kind of call to what AWS lets through, learning it: throttled answers double the
/// gap kept between this action's calls (once a gap, up to [`MAX_GAP`]) and retry after it;
/// each call let through shortens the gap by a tenth, to nothing once AWS stops throttling.
/// Many starts at once then settle at AWS's rate instead of failing, and a lone start never
/// waits. A call throttled for longer than its patience gives AWS's error.
#[derive(Debug, Default)]
pub struct Pacer {
    actions: std::sync::Mutex<std::collections::HashMap<&'static str, Pace>>,
    throttled: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Pace {
    gap: Duration,
    next: tokio::time::Instant,
    /// When the gap last grew: it grows once a gap (a burst of throttles is one signal).
    grew: tokio::time::Instant,
    /// How many times the gap grew: a call booked before it grew books again.
    epoch: u64,
}

/// The longest gap kept between two calls of one action.
pub const MAX_GAP: Duration = Duration::from_secs(2);
/// How long one call keeps trying while it is throttled.
pub const PATIENCE: Duration = Duration::from_secs(120);

impl Pacer {
    /// This process's pacer for `region`: the services, the job executors and every other
    /// set of clients of one region share it, as AWS's throttling does.
    pub fn of_region(region: &str) -> std::sync::Arc<Pacer> {
        static BY_REGION: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Pacer>>>,
        > = std::sync::OnceLock::new();
        BY_REGION
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(region.to_string())
            .or_default()
            .clone()
    }

    /// How many answers were throttled (each was retried, or given up on after [`PATIENCE`]).
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// When this action's next call may go, booked for the caller, and the pace's epoch.
    fn book(&self, action: &'static str) -> (tokio::time::Instant, u64) {
        let mut actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        let p = actions.entry(action).or_insert(Pace {
            gap: Duration::ZERO,
            next: now,
            grew: now,
            epoch: 0,
        });
        let at = p.next.max(now);
        p.next = at + p.gap;
        (at, p.epoch)
    }

    fn epoch(&self, action: &'static str) -> u64 {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        actions.get(action).map_or(0, |p| p.epoch)
    }

    fn learn(&self, action: &'static str, throttled: bool) {
        let mut actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = actions.get_mut(action) {
            if throttled {
                let now = tokio::time::Instant::now();
                if (p.gap.is_zero() || now >= p.grew + p.gap) && p.gap < MAX_GAP {
                    p.gap = (p.gap * 2).clamp(Duration::from_millis(50), MAX_GAP);
                    p.grew = now;
                    // The calls booked at the old pace book again at this one.
                    p.epoch += 1;
                    p.next = now + p.gap;
                    return;
                }
                // The retry (and every call booked after it) waits out the gap.
                p.next = p.next.max(now + p.gap);
                return;
            }
            p.gap = if p.gap < Duration::from_millis(5) {
                Duration::ZERO
            } else {
                p.gap - p.gap / 32
            };
        }
    }

    /// Runs `call` (one AWS call of `action`) at this action's pace, again while throttled.
    pub async fn call<T, E, F, Fut>(&self, action: &'static str, mut call: F) -> Result<T, E>
    where
        E: ProvideErrorMetadata,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let began = tokio::time::Instant::now();
        loop {
            let (at, epoch) = self.book(action);
            tokio::time::sleep_until(at).await;
            if self.epoch(action) != epoch {
                continue; // the pace slowed while this call waited: book again
            }
            match call().await {
                Err(e) if is_throttling(&e) => {
                    self.throttled.fetch_add(1, Ordering::Relaxed);
                    self.learn(action, true);
                    if began.elapsed() > PATIENCE {
                        return Err(e);
                    }
                }
                other => {
                    self.learn(action, false);
                    return other;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test(start_paused = true)]
    async fn throttled_calls_wait_longer_and_a_lone_call_never_waits() {
        let pacer = Pacer::default();
        let began = tokio::time::Instant::now();
        let ok: Result<u32, Fake> = pacer.call("RunTask", || async { Ok(1) }).await;
        assert_eq!(ok.unwrap(), 1);
        assert_eq!(began.elapsed(), Duration::ZERO);
        // Throttled twice, then let through: waited 50 + 100 ms.
        let mut n = 0;
        let got: Result<u32, Fake> = pacer
            .call("RunTask", || {
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
        assert!(
            began.elapsed() >= Duration::from_millis(150),
            "{:?}",
            began.elapsed()
        );
        // Another error is not retried.
        let other: Result<u32, Fake> = pacer
            .call("RunTask", || async { Err(coded("AccessDeniedException")) })
            .await;
        assert_eq!(other.unwrap_err().code(), Some("AccessDeniedException"));
        // Throttled for good: AWS's error after the patience.
        let never: Result<u32, Fake> = pacer
            .call("StopTask", || async { Err(coded("Throttling")) })
            .await;
        assert_eq!(never.unwrap_err().code(), Some("Throttling"));
        assert!(began.elapsed() > PATIENCE);
    }
}

//! Every AWS call Gantry makes, counted, and how throttled calls are retried: the SDK's
//! standard retry mode (exponential backoff with full jitter, up to [`MAX_ATTEMPTS`], within
//! the client's retry quota). Not its adaptive mode: once throttled, that one's client-side
//! rate limit held a start back for a minute after five throttles. [`CallCounter`] is an SDK
//! interceptor that counts calls and their retries, for the benchmarks and the logs.

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

/// How many times a call is tried, throttled or failing transiently, before its error is
/// returned: AWS's throttles clear within seconds, the backoff reaches 20 s.
pub const MAX_ATTEMPTS: u32 = 8;

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

//! Gantry's estimate of AWS's token bucket for one action (per account and region), so that a
//! call that would find AWS's bucket empty is held instead of sent. Pure: every method takes
//! `now`. Seeded with AWS's figures (or the account's, from gantry.toml); a throttled answer
//! says the real bucket is tighter (other clients of the account, lowered limits): the
//! estimate is halved and emptied, then recovers to the figures over [`RECOVERY`].

use gantry_core::aws_limits::RateLimit;
use std::time::Duration;
use tokio::time::Instant;

/// The part of AWS's refill rate Gantry spends: AWS counts a call when it arrives, Gantry when
/// it books it, and two calls booked one refill apart may arrive closer.
pub const HEADROOM: f64 = 0.9;
/// The slowest an estimate goes: one call every 2 s.
pub const MIN_RATE: f64 = 0.5;
/// How long a halved estimate takes to grow back to the configured rate (and burst) while
/// AWS throttles nothing.
pub const RECOVERY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// AWS's figures (or the account's): what the estimate recovers to.
    limit: RateLimit,
    /// The estimate: burst and refill rate (calls a second, headroom taken).
    burst: f64,
    rate: f64,
    /// Tokens left at `at`; below zero: calls booked ahead, waiting for a refill.
    tokens: f64,
    at: Instant,
    /// When the estimate was last lowered: throttles of calls sent before are old news.
    lowered: Option<Instant>,
}

impl Bucket {
    /// A full bucket of `limit`.
    pub fn new(limit: RateLimit, now: Instant) -> Bucket {
        let (burst, rate) = Bucket::ceiling(limit);
        Bucket {
            limit,
            burst,
            rate,
            tokens: burst,
            at: now,
            lowered: None,
        }
    }

    fn ceiling(limit: RateLimit) -> (f64, f64) {
        (
            f64::from(limit.burst.max(1)),
            (limit.per_second * HEADROOM).max(MIN_RATE),
        )
    }

    /// The estimated refill rate, in calls a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The estimated burst.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Brings the tokens, and the estimate's recovery, up to `now`.
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        let (burst, rate) = Bucket::ceiling(self.limit);
        let part = dt / RECOVERY.as_secs_f64();
        self.rate = (self.rate + rate * part).min(rate);
        self.burst = (self.burst + burst * part).min(burst);
    }

    /// Books one call at `now`: how long it waits before going (none while a token is left).
    pub fn take(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// AWS throttled a call sent at `sent` (answered at `now`): its bucket was empty. Unless
    /// the call was sent before the estimate was last lowered (then it is old news), the
    /// estimate is halved and emptied, and true is returned: the calls booked at the old pace
    /// must book again.
    pub fn throttled(&mut self, sent: Instant, now: Instant) -> bool {
        self.refill(now);
        if self.lowered.is_some_and(|l| sent < l) {
            self.tokens = self.tokens.min(0.0);
            return false;
        }
        self.rate = (self.rate / 2.0).max(MIN_RATE);
        self.burst = (self.burst / 2.0).max(1.0);
        self.tokens = 0.0;
        self.lowered = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limit(burst: u32, per_second: f64) -> RateLimit {
        RateLimit { burst, per_second }
    }

    #[test]
    fn a_burst_goes_at_once_and_the_rest_at_the_refill_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(limit(3, 10.0 / HEADROOM), t0);
        for _ in 0..3 {
            assert_eq!(b.take(t0), Duration::ZERO);
        }
        let waits: Vec<_> = (0..3).map(|_| b.take(t0).as_millis()).collect();
        assert_eq!(waits, [100, 200, 300]);
        // Idle for long enough, the bucket is full again: a lone call never waits.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.take(later), Duration::ZERO);
    }

    #[test]
    fn a_throttle_halves_and_empties_the_estimate_once_then_it_recovers() {
        let t0 = Instant::now();
        let mut b = Bucket::new(limit(20, 20.0), t0);
        let full_rate = b.rate();
        for _ in 0..20 {
            b.take(t0);
        }
        let at = t0 + Duration::from_millis(10);
        // (Within a few ms: the estimate recovers meanwhile.)
        let near = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(b.throttled(t0, at));
        assert!(near(b.rate(), full_rate / 2.0), "{}", b.rate());
        assert!(near(b.burst(), 10.0), "{}", b.burst());
        // Calls sent before the cut and throttled after it are the same signal.
        assert!(!b.throttled(t0, at + Duration::from_millis(5)));
        assert!(near(b.rate(), full_rate / 2.0), "{}", b.rate());
        // A call sent after the cut and throttled is a new one.
        assert!(b.throttled(
            at + Duration::from_millis(1),
            at + Duration::from_millis(20)
        ));
        assert!(near(b.rate(), full_rate / 4.0), "{}", b.rate());
        // Back to the configured figures after RECOVERY without throttles.
        b.take(at + RECOVERY);
        assert_eq!(b.rate(), full_rate);
        assert_eq!(b.burst(), 20.0);
        // Never below one call every 2 s.
        let mut slow = Bucket::new(limit(1, 0.1), t0);
        for i in 0..5 {
            slow.throttled(t0 + Duration::from_secs(i), t0 + Duration::from_secs(i));
        }
        assert_eq!(slow.rate(), MIN_RATE);
    }

    proptest! {
        /// However calls arrive, those booked never exceed what the bucket lets through: in
        /// any span of s seconds at most burst + rate × s of them go, so AWS's bucket of the
        /// same figures never finds itself empty.
        #[test]
        fn booked_calls_never_exceed_the_bucket(
            burst in 1u32..50,
            per_second in 0.5f64..50.0,
            gaps in proptest::collection::vec(0u64..500, 1..200),
        ) {
            let t0 = Instant::now();
            let mut b = Bucket::new(limit(burst, per_second), t0);
            let rate = b.rate();
            let mut now = t0;
            let mut sends = Vec::new();
            for gap in gaps {
                now += Duration::from_millis(gap);
                sends.push(now + b.take(now));
            }
            sends.sort();
            for (i, first) in sends.iter().enumerate() {
                for (n, last) in sends[i..].iter().enumerate() {
                    let span = last.duration_since(*first).as_secs_f64();
                    prop_assert!((n + 1) as f64 <= f64::from(burst) + rate * span + 1e-6,
                        "{} calls from call {i} go within {span} s", n + 1);
                }
            }
        }
    }
}

//! Reconnection policy of a long-lived client, sans-IO: when to try again
//! and whether to try at all.
//!
//! [`RetryPolicy`] holds AutobahnPython's defaults (first delay 1.5 s,
//! growth ×1.5, jitter 0.1, cap 300 s, unlimited retries); [`Backoff`]
//! walks its schedule from the `now` and the [`Rng`] passed in, so a test
//! replays it exactly. [`Disposition`] and [`classify_reason`] say whether
//! a failure is worth retrying.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use fahrbahn_core::Rng;
//! use fahrbahn_core::retry::{Backoff, RetryPolicy};
//!
//! let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
//! let mut backoff = Backoff::new(policy);
//! let mut rng = Rng::from_seed(1);
//! let now = Instant::now();
//! assert_eq!(backoff.next_attempt(now, &mut rng), Some(now + Duration::from_millis(1500)));
//! assert_eq!(backoff.next_attempt(now, &mut rng), Some(now + Duration::from_millis(2250)));
//! backoff.reset(); // joined: the next loss starts over
//! assert_eq!(backoff.next_delay(&mut rng), Some(Duration::from_millis(1500)));
//! ```

use std::time::{Duration, Instant};

use crate::Rng;
use crate::wamp::error::{
    ERROR_AUTHENTICATION_FAILED, ERROR_CANNOT_AUTHENTICATE, ERROR_NO_AUTH_METHOD,
    ERROR_NO_SUCH_REALM, ERROR_NO_SUCH_ROLE, ERROR_NOT_AUTHORIZED,
};

/// When to retry a lost or failed connection. The defaults are
/// AutobahnPython's (`Component`'s `retry_delay_*`, `max_retries`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The delay before the first retry (default 1.5 s).
    pub initial_delay: Duration,
    /// Each further delay is the previous one times this (default 1.5;
    /// values below 1 are taken as 1).
    pub growth: f64,
    /// Random spread of each delay, as a fraction of it: a delay `d`
    /// becomes a uniform pick from `d × (1 ± jitter)` (default 0.1;
    /// clamped to 0..=1).
    pub jitter: f64,
    /// No delay is longer than this (default 300 s).
    pub max_delay: Duration,
    /// How many retries in a row, without a join between them, before
    /// giving up; `None` (the default) retries for ever.
    pub max_retries: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(1500),
            growth: 1.5,
            jitter: 0.1,
            max_delay: Duration::from_secs(300),
            max_retries: None,
        }
    }
}

impl RetryPolicy {
    /// The delay of retry number `retry` (0 for the first) before jitter:
    /// `initial_delay × growth^retry`, capped at `max_delay`.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let growth = if self.growth.is_finite() {
            self.growth.max(1.0)
        } else {
            1.0
        };
        let exp = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * growth.powi(exp);
        let max = self.max_delay.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The bounds of retry number `retry`'s delay, jitter included (and
    /// capped at `max_delay`): what a test checks a reconnection against.
    pub fn delay_bounds(&self, retry: u32) -> (Duration, Duration) {
        let base = self.base_delay(retry).as_secs_f64();
        let jitter = self.jitter_fraction();
        let max = self.max_delay.as_secs_f64();
        (
            Duration::from_secs_f64((base * (1.0 - jitter)).min(max)),
            Duration::from_secs_f64((base * (1.0 + jitter)).min(max)),
        )
    }

    fn jitter_fraction(&self) -> f64 {
        if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// The retry schedule of one component: how many retries in a row so far,
/// and the next delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    retries: u32,
}

impl Backoff {
    /// A schedule that starts at the first retry.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy, retries: 0 }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Retries in a row so far (since the start or the last
    /// [`reset`](Self::reset)).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Starts the schedule over: call when a session joined.
    pub fn reset(&mut self) {
        self.retries = 0;
    }

    /// The delay before the next retry, jitter drawn from `rng`, and counts
    /// the retry; `None` once `max_retries` retries were made (give up).
    pub fn next_delay(&mut self, rng: &mut Rng) -> Option<Duration> {
        if self
            .policy
            .max_retries
            .is_some_and(|max| self.retries >= max)
        {
            return None;
        }
        let base = self.policy.base_delay(self.retries).as_secs_f64();
        self.retries = self.retries.saturating_add(1);
        let jitter = self.policy.jitter_fraction();
        // A uniform pick from [-1, 1) with 53 bits of the generator.
        let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + jitter * (2.0 * unit - 1.0);
        let secs = (base * factor).min(self.policy.max_delay.as_secs_f64());
        Some(Duration::from_secs_f64(secs.max(0.0)))
    }

    /// When to make the next attempt, counted from `now`; `None`: give up.
    pub fn next_attempt(&mut self, now: Instant, rng: &mut Rng) -> Option<Instant> {
        self.next_delay(rng).map(|delay| now + delay)
    }
}

/// Whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Retrying cannot help (the router refused us): stop and report.
    Fatal,
    /// The network or the router went away: retry after the back-off.
    Transient,
}

/// Classifies an ABORT reason or session error URI: authentication refused
/// (`wamp.error.not_authorized`, `no_auth_method`, `authentication_failed`,
/// `cannot_authenticate`) and `no_such_realm`, `no_such_role` are
/// [`Fatal`](Disposition::Fatal); everything else
/// (`wamp.close.system_shutdown`, `wamp.error.network_failure`,
/// timeouts, …) is [`Transient`](Disposition::Transient).
///
/// ```
/// use fahrbahn_core::retry::{Disposition, classify_reason};
/// assert_eq!(classify_reason("wamp.error.no_such_realm"), Disposition::Fatal);
/// assert_eq!(classify_reason("wamp.close.system_shutdown"), Disposition::Transient);
/// ```
pub fn classify_reason(uri: &str) -> Disposition {
    match uri {
        ERROR_NOT_AUTHORIZED
        | ERROR_NO_AUTH_METHOD
        | ERROR_AUTHENTICATION_FAILED
        | ERROR_CANNOT_AUTHENTICATE
        | ERROR_NO_SUCH_REALM
        | ERROR_NO_SUCH_ROLE => Disposition::Fatal,
        _ => Disposition::Transient,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults_are_autobahn_pythons() {
        let p = RetryPolicy::default();
        assert_eq!(p.initial_delay, ms(1500));
        assert_eq!(p.growth, 1.5);
        assert_eq!(p.jitter, 0.1);
        assert_eq!(p.max_delay, Duration::from_secs(300));
        assert_eq!(p.max_retries, None);
    }

    #[test]
    fn without_jitter_the_schedule_grows_by_the_factor_up_to_the_cap() {
        let mut b = Backoff::new(RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        });
        let mut rng = Rng::from_seed(3);
        let delays: Vec<_> = (0..20).map(|_| b.next_delay(&mut rng).unwrap()).collect();
        let expected = [1500.0, 2250.0, 3375.0, 5062.5, 7593.75];
        for (d, e) in delays.iter().zip(expected) {
            assert!((d.as_secs_f64() * 1000.0 - e).abs() < 1e-6, "{d:?} vs {e}");
        }
        // 1.5 × 1.5^13 ≈ 291.9 s, 1.5^14 × 1.5 ≈ 437.9 s → capped.
        assert!(delays[13] < Duration::from_secs(300));
        assert_eq!(delays[14], Duration::from_secs(300));
        assert_eq!(delays[19], Duration::from_secs(300));
        assert_eq!(b.retries(), 20);
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_is_seeded() {
        let policy = RetryPolicy::default();
        let mut a = Backoff::new(policy.clone());
        let mut b = Backoff::new(policy.clone());
        let (mut ra, mut rb) = (Rng::from_seed(9), Rng::from_seed(9));
        let mut spread = false;
        for retry in 0..30 {
            let da = a.next_delay(&mut ra).unwrap();
            assert_eq!(
                da,
                b.next_delay(&mut rb).unwrap(),
                "same seed, same schedule"
            );
            let (lo, hi) = policy.delay_bounds(retry);
            assert!(
                lo <= da && da <= hi,
                "retry {retry}: {da:?} not in {lo:?}..{hi:?}"
            );
            spread |= da != policy.base_delay(retry);
        }
        assert!(spread, "jitter moved some delays");
    }

    #[test]
    fn max_retries_gives_up_and_reset_starts_over() {
        let mut b = Backoff::new(RetryPolicy {
            max_retries: Some(2),
            jitter: 0.0,
            ..RetryPolicy::default()
        });
        let mut rng = Rng::from_seed(1);
        let now = Instant::now();
        assert_eq!(b.next_attempt(now, &mut rng), Some(now + ms(1500)));
        assert_eq!(b.next_attempt(now, &mut rng), Some(now + ms(2250)));
        assert_eq!(b.next_attempt(now, &mut rng), None);
        b.reset();
        assert_eq!(b.next_delay(&mut rng), Some(ms(1500)));
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let mut b = Backoff::new(RetryPolicy {
            initial_delay: Duration::from_secs(1),
            growth: f64::NAN,
            jitter: 7.0,
            max_delay: Duration::from_secs(2),
            max_retries: None,
        });
        let mut rng = Rng::from_seed(5);
        for _ in 0..10 {
            let d = b.next_delay(&mut rng).unwrap();
            assert!(d <= Duration::from_secs(2), "{d:?}");
        }
        let huge = RetryPolicy {
            growth: 1e300,
            ..RetryPolicy::default()
        };
        assert_eq!(huge.base_delay(u32::MAX), huge.max_delay);
    }

    #[test]
    fn refusals_are_fatal_and_losses_transient() {
        for fatal in [
            "wamp.error.not_authorized",
            "wamp.error.no_auth_method",
            "wamp.error.authentication_failed",
            "wamp.error.cannot_authenticate",
            "wamp.error.no_such_realm",
            "wamp.error.no_such_role",
        ] {
            assert_eq!(classify_reason(fatal), Disposition::Fatal, "{fatal}");
        }
        for transient in [
            "wamp.close.system_shutdown",
            "wamp.error.system_shutdown",
            "wamp.error.network_failure",
            "wamp.error.timeout",
            "wamp.close.killed",
            "wamp.error.protocol_violation",
        ] {
            assert_eq!(
                classify_reason(transient),
                Disposition::Transient,
                "{transient}"
            );
        }
    }
}

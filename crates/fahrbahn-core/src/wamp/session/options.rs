//! Typed options of CALL and REGISTER (the Advanced Profile's dealer
//! features), turned into the options dictionary of the message.

use std::time::Duration;

use crate::wamp::value::{Dict, Value};

/// The unit in which the router reads CALL `timeout`: the spec says
/// milliseconds (our router, the default); Crossbar.io (and
/// AutobahnPython) use seconds. Set per session in
/// [`SessionConfig::call_timeout_unit`](crate::wamp::SessionConfig::call_timeout_unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimeoutUnit {
    /// Milliseconds, as the WAMP spec says.
    #[default]
    Milliseconds,
    /// Whole seconds, rounded up (at least 1), as Crossbar.io reads it.
    Seconds,
}

impl TimeoutUnit {
    /// `timeout` in this unit; a non-zero timeout never becomes 0 (which
    /// means "no timeout").
    ///
    /// ```
    /// use std::time::Duration;
    /// use fahrbahn_core::wamp::TimeoutUnit;
    /// assert_eq!(TimeoutUnit::Milliseconds.convert(Duration::from_millis(1500)), 1500);
    /// assert_eq!(TimeoutUnit::Seconds.convert(Duration::from_millis(1500)), 2);
    /// assert_eq!(TimeoutUnit::Seconds.convert(Duration::from_millis(1)), 1);
    /// ```
    pub fn convert(self, timeout: Duration) -> u64 {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let ms = if ms == 0 && !timeout.is_zero() { 1 } else { ms };
        match self {
            Self::Milliseconds => ms,
            Self::Seconds => ms.div_ceil(1000),
        }
    }
}

/// Options of a CALL.
///
/// ```
/// use std::time::Duration;
/// use fahrbahn_core::wamp::{CallOptions, TimeoutUnit, Value};
/// let options = CallOptions::new().timeout(Duration::from_secs(2)).disclose_me(true);
/// let dict = options.to_dict(TimeoutUnit::Milliseconds);
/// assert_eq!(dict["timeout"], Value::from(2000u64));
/// assert_eq!(options.to_dict(TimeoutUnit::Seconds)["timeout"], Value::from(2u64));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CallOptions {
    /// The call fails with `wamp.error.canceled` after this long, and the
    /// callee is interrupted (`call_timeout`); `None`: no timeout.
    pub timeout: Option<Duration>,
    /// Ask the router to disclose our identity to the callee.
    pub disclose_me: bool,
    /// Further options, sent as given (e.g. `x_*` custom options).
    pub extra: Dict,
}

impl CallOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`disclose_me`](Self::disclose_me).
    pub fn disclose_me(mut self, disclose: bool) -> Self {
        self.disclose_me = disclose;
        self
    }

    /// The CALL options dictionary, `timeout` in `unit`.
    pub fn to_dict(&self, unit: TimeoutUnit) -> Dict {
        let mut dict = self.extra.clone();
        if let Some(t) = self.timeout {
            dict.insert("timeout".into(), unit.convert(t).into());
        }
        if self.disclose_me {
            dict.insert("disclose_me".into(), true.into());
        }
        dict
    }
}

/// How the router picks among the callees of a shared registration
/// (REGISTER option `invoke`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Invoke {
    /// One callee only (the default).
    #[default]
    Single,
    /// The callees in turn.
    RoundRobin,
    /// A random callee.
    Random,
    /// The callee that registered first.
    First,
    /// The callee that registered last.
    Last,
    /// The callee with the fewest pending invocations (an extension of
    /// our router; Crossbar.io refuses it).
    LeastBusy,
}

impl Invoke {
    /// The option's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::RoundRobin => "roundrobin",
            Self::Random => "random",
            Self::First => "first",
            Self::Last => "last",
            Self::LeastBusy => "leastbusy",
        }
    }
}

/// Options of a REGISTER.
///
/// ```
/// use fahrbahn_core::wamp::{Invoke, RegisterOptions, Value};
/// let dict = RegisterOptions::new().invoke(Invoke::RoundRobin).concurrency(4).to_dict();
/// assert_eq!(dict["invoke"], Value::from("roundrobin"));
/// assert_eq!(dict["concurrency"], Value::from(4u64));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RegisterOptions {
    /// `match`: `"prefix"` or `"wildcard"`; `None`: exact.
    pub match_policy: Option<String>,
    /// The invocation policy (shared registrations).
    pub invoke: Invoke,
    /// At most this many pending invocations for us at once (Crossbar.io's
    /// `concurrency`); calls beyond get `crossbar.error.max_concurrency_reached`.
    pub concurrency: Option<u32>,
    /// Take the procedure over: the router drops its existing
    /// registration and callees (Crossbar.io's `force_reregister`).
    pub force_reregister: bool,
    /// Further options, sent as given.
    pub extra: Dict,
}

impl RegisterOptions {
    /// No options: an exact, single registration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`match_policy`](Self::match_policy) (`"prefix"`, `"wildcard"`).
    pub fn match_policy(mut self, policy: impl Into<String>) -> Self {
        self.match_policy = Some(policy.into());
        self
    }

    /// Sets [`invoke`](Self::invoke).
    pub fn invoke(mut self, invoke: Invoke) -> Self {
        self.invoke = invoke;
        self
    }

    /// Sets [`concurrency`](Self::concurrency).
    pub fn concurrency(mut self, limit: u32) -> Self {
        self.concurrency = Some(limit);
        self
    }

    /// Sets [`force_reregister`](Self::force_reregister).
    pub fn force_reregister(mut self, force: bool) -> Self {
        self.force_reregister = force;
        self
    }

    /// The REGISTER options dictionary.
    pub fn to_dict(&self) -> Dict {
        let mut dict = self.extra.clone();
        if let Some(m) = &self.match_policy {
            dict.insert("match".into(), Value::String(m.clone()));
        }
        if self.invoke != Invoke::Single {
            dict.insert("invoke".into(), self.invoke.as_str().into());
        }
        if let Some(n) = self.concurrency {
            dict.insert("concurrency".into(), u64::from(n).into());
        }
        if self.force_reregister {
            dict.insert("force_reregister".into(), true.into());
        }
        dict
    }
}

//! The settings of a client session, and the roles it announces.

use std::time::Duration;

use super::options::TimeoutUnit;
use crate::wamp::value::{Dict, Value};

/// Settings of a client session.
///
/// ```
/// use std::time::Duration;
/// use fahrbahn_core::wamp::SessionConfig;
/// let mut config = SessionConfig::new("realm1");
/// config.authmethods = vec!["ticket".into()];
/// config.authid = Some("joe".into());
/// config.join_timeout = Duration::from_secs(3);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The realm to join.
    pub realm: String,
    /// Authentication methods offered, e.g. `["ticket"]` (empty: anonymous).
    pub authmethods: Vec<String>,
    /// The authentication id, if any.
    pub authid: Option<String>,
    /// The role asked for in HELLO, if any (a router refuses a role the
    /// principal does not have).
    pub authrole: Option<String>,
    /// Extra authentication data (e.g. `pubkey` for cryptosign; filled in
    /// from [`credentials`](Self::credentials) when absent).
    pub authextra: Dict,
    /// Credentials in order of preference: their methods are offered in
    /// HELLO `authmethods` (before any in [`authmethods`](Self::authmethods))
    /// and the session answers the CHALLENGE for them itself. Methods in
    /// `authmethods` without a credential are answered by the application
    /// ([`SessionEvent::Challenge`](crate::wamp::SessionEvent::Challenge)).
    #[cfg(feature = "auth")]
    pub credentials: Vec<crate::wamp::auth::Credential>,
    /// The `agent` string announced in HELLO.
    pub agent: String,
    /// How long joining may take, from the start to WELCOME (default
    /// 10 s). Then the session aborts with [`SessionError::JoinTimeout`](crate::wamp::SessionError::JoinTimeout).
    pub join_timeout: Duration,
    /// How long to wait for the router's GOODBYE reply after
    /// [`Session::leave`](crate::wamp::Session::leave) (default 5 s). Then the session ends with
    /// [`SessionError::LeaveTimeout`](crate::wamp::SessionError::LeaveTimeout).
    pub leave_timeout: Duration,
    /// The unit the router reads CALL `timeout` in (default: milliseconds,
    /// as the spec says and our router does; [`TimeoutUnit::Seconds`] for
    /// Crossbar.io). [`CallOptions::timeout`](crate::wamp::CallOptions::timeout)
    /// is converted with it.
    pub call_timeout_unit: TimeoutUnit,
}

impl SessionConfig {
    /// An anonymous session on `realm`.
    pub fn new(realm: impl Into<String>) -> Self {
        Self {
            realm: realm.into(),
            authmethods: Vec::new(),
            authid: None,
            authrole: None,
            authextra: Dict::new(),
            #[cfg(feature = "auth")]
            credentials: Vec::new(),
            agent: concat!("Fahrbahn/", env!("CARGO_PKG_VERSION")).to_owned(),
            join_timeout: Duration::from_secs(10),
            leave_timeout: Duration::from_secs(5),
            call_timeout_unit: TimeoutUnit::Milliseconds,
        }
    }
}

/// A role entry `{"features": {name: true, …}}` for HELLO or WELCOME.
pub(crate) fn feature_set(names: &[&str]) -> Value {
    let features: Dict = names
        .iter()
        .map(|n| ((*n).to_owned(), Value::Bool(true)))
        .collect();
    let mut role = Dict::new();
    role.insert("features".into(), Value::Dict(features));
    Value::Dict(role)
}

/// The roles and features this client announces in HELLO — exactly what
/// [`Session`](crate::wamp::Session) implements.
pub fn client_roles() -> Dict {
    let mut roles = Dict::new();
    roles.insert(
        "caller".into(),
        feature_set(&[
            "caller_identification",
            "progressive_call_results",
            "call_canceling",
            "call_timeout",
            "progressive_call_invocations",
        ]),
    );
    roles.insert(
        "callee".into(),
        feature_set(&[
            "caller_identification",
            "progressive_call_results",
            "call_canceling",
            "pattern_based_registration",
            "shared_registration",
            "registration_revocation",
            "progressive_call_invocations",
        ]),
    );
    roles.insert(
        "publisher".into(),
        feature_set(&[
            "publisher_identification",
            "subscriber_blackwhite_listing",
            "publisher_exclusion",
        ]),
    );
    roles.insert(
        "subscriber".into(),
        feature_set(&[
            "publisher_identification",
            "pattern_based_subscription",
            "subscription_revocation",
        ]),
    );
    roles
}

/// Who the router says the session is: the authentication fields of
/// WELCOME's details.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AuthDetails {
    /// `authid`.
    pub authid: Option<String>,
    /// `authrole`.
    pub authrole: Option<String>,
    /// `authmethod`, e.g. `cryptosign`.
    pub authmethod: Option<String>,
    /// `authprovider`, e.g. `static`.
    pub authprovider: Option<String>,
    /// `authextra` (empty when absent).
    pub authextra: Dict,
}

impl AuthDetails {
    /// The fields of WELCOME `details`.
    ///
    /// ```
    /// use fahrbahn_core::wamp::{AuthDetails, Dict, Value};
    /// let mut details = Dict::new();
    /// details.insert("authid".into(), Value::from("alice"));
    /// details.insert("authmethod".into(), Value::from("ticket"));
    /// let auth = AuthDetails::from_welcome(&details);
    /// assert_eq!(auth.authid.as_deref(), Some("alice"));
    /// assert_eq!(auth.authrole, None);
    /// ```
    pub fn from_welcome(details: &Dict) -> Self {
        let s = |k: &str| details.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            authid: s("authid"),
            authrole: s("authrole"),
            authmethod: s("authmethod"),
            authprovider: s("authprovider"),
            authextra: details
                .get("authextra")
                .and_then(Value::as_dict)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

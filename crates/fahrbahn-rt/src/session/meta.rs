//! Typed helpers for the WAMP meta API (`wamp.session.*`,
//! `wamp.registration.*`, `wamp.subscription.*`) and testaments, as
//! Fahrbahn's router and Crossbar.io answer them.

use fahrbahn_core::wamp::{Dict, List, RegistrationId, SessionId, SubscriptionId, Value};
use serde::de::DeserializeOwned;

use super::Session;
use crate::error::Error;

/// When a testament is published (`wamp.session.add_testament`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestamentScope {
    /// When the session is destroyed (it left, or its transport went away
    /// and it cannot be resumed).
    #[default]
    Destroyed,
    /// When the session's transport goes away.
    Detached,
}

impl TestamentScope {
    fn as_str(self) -> &'static str {
        match self {
            TestamentScope::Destroyed => "destroyed",
            TestamentScope::Detached => "detached",
        }
    }
}

/// Subscriptions or registrations by match policy, as
/// `wamp.subscription.list` and `wamp.registration.list` return them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct ByMatch {
    /// Exact-match ids.
    #[serde(default)]
    pub exact: Vec<u64>,
    /// Prefix-match ids.
    #[serde(default)]
    pub prefix: Vec<u64>,
    /// Wildcard-match ids.
    #[serde(default)]
    pub wildcard: Vec<u64>,
}

/// The meta API of the router a [`Session`] is joined to; see
/// [`Session::meta`]. Each method is one CALL of the meta procedure it
/// names; the router authorizes it like any other call.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    session: &'a Session,
}

fn match_options(policy: &str) -> Value {
    let mut d = Dict::new();
    d.insert("match".into(), policy.into());
    Value::Dict(d)
}

impl Meta<'_> {
    async fn call<T: DeserializeOwned>(&self, procedure: &str, args: List) -> Result<T, Error> {
        self.session
            .call(procedure, args, Dict::new())
            .await?
            .first()
    }

    /// `wamp.session.count`: the sessions joined to the realm (with one of
    /// `authroles`, unless empty).
    pub async fn session_count(&self, authroles: &[&str]) -> Result<u64, Error> {
        self.call("wamp.session.count", roles_arg(authroles)).await
    }

    /// `wamp.session.list`: the ids of the sessions joined to the realm
    /// (with one of `authroles`, unless empty).
    pub async fn session_list(&self, authroles: &[&str]) -> Result<Vec<SessionId>, Error> {
        let ids: Vec<u64> = self.call("wamp.session.list", roles_arg(authroles)).await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    /// `wamp.session.get`: a session's details (`session`, `authid`,
    /// `authrole`, `authmethod`, `authprovider`, …).
    pub async fn session_get(&self, session: SessionId) -> Result<Dict, Error> {
        self.call("wamp.session.get", vec![session.0.into()]).await
    }

    /// `wamp.session.kill`: ends another session with GOODBYE `reason`
    /// (default `wamp.close.killed`).
    pub async fn session_kill(
        &self,
        session: SessionId,
        reason: Option<&str>,
        message: Option<&str>,
    ) -> Result<(), Error> {
        let args = vec![session.0.into(), opt(reason), opt(message)];
        self.session
            .call("wamp.session.kill", args, Dict::new())
            .await
            .map(drop)
    }

    /// `wamp.session.kill_by_authid`: ends every other session with that
    /// authid; the ids of those ended.
    pub async fn session_kill_by_authid(
        &self,
        authid: &str,
        reason: Option<&str>,
        message: Option<&str>,
    ) -> Result<Vec<SessionId>, Error> {
        let ids: Vec<u64> = self
            .call(
                "wamp.session.kill_by_authid",
                vec![authid.into(), opt(reason), opt(message)],
            )
            .await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    /// `wamp.session.kill_by_authrole`: ends every other session with that
    /// authrole; the ids of those ended.
    pub async fn session_kill_by_authrole(
        &self,
        authrole: &str,
        reason: Option<&str>,
        message: Option<&str>,
    ) -> Result<Vec<SessionId>, Error> {
        let ids: Vec<u64> = self
            .call(
                "wamp.session.kill_by_authrole",
                vec![authrole.into(), opt(reason), opt(message)],
            )
            .await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    /// `wamp.subscription.list`: the realm's subscriptions by match policy.
    pub async fn subscription_list(&self) -> Result<ByMatch, Error> {
        self.call("wamp.subscription.list", vec![]).await
    }

    /// `wamp.subscription.lookup`: the subscription for (topic, match
    /// policy `exact`, `prefix` or `wildcard`), if any.
    pub async fn subscription_lookup(
        &self,
        topic: &str,
        policy: &str,
    ) -> Result<Option<SubscriptionId>, Error> {
        let id: Option<u64> = self
            .call(
                "wamp.subscription.lookup",
                vec![topic.into(), match_options(policy)],
            )
            .await?;
        Ok(id.map(SubscriptionId))
    }

    /// `wamp.subscription.match`: the subscriptions an event to `topic`
    /// goes to.
    pub async fn subscription_match(&self, topic: &str) -> Result<Vec<SubscriptionId>, Error> {
        let ids: Option<Vec<u64>> = self
            .call("wamp.subscription.match", vec![topic.into()])
            .await?;
        Ok(ids
            .unwrap_or_default()
            .into_iter()
            .map(SubscriptionId)
            .collect())
    }

    /// `wamp.subscription.get`: a subscription's details (`id`, `uri`,
    /// `match`, …).
    pub async fn subscription_get(&self, id: SubscriptionId) -> Result<Dict, Error> {
        self.call("wamp.subscription.get", vec![id.0.into()]).await
    }

    /// `wamp.subscription.list_subscribers`.
    pub async fn subscription_subscribers(
        &self,
        id: SubscriptionId,
    ) -> Result<Vec<SessionId>, Error> {
        let ids: Vec<u64> = self
            .call("wamp.subscription.list_subscribers", vec![id.0.into()])
            .await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    /// `wamp.subscription.count_subscribers`.
    pub async fn subscription_subscriber_count(&self, id: SubscriptionId) -> Result<u64, Error> {
        self.call("wamp.subscription.count_subscribers", vec![id.0.into()])
            .await
    }

    /// `wamp.subscription.remove_subscriber`: revokes `subscriber`'s
    /// subscription; its stream ends with a
    /// [`Revocation`](super::Revocation) carrying `reason`.
    pub async fn subscription_remove_subscriber(
        &self,
        id: SubscriptionId,
        subscriber: SessionId,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        self.session
            .call(
                "wamp.subscription.remove_subscriber",
                vec![id.0.into(), subscriber.0.into(), opt(reason)],
                Dict::new(),
            )
            .await
            .map(drop)
    }

    /// `wamp.registration.list`: the realm's registrations by match policy.
    pub async fn registration_list(&self) -> Result<ByMatch, Error> {
        self.call("wamp.registration.list", vec![]).await
    }

    /// `wamp.registration.lookup`: the registration for (procedure, match
    /// policy), if any.
    pub async fn registration_lookup(
        &self,
        procedure: &str,
        policy: &str,
    ) -> Result<Option<RegistrationId>, Error> {
        let id: Option<u64> = self
            .call(
                "wamp.registration.lookup",
                vec![procedure.into(), match_options(policy)],
            )
            .await?;
        Ok(id.map(RegistrationId))
    }

    /// `wamp.registration.match`: the registration a call to `procedure`
    /// goes to, if any.
    pub async fn registration_match(
        &self,
        procedure: &str,
    ) -> Result<Option<RegistrationId>, Error> {
        let id: Option<u64> = self
            .call("wamp.registration.match", vec![procedure.into()])
            .await?;
        Ok(id.map(RegistrationId))
    }

    /// `wamp.registration.get`: a registration's details (`id`, `uri`,
    /// `match`, `invoke`, …).
    pub async fn registration_get(&self, id: RegistrationId) -> Result<Dict, Error> {
        self.call("wamp.registration.get", vec![id.0.into()]).await
    }

    /// `wamp.registration.list_callees`.
    pub async fn registration_callees(&self, id: RegistrationId) -> Result<Vec<SessionId>, Error> {
        let ids: Vec<u64> = self
            .call("wamp.registration.list_callees", vec![id.0.into()])
            .await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    /// `wamp.registration.count_callees`.
    pub async fn registration_callee_count(&self, id: RegistrationId) -> Result<u64, Error> {
        self.call("wamp.registration.count_callees", vec![id.0.into()])
            .await
    }

    /// `wamp.registration.remove_callee`: revokes `callee`'s registration.
    pub async fn registration_remove_callee(
        &self,
        id: RegistrationId,
        callee: SessionId,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        self.session
            .call(
                "wamp.registration.remove_callee",
                vec![id.0.into(), callee.0.into(), opt(reason)],
                Dict::new(),
            )
            .await
            .map(drop)
    }
}

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, Value::from)
}

fn roles_arg(authroles: &[&str]) -> List {
    if authroles.is_empty() {
        vec![]
    } else {
        vec![Value::List(authroles.iter().map(|r| (*r).into()).collect())]
    }
}

impl Session {
    /// The meta API of the router (session, subscription and registration
    /// introspection and control).
    ///
    /// ```no_run
    /// # async fn f(session: fahrbahn_rt::Session) -> Result<(), fahrbahn_rt::Error> {
    /// let n = session.meta().session_count(&[]).await?;
    /// # Ok(()) }
    /// ```
    pub fn meta(&self) -> Meta<'_> {
        Meta { session: self }
    }

    /// `wamp.session.add_testament`: the router publishes this event to
    /// `topic` when this session goes away (`scope`). `options` are
    /// PUBLISH options (e.g. `exclude`, `eligible`, `retain`). Returns the
    /// testament's id.
    pub async fn add_testament(
        &self,
        topic: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
        scope: TestamentScope,
    ) -> Result<u64, Error> {
        self.call(
            "wamp.session.add_testament",
            vec![
                topic.into(),
                Value::List(args),
                Value::Dict(kwargs),
                Value::Dict(options),
                scope.as_str().into(),
            ],
            Dict::new(),
        )
        .await?
        .first()
    }

    /// `wamp.session.flush_testaments`: drops this session's testaments of
    /// `scope`; how many there were.
    pub async fn flush_testaments(&self, scope: TestamentScope) -> Result<u64, Error> {
        self.call(
            "wamp.session.flush_testaments",
            vec![scope.as_str().into()],
            Dict::new(),
        )
        .await?
        .first()
    }
}

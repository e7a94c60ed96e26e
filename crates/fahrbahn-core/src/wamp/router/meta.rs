//! What the router does itself, as WAMP: the session, registration and
//! subscription meta API (procedures `wamp.session.*`,
//! `wamp.registration.*`, `wamp.subscription.*` and their meta events),
//! testaments, and the delivery of retained events.

use super::handlers::Filters;
use super::matching::MatchPolicy;
use super::{Body, ConnState, ConnectionId, EncodeCache, Router, Serializer};
use crate::wamp::error::{
    CLOSE_KILLED, ERROR_INVALID_ARGUMENT, ERROR_INVALID_URI, ERROR_NO_SUCH_PROCEDURE,
    ERROR_NO_SUCH_REGISTRATION, ERROR_NO_SUCH_SESSION, ERROR_NO_SUCH_SUBSCRIPTION,
    ERROR_NOT_AUTHORIZED, ERROR_PAYLOAD_SIZE_EXCEEDED,
};
use crate::wamp::{Codec, Dict, List, Message, Value, is_valid_uri, random_id};

/// The error URI Crossbar.io answers a bad testament scope with.
const ERROR_TESTAMENT: &str = "wamp.error.testament_error";

/// The meta procedures the router answers itself.
const META_PROCEDURES: &[&str] = &[
    "wamp.session.count",
    "wamp.session.list",
    "wamp.session.get",
    "wamp.session.kill",
    "wamp.session.kill_by_authid",
    "wamp.session.kill_by_authrole",
    "wamp.session.add_testament",
    "wamp.session.flush_testaments",
    "wamp.registration.list",
    "wamp.registration.lookup",
    "wamp.registration.match",
    "wamp.registration.get",
    "wamp.registration.list_callees",
    "wamp.registration.count_callees",
    "wamp.registration.remove_callee",
    "wamp.subscription.list",
    "wamp.subscription.lookup",
    "wamp.subscription.match",
    "wamp.subscription.get",
    "wamp.subscription.list_subscribers",
    "wamp.subscription.count_subscribers",
    "wamp.subscription.remove_subscriber",
];

/// Whether the router answers `procedure` itself.
pub(super) fn is_meta_procedure(procedure: &str) -> bool {
    META_PROCEDURES.contains(&procedure)
}

/// When a testament is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TestamentScope {
    /// When the session's transport goes away (without session
    /// resumption, at the same moment as `Destroyed`, just before).
    Detached,
    /// When the session ends.
    Destroyed,
}

impl TestamentScope {
    fn parse(v: Option<&Value>) -> Result<Self, String> {
        match v {
            None | Some(Value::Null) => Ok(Self::Destroyed),
            Some(Value::String(s)) if s == "destroyed" => Ok(Self::Destroyed),
            Some(Value::String(s)) if s == "detached" => Ok(Self::Detached),
            Some(other) => Err(format!(
                "testament scope must be \"destroyed\" or \"detached\", got {other:?}"
            )),
        }
    }
}

/// An event a session asked the router to publish when it goes away.
#[derive(Debug, Clone)]
pub(super) struct Testament {
    scope: TestamentScope,
    topic: String,
    args: Option<List>,
    kwargs: Option<Dict>,
    filters: Filters,
    retain: bool,
    /// The EVENT details: the publisher, when its role or `disclose_me`
    /// discloses it (decided when the testament is added).
    details: Dict,
    /// The bytes it is counted as.
    size: usize,
}

/// What a meta procedure answers: a result (`None`: RESULT without
/// payload), or an error URI with a message.
type MetaResult = Result<Option<Value>, (&'static str, String)>;

fn arg<'a>(args: &'a List, kwargs: &'a Dict, i: usize, name: &str) -> Option<&'a Value> {
    args.get(i)
        .or_else(|| kwargs.get(name))
        .filter(|v| !matches!(v, Value::Null))
}

fn id_arg(args: &List, kwargs: &Dict, i: usize, name: &str) -> Result<u64, (&'static str, String)> {
    arg(args, kwargs, i, name)
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            (
                ERROR_INVALID_ARGUMENT,
                format!("argument {} ({name}) must be an id", i + 1),
            )
        })
}

fn str_arg<'a>(
    args: &'a List,
    kwargs: &'a Dict,
    i: usize,
    name: &str,
) -> Result<&'a str, (&'static str, String)> {
    arg(args, kwargs, i, name)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            (
                ERROR_INVALID_ARGUMENT,
                format!("argument {} ({name}) must be a string", i + 1),
            )
        })
}

fn opt_str_arg<'a>(args: &'a List, kwargs: &'a Dict, i: usize, name: &str) -> Option<&'a str> {
    arg(args, kwargs, i, name).and_then(Value::as_str)
}

fn policy_name(policy: MatchPolicy) -> &'static str {
    match policy {
        MatchPolicy::Exact => "exact",
        MatchPolicy::Prefix => "prefix",
        MatchPolicy::Wildcard => "wildcard",
    }
}

/// `{exact: [...], prefix: [...], wildcard: [...]}` of `(id, policy)`.
fn by_policy(items: impl Iterator<Item = (u64, MatchPolicy)>) -> Value {
    let mut lists: [List; 3] = Default::default();
    for (id, policy) in items {
        lists[policy.index()].push(id.into());
    }
    let mut d = Dict::new();
    for policy in [
        MatchPolicy::Exact,
        MatchPolicy::Prefix,
        MatchPolicy::Wildcard,
    ] {
        d.insert(
            policy_name(policy).into(),
            Value::List(std::mem::take(&mut lists[policy.index()])),
        );
    }
    Value::Dict(d)
}

/// The size of a payload, in bytes of JSON (for byte limits).
pub(super) fn payload_size(body: &Body) -> usize {
    if let Some(raw) = &body.raw {
        return raw.bytes().len();
    }
    let mut out = Vec::new();
    Codec::new(Serializer::Json).encode(
        &Message::Yield {
            request: 0,
            options: Dict::new(),
            args: body.args.clone(),
            kwargs: body.kwargs.clone(),
        },
        &mut out,
    );
    out.len()
}

impl Router {
    /// Publishes a meta event (or any router-made event) in `realm` to
    /// every subscription matching `topic`: no publisher disclosed.
    pub(super) fn publish_meta(&mut self, realm: &str, topic: &str, args: List) {
        self.publish_internal(
            realm,
            topic,
            Dict::new(),
            &Filters::default(),
            Body {
                args: Some(args),
                kwargs: None,
                raw: None,
            },
        );
    }

    /// Publishes an event made by the router in `realm`.
    fn publish_internal(
        &mut self,
        realm: &str,
        topic: &str,
        base: Dict,
        filters: &Filters,
        body: Body,
    ) -> u64 {
        let publication = random_id(&mut self.rng);
        let Some(r) = self.realms.get(realm) else {
            return publication;
        };
        let mut deliveries = Vec::new();
        for (subscription, sub) in r.broker.matching(topic) {
            let receivers: Vec<ConnectionId> = sub
                .subscribers
                .iter()
                .filter_map(|s| {
                    let record = self.sessions.get(s)?;
                    filters.admits(*s, record).then_some(record.conn)
                })
                .collect();
            if receivers.is_empty() {
                continue;
            }
            let mut details = base.clone();
            if sub.policy != MatchPolicy::Exact {
                details.insert("topic".into(), topic.into());
            }
            deliveries.push((subscription, details, receivers));
        }
        let mut cache = EncodeCache::default();
        for (subscription, details, receivers) in deliveries {
            let event = body.clone().into_routed(Message::Event {
                subscription,
                publication,
                details,
                args: None,
                kwargs: None,
            });
            cache.next_message();
            for to in receivers {
                self.send_shared(to, &event, &mut cache);
            }
        }
        publication
    }

    // ----- retention ------------------------------------------------------

    /// Keeps an event published with `retain: true` as the retained event
    /// of `topic` (within [`RouterConfig::max_retained_bytes`](super::RouterConfig::max_retained_bytes)).
    pub(super) fn retain_event(
        &mut self,
        session: u64,
        topic: &str,
        publication: u64,
        details: Dict,
        filters: Filters,
        body: Body,
    ) {
        let Some(realm) = self.sessions.get(&session).map(|s| s.realm.clone()) else {
            return;
        };
        self.retain_in(&realm, topic, publication, details, filters, body);
    }

    fn retain_in(
        &mut self,
        realm: &str,
        topic: &str,
        publication: u64,
        details: Dict,
        filters: Filters,
        body: Body,
    ) {
        let size = payload_size(&body) + details.len() * 32;
        let limit = self.max_retained_bytes;
        let Some(r) = self.realms.get_mut(realm) else {
            return;
        };
        if !r
            .retained
            .retain(topic, publication, details, filters, body, size, limit)
        {
            log::warn!(
                "router: event on {topic:?} not retained: its {size} bytes exceed the realm's retention limit of {limit} bytes"
            );
        }
    }

    /// Sends the retained events matching a new subscription to the
    /// subscriber (`get_retained: true`), each with `retained: true`.
    pub(super) fn send_retained(
        &mut self,
        conn: ConnectionId,
        session: u64,
        subscription: u64,
        pattern: &str,
        policy: MatchPolicy,
    ) {
        let Some(record) = self.sessions.get(&session) else {
            return;
        };
        let Some(realm) = self.realms.get(&record.realm) else {
            return;
        };
        let events: Vec<_> = realm
            .retained
            .matching(pattern, policy)
            .into_iter()
            .filter(|(_, ev)| ev.filters.admits(session, record))
            .map(|(topic, ev)| {
                let mut details = ev.details.clone();
                if policy != MatchPolicy::Exact {
                    details.insert("topic".into(), topic.into());
                }
                details.insert("retained".into(), true.into());
                ev.body.clone().into_routed(Message::Event {
                    subscription,
                    publication: ev.publication,
                    details,
                    args: None,
                    kwargs: None,
                })
            })
            .collect();
        for event in events {
            self.send_routed(conn, event, false);
        }
    }

    // ----- subscription and registration bookkeeping ------------------------

    /// `{id, uri, match}` of a subscription.
    pub(super) fn subscription_details(&self, realm: &str, id: u64) -> Value {
        let mut d = Dict::new();
        d.insert("id".into(), id.into());
        if let Some(sub) = self.realms.get(realm).and_then(|r| r.broker.get(id)) {
            d.insert("uri".into(), sub.topic.clone().into());
            d.insert("match".into(), policy_name(sub.policy).into());
        }
        Value::Dict(d)
    }

    /// `{id, uri, match, invoke}` of a registration.
    pub(super) fn registration_details(&self, realm: &str, id: u64) -> Value {
        let mut d = Dict::new();
        d.insert("id".into(), id.into());
        if let Some(reg) = self
            .realms
            .get(realm)
            .and_then(|r| r.dealer.registration(id))
        {
            d.insert("uri".into(), reg.procedure.clone().into());
            d.insert("match".into(), policy_name(reg.policy).into());
            d.insert("invoke".into(), reg.invoke.as_str().into());
        }
        Value::Dict(d)
    }

    /// Takes `session` off `subscription` (UNSUBSCRIBE, revocation or the
    /// session's end) and publishes `on_unsubscribe` (and `on_delete`
    /// when it was the last subscriber). The session's own record is the
    /// caller's business.
    pub(super) fn drop_subscriber(&mut self, realm: &str, session: u64, subscription: u64) {
        let Some(r) = self.realms.get_mut(realm) else {
            return;
        };
        // No meta events about subscriptions to the meta events themselves
        // (as Crossbar.io).
        let quiet = r
            .broker
            .topic(subscription)
            .is_some_and(|t| t.starts_with("wamp."));
        if !r.broker.unsubscribe(session, subscription) {
            return;
        }
        let deleted = r.broker.get(subscription).is_none();
        if quiet {
            return;
        }
        self.publish_meta(
            realm,
            "wamp.subscription.on_unsubscribe",
            vec![session.into(), subscription.into()],
        );
        if deleted {
            self.publish_meta(
                realm,
                "wamp.subscription.on_delete",
                vec![session.into(), subscription.into()],
            );
        }
    }

    /// `session` became a callee of `registration`: `on_create` (when
    /// the registration is new) and `on_register`.
    pub(super) fn registration_made(
        &mut self,
        realm: &str,
        session: u64,
        registration: u64,
        created: bool,
    ) {
        if created {
            let details = self.registration_details(realm, registration);
            self.publish_meta(
                realm,
                "wamp.registration.on_create",
                vec![session.into(), details],
            );
        }
        self.publish_meta(
            realm,
            "wamp.registration.on_register",
            vec![session.into(), registration.into()],
        );
    }

    /// Registration `registration` went with all its `callees` (already
    /// off the dealer; `force_reregister`): `on_unregister` for each, then
    /// `on_delete`.
    pub(super) fn registration_removed(&mut self, realm: &str, registration: u64, callees: &[u64]) {
        for &callee in callees {
            self.publish_meta(
                realm,
                "wamp.registration.on_unregister",
                vec![callee.into(), registration.into()],
            );
        }
        if let Some(&last) = callees.last() {
            self.publish_meta(
                realm,
                "wamp.registration.on_delete",
                vec![last.into(), registration.into()],
            );
        }
    }

    /// Takes `session`'s `registration` away (UNREGISTER, revocation or
    /// the session's end): `on_unregister` and `on_delete`.
    pub(super) fn drop_callee(&mut self, realm: &str, session: u64, registration: u64) {
        let Some(r) = self.realms.get_mut(realm) else {
            return;
        };
        if !r.dealer.unregister(session, registration) {
            return;
        }
        let deleted = r.dealer.registration(registration).is_none();
        self.publish_meta(
            realm,
            "wamp.registration.on_unregister",
            vec![session.into(), registration.into()],
        );
        if deleted {
            self.publish_meta(
                realm,
                "wamp.registration.on_delete",
                vec![session.into(), registration.into()],
            );
        }
    }

    /// The details of a session, as `wamp.session.get` and
    /// `wamp.session.on_join` give them.
    pub(super) fn session_details(&self, session: u64) -> Option<Value> {
        let s = self.sessions.get(&session)?;
        let mut d = Dict::new();
        d.insert("session".into(), session.into());
        d.insert("realm".into(), s.realm.clone().into());
        d.insert("authid".into(), s.authid.clone().into());
        d.insert("authrole".into(), s.authrole.clone().into());
        d.insert("authmethod".into(), s.authmethod.clone().into());
        d.insert("authprovider".into(), s.authprovider.clone().into());
        d.insert("authextra".into(), Value::Dict(Dict::new()));
        if let Some(q) = self.output.queues.get(&s.conn).filter(|q| q.encoded) {
            d.insert(
                "serializer".into(),
                q.codec.serializer.to_string().to_lowercase().into(),
            );
        }
        Some(Value::Dict(d))
    }

    /// The session left: its testaments (`detached`, then `destroyed`),
    /// the meta events of its subscriptions and registrations, then
    /// `wamp.session.on_leave`. `record` is already out of the table.
    pub(super) fn session_gone(&mut self, session: u64, record: &super::SessionRecord) {
        let realm = record.realm.as_str();
        for scope in [TestamentScope::Detached, TestamentScope::Destroyed] {
            for t in record.testaments.iter().filter(|t| t.scope == scope) {
                let body = Body {
                    args: t.args.clone(),
                    kwargs: t.kwargs.clone(),
                    raw: None,
                };
                let publication = self.publish_internal(
                    realm,
                    &t.topic,
                    t.details.clone(),
                    &t.filters,
                    body.clone(),
                );
                if t.retain {
                    self.retain_in(
                        realm,
                        &t.topic,
                        publication,
                        t.details.clone(),
                        t.filters.clone(),
                        body,
                    );
                }
            }
        }
        for sub in &record.subscriptions {
            self.drop_subscriber(realm, session, *sub);
        }
        for reg in &record.registrations {
            self.drop_callee(realm, session, *reg);
        }
        self.publish_meta(realm, "wamp.session.on_leave", vec![session.into()]);
    }

    /// Ends `session` from the router's side: GOODBYE with `reason` (the
    /// transport closes after the client's reply, or its timeout).
    fn kill_session(&mut self, session: u64, reason: &str, message: Option<&str>) {
        let Some(conn) = self.sessions.get(&session).map(|s| s.conn) else {
            return;
        };
        self.end_session(session);
        self.conns.insert(conn, ConnState::Closing);
        self.set_deadline(conn, Some(self.goodbye_timeout));
        let mut details = Dict::new();
        if let Some(m) = message {
            details.insert("message".into(), m.into());
        }
        self.send(
            conn,
            Message::Goodbye {
                details,
                reason: reason.to_owned(),
            },
        );
    }

    // ----- meta procedures --------------------------------------------------

    /// A CALL of a meta procedure ([`is_meta_procedure`]), already
    /// authorized.
    pub(super) fn on_meta_call(
        &mut self,
        conn: ConnectionId,
        session: u64,
        request: u64,
        procedure: &str,
        body: Body,
    ) {
        let (args, kwargs) = match &body.raw {
            Some(raw) => match raw.decode() {
                Ok(p) => p,
                Err(e) => {
                    return self.error_reply(
                        conn,
                        Message::CALL,
                        request,
                        ERROR_INVALID_ARGUMENT,
                        format!("arguments do not decode: {e}"),
                    );
                }
            },
            None => (body.args, body.kwargs),
        };
        let (args, kwargs) = (args.unwrap_or_default(), kwargs.unwrap_or_default());
        let Some(realm) = self.sessions.get(&session).map(|s| s.realm.clone()) else {
            return;
        };
        let result = if procedure.starts_with("wamp.session.") {
            self.meta_session(session, &realm, procedure, &args, &kwargs)
        } else if procedure.starts_with("wamp.registration.") {
            self.meta_registration(&realm, procedure, &args, &kwargs)
        } else {
            self.meta_subscription(&realm, procedure, &args, &kwargs)
        };
        // A kill of the caller's own session is refused in
        // `meta_session`, so the caller is still there to answer.
        match result {
            Ok(value) => self.send(
                conn,
                Message::Result {
                    request,
                    details: Dict::new(),
                    // `None` is `[null]`, as Crossbar.io answers.
                    args: Some(vec![value.unwrap_or(Value::Null)]),
                    kwargs: None,
                },
            ),
            Err((error, message)) => {
                log::debug!("router: {procedure} for session {session}: {error}: {message}");
                self.error_reply(conn, Message::CALL, request, error, message);
            }
        }
    }

    fn realm_sessions(&self, realm: &str, filter_authroles: Option<&Value>) -> Vec<u64> {
        let roles: Option<Vec<&str>> = filter_authroles
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(Value::as_str).collect());
        self.realms
            .get(realm)
            .map(|r| {
                r.sessions
                    .iter()
                    .copied()
                    .filter(|s| {
                        roles.as_ref().is_none_or(|roles| {
                            self.sessions
                                .get(s)
                                .is_some_and(|rec| roles.contains(&rec.authrole.as_str()))
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn meta_session(
        &mut self,
        caller: u64,
        realm: &str,
        procedure: &str,
        args: &List,
        kwargs: &Dict,
    ) -> MetaResult {
        let in_realm =
            |router: &Self, id: u64| router.sessions.get(&id).is_some_and(|s| s.realm == realm);
        match procedure {
            "wamp.session.count" => {
                let n = self
                    .realm_sessions(realm, arg(args, kwargs, 0, "filter_authroles"))
                    .len();
                Ok(Some((n as u64).into()))
            }
            "wamp.session.list" => {
                let ids = self.realm_sessions(realm, arg(args, kwargs, 0, "filter_authroles"));
                Ok(Some(Value::List(
                    ids.into_iter().map(Value::from).collect(),
                )))
            }
            "wamp.session.get" => {
                let id = id_arg(args, kwargs, 0, "session_id")?;
                if !in_realm(self, id) {
                    return Err((ERROR_NO_SUCH_SESSION, format!("no session {id}")));
                }
                Ok(self.session_details(id))
            }
            "wamp.session.kill" => {
                let id = id_arg(args, kwargs, 0, "session_id")?;
                if !in_realm(self, id) {
                    return Err((ERROR_NO_SUCH_SESSION, format!("no session {id}")));
                }
                if id == caller {
                    return Err((
                        ERROR_INVALID_ARGUMENT,
                        "a session cannot kill itself (leave with GOODBYE)".to_owned(),
                    ));
                }
                let (reason, message) = kill_reason(args, kwargs, 1)?;
                self.kill_session(id, &reason, message.as_deref());
                Ok(None)
            }
            "wamp.session.kill_by_authid" | "wamp.session.kill_by_authrole" => {
                let by_role = procedure.ends_with("authrole");
                let key = str_arg(args, kwargs, 0, if by_role { "authrole" } else { "authid" })?
                    .to_owned();
                let (reason, message) = kill_reason(args, kwargs, 1)?;
                let victims: Vec<u64> = self
                    .realm_sessions(realm, None)
                    .into_iter()
                    .filter(|s| *s != caller)
                    .filter(|s| {
                        self.sessions.get(s).is_some_and(|r| {
                            if by_role {
                                r.authrole == key
                            } else {
                                r.authid == key
                            }
                        })
                    })
                    .collect();
                for v in &victims {
                    self.kill_session(*v, &reason, message.as_deref());
                }
                Ok(Some(Value::List(
                    victims.into_iter().map(Value::from).collect(),
                )))
            }
            "wamp.session.add_testament" => self.add_testament(caller, args, kwargs),
            "wamp.session.flush_testaments" => {
                let scope = TestamentScope::parse(arg(args, kwargs, 0, "scope"))
                    .map_err(|m| (ERROR_TESTAMENT, m))?;
                let Some(record) = self.sessions.get_mut(&caller) else {
                    return Ok(None);
                };
                let before = record.testaments.len();
                record.testaments.retain(|t| t.scope != scope);
                record.testament_bytes = record.testaments.iter().map(|t| t.size).sum();
                Ok(Some(((before - record.testaments.len()) as u64).into()))
            }
            _ => Err((
                ERROR_NO_SUCH_PROCEDURE,
                format!("no meta procedure {procedure:?}"),
            )),
        }
    }

    /// `wamp.session.add_testament(topic, args, kwargs, publish_options,
    /// scope)`, as Crossbar.io takes it (`scope` may also be in
    /// `publish_options`).
    fn add_testament(&mut self, caller: u64, args: &List, kwargs: &Dict) -> MetaResult {
        let topic = str_arg(args, kwargs, 0, "topic")?.to_owned();
        if !is_valid_uri(&topic, false) || topic.starts_with("wamp.") {
            return Err((
                ERROR_INVALID_URI,
                format!("invalid testament topic {topic:?}"),
            ));
        }
        let t_args = match arg(args, kwargs, 1, "args") {
            None => None,
            Some(Value::List(l)) => Some(l.clone()),
            Some(v) => {
                return Err((
                    ERROR_INVALID_ARGUMENT,
                    format!("testament args must be a list, got {}", v.kind()),
                ));
            }
        };
        let t_kwargs = match arg(args, kwargs, 2, "kwargs") {
            None => None,
            Some(Value::Dict(d)) => Some(d.clone()),
            Some(v) => {
                return Err((
                    ERROR_INVALID_ARGUMENT,
                    format!("testament kwargs must be a dict, got {}", v.kind()),
                ));
            }
        };
        let options = match arg(args, kwargs, 3, "publish_options") {
            None => Dict::new(),
            Some(Value::Dict(d)) => d.clone(),
            Some(v) => {
                return Err((
                    ERROR_INVALID_ARGUMENT,
                    format!("testament publish_options must be a dict, got {}", v.kind()),
                ));
            }
        };
        let scope =
            TestamentScope::parse(arg(args, kwargs, 4, "scope").or_else(|| options.get("scope")))
                .map_err(|m| (ERROR_TESTAMENT, m))?;
        let filters = Filters::parse(&options).map_err(|m| (ERROR_INVALID_ARGUMENT, m))?;
        let retain = options.get("retain").and_then(Value::as_bool) == Some(true);
        let disclose = match self.authorize(caller, super::Action::Publish, &topic, &options) {
            Some(super::Authorization::Allow { disclose }) => {
                disclose || options.get("disclose_me").and_then(Value::as_bool) == Some(true)
            }
            _ => {
                return Err((
                    ERROR_NOT_AUTHORIZED,
                    format!("not authorized to publish to topic {topic:?}"),
                ));
            }
        };
        let size = topic.len()
            + payload_size(&Body {
                args: t_args.clone(),
                kwargs: t_kwargs.clone(),
                raw: None,
            })
            + 64;
        let limit = self.max_testament_bytes;
        let Some(record) = self.sessions.get_mut(&caller) else {
            return Ok(None);
        };
        let mut details = Dict::new();
        if disclose {
            details.insert("publisher".into(), caller.into());
            details.insert("publisher_authid".into(), record.authid.clone().into());
            details.insert("publisher_authrole".into(), record.authrole.clone().into());
        }
        if record.testament_bytes + size > limit {
            return Err((
                ERROR_PAYLOAD_SIZE_EXCEEDED,
                format!(
                    "the testaments of a session may total at most {limit} bytes; this one is {size}, {} are held",
                    record.testament_bytes
                ),
            ));
        }
        record.testament_bytes += size;
        record.testaments.push(Testament {
            scope,
            topic,
            args: t_args,
            kwargs: t_kwargs,
            filters,
            retain,
            details,
            size,
        });
        Ok(Some(random_id(&mut self.rng).into()))
    }

    fn meta_registration(
        &mut self,
        realm: &str,
        procedure: &str,
        args: &List,
        kwargs: &Dict,
    ) -> MetaResult {
        let Some(r) = self.realms.get(realm) else {
            return Ok(None);
        };
        let known = |id: u64| {
            r.dealer
                .registration(id)
                .ok_or_else(|| (ERROR_NO_SUCH_REGISTRATION, format!("no registration {id}")))
        };
        match procedure {
            "wamp.registration.list" => Ok(Some(by_policy(
                r.dealer.registrations().map(|(id, reg)| (id, reg.policy)),
            ))),
            "wamp.registration.lookup" => {
                let uri = str_arg(args, kwargs, 0, "procedure")?;
                let options = arg(args, kwargs, 1, "options")
                    .and_then(Value::as_dict)
                    .cloned()
                    .unwrap_or_default();
                let policy =
                    MatchPolicy::from_options(&options).map_err(|m| (ERROR_INVALID_ARGUMENT, m))?;
                Ok(r.dealer.find(uri, policy).map(Value::from))
            }
            "wamp.registration.match" => {
                let uri = str_arg(args, kwargs, 0, "procedure")?;
                Ok(r.dealer.lookup(uri).map(|(id, _)| id.into()))
            }
            "wamp.registration.get" => {
                let id = id_arg(args, kwargs, 0, "registration_id")?;
                known(id)?;
                Ok(Some(self.registration_details(realm, id)))
            }
            "wamp.registration.list_callees" | "wamp.registration.count_callees" => {
                let id = id_arg(args, kwargs, 0, "registration_id")?;
                let callees = &known(id)?.callees;
                Ok(Some(if procedure.ends_with("count_callees") {
                    (callees.len() as u64).into()
                } else {
                    Value::List(callees.iter().map(|c| c.session.into()).collect())
                }))
            }
            "wamp.registration.remove_callee" => {
                let id = id_arg(args, kwargs, 0, "registration_id")?;
                let callee = id_arg(args, kwargs, 1, "callee_id")?;
                if self.sessions.get(&callee).is_none_or(|s| s.realm != realm) {
                    return Err((ERROR_NO_SUCH_SESSION, format!("no session {callee}")));
                }
                if !known(id)?.callees.iter().any(|c| c.session == callee) {
                    return Err((
                        ERROR_NO_SUCH_REGISTRATION,
                        format!("session {callee} is not a callee of registration {id}"),
                    ));
                }
                let reason = opt_str_arg(args, kwargs, 2, "reason").map(str::to_owned);
                self.revoke(callee, id, reason.as_deref());
                Ok(None)
            }
            _ => Err((
                ERROR_NO_SUCH_PROCEDURE,
                format!("no meta procedure {procedure:?}"),
            )),
        }
    }

    fn meta_subscription(
        &mut self,
        realm: &str,
        procedure: &str,
        args: &List,
        kwargs: &Dict,
    ) -> MetaResult {
        let Some(r) = self.realms.get(realm) else {
            return Ok(None);
        };
        let known = |id: u64| {
            r.broker
                .get(id)
                .ok_or_else(|| (ERROR_NO_SUCH_SUBSCRIPTION, format!("no subscription {id}")))
        };
        match procedure {
            "wamp.subscription.list" => Ok(Some(by_policy(
                r.broker.subscriptions().map(|(id, s)| (id, s.policy)),
            ))),
            "wamp.subscription.lookup" => {
                let uri = str_arg(args, kwargs, 0, "topic")?;
                let options = arg(args, kwargs, 1, "options")
                    .and_then(Value::as_dict)
                    .cloned()
                    .unwrap_or_default();
                let policy =
                    MatchPolicy::from_options(&options).map_err(|m| (ERROR_INVALID_ARGUMENT, m))?;
                Ok(r.broker.find(uri, policy).map(Value::from))
            }
            "wamp.subscription.match" => {
                let uri = str_arg(args, kwargs, 0, "topic")?;
                let ids: List = r.broker.matching(uri).map(|(id, _)| id.into()).collect();
                Ok((!ids.is_empty()).then_some(Value::List(ids)))
            }
            "wamp.subscription.get" => {
                let id = id_arg(args, kwargs, 0, "subscription_id")?;
                known(id)?;
                Ok(Some(self.subscription_details(realm, id)))
            }
            "wamp.subscription.list_subscribers" => {
                let id = id_arg(args, kwargs, 0, "subscription_id")?;
                let subs = known(id)?.subscribers.iter().map(|s| (*s).into()).collect();
                Ok(Some(Value::List(subs)))
            }
            "wamp.subscription.count_subscribers" => {
                let id = id_arg(args, kwargs, 0, "subscription_id")?;
                Ok(Some((known(id)?.subscribers.len() as u64).into()))
            }
            "wamp.subscription.remove_subscriber" => {
                let id = id_arg(args, kwargs, 0, "subscription_id")?;
                let subscriber = id_arg(args, kwargs, 1, "subscriber_id")?;
                if self
                    .sessions
                    .get(&subscriber)
                    .is_none_or(|s| s.realm != realm)
                {
                    return Err((ERROR_NO_SUCH_SESSION, format!("no session {subscriber}")));
                }
                if !known(id)?.subscribers.contains(&subscriber) {
                    return Err((
                        ERROR_NO_SUCH_SUBSCRIPTION,
                        format!("session {subscriber} is not subscribed to subscription {id}"),
                    ));
                }
                let reason = opt_str_arg(args, kwargs, 2, "reason").map(str::to_owned);
                self.revoke_subscriber(realm, id, subscriber, reason);
                Ok(None)
            }
            _ => Err((
                ERROR_NO_SUCH_PROCEDURE,
                format!("no meta procedure {procedure:?}"),
            )),
        }
    }

    /// Takes `subscriber` off `subscription` on the router's initiative
    /// (subscription revocation): it gets UNSUBSCRIBED (request 0,
    /// `details.subscription`, `details.reason`) if it announced
    /// `subscription_revocation`, as Crossbar.io does.
    fn revoke_subscriber(
        &mut self,
        realm: &str,
        subscription: u64,
        subscriber: u64,
        reason: Option<String>,
    ) {
        let Some(record) = self.sessions.get_mut(&subscriber) else {
            return;
        };
        if !record.subscriptions.remove(&subscription) {
            return;
        }
        let conn = record.conn;
        let told = record.has_feature("subscriber", "subscription_revocation");
        if let Some(len) = self
            .realms
            .get(realm)
            .and_then(|r| r.broker.topic(subscription))
            .map(str::len)
        {
            record.uri_bytes = record.uri_bytes.saturating_sub(len);
        }
        let mut details = Dict::new();
        details.insert("subscription".into(), subscription.into());
        if let Some(reason) = reason {
            details.insert("reason".into(), reason.into());
        }
        if told {
            self.send(
                conn,
                Message::Unsubscribed {
                    request: 0,
                    details: Some(details),
                },
            );
        }
        self.drop_subscriber(realm, subscriber, subscription);
    }
}

/// `(reason, message)` of a kill: arguments `i` and `i + 1` (or kwargs
/// `reason`, `message`); the reason defaults to `wamp.close.killed`.
fn kill_reason(
    args: &List,
    kwargs: &Dict,
    i: usize,
) -> Result<(String, Option<String>), (&'static str, String)> {
    let reason = match arg(args, kwargs, i, "reason") {
        None => CLOSE_KILLED.to_owned(),
        Some(Value::String(r)) if is_valid_uri(r, false) => r.clone(),
        Some(other) => {
            return Err((
                ERROR_INVALID_URI,
                format!("kill reason must be a URI, got {other:?}"),
            ));
        }
    };
    let message = opt_str_arg(args, kwargs, i + 1, "message").map(str::to_owned);
    Ok((reason, message))
}

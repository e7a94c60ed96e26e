//! Messages of established sessions: the broker (PUBLISH, SUBSCRIBE,
//! UNSUBSCRIBE) and dealer (REGISTER, UNREGISTER, CALL, CANCEL, YIELD,
//! ERROR) sides.

use std::collections::BTreeSet;
use std::time::Duration;

use super::dealer::{Invocation, InvokePolicy, RegisterRefusal};
use super::matching::MatchPolicy;
use super::meta::is_meta_procedure;
use super::{Action, Authorization, Body, ConnectionId, EncodeCache, Router, SessionRecord};
use crate::wamp::error::{
    ERROR_CANCELED, ERROR_FEATURE_NOT_SUPPORTED, ERROR_INVALID_ARGUMENT, ERROR_INVALID_URI,
    ERROR_MAX_CONCURRENCY_REACHED, ERROR_NO_SUCH_PROCEDURE, ERROR_NO_SUCH_REGISTRATION,
    ERROR_NO_SUCH_SUBSCRIPTION, ERROR_NOT_AUTHORIZED, ERROR_PAYLOAD_SIZE_EXCEEDED,
    ERROR_PROCEDURE_ALREADY_EXISTS, ERROR_PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
};
use crate::wamp::{Dict, Message, Value, is_valid_uri, random_id};

/// URIs starting with this are reserved for WAMP itself: clients may not
/// publish to or register them.
const RESERVED_PREFIX: &str = "wamp.";

/// A PUBLISH's receiver filters (subscriber black- and whitelisting).
#[derive(Debug, Default, Clone)]
pub(crate) struct Filters {
    exclude: Option<BTreeSet<u64>>,
    exclude_authid: Option<BTreeSet<String>>,
    exclude_authrole: Option<BTreeSet<String>>,
    eligible: Option<BTreeSet<u64>>,
    eligible_authid: Option<BTreeSet<String>>,
    eligible_authrole: Option<BTreeSet<String>>,
}

fn id_list(options: &Dict, key: &str) -> Result<Option<BTreeSet<u64>>, String> {
    match options.get(key) {
        None => Ok(None),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    format!("option {key:?} must list session ids, found {}", v.kind())
                })
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(v) => Err(format!("option {key:?} must be a list, got {}", v.kind())),
    }
}

fn string_list(options: &Dict, key: &str) -> Result<Option<BTreeSet<String>>, String> {
    match options.get(key) {
        None => Ok(None),
        Some(Value::List(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("option {key:?} must list strings, found {}", v.kind()))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(v) => Err(format!("option {key:?} must be a list, got {}", v.kind())),
    }
}

impl Filters {
    pub(super) fn parse(options: &Dict) -> Result<Self, String> {
        Ok(Self {
            exclude: id_list(options, "exclude")?,
            exclude_authid: string_list(options, "exclude_authid")?,
            exclude_authrole: string_list(options, "exclude_authrole")?,
            eligible: id_list(options, "eligible")?,
            eligible_authid: string_list(options, "eligible_authid")?,
            eligible_authrole: string_list(options, "eligible_authrole")?,
        })
    }

    /// Whether session `id` with this record receives the event.
    pub(super) fn admits(&self, id: u64, s: &SessionRecord) -> bool {
        let excluded = self.exclude.as_ref().is_some_and(|x| x.contains(&id))
            || self
                .exclude_authid
                .as_ref()
                .is_some_and(|x| x.contains(&s.authid))
            || self
                .exclude_authrole
                .as_ref()
                .is_some_and(|x| x.contains(&s.authrole));
        let eligible = self.eligible.as_ref().is_none_or(|x| x.contains(&id))
            && self
                .eligible_authid
                .as_ref()
                .is_none_or(|x| x.contains(&s.authid))
            && self
                .eligible_authrole
                .as_ref()
                .is_none_or(|x| x.contains(&s.authrole));
        !excluded && eligible
    }
}

/// The reason given when a session's URIs would exceed
/// `max_uri_bytes_per_session`.
fn uri_bytes_refusal(max: usize) -> String {
    format!(
        "the procedures and topics this session registered and subscribed may total at most {max} bytes"
    )
}

/// Option `key` as a positive integer; absent or 0: `None`.
fn positive(options: &Dict, key: &str) -> Result<Option<u64>, String> {
    match options.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(0) => Ok(None),
            Some(n) => Ok(Some(n)),
            None => Err(format!(
                "option {key:?} must be a non-negative integer, got {}",
                v.kind()
            )),
        },
    }
}

/// Option `key` as a bool, if present.
fn bool_option(options: &Dict, key: &str) -> Result<Option<bool>, String> {
    match options.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("option {key:?} must be a bool, got {}", v.kind())),
    }
}

fn flag(options: &Dict, key: &str) -> Option<bool> {
    options.get(key).and_then(Value::as_bool)
}

/// The payload passthru options the router forwards from PUBLISH, CALL and
/// YIELD to EVENT, INVOCATION and RESULT (the payload itself is forwarded
/// untouched in any case).
const PPT_OPTIONS: [&str; 4] = ["ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid"];

/// Copies the `ppt_*` options and the custom `x_*` options of a request
/// into the details of the message it becomes. An error (for
/// `wamp.error.invalid_argument`) when a `ppt_*` option is not a string.
pub(super) fn forward_passthru(options: &Dict, details: &mut Dict) -> Result<(), String> {
    for key in PPT_OPTIONS {
        match options.get(key) {
            None => {}
            Some(Value::String(v)) => {
                details.insert(key.into(), v.clone().into());
            }
            Some(v) => return Err(format!("option {key:?} must be a string, got {}", v.kind())),
        }
    }
    let other_ppt = PPT_OPTIONS[1..].iter().any(|k| options.contains_key(*k));
    if other_ppt && !options.contains_key("ppt_scheme") {
        return Err("payload passthru options need \"ppt_scheme\"".to_owned());
    }
    for (key, value) in options {
        if key.starts_with("x_") {
            details.insert(key.clone(), value.clone());
        }
    }
    Ok(())
}

impl Router {
    /// A message from established session `session` on `conn`.
    pub(super) fn handle_session_message(
        &mut self,
        conn: ConnectionId,
        session: u64,
        msg: Message,
        body: Body,
    ) {
        match msg {
            Message::Goodbye { .. } => self.on_goodbye(conn, session),
            Message::Abort { .. } => self.on_abort(conn, session),
            Message::Publish {
                request,
                options,
                topic,
                ..
            } => self.on_publish(conn, session, request, &options, &topic, body),
            Message::Subscribe {
                request,
                options,
                topic,
            } => self.on_subscribe(conn, session, request, &options, &topic),
            Message::Unsubscribe {
                request,
                subscription,
            } => self.on_unsubscribe(conn, session, request, subscription),
            Message::Register {
                request,
                options,
                procedure,
            } => self.on_register(conn, session, request, &options, &procedure),
            Message::Unregister {
                request,
                registration,
            } => self.on_unregister(conn, session, request, registration),
            Message::Call {
                request,
                options,
                procedure,
                ..
            } => self.on_call(conn, session, request, &options, &procedure, body),
            Message::Cancel { request, options } => self.on_cancel(session, request, &options),
            Message::Yield {
                request, options, ..
            } => self.on_yield(session, request, &options, body),
            Message::Error {
                request_type: Message::INVOCATION,
                request,
                details,
                error,
                ..
            } => self.on_invocation_error(session, request, details, error, body),
            Message::Error { request_type, .. } => self.protocol_violation(
                conn,
                format!(
                    "a client may only send ERROR for INVOCATION, not for request type {request_type}"
                ),
            ),
            Message::Hello { .. } => self.protocol_violation(
                conn,
                "HELLO received on an established session".to_owned(),
            ),
            Message::Authenticate { .. } => self.protocol_violation(
                conn,
                "AUTHENTICATE received on an established session".to_owned(),
            ),
            other => self.protocol_violation(
                conn,
                format!("{} is a router-to-client message", other.name()),
            ),
        }
    }

    // ----- broker ---------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn on_publish(
        &mut self,
        conn: ConnectionId,
        session: u64,
        request: u64,
        options: &Dict,
        topic: &str,
        body: Body,
    ) {
        let acknowledge = flag(options, "acknowledge") == Some(true);
        let refuse = |router: &mut Self, error: &str, message: String| {
            log::debug!("router: PUBLISH to {topic:?} refused: {message}");
            if acknowledge {
                router.error_reply(conn, Message::PUBLISH, request, error, message);
            }
        };
        if !is_valid_uri(topic, false) {
            return refuse(
                self,
                ERROR_INVALID_URI,
                format!("invalid topic URI {topic:?}"),
            );
        }
        if topic.starts_with(RESERVED_PREFIX) {
            return refuse(
                self,
                ERROR_INVALID_URI,
                format!("topic {topic:?} is reserved: URIs starting with \"wamp.\" belong to WAMP"),
            );
        }
        let filters = match Filters::parse(options) {
            Ok(f) => f,
            Err(message) => return refuse(self, ERROR_INVALID_ARGUMENT, message),
        };
        let role_discloses = match self.authorize(session, Action::Publish, topic, options) {
            None => return,
            Some(Authorization::Deny) => {
                return refuse(
                    self,
                    ERROR_NOT_AUTHORIZED,
                    format!("not authorized to publish to topic {topic:?}"),
                );
            }
            Some(Authorization::Allow { disclose }) => disclose,
        };
        let mut passthru = Dict::new();
        if let Err(message) = forward_passthru(options, &mut passthru) {
            return refuse(self, ERROR_INVALID_ARGUMENT, message);
        }
        let exclude_me = flag(options, "exclude_me") != Some(false);
        let disclose_me = flag(options, "disclose_me") == Some(true) || role_discloses;
        let retain = flag(options, "retain") == Some(true);
        let publication = random_id(&mut self.rng);
        if acknowledge {
            self.send(
                conn,
                Message::Published {
                    request,
                    publication,
                },
            );
        }
        let Some(publisher) = self.sessions.get(&session) else {
            return;
        };
        let Some(realm) = self.realms.get(&publisher.realm) else {
            return;
        };
        let mut base = Dict::new();
        if disclose_me {
            base.insert("publisher".into(), session.into());
            base.insert("publisher_authid".into(), publisher.authid.clone().into());
            base.insert(
                "publisher_authrole".into(),
                publisher.authrole.clone().into(),
            );
        }
        base.extend(passthru);
        // One EVENT per subscription (its details are the same for every
        // subscriber), encoded once per codec; the bytes are shared.
        let mut deliveries = Vec::new();
        for (subscription, sub) in realm.broker.matching(topic) {
            let receivers: Vec<ConnectionId> = sub
                .subscribers
                .iter()
                .filter(|&&subscriber| !(subscriber == session && exclude_me))
                .filter_map(|subscriber| {
                    let record = self.sessions.get(subscriber)?;
                    filters.admits(*subscriber, record).then_some(record.conn)
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
        // Built and encoded one at a time: however many subscriptions
        // match, one EVENT is alive at once (an encoded payload is shared,
        // and transcoded once per serializer for all of them).
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
        if retain {
            self.retain_event(session, topic, publication, base, filters, body);
        }
    }

    fn on_subscribe(
        &mut self,
        conn: ConnectionId,
        session: u64,
        request: u64,
        options: &Dict,
        topic: &str,
    ) {
        let policy = match MatchPolicy::from_options(options) {
            Ok(p) => p,
            Err(message) => {
                return self.error_reply(
                    conn,
                    Message::SUBSCRIBE,
                    request,
                    ERROR_INVALID_ARGUMENT,
                    message,
                );
            }
        };
        if !policy.is_valid(topic) {
            return self.error_reply(
                conn,
                Message::SUBSCRIBE,
                request,
                ERROR_INVALID_URI,
                format!("invalid topic {topic:?} for match policy {policy:?}"),
            );
        }
        match self.authorize(session, Action::Subscribe, topic, options) {
            None => return,
            Some(Authorization::Deny) => {
                return self.error_reply(
                    conn,
                    Message::SUBSCRIBE,
                    request,
                    ERROR_NOT_AUTHORIZED,
                    format!("not authorized to subscribe to topic {topic:?}"),
                );
            }
            Some(Authorization::Allow { .. }) => {}
        }
        let Some(record) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(realm) = self.realms.get_mut(&record.realm) else {
            return;
        };
        // Subscribing again to a (topic, match) the session holds returns
        // the same subscription and costs nothing.
        let held = realm
            .broker
            .find(topic, policy)
            .is_some_and(|id| record.subscriptions.contains(&id));
        if !held {
            let limits = self.session_limits;
            let refusal = if record.subscriptions.len() >= limits.subscriptions {
                Some(format!(
                    "this session may hold at most {} subscriptions",
                    limits.subscriptions
                ))
            } else if record.uri_bytes + topic.len() > limits.uri_bytes {
                Some(uri_bytes_refusal(limits.uri_bytes))
            } else {
                None
            };
            if let Some(message) = refusal {
                log::debug!("router: SUBSCRIBE to {topic:?} refused: {message}");
                return self.error_reply(
                    conn,
                    Message::SUBSCRIBE,
                    request,
                    ERROR_NOT_AUTHORIZED,
                    message,
                );
            }
            record.uri_bytes += topic.len();
        }
        let created = realm.broker.find(topic, policy).is_none();
        let subscription =
            realm
                .broker
                .subscribe(session, topic, policy, &mut self.subscription_ids);
        record.subscriptions.insert(subscription);
        let realm_name = record.realm.clone();
        self.send(
            conn,
            Message::Subscribed {
                request,
                subscription,
            },
        );
        if flag(options, "get_retained") == Some(true) {
            self.send_retained(conn, session, subscription, topic, policy);
        }
        // No meta events about subscriptions to the meta events themselves
        // (as Crossbar.io).
        let quiet = topic.starts_with(RESERVED_PREFIX);
        if created && !quiet {
            let details = self.subscription_details(&realm_name, subscription);
            self.publish_meta(
                &realm_name,
                "wamp.subscription.on_create",
                vec![session.into(), details],
            );
        }
        if !held && !quiet {
            self.publish_meta(
                &realm_name,
                "wamp.subscription.on_subscribe",
                vec![session.into(), subscription.into()],
            );
        }
    }

    fn on_unsubscribe(
        &mut self,
        conn: ConnectionId,
        session: u64,
        request: u64,
        subscription: u64,
    ) {
        let Some(record) = self.sessions.get_mut(&session) else {
            return;
        };
        if !record.subscriptions.remove(&subscription) {
            return self.error_reply(
                conn,
                Message::UNSUBSCRIBE,
                request,
                ERROR_NO_SUCH_SUBSCRIPTION,
                format!("this session has no subscription {subscription}"),
            );
        }
        if let Some(realm) = self.realms.get_mut(&record.realm) {
            let len = realm.broker.topic(subscription).map_or(0, str::len);
            record.uri_bytes = record.uri_bytes.saturating_sub(len);
        }
        let realm_name = record.realm.clone();
        self.send(
            conn,
            Message::Unsubscribed {
                request,
                details: None,
            },
        );
        self.drop_subscriber(&realm_name, session, subscription);
    }

    // ----- dealer ---------------------------------------------------------

    fn on_register(
        &mut self,
        conn: ConnectionId,
        session: u64,
        request: u64,
        options: &Dict,
        procedure: &str,
    ) {
        let policy = match MatchPolicy::from_options(options) {
            Ok(p) => p,
            Err(message) => {
                return self.error_reply(
                    conn,
                    Message::REGISTER,
                    request,
                    ERROR_INVALID_ARGUMENT,
                    message,
                );
            }
        };
        let parsed = InvokePolicy::from_options(options).and_then(|invoke| {
            Ok((
                invoke,
                positive(options, "concurrency")?,
                bool_option(options, "force_reregister")?.unwrap_or(false),
            ))
        });
        let (invoke, concurrency, force) = match parsed {
            Ok(p) => p,
            Err(message) => {
                return self.error_reply(
                    conn,
                    Message::REGISTER,
                    request,
                    ERROR_INVALID_ARGUMENT,
                    message,
                );
            }
        };
        if !policy.is_valid(procedure) {
            return self.error_reply(
                conn,
                Message::REGISTER,
                request,
                ERROR_INVALID_URI,
                format!("invalid procedure {procedure:?} for match policy {policy:?}"),
            );
        }
        if procedure.starts_with(RESERVED_PREFIX) {
            return self.error_reply(
                conn,
                Message::REGISTER,
                request,
                ERROR_INVALID_URI,
                format!("procedure {procedure:?} is reserved: URIs starting with \"wamp.\" belong to WAMP"),
            );
        }
        match self.authorize(session, Action::Register, procedure, options) {
            None => return,
            Some(Authorization::Deny) => {
                return self.error_reply(
                    conn,
                    Message::REGISTER,
                    request,
                    ERROR_NOT_AUTHORIZED,
                    format!("not authorized to register procedure {procedure:?}"),
                );
            }
            Some(Authorization::Allow { .. }) => {}
        }
        let Some(realm_name) = self.sessions.get(&session).map(|r| r.realm.clone()) else {
            return;
        };
        if force {
            // Crossbar's force_reregister: the existing registration and
            // all its callees go (after authorization), then ours is made.
            let existing = self
                .realms
                .get(&realm_name)
                .and_then(|r| r.dealer.find(procedure, policy));
            if let Some(id) = existing {
                self.remove_registration(&realm_name, id, "wamp.error.unregistered");
            }
        }
        let Some(record) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(realm) = self.realms.get_mut(&record.realm) else {
            return;
        };
        let limits = self.session_limits;
        let held = realm
            .dealer
            .find(procedure, policy)
            .is_some_and(|id| record.registrations.contains(&id));
        let refusal = if held {
            None
        } else if record.registrations.len() >= limits.registrations {
            Some(format!(
                "this session may hold at most {} registrations",
                limits.registrations
            ))
        } else if record.uri_bytes + procedure.len() > limits.uri_bytes {
            Some(uri_bytes_refusal(limits.uri_bytes))
        } else {
            None
        };
        if let Some(message) = refusal {
            log::debug!("router: REGISTER of {procedure:?} refused: {message}");
            return self.error_reply(
                conn,
                Message::REGISTER,
                request,
                ERROR_NOT_AUTHORIZED,
                message,
            );
        }
        match realm.dealer.register(
            session,
            procedure,
            policy,
            invoke,
            concurrency,
            &mut self.subscription_ids,
        ) {
            Ok((registration, added)) => {
                if added {
                    record.registrations.insert(registration);
                    record.uri_bytes += procedure.len();
                }
                let created = added
                    && realm
                        .dealer
                        .registration(registration)
                        .is_some_and(|r| r.callees.len() == 1);
                self.send(
                    conn,
                    Message::Registered {
                        request,
                        registration,
                    },
                );
                if added {
                    self.registration_made(&realm_name, session, registration, created);
                }
            }
            Err(RegisterRefusal::AlreadyExists) => self.error_reply(
                conn,
                Message::REGISTER,
                request,
                ERROR_PROCEDURE_ALREADY_EXISTS,
                format!("procedure {procedure:?} is already registered (match {policy:?})"),
            ),
            Err(RegisterRefusal::PolicyConflict(has)) => self.error_reply(
                conn,
                Message::REGISTER,
                request,
                ERROR_PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
                format!(
                    "procedure {procedure:?} is registered with invocation policy {:?}, not {:?}",
                    has.as_str(),
                    invoke.as_str()
                ),
            ),
        }
    }

    /// Removes registration `id` of realm `realm` with all its callees;
    /// those that announced `registration_revocation` get UNREGISTERED
    /// with `details.registration` and `reason`.
    pub(super) fn remove_registration(&mut self, realm: &str, id: u64, reason: &str) {
        let Some(r) = self.realms.get_mut(realm) else {
            return;
        };
        let len = r.dealer.procedure(id).map_or(0, str::len);
        let callees = r.dealer.remove(id);
        for &callee in &callees {
            self.forget_registration(callee, id, len, Some(reason));
        }
        self.registration_removed(realm, id, &callees);
    }

    /// Updates `callee`'s record after registration `id` (of a procedure
    /// `len` bytes long) was taken from it, and tells it if it can hear.
    pub(super) fn forget_registration(
        &mut self,
        callee: u64,
        id: u64,
        len: usize,
        reason: Option<&str>,
    ) {
        let Some(record) = self.sessions.get_mut(&callee) else {
            return;
        };
        if record.registrations.remove(&id) {
            record.uri_bytes = record.uri_bytes.saturating_sub(len);
        }
        if record.has_feature("callee", "registration_revocation") {
            let mut details = Dict::new();
            details.insert("registration".into(), id.into());
            if let Some(reason) = reason {
                details.insert("reason".into(), reason.into());
            }
            let conn = record.conn;
            self.send(
                conn,
                Message::Unregistered {
                    request: 0,
                    details: Some(details),
                },
            );
        } else {
            log::debug!(
                "router: registration {id} of session {callee} revoked ({reason:?}); it did not announce registration_revocation and is not told"
            );
        }
    }

    fn on_unregister(&mut self, conn: ConnectionId, session: u64, request: u64, registration: u64) {
        let Some(record) = self.sessions.get_mut(&session) else {
            return;
        };
        if !record.registrations.remove(&registration) {
            return self.error_reply(
                conn,
                Message::UNREGISTER,
                request,
                ERROR_NO_SUCH_REGISTRATION,
                format!("this session has no registration {registration}"),
            );
        }
        if let Some(realm) = self.realms.get_mut(&record.realm) {
            let len = realm.dealer.procedure(registration).map_or(0, str::len);
            record.uri_bytes = record.uri_bytes.saturating_sub(len);
        }
        let realm_name = record.realm.clone();
        self.send(
            conn,
            Message::Unregistered {
                request,
                details: None,
            },
        );
        self.drop_callee(&realm_name, session, registration);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_call(
        &mut self,
        conn: ConnectionId,
        session: u64,
        request: u64,
        options: &Dict,
        procedure: &str,
        body: Body,
    ) {
        if !is_valid_uri(procedure, false) {
            return self.refuse_call(
                session,
                conn,
                request,
                ERROR_INVALID_URI,
                format!("invalid procedure URI {procedure:?}"),
            );
        }
        let role_discloses = match self.authorize(session, Action::Call, procedure, options) {
            None => return,
            Some(Authorization::Deny) => {
                return self.refuse_call(
                    session,
                    conn,
                    request,
                    ERROR_NOT_AUTHORIZED,
                    format!("not authorized to call procedure {procedure:?}"),
                );
            }
            Some(Authorization::Allow { disclose }) => disclose,
        };
        if is_meta_procedure(procedure) {
            return self.on_meta_call(conn, session, request, procedure, body);
        }
        let progress = flag(options, "progress") == Some(true);
        let timeout = match positive(options, "timeout") {
            Ok(t) => t,
            Err(message) => {
                return self.refuse_call(session, conn, request, ERROR_INVALID_ARGUMENT, message);
            }
        };
        let Some(caller) = self.sessions.get(&session) else {
            return;
        };
        let realm_name = caller.realm.clone();
        let Some(realm) = self.realms.get_mut(&realm_name) else {
            return;
        };
        if realm.dealer.late_part(session, request, !progress) {
            log::debug!(
                "router: CALL {request} of session {session}: a part of a streaming call that already ended is dropped"
            );
            return;
        }
        if let Some(invocation) = realm.dealer.invocation_of_call(session, request) {
            let streaming = realm
                .dealer
                .invocation(invocation)
                .is_some_and(|i| i.streaming);
            if !streaming {
                return self.protocol_violation(
                    conn,
                    format!("CALL request id {request} is already in use by a pending call"),
                );
            }
            return self.continue_call(conn, session, request, invocation, progress, body);
        }
        let pending = realm.dealer.pending_of(session);
        if pending >= self.max_pending_calls {
            log::debug!(
                "router: CALL {request} of session {session} refused: {pending} calls pending"
            );
            return self.error_reply(
                conn,
                Message::CALL,
                request,
                ERROR_NOT_AUTHORIZED,
                format!(
                    "too many pending calls: this session already waits for {pending} answers (the router allows {} per session); retry once some are answered",
                    self.max_pending_calls
                ),
            );
        }
        let Some((registration, reg)) = realm.dealer.lookup(procedure) else {
            return self.error_reply(
                conn,
                Message::CALL,
                request,
                ERROR_NO_SUCH_PROCEDURE,
                format!("no callee registered procedure {procedure:?}"),
            );
        };
        let pattern = reg.policy != MatchPolicy::Exact;
        let invoke = reg.invoke;
        let callee = match realm.dealer.pick(registration, &mut self.rng) {
            Some(Ok(callee)) => callee,
            Some(Err(limit)) => {
                return self.error_reply(
                    conn,
                    Message::CALL,
                    request,
                    ERROR_MAX_CONCURRENCY_REACHED,
                    format!(
                        "maximum concurrency {limit} of the callees of {procedure:?} reached (invocation policy {})",
                        invoke.as_str()
                    ),
                );
            }
            None => {
                return self.error_reply(
                    conn,
                    Message::CALL,
                    request,
                    ERROR_NO_SUCH_PROCEDURE,
                    format!("no callee registered procedure {procedure:?}"),
                );
            }
        };
        let Some(callee_record) = self.sessions.get(&callee) else {
            return;
        };
        if progress && !callee_record.has_feature("callee", "progressive_call_invocations") {
            return self.error_reply(
                conn,
                Message::CALL,
                request,
                ERROR_FEATURE_NOT_SUPPORTED,
                format!(
                    "the callee of {procedure:?} does not announce progressive_call_invocations: it cannot take a CALL with progress"
                ),
            );
        }
        let Some(caller) = self.sessions.get(&session) else {
            return;
        };
        // As Crossbar.io: forwarded whether or not the callee announced
        // progressive_call_results (popular JavaScript clients handle it
        // without announcing it).
        let receive_progress = flag(options, "receive_progress") == Some(true);
        let mut details = Dict::new();
        if flag(options, "disclose_me") == Some(true) || role_discloses {
            details.insert("caller".into(), session.into());
            details.insert("caller_authid".into(), caller.authid.clone().into());
            details.insert("caller_authrole".into(), caller.authrole.clone().into());
        }
        if pattern {
            details.insert("procedure".into(), procedure.into());
        }
        if receive_progress {
            details.insert("receive_progress".into(), true.into());
        }
        if let Err(message) = forward_passthru(options, &mut details) {
            return self.refuse_call(session, conn, request, ERROR_INVALID_ARGUMENT, message);
        }
        if progress {
            details.insert("progress".into(), true.into());
        }
        let callee_conn = callee_record.conn;
        let invocation = loop {
            let id = self.invocation_ids.next();
            if !self.realms.values().any(|r| r.dealer.has_invocation(id)) {
                break id;
            }
        };
        let message = body.into_routed(Message::Invocation {
            request: invocation,
            registration,
            details,
            args: None,
            kwargs: None,
        });
        let (prepared, fits) = self.measure(callee_conn, &message);
        let size = prepared.size;
        if !fits {
            let max = self
                .output
                .max_message_size(callee_conn)
                .unwrap_or(usize::MAX);
            log::warn!(
                "router: CALL {request} of session {session} refused: its INVOCATION is {size} bytes, the callee's transport accepts {max}"
            );
            return self.error_reply(
                conn,
                Message::CALL,
                request,
                ERROR_PAYLOAD_SIZE_EXCEEDED,
                format!(
                    "the INVOCATION for this call is {size} bytes; the callee's transport accepts at most {max}"
                ),
            );
        }
        // The spec's milliseconds; an `Instant` overflow means never.
        let deadline = timeout.and_then(|ms| {
            self.now
                .and_then(|now| now.checked_add(Duration::from_millis(ms)))
        });
        if let Some(realm) = self.realms.get_mut(&realm_name) {
            realm.dealer.start(
                invocation,
                Invocation {
                    caller: session,
                    call_request: request,
                    callee,
                    registration,
                    receive_progress,
                    interrupted: false,
                    streaming: progress,
                    deadline,
                },
            );
        }
        self.send_measured(callee_conn, message, prepared, false);
    }

    /// Answers CALL `request` with ERROR; if it continues a progressive
    /// call invocation, that call ends with it (the callee is interrupted).
    fn refuse_call(
        &mut self,
        session: u64,
        conn: ConnectionId,
        request: u64,
        error: &str,
        message: String,
    ) {
        let realm_name = self.sessions.get(&session).map(|s| s.realm.clone());
        let ended = realm_name
            .and_then(|name| self.realms.get_mut(&name))
            .and_then(|realm| {
                let id = realm.dealer.invocation_of_call(session, request)?;
                realm
                    .dealer
                    .invocation(id)
                    .is_some_and(|i| i.streaming)
                    .then(|| realm.dealer.finish(id).map(|call| (id, call.callee)))
                    .flatten()
            });
        if let Some((invocation, callee)) = ended {
            log::debug!(
                "router: progressive call {request} of session {session} ends: a part was refused ({error})"
            );
            self.interrupt_callee(callee, invocation);
        }
        self.error_reply(conn, Message::CALL, request, error, message);
    }

    /// A further CALL of a progressive call invocation: its input goes to
    /// the same INVOCATION request; without `progress` it is the last.
    fn continue_call(
        &mut self,
        conn: ConnectionId,
        session: u64,
        request: u64,
        invocation: u64,
        progress: bool,
        body: Body,
    ) {
        let Some(realm_name) = self.sessions.get(&session).map(|s| s.realm.clone()) else {
            return;
        };
        let Some(call) = self
            .realms
            .get(&realm_name)
            .and_then(|r| r.dealer.invocation(invocation))
            .cloned()
        else {
            return;
        };
        let Some(callee_conn) = self.sessions.get(&call.callee).map(|s| s.conn) else {
            return;
        };
        let mut details = Dict::new();
        if progress {
            details.insert("progress".into(), true.into());
        }
        let message = body.into_routed(Message::Invocation {
            request: invocation,
            registration: call.registration,
            details,
            args: None,
            kwargs: None,
        });
        let (prepared, fits) = self.measure(callee_conn, &message);
        if !fits {
            // The callee cannot get this part: the call ends.
            let size = prepared.size;
            if let Some(realm) = self.realms.get_mut(&realm_name) {
                realm.dealer.finish(invocation);
            }
            self.interrupt_callee(call.callee, invocation);
            return self.error_reply(
                conn,
                Message::CALL,
                request,
                ERROR_PAYLOAD_SIZE_EXCEEDED,
                format!(
                    "the INVOCATION for this part of the call is {size} bytes, more than the callee's transport accepts; the call is canceled"
                ),
            );
        }
        if !progress {
            if let Some(inv) = self
                .realms
                .get_mut(&realm_name)
                .and_then(|r| r.dealer.invocation_mut(invocation, call.callee))
            {
                inv.streaming = false;
            }
        }
        self.send_measured(callee_conn, message, prepared, false);
    }

    /// Sends INTERRUPT (`killnowait`) for `invocation` to `callee` if it
    /// announced `call_canceling`.
    pub(super) fn interrupt_callee(&mut self, callee: u64, invocation: u64) {
        let cancels = self
            .sessions
            .get(&callee)
            .is_some_and(|s| s.has_feature("callee", "call_canceling"));
        if cancels {
            let mut options = Dict::new();
            options.insert("mode".into(), "killnowait".into());
            self.send_to_session(
                callee,
                Message::Interrupt {
                    request: invocation,
                    options,
                },
            );
        }
    }

    /// Ends the calls whose `timeout` is due: the caller gets ERROR
    /// `wamp.error.canceled` (args `["timeout reached"]`, as Crossbar.io),
    /// the callee INTERRUPT (`killnowait`).
    pub(super) fn expire_calls(&mut self, now: std::time::Instant) {
        let names: Vec<String> = self.realms.keys().cloned().collect();
        for name in names {
            let Some(realm) = self.realms.get_mut(&name) else {
                continue;
            };
            let due = realm.dealer.take_expired(now);
            let ended: Vec<(u64, Invocation)> = due
                .into_iter()
                .filter_map(|id| realm.dealer.finish(id).map(|c| (id, c)))
                .collect();
            for (id, call) in ended {
                log::debug!(
                    "router: call {} of session {} timed out (invocation {id})",
                    call.call_request,
                    call.caller
                );
                if !call.interrupted {
                    self.interrupt_callee(call.callee, id);
                }
                let Some(conn) = self.sessions.get(&call.caller).map(|s| s.conn) else {
                    continue;
                };
                self.send_call_answer(
                    conn,
                    Message::Error {
                        request_type: Message::CALL,
                        request: call.call_request,
                        details: Dict::new(),
                        error: ERROR_CANCELED.to_owned(),
                        args: Some(vec![Value::String("timeout reached".into())]),
                        kwargs: None,
                    }
                    .into(),
                );
            }
        }
    }

    fn on_cancel(&mut self, session: u64, request: u64, options: &Dict) {
        let mode = match options.get("mode") {
            None => "killnowait",
            Some(Value::String(m)) if matches!(m.as_str(), "skip" | "kill" | "killnowait") => {
                m.as_str()
            }
            Some(other) => {
                log::warn!(
                    "router: CANCEL of call {request} by session {session} ignored: mode {other:?} is not skip, kill or killnowait"
                );
                return;
            }
        };
        let Some(realm_name) = self.sessions.get(&session).map(|s| s.realm.clone()) else {
            return;
        };
        let Some(realm) = self.realms.get_mut(&realm_name) else {
            return;
        };
        let Some(invocation) = realm.dealer.invocation_of_call(session, request) else {
            log::debug!("router: CANCEL for call {request} that is not pending (answered?)");
            return;
        };
        let Some(call) = realm.dealer.invocation(invocation).cloned() else {
            return;
        };
        if call.interrupted {
            return;
        }
        let callee_cancels = self
            .sessions
            .get(&call.callee)
            .is_some_and(|s| s.has_feature("callee", "call_canceling"));
        let interrupt = |mode: &str| {
            let mut options = Dict::new();
            options.insert("mode".into(), mode.into());
            Message::Interrupt {
                request: invocation,
                options,
            }
        };
        if mode == "kill" && callee_cancels {
            if let Some(inv) = realm.dealer.invocation_mut(invocation, call.callee) {
                inv.interrupted = true;
            }
            self.send_to_session(call.callee, interrupt("kill"));
            return;
        }
        realm.dealer.finish(invocation);
        if mode != "skip" && callee_cancels {
            self.send_to_session(call.callee, interrupt("killnowait"));
        }
        let Some(conn) = self.sessions.get(&session).map(|s| s.conn) else {
            return;
        };
        self.send_call_answer(
            conn,
            Message::Error {
                request_type: Message::CALL,
                request,
                details: Dict::new(),
                error: ERROR_CANCELED.to_owned(),
                args: Some(vec![Value::String(format!("call canceled (mode {mode})"))]),
                kwargs: None,
            }
            .into(),
        );
    }

    fn on_yield(&mut self, session: u64, request: u64, options: &Dict, body: Body) {
        let Some(realm_name) = self.sessions.get(&session).map(|s| s.realm.clone()) else {
            return;
        };
        let Some(realm) = self.realms.get_mut(&realm_name) else {
            return;
        };
        let Some(call) = realm.dealer.invocation_mut(request, session) else {
            log::debug!(
                "router: YIELD for unknown invocation {request} from session {session} dropped (canceled?)"
            );
            return;
        };
        let progress = flag(options, "progress") == Some(true);
        let (caller, call_request) = (call.caller, call.call_request);
        if progress && !call.receive_progress {
            log::warn!(
                "router: progressive YIELD for invocation {request} dropped: the call did not ask for progressive results"
            );
            return;
        }
        let Some(caller_conn) = self.sessions.get(&caller).map(|s| s.conn) else {
            return;
        };
        let mut details = Dict::new();
        if progress {
            details.insert("progress".into(), true.into());
        }
        if let Err(message) = forward_passthru(options, &mut details) {
            log::debug!("router: YIELD {request}: {message}: forwarded without it");
        }
        let result = body.into_routed(Message::Result {
            request: call_request,
            details,
            args: None,
            kwargs: None,
        });
        let (prepared, fits) = self.measure(caller_conn, &result);
        let finished = !progress || !fits;
        if finished {
            if let Some(realm) = self.realms.get_mut(&realm_name) {
                realm.dealer.finish(request);
            }
        }
        if !fits && progress {
            // The call ends here with ERROR: stop the callee's work.
            let cancels = self
                .sessions
                .get(&session)
                .is_some_and(|s| s.has_feature("callee", "call_canceling"));
            if cancels {
                let mut options = Dict::new();
                options.insert("mode".into(), "killnowait".into());
                self.send_to_session(session, Message::Interrupt { request, options });
            }
        }
        // Too large: the caller gets ERROR wamp.error.payload_size_exceeded
        // instead (see `too_large`).
        self.send_measured(caller_conn, result, prepared, false);
    }

    fn on_invocation_error(
        &mut self,
        session: u64,
        request: u64,
        details: Dict,
        error: String,
        body: Body,
    ) {
        let Some(realm_name) = self.sessions.get(&session).map(|s| s.realm.clone()) else {
            return;
        };
        let Some(realm) = self.realms.get_mut(&realm_name) else {
            return;
        };
        if realm.dealer.invocation_mut(request, session).is_none() {
            log::debug!(
                "router: ERROR for unknown invocation {request} from session {session} dropped (canceled?)"
            );
            return;
        }
        let Some(call) = realm.dealer.finish(request) else {
            return;
        };
        let Some(conn) = self.sessions.get(&call.caller).map(|s| s.conn) else {
            return;
        };
        let error = body.into_routed(Message::Error {
            request_type: Message::CALL,
            request: call.call_request,
            details,
            error,
            args: None,
            kwargs: None,
        });
        self.send_routed(conn, error, false);
    }
}

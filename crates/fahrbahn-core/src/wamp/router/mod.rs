//! An embedded WAMP v2 router (broker and dealer) as a sans-IO state
//! machine over many sessions.
//!
//! It follows the core's sans-IO contract: inputs take the time (`now`),
//! outputs are polled, and [`poll_timeout`](Router::poll_timeout) says when
//! to call [`handle_timeout`](Router::handle_timeout).
//!
//! The serving layer [`attach`](Router::attach)es each transport that
//! connects, feeds every decoded client message to
//! [`handle_message`](Router::handle_message) — or, with its payload
//! (`args`, `kwargs`) kept as the bytes it came in
//! ([`Codec::decode_raw`]), to
//! [`handle_raw_message`](Router::handle_raw_message), which forwards the
//! payload without turning it into [`Value`]s — and delivers each
//! connection's queued messages in order: a task per connection drains its
//! own with [`poll_transmit_to`](Router::poll_transmit_to) (and learns which
//! connections got new messages from [`poll_ready`](Router::poll_ready)); a
//! single-threaded driver or a test can drain all of them in global order
//! with [`poll_outgoing`](Router::poll_outgoing). It reacts to
//! [`poll_event`](Router::poll_event) — in particular
//! [`RouterEvent::CloseTransport`]: close that transport once its queued
//! messages are flushed. When a transport drops, call
//! [`detach`](Router::detach).
//!
//! Protocol decisions are made here, where they are tested
//! deterministically: a client that sends no HELLO within
//! [`RouterConfig::hello_timeout`], or is not welcomed within
//! [`RouterConfig::auth_timeout`] of its HELLO, is disconnected; a client whose
//! undelivered messages exceed [`RouterConfig::outbound_queue_bytes`]
//! (counted with what the serving layer buffers,
//! [`handle_buffered`](Router::handle_buffered)) or
//! [`RouterConfig::outbound_queue`] is disconnected as a slow consumer
//! (its session leaves, its queue is dropped, the other sessions do not
//! notice); a message larger than the client accepts
//! ([`handle_connected`](Router::handle_connected)) is never queued: the
//! request it answers gets ERROR `wamp.error.payload_size_exceeded`; after
//! [`shutdown`](Router::shutdown) a client that does not answer GOODBYE
//! within [`RouterConfig::goodbye_timeout`] is disconnected. A session
//! holds at most [`RouterConfig::max_registrations_per_session`]
//! registrations and [`RouterConfig::max_subscriptions_per_session`]
//! subscriptions, of at most [`RouterConfig::max_uri_bytes_per_session`]
//! bytes of URIs; a REGISTER or SUBSCRIBE over them is answered with ERROR
//! `wamp.error.not_authorized` and the session stays.
//!
//! What the router implements (and announces in WELCOME, see
//! [`router_roles`]):
//! - sessions: HELLO/WELCOME with an [`Authenticator`] hook
//!   (CHALLENGE/AUTHENTICATE), GOODBYE both ways (a session may join again
//!   on the same connection after a GOODBYE exchange), ABORT;
//! - authorization: every CALL, REGISTER, PUBLISH and SUBSCRIBE is decided
//!   by an [`Authorizer`] (default: a [`StaticAuthorizer`] without roles,
//!   which allows everything); a refusal is ERROR
//!   `wamp.error.not_authorized`, and a role may disclose callers and
//!   publishers;
//! - broker: exact, prefix and wildcard subscriptions (one subscription id
//!   per (topic, match) and realm), `exclude_me` (default true),
//!   `exclude`/`eligible` (session ids), `exclude_authid`/`eligible_authid`,
//!   `exclude_authrole`/`eligible_authrole`, `disclose_me`, `acknowledge`,
//!   event retention (`retain`, `get_retained`; at most
//!   [`RouterConfig::max_retained_bytes`] per realm), subscription
//!   revocation (`wamp.subscription.remove_subscriber`);
//! - dealer: exact, prefix and wildcard registrations, shared
//!   registrations (`invoke`: `single`, `roundrobin`, `random`, `first`,
//!   `last` and our `leastbusy`; `concurrency`, `force_reregister`),
//!   `disclose_me`, progressive call results (`receive_progress` is
//!   forwarded to every callee, as Crossbar.io does), progressive call
//!   invocations, call timeouts (`timeout` in milliseconds), call
//!   canceling (`skip`, `kill`, `killnowait`), registration revocation
//!   ([`Router::revoke_registration`], `wamp.registration.remove_callee`);
//! - payload passthru mode: `ppt_scheme`, `ppt_serializer`, `ppt_cipher`,
//!   `ppt_keyid` and custom `x_*` options are forwarded from PUBLISH, CALL
//!   and YIELD to EVENT, INVOCATION and RESULT, the payload untouched;
//! - the meta API, answered by the router itself and authorized like any
//!   CALL: `wamp.session.count|list|get|kill|kill_by_authid|kill_by_authrole`,
//!   `wamp.registration.list|lookup|match|get|list_callees|count_callees|remove_callee`,
//!   `wamp.subscription.list|lookup|match|get|list_subscribers|count_subscribers|remove_subscriber`,
//!   and the meta events `wamp.session.on_join|on_leave`,
//!   `wamp.registration.on_create|on_register|on_unregister|on_delete`,
//!   `wamp.subscription.on_create|on_subscribe|on_unsubscribe|on_delete`;
//! - testaments: `wamp.session.add_testament`,
//!   `wamp.session.flush_testaments` (scopes `detached` and `destroyed`,
//!   at most [`RouterConfig::max_testament_bytes_per_session`]), published
//!   when the session goes away.
//!
//! Not implemented: a dynamic authorizer that calls a WAMP procedure.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use fahrbahn_core::Rng;
//! use fahrbahn_core::wamp::router::{Router, RouterConfig, RouterEvent};
//! use fahrbahn_core::wamp::{Dict, Message, client_roles};
//!
//! let now = Instant::now();
//! let mut router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(1));
//! let conn = router.attach(now);
//! let mut details = Dict::new();
//! details.insert("roles".into(), client_roles().into());
//! router.handle_message(now, conn, Message::Hello { realm: "realm1".into(), details });
//! let Some((to, Message::Welcome { session, .. })) = router.poll_outgoing() else { panic!() };
//! assert_eq!(to, conn);
//! assert!(matches!(router.poll_event(), Some(RouterEvent::Joined { session: s, .. }) if s.0 == session));
//!
//! // Nobody registered this procedure.
//! router.handle_message(now, conn, Message::Call {
//!     request: 1,
//!     options: Dict::new(),
//!     procedure: "com.example.add2".into(),
//!     args: None,
//!     kwargs: None,
//! });
//! match router.poll_outgoing() {
//!     Some((_, Message::Error { error, .. })) => assert_eq!(error, "wamp.error.no_such_procedure"),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod auth;
mod authorize;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod authz_tests;
mod broker;
mod dealer;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod dealer_tests;
mod handlers;
mod lifecycle;
mod matching;
mod meta;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod meta_tests;
mod retained;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "auth")]
pub use crate::wamp::auth::StaticAuthenticator;
pub use auth::{
    AnonymousAuthenticator, AuthDecision, AuthenticateContext, Authenticator, HelloContext,
};
pub use authorize::{
    Action, Authorization, AuthorizeContext, Authorizer, Grants, Permission, Role,
    StaticAuthorizer, UriMatch,
};

use crate::Rng;
use crate::wamp::error::ERROR_PAYLOAD_SIZE_EXCEEDED;
use crate::wamp::raw::{set_payload, splice_head};
use crate::wamp::session::feature_set;
use crate::wamp::{
    Codec, Dict, EncodedPayload, IdGenerator, List, Message, RawMessage, Serializer, SessionId,
    Value, random_id,
};
use broker::Broker;
use dealer::Dealer;

/// Settings of a [`Router`].
///
/// ```
/// use fahrbahn_core::wamp::router::RouterConfig;
/// let config = RouterConfig::with_realm("realm1");
/// assert_eq!(config.realms, ["realm1"]);
/// assert!(!config.auto_create_realms);
/// assert_eq!(config.outbound_queue, 4096);
/// assert_eq!(config.max_registrations_per_session, 1000);
/// assert_eq!(config.max_subscriptions_per_session, 1000);
/// assert_eq!(config.max_uri_bytes_per_session, 1 << 20);
/// assert_eq!(config.outbound_queue_bytes, 16 << 20);
/// assert_eq!(config.auth_timeout, std::time::Duration::from_secs(10));
/// assert_eq!(config.max_auth_rounds, 3);
///
/// let mut config = RouterConfig::default();
/// config.auto_create_realms = true;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouterConfig {
    /// The realms that exist from the start.
    pub realms: Vec<String>,
    /// Create a realm when a HELLO names one that does not exist (its name
    /// must be a valid URI), instead of answering
    /// `wamp.error.no_such_realm`.
    pub auto_create_realms: bool,
    /// How long a connection may stay without a session: from
    /// [`Router::attach`] (or a finished GOODBYE) to HELLO (default 10 s).
    /// Then it is closed.
    pub hello_timeout: Duration,
    /// How long authentication may take, from HELLO to WELCOME over every
    /// CHALLENGE/AUTHENTICATE round (default 10 s). A client that is not
    /// welcomed by then gets ABORT `wamp.error.not_authorized` and its
    /// transport is closed ([`CloseReason::Timeout`]).
    pub auth_timeout: Duration,
    /// CHALLENGEs one HELLO may get, at most (default 3): when the
    /// [`Authenticator`] would challenge once more, the client gets ABORT
    /// `wamp.error.not_authorized` instead. The router closes the
    /// transport after every ABORT, so this also bounds the failed
    /// AUTHENTICATE attempts per connection.
    pub max_auth_rounds: usize,
    /// How long a client may take to answer the router's GOODBYE after
    /// [`Router::shutdown`] (default 2 s). Then it is closed.
    pub goodbye_timeout: Duration,
    /// Bytes held for one connection, at most (default 16 MiB): the
    /// encoded size of the messages queued for it here plus what the
    /// serving layer reports it still buffers
    /// ([`Router::handle_buffered`]). A client that falls further behind
    /// is disconnected as a slow consumer ([`CloseReason::SlowConsumer`]).
    /// One message larger than this still goes to a client that holds
    /// nothing. The ERRORs ending the client's own calls are not refused
    /// (see [`max_pending_calls_per_session`](Self::max_pending_calls_per_session)).
    pub outbound_queue_bytes: usize,
    /// Messages queued for one connection and not yet taken by the serving
    /// layer, at most (default 4096): a secondary bound, for many tiny
    /// messages whose bookkeeping outweighs their bytes. A client that
    /// falls further behind is disconnected as a slow consumer.
    pub outbound_queue: usize,
    /// Registrations one session may hold at once (default 1000). A
    /// REGISTER over it is answered with ERROR `wamp.error.not_authorized`
    /// (the reason in `args[0]`); the session stays.
    pub max_registrations_per_session: usize,
    /// Subscriptions one session may hold at once (default 1000), counted
    /// by subscription id: a SUBSCRIBE to a (topic, match) the session
    /// already holds returns the same id and costs nothing. One over it is
    /// answered with ERROR `wamp.error.not_authorized`; the session stays.
    pub max_subscriptions_per_session: usize,
    /// Bytes of URIs one session may hold through its registrations and
    /// subscriptions together: the sum of the lengths of the procedures it
    /// registered and the topics it subscribed (default 1 MiB). Without it
    /// the count limits above would still let one session pin
    /// `max_registrations_per_session` × the message size. A REGISTER or
    /// SUBSCRIBE over it is answered like one over the count limits.
    pub max_uri_bytes_per_session: usize,
    /// Calls one session may have waiting for their answer, at most
    /// (default 1000). A CALL beyond it is answered with ERROR
    /// `wamp.error.not_authorized` (the reason in `args[0]`) and the
    /// session stays up. This also bounds the burst of ERRORs a caller
    /// gets when its callee leaves.
    pub max_pending_calls_per_session: usize,
    /// Bytes of retained events one realm keeps, at most (default 4 MiB):
    /// each counted as its topic, payload and details plus a fixed
    /// overhead. To keep a new one, the oldest retained events are
    /// dropped; an event larger than this alone is delivered but not
    /// retained.
    pub max_retained_bytes: usize,
    /// Bytes of testaments (`wamp.session.add_testament`) one session may
    /// hold, at most (default 64 KiB): each counted as its topic and
    /// payload plus a fixed overhead. One over it is answered with ERROR
    /// `wamp.error.payload_size_exceeded`.
    pub max_testament_bytes_per_session: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            realms: Vec::new(),
            auto_create_realms: false,
            hello_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            max_auth_rounds: 3,
            goodbye_timeout: Duration::from_secs(2),
            outbound_queue_bytes: 16 << 20,
            outbound_queue: 4096,
            max_registrations_per_session: 1000,
            max_subscriptions_per_session: 1000,
            max_uri_bytes_per_session: 1 << 20,
            max_pending_calls_per_session: 1000,
            max_retained_bytes: 4 << 20,
            max_testament_bytes_per_session: 64 << 10,
        }
    }
}

impl RouterConfig {
    /// A configuration with one realm.
    pub fn with_realm(realm: impl Into<String>) -> Self {
        Self {
            realms: vec![realm.into()],
            ..Self::default()
        }
    }
}

/// Why the router asks for a transport to be closed
/// ([`RouterEvent::CloseTransport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// An ABORT was sent or received (protocol violation, refused
    /// authentication, unknown realm, the client aborted).
    Aborted,
    /// The client answered the router's GOODBYE.
    Goodbye,
    /// The client did not keep up with its messages
    /// ([`RouterConfig::outbound_queue_bytes`],
    /// [`RouterConfig::outbound_queue`]); its queue was dropped.
    SlowConsumer,
    /// No HELLO or AUTHENTICATE within [`RouterConfig::hello_timeout`], or
    /// no GOODBYE reply within [`RouterConfig::goodbye_timeout`].
    Timeout,
    /// The router shuts down and the connection had no session.
    Shutdown,
}

impl CloseReason {
    /// The WebSocket close code to end the transport with.
    pub fn close_code(self) -> crate::ws::CloseCode {
        use crate::ws::CloseCode;
        match self {
            CloseReason::Aborted | CloseReason::Goodbye => CloseCode::NORMAL,
            CloseReason::SlowConsumer => CloseCode::POLICY_VIOLATION,
            CloseReason::Timeout => CloseCode::POLICY_VIOLATION,
            CloseReason::Shutdown => CloseCode::GOING_AWAY,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::Aborted => "session aborted",
            CloseReason::Goodbye => "session closed",
            CloseReason::SlowConsumer => "slow consumer: too many undelivered bytes or messages",
            CloseReason::Timeout => "timed out waiting for the client",
            CloseReason::Shutdown => "router shutting down",
        })
    }
}

/// A transport attached to the [`Router`], as the serving layer knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection {}", self.0)
    }
}

/// What a [`Router`] reports to the serving layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouterEvent {
    /// A session joined a realm (WELCOME was queued).
    Joined {
        /// Its connection.
        conn: ConnectionId,
        /// The session id.
        session: SessionId,
        /// The realm.
        realm: String,
        /// Its authid.
        authid: String,
        /// Its authrole.
        authrole: String,
    },
    /// A session left (GOODBYE, ABORT, protocol violation, detach or
    /// shutdown); its subscriptions, registrations and calls are gone.
    Left {
        /// Its connection.
        conn: ConnectionId,
        /// The session id.
        session: SessionId,
    },
    /// Close this transport once the messages queued for it are
    /// delivered. Further input on it is ignored.
    CloseTransport {
        /// The connection.
        conn: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
}

/// Counters of one realm, for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RealmStats {
    /// Joined sessions.
    pub sessions: usize,
    /// Subscriptions (each shared by one or more sessions).
    pub subscriptions: usize,
    /// Registrations.
    pub registrations: usize,
    /// Calls waiting for their callee's answer.
    pub pending_calls: usize,
}

/// The roles and features the router announces in WELCOME — exactly what
/// [`Router`] implements.
///
/// ```
/// use fahrbahn_core::wamp::router::router_roles;
/// let roles = router_roles();
/// assert!(roles.contains_key("broker") && roles.contains_key("dealer"));
/// ```
pub fn router_roles() -> Dict {
    let mut roles = Dict::new();
    roles.insert(
        "broker".into(),
        feature_set(&[
            "publisher_identification",
            "publisher_exclusion",
            "subscriber_blackwhite_listing",
            "pattern_based_subscription",
            "event_retention",
            "subscription_revocation",
            "payload_passthru_mode",
            "session_meta_api",
            "subscription_meta_api",
            "registration_meta_api",
            "testament_meta_api",
        ]),
    );
    roles.insert(
        "dealer".into(),
        feature_set(&[
            "caller_identification",
            "progressive_call_results",
            "progressive_call_invocations",
            "call_canceling",
            "call_timeout",
            "pattern_based_registration",
            "shared_registration",
            "registration_revocation",
            "payload_passthru_mode",
            "session_meta_api",
            "registration_meta_api",
            "testament_meta_api",
        ]),
    );
    roles
}

/// Bytes of cached authorization verdicts one session may hold (each
/// entry counted as its URI plus [`AUTHZ_CACHE_ENTRY_OVERHEAD`]); the
/// cache is emptied when it would hold more.
const AUTHZ_CACHE_BYTES: usize = 16 * 1024;

/// What one cached verdict costs besides its URI: the key's `String`, the
/// action, match policy and verdict, and the hash table's slot.
const AUTHZ_CACHE_ENTRY_OVERHEAD: usize = 64;

/// The `agent` the router announces.
const AGENT: &str = concat!("Fahrbahn/", env!("CARGO_PKG_VERSION"));

/// A client on its way in: it said HELLO and is being authenticated.
#[derive(Debug)]
struct PendingJoin {
    session: u64,
    realm: String,
    hello: Dict,
    authmethod: String,
    challenge: Dict,
    /// When authentication must be finished ([`RouterConfig::auth_timeout`]
    /// after HELLO).
    deadline: Option<Instant>,
    /// CHALLENGEs sent so far.
    rounds: usize,
}

/// Where a connection is in the session lifecycle.
#[derive(Debug)]
enum ConnState {
    /// Attached, no session: expects HELLO.
    Idle,
    /// HELLO answered with CHALLENGE: expects AUTHENTICATE.
    Authenticating(Box<PendingJoin>),
    /// A session is established.
    Joined(u64),
    /// The router sent GOODBYE: expects the GOODBYE reply.
    Closing,
    /// Done (ABORT exchanged, CloseTransport requested): input is ignored.
    Closed,
}

/// A joined session.
#[derive(Debug)]
struct SessionRecord {
    conn: ConnectionId,
    realm: String,
    authid: String,
    authrole: String,
    authmethod: String,
    authprovider: String,
    /// Testaments to publish when the session goes away, and their bytes
    /// ([`RouterConfig::max_testament_bytes_per_session`]).
    testaments: Vec<meta::Testament>,
    testament_bytes: usize,
    /// The client's announced roles (HELLO details.roles).
    roles: Dict,
    /// Verdicts of a [`cacheable`](Authorizer::cacheable) authorizer, by
    /// (action, match policy, URI).
    authz_cache: HashMap<(Action, matching::MatchPolicy, String), Authorization>,
    /// The bytes held by `authz_cache` ([`AUTHZ_CACHE_BYTES`]).
    authz_cache_bytes: usize,
    subscriptions: BTreeSet<u64>,
    registrations: BTreeSet<u64>,
    /// The summed length of the topics and procedures of `subscriptions`
    /// and `registrations` ([`RouterConfig::max_uri_bytes_per_session`]).
    uri_bytes: usize,
}

impl SessionRecord {
    /// Whether the client announced `feature` for `role`.
    fn has_feature(&self, role: &str, feature: &str) -> bool {
        self.roles
            .get(role)
            .and_then(|r| r.get("features"))
            .and_then(|f| f.get(feature))
            .and_then(Value::as_bool)
            == Some(true)
    }
}

/// A realm: its sessions, broker and dealer.
#[derive(Debug, Default)]
struct Realm {
    sessions: BTreeSet<u64>,
    broker: Broker,
    dealer: Dealer,
    retained: retained::RetainedStore,
}

/// The embedded WAMP router: sessions, broker and dealer over many
/// connections, without I/O. See the [module documentation](self).
pub struct Router {
    auto_create_realms: bool,
    rng: Rng,
    authenticator: Box<dyn Authenticator + Send>,
    authorizer: Box<dyn Authorizer + Send>,
    realms: BTreeMap<String, Realm>,
    conns: BTreeMap<ConnectionId, ConnState>,
    sessions: BTreeMap<u64, SessionRecord>,
    /// Session ids handed to authenticating clients.
    reserved: BTreeSet<u64>,
    next_conn: u64,
    /// Subscription and registration ids, from one sequence: an id never
    /// names both a subscription and a registration (clearer for the meta
    /// API's users, and what the differential suite relies on).
    subscription_ids: IdGenerator,
    invocation_ids: IdGenerator,
    output: Output,
    events: VecDeque<RouterEvent>,
    /// Per connection, when it must have made progress (HELLO,
    /// AUTHENTICATE, GOODBYE reply), and the same ordered by time.
    deadline_of: BTreeMap<ConnectionId, Instant>,
    deadlines: BTreeSet<(Instant, ConnectionId)>,
    hello_timeout: Duration,
    auth_timeout: Duration,
    max_auth_rounds: usize,
    goodbye_timeout: Duration,
    session_limits: SessionLimits,
    max_pending_calls: usize,
    max_retained_bytes: usize,
    max_testament_bytes: usize,
    /// The time of the input being handled (`None` before the first).
    now: Option<Instant>,
    shut_down: bool,
}

/// What one session may hold ([`RouterConfig`]'s `max_*_per_session`).
#[derive(Debug, Clone, Copy)]
struct SessionLimits {
    registrations: usize,
    subscriptions: usize,
    uri_bytes: usize,
}

/// An encoded message, shared by every connection that gets the same bytes
/// (an EVENT is encoded once per codec and subscription, not once per
/// subscriber).
pub type Payload = Arc<[u8]>;

/// A message queued for a connection: encoded with the connection's codec
/// once the serving layer told the router which
/// ([`Router::handle_connected`]), as built before that (tests, drivers
/// that encode themselves).
#[derive(Debug)]
enum Queued {
    Message(Message),
    Encoded(Payload),
}

/// A message made ready for one connection: its payload (when the
/// connection's messages are queued encoded) and its encoded size.
#[derive(Debug)]
struct Prepared {
    payload: Option<Payload>,
    size: usize,
}

/// The payloads of one message already encoded during one fan-out, by
/// codec, and its payload (`args`, `kwargs`) transcoded into other
/// serializers than the sender's, by serializer (kept over the messages
/// of one fan-out that carry the same payload: the EVENTs of several
/// subscriptions).
#[derive(Debug, Default)]
struct EncodeCache {
    encoded: Vec<(Codec, Payload)>,
    transcoded: Vec<EncodedPayload>,
}

impl EncodeCache {
    /// The next message of the fan-out has other envelope bytes but the
    /// same payload.
    fn next_message(&mut self) {
        self.encoded.clear();
    }

    /// `raw` in `serializer`: itself, or transcoded once per serializer.
    fn payload_in(
        &mut self,
        serializer: Serializer,
        raw: &EncodedPayload,
    ) -> Result<EncodedPayload, crate::wamp::DecodeError> {
        if raw.serializer() == serializer {
            return Ok(raw.clone());
        }
        if let Some(p) = self
            .transcoded
            .iter()
            .find(|p| p.serializer() == serializer)
        {
            return Ok(p.clone());
        }
        let p = raw.transcode(serializer)?;
        self.transcoded.push(p.clone());
        Ok(p)
    }
}

/// The payload of a message the router forwards (PUBLISH, CALL, YIELD,
/// ERROR): decoded (`handle_message`), or the bytes it came in
/// (`handle_raw_message`), then `args` and `kwargs` are `None`.
#[derive(Debug, Clone, Default)]
struct Body {
    args: Option<List>,
    kwargs: Option<Dict>,
    raw: Option<EncodedPayload>,
}

impl Body {
    /// `envelope` carrying this payload.
    fn into_routed(self, mut envelope: Message) -> Routed {
        set_payload(&mut envelope, self.args, self.kwargs);
        Routed {
            msg: envelope,
            raw: self.raw,
        }
    }
}

/// A message on its way out: whole, or an envelope whose payload is
/// spliced in encoded (`raw`; the envelope's `args`/`kwargs` are `None`).
#[derive(Debug)]
struct Routed {
    msg: Message,
    raw: Option<EncodedPayload>,
}

impl From<Message> for Routed {
    fn from(msg: Message) -> Self {
        Self { msg, raw: None }
    }
}

impl Routed {
    /// The whole message, its encoded payload decoded (for connections
    /// whose messages are queued as built).
    fn to_message(&self) -> Message {
        let mut msg = self.msg.clone();
        if let Some(raw) = &self.raw {
            match raw.decode() {
                Ok((args, kwargs)) => set_payload(&mut msg, args, kwargs),
                Err(e) => log::error!(
                    "router: a validated payload does not decode ({e}): {} forwarded without it",
                    msg.name()
                ),
            }
        }
        msg
    }
}

/// What the router keeps for one connection's outbound messages.
#[derive(Debug)]
struct Queue {
    /// (global sequence, message, encoded size), in order.
    messages: VecDeque<(u64, Queued, usize)>,
    /// The encoded sizes of `messages`, summed.
    bytes: usize,
    /// Bytes the serving layer took from the queue and has not written
    /// yet ([`Router::handle_buffered`]).
    buffered: usize,
    /// How messages are measured: the connection's codec
    /// ([`Router::handle_connected`]; JSON until then).
    codec: Codec,
    /// Messages are queued encoded with `codec` (after
    /// [`Router::handle_connected`]).
    encoded: bool,
    /// The largest message the client accepts, if it announced one.
    max_message_size: Option<usize>,
}

impl Queue {
    fn new() -> Self {
        Self {
            messages: VecDeque::new(),
            bytes: 0,
            buffered: 0,
            codec: Codec::new(Serializer::Json),
            encoded: false,
            max_message_size: None,
        }
    }

    /// What the connection holds: queued here plus buffered by the
    /// serving layer.
    fn total(&self) -> usize {
        self.bytes + self.buffered
    }
}

/// The messages queued per connection, in order, with a global sequence
/// so they can also be drained in the order they were queued.
#[derive(Debug)]
struct Output {
    queues: BTreeMap<ConnectionId, Queue>,
    /// Connections whose queue became non-empty, not yet reported by
    /// [`Router::poll_ready`]; `flagged` holds the same set.
    ready: VecDeque<ConnectionId>,
    flagged: BTreeSet<ConnectionId>,
    /// Connections over the queue bound, to disconnect once the current
    /// input is handled.
    overflowed: BTreeSet<ConnectionId>,
    /// Connections that were to get a message larger than they accept
    /// and that has no smaller answer in its place: aborted once the
    /// current input is handled.
    oversized: BTreeSet<ConnectionId>,
    /// [`RouterConfig::outbound_queue`].
    limit: usize,
    /// [`RouterConfig::outbound_queue_bytes`].
    limit_bytes: usize,
    next_seq: u64,
    /// Reused to measure messages.
    scratch: Vec<u8>,
}

/// The scratch buffer is given back above this capacity.
const SCRATCH_KEEP: usize = 64 * 1024;

impl Output {
    /// `msg` made ready for `conn`: encoded with its codec once (reusing
    /// a payload of `cache` for the same codec), or only measured while
    /// the connection's messages are queued as built; `None` for unknown
    /// connections and for those over their bound (not even encoded).
    fn prepare(
        &mut self,
        conn: ConnectionId,
        msg: &Routed,
        cache: &mut EncodeCache,
    ) -> Option<Prepared> {
        if self.overflowed.contains(&conn) {
            return None; // being disconnected: nothing more is queued
        }
        let queue = self.queues.get(&conn)?;
        let (codec, encoded) = (queue.codec, queue.encoded);
        if encoded {
            if let Some((_, payload)) = cache.encoded.iter().find(|(c, _)| *c == codec) {
                return Some(Prepared {
                    size: payload.len(),
                    payload: Some(payload.clone()),
                });
            }
        }
        self.scratch.clear();
        let (size, payload) = match &msg.raw {
            None => {
                codec.encode(&msg.msg, &mut self.scratch);
                let payload = encoded.then(|| Payload::from(&self.scratch[..]));
                (self.scratch.len(), payload)
            }
            // The payload's bytes spliced in after the envelope: as they
            // came when the connection speaks the sender's serializer,
            // transcoded once per serializer otherwise. Built in place:
            // one allocation of the message's size.
            Some(raw) => match cache.payload_in(codec.serializer, raw) {
                Ok(tail) => {
                    let trailer = splice_head(codec, &msg.msg, &tail, &mut self.scratch);
                    let size = self.scratch.len() + tail.bytes().len() + trailer.len();
                    let payload = encoded.then(|| {
                        self.scratch
                            .iter()
                            .chain(tail.bytes())
                            .chain(trailer)
                            .copied()
                            .collect::<Payload>()
                    });
                    (size, payload)
                }
                Err(e) => {
                    log::error!(
                        "router: a validated payload does not transcode to {} ({e}): {} for {conn} dropped",
                        codec.serializer,
                        msg.msg.name()
                    );
                    return None;
                }
            },
        };
        if let Some(p) = &payload {
            cache.encoded.push((codec, p.clone()));
        }
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        Some(Prepared { payload, size })
    }

    /// The largest message `conn` accepts, if it announced one.
    fn max_message_size(&self, conn: ConnectionId) -> Option<usize> {
        self.queues.get(&conn).and_then(|q| q.max_message_size)
    }

    /// Whether a message of `size` bytes fits what `conn` accepts.
    fn fits(&self, conn: ConnectionId, size: usize) -> bool {
        self.queues
            .get(&conn)
            .and_then(|q| q.max_message_size)
            .is_none_or(|max| size <= max)
    }

    /// Queues `msg` of `size` encoded bytes for `conn`. A connection that
    /// would hold more than the bounds (messages, or bytes including what
    /// the serving layer buffers) is marked as overflowed instead; one
    /// message always fits a connection that holds nothing. An `answer`
    /// (ERROR for the client's own pending calls, bounded by
    /// [`RouterConfig::max_pending_calls_per_session`]) never makes the
    /// client a slow consumer: it is queued even over the bounds.
    fn push(&mut self, conn: ConnectionId, msg: Queued, size: usize, answer: bool) {
        let Some(queue) = self.queues.get_mut(&conn) else {
            return;
        };
        if self.overflowed.contains(&conn) {
            return;
        }
        let total = queue.total();
        let over = queue.messages.len() >= self.limit
            || (total > 0 && total.saturating_add(size) > self.limit_bytes);
        if over && !answer {
            self.overflowed.insert(conn);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if queue.messages.is_empty() && self.flagged.insert(conn) {
            self.ready.push_back(conn);
        }
        queue.bytes += size;
        queue.messages.push_back((seq, msg, size));
    }

    fn pop(&mut self, conn: ConnectionId) -> Option<(Queued, Codec)> {
        let queue = self.queues.get_mut(&conn)?;
        let (_, msg, size) = queue.messages.pop_front()?;
        queue.bytes -= size;
        Some((msg, queue.codec))
    }

    /// The connection whose first queued message was queued first (a scan
    /// over the connections: only single-threaded drivers and tests drain
    /// in global order, so the per-connection path keeps no index for it).
    fn oldest(&self) -> Option<ConnectionId> {
        self.queues
            .iter()
            .filter_map(|(conn, queue)| queue.messages.front().map(|(seq, ..)| (*seq, *conn)))
            .min()
            .map(|(_, conn)| conn)
    }

    /// Forgets everything queued for `conn` and the connection itself:
    /// nothing more is queued for it.
    fn forget(&mut self, conn: ConnectionId) {
        self.queues.remove(&conn);
        self.flagged.remove(&conn);
        self.ready.retain(|c| *c != conn);
        self.overflowed.remove(&conn);
        self.oversized.remove(&conn);
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("realms", &self.realms.keys().collect::<Vec<_>>())
            .field("connections", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .field(
                "connections_with_output",
                &self
                    .output
                    .queues
                    .values()
                    .filter(|q| !q.messages.is_empty())
                    .count(),
            )
            .field("shut_down", &self.shut_down)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router with the configured realms, anonymous authentication
    /// ([`AnonymousAuthenticator`]) and no roles (an empty
    /// [`StaticAuthorizer`]: every session may do everything). `rng` draws
    /// session and publication ids.
    pub fn new(config: RouterConfig, mut rng: Rng) -> Self {
        // Subscription and registration ids count up from a random point
        // below 2^52: large like Crossbar.io's random ids, never mistaken
        // for small numbers in a payload.
        let first_id = random_id(&mut rng) >> 1;
        let mut router = Self {
            auto_create_realms: config.auto_create_realms,
            rng,
            authenticator: Box::new(AnonymousAuthenticator),
            authorizer: Box::new(StaticAuthorizer::new()),
            realms: BTreeMap::new(),
            conns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            reserved: BTreeSet::new(),
            next_conn: 0,
            subscription_ids: IdGenerator::starting_after(first_id),
            invocation_ids: IdGenerator::new(),
            output: Output {
                queues: BTreeMap::new(),
                ready: VecDeque::new(),
                flagged: BTreeSet::new(),
                overflowed: BTreeSet::new(),
                oversized: BTreeSet::new(),
                limit: config.outbound_queue.max(1),
                limit_bytes: config.outbound_queue_bytes,
                next_seq: 0,
                scratch: Vec::new(),
            },
            events: VecDeque::new(),
            deadline_of: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            hello_timeout: config.hello_timeout,
            auth_timeout: config.auth_timeout,
            max_auth_rounds: config.max_auth_rounds.max(1),
            goodbye_timeout: config.goodbye_timeout,
            session_limits: SessionLimits {
                registrations: config.max_registrations_per_session,
                subscriptions: config.max_subscriptions_per_session,
                uri_bytes: config.max_uri_bytes_per_session,
            },
            max_pending_calls: config.max_pending_calls_per_session,
            max_retained_bytes: config.max_retained_bytes,
            max_testament_bytes: config.max_testament_bytes_per_session,
            now: None,
            shut_down: false,
        };
        for realm in &config.realms {
            router.add_realm(realm);
        }
        router
    }

    /// Replaces the authenticator (builder style).
    ///
    /// ```
    /// use fahrbahn_core::Rng;
    /// use fahrbahn_core::wamp::router::{AnonymousAuthenticator, Router, RouterConfig};
    /// let router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(1))
    ///     .with_authenticator(Box::new(AnonymousAuthenticator));
    /// ```
    #[must_use]
    pub fn with_authenticator(mut self, authenticator: Box<dyn Authenticator + Send>) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// Replaces the authenticator; sessions already joined or
    /// authenticating are not affected until their next AUTHENTICATE.
    pub fn set_authenticator(&mut self, authenticator: Box<dyn Authenticator + Send>) {
        self.authenticator = authenticator;
    }

    /// Replaces the authorizer (builder style), e.g. a
    /// [`StaticAuthorizer`] with roles.
    ///
    /// ```
    /// use fahrbahn_core::Rng;
    /// use fahrbahn_core::wamp::router::{Grants, Permission, Role, Router, RouterConfig, StaticAuthorizer, UriMatch};
    /// let mut roles = StaticAuthorizer::new();
    /// roles.add_role("realm1", "anonymous", Role::new([Permission::new("com.example.", UriMatch::Prefix, Grants::ALL)]));
    /// let router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(1))
    ///     .with_authorizer(Box::new(roles));
    /// ```
    #[must_use]
    pub fn with_authorizer(mut self, authorizer: Box<dyn Authorizer + Send>) -> Self {
        self.set_authorizer(authorizer);
        self
    }

    /// Replaces the authorizer; verdicts cached for joined sessions are
    /// dropped.
    pub fn set_authorizer(&mut self, authorizer: Box<dyn Authorizer + Send>) {
        self.authorizer = authorizer;
        for record in self.sessions.values_mut() {
            record.authz_cache.clear();
            record.authz_cache_bytes = 0;
        }
    }

    /// Adds a realm (nothing happens if it exists). Use a valid URI as the
    /// name: that is what clients put in HELLO.
    pub fn add_realm(&mut self, name: &str) {
        if !self.realms.contains_key(name) {
            log::debug!("router: realm {name:?} added");
            self.realms.insert(name.to_owned(), Realm::default());
        }
    }

    /// A transport connected: returns its id for
    /// [`handle_message`](Self::handle_message) and
    /// [`detach`](Self::detach). It must say HELLO within
    /// [`RouterConfig::hello_timeout`].
    pub fn attach(&mut self, now: Instant) -> ConnectionId {
        self.now = Some(now);
        self.next_conn += 1;
        let conn = ConnectionId(self.next_conn);
        self.conns.insert(conn, ConnState::Idle);
        self.output.queues.insert(conn, Queue::new());
        self.set_deadline(conn, Some(self.hello_timeout));
        conn
    }

    /// The transport handshake of `conn` finished with `codec`; the client
    /// accepts messages up to `max_message_size` bytes (what a RawSocket
    /// client announced; `None` for WebSocket, which announces nothing).
    ///
    /// From then on the router measures what it queues for `conn` in
    /// bytes of that codec ([`RouterConfig::outbound_queue_bytes`];
    /// JSON until this is called), and never queues a message larger
    /// than `max_message_size`: a RESULT or ERROR for a CALL becomes ERROR
    /// `wamp.error.payload_size_exceeded`, an EVENT is skipped for that
    /// subscriber, an INVOCATION is answered to its caller with that
    /// ERROR; anything else too large aborts the session with that
    /// reason. Messages for `conn` are then queued encoded, once: take
    /// them with [`poll_transmit_payload`](Self::poll_transmit_payload);
    /// an EVENT for many subscribers of one codec is encoded once and its
    /// bytes shared. Call it before the client's first message.
    pub fn handle_connected(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        codec: Codec,
        max_message_size: Option<usize>,
    ) {
        self.now = Some(now);
        if let Some(queue) = self.output.queues.get_mut(&conn) {
            queue.codec = codec;
            queue.encoded = true;
            queue.max_message_size = max_message_size;
        }
    }

    /// The serving layer holds `bytes` of `conn`'s output that it took
    /// from the router ([`poll_transmit_to`](Self::poll_transmit_to)) and
    /// has not written to the socket yet (0 once everything is written).
    /// They count against [`RouterConfig::outbound_queue_bytes`] with
    /// what is still queued here: a client that does not read cannot make
    /// the router and the serving layer together hold more.
    pub fn handle_buffered(&mut self, now: Instant, conn: ConnectionId, bytes: usize) {
        self.now = Some(now);
        if let Some(queue) = self.output.queues.get_mut(&conn) {
            queue.buffered = bytes;
        }
    }

    /// A message from the client on `conn`. Input on unknown (detached)
    /// or closed connections is ignored.
    pub fn handle_message(&mut self, now: Instant, conn: ConnectionId, mut msg: Message) {
        let (args, kwargs) = crate::wamp::raw::take_payload(&mut msg);
        self.handle_input(
            now,
            conn,
            msg,
            Body {
                args,
                kwargs,
                raw: None,
            },
        );
    }

    /// A message from the client on `conn` whose payload stays encoded
    /// ([`Codec::decode_raw`]): the router forwards the payload's bytes as
    /// they came to receivers of the sender's serializer, and transcodes
    /// them once per other serializer (shared by its receivers), never
    /// holding the payload as [`Value`]s for the former.
    pub fn handle_raw_message(&mut self, now: Instant, conn: ConnectionId, msg: RawMessage) {
        let (msg, raw) = msg.into_parts();
        self.handle_input(
            now,
            conn,
            msg,
            Body {
                args: None,
                kwargs: None,
                raw,
            },
        );
    }

    fn handle_input(&mut self, now: Instant, conn: ConnectionId, msg: Message, body: Body) {
        self.now = Some(now);
        let joined = match self.conns.get(&conn) {
            None => {
                log::debug!("router: {} from unknown {conn} ignored", msg.name());
                return;
            }
            Some(ConnState::Joined(session)) => Some(*session),
            Some(_) => None,
        };
        match joined {
            Some(session) => self.handle_session_message(conn, session, msg, body),
            None => self.handle_unjoined_message(conn, msg),
        }
        self.disconnect_slow_consumers();
    }

    /// Runs the deadlines that are due: connections without HELLO or
    /// AUTHENTICATE in time, and GOODBYE replies that did not come, are
    /// closed ([`CloseReason::Timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(&(at, conn)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.deadline_of.remove(&conn);
            self.expire(conn);
        }
        self.expire_calls(now);
        self.disconnect_slow_consumers();
    }

    /// The next deadline: when to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.deadlines.first().map(|(at, _)| *at);
        let calls = self
            .realms
            .values()
            .filter_map(|r| r.dealer.next_deadline())
            .min();
        match (conns, calls) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Revokes the registration `registration` of callee `session` (the
    /// mechanism behind the meta procedure
    /// `wamp.registration.remove_callee`): the callee stops being a callee
    /// of it (a shared registration keeps its other callees) and, if it
    /// announced `registration_revocation`, gets UNREGISTERED with
    /// `details.registration` and `details.reason` (`reason`, e.g.
    /// `"wamp.error.unregistered"`). Its pending invocations stay: it may
    /// still answer them. Returns false (and does nothing) if `session`
    /// is not a callee of that registration.
    pub fn revoke_registration(
        &mut self,
        now: Instant,
        session: SessionId,
        registration: u64,
        reason: &str,
    ) -> bool {
        self.now = Some(now);
        if !self.revoke(session.0, registration, Some(reason)) {
            return false;
        }
        self.disconnect_slow_consumers();
        true
    }

    /// Takes callee `session` off `registration` on the router's
    /// initiative ([`Router::revoke_registration`],
    /// `wamp.registration.remove_callee`): UNREGISTERED to it if it
    /// announced `registration_revocation`, then `on_unregister` (and
    /// `on_delete` with the last callee). Its pending invocations stay.
    pub(super) fn revoke(&mut self, session: u64, registration: u64, reason: Option<&str>) -> bool {
        let Some(record) = self.sessions.get(&session) else {
            return false;
        };
        if !record.registrations.contains(&registration) {
            return false;
        }
        let Some(realm) = self.realms.get_mut(&record.realm) else {
            return false;
        };
        let len = realm.dealer.procedure(registration).map_or(0, str::len);
        let is_callee = realm
            .dealer
            .registration(registration)
            .is_some_and(|r| r.callees.iter().any(|c| c.session == session));
        if !is_callee {
            return false;
        }
        let realm_name = record.realm.clone();
        self.forget_registration(session, registration, len, reason);
        // Takes it off the dealer, with on_unregister (and on_delete).
        self.drop_callee(&realm_name, session, registration);
        true
    }

    /// The transport of `conn` dropped: its session (if any) leaves, as if
    /// it had been aborted, and messages still queued for it are
    /// discarded.
    pub fn detach(&mut self, conn: ConnectionId) {
        self.set_deadline(conn, None);
        match self.conns.remove(&conn) {
            Some(ConnState::Joined(session)) => self.end_session(session),
            Some(ConnState::Authenticating(pending)) => {
                self.reserved.remove(&pending.session);
            }
            Some(_) => {}
            None => return,
        }
        self.output.forget(conn);
        self.events
            .retain(|e| !matches!(e, RouterEvent::CloseTransport { conn: c, .. } if *c == conn));
        self.disconnect_slow_consumers();
    }

    /// Ends every session with GOODBYE `wamp.close.system_shutdown`
    /// (`message` goes into the details); connections without a session
    /// are aborted or closed. Later HELLOs are refused with ABORT
    /// `wamp.close.system_shutdown`. Each joined session's transport gets
    /// [`RouterEvent::CloseTransport`] when the client answers the
    /// GOODBYE, or after [`RouterConfig::goodbye_timeout`].
    pub fn shutdown(&mut self, now: Instant, message: &str) {
        self.now = Some(now);
        self.shut_down = true;
        let conns: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.shutdown_conn(conn, message);
        }
        self.disconnect_slow_consumers();
    }

    /// The next message to deliver, with its connection, in the order the
    /// router queued them over all connections (for single-threaded
    /// drivers and tests; a task per connection uses
    /// [`poll_transmit_to`](Self::poll_transmit_to)).
    pub fn poll_outgoing(&mut self) -> Option<(ConnectionId, Message)> {
        let conn = self.output.oldest()?;
        self.poll_transmit_to(conn).map(|msg| (conn, msg))
    }

    /// The next message to deliver on `conn`, in order. A message queued
    /// encoded (after [`handle_connected`](Self::handle_connected)) is
    /// decoded again: a serving layer that sends bytes takes
    /// [`poll_transmit_payload`](Self::poll_transmit_payload) instead.
    pub fn poll_transmit_to(&mut self, conn: ConnectionId) -> Option<Message> {
        match self.output.pop(conn)? {
            (Queued::Message(msg), _) => Some(msg),
            (Queued::Encoded(payload), codec) => {
                let mut messages = codec
                    .decode(&payload)
                    .expect("the router decodes what it encoded");
                assert_eq!(messages.len(), 1, "one message per queued payload");
                messages.pop()
            }
        }
    }

    /// The next message to deliver on `conn`, encoded with the
    /// connection's codec ([`handle_connected`](Self::handle_connected);
    /// JSON before it): frame it with
    /// [`ServerConnection::send_payload`](crate::wamp::ServerConnection::send_payload).
    /// The bytes may be shared with other connections that get the same
    /// message.
    pub fn poll_transmit_payload(&mut self, conn: ConnectionId) -> Option<Payload> {
        match self.output.pop(conn)? {
            (Queued::Encoded(payload), _) => Some(payload),
            (Queued::Message(msg), codec) => {
                let mut out = Vec::new();
                codec.encode(&msg, &mut out);
                Some(out.into())
            }
        }
    }

    /// A connection whose queue became non-empty since it was last
    /// reported: wake whoever delivers its messages. Each connection is
    /// reported once until this returns it.
    pub fn poll_ready(&mut self) -> Option<ConnectionId> {
        let conn = self.output.ready.pop_front()?;
        self.output.flagged.remove(&conn);
        Some(conn)
    }

    /// Messages queued for `conn` and not yet taken.
    pub fn queued(&self, conn: ConnectionId) -> usize {
        self.output
            .queues
            .get(&conn)
            .map_or(0, |q| q.messages.len())
    }

    /// Bytes held for `conn`: the encoded size of the messages queued for
    /// it here, plus what the serving layer reported it still buffers
    /// ([`handle_buffered`](Self::handle_buffered)). This is what
    /// [`RouterConfig::outbound_queue_bytes`] bounds.
    pub fn queued_bytes(&self, conn: ConnectionId) -> usize {
        self.output.queues.get(&conn).map_or(0, Queue::total)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RouterEvent> {
        self.events.pop_front()
    }

    /// Joined sessions, over all realms.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Attached connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The session joined on `conn`, if any.
    pub fn session_of(&self, conn: ConnectionId) -> Option<SessionId> {
        match self.conns.get(&conn) {
            Some(ConnState::Joined(s)) => Some(SessionId(*s)),
            _ => None,
        }
    }

    /// The realm names, sorted.
    pub fn realms(&self) -> impl Iterator<Item = &str> + '_ {
        self.realms.keys().map(String::as_str)
    }

    /// Counters of `realm`, or `None` if it does not exist.
    pub fn realm_stats(&self, realm: &str) -> Option<RealmStats> {
        self.realms.get(realm).map(|r| RealmStats {
            sessions: r.sessions.len(),
            subscriptions: r.broker.len(),
            registrations: r.dealer.registration_count(),
            pending_calls: r.dealer.pending_count(),
        })
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    // ----- helpers shared by the handler modules --------------------------

    fn send(&mut self, conn: ConnectionId, msg: Message) {
        self.send_routed(conn, msg.into(), false);
    }

    /// Queues `msg` for `conn` (`answer`: see [`Output::push`]).
    fn send_routed(&mut self, conn: ConnectionId, msg: Routed, answer: bool) {
        if let Some(prepared) = self.output.prepare(conn, &msg, &mut EncodeCache::default()) {
            self.send_measured(conn, msg, prepared, answer);
        }
    }

    /// Queues `msg` for `conn`, sharing its payload with the connections
    /// of the same codec that got it through `cache` (one fan-out): the
    /// message itself is built whole only for a connection whose messages
    /// are queued as built.
    fn send_shared(&mut self, conn: ConnectionId, msg: &Routed, cache: &mut EncodeCache) {
        let Some(prepared) = self.output.prepare(conn, msg, cache) else {
            return;
        };
        if !self.output.fits(conn, prepared.size) {
            return self.too_large(conn, &msg.msg, prepared.size);
        }
        let size = prepared.size;
        log::trace!("router: {} ({size} bytes) to {conn}", msg.msg.name());
        let queued = match prepared.payload {
            Some(payload) => Queued::Encoded(payload),
            None => Queued::Message(msg.to_message()),
        };
        self.output.push(conn, queued, size, false);
    }

    /// Queues the ERROR that ends one of the client's own pending calls:
    /// never counted against it as a slow consumer (see
    /// [`Output::push`]).
    fn send_call_answer(&mut self, conn: ConnectionId, msg: Routed) {
        self.send_routed(conn, msg, true);
    }

    /// The encoded size of `msg` for `conn`, and whether the client
    /// accepts a message that large.
    fn measure(&mut self, conn: ConnectionId, msg: &Routed) -> (Prepared, bool) {
        let prepared = self
            .output
            .prepare(conn, msg, &mut EncodeCache::default())
            .unwrap_or(Prepared {
                payload: None,
                size: 0,
            });
        let fits = self.output.fits(conn, prepared.size);
        (prepared, fits)
    }

    /// Queues `msg` of `size` encoded bytes; one too large for the client
    /// is replaced or dropped ([`too_large`](Self::too_large)).
    fn send_measured(&mut self, conn: ConnectionId, msg: Routed, prepared: Prepared, answer: bool) {
        let size = prepared.size;
        if !self.output.fits(conn, size) {
            return self.too_large(conn, &msg.msg, size);
        }
        log::trace!("router: {} ({size} bytes) to {conn}", msg.msg.name());
        let queued = match prepared.payload {
            Some(payload) => Queued::Encoded(payload),
            None => Queued::Message(match msg.raw {
                None => msg.msg,
                Some(_) => msg.to_message(),
            }),
        };
        self.output.push(conn, queued, size, answer);
    }

    /// `msg` is larger than the client on `conn` accepts. Nothing may
    /// wait for it forever: an answer to a request (RESULT, ERROR) becomes
    /// ERROR `wamp.error.payload_size_exceeded` for the same request; an
    /// EVENT is skipped for this subscriber; anything else aborts the
    /// session (once the current input is handled).
    fn too_large(&mut self, conn: ConnectionId, msg: &Message, size: usize) {
        let max = self
            .output
            .queues
            .get(&conn)
            .and_then(|q| q.max_message_size)
            .unwrap_or(usize::MAX);
        let (request_type, request) = match msg {
            Message::Result { request, .. } => (Message::CALL, *request),
            Message::Error {
                request_type,
                request,
                error,
                ..
            } if error != ERROR_PAYLOAD_SIZE_EXCEEDED => (*request_type, *request),
            Message::Event {
                subscription,
                publication,
                ..
            } => {
                log::warn!(
                    "router: EVENT of publication {publication} (subscription {subscription}) skipped for {conn}: {size} bytes, the client accepts {max}"
                );
                return;
            }
            Message::Abort { .. } | Message::Error { .. } => {
                log::warn!(
                    "router: {} ({size} bytes) for {conn} dropped: the client accepts {max}",
                    msg.name()
                );
                return;
            }
            _ => {
                log::warn!(
                    "router: {} ({size} bytes) for {conn} is larger than the client accepts ({max}): aborting its session",
                    msg.name()
                );
                self.output.oversized.insert(conn);
                return;
            }
        };
        log::warn!(
            "router: {} for request {request} ({size} bytes) to {conn} replaced by ERROR {ERROR_PAYLOAD_SIZE_EXCEEDED}: the client accepts {max} bytes",
            msg.name()
        );
        let error = Message::Error {
            request_type,
            request,
            details: Dict::new(),
            error: ERROR_PAYLOAD_SIZE_EXCEEDED.to_owned(),
            args: Some(vec![Value::String(format!(
                "the {} is {size} bytes; this client's transport accepts at most {max}",
                msg.name()
            ))]),
            kwargs: None,
        };
        self.send_call_answer(conn, error.into());
    }

    /// Asks the serving layer to close `conn`.
    fn close_transport(&mut self, conn: ConnectionId, reason: CloseReason) {
        self.set_deadline(conn, None);
        self.events
            .push_back(RouterEvent::CloseTransport { conn, reason });
    }

    /// Sets (`Some(after)`: now + after) or clears the deadline of `conn`.
    fn set_deadline(&mut self, conn: ConnectionId, after: Option<Duration>) {
        let at = after.and_then(|after| self.now.map(|now| now + after));
        self.set_deadline_at(conn, at);
    }

    /// Sets (`Some(at)`) or clears the deadline of `conn`.
    fn set_deadline_at(&mut self, conn: ConnectionId, at: Option<Instant>) {
        if let Some(at) = self.deadline_of.remove(&conn) {
            self.deadlines.remove(&(at, conn));
        }
        if let Some(at) = at {
            self.deadline_of.insert(conn, at);
            self.deadlines.insert((at, conn));
        }
    }

    /// Asks the authorizer whether `session` may perform `action` on
    /// `uri` (through the session's cache when the authorizer is
    /// cacheable). `None` when the session is gone.
    fn authorize(
        &mut self,
        session: u64,
        action: Action,
        uri: &str,
        options: &Dict,
    ) -> Option<Authorization> {
        let record = self.sessions.get_mut(&session)?;
        let cacheable = self.authorizer.cacheable();
        let policy =
            matching::MatchPolicy::from_options(options).unwrap_or(matching::MatchPolicy::Exact);
        if cacheable {
            if let Some(v) = record.authz_cache.get(&(action, policy, uri.to_owned())) {
                return Some(*v);
            }
        }
        let verdict = self.authorizer.authorize(&AuthorizeContext {
            session: SessionId(session),
            realm: &record.realm,
            authid: &record.authid,
            authrole: &record.authrole,
            authmethod: &record.authmethod,
            action,
            uri,
            options,
        });
        if cacheable {
            let cost = uri.len() + AUTHZ_CACHE_ENTRY_OVERHEAD;
            if record.authz_cache_bytes + cost > AUTHZ_CACHE_BYTES {
                record.authz_cache.clear();
                record.authz_cache_bytes = 0;
            }
            record.authz_cache_bytes += cost;
            record
                .authz_cache
                .insert((action, policy, uri.to_owned()), verdict);
        }
        if !verdict.is_allowed() {
            log::debug!(
                "router: session {session} (authrole {:?}) may not {action} {uri:?}",
                record.authrole
            );
        }
        Some(verdict)
    }

    /// Disconnects the connections whose queue overflowed while the last
    /// input was handled: their queue is dropped, their session leaves.
    /// Connections that were to get a message too large for them are
    /// aborted the same way.
    fn disconnect_slow_consumers(&mut self) {
        loop {
            if let Some(conn) = self.output.oversized.pop_first() {
                self.abort_oversized(conn);
                continue;
            }
            let Some(conn) = self.output.overflowed.pop_first() else {
                return;
            };
            let (bytes, messages) = self
                .output
                .queues
                .get(&conn)
                .map_or((0, 0), |q| (q.total(), q.messages.len()));
            let session = match self.conns.get(&conn) {
                Some(ConnState::Joined(s)) => format!("session {s}"),
                _ => "no session".to_owned(),
            };
            log::warn!(
                "router: {conn} ({session}) does not keep up with its messages: {bytes} bytes in {messages} messages held, bounds {} bytes / {} messages: disconnecting it as a slow consumer",
                self.output.limit_bytes,
                self.output.limit
            );
            // Drop its queue; without one, nothing more is queued for it.
            // Its session's end may queue messages for others (and
            // overflow them in turn: the loop takes those too).
            self.output.forget(conn);
            match self.conns.insert(conn, ConnState::Closed) {
                Some(ConnState::Joined(session)) => self.end_session(session),
                Some(ConnState::Authenticating(pending)) => {
                    self.reserved.remove(&pending.session);
                }
                _ => {}
            }
            self.close_transport(conn, CloseReason::SlowConsumer);
        }
    }

    /// Aborts the session of `conn` with `wamp.error.payload_size_exceeded`:
    /// it was to get a message larger than it accepts, with no smaller
    /// answer in its place.
    fn abort_oversized(&mut self, conn: ConnectionId) {
        match self.conns.insert(conn, ConnState::Closed) {
            Some(ConnState::Joined(session)) => self.end_session(session),
            Some(ConnState::Authenticating(pending)) => {
                self.reserved.remove(&pending.session);
            }
            Some(ConnState::Closed) => return,
            Some(_) => {}
            None => {
                self.conns.remove(&conn);
                return;
            }
        }
        let mut details = Dict::new();
        details.insert(
            "message".into(),
            "a message for this client is larger than its transport accepts".into(),
        );
        self.send(
            conn,
            Message::Abort {
                details,
                reason: ERROR_PAYLOAD_SIZE_EXCEEDED.to_owned(),
            },
        );
        self.close_transport(conn, CloseReason::Aborted);
    }

    fn send_to_session(&mut self, session: u64, msg: Message) {
        if let Some(conn) = self.sessions.get(&session).map(|s| s.conn) {
            self.send(conn, msg);
        }
    }

    fn error_reply(
        &mut self,
        conn: ConnectionId,
        request_type: u64,
        request: u64,
        error: &str,
        message: impl Into<String>,
    ) {
        self.send(
            conn,
            Message::Error {
                request_type,
                request,
                details: Dict::new(),
                error: error.to_owned(),
                args: Some(vec![Value::String(message.into())]),
                kwargs: None,
            },
        );
    }
}

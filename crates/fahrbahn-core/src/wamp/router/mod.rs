//! An embedded WAMP v2 router (broker and dealer) as a sans-IO state
//! machine over many sessions.
//!
//! It follows the core's sans-IO contract: inputs take the time (`now`),
//! outputs are polled, and [`poll_timeout`](Router::poll_timeout) says when
//! to call [`handle_timeout`](Router::handle_timeout).
//!
//! The serving layer [`attach`](Router::attach)es each transport that
//! connects, feeds every decoded client message to
//! [`handle_message`](Router::handle_message), and delivers each
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
//! deterministically: a client that sends no HELLO (or no AUTHENTICATE)
//! within [`RouterConfig::hello_timeout`] is disconnected; a client whose
//! queue of undelivered messages exceeds [`RouterConfig::outbound_queue`]
//! is disconnected as a slow consumer (its session leaves, its queue is
//! dropped, the other sessions do not notice); after
//! [`shutdown`](Router::shutdown) a client that does not answer GOODBYE
//! within [`RouterConfig::goodbye_timeout`] is disconnected.
//!
//! What the router implements (and announces in WELCOME, see
//! [`router_roles`]):
//! - sessions: HELLO/WELCOME with an [`Authenticator`] hook
//!   (CHALLENGE/AUTHENTICATE), GOODBYE both ways (a session may join again
//!   on the same connection after a GOODBYE exchange), ABORT;
//! - broker: exact, prefix and wildcard subscriptions (one subscription id
//!   per (topic, match) and realm), `exclude_me` (default true),
//!   `exclude`/`eligible` (session ids), `exclude_authid`/`eligible_authid`,
//!   `exclude_authrole`/`eligible_authrole`, `disclose_me`, `acknowledge`;
//! - dealer: exact, prefix and wildcard registrations (single callee per
//!   procedure), `disclose_me`, progressive call results, call canceling
//!   (`skip`, `kill`, `killnowait`).
//!
//! Not implemented: shared registrations, call timeouts, the session and
//! registration/subscription meta APIs, authorization of individual
//! actions.
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
mod broker;
mod dealer;
mod handlers;
mod lifecycle;
mod matching;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

pub use auth::{
    AnonymousAuthenticator, AuthDecision, AuthenticateContext, Authenticator, HelloContext,
};

use crate::Rng;
use crate::wamp::session::feature_set;
use crate::wamp::{Dict, IdGenerator, Message, SessionId, Value};
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
    /// [`Router::attach`] (or a finished GOODBYE) to HELLO, and from each
    /// CHALLENGE to AUTHENTICATE (default 10 s). Then it is closed.
    pub hello_timeout: Duration,
    /// How long a client may take to answer the router's GOODBYE after
    /// [`Router::shutdown`] (default 2 s). Then it is closed.
    pub goodbye_timeout: Duration,
    /// Messages queued for one connection and not yet taken by the serving
    /// layer, at most (default 4096). A client that falls further behind is
    /// disconnected as a slow consumer.
    pub outbound_queue: usize,
    /// Calls one session may have waiting for their answer, at most
    /// (default 1000). A CALL beyond it is answered with ERROR
    /// `wamp.error.not_authorized` (the reason in `args[0]`) and the
    /// session stays up. This also bounds the burst of ERRORs a caller
    /// gets when its callee leaves.
    pub max_pending_calls_per_session: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            realms: Vec::new(),
            auto_create_realms: false,
            hello_timeout: Duration::from_secs(10),
            goodbye_timeout: Duration::from_secs(2),
            outbound_queue: 4096,
            max_pending_calls_per_session: 1000,
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
    /// ([`RouterConfig::outbound_queue`]); its queue was dropped.
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
            CloseReason::SlowConsumer => "slow consumer: too many undelivered messages",
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
        ]),
    );
    roles.insert(
        "dealer".into(),
        feature_set(&[
            "caller_identification",
            "progressive_call_results",
            "call_canceling",
            "pattern_based_registration",
        ]),
    );
    roles
}

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
    /// The client's announced roles (HELLO details.roles).
    roles: Dict,
    subscriptions: BTreeSet<u64>,
    registrations: BTreeSet<u64>,
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
}

/// The embedded WAMP router: sessions, broker and dealer over many
/// connections, without I/O. See the [module documentation](self).
pub struct Router {
    auto_create_realms: bool,
    rng: Rng,
    authenticator: Box<dyn Authenticator + Send>,
    realms: BTreeMap<String, Realm>,
    conns: BTreeMap<ConnectionId, ConnState>,
    sessions: BTreeMap<u64, SessionRecord>,
    /// Session ids handed to authenticating clients.
    reserved: BTreeSet<u64>,
    next_conn: u64,
    subscription_ids: IdGenerator,
    registration_ids: IdGenerator,
    invocation_ids: IdGenerator,
    output: Output,
    events: VecDeque<RouterEvent>,
    /// Per connection, when it must have made progress (HELLO,
    /// AUTHENTICATE, GOODBYE reply), and the same ordered by time.
    deadline_of: BTreeMap<ConnectionId, Instant>,
    deadlines: BTreeSet<(Instant, ConnectionId)>,
    hello_timeout: Duration,
    goodbye_timeout: Duration,
    max_pending_calls: usize,
    /// The time of the input being handled (`None` before the first).
    now: Option<Instant>,
    shut_down: bool,
}

/// The messages queued per connection, in order, with a global sequence
/// so they can also be drained in the order they were queued.
#[derive(Debug)]
struct Output {
    queues: BTreeMap<ConnectionId, VecDeque<(u64, Message)>>,
    /// Connections whose queue became non-empty, not yet reported by
    /// [`Router::poll_ready`]; `flagged` holds the same set.
    ready: VecDeque<ConnectionId>,
    flagged: BTreeSet<ConnectionId>,
    /// Connections over the queue bound, to disconnect once the current
    /// input is handled.
    overflowed: BTreeSet<ConnectionId>,
    limit: usize,
    next_seq: u64,
}

impl Output {
    /// Queues `msg` for `conn`. An `answer` (ERROR for the client's own
    /// pending calls, bounded by
    /// [`RouterConfig::max_pending_calls_per_session`]) never makes the
    /// client a slow consumer: it is queued even over the bound.
    fn push(&mut self, conn: ConnectionId, msg: Message, answer: bool) {
        let Some(queue) = self.queues.get_mut(&conn) else {
            return;
        };
        if self.overflowed.contains(&conn) {
            return;
        }
        if !answer && queue.len() >= self.limit {
            self.overflowed.insert(conn);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if queue.is_empty() && self.flagged.insert(conn) {
            self.ready.push_back(conn);
        }
        queue.push_back((seq, msg));
    }

    fn pop(&mut self, conn: ConnectionId) -> Option<Message> {
        let (_, msg) = self.queues.get_mut(&conn)?.pop_front()?;
        Some(msg)
    }

    /// The connection whose first queued message was queued first (a scan
    /// over the connections: only single-threaded drivers and tests drain
    /// in global order, so the per-connection path keeps no index for it).
    fn oldest(&self) -> Option<ConnectionId> {
        self.queues
            .iter()
            .filter_map(|(conn, queue)| queue.front().map(|(seq, _)| (*seq, *conn)))
            .min()
            .map(|(_, conn)| conn)
    }

    /// Drops everything queued for `conn`; `forget` also forgets the
    /// connection.
    fn clear(&mut self, conn: ConnectionId, forget: bool) {
        if forget {
            self.queues.remove(&conn);
        } else if let Some(queue) = self.queues.get_mut(&conn) {
            queue.clear();
        }
        if forget {
            self.flagged.remove(&conn);
            self.ready.retain(|c| *c != conn);
            self.overflowed.remove(&conn);
        }
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
                    .filter(|q| !q.is_empty())
                    .count(),
            )
            .field("shut_down", &self.shut_down)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router with the configured realms and anonymous authentication
    /// ([`AnonymousAuthenticator`]). `rng` draws session and publication
    /// ids.
    pub fn new(config: RouterConfig, rng: Rng) -> Self {
        let mut router = Self {
            auto_create_realms: config.auto_create_realms,
            rng,
            authenticator: Box::new(AnonymousAuthenticator),
            realms: BTreeMap::new(),
            conns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            reserved: BTreeSet::new(),
            next_conn: 0,
            subscription_ids: IdGenerator::new(),
            registration_ids: IdGenerator::new(),
            invocation_ids: IdGenerator::new(),
            output: Output {
                queues: BTreeMap::new(),
                ready: VecDeque::new(),
                flagged: BTreeSet::new(),
                overflowed: BTreeSet::new(),
                limit: config.outbound_queue.max(1),
                next_seq: 0,
            },
            events: VecDeque::new(),
            deadline_of: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            hello_timeout: config.hello_timeout,
            goodbye_timeout: config.goodbye_timeout,
            max_pending_calls: config.max_pending_calls_per_session,
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
        self.output.queues.insert(conn, VecDeque::new());
        self.set_deadline(conn, Some(self.hello_timeout));
        conn
    }

    /// A message from the client on `conn`. Input on unknown (detached)
    /// or closed connections is ignored.
    pub fn handle_message(&mut self, now: Instant, conn: ConnectionId, msg: Message) {
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
            Some(session) => self.handle_session_message(conn, session, msg),
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
        self.disconnect_slow_consumers();
    }

    /// The next deadline: when to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
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
        self.output.clear(conn, true);
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
        self.output.pop(conn).map(|msg| (conn, msg))
    }

    /// The next message to deliver on `conn`, in order.
    pub fn poll_transmit_to(&mut self, conn: ConnectionId) -> Option<Message> {
        self.output.pop(conn)
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
        self.output.queues.get(&conn).map_or(0, VecDeque::len)
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
        log::trace!("router: {} to {conn}", msg.name());
        self.output.push(conn, msg, false);
    }

    /// Queues the ERROR that ends one of the client's own pending calls:
    /// never counted against it as a slow consumer (see
    /// [`Output::push`]).
    fn send_call_answer(&mut self, conn: ConnectionId, msg: Message) {
        log::trace!("router: {} to {conn}", msg.name());
        self.output.push(conn, msg, true);
    }

    /// Asks the serving layer to close `conn`.
    fn close_transport(&mut self, conn: ConnectionId, reason: CloseReason) {
        self.set_deadline(conn, None);
        self.events
            .push_back(RouterEvent::CloseTransport { conn, reason });
    }

    /// Sets (`Some(after)`: now + after) or clears the deadline of `conn`.
    fn set_deadline(&mut self, conn: ConnectionId, after: Option<Duration>) {
        if let Some(at) = self.deadline_of.remove(&conn) {
            self.deadlines.remove(&(at, conn));
        }
        if let (Some(after), Some(now)) = (after, self.now) {
            let at = now + after;
            self.deadline_of.insert(conn, at);
            self.deadlines.insert((at, conn));
        }
    }

    /// Disconnects the connections whose queue overflowed while the last
    /// input was handled: their queue is dropped, their session leaves.
    fn disconnect_slow_consumers(&mut self) {
        while let Some(conn) = self.output.overflowed.pop_first() {
            log::warn!(
                "router: {conn} does not keep up with its messages (more than {} queued): disconnecting it",
                self.output.limit
            );
            // Drop its queue; without one, nothing more is queued for it.
            // Its session's end may queue messages for others (and
            // overflow them in turn: the loop takes those too).
            self.output.clear(conn, false);
            self.output.queues.remove(&conn);
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

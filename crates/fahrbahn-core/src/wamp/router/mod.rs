//! An embedded WAMP v2 router (broker and dealer) as a sans-IO state
//! machine over many sessions.
//!
//! The serving layer [`attach`](Router::attach)es each transport that
//! connects, feeds every decoded client message to
//! [`handle_message`](Router::handle_message), delivers what
//! [`poll_outgoing`](Router::poll_outgoing) returns (in order), and reacts
//! to [`poll_event`](Router::poll_event) — in particular
//! [`RouterEvent::CloseTransport`]: close that transport once its queued
//! messages are flushed. When a transport drops, call
//! [`detach`](Router::detach).
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
//! use fahrbahn_core::Rng;
//! use fahrbahn_core::wamp::router::{Router, RouterConfig, RouterEvent};
//! use fahrbahn_core::wamp::{Dict, Message, client_roles};
//!
//! let mut router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(1));
//! let conn = router.attach();
//! let mut details = Dict::new();
//! details.insert("roles".into(), client_roles().into());
//! router.handle_message(conn, Message::Hello { realm: "realm1".into(), details });
//! let Some((to, Message::Welcome { session, .. })) = router.poll_outgoing() else { panic!() };
//! assert_eq!(to, conn);
//! assert!(matches!(router.poll_event(), Some(RouterEvent::Joined { session: s, .. }) if s == session));
//!
//! // Nobody registered this procedure.
//! router.handle_message(conn, Message::Call {
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
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

pub use auth::{
    AnonymousAuthenticator, AuthDecision, AuthenticateContext, Authenticator, HelloContext,
};

use crate::Rng;
use crate::wamp::session::feature_set;
use crate::wamp::{Dict, IdGenerator, Message, Value};
use broker::Broker;
use dealer::Dealer;

/// Settings of a [`Router`].
///
/// ```
/// use fahrbahn_core::wamp::router::RouterConfig;
/// let config = RouterConfig::with_realm("realm1");
/// assert_eq!(config.realms, ["realm1"]);
/// assert!(!config.auto_create_realms);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RouterConfig {
    /// The realms that exist from the start.
    pub realms: Vec<String>,
    /// Create a realm when a HELLO names one that does not exist (its name
    /// must be a valid URI), instead of answering
    /// `wamp.error.no_such_realm`.
    pub auto_create_realms: bool,
}

impl RouterConfig {
    /// A configuration with one realm.
    pub fn with_realm(realm: impl Into<String>) -> Self {
        Self {
            realms: vec![realm.into()],
            auto_create_realms: false,
        }
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
        session: u64,
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
        session: u64,
    },
    /// Close this transport once the messages queued for it are
    /// delivered: an ABORT was sent or received, or a router-initiated
    /// GOODBYE was answered. Further input on it is ignored.
    CloseTransport {
        /// The connection.
        conn: ConnectionId,
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
    outgoing: VecDeque<(ConnectionId, Message)>,
    events: VecDeque<RouterEvent>,
    shut_down: bool,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("realms", &self.realms.keys().collect::<Vec<_>>())
            .field("connections", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .field("outgoing", &self.outgoing.len())
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
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
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
    /// [`detach`](Self::detach).
    pub fn attach(&mut self) -> ConnectionId {
        self.next_conn += 1;
        let conn = ConnectionId(self.next_conn);
        self.conns.insert(conn, ConnState::Idle);
        conn
    }

    /// A message from the client on `conn`. Input on unknown (detached)
    /// or closed connections is ignored.
    pub fn handle_message(&mut self, conn: ConnectionId, msg: Message) {
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
    }

    /// The transport of `conn` dropped: its session (if any) leaves, as if
    /// it had been aborted, and messages still queued for it are
    /// discarded.
    pub fn detach(&mut self, conn: ConnectionId) {
        match self.conns.remove(&conn) {
            Some(ConnState::Joined(session)) => self.end_session(session),
            Some(ConnState::Authenticating(pending)) => {
                self.reserved.remove(&pending.session);
            }
            Some(_) => {}
            None => return,
        }
        self.outgoing.retain(|(c, _)| *c != conn);
        self.events
            .retain(|e| !matches!(e, RouterEvent::CloseTransport { conn: c } if *c == conn));
    }

    /// Ends every session with GOODBYE `wamp.close.system_shutdown`
    /// (`message` goes into the details); connections without a session
    /// are aborted or closed. Later HELLOs are refused with ABORT
    /// `wamp.close.system_shutdown`. Each joined session's transport gets
    /// [`RouterEvent::CloseTransport`] when the client answers the
    /// GOODBYE.
    pub fn shutdown(&mut self, message: &str) {
        self.shut_down = true;
        let conns: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.shutdown_conn(conn, message);
        }
    }

    /// The next message to deliver, with its connection. Per connection,
    /// messages come in the order they must be sent.
    pub fn poll_outgoing(&mut self) -> Option<(ConnectionId, Message)> {
        self.outgoing.pop_front()
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
    pub fn session_of(&self, conn: ConnectionId) -> Option<u64> {
        match self.conns.get(&conn) {
            Some(ConnState::Joined(s)) => Some(*s),
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
        self.outgoing.push_back((conn, msg));
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

//! Serving the embedded WAMP router: listeners on TCP and Unix sockets,
//! WebSocket and RawSocket transports, one task per connection, and the
//! sans-IO router core shared under one lock.
//!
//! This layer only moves bytes, arms timers and spawns tasks. Every
//! protocol decision is the core's
//! ([`fahrbahn_core::wamp::router::Router`]): when a client without HELLO
//! is closed, when a slow consumer is disconnected, how long shutdown waits
//! for GOODBYE replies.
//!
//! Outbound flow: a connection's task takes messages from the core's
//! per-connection queue only while its socket accepts bytes, and reports
//! to the core what it took and has not written yet. A client that does
//! not read lets its queue grow in the core until
//! [`RouterLimits::outbound_queue_bytes`] (queued plus buffered) or
//! [`RouterLimits::outbound_queue`]; then the core disconnects it (its
//! queue dropped, its session detached so its pending calls fail) — one slow
//! or flooding client never makes the router buffer without bound or stall
//! the others. After the transport handshake the task tells the core the
//! connection's codec and the largest message the client accepts, so the
//! core measures in bytes and never queues a message the client cannot
//! take.

mod auth;
mod config;
mod serve;
mod tls;

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use fahrbahn_core::wamp::router::{
    AnonymousAuthenticator, Authenticator, CloseReason, ConnectionId, Router as CoreRouter,
    RouterConfig as CoreConfig, RouterEvent,
};

pub use auth::{
    ANONYMOUS_ROLE, AUTH_METHODS, CryptosignConfig, PrincipalConfig, ScramConfig,
    TlsPrincipalConfig, WampCraConfig, resolve_secret,
};
pub use config::{
    AllowConfig, DiscloseConfig, ListenerConfig, MatchConfig, PermissionConfig, RoleConfig,
    RouterBuilder, RouterConfig, RouterLimits, TlsFiles, TransportKind,
};
pub use tls::certificate_fingerprint;

use fahrbahn_core::ws::AllowedOrigins;

use crate::error::{ConfigError, Error};
use crate::runtime::{AnyListener, AsyncTimer, BoxTransport, ExecutorHandle, Runtime};

/// What the serving layer keeps per connection.
#[derive(Default)]
struct Slot {
    /// The connection task's waker.
    waker: Option<Waker>,
    /// The core asked to close the transport.
    close: Option<CloseReason>,
    /// The core has forgotten the connection; its transport is closing.
    detached: bool,
}

impl Slot {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The router core and who to wake when it has something for them.
struct Core {
    router: CoreRouter,
    slots: HashMap<ConnectionId, Slot>,
    /// The timer task's waker, and the deadline it is armed for.
    timer_waker: Option<Waker>,
    armed: Option<Instant>,
    /// Woken when the last connection is gone.
    empty_waiters: Vec<Waker>,
}

impl Core {
    /// Wakes the connections the core queued messages or events for, and
    /// the timer task when the next deadline moved.
    fn route(&mut self) {
        while let Some(conn) = self.router.poll_ready() {
            if let Some(slot) = self.slots.get_mut(&conn) {
                slot.wake();
            }
        }
        while let Some(event) = self.router.poll_event() {
            if let RouterEvent::CloseTransport { conn, reason } = event {
                if let Some(slot) = self.slots.get_mut(&conn) {
                    log::debug!("closing {conn}: {reason}");
                    slot.close = Some(reason);
                    slot.wake();
                }
            }
        }
        if self.router.poll_timeout() != self.armed {
            if let Some(w) = self.timer_waker.take() {
                w.wake();
            }
        }
    }

    /// The connection's machine has ended: its session (if any) leaves at
    /// once, while the transport may still be closing.
    fn detach(&mut self, conn: ConnectionId) {
        if let Some(slot) = self.slots.get_mut(&conn) {
            if !slot.detached {
                slot.detached = true;
                self.router.detach(conn);
                self.route();
            }
        }
    }

    /// Forgets a connection whose transport has been closed.
    fn remove(&mut self, conn: ConnectionId) {
        self.detach(conn);
        self.slots.remove(&conn);
        if self.slots.is_empty() {
            for w in self.empty_waiters.drain(..) {
                w.wake();
            }
        }
    }
}

/// Stops the accept loops.
struct Stop {
    stopped: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Stop {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for w in self
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            w.wake();
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Registers `waker` to be woken by [`stop`](Self::stop), once.
    fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }
}

struct Shared {
    core: Mutex<Core>,
    stop: Stop,
    limits: RouterLimits,
    /// Transports accepted and not yet finished (bounded by
    /// [`RouterLimits::max_connections`]).
    connections: AtomicUsize,
    /// Whether a connection was refused since the count was last below the
    /// bound (to log the first refusal as a warning, the rest quietly).
    at_connection_bound: AtomicBool,
    exec: ExecutorHandle,
    /// The methods each connection's listener accepts (when it says).
    listener_methods: auth::ListenerMethods,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A timer future at `deadline` on the runtime's clock.
    async fn sleep_until(&self, deadline: Instant) {
        let mut timer = self.exec.new_timer(deadline);
        poll_fn(|cx| timer.as_mut().poll(cx)).await;
    }
}

/// Where a running listener is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// Its transport.
    pub transport: TransportKind,
    /// `127.0.0.1:8080` or a Unix socket path.
    pub address: String,
    /// Whether it is a Unix socket.
    pub unix: bool,
    /// Whether it serves TLS.
    pub tls: bool,
}

impl ListenerInfo {
    /// A URL clients can connect to (`ws://…/ws`, `rs://…`, `unix:…`).
    pub fn url(&self) -> String {
        let s = if self.tls { "s" } else { "" };
        match (self.unix, self.transport) {
            (true, _) => format!("unix:{}", self.address),
            (false, TransportKind::WebSocket) => format!("ws{s}://{}/ws", self.address),
            (false, TransportKind::RawSocket) => format!("rs{s}://{}", self.address),
        }
    }
}

/// A running embedded WAMP router.
pub struct Router {
    shared: Arc<Shared>,
    listeners: Vec<ListenerInfo>,
    access: String,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A builder.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    async fn start<R: Runtime>(
        runtime: &R,
        config: RouterConfig,
        plugins: config::Plugins,
    ) -> Result<Router, Error> {
        config.validate()?;
        if plugins.authorizer.is_some() && !config.roles.is_empty() {
            return Err(ConfigError::RolesAndAuthorizer.into());
        }
        if plugins.authenticator.is_some() && !config.principals.is_empty() {
            return Err(ConfigError::PrincipalsAndAuthenticator.into());
        }
        let static_auth = auth::static_authenticator(&config)?;
        let tls_principals = auth::tls_principals(&config);
        let limits = config.limits;
        let mut core_config = CoreConfig::default();
        core_config.realms = config.realms.clone();
        core_config.outbound_queue = limits.outbound_queue;
        core_config.outbound_queue_bytes = limits.outbound_queue_bytes;
        core_config.hello_timeout = Duration::from_secs(limits.hello_timeout_secs);
        core_config.auth_timeout = Duration::from_secs(limits.auth_timeout_secs);
        core_config.max_auth_rounds = limits.max_auth_rounds;
        core_config.max_registrations_per_session = limits.max_registrations_per_session;
        core_config.max_subscriptions_per_session = limits.max_subscriptions_per_session;
        core_config.max_uri_bytes_per_session = limits.max_uri_bytes_per_session;
        core_config.max_pending_calls_per_session = limits.max_pending_calls_per_session;
        let auth = match (plugins.authenticator.is_some(), static_auth.is_some()) {
            (true, _) => Authentication::Custom,
            (false, true) => Authentication::Static,
            (false, false) => Authentication::Anonymous,
        };
        let open = plugins.authorizer.is_none() && config.roles.is_empty();
        let mut core = CoreRouter::new(core_config, crate::websocket::os_rng());
        let authenticator: Option<Box<dyn Authenticator + Send>> = match plugins.authenticator {
            Some(a) => Some(a),
            None => static_auth.map(|a| Box::new(a) as Box<dyn Authenticator + Send>),
        };
        let listener_methods = auth::ListenerMethods::default();
        let filtered = config.listeners.iter().any(|l| l.auth.is_some());
        match (authenticator, filtered) {
            (Some(inner), true) => core.set_authenticator(Box::new(auth::ListenerAuthenticator {
                inner,
                methods: listener_methods.clone(),
                tls: tls_principals,
            })),
            (Some(inner), false) => core.set_authenticator(inner),
            (None, true) => core.set_authenticator(Box::new(auth::ListenerAuthenticator {
                inner: Box::new(AnonymousAuthenticator),
                methods: listener_methods.clone(),
                tls: tls_principals,
            })),
            (None, false) => {}
        }
        match plugins.authorizer {
            Some(authorizer) => core.set_authorizer(authorizer),
            None => core.set_authorizer(Box::new(config.static_authorizer())),
        }
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                router: core,
                slots: HashMap::new(),
                timer_waker: None,
                armed: None,
                empty_waiters: Vec::new(),
            }),
            stop: Stop {
                stopped: AtomicBool::new(false),
                wakers: Mutex::new(Vec::new()),
            },
            limits,
            connections: AtomicUsize::new(0),
            at_connection_bound: AtomicBool::new(false),
            exec: runtime.handle(),
            listener_methods,
        });
        let mut listeners = Vec::new();
        let mut loops = Vec::new();
        for l in &config.listeners {
            let (listener, unix): (Box<dyn AnyListener>, bool) = match (&l.address, &l.unix) {
                (Some(addr), _) => {
                    let addr = addr.parse().map_err(|source| ConfigError::Address {
                        address: addr.clone(),
                        source,
                    })?;
                    (Box::new(runtime.bind_tcp(addr).await?), false)
                }
                (None, Some(path)) => {
                    remove_stale_socket(path);
                    (runtime.bind_unix(path).await?, true)
                }
                (None, None) => unreachable!("validated"),
            };
            let client_certs = l.auth.iter().flatten().any(|m| m == auth::TLS);
            let tls = match &l.tls {
                Some(files) => Some(tls::acceptor(files, client_certs)?),
                None => None,
            };
            let info = ListenerInfo {
                transport: l.transport,
                address: listener.address(),
                unix,
                tls: tls.is_some(),
            };
            listeners.push(info);
            let origins = l
                .allowed_origins
                .as_ref()
                .map(|o| AllowedOrigins::new(o.iter().cloned()));
            let methods: Option<Arc<[String]>> = l.auth.as_ref().map(|m| m.clone().into());
            loops.push((listener, l.transport, tls, origins, methods));
        }
        let access = log_exposure(&config, &listeners, auth, open);
        for info in &listeners {
            log::info!("router listening on {}", info.url());
        }
        for (listener, kind, tls, origins, methods) in loops {
            runtime.spawn(Box::pin(serve::accept_loop(
                shared.clone(),
                listener,
                serve::ListenerSetup {
                    kind,
                    tls,
                    origins,
                    methods,
                },
            )));
        }
        runtime.spawn(Box::pin(run_timers(shared.clone())));
        Ok(Router {
            shared,
            listeners,
            access,
        })
    }

    /// Who may do what, in one line (also the router's first log line),
    /// e.g. `anonymous access, no roles: anyone who can reach
    /// 127.0.0.1:8080 has full rights`.
    pub fn access(&self) -> &str {
        &self.access
    }

    /// The listeners, with their bound addresses.
    pub fn listeners(&self) -> &[ListenerInfo] {
        &self.listeners
    }

    /// The URL of the first WebSocket listener.
    pub fn websocket_url(&self) -> Option<String> {
        self.url_of(TransportKind::WebSocket)
    }

    /// The URL of the first RawSocket listener.
    pub fn rawsocket_url(&self) -> Option<String> {
        self.url_of(TransportKind::RawSocket)
    }

    fn url_of(&self, kind: TransportKind) -> Option<String> {
        self.listeners
            .iter()
            .find(|l| l.transport == kind)
            .map(ListenerInfo::url)
    }

    /// A RawSocket byte stream into this router from the same process:
    /// no socket, no listener; what [`Session::join_in_process`](crate::Session::join_in_process)
    /// joins over. The router serves it as it serves a connection
    /// accepted on a listener, so its limits apply (maximum message size,
    /// [`RouterLimits::max_connections`], the HELLO deadline, and the
    /// bound on what is queued for a client that does not read, after
    /// which the client is disconnected). Each direction of the stream
    /// buffers at most 64 KiB.
    ///
    /// Fails (`ConnectionRefused`) when the router is shutting down or at
    /// its connection bound.
    pub fn connect_in_process(&self) -> Result<InProcessStream, Error> {
        if self.shared.stop.is_stopped() {
            return Err(refused("the router is shutting down"));
        }
        let Some(slot) = serve::ConnectionSlot::take(&self.shared) else {
            return Err(refused(
                "the router is at its connection bound (max_connections)",
            ));
        };
        let (client_reader, server_writer) = piper::pipe(IN_PROCESS_BUFFER);
        let (server_reader, client_writer) = piper::pipe(IN_PROCESS_BUFFER);
        let server: BoxTransport = Box::new(InProcessStream {
            reader: server_reader,
            writer: server_writer,
        });
        let shared = self.shared.clone();
        self.shared.exec.spawn(Box::pin(async move {
            // No listener: the realm's authenticator decides with every
            // method it has (no listener narrows them), no certificate.
            let auth = auth::ConnAuth {
                methods: None,
                fingerprint: None,
            };
            serve::serve_connection(shared, server, TransportKind::RawSocket, None, auth).await;
            drop(slot);
        }));
        Ok(InProcessStream {
            reader: client_reader,
            writer: client_writer,
        })
    }

    /// The executor the router runs on.
    pub(crate) fn executor(&self) -> ExecutorHandle {
        self.shared.exec.clone()
    }

    /// How many transports are connected (including those still closing).
    pub fn connection_count(&self) -> usize {
        self.shared.lock().slots.len()
    }

    /// Bytes held for the clients and not yet written to their sockets:
    /// queued in the router core plus buffered by the connection tasks,
    /// summed over the connections. Each connection's share is bounded by
    /// [`RouterLimits::outbound_queue_bytes`].
    pub fn queued_bytes(&self) -> usize {
        let core = self.shared.lock();
        core.slots
            .keys()
            .map(|conn| core.router.queued_bytes(*conn))
            .sum()
    }

    /// Stops accepting, says GOODBYE (`wamp.close.system_shutdown`) to
    /// every session, and waits until the transports are closed: clients
    /// that do not answer GOODBYE within the core's goodbye timeout (2 s)
    /// are closed by the core, and each transport's close is bounded by its
    /// own close timeout; the wait as a whole is capped at 10 s.
    pub async fn shutdown(self) {
        self.shared.stop.stop();
        {
            let mut core = self.shared.lock();
            let now = self.shared.exec.now();
            core.router.shutdown(now, "the router is shutting down");
            core.route();
        }
        let cap = self.shared.exec.now() + Duration::from_secs(10);
        let mut timer = self.shared.exec.new_timer(cap);
        poll_fn(|cx| {
            let mut core = self.shared.lock();
            if core.slots.is_empty() {
                return Poll::Ready(());
            }
            if !core.empty_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                core.empty_waiters.push(cx.waker().clone());
            }
            drop(core);
            timer.as_mut().poll(cx)
        })
        .await;
        // Wake the timer task so that it ends.
        if let Some(w) = self.shared.lock().timer_waker.take() {
            w.wake();
        }
    }
}

/// Bytes each direction of an in-process stream buffers.
const IN_PROCESS_BUFFER: usize = 64 << 10;

fn refused(why: &str) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        why.to_owned(),
    ))
}

/// One end of an in-process connection to a [`Router`]
/// ([`Router::connect_in_process`]): a pair of bounded in-memory pipes.
/// Dropping it ends the connection (the other side reads end of stream).
pub struct InProcessStream {
    reader: piper::Reader,
    writer: piper::Writer,
}

impl std::fmt::Debug for InProcessStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessStream")
            .field("readable", &self.reader.len())
            .field("writable", &(self.writer.capacity() - self.writer.len()))
            .finish()
    }
}

impl futures_io::AsyncRead for InProcessStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl futures_io::AsyncWrite for InProcessStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}

/// Says, first, who can do what on this router (returned for
/// [`Router::access`]): anonymous full access is fine on loopback for
/// development, and loud anywhere else.
fn log_exposure(
    config: &RouterConfig,
    listeners: &[ListenerInfo],
    auth: Authentication,
    open: bool,
) -> String {
    let anonymous = auth == Authentication::Anonymous;
    let addresses: Vec<&str> = listeners.iter().map(|l| l.address.as_str()).collect();
    let addresses = if addresses.is_empty() {
        "this process (no listeners)".to_owned()
    } else {
        addresses.join(", ")
    };
    let exposed = config.listeners.iter().any(|l| l.expose);
    let access = match (anonymous, open) {
        (true, true) if exposed => format!(
            "anonymous access, no roles, exposed beyond loopback: anyone who can reach {addresses} has full rights"
        ),
        (true, true) => {
            format!("anonymous access, no roles: anyone who can reach {addresses} has full rights")
        }
        (true, false) => {
            // Realms without roles stay open: say which.
            let open_realms: Vec<&str> = config
                .realms
                .iter()
                .filter(|r| !config.roles.iter().any(|role| &role.realm == *r))
                .map(String::as_str)
                .collect();
            if open_realms.is_empty() {
                format!(
                    "anonymous access (authrole \"anonymous\"), limited by roles, on {addresses}"
                )
            } else {
                format!(
                    "anonymous access (authrole \"anonymous\"), limited by roles except in realm(s) {} without roles, where anyone who can reach {addresses} has full rights",
                    open_realms.join(", ")
                )
            }
        }
        (false, open) if auth == Authentication::Static => {
            let methods = auth::describe(config, listeners);
            let principals = config.principals.len();
            let open_realms: Vec<&str> = config
                .realms
                .iter()
                .filter(|r| !config.roles.iter().any(|role| &role.realm == *r))
                .map(String::as_str)
                .collect();
            let rights = if open {
                "no roles: every session that joins has full rights".to_owned()
            } else if config.roles.is_empty() {
                "custom authorization".to_owned()
            } else if open_realms.is_empty() {
                "limited by roles".to_owned()
            } else {
                format!(
                    "limited by roles except in realm(s) {} without roles, where every session that joins has full rights",
                    open_realms.join(", ")
                )
            };
            format!("authentication ({methods}) with {principals} principal(s), {rights}")
        }
        (false, true) => format!(
            "custom authentication, no roles: every authenticated session has full rights on {addresses}"
        ),
        (false, false) => format!("custom authentication and authorization on {addresses}"),
    };
    if anonymous && open && exposed {
        log::warn!("{access}");
    } else {
        log::info!("{access}");
    }
    for l in &config.listeners {
        if l.expose && l.transport == TransportKind::WebSocket && l.allowed_origins.is_none() {
            log::warn!(
                "WebSocket listener {} is exposed and accepts every Origin: any web page a user visits can reach it; set allowed_origins",
                l.address.as_deref().unwrap_or("?")
            );
        }
    }
    access
}

/// Who authenticates the router's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authentication {
    /// Nobody: everyone joins anonymously.
    Anonymous,
    /// The configured principals.
    Static,
    /// An authenticator plugged in by the application.
    Custom,
}

/// Runs the core's deadlines (HELLO, AUTHENTICATE, GOODBYE replies) on the
/// runtime's timer, until the router has shut down and every connection
/// is gone.
async fn run_timers(shared: Arc<Shared>) {
    let mut timer: Option<Pin<Box<dyn AsyncTimer>>> = None;
    poll_fn(|cx| {
        loop {
            let mut core = shared.lock();
            if shared.stop.is_stopped() && core.slots.is_empty() {
                return Poll::Ready(());
            }
            core.timer_waker = Some(cx.waker().clone());
            core.armed = core.router.poll_timeout();
            let Some(deadline) = core.armed else {
                return Poll::Pending;
            };
            drop(core);
            let t = match &mut timer {
                Some(t) => {
                    t.as_mut().reset(deadline);
                    t
                }
                None => timer.insert(shared.exec.new_timer(deadline)),
            };
            if t.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let mut core = shared.lock();
            core.router.handle_timeout(shared.exec.now());
            core.route();
        }
    })
    .await;
}

fn remove_stale_socket(path: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if meta.file_type().is_socket() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

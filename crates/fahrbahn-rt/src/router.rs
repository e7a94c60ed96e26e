//! Serving the embedded WAMP router: listeners on TCP and Unix sockets,
//! WebSocket and RawSocket transports, one task per connection, and the
//! sans-IO router core shared under one lock.
//!
//! Outbound policy: each connection has a bounded queue of messages
//! ([`RouterLimits::outbound_queue`]). A client that does not read fast
//! enough to keep its queue below the bound is disconnected (its queue
//! dropped, its session detached so its pending calls fail) — one slow or
//! flooding client never makes the router buffer without bound or stall
//! the others.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use fahrbahn_core::wamp::router::{
    ConnectionId, Router as CoreRouter, RouterConfig as CoreConfig, RouterEvent,
};
use fahrbahn_core::wamp::{Dict, Message, ServerConnection, ServerEvent, Value};
use fahrbahn_core::{Machine, rawsocket, ws};
use serde::Deserialize;

use crate::driver::{Driver, Side};
use crate::error::Error;
use crate::runtime::{AnyListener, AsyncTimer, BoxFuture, BoxTransport, Runtime};

/// The transport a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// WAMP over WebSocket (any path; `wamp.2.*` subprotocols).
    WebSocket,
    /// WAMP over RawSocket.
    RawSocket,
}

/// One listener of the router.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `websocket` or `rawsocket`.
    pub transport: TransportKind,
    /// A TCP address, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    #[serde(default)]
    pub address: Option<String>,
    /// A Unix socket path instead of a TCP address.
    #[serde(default)]
    pub unix: Option<String>,
    /// Serve TLS (`wss://`, `rss://`) with this certificate and key
    /// (needs the `tls` feature).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// PEM files for a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (PEM), leaf first.
    pub certificate: String,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

/// Limits that protect the router from its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterLimits {
    /// Largest message accepted from a client, in bytes (default 16 MiB).
    pub max_message_size: usize,
    /// Messages queued for one client before it is disconnected as too slow
    /// (default 4096).
    pub outbound_queue: usize,
}

impl Default for RouterLimits {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            outbound_queue: 4096,
        }
    }
}

/// Router configuration, from a builder or a TOML file.
///
/// ```
/// use fahrbahn_rt::RouterConfig;
/// let config = RouterConfig::from_toml(r#"
///     realms = ["realm1", "realm2"]
///
///     [[listener]]
///     transport = "websocket"
///     address = "127.0.0.1:8080"
///
///     [[listener]]
///     transport = "rawsocket"
///     unix = "/tmp/fahrbahn.sock"
///
///     [limits]
///     outbound_queue = 1000
/// "#).unwrap();
/// assert_eq!(config.listeners.len(), 2);
/// assert_eq!(config.limits.outbound_queue, 1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Realms served (default `["realm1"]`).
    #[serde(default = "default_realms")]
    pub realms: Vec<String>,
    /// Listeners (`[[listener]]` tables in TOML).
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Limits.
    #[serde(default)]
    pub limits: RouterLimits,
}

fn default_realms() -> Vec<String> {
    vec!["realm1".to_owned()]
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            realms: default_realms(),
            listeners: Vec::new(),
            limits: RouterLimits::default(),
        }
    }
}

impl RouterConfig {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: RouterConfig =
            toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    fn validate(&self) -> Result<(), Error> {
        for l in &self.listeners {
            if l.address.is_some() == l.unix.is_some() {
                return Err(Error::Config(
                    "each listener needs exactly one of `address` or `unix`".into(),
                ));
            }
        }
        if self.realms.is_empty() {
            return Err(Error::Config("at least one realm is needed".into()));
        }
        Ok(())
    }
}

/// Builds and starts a router.
///
/// ```no_run
/// # async fn demo<R: fahrbahn_rt::Runtime>(rt: R) -> Result<(), fahrbahn_rt::Error> {
/// let router = fahrbahn_rt::Router::builder()
///     .realm("realm1")
///     .websocket("127.0.0.1:0")
///     .rawsocket("127.0.0.1:0")
///     .start(&rt)
///     .await?;
/// let url = router.websocket_url().unwrap();
/// // … clients connect to `url` …
/// router.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RouterBuilder {
    config: RouterConfig,
    explicit_realms: bool,
}

impl RouterBuilder {
    /// Starts from a configuration (e.g. read from TOML).
    pub fn config(mut self, config: RouterConfig) -> Self {
        self.config = config;
        self.explicit_realms = true;
        self
    }

    /// Adds a realm (the first call replaces the default `realm1`).
    pub fn realm(mut self, name: &str) -> Self {
        if !self.explicit_realms {
            self.config.realms.clear();
            self.explicit_realms = true;
        }
        self.config.realms.push(name.to_owned());
        self
    }

    /// Adds a WebSocket listener on a TCP address.
    pub fn websocket(mut self, address: &str) -> Self {
        self.config.listeners.push(ListenerConfig {
            transport: TransportKind::WebSocket,
            address: Some(address.to_owned()),
            unix: None,
            tls: None,
        });
        self
    }

    /// Adds a RawSocket listener on a TCP address.
    pub fn rawsocket(mut self, address: &str) -> Self {
        self.config.listeners.push(ListenerConfig {
            transport: TransportKind::RawSocket,
            address: Some(address.to_owned()),
            unix: None,
            tls: None,
        });
        self
    }

    /// Adds any listener, e.g. one with TLS.
    pub fn listener(mut self, listener: ListenerConfig) -> Self {
        self.config.listeners.push(listener);
        self
    }

    /// Adds a listener on a Unix socket path.
    pub fn unix(mut self, transport: TransportKind, path: &str) -> Self {
        self.config.listeners.push(ListenerConfig {
            transport,
            address: None,
            unix: Some(path.to_owned()),
            tls: None,
        });
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: RouterLimits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Binds every listener and starts serving on `runtime`.
    pub async fn start<R: Runtime>(self, runtime: &R) -> Result<Router, Error> {
        Router::start(runtime, self.config).await
    }
}

/// Per-connection state the router core fills.
struct Outbox {
    queue: VecDeque<Message>,
    waker: Option<Waker>,
    close: bool,
}

struct Core {
    router: CoreRouter,
    outboxes: HashMap<ConnectionId, Outbox>,
    limit: usize,
}

impl Core {
    /// Moves the router's output into the connections' queues.
    fn route(&mut self) {
        loop {
            let mut overflowed = Vec::new();
            while let Some((conn, msg)) = self.router.poll_outgoing() {
                let Some(out) = self.outboxes.get_mut(&conn) else {
                    continue;
                };
                if out.close {
                    continue;
                }
                if out.queue.len() >= self.limit {
                    log::warn!("connection {conn:?} does not keep up: disconnecting it");
                    out.queue.clear();
                    out.close = true;
                    overflowed.push(conn);
                } else {
                    out.queue.push_back(msg);
                }
                if let Some(w) = out.waker.take() {
                    w.wake();
                }
            }
            while let Some(event) = self.router.poll_event() {
                if let RouterEvent::CloseTransport { conn } = event {
                    if let Some(out) = self.outboxes.get_mut(&conn) {
                        out.close = true;
                        if let Some(w) = out.waker.take() {
                            w.wake();
                        }
                    }
                }
            }
            if overflowed.is_empty() {
                return;
            }
            for conn in overflowed {
                self.router.detach(conn);
            }
        }
    }
}

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
}

struct Shared {
    core: Mutex<Core>,
    stop: Stop,
    limits: RouterLimits,
    spawn: Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>,
    timer: Arc<dyn Fn(Instant) -> std::pin::Pin<Box<dyn AsyncTimer>> + Send + Sync>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
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

    async fn start<R: Runtime>(runtime: &R, config: RouterConfig) -> Result<Router, Error> {
        config.validate()?;
        let core = CoreRouter::new(
            CoreConfig {
                realms: config.realms.clone(),
                ..CoreConfig::default()
            },
            crate::websocket::os_rng(),
        );
        let rt_spawn = runtime.clone();
        let rt_timer = runtime.clone();
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                router: core,
                outboxes: HashMap::new(),
                limit: config.limits.outbound_queue.max(1),
            }),
            stop: Stop {
                stopped: AtomicBool::new(false),
                wakers: Mutex::new(Vec::new()),
            },
            limits: config.limits,
            spawn: Arc::new(move |f| rt_spawn.spawn(f)),
            timer: Arc::new(move |t| rt_timer.new_timer(t)),
        });
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let (listener, unix): (Box<dyn AnyListener>, bool) = match (&l.address, &l.unix) {
                (Some(addr), _) => {
                    let addr = addr
                        .parse()
                        .map_err(|e| Error::Config(format!("bad address {addr:?}: {e}")))?;
                    (Box::new(runtime.bind_tcp(addr).await?), false)
                }
                (None, Some(path)) => {
                    remove_stale_socket(path);
                    (runtime.bind_unix(path).await?, true)
                }
                (None, None) => unreachable!("validated"),
            };
            let tls = match &l.tls {
                Some(files) => Some(tls::acceptor(files)?),
                None => None,
            };
            let info = ListenerInfo {
                transport: l.transport,
                address: listener.address(),
                unix,
                tls: tls.is_some(),
            };
            log::info!("router listening on {}", info.url());
            listeners.push(info);
            runtime.spawn(Box::pin(accept_loop(
                shared.clone(),
                listener,
                l.transport,
                tls,
            )));
        }
        Ok(Router { shared, listeners })
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

    /// How many transports are connected.
    pub fn connection_count(&self) -> usize {
        self.shared.lock().outboxes.len()
    }

    /// Stops accepting, says GOODBYE (`wamp.close.system_shutdown`) to
    /// every session, and waits (up to a few seconds) for the transports
    /// to close.
    pub async fn shutdown(self) {
        self.shared.stop.stop();
        {
            let mut core = self.shared.lock();
            core.router.shutdown("the router is shutting down");
            core.route();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        self.wait_until_empty(deadline).await;
        {
            // Whoever did not answer GOODBYE is closed now.
            let mut core = self.shared.lock();
            for out in core.outboxes.values_mut() {
                out.close = true;
                if let Some(w) = out.waker.take() {
                    w.wake();
                }
            }
        }
        self.wait_until_empty(Instant::now() + Duration::from_secs(3))
            .await;
    }

    async fn wait_until_empty(&self, deadline: Instant) {
        while Instant::now() < deadline && self.connection_count() > 0 {
            let mut t = (self.shared.timer)(Instant::now() + Duration::from_millis(20));
            poll_fn(|cx| t.as_mut().poll(cx)).await;
        }
    }
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

async fn accept_loop(
    shared: Arc<Shared>,
    listener: Box<dyn AnyListener>,
    kind: TransportKind,
    tls: Option<tls::Acceptor>,
) {
    loop {
        let mut accept = listener.accept_any();
        let next = poll_fn(|cx| {
            if shared.stop.stopped.load(Ordering::SeqCst) {
                return Poll::Ready(None);
            }
            shared
                .stop
                .wakers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cx.waker().clone());
            accept.as_mut().poll(cx).map(Some)
        })
        .await;
        match next {
            None => return,
            Some(Ok(io)) => {
                let shared2 = shared.clone();
                let tls = tls.clone();
                (shared.spawn)(Box::pin(async move {
                    // The TLS handshake runs in the connection's own task,
                    // bounded by the open timeout.
                    let io = match tls {
                        None => io,
                        Some(acceptor) => {
                            let deadline = (shared2.timer)(Instant::now() + OPEN_TIMEOUT);
                            match tls::accept(acceptor, io, deadline).await {
                                Some(io) => io,
                                None => return,
                            }
                        }
                    };
                    serve_connection(shared2, io, kind).await;
                }));
            }
            Some(Err(e)) => {
                log::warn!("accept failed: {e}");
                let mut t = (shared.timer)(Instant::now() + Duration::from_millis(50));
                poll_fn(|cx| t.as_mut().poll(cx)).await;
            }
        }
    }
}

/// How long a client may take to finish the TLS and transport handshakes.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(feature = "tls")]
mod tls {
    use std::pin::Pin;
    use std::sync::Arc;

    use futures_rustls::rustls;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::TlsFiles;
    use crate::error::Error;
    use crate::runtime::{AsyncTimer, BoxTransport};

    pub(super) type Acceptor = futures_rustls::TlsAcceptor;

    pub(super) fn acceptor(files: &TlsFiles) -> Result<Acceptor, Error> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.certificate)
            .and_then(|it| it.collect())
            .map_err(|e| Error::Config(format!("certificate {}: {e}", files.certificate)))?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| Error::Config(format!("key {}: {e}", files.key)))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| Error::Config(format!("TLS certificate/key: {e}")))?;
        Ok(futures_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    pub(super) async fn accept(
        acceptor: Acceptor,
        io: BoxTransport,
        mut deadline: Pin<Box<dyn AsyncTimer>>,
    ) -> Option<BoxTransport> {
        let mut handshake = acceptor.accept(io);
        let result = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(r) = Pin::new(&mut handshake).poll(cx) {
                return std::task::Poll::Ready(Some(r));
            }
            deadline.as_mut().poll(cx).map(|()| None)
        })
        .await;
        match result {
            Some(Ok(stream)) => Some(Box::new(stream) as BoxTransport),
            Some(Err(e)) => {
                log::debug!("TLS handshake failed: {e}");
                None
            }
            None => {
                log::debug!("TLS handshake timed out");
                None
            }
        }
    }
}

#[cfg(not(feature = "tls"))]
mod tls {
    use std::pin::Pin;

    use super::TlsFiles;
    use crate::error::Error;
    use crate::runtime::{AsyncTimer, BoxTransport};

    #[derive(Debug, Clone)]
    pub(super) enum Acceptor {}

    pub(super) fn acceptor(_files: &TlsFiles) -> Result<Acceptor, Error> {
        Err(Error::Tls("TLS listeners need the `tls` feature".into()))
    }

    pub(super) async fn accept(
        acceptor: Acceptor,
        _io: BoxTransport,
        _deadline: Pin<Box<dyn AsyncTimer>>,
    ) -> Option<BoxTransport> {
        match acceptor {}
    }
}

fn exponent_for(max: usize) -> u8 {
    (0u8..=15)
        .find(|e| rawsocket::max_len_for_exponent(*e) >= max)
        .unwrap_or(15)
}

async fn serve_connection(shared: Arc<Shared>, io: BoxTransport, kind: TransportKind) {
    let now = Instant::now();
    let limits = shared.limits;
    let machine = match kind {
        TransportKind::WebSocket => {
            let config = ws::ServerConfig {
                limits: ws::Limits {
                    max_frame_size: limits.max_message_size,
                    max_message_size: limits.max_message_size,
                    ..ws::Limits::default()
                },
                deflate: Some(ws::DeflateConfig::default()),
                ..ws::ServerConfig::default()
            };
            ServerConnection::websocket(config, crate::websocket::os_rng(), now)
        }
        TransportKind::RawSocket => {
            let mut config = rawsocket::ServerConfig::new(Vec::new());
            config.max_len_exponent = exponent_for(limits.max_message_size);
            ServerConnection::rawsocket(config, now)
        }
    };
    let timer = (shared.timer)(now + OPEN_TIMEOUT);
    let mut driver = Driver::new(io, machine, timer);
    let id = {
        let mut core = shared.lock();
        let id = core.router.attach();
        core.outboxes.insert(
            id,
            Outbox {
                queue: VecDeque::new(),
                waker: None,
                close: false,
            },
        );
        id
    };
    let mut closing = false;
    // Swapped with the outbox's queue each round, so the two buffers keep
    // their capacity instead of allocating a queue per batch.
    let mut batch = VecDeque::new();
    poll_fn(|cx| {
        loop {
            // Deliver what the router queued for this client.
            let close = {
                let mut core = shared.lock();
                let Some(out) = core.outboxes.get_mut(&id) else {
                    return Poll::Ready(());
                };
                out.waker = Some(cx.waker().clone());
                std::mem::swap(&mut out.queue, &mut batch);
                out.close
            };
            for msg in batch.drain(..) {
                if let Err(e) = driver.conn.send(&msg) {
                    log::debug!("cannot deliver {} to {id:?}: {e}", msg.name());
                }
            }
            if close && !closing {
                closing = true;
                driver.conn.close(Instant::now());
            }
            match driver.poll_event(cx) {
                Poll::Ready(Ok(ServerEvent::Message(msg))) => {
                    let mut core = shared.lock();
                    core.router.handle_message(id, msg);
                    core.route();
                }
                Poll::Ready(Ok(ServerEvent::Invalid(why))) => {
                    log::warn!("connection {id:?}: {why}");
                    let mut details = Dict::new();
                    details.insert("message".into(), Value::String(why));
                    let _ = driver.conn.send(&Message::Abort {
                        details,
                        reason: fahrbahn_core::wamp::error::ERROR_PROTOCOL_VIOLATION.into(),
                    });
                    closing = true;
                    driver.conn.close(Instant::now());
                    let mut core = shared.lock();
                    core.router.detach(id);
                    core.route();
                }
                Poll::Ready(Ok(ServerEvent::Connected { .. })) => {}
                Poll::Ready(Ok(ServerEvent::Closed(_))) | Poll::Ready(Err(_)) => {
                    let mut core = shared.lock();
                    core.outboxes.remove(&id);
                    core.router.detach(id);
                    core.route();
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    if let Poll::Ready(Err(e)) = driver.poll_write_out(cx, Side::Reader) {
                        log::debug!("connection {id:?} write failed: {e}");
                        driver.conn.handle_eof(Instant::now());
                        continue;
                    }
                    let more = shared
                        .lock()
                        .outboxes
                        .get(&id)
                        .is_some_and(|o| !o.queue.is_empty() || (o.close && !closing));
                    if more {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    })
    .await;
    if !driver.conn.is_closed() {
        driver.conn.close(Instant::now());
    }
    poll_fn(|cx| driver.poll_finish(cx)).await;
    // In case the transport ended before the machine saw it close.
    let mut core = shared.lock();
    if core.outboxes.remove(&id).is_some() {
        core.router.detach(id);
        core.route();
    }
}

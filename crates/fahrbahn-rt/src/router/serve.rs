//! The router's tasks: one accept loop per listener, one task per
//! connection moving bytes between its transport and the router core.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use fahrbahn_core::wamp::router::Payload;
use fahrbahn_core::wamp::{ServerConnection, ServerEvent};
use fahrbahn_core::ws::AllowedOrigins;
use fahrbahn_core::{Machine, rawsocket, ws};

use super::auth::ConnAuth;
use super::{Shared, Slot, TransportKind, tls};
use crate::driver::{Driver, Side};
use crate::runtime::{AnyListener, BoxTransport};

/// How long a client may take to finish the TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages taken from the core per round, at most, before they are
/// written. What a connection holds outside the core's queue is reported
/// to the core ([`handle_buffered`](fahrbahn_core::wamp::router::Router::handle_buffered)),
/// which bounds both together in bytes.
const BATCH: usize = 64;

/// What a listener's connections are served with.
pub(super) struct ListenerSetup {
    pub(super) kind: TransportKind,
    pub(super) tls: Option<tls::Acceptor>,
    pub(super) origins: Option<AllowedOrigins>,
    /// The authentication methods it accepts, if it says.
    pub(super) methods: Option<Arc<[String]>>,
}

pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: Box<dyn AnyListener>,
    setup: ListenerSetup,
) {
    let ListenerSetup {
        kind,
        tls,
        origins,
        methods,
    } = setup;
    loop {
        let mut accept = listener.accept_any();
        let next = poll_fn(|cx| {
            if shared.stop.is_stopped() {
                return Poll::Ready(None);
            }
            shared.stop.register(cx.waker());
            accept.as_mut().poll(cx).map(Some)
        })
        .await;
        match next {
            None => return,
            Some(Ok(io)) => {
                let Some(slot) = ConnectionSlot::take(&shared) else {
                    // At the bound: the new connection is dropped at once.
                    drop(io);
                    continue;
                };
                let shared2 = shared.clone();
                let tls = tls.clone();
                let origins = origins.clone();
                let methods = methods.clone();
                shared.exec.spawn(Box::pin(async move {
                    // The TLS handshake runs in the connection's own task,
                    // bounded by its own deadline.
                    let (io, fingerprint) = match tls {
                        None => (io, None),
                        Some(acceptor) => {
                            let deadline = shared2.exec.new_timer(shared2.exec.now() + TLS_TIMEOUT);
                            match tls::accept(acceptor, io, deadline).await {
                                Some(accepted) => accepted,
                                None => return,
                            }
                        }
                    };
                    let auth = ConnAuth {
                        methods,
                        fingerprint,
                    };
                    serve_connection(shared2, io, kind, origins, auth).await;
                    drop(slot);
                }));
            }
            Some(Err(e)) => {
                log::warn!("accept failed: {e}");
                let at = shared.exec.now() + Duration::from_millis(50);
                shared.sleep_until(at).await;
            }
        }
    }
}

/// One of the [`RouterLimits::max_connections`](super::RouterLimits)
/// places, held by a connection's task until it ends.
pub(super) struct ConnectionSlot(Arc<Shared>);

impl ConnectionSlot {
    /// A place for a new connection, or `None` (logged) at the bound.
    pub(super) fn take(shared: &Arc<Shared>) -> Option<Self> {
        let max = shared.limits.max_connections;
        let taken = shared
            .connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            });
        if taken.is_ok() {
            shared.at_connection_bound.store(false, Ordering::Relaxed);
            return Some(Self(shared.clone()));
        }
        if shared.at_connection_bound.swap(true, Ordering::Relaxed) {
            log::debug!("router: {max} connections open (max_connections): new connection closed");
        } else {
            log::warn!(
                "router: {max} connections open (max_connections): closing new connections until one ends"
            );
        }
        None
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

fn exponent_for(max: usize) -> u8 {
    (0u8..=15)
        .find(|e| rawsocket::max_len_for_exponent(*e) >= max)
        .unwrap_or(15)
}

fn machine(
    shared: &Shared,
    kind: TransportKind,
    origins: Option<AllowedOrigins>,
) -> ServerConnection {
    let now = shared.exec.now();
    let limits = shared.limits;
    // Keepalive: the core pings and ends a connection whose ping is not
    // answered in time.
    let ping_interval =
        (limits.ping_interval_secs > 0).then(|| Duration::from_secs(limits.ping_interval_secs));
    let pong_timeout = Duration::from_secs(limits.ping_timeout_secs);
    let mut conn = match kind {
        TransportKind::WebSocket => {
            let mut config = ws::ServerConfig::default();
            config.limits.max_frame_size = limits.max_message_size;
            config.limits.max_message_size = limits.max_message_size;
            config.timeouts.ping_interval = ping_interval;
            config.timeouts.pong_timeout = pong_timeout;
            config.deflate = Some(ws::DeflateConfig::default());
            config.allowed_origins = origins;
            ServerConnection::websocket(config, crate::websocket::os_rng(), now)
        }
        TransportKind::RawSocket => {
            let mut config = rawsocket::ServerConfig::new(Vec::new());
            config.max_len_exponent = exponent_for(limits.max_message_size);
            config.ping_interval = ping_interval;
            config.pong_timeout = pong_timeout;
            ServerConnection::rawsocket(config, now)
        }
    };
    // Messages are decoded here, in the connection's task and outside the
    // router's lock, down to their envelope: `args`/`kwargs` are validated
    // and stay the bytes they came in, which the core forwards.
    conn.set_raw_payloads(true);
    conn
}

pub(super) async fn serve_connection(
    shared: Arc<Shared>,
    io: BoxTransport,
    kind: TransportKind,
    origins: Option<AllowedOrigins>,
    auth: ConnAuth,
) {
    let mut driver = Driver::new(io, machine(&shared, kind, origins), shared.exec.clone());
    driver.set_high_water(shared.limits.read_high_water);
    let id = {
        let mut core = shared.lock();
        let id = core.router.attach(shared.exec.now());
        core.slots.insert(id, Slot::default());
        if auth.methods.is_some() || auth.fingerprint.is_some() {
            shared
                .listener_methods
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, auth);
        }
        core.route();
        id
    };
    let mut closing = false;
    // Payloads the core encoded once (shared with the other connections
    // that get the same EVENT); framed here.
    let mut batch: Vec<Payload> = Vec::with_capacity(BATCH);
    // Bytes taken from the core and not yet written out (as the core
    // measured them), and what the core was last told.
    let mut held = 0usize;
    let mut reported = 0usize;
    poll_fn(|cx| {
        loop {
            // 1. Write out what is queued; take more from the core only
            // while the socket accepts it (backpressure: a client that does
            // not read leaves its messages in the core's bounded queue).
            let writable = match driver.poll_write_out(cx, Side::Reader) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => {
                    log::debug!("connection {id} write failed: {e}");
                    let now = driver.now();
                    driver.conn.handle_eof(now);
                    false
                }
                Poll::Pending => false,
            };
            let close = {
                let mut core = shared.lock();
                let Some(slot) = core.slots.get_mut(&id) else {
                    return Poll::Ready(());
                };
                if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    slot.waker = Some(cx.waker().clone());
                }
                let close = slot.close;
                if writable {
                    // Everything taken so far is written and flushed.
                    held = 0;
                }
                if writable && !closing {
                    let before = core.router.queued_bytes(id);
                    while batch.len() < BATCH {
                        match core.router.poll_transmit_payload(id) {
                            Some(payload) => batch.push(payload),
                            None => break,
                        }
                    }
                    // Still ours until written: the core counts it.
                    held += before.saturating_sub(core.router.queued_bytes(id));
                }
                if held != reported {
                    reported = held;
                    core.router.handle_buffered(driver.now(), id, held);
                    core.route();
                }
                // Close once everything queued before the request went out.
                close.filter(|_| core.router.queued(id) == 0)
            };
            if !batch.is_empty() {
                for payload in batch.drain(..) {
                    // The core queues nothing larger than the client
                    // accepts (it was told in `handle_connected`), so this
                    // only fails once the transport has ended.
                    if let Err(e) = driver.conn.send_payload(&payload) {
                        log::debug!("cannot deliver {} bytes to {id}: {e}", payload.len());
                    }
                }
                continue;
            }
            if let Some(reason) = close {
                if !closing {
                    closing = true;
                    let now = driver.now();
                    driver.conn.close(now, reason.close_code());
                    continue;
                }
            }
            // 2. Read and handle what the client sent.
            match driver.poll_event(cx) {
                Poll::Ready(Ok(ServerEvent::RawMessage(msg))) => {
                    let now = driver.now();
                    let mut core = shared.lock();
                    core.router.handle_raw_message(now, id, msg);
                    core.route();
                }
                Poll::Ready(Ok(ServerEvent::Message(msg))) => {
                    let now = driver.now();
                    let mut core = shared.lock();
                    core.router.handle_message(now, id, msg);
                    core.route();
                }
                Poll::Ready(Ok(ServerEvent::Connected(codec))) => {
                    let now = driver.now();
                    let max = driver.conn.peer_max_message_size();
                    let mut core = shared.lock();
                    core.router.handle_connected(now, id, codec, max);
                }
                Poll::Ready(Ok(ServerEvent::Closed(closed))) => {
                    if let Some(e) = &closed.error {
                        log::debug!("connection {id}: {e}");
                    }
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    log::debug!("connection {id} failed: {e}");
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    shared.lock().detach(id);
    if !driver.conn.is_closed() {
        let now = driver.now();
        driver.conn.close(now, ws::CloseCode::NORMAL);
    }
    poll_fn(|cx| driver.poll_finish(cx)).await;
    shared.lock().remove(id);
    shared
        .listener_methods
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
}

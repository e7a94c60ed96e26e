//! The router's tasks: one accept loop per listener, one task per
//! connection moving bytes between its transport and the router core.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use fahrbahn_core::wamp::{Message, ServerConnection, ServerEvent};
use fahrbahn_core::{Machine, rawsocket, ws};

use super::{Shared, Slot, TransportKind, tls};
use crate::driver::{Driver, Side};
use crate::runtime::{AnyListener, BoxTransport};

/// How long a client may take to finish the TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages taken from the core per round, at most, before they are
/// written: the most a connection holds outside the core's bounded queue.
const BATCH: usize = 64;

pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: Box<dyn AnyListener>,
    kind: TransportKind,
    tls: Option<tls::Acceptor>,
) {
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
                let shared2 = shared.clone();
                let tls = tls.clone();
                shared.exec.spawn(Box::pin(async move {
                    // The TLS handshake runs in the connection's own task,
                    // bounded by its own deadline.
                    let io = match tls {
                        None => io,
                        Some(acceptor) => {
                            let deadline = shared2.exec.new_timer(shared2.exec.now() + TLS_TIMEOUT);
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
                let at = shared.exec.now() + Duration::from_millis(50);
                shared.sleep_until(at).await;
            }
        }
    }
}

fn exponent_for(max: usize) -> u8 {
    (0u8..=15)
        .find(|e| rawsocket::max_len_for_exponent(*e) >= max)
        .unwrap_or(15)
}

fn machine(shared: &Shared, kind: TransportKind) -> ServerConnection {
    let now = shared.exec.now();
    let limits = shared.limits;
    match kind {
        TransportKind::WebSocket => {
            let mut config = ws::ServerConfig::default();
            config.limits.max_frame_size = limits.max_message_size;
            config.limits.max_message_size = limits.max_message_size;
            config.deflate = Some(ws::DeflateConfig::default());
            ServerConnection::websocket(config, crate::websocket::os_rng(), now)
        }
        TransportKind::RawSocket => {
            let mut config = rawsocket::ServerConfig::new(Vec::new());
            config.max_len_exponent = exponent_for(limits.max_message_size);
            ServerConnection::rawsocket(config, now)
        }
    }
}

async fn serve_connection(shared: Arc<Shared>, io: BoxTransport, kind: TransportKind) {
    let mut driver = Driver::new(io, machine(&shared, kind), shared.exec.clone());
    driver.set_high_water(shared.limits.read_high_water);
    let id = {
        let mut core = shared.lock();
        let id = core.router.attach(shared.exec.now());
        core.slots.insert(id, Slot::default());
        core.route();
        id
    };
    let mut closing = false;
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
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
                if writable && !closing {
                    while batch.len() < BATCH {
                        match core.router.poll_transmit_to(id) {
                            Some(msg) => batch.push(msg),
                            None => break,
                        }
                    }
                }
                // Close once everything queued before the request went out.
                close.filter(|_| core.router.queued(id) == 0)
            };
            if !batch.is_empty() {
                for msg in batch.drain(..) {
                    if let Err(e) = driver.conn.send(&msg) {
                        log::debug!("cannot deliver {} to {id}: {e}", msg.name());
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
                Poll::Ready(Ok(ServerEvent::Message(msg))) => {
                    let now = driver.now();
                    let mut core = shared.lock();
                    core.router.handle_message(now, id, msg);
                    core.route();
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
}

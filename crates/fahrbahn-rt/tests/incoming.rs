//! `Incoming` on the simulated network: handshakes run concurrently, so a
//! client that connects and says nothing delays nobody, and no more than
//! `max_pending` handshakes are ever pending: a new connection takes the
//! place of the oldest.

#[allow(dead_code)]
mod sim;

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use fahrbahn_rt::{ClientConfig, Executor, Incoming, Message, Runtime, ServerConfig, WebSocket};
use fahrbahn_tokio::TokioIo;
use futures_core::Stream;
use sim::SimNet;

/// Polls `incoming` for its next connection, recording the most pending
/// handshakes seen.
async fn next_ws(
    incoming: &mut Incoming<sim::SimListener>,
    max_pending: &mut usize,
) -> WebSocket<sim::Pipe> {
    poll_fn(|cx| {
        let r = Pin::new(&mut *incoming).poll_next(cx);
        *max_pending = (*max_pending).max(incoming.pending());
        r
    })
    .await
    .expect("never ends")
    .expect("the listener works")
}

/// A client that handshakes, sends `text` and expects it echoed.
fn echo_client(net: &SimNet, port: u16, text: &'static str) -> tokio::task::JoinHandle<()> {
    let net = net.clone();
    tokio::spawn(async move {
        let pipe = TokioIo(net.dial(port).unwrap());
        // It may wait in the accept queue longer than the server's
        // handshake timeout.
        let mut config = ClientConfig::new("sim", "/");
        config.timeouts.open = Duration::from_secs(60);
        let mut ws = WebSocket::connect(&net, pipe, config).await.unwrap();
        ws.send(text).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(text));
    })
}

async fn echo_once(mut ws: WebSocket<sim::Pipe>) {
    let msg = ws.recv().await.unwrap().unwrap();
    ws.send(msg).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_does_not_delay_the_next_handshake() {
    let net = SimNet::default();
    let listener = net.bind_tcp("127.0.0.1:9".parse().unwrap()).await.unwrap();
    let mut incoming = Incoming::new(&net, listener, ServerConfig::default());
    let start = net.now();
    // Connects first, never sends its request.
    let silent = net.dial(9).unwrap();
    let client = echo_client(&net, 9, "hello");
    let mut max_pending = 0;
    let ws = next_ws(&mut incoming, &mut max_pending).await;
    // The silent handshake is still pending: the client was not queued
    // behind it (and no simulated time had to pass for it).
    assert_eq!(incoming.pending(), 1);
    assert_eq!(net.now(), start);
    echo_once(ws).await;
    client.await.unwrap();
    drop(silent);
}

#[tokio::test(start_paused = true)]
async fn pending_handshakes_never_exceed_the_bound_and_the_oldest_make_room() {
    const MAX: usize = 3;
    let net = SimNet::default();
    let listener = net.bind_tcp("127.0.0.1:9".parse().unwrap()).await.unwrap();
    let mut incoming = Incoming::new(&net, listener, ServerConfig::default());
    incoming.set_max_pending(MAX);
    let start = net.now();
    // Five silent connections, then a real client.
    let silent: Vec<_> = (0..5).map(|_| net.dial(9).unwrap()).collect();
    let client = echo_client(&net, 9, "late");
    let mut max_pending = 0;
    let ws = next_ws(&mut incoming, &mut max_pending).await;
    assert!(max_pending <= MAX, "{max_pending}");
    assert_eq!(max_pending, MAX);
    // The client did not wait for the silent handshakes to time out
    // (Timeouts::open, 10 s): the oldest were dropped to make room.
    assert_eq!(net.now(), start);
    assert!(incoming.pending() <= MAX);
    echo_once(ws).await;
    client.await.unwrap();
    drop(silent);
}

//! Peers that flood and never read, on the simulated network: what the
//! server queues for them stays bounded (one pending pong, and the
//! read-side high-water mark of the driver), and other clients are still
//! served meanwhile.

#[allow(dead_code)]
mod sim;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fahrbahn_rt::{ClientConfig, Message, Router, ServerConfig, Session, WebSocket};
use fahrbahn_tokio::TokioIo;
use sim::{PIPE_BUFFER, RAWSOCKET_JSON_HELLO, SimNet};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Pings each flooder sends (with 125-byte payloads: about 2.6 MB).
const PINGS: usize = 20_000;

/// The read-side high-water mark by default (1 MiB).
const MARK: usize = 1 << 20;

/// The largest pong frame a server sends.
const PONG_FRAME: usize = 2 + 125;
/// Pong frames that may wait for a peer that does not read: up to
/// `MAX_QUEUED_PONGS` and one pending in the connection, as many taken by
/// the driver and not written.
const QUEUED_PONGS: usize = 2 * (fahrbahn_core::ws::MAX_QUEUED_PONGS + 1);

/// A client handshake by hand (fixed key), optionally with a subprotocol.
async fn ws_handshake(io: &mut DuplexStream, protocol: Option<&str>) {
    let protocol = protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: sim\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

/// A masked client ping (the mask key is zero: the payload reads as is).
fn ws_ping(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x89, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// Reads server frames until a pong with `payload`; returns the pong
/// bytes read in all.
async fn ws_read_until_pong(io: &mut DuplexStream, payload: &[u8]) -> usize {
    let mut total = 0;
    loop {
        let mut head = [0u8; 2];
        io.read_exact(&mut head).await.unwrap();
        assert!(head[1] < 126, "only control frames are expected");
        let mut body = vec![0; usize::from(head[1])];
        io.read_exact(&mut body).await.unwrap();
        assert_eq!(head[0], 0x8A, "a pong");
        total += 2 + body.len();
        if body == payload {
            return total;
        }
    }
}

fn rs_ping(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![1, 0, 0, payload.len() as u8];
    frame.extend_from_slice(payload);
    frame
}

async fn rs_read_until_pong(io: &mut DuplexStream, payload: &[u8]) -> usize {
    let mut total = 0;
    loop {
        let mut head = [0u8; 4];
        io.read_exact(&mut head).await.unwrap();
        assert_eq!(head[0], 2, "a PONG");
        let mut body = vec![0; usize::from(head[3])];
        io.read_exact(&mut body).await.unwrap();
        total += 4 + body.len();
        if body == payload {
            return total;
        }
    }
}

/// Floods `PINGS` pings built by `frame` in one write: it returns once
/// the server has read them all (the pipe holds 16 KiB). A server that
/// stopped reading for good (one that queued a pong per ping until its
/// high-water mark) fails this after a minute of simulated time, when
/// everything is idle.
async fn flood(io: &mut DuplexStream, frame: fn(&[u8]) -> Vec<u8>) {
    let mut all = Vec::new();
    for i in 0..PINGS {
        all.extend(frame(&[b'a' + (i % 26) as u8; 125]));
    }
    tokio::time::timeout(Duration::from_secs(60), io.write_all(&all))
        .await
        .expect("the server reads the whole flood")
        .unwrap();
}

/// An echo server on simulated port 9; records the most output any
/// connection had queued.
fn echo_server(net: &SimNet, max_queued: Arc<AtomicUsize>) {
    let mut listener = net.listen(9);
    let net2 = net.clone();
    tokio::spawn(async move {
        while let Some(pipe) = listener.recv().await {
            let (net, max) = (net2.clone(), max_queued.clone());
            tokio::spawn(async move {
                let mut ws = WebSocket::accept(&net, pipe, ServerConfig::default())
                    .await
                    .unwrap();
                loop {
                    let next = std::future::poll_fn(|cx| {
                        let r = ws.poll_recv(cx);
                        max.fetch_max(ws.queued_output(), Ordering::Relaxed);
                        r
                    })
                    .await;
                    match next {
                        Some(Ok(msg)) => {
                            if ws.send(msg).await.is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            });
        }
    });
}

#[tokio::test(start_paused = true)]
async fn a_ping_flood_that_is_never_read_queues_a_bounded_number_of_pongs_on_the_echo_server() {
    let net = SimNet::default();
    let max_queued = Arc::new(AtomicUsize::new(0));
    echo_server(&net, max_queued.clone());

    let mut flooder = net.dial(9).unwrap();
    ws_handshake(&mut flooder, None).await;
    flood(&mut flooder, ws_ping).await;

    // Another client is served while the flooder still reads nothing.
    let pipe = TokioIo(net.dial(9).unwrap());
    let mut other = WebSocket::connect(&net, pipe, ClientConfig::new("sim", "/"))
        .await
        .unwrap();
    other.send("hello").await.unwrap();
    assert_eq!(other.recv().await.unwrap().unwrap(), Message::text("hello"));

    let max = max_queued.load(Ordering::Relaxed);
    assert!(max <= MARK + PONG_FRAME, "{max}");
    // What the flooder gets when it finally reads: what filled its pipe,
    // plus the few pongs left queued (`MAX_QUEUED_PONGS` in the machine and
    // as many taken by the driver, each with one pending): not a pong per
    // ping.
    flooder.write_all(&ws_ping(b"end")).await.unwrap();
    let pongs = ws_read_until_pong(&mut flooder, b"end").await;
    assert!(pongs <= PIPE_BUFFER + QUEUED_PONGS * PONG_FRAME, "{pongs}");
    assert!(max <= PIPE_BUFFER + QUEUED_PONGS * PONG_FRAME, "{max}");
}

async fn router(net: &SimNet) -> Router {
    Router::builder()
        .websocket("127.0.0.1:7")
        .rawsocket("127.0.0.1:8")
        .start(net)
        .await
        .expect("router starts")
}

#[tokio::test(start_paused = true)]
async fn a_websocket_ping_flood_on_the_router_queues_a_bounded_number_of_pongs() {
    let net = SimNet::default();
    let router = router(&net).await;
    let mut flooder = net.dial(7).unwrap();
    ws_handshake(&mut flooder, Some("wamp.2.json")).await;
    flood(&mut flooder, ws_ping).await;

    let session = Session::connect(&net, "rs://sim:8", "realm1")
        .await
        .unwrap();
    session.leave().await.unwrap();

    flooder.write_all(&ws_ping(b"end")).await.unwrap();
    let pongs = ws_read_until_pong(&mut flooder, b"end").await;
    assert!(pongs <= PIPE_BUFFER + QUEUED_PONGS * PONG_FRAME, "{pongs}");
    drop(flooder);
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_rawsocket_ping_flood_on_the_router_queues_one_pong() {
    let net = SimNet::default();
    let router = router(&net).await;
    let mut flooder = net.dial(8).unwrap();
    flooder.write_all(&RAWSOCKET_JSON_HELLO).await.unwrap();
    let mut reply = [0u8; 4];
    flooder.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[0], 0x7F);
    flood(&mut flooder, rs_ping).await;

    let session = Session::connect(&net, "rs://sim:8", "realm1")
        .await
        .unwrap();
    session.leave().await.unwrap();

    flooder.write_all(&rs_ping(b"end")).await.unwrap();
    let pongs = rs_read_until_pong(&mut flooder, b"end").await;
    assert!(pongs <= PIPE_BUFFER + 4 * (4 + 125), "{pongs}");
    drop(flooder);
    router.shutdown().await;
}

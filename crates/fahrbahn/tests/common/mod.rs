//! Loopback scenarios shared by the per-runtime test files (`tokio.rs`,
//! `smol.rs`, `async_std.rs`). Every scenario is generic over
//! [`fahrbahn::runtime::Runtime`]; the files only supply the runtime and a
//! `block_on`, through [`scenario_tests!`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::harness::{Counter, JoinHandle, spawn, timeout};
use fahrbahn::Error;
use fahrbahn::core::ws::HandshakeError;
use fahrbahn::runtime::{Runtime, TcpListener as _};
use fahrbahn::ws::{
    Accept, ClientConfig, CloseCode, Closed, DeflateConfig, Handshake, HandshakeRequest, Message,
    ServerConfig, WebSocket,
};
use futures_util::future::{Either, select};
use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
use futures_util::{SinkExt, StreamExt as _};

/// Defines one `#[test]` per scenario. `$run` is a function
/// `fn run<F: Future<Output = ()>>(scenario: impl FnOnce(Rt) -> F)` of the
/// including file; `$module` is the facade module of that runtime
/// (`tokio`, `smol`, `async_std`).
macro_rules! scenario_tests {
    ($run:ident, $module:ident) => {
        scenario_tests!(@tests $run:
            text_and_binary,
            large_messages,
            permessage_deflate,
            deflate_declined,
            subprotocol_negotiation,
            accept_with_reject,
            accept_with_subprotocol,
            close_from_client,
            close_from_server,
            ping_is_answered,
            split_concurrent,
            stream_and_sink,
            connect_refused,
            bad_url,
            bad_http_requests,
        );

        /// The facade's runtime-bound functions (`bind`, `accept`,
        /// `connect`, `connect_with`, `accept_stream`).
        #[test]
        fn facade_module_functions() {
            use fahrbahn::runtime::TcpListener as _;
            $run(|rt| async move {
                let listener = fahrbahn::$module::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap();
                let url = format!("ws://{}/facade", listener.local_addr().unwrap());
                let server = crate::harness::spawn(&rt, async move {
                    let mut ws = fahrbahn::$module::accept(&listener, fahrbahn::ws::ServerConfig::default())
                        .await
                        .unwrap();
                    assert_eq!(ws.handshake_info().path, "/facade");
                    while let Some(m) = ws.recv().await {
                        ws.send(m.unwrap()).await.unwrap();
                    }
                    // accept_stream over a stream accepted by hand.
                    let (stream, _) = listener.accept().await.unwrap();
                    let mut ws = fahrbahn::$module::accept_stream(stream, fahrbahn::ws::ServerConfig::default())
                        .await
                        .unwrap();
                    let m = ws.recv().await.unwrap().unwrap();
                    ws.send(m).await.unwrap();
                    assert!(ws.recv().await.is_none());
                });
                let mut ws = fahrbahn::$module::connect(&url).await.unwrap();
                ws.send("one").await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap(), fahrbahn::ws::Message::text("one"));
                ws.close(fahrbahn::ws::CloseCode::NORMAL, "").await.unwrap();

                let mut config = fahrbahn::ws::ClientConfig::default();
                config.subprotocols.push("none.example".into());
                let mut ws = fahrbahn::$module::connect_with(&url, config).await.unwrap();
                assert_eq!(ws.subprotocol(), None);
                ws.send("two").await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap(), fahrbahn::ws::Message::text("two"));
                ws.close(fahrbahn::ws::CloseCode::NORMAL, "").await.unwrap();
                server.await;
            });
        }
    };
    (@tests $run:ident: $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $run(common::$name);
            }
        )*
    };
}

// ----- helpers -------------------------------------------------------------

/// How long one awaited step may take: a failure bound only.
const STEP: Duration = Duration::from_secs(10);

/// A close timeout no scenario may ever wait for: set where a scenario
/// checks that a close completes by the peer's answer, not by the timer
/// (waiting for it would run into [`STEP`] and fail).
const NEVER: Duration = Duration::from_secs(3600);

/// What an echo server saw.
#[derive(Debug)]
pub(crate) struct ServerReport {
    pub(crate) handshake: Handshake,
    pub(crate) echoed: usize,
    pub(crate) closed: Option<Closed>,
    /// The error `recv` ended with, if any.
    pub(crate) error: Option<String>,
}

async fn bind<R: Runtime>(rt: &R) -> (R::TcpListener, SocketAddr) {
    let listener = rt.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Echoes every message until the connection ends.
async fn echo<S>(ws: &mut WebSocket<S>) -> (usize, Option<String>)
where
    S: fahrbahn::runtime::AsyncRead + fahrbahn::runtime::AsyncWrite + Unpin,
{
    let mut echoed = 0;
    while let Some(msg) = ws.recv().await {
        match msg {
            Ok(m) => {
                if let Err(e) = ws.send(m).await {
                    return (echoed, Some(e.to_string()));
                }
                echoed += 1;
            }
            Err(e) => return (echoed, Some(e.to_string())),
        }
    }
    (echoed, None)
}

/// Starts a one-connection echo server; returns its `ws://` URL and the
/// server's report.
async fn echo_server<R: Runtime>(
    rt: &R,
    config: ServerConfig,
) -> (String, JoinHandle<ServerReport>) {
    let (listener, addr) = bind(rt).await;
    let task_rt = rt.clone();
    let handle = spawn(rt, async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = WebSocket::accept(&task_rt, stream, config).await.unwrap();
        let (echoed, error) = echo(&mut ws).await;
        ServerReport {
            handshake: ws.handshake_info().clone(),
            echoed,
            closed: ws.close_info().cloned(),
            error,
        }
    });
    (format!("ws://{addr}/echo"), handle)
}

/// Like [`echo_server`], but counts the ping frames the server receives
/// (on the wire, below the WebSocket layer).
async fn ping_counting_echo_server<R: Runtime>(
    rt: &R,
) -> (String, JoinHandle<ServerReport>, Counter) {
    let (listener, addr) = bind(rt).await;
    let task_rt = rt.clone();
    let pings = Counter::new();
    let counter = pings.clone();
    let handle = spawn(rt, async move {
        let (stream, _) = listener.accept().await.unwrap();
        let stream = PingTap {
            io: stream,
            pings: counter,
            state: TapState::Http { matched: 0 },
        };
        let mut ws = WebSocket::accept(&task_rt, stream, ServerConfig::default())
            .await
            .unwrap();
        let (echoed, error) = echo(&mut ws).await;
        ServerReport {
            handshake: ws.handshake_info().clone(),
            echoed,
            closed: ws.close_info().cloned(),
            error,
        }
    });
    (format!("ws://{addr}/echo"), handle, pings)
}

/// A server-side stream that counts the client's ping frames as they are
/// read: it skips the HTTP request, then follows the frame headers.
struct PingTap<S> {
    io: S,
    pings: Counter,
    state: TapState,
}

enum TapState {
    /// In the HTTP request; `matched` bytes of its ending "\r\n\r\n" seen.
    Http { matched: usize },
    /// In a frame header, collected so far.
    Header(Vec<u8>),
    /// In a payload, with this many bytes left.
    Payload(u64),
}

impl TapState {
    fn feed(&mut self, mut data: &[u8], pings: &Counter) {
        while !data.is_empty() {
            match self {
                TapState::Http { matched } => {
                    let b = data[0];
                    data = &data[1..];
                    *matched = match (*matched, b) {
                        (0 | 2, b'\r') => *matched + 1,
                        (1 | 3, b'\n') => *matched + 1,
                        (_, b'\r') => 1,
                        _ => 0,
                    };
                    if *matched == 4 {
                        *self = TapState::Header(Vec::new());
                    }
                }
                TapState::Header(head) => {
                    head.push(data[0]);
                    data = &data[1..];
                    if head.len() < 2 {
                        continue;
                    }
                    let ext = match head[1] & 0x7F {
                        126 => 2,
                        127 => 8,
                        _ => 0,
                    };
                    let mask = if head[1] & 0x80 != 0 { 4 } else { 0 };
                    if head.len() < 2 + ext + mask {
                        continue;
                    }
                    let len = match ext {
                        0 => u64::from(head[1] & 0x7F),
                        _ => head[2..2 + ext]
                            .iter()
                            .fold(0u64, |n, b| (n << 8) | u64::from(*b)),
                    };
                    if head[0] & 0x0F == 0x9 {
                        pings.add();
                    }
                    *self = TapState::Payload(len);
                }
                TapState::Payload(left) => {
                    let n = (*left).min(data.len() as u64);
                    data = &data[n as usize..];
                    *left -= n;
                }
            }
            if matches!(self, TapState::Payload(0)) {
                *self = TapState::Header(Vec::new());
            }
        }
    }
}

impl<S: fahrbahn::runtime::AsyncRead + Unpin> fahrbahn::runtime::AsyncRead for PingTap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let n = std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.state.feed(&buf[..n], &this.pings);
        Poll::Ready(Ok(n))
    }
}

impl<S: fahrbahn::runtime::AsyncWrite + Unpin> fahrbahn::runtime::AsyncWrite for PingTap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
}

fn deflate_server() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.deflate = Some(DeflateConfig::default());
    config
}

fn deflate_client() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.deflate = Some(DeflateConfig::default());
    config
}

/// Deterministic pseudo-random bytes (incompressible).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Compressible ASCII text of `len` bytes.
fn prose(len: usize) -> String {
    let words = [
        "fahrbahn ",
        "autobahn ",
        "websocket ",
        "wamp ",
        "frame ",
        "deflate ",
    ];
    let mut s = String::with_capacity(len + 16);
    let mut i = 0usize;
    while s.len() < len {
        s.push_str(words[(i * 7 + i / 3) % words.len()]);
        i += 1;
    }
    s.truncate(len);
    s
}

async fn roundtrip<S>(ws: &mut WebSocket<S>, msg: Message)
where
    S: fahrbahn::runtime::AsyncRead + fahrbahn::runtime::AsyncWrite + Unpin,
{
    ws.send(msg.clone()).await.unwrap();
    let got = ws
        .recv()
        .await
        .expect("connection ended")
        .expect("recv failed");
    assert_eq!(got.is_text(), msg.is_text(), "message type changed");
    assert_eq!(got.len(), msg.len(), "message length changed");
    assert!(got == msg, "message content changed");
}

/// Closes from the client and checks both ends saw a clean 1000 close.
async fn close_and_check<S>(mut ws: WebSocket<S>, server: JoinHandle<ServerReport>, echoed: usize)
where
    S: fahrbahn::runtime::AsyncRead + fahrbahn::runtime::AsyncWrite + Unpin,
{
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    let closed = ws.close_info().expect("client close info");
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert!(!closed.by_peer);
    assert!(closed.error.is_none());
    let report = server.await;
    assert_eq!(report.error, None);
    assert_eq!(report.echoed, echoed);
    let closed = report.closed.expect("server close info");
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert_eq!(closed.reason, "done");
    assert!(closed.by_peer);
}

// ----- scenarios -----------------------------------------------------------

pub(crate) async fn text_and_binary<R: Runtime>(rt: R) {
    let (url, server) = echo_server(&rt, ServerConfig::default()).await;
    let mut ws = fahrbahn::ws::connect(&rt, &url).await.unwrap();
    assert_eq!(ws.handshake_info().extensions, None);
    assert_eq!(ws.subprotocol(), None);
    let msgs = [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text(""),
        Message::binary(Vec::new()),
        Message::text("grüße, 世界 🚗"),
        Message::binary(noise(70_000, 3)),
    ];
    for m in &msgs {
        roundtrip(&mut ws, m.clone()).await;
    }
    close_and_check(ws, server, msgs.len()).await;
}

pub(crate) async fn large_messages<R: Runtime>(rt: R) {
    let (url, server) = echo_server(&rt, ServerConfig::default()).await;
    let mut ws = fahrbahn::ws::connect(&rt, &url).await.unwrap();
    roundtrip(&mut ws, Message::binary(noise(4 << 20, 7))).await;
    roundtrip(&mut ws, Message::text(prose(4 << 20))).await;
    close_and_check(ws, server, 2).await;
}

pub(crate) async fn permessage_deflate<R: Runtime>(rt: R) {
    let (url, server) = echo_server(&rt, deflate_server()).await;
    let mut ws = fahrbahn::ws::connect_with(&rt, &url, deflate_client())
        .await
        .unwrap();
    let ext = ws.handshake_info().extensions.clone();
    if cfg!(feature = "deflate") {
        let ext = ext.expect("permessage-deflate negotiated");
        assert!(ext.starts_with("permessage-deflate"), "{ext}");
    } else {
        assert_eq!(ext, None);
    }
    // Context takeover across many small messages, then big ones.
    for i in 0..50 {
        roundtrip(
            &mut ws,
            Message::text(format!("message {i} {}", prose(100))),
        )
        .await;
    }
    roundtrip(&mut ws, Message::binary(Vec::new())).await;
    roundtrip(&mut ws, Message::text(prose(4 << 20))).await;
    // Incompressible data (1 MiB: deflating noise is slow in debug builds).
    roundtrip(&mut ws, Message::binary(noise(1 << 20, 11))).await;
    close_and_check(ws, server, 53).await;
}

pub(crate) async fn deflate_declined<R: Runtime>(rt: R) {
    // Offered by the client, not configured on the server.
    let (url, server) = echo_server(&rt, ServerConfig::default()).await;
    let mut ws = fahrbahn::ws::connect_with(&rt, &url, deflate_client())
        .await
        .unwrap();
    assert_eq!(ws.handshake_info().extensions, None);
    roundtrip(&mut ws, Message::text(prose(10_000))).await;
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    let report = server.await;
    assert_eq!(report.handshake.extensions, None);
    assert_eq!(report.echoed, 1);

    // Configured on the server, not offered by the client.
    let (url, server) = echo_server(&rt, deflate_server()).await;
    let mut ws = fahrbahn::ws::connect(&rt, &url).await.unwrap();
    assert_eq!(ws.handshake_info().extensions, None);
    roundtrip(&mut ws, Message::text(prose(10_000))).await;
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    let report = server.await;
    assert_eq!(report.handshake.extensions, None);

    // Both: the server's report shows the agreement too.
    let (url, server) = echo_server(&rt, deflate_server()).await;
    let mut ws = fahrbahn::ws::connect_with(&rt, &url, deflate_client())
        .await
        .unwrap();
    roundtrip(&mut ws, Message::text("x")).await;
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    let report = server.await;
    assert_eq!(report.handshake.extensions, ws.handshake_info().extensions);
    assert_eq!(
        report.handshake.extensions.is_some(),
        cfg!(feature = "deflate")
    );
}

pub(crate) async fn subprotocol_negotiation<R: Runtime>(rt: R) {
    // The server's order of preference decides among the common ones.
    let mut config = ServerConfig::default();
    config.subprotocols = vec!["wamp.2.msgpack".into(), "wamp.2.json".into()];
    let (url, server) = echo_server(&rt, config.clone()).await;
    let mut client = ClientConfig::default();
    client.subprotocols = vec!["wamp.2.json".into(), "wamp.2.msgpack".into()];
    let mut ws = fahrbahn::ws::connect_with(&rt, &url, client).await.unwrap();
    assert_eq!(ws.subprotocol(), Some("wamp.2.msgpack"));
    roundtrip(&mut ws, Message::text("[1]")).await;
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    let report = server.await;
    assert_eq!(
        report.handshake.subprotocol.as_deref(),
        Some("wamp.2.msgpack")
    );
    assert_eq!(report.handshake.path, "/echo");

    // Nothing in common: no subprotocol, connection still opens.
    let (url, server) = echo_server(&rt, config).await;
    let mut client = ClientConfig::default();
    client.subprotocols = vec!["mqtt".into()];
    let mut ws = fahrbahn::ws::connect_with(&rt, &url, client).await.unwrap();
    assert_eq!(ws.subprotocol(), None);
    roundtrip(&mut ws, Message::text("hi")).await;
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(server.await.handshake.subprotocol, None);
}

pub(crate) async fn accept_with_reject<R: Runtime>(rt: R) {
    let (listener, addr) = bind(&rt).await;
    let task_rt = rt.clone();
    let server = spawn(&rt, async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut seen_path = String::new();
        let mut decide = |req: &HandshakeRequest| -> Result<Accept, (u16, String)> {
            seen_path = req.path.clone();
            Err((403, "no entry".into()))
        };
        let result =
            WebSocket::accept_with(&task_rt, stream, ServerConfig::default(), &mut decide).await;
        (seen_path, result.map(|_| ()))
    });
    let err = fahrbahn::ws::connect(&rt, &format!("ws://{addr}/secret?x=1"))
        .await
        .map(|_| ())
        .expect_err("the handshake must fail");
    assert!(err.to_string().contains("403"), "{err}");
    assert!(
        matches!(
            err,
            Error::WebSocket(fahrbahn::core::ws::Error::Handshake(
                HandshakeError::UnexpectedStatus(403)
            ))
        ),
        "{err:?}"
    );
    let (seen_path, result) = server.await;
    assert_eq!(seen_path, "/secret?x=1");
    let err = result.expect_err("server side fails too");
    assert!(
        matches!(
            err,
            Error::WebSocket(fahrbahn::core::ws::Error::Handshake(
                HandshakeError::Rejected(403)
            ))
        ),
        "{err:?}"
    );
}

pub(crate) async fn accept_with_subprotocol<R: Runtime>(rt: R) {
    let (listener, addr) = bind(&rt).await;
    let task_rt = rt.clone();
    let server = spawn(&rt, async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut decide = |req: &HandshakeRequest| -> Result<Accept, (u16, String)> {
            assert_eq!(req.header("x-token"), Some("let-me-in"));
            // Pick the client's last choice, to show the callback decides.
            let chosen = req.subprotocols().last().map(|s| s.to_string());
            Ok(Accept {
                subprotocol: chosen,
                headers: vec![("X-Server".into(), "fahrbahn-test".into())],
            })
        };
        let mut ws = WebSocket::accept_with(&task_rt, stream, ServerConfig::default(), &mut decide)
            .await
            .unwrap();
        assert_eq!(ws.subprotocol(), Some("chat.v1"));
        let (echoed, error) = echo(&mut ws).await;
        assert_eq!(error, None);
        echoed
    });
    let mut client = ClientConfig::default();
    client.subprotocols = vec!["chat.v2".into(), "chat.v1".into()];
    client.headers = vec![("X-Token".into(), "let-me-in".into())];
    let mut ws = fahrbahn::ws::connect_with(&rt, &format!("ws://{addr}/"), client)
        .await
        .unwrap();
    assert_eq!(ws.subprotocol(), Some("chat.v1"));
    let header = ws
        .handshake_info()
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-server"))
        .map(|(_, v)| v.as_str());
    assert_eq!(header, Some("fahrbahn-test"));
    roundtrip(&mut ws, Message::text("hi")).await;
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(server.await, 1);
}

pub(crate) async fn close_from_client<R: Runtime>(rt: R) {
    let (url, server) = echo_server(&rt, ServerConfig::default()).await;
    // The server closes the TCP connection first; nobody waits for the
    // close timeout (here: one that would never end in time).
    let mut config = ClientConfig::default();
    config.timeouts.close = NEVER;
    let mut ws = fahrbahn::ws::connect_with(&rt, &url, config).await.unwrap();
    roundtrip(&mut ws, Message::text("before close")).await;
    assert!(ws.close_info().is_none());
    timeout(
        &rt,
        STEP,
        "the close completes without the close timeout",
        ws.close(CloseCode::NORMAL, "done"),
    )
    .await
    .unwrap();
    let closed = ws.close_info().unwrap().clone();
    assert_eq!(
        (closed.code, closed.by_peer, closed.error),
        (CloseCode::NORMAL, false, None)
    );
    // After the close: recv ends, send fails.
    assert!(ws.recv().await.is_none());
    let err = ws.send("too late").await.unwrap_err();
    assert!(matches!(err, Error::Send(_)), "{err:?}");
    // A second close is harmless.
    ws.close(CloseCode::NORMAL, "again").await.unwrap();

    let report = server.await;
    assert_eq!(report.error, None);
    assert_eq!(report.echoed, 1);
    let closed = report.closed.unwrap();
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert_eq!(closed.reason, "done");
    assert!(closed.by_peer);
    assert!(closed.error.is_none());
}

pub(crate) async fn close_from_server<R: Runtime>(rt: R) {
    let (listener, addr) = bind(&rt).await;
    let task_rt = rt.clone();
    let server = spawn(&rt, async move {
        let (stream, _) = listener.accept().await.unwrap();
        // The client's answer ends the close, not the close timeout (here:
        // one that would never end in time).
        let mut config = ServerConfig::default();
        config.timeouts.close = NEVER;
        let mut ws = WebSocket::accept(&task_rt, stream, config).await.unwrap();
        let m = ws.recv().await.unwrap().unwrap();
        ws.send(m).await.unwrap();
        timeout(
            &task_rt,
            STEP,
            "the server's close completes without the close timeout",
            ws.close(CloseCode(4000), "server says bye"),
        )
        .await
        .unwrap();
        let closed = ws.close_info().unwrap().clone();
        assert!(ws.recv().await.is_none());
        closed
    });
    let mut ws = fahrbahn::ws::connect(&rt, &format!("ws://{addr}/"))
        .await
        .unwrap();
    roundtrip(&mut ws, Message::text("ping me")).await;
    assert!(ws.recv().await.is_none(), "clean close ends recv with None");
    let closed = ws.close_info().unwrap();
    assert_eq!(closed.code, CloseCode(4000));
    assert_eq!(closed.reason, "server says bye");
    assert!(closed.by_peer);
    assert!(closed.error.is_none());
    assert!(matches!(ws.send("x").await, Err(Error::Send(_))));
    drop(ws);
    let closed = server.await;
    assert_eq!(closed.code, CloseCode(4000));
    assert!(!closed.by_peer);
    assert!(closed.error.is_none());
}

pub(crate) async fn ping_is_answered<R: Runtime>(rt: R) {
    let (url, server) = echo_server(&rt, ServerConfig::default()).await;
    let mut ws = fahrbahn::ws::connect(&rt, &url).await.unwrap();
    ws.ping(b"are you there").await.unwrap();
    ws.ping(b"").await.unwrap();
    // The pongs are consumed by recv; the next message is the echo.
    roundtrip(&mut ws, Message::text("after ping")).await;
    assert!(matches!(ws.ping(&[0u8; 126]).await, Err(Error::Send(_))));
    ws.ping(b"again").await.unwrap();
    roundtrip(&mut ws, Message::binary(vec![42u8; 10])).await;
    close_and_check(ws, server, 2).await;

    // Keepalive pings every 100 ms with a 2 s pong timeout: while recv is
    // polled, pings go out and the peer's automatic pongs come back, so the
    // connection survives (an unanswered ping would end recv with a
    // PingTimeout error). The test waits for the server to have seen
    // PINGS pings, counted on its wire: the client sends ping k no
    // earlier than (k - 1) intervals after the first, and only while no
    // ping has gone unanswered for the pong timeout, so ping PINGS proves
    // pongs were handled past the pong timeout. No test-side clock: the
    // client's own timers pace it. The pong timeout is generous because
    // the peer's executor may be busy with other tests.
    const INTERVAL: Duration = Duration::from_millis(100);
    const PONG_TIMEOUT: Duration = Duration::from_secs(2);
    const PINGS: usize = 22;
    const _: () = assert!((PINGS as u128 - 1) * INTERVAL.as_millis() > PONG_TIMEOUT.as_millis());
    let (url, server, pings) = ping_counting_echo_server(&rt).await;
    let mut config = ClientConfig::default();
    config.timeouts.ping_interval = Some(INTERVAL);
    config.timeouts.pong_timeout = PONG_TIMEOUT;
    let mut ws = fahrbahn::ws::connect_with(&rt, &url, config).await.unwrap();
    if let Either::Left((got, _)) = select(pin!(ws.recv()), pin!(pings.reached(PINGS))).await {
        panic!("nothing was sent, yet recv returned {got:?}");
    }
    roundtrip(&mut ws, Message::text("still alive")).await;
    close_and_check(ws, server, 1).await;
}

pub(crate) async fn split_concurrent<R: Runtime>(rt: R) {
    const N: usize = 1000;
    let (url, server) = echo_server(&rt, ServerConfig::default()).await;
    let ws = fahrbahn::ws::connect(&rt, &url).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    let (done_tx, done_rx) = oneshot();
    let reader_task = spawn(&rt, async move {
        for i in 0..N {
            match reader.recv().await {
                Some(Ok(Message::Text(t))) => assert_eq!(t, format!("msg {i}")),
                Some(Ok(Message::Binary(b))) => assert_eq!(b, noise(i % 300, i as u64)),
                other => panic!("message {i}: {other:?}"),
            }
        }
        done_tx.send();
        // The writer closes now; the reader sees the end.
        assert!(reader.recv().await.is_none());
    });
    let writer_task = spawn(&rt, async move {
        for i in 0..N {
            let m = if i % 2 == 0 {
                Message::text(format!("msg {i}"))
            } else {
                Message::binary(noise(i % 300, i as u64))
            };
            writer.send(m).await.unwrap();
        }
        done_rx.await;
        writer.close(CloseCode::NORMAL, "done").await.unwrap();
    });
    writer_task.await;
    reader_task.await;
    let report = server.await;
    assert_eq!(report.echoed, N);
    assert_eq!(report.error, None);
    assert_eq!(report.closed.unwrap().code, CloseCode::NORMAL);
}

pub(crate) async fn stream_and_sink<R: Runtime>(rt: R) {
    // The server is a split WebSocket forwarded into itself.
    let (listener, addr) = bind(&rt).await;
    let task_rt = rt.clone();
    let server = spawn(&rt, async move {
        let (stream, _) = listener.accept().await.unwrap();
        let ws = WebSocket::accept(&task_rt, stream, ServerConfig::default())
            .await
            .unwrap();
        let (reader, writer) = ws.split();
        reader.forward(writer).await
    });
    let mut ws = fahrbahn::ws::connect(&rt, &format!("ws://{addr}/"))
        .await
        .unwrap();
    for i in 0..10 {
        ws.send(Message::text(format!("item {i}"))).await.unwrap();
    }
    // SinkExt::send on the WebSocket itself (fully qualified: WebSocket has
    // an inherent send).
    SinkExt::send(&mut ws, Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    let mut batch =
        futures_util::stream::iter((0..20).map(|i| Ok(Message::text(format!("batch {i}")))));
    ws.send_all(&mut batch).await.unwrap();
    for i in 0..10 {
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(format!("item {i}"))
        );
    }
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    let batch: Vec<_> = (&mut ws).take(20).map(|m| m.unwrap()).collect().await;
    assert_eq!(batch.len(), 20);
    assert_eq!(batch[19], Message::text("batch 19"));
    // Sink::close is a graceful close with 1000.
    SinkExt::close(&mut ws).await.unwrap();
    assert!(ws.next().await.is_none());
    assert_eq!(ws.close_info().unwrap().code, CloseCode::NORMAL);
    server.await.unwrap();
}

pub(crate) async fn connect_refused<R: Runtime>(rt: R) {
    let (listener, addr) = bind(&rt).await;
    drop(listener);
    let err = fahrbahn::ws::connect(&rt, &format!("ws://{addr}/"))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
}

pub(crate) async fn bad_url<R: Runtime>(rt: R) {
    for url in [
        "http://127.0.0.1:1/",
        "127.0.0.1:1",
        "ws://",
        "ws://127.0.0.1:notaport/",
        "ws://127.0.0.1:99999/",
        "ws://user@127.0.0.1:1/",
        "ws://[::1/",
    ] {
        let err = fahrbahn::ws::connect(&rt, url)
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, Error::Url(_)), "{url}: {err:?}");
    }
    #[cfg(not(feature = "tls"))]
    {
        let (listener, addr) = bind(&rt).await;
        let err = fahrbahn::ws::connect(&rt, &format!("wss://{addr}/"))
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
        drop(listener);
    }
}

pub(crate) async fn bad_http_requests<R: Runtime>(rt: R) {
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let cases: [(&[u8], &str); 4] = [
        (b"this is not HTTP at all\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            "HTTP/1.1 426 ",
        ),
        (big_header.as_bytes(), "HTTP/1.1 431 "),
    ];
    for (request, status) in cases {
        let (listener, addr) = bind(&rt).await;
        let task_rt = rt.clone();
        let server = spawn(&rt, async move {
            let (stream, _) = listener.accept().await.unwrap();
            WebSocket::accept(&task_rt, stream, ServerConfig::default())
                .await
                .map(|_| ())
        });
        let mut raw = rt.connect_tcp("127.0.0.1", addr.port()).await.unwrap();
        raw.write_all(request).await.unwrap();
        let mut response = Vec::new();
        // The server answers, then closes its side: read to the end.
        raw.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with(status),
            "expected {status:?}, got {response:?}"
        );
        assert!(response.contains("Connection: close"), "{response}");
        drop(raw);
        let err = server.await.expect_err("the server handshake must fail");
        assert!(
            matches!(
                err,
                Error::WebSocket(fahrbahn::core::ws::Error::Handshake(_))
            ),
            "{err:?}"
        );
    }

    // A client that connects and says nothing: the open timeout ends it.
    let (listener, addr) = bind(&rt).await;
    let task_rt = rt.clone();
    let server = spawn(&rt, async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut config = ServerConfig::default();
        config.timeouts.open = Duration::from_millis(200);
        config.timeouts.close = Duration::from_millis(200);
        WebSocket::accept(&task_rt, stream, config)
            .await
            .map(|_| ())
    });
    let raw = rt.connect_tcp("127.0.0.1", addr.port()).await.unwrap();
    let err = server.await.expect_err("silent client times out");
    assert!(
        matches!(
            err,
            Error::WebSocket(fahrbahn::core::ws::Error::OpenTimeout)
        ),
        "{err:?}"
    );
    drop(raw);
}

// ----- a tiny oneshot --------------------------------------------------------

pub(crate) struct OneshotSender(Arc<Mutex<(bool, Option<Waker>)>>);
pub(crate) struct OneshotReceiver(Arc<Mutex<(bool, Option<Waker>)>>);

pub(crate) fn oneshot() -> (OneshotSender, OneshotReceiver) {
    let shared = Arc::new(Mutex::new((false, None)));
    (OneshotSender(shared.clone()), OneshotReceiver(shared))
}

impl OneshotSender {
    pub(crate) fn send(self) {
        let mut s = self.0.lock().unwrap();
        s.0 = true;
        if let Some(w) = s.1.take() {
            w.wake();
        }
    }
}

impl Future for OneshotReceiver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.lock().unwrap();
        if s.0 {
            return Poll::Ready(());
        }
        s.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

//! The WebSocket targets: the opening handshake, and frames into an open
//! connection.

use fahrbahn_core::Rng;
use fahrbahn_core::ws::{
    Accept, ClientConfig, Connection, DeflateConfig, Event, Limits, Message, ServerConfig,
};

use crate::util::{base, pieces, take_byte};

/// Settings picked by the first input byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    /// Fuzz a server (the input is what a client sends) or a client.
    server: bool,
    deflate: Option<DeflateConfig>,
    /// Small limits, so that the limit paths are reachable.
    small: bool,
    /// Handshake only: the server defers its decision to the application.
    defer_accept: bool,
    /// Handshake only: offer/accept subprotocols.
    subprotocols: bool,
}

/// The small limits: frames and messages of at most 1 KiB, heads of 1 KiB.
fn small_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_frame_size = 1024;
    limits.max_message_size = 1024;
    limits.max_handshake_size = 1024;
    limits
}

impl Setup {
    pub(crate) fn from_byte(b: u8) -> Self {
        let deflate = (b & 0x02 != 0).then(|| {
            let mut d = DeflateConfig::default();
            d.client_no_context_takeover = b & 0x04 != 0;
            d.server_no_context_takeover = b & 0x08 != 0;
            let bits = [None, Some(9), Some(12), Some(15)][usize::from(b >> 4 & 3)];
            d.client_max_window_bits = bits;
            d.server_max_window_bits = bits;
            d.min_message_size = if b & 0x40 != 0 { 16 } else { 0 };
            d
        });
        Self {
            server: b & 0x01 == 0,
            deflate,
            small: b & 0x80 != 0,
            defer_accept: b & 0x40 != 0,
            subprotocols: b & 0x20 != 0,
        }
    }

    pub(crate) fn limits(self) -> Limits {
        if self.small {
            small_limits()
        } else {
            Limits::default()
        }
    }

    pub(crate) fn client(self, limits: Limits) -> Connection {
        let mut config = ClientConfig::new("example.com", "/ws");
        config.deflate = self.deflate;
        config.limits = limits;
        if self.subprotocols {
            config.subprotocols = vec!["wamp.2.json".into(), "chat".into()];
        }
        Connection::client(config, Rng::from_seed(7), base())
    }

    pub(crate) fn server(self, limits: Limits) -> Connection {
        let mut config = ServerConfig::default();
        config.deflate = self.deflate;
        config.limits = limits;
        config.defer_accept = self.defer_accept;
        if self.subprotocols {
            config.subprotocols = vec!["chat".into(), "wamp.2.cbor".into()];
        }
        Connection::server(config, Rng::from_seed(8), base())
    }
}

/// What a connection did with its input.
#[derive(Debug, Default)]
struct Trace {
    events: Vec<Event>,
    out: Vec<u8>,
    /// The messages the harness sent back (echoes).
    echoed: Vec<Message>,
    /// The handshake is done (before the input, or by it).
    connected: bool,
}

/// Drains `conn`'s events into `trace`, answering like an application:
/// a deferred request is accepted (with the first offered subprotocol), a
/// message is echoed. Checks the order of events.
#[allow(
    clippy::field_reassign_with_default,
    reason = "the core's settings structs are built from their defaults"
)]
fn drain(conn: &mut Connection, trace: &mut Trace, limits: Limits) {
    while let Some(event) = conn.poll_event() {
        if let Some(Event::Closed(_)) = trace.events.last() {
            panic!("event after Closed: {event:?}");
        }
        match &event {
            Event::Request(request) => {
                let subprotocol = request.subprotocols().first().map(|s| (*s).to_owned());
                let mut accept = Accept::default();
                accept.subprotocol = subprotocol;
                conn.accept(base(), accept)
                    .expect("a request announced by Event::Request can be accepted");
            }
            Event::Connected(_) => {
                assert!(!trace.connected, "Connected twice");
                trace.connected = true;
            }
            Event::Message(message) => {
                assert!(trace.connected, "a message before Connected");
                assert!(
                    message.len() <= limits.max_message_size,
                    "a message of {} bytes over the limit of {}",
                    message.len(),
                    limits.max_message_size
                );
                if conn.is_open() {
                    conn.send(message.clone())
                        .expect("an open connection sends");
                    trace.echoed.push(message.clone());
                }
            }
            Event::Ping(payload) | Event::Pong(payload) => {
                assert!(payload.len() <= 125, "a control payload over 125 bytes");
            }
            Event::Closed(_) => assert!(conn.is_closed(), "Closed, but the connection is not"),
            _ => {}
        }
        trace.events.push(event);
    }
    let _ = conn.poll_transmit(&mut trace.out);
}

/// Feeds `input` to `conn` in pieces (see [`pieces`]), then the end of
/// stream; checks that the output stays bounded.
fn feed(conn: &mut Connection, input: &[u8], chunk: u8, limits: Limits, connected: bool) -> Trace {
    let mut trace = Trace {
        connected,
        ..Trace::default()
    };
    let mut fed = 0;
    for piece in pieces(input, chunk) {
        conn.handle_bytes(base(), piece);
        fed += piece.len();
        drain(conn, &mut trace, limits);
        // Pongs echo pings (a client masks them: 6 bytes for a 2-byte
        // ping), echoes repeat messages, and a close frame and the
        // handshake response are small.
        let bound = 4 * fed + 4096;
        assert!(
            trace.out.len() <= bound,
            "{} bytes of output for {fed} bytes of input",
            trace.out.len()
        );
    }
    conn.handle_eof(base());
    drain(conn, &mut trace, limits);
    assert!(conn.is_closed(), "not closed after the end of stream");
    assert!(
        matches!(trace.events.last(), Some(Event::Closed(_))),
        "the last event is not Closed"
    );
    trace
}

/// The opening handshake, either role: the first byte picks the role and
/// the configuration (deflate, small limits, deferred accept,
/// subprotocols), the second how the rest is cut into reads; the rest is
/// what the peer sends (an HTTP head and maybe frames after it).
///
/// Invariants: no panic; at most one `Connected`, nothing after `Closed`
/// and `Closed` last; output bounded; a server answers `101` exactly when
/// it connects and otherwise an HTTP error or nothing; a client sends
/// nothing but its request unless it connected; the same events whether
/// the input arrives at once or in pieces.
pub fn ws_handshake(data: &[u8]) {
    let (setup, rest) = take_byte(data);
    let (chunk, input) = take_byte(rest);
    let setup = Setup::from_byte(setup);
    let limits = setup.limits();
    let run = |chunk: u8| {
        let mut conn = if setup.server {
            setup.server(limits)
        } else {
            setup.client(limits)
        };
        let mut request = Vec::new();
        let _ = conn.poll_transmit(&mut request);
        assert_eq!(
            request.is_empty(),
            setup.server,
            "a client sends its request at once, a server nothing"
        );
        (feed(&mut conn, input, chunk, limits, false), request)
    };
    let (trace, request) = run(chunk);
    let connected = trace.connected;
    if setup.server {
        if connected {
            assert!(
                trace.out.starts_with(b"HTTP/1.1 101 "),
                "connected without a 101 response"
            );
        } else if !trace.out.is_empty() {
            let status = trace.out.get(9..10);
            assert!(
                trace.out.starts_with(b"HTTP/1.1 ") && matches!(status, Some(b"4" | b"5")),
                "not connected, but the response is not an error: {:?}",
                String::from_utf8_lossy(&trace.out[..trace.out.len().min(40)])
            );
        }
    } else {
        assert!(request.starts_with(b"GET /ws HTTP/1.1\r\n"));
        if !connected {
            assert!(
                trace.out.is_empty(),
                "a client that did not connect sent bytes"
            );
        }
    }
    if chunk != 0 {
        let (whole, _) = run(0);
        assert_eq!(
            comparable(&whole.events),
            comparable(&trace.events),
            "different events when the input arrives at once"
        );
    }
}

/// A client and a server with the handshake done.
pub(crate) fn open_pair(mut setup: Setup, limits: Limits) -> (Connection, Connection) {
    setup.defer_accept = false;
    let mut client = setup.client(limits);
    let mut server = setup.server(limits);
    let mut buf = Vec::new();
    for _ in 0..4 {
        buf.clear();
        let _ = client.poll_transmit(&mut buf);
        server.handle_bytes(base(), &buf);
        buf.clear();
        let _ = server.poll_transmit(&mut buf);
        client.handle_bytes(base(), &buf);
    }
    for conn in [&mut client, &mut server] {
        match conn.poll_event() {
            Some(Event::Connected(handshake)) => assert_eq!(
                handshake.extensions.is_some(),
                setup.deflate.is_some(),
                "permessage-deflate negotiated iff both sides want it"
            ),
            other => panic!("the handshake failed: {other:?}"),
        }
    }
    (client, server)
}

/// Frames into an open connection, either role, with or without
/// permessage-deflate: the first byte picks the role and configuration,
/// the second how the rest is cut into reads; the rest is what the peer
/// sends (frames, masked when the fuzzed side is a server).
///
/// Invariants: no panic; messages within the limit; control payloads of
/// at most 125 bytes; nothing after `Closed`; output bounded; every
/// message is echoed back, and the real peer, fed everything the fuzzed
/// side sends (echoes, pongs, close frames), receives exactly the echoed
/// messages and never fails on them; the same events whether the input
/// arrives at once or in pieces (a failure compared as a failure: which
/// fault of a message shows first may depend on the cuts).
pub fn ws_frames(data: &[u8]) {
    let (setup, rest) = take_byte(data);
    let (chunk, input) = take_byte(rest);
    let setup = Setup::from_byte(setup);
    let limits = setup.limits();
    let run = |chunk: u8| {
        // The fuzzed side has the configured limits; its peer the
        // defaults, so that echoes (one frame each) fit.
        let (client, server) = open_pair(setup, limits);
        let (mut fuzzed, mut peer) = if setup.server {
            (server, client)
        } else {
            (client, server)
        };
        let trace = feed(&mut fuzzed, input, chunk, limits, true);
        peer.handle_bytes(base(), &trace.out);
        let mut received = Vec::new();
        while let Some(event) = peer.poll_event() {
            match event {
                Event::Message(m) => received.push(m),
                Event::Closed(closed) => assert!(
                    closed.by_peer || closed.error.is_none(),
                    "the peer failed on what the fuzzed side sent: {closed:?}"
                ),
                _ => {}
            }
        }
        assert_eq!(
            received, trace.echoed,
            "the peer did not receive the echoed messages"
        );
        trace
    };
    let trace = run(chunk);
    if chunk != 0 {
        let whole = run(0);
        assert_eq!(
            comparable(&whole.events),
            comparable(&trace.events),
            "different events when the input arrives at once"
        );
    }
}

/// Events for comparing runs over the same input cut differently: a
/// failure is compared as a failure only. Which fault of a message with
/// several shows first — invalid UTF-8 in what inflated so far, the
/// compressed data's own error, the inflated size over the limit — may
/// depend on where the reads end, and so do the close code and reason.
fn comparable(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .map(|event| match event {
            Event::Closed(closed) if closed.error.is_some() => {
                let mut closed = closed.clone();
                closed.reason.clear();
                closed.code = fahrbahn_core::ws::CloseCode::PROTOCOL_ERROR;
                closed.error = Some(fahrbahn_core::ws::Error::ConnectionReset);
                Event::Closed(closed)
            }
            other => other.clone(),
        })
        .collect()
}

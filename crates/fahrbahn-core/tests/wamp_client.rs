//! The WAMP client connection ([`ClientConnection`]) against a hand-written
//! fake router, over RawSocket and WebSocket bytes: joining, a call, and
//! what happens when the router misbehaves (undecodable messages, answers
//! to unknown requests, oversized frames, no WAMP subprotocol, closing).
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

use std::time::Instant;

use fahrbahn_core::wamp::error::{
    CLOSE_GOODBYE_AND_OUT, CLOSE_SYSTEM_SHUTDOWN, ERROR_PROTOCOL_VIOLATION,
};
use fahrbahn_core::wamp::{
    ClientConnection, Closed, Codec, Dict, Message, RequestId, Serializer, SessionConfig,
    SessionError, SessionEvent, SessionId, Value,
};
use fahrbahn_core::{Machine, Rng, rawsocket, ws};
use proptest::prelude::*;

const REALM: &str = "realm1";

/// The WAMP subprotocols a real router (Crossbar.io) offers.
fn wamp_subprotocols() -> Vec<String> {
    [false, true]
        .into_iter()
        .flat_map(|batched| {
            Serializer::ALL
                .iter()
                .map(move |s| s.subprotocol(batched).to_owned())
        })
        .collect()
}

// ----- the fake router ----------------------------------------------------

#[derive(Debug)]
enum Framing {
    Raw(Box<rawsocket::Connection>),
    Ws(Box<ws::Connection>),
}

/// What the router's framing reported.
enum FramingEvent {
    Connected(Option<String>),
    Payload(Vec<u8>),
    Closed(String),
    Other,
}

/// A router that speaks the framing and the serializer but has no logic:
/// each test tells it what to send.
#[derive(Debug)]
struct Router {
    framing: Framing,
    /// Serializer and batching (WebSocket: once the handshake chose them).
    wire: Option<(Serializer, bool)>,
    /// The subprotocol the WebSocket handshake chose.
    subprotocol: Option<String>,
    /// Raw payloads received from the client.
    payloads: Vec<Vec<u8>>,
    /// WAMP messages received from the client.
    received: Vec<Message>,
    /// How the framing ended, once it has.
    closed: Option<String>,
}

impl Router {
    fn new(framing: Framing, wire: Option<(Serializer, bool)>) -> Self {
        Self {
            framing,
            wire,
            subprotocol: None,
            payloads: Vec::new(),
            received: Vec::new(),
            closed: None,
        }
    }

    fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        match &mut self.framing {
            Framing::Raw(c) => c.handle_bytes(now, data),
            Framing::Ws(c) => c.handle_bytes(now, data),
        }
        self.drain();
    }

    fn handle_eof(&mut self, now: Instant) {
        match &mut self.framing {
            Framing::Raw(c) => c.handle_eof(now),
            Framing::Ws(c) => c.handle_eof(now),
        }
        self.drain();
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        match &mut self.framing {
            Framing::Raw(c) => c.poll_transmit(buf),
            Framing::Ws(c) => c.poll_transmit(buf),
        }
    }

    fn drain(&mut self) {
        loop {
            let event = match &mut self.framing {
                Framing::Raw(c) => match c.poll_event() {
                    None => break,
                    Some(rawsocket::Event::Message(p)) => FramingEvent::Payload(p),
                    Some(rawsocket::Event::Closed(e)) => FramingEvent::Closed(format!("{e:?}")),
                    Some(_) => FramingEvent::Other,
                },
                Framing::Ws(c) => match c.poll_event() {
                    None => break,
                    Some(ws::Event::Connected(h)) => FramingEvent::Connected(h.subprotocol),
                    Some(ws::Event::Message(m)) => FramingEvent::Payload(m.into_bytes()),
                    Some(ws::Event::Closed(c)) => FramingEvent::Closed(format!("{c:?}")),
                    Some(_) => FramingEvent::Other,
                },
            };
            match event {
                FramingEvent::Connected(subprotocol) => {
                    self.wire = subprotocol
                        .as_deref()
                        .and_then(Serializer::from_subprotocol);
                    self.subprotocol = subprotocol;
                }
                FramingEvent::Payload(p) => {
                    let (serializer, batched) = self.wire.expect("a payload before the handshake");
                    let msgs = if batched {
                        serializer.decode_batched(&p)
                    } else {
                        serializer.decode(&p).map(|m| vec![m])
                    };
                    self.received
                        .extend(msgs.expect("the client sends valid messages"));
                    self.payloads.push(p);
                }
                FramingEvent::Closed(why) => self.closed = Some(why),
                FramingEvent::Other => {}
            }
        }
    }

    /// Frames `payload` as one message, as is.
    fn send_payload(&mut self, payload: &[u8]) {
        let text = self.wire.is_some_and(|(s, _)| !s.is_binary());
        match &mut self.framing {
            Framing::Raw(c) => c.send(payload).expect("router RawSocket open"),
            Framing::Ws(c) => match std::str::from_utf8(payload) {
                Ok(s) if text => c.send_text(s).expect("router WebSocket open"),
                _ => c.send_binary(payload).expect("router WebSocket open"),
            },
        }
    }

    /// Serializes and frames `msg`.
    fn send(&mut self, msg: &Message) {
        let (serializer, batched) = self.wire.expect("connected");
        let mut buf = Vec::new();
        if batched {
            serializer.encode_batched(msg, &mut buf);
        } else {
            serializer.encode(msg, &mut buf);
        }
        self.send_payload(&buf);
    }

    /// The `n`-th message the client sent.
    fn message(&self, n: usize) -> &Message {
        self.received
            .get(n)
            .unwrap_or_else(|| panic!("the client sent {:?}", self.received))
    }
}

// ----- a client wired to the router ----------------------------------------

struct Test {
    now: Instant,
    client: ClientConnection,
    router: Router,
    events: Vec<SessionEvent>,
    /// Each side's transport has been ended (as a driver would once the
    /// other side's machine closed).
    client_eof: bool,
    router_eof: bool,
}

impl Test {
    fn rawsocket(serializer: Serializer) -> Self {
        Self::rawsocket_with(rawsocket::ClientConfig::new(0), serializer)
    }

    fn rawsocket_with(config: rawsocket::ClientConfig, serializer: Serializer) -> Self {
        let now = Instant::now();
        let client =
            ClientConnection::rawsocket(config, serializer, SessionConfig::new(REALM), now);
        let server =
            rawsocket::Connection::server(rawsocket::ServerConfig::new(vec![1, 2, 3]), now);
        Self::new(
            now,
            client,
            Router::new(Framing::Raw(Box::new(server)), Some((serializer, false))),
        )
    }

    fn websocket(offered: &[Codec], router_protocols: Vec<String>) -> Self {
        Self::websocket_with(
            ws::ClientConfig::new("localhost", "/ws"),
            offered,
            router_protocols,
        )
    }

    fn websocket_with(
        config: ws::ClientConfig,
        offered: &[Codec],
        router_protocols: Vec<String>,
    ) -> Self {
        let now = Instant::now();
        let client = ClientConnection::websocket(
            config,
            offered,
            SessionConfig::new(REALM),
            Rng::from_seed(7),
            now,
        );
        let mut server_config = ws::ServerConfig::default();
        server_config.subprotocols = router_protocols;
        let server = ws::Connection::server(server_config, Rng::from_seed(8), now);
        Self::new(
            now,
            client,
            Router::new(Framing::Ws(Box::new(server)), None),
        )
    }

    fn new(now: Instant, client: ClientConnection, router: Router) -> Self {
        Self {
            now,
            client,
            router,
            events: Vec::new(),
            client_eof: false,
            router_eof: false,
        }
    }

    /// Moves bytes both ways until both sides are quiet. A side whose
    /// framing has ended ends the transport, so the other sees EOF.
    fn pump(&mut self) {
        let mut buf = Vec::new();
        for _ in 0..1000 {
            buf.clear();
            let _ = self.client.poll_transmit(&mut buf);
            let up = !buf.is_empty();
            if up {
                self.router.handle_bytes(self.now, &buf);
            }
            buf.clear();
            let _ = self.router.poll_transmit(&mut buf);
            let down = !buf.is_empty();
            if down {
                self.client.handle_bytes(self.now, &buf);
            }
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            if up || down {
                continue;
            }
            if self.client.is_closed() && !self.router_eof {
                self.router_eof = true;
                self.router.handle_eof(self.now);
            } else if self.router.closed.is_some() && !self.client_eof {
                self.client_eof = true;
                self.client.handle_eof(self.now);
            } else {
                return;
            }
        }
        panic!("the connection never went quiet");
    }

    /// Runs the handshake and the join: HELLO from the client, WELCOME
    /// from the router.
    fn join(&mut self) {
        self.pump();
        match self.router.message(0) {
            Message::Hello { realm, details } => {
                assert_eq!(realm, REALM);
                assert!(details.get("roles").and_then(Value::as_dict).is_some());
            }
            other => panic!("expected HELLO, got {other:?}"),
        }
        self.router.send(&Message::Welcome {
            session: 4711,
            details: Dict::new(),
        });
        self.pump();
        assert!(
            matches!(
                self.events.as_slice(),
                [SessionEvent::Joined {
                    session: SessionId(4711),
                    ..
                }]
            ),
            "{:?}",
            self.events
        );
        assert_eq!(self.client.session().session_id(), Some(SessionId(4711)));
        assert!(self.client.session().is_established());
        self.events.clear();
    }

    /// The router sends `msg`.
    fn router_sends(&mut self, msg: &Message) {
        self.router.send(msg);
        self.pump();
    }

    /// The client calls `procedure`; returns the request id.
    fn call(&mut self, procedure: &str) -> u64 {
        let request = self
            .client
            .session_mut()
            .call(
                procedure,
                vec![1.into(), 2.into()],
                Dict::new(),
                Dict::new(),
            )
            .expect("joined")
            .0;
        self.pump();
        match self.router.received.last() {
            Some(Message::Call {
                request: r,
                procedure: p,
                args,
                ..
            }) => {
                assert_eq!((*r, p.as_str()), (request, procedure));
                assert_eq!(args.as_deref(), Some(&[Value::from(1), Value::from(2)][..]));
            }
            other => panic!("expected CALL, got {other:?}"),
        }
        request
    }

    /// The session's end: the last event, and the only `Closed` one; the
    /// connection as a whole is closed.
    fn closed(&self) -> &Closed {
        let closes = self
            .events
            .iter()
            .filter(|e| matches!(e, SessionEvent::Closed(_)))
            .count();
        assert_eq!(closes, 1, "{:?}", self.events);
        assert!(self.client.is_closed(), "the connection is still open");
        assert!(self.client.session().is_closed());
        match self.events.last() {
            Some(SessionEvent::Closed(c)) => c,
            other => panic!("the last event is {other:?}"),
        }
    }

    /// The client aborted with `wamp.error.protocol_violation` (the last
    /// message it sent) and the session ended with that error.
    fn assert_protocol_violation(&self, why: &str) {
        match self.router.received.last() {
            Some(Message::Abort { reason, details }) => {
                assert_eq!(reason, ERROR_PROTOCOL_VIOLATION);
                let message = details.get("message").and_then(Value::as_str).unwrap_or("");
                assert!(message.contains(why), "ABORT message {message:?}");
            }
            other => panic!("expected ABORT, got {other:?}"),
        }
        let closed = self.closed();
        assert_eq!(closed.reason, ERROR_PROTOCOL_VIOLATION);
        assert!(!closed.by_router);
        match &closed.error {
            Some(e @ (SessionError::ProtocolViolation(_) | SessionError::Decode(_))) => {
                let text = e.to_string();
                assert!(text.contains(why), "{text}");
            }
            other => panic!("expected a protocol violation, got {other:?}"),
        }
        assert!(
            self.router.closed.is_some(),
            "the router's transport did not end"
        );
    }

    /// The session ended because its transport did, with an error whose
    /// text contains `why`.
    fn assert_transport_error(&self, why: &str) {
        let closed = self.closed();
        assert!(closed.by_router);
        match &closed.error {
            Some(SessionError::TransportClosed(m)) => {
                assert!(m.to_string().contains(why), "{m}")
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
        assert_eq!(
            closed.error.as_ref().map(SessionError::uri),
            Some("wamp.error.network_failure")
        );
    }
}

fn result(request: u64, value: i64) -> Message {
    Message::Result {
        request,
        details: Dict::new(),
        args: Some(vec![value.into()]),
        kwargs: None,
    }
}

fn assert_result(events: &[SessionEvent], request: u64, value: i64) {
    match events {
        [
            SessionEvent::Result {
                request: r,
                args,
                progress: false,
                ..
            },
        ] => {
            assert_eq!(*r, RequestId(request));
            assert_eq!(args, &vec![Value::from(value)]);
        }
        other => panic!("expected one RESULT event, got {other:?}"),
    }
}

// ----- joining and calling ------------------------------------------------

#[test]
fn rawsocket_join_and_call_every_serializer() {
    for &serializer in Serializer::ALL {
        let mut t = Test::rawsocket(serializer);
        t.join();
        assert_eq!(t.client.codec(), Some(Codec::new(serializer)));
        let request = t.call("com.example.add2");
        t.router_sends(&result(request, 3));
        assert_result(&t.events, request, 3);
        assert!(!t.client.is_closed());
    }
}

#[test]
fn websocket_join_and_call_every_subprotocol() {
    for batched in [false, true] {
        for &serializer in Serializer::ALL {
            let mut t = Test::websocket(
                &[Codec {
                    serializer,
                    batched,
                }],
                wamp_subprotocols(),
            );
            t.join();
            assert_eq!(
                t.router.subprotocol.as_deref(),
                Some(serializer.subprotocol(batched))
            );
            assert_eq!(
                t.client.codec(),
                Some(Codec {
                    serializer,
                    batched
                })
            );
            let request = t.call("com.example.add2");
            t.router_sends(&result(request, 3));
            assert_result(&t.events, request, 3);
        }
    }
}

#[test]
fn websocket_router_picks_by_its_own_preference() {
    // The client prefers CBOR; the router's order (JSON first) wins.
    let offered = [Codec::new(Serializer::Cbor), Codec::new(Serializer::Json)];
    let router = vec!["wamp.2.json".to_owned(), "wamp.2.cbor".to_owned()];
    let mut t = Test::websocket(&offered, router);
    t.join();
    assert_eq!(t.client.codec(), Some(Codec::new(Serializer::Json)));
}

// ----- bad input from the router --------------------------------------------

#[test]
fn undecodable_message_aborts_with_protocol_violation() {
    for &serializer in Serializer::ALL {
        let mut t = Test::rawsocket(serializer);
        t.join();
        t.router.send_payload(b"\xc1\xff not a message [");
        t.pump();
        t.assert_protocol_violation("undecodable message");
        // The RawSocket framing is gone: nothing more is sent.
        let mut buf = Vec::new();
        assert_eq!(t.client.poll_transmit(&mut buf), 0);
    }
}

#[test]
fn undecodable_message_over_websocket_closes_the_websocket() {
    let mut t = Test::websocket(&[Codec::new(Serializer::Json)], wamp_subprotocols());
    t.join();
    t.router.send_payload(b"[36, \"truncated");
    t.pump();
    t.assert_protocol_violation("undecodable message");
    // The client closed the WebSocket with a clean closing handshake.
    let router_close = t.router.closed.as_deref().unwrap();
    assert!(
        router_close.contains("code: CloseCode(1000)"),
        "{router_close}"
    );
    assert!(router_close.contains("error: None"), "{router_close}");
}

#[test]
fn valid_json_that_is_not_a_message_is_a_protocol_violation() {
    let mut t = Test::rawsocket(Serializer::Json);
    t.join();
    t.router.send_payload(br#"{"not": "a list"}"#);
    t.pump();
    t.assert_protocol_violation("undecodable message");
}

#[test]
fn result_for_unknown_request_is_a_protocol_violation() {
    let mut t = Test::rawsocket(Serializer::MsgPack);
    t.join();
    let request = t.call("com.example.add2");
    t.router_sends(&result(request + 1000, 3));
    t.assert_protocol_violation("unknown CALL request");
    // The pending call got no answer: only the session's end.
    assert_eq!(t.events.len(), 1, "{:?}", t.events);

    let mut t = Test::websocket(&[Codec::new(Serializer::Cbor)], wamp_subprotocols());
    t.join();
    t.router_sends(&result(99, 3));
    t.assert_protocol_violation("unknown CALL request");
}

#[test]
fn a_second_result_is_a_protocol_violation() {
    let mut t = Test::rawsocket(Serializer::Json);
    t.join();
    let request = t.call("com.example.add2");
    t.router_sends(&result(request, 3));
    assert_result(&t.events, request, 3);
    t.events.clear();
    t.router_sends(&result(request, 4));
    t.assert_protocol_violation("unknown CALL request");
}

#[test]
fn message_before_welcome_is_a_protocol_violation() {
    let mut t = Test::rawsocket(Serializer::Json);
    t.pump();
    assert!(matches!(t.router.message(0), Message::Hello { .. }));
    t.router_sends(&result(1, 3));
    t.assert_protocol_violation("RESULT before WELCOME");
}

#[test]
fn oversized_rawsocket_frame_ends_the_session_with_a_transport_error() {
    let mut config = rawsocket::ClientConfig::new(0);
    config.max_len_exponent = 0; // we accept 512 bytes
    let mut t = Test::rawsocket_with(config, Serializer::Json);
    t.join();
    // A RESULT of 1000 bytes: the router's framing would refuse to send it,
    // so write the frame by hand.
    let request = t.call("com.example.add2");
    let mut payload = Vec::new();
    Serializer::Json.encode(
        &Message::Result {
            request,
            details: Dict::new(),
            args: Some(vec!["x".repeat(1000).into()]),
            kwargs: None,
        },
        &mut payload,
    );
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![0, len[1], len[2], len[3]];
    frame.extend_from_slice(&payload);
    t.client.handle_bytes(t.now, &frame);
    t.pump();
    t.assert_transport_error("exceeds the maximum of 512");
    assert!(
        !t.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Result { .. })),
        "{:?}",
        t.events
    );
    // The router sees the transport end.
    assert!(t.router.closed.is_some());
}

#[test]
fn rawsocket_frame_at_the_maximum_is_accepted() {
    let mut config = rawsocket::ClientConfig::new(0);
    config.max_len_exponent = 0;
    let mut t = Test::rawsocket_with(config, Serializer::Json);
    t.join();
    let request = t.call("com.example.add2");
    let overhead = {
        let mut p = Vec::new();
        Serializer::Json.encode(&result(request, 0), &mut p);
        p.len()
    };
    // `[50,R,{},[0]]` with the 0 replaced by a string filling 512 bytes.
    let filler = "y".repeat(512 - overhead - 1);
    let msg = Message::Result {
        request,
        details: Dict::new(),
        args: Some(vec![filler.clone().into()]),
        kwargs: None,
    };
    let mut payload = Vec::new();
    Serializer::Json.encode(&msg, &mut payload);
    assert_eq!(payload.len(), 512);
    t.router_sends(&msg);
    match t.events.as_slice() {
        [SessionEvent::Result { args, .. }] => assert_eq!(args, &vec![Value::from(filler)]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_rawsocket_frame_type_ends_the_session() {
    let mut t = Test::rawsocket(Serializer::Cbor);
    t.join();
    t.client.handle_bytes(t.now, &[0x07, 0, 0, 1, 0]);
    t.pump();
    t.assert_transport_error("invalid frame type byte 0x07");
}

#[test]
fn oversized_websocket_message_ends_the_session_with_a_transport_error() {
    let mut config = ws::ClientConfig::new("localhost", "/ws");
    config.limits.max_message_size = 1024;
    let mut t = Test::websocket_with(
        config,
        &[Codec::new(Serializer::MsgPack)],
        wamp_subprotocols(),
    );
    t.join();
    let request = t.call("com.example.add2");
    t.router_sends(&Message::Result {
        request,
        details: Dict::new(),
        args: Some(vec![Value::Bytes(vec![7; 4096])]),
        kwargs: None,
    });
    t.assert_transport_error("message exceeds the limit of 1024 bytes");
    assert!(
        !t.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Result { .. }))
    );
    // The client failed the WebSocket with 1009 (message too big).
    let router_close = t.router.closed.as_deref().unwrap();
    assert!(router_close.contains("CloseCode(1009)"), "{router_close}");
}

#[test]
fn router_choosing_no_wamp_subprotocol_is_a_transport_error() {
    for router_protocols in [Vec::new(), vec!["mqtt".to_owned()]] {
        let mut t = Test::websocket(&[Codec::new(Serializer::Json)], router_protocols);
        t.pump();
        assert_eq!(t.router.subprotocol, None);
        // No HELLO went out, and the WebSocket was closed.
        assert!(t.router.received.is_empty(), "{:?}", t.router.received);
        assert_eq!(t.client.codec(), None);
        t.assert_transport_error("chose no WAMP subprotocol");
        let router_close = t.router.closed.as_deref().unwrap();
        assert!(router_close.contains("CloseCode(1008)"), "{router_close}");
    }
}

#[test]
fn router_closing_the_websocket_ends_the_session() {
    let mut t = Test::websocket(&[Codec::new(Serializer::Json)], wamp_subprotocols());
    t.join();
    let request = t.call("com.example.add2");
    match &mut t.router.framing {
        Framing::Ws(c) => c.close(t.now, ws::CloseCode::GOING_AWAY, "bye").unwrap(),
        Framing::Raw(_) => unreachable!(),
    }
    t.pump();
    t.assert_transport_error("close code 1001");
    // The pending call is forgotten: a late RESULT would be a violation,
    // but nothing more can arrive anyway.
    assert!(
        !t.events.iter().any(
            |e| matches!(e, SessionEvent::Result { request: r, .. } if *r == RequestId(request))
        )
    );
    assert_eq!(
        t.client
            .session_mut()
            .call("a.b", vec![], Dict::new(), Dict::new()),
        Err(fahrbahn_core::wamp::CommandError::Closed)
    );
}

#[test]
fn router_closing_the_rawsocket_ends_the_session() {
    let mut t = Test::rawsocket(Serializer::Json);
    t.join();
    match &mut t.router.framing {
        Framing::Raw(c) => c.close(),
        Framing::Ws(_) => unreachable!(),
    }
    t.router.drain();
    t.pump();
    t.assert_transport_error("transport closed by the peer");
}

#[test]
fn eof_inside_a_rawsocket_frame_is_a_reset() {
    let mut t = Test::rawsocket(Serializer::Json);
    t.join();
    t.client.handle_bytes(t.now, &[0, 0, 0, 10, b'[']);
    t.client.handle_eof(t.now);
    t.pump();
    t.assert_transport_error("inside a frame");
}

// ----- closing --------------------------------------------------------------

#[test]
fn goodbye_from_the_router_is_answered_and_the_transport_closes() {
    for websocket in [false, true] {
        let mut t = if websocket {
            Test::websocket(&[Codec::new(Serializer::MsgPack)], wamp_subprotocols())
        } else {
            Test::rawsocket(Serializer::MsgPack)
        };
        t.join();
        t.router_sends(&Message::Goodbye {
            details: Dict::new(),
            reason: CLOSE_SYSTEM_SHUTDOWN.into(),
        });
        match t.router.message(1) {
            Message::Goodbye { reason, .. } => assert_eq!(reason, CLOSE_GOODBYE_AND_OUT),
            other => panic!("expected GOODBYE, got {other:?}"),
        }
        assert_eq!(t.router.received.len(), 2);
        let closed = t.closed();
        assert_eq!(closed.reason, CLOSE_SYSTEM_SHUTDOWN);
        assert!(closed.by_router);
        assert_eq!(closed.error, None);
        let router_close = t.router.closed.as_deref().unwrap();
        if websocket {
            assert!(router_close.contains("CloseCode(1000)"), "{router_close}");
            assert!(router_close.contains("error: None"), "{router_close}");
        } else {
            assert!(router_close.contains("error: None"), "{router_close}"); // a clean end of stream
        }
    }
}

#[test]
fn leaving_waits_for_the_routers_goodbye() {
    let mut t = Test::websocket(&[Codec::new(Serializer::Json)], wamp_subprotocols());
    t.join();
    t.client.session_mut().leave_normal(t.now).unwrap();
    t.pump();
    assert!(matches!(t.router.message(1), Message::Goodbye { .. }));
    assert!(t.events.is_empty(), "{:?}", t.events);
    assert!(!t.client.is_closed());
    t.router_sends(&Message::Goodbye {
        details: Dict::new(),
        reason: CLOSE_GOODBYE_AND_OUT.into(),
    });
    let closed = t.closed();
    assert!(!closed.by_router);
    assert_eq!(closed.error, None);
    // No second GOODBYE.
    assert_eq!(t.router.received.len(), 2);
}

#[test]
fn abort_from_the_router_ends_the_session() {
    let mut t = Test::rawsocket(Serializer::Cbor);
    t.pump();
    let mut details = Dict::new();
    details.insert("message".into(), "no such realm".into());
    t.router_sends(&Message::Abort {
        details,
        reason: "wamp.error.no_such_realm".into(),
    });
    let closed = t.closed();
    assert_eq!(
        closed.error,
        Some(SessionError::Aborted {
            reason: "wamp.error.no_such_realm".into(),
            message: Some("no such realm".into()),
        })
    );
    // We do not answer an ABORT.
    assert_eq!(t.router.received.len(), 1);
}

// ----- JSON batched -----------------------------------------------------------

#[test]
fn json_batched_accepts_both_separators_and_sends_0x18() {
    let mut t = Test::websocket(&[Codec::batched(Serializer::Json)], wamp_subprotocols());
    t.pump();
    assert_eq!(t.client.codec(), Some(Codec::batched(Serializer::Json)));
    // HELLO arrived as one record ending with 0x18 (what Crossbar splits on).
    let hello = &t.router.payloads[0];
    assert_eq!(hello.last(), Some(&0x18), "{hello:?}");
    assert!(!hello.contains(&0x1e));
    assert!(matches!(t.router.message(0), Message::Hello { .. }));

    // WELCOME with the spec's separator 0x1e.
    t.router.send_payload(b"[2,4711,{}]\x1e");
    t.pump();
    assert!(matches!(
        t.events.as_slice(),
        [SessionEvent::Joined {
            session: SessionId(4711),
            ..
        }]
    ));
    t.events.clear();

    // Two calls answered in one WebSocket message, one record with each
    // separator (and no trailing separator on the last).
    let a = t.call("com.example.a");
    let b = t.call("com.example.b");
    let batch = format!("[50,{a},{{}},[1]]\x1e[50,{b},{{}},[2]]\x18");
    t.router.send_payload(batch.as_bytes());
    t.pump();
    match t.events.as_slice() {
        [
            SessionEvent::Result {
                request: ra,
                args: aa,
                ..
            },
            SessionEvent::Result {
                request: rb,
                args: ab,
                ..
            },
        ] => {
            assert_eq!((*ra, *rb), (RequestId(a), RequestId(b)));
            assert_eq!((aa, ab), (&vec![Value::from(1)], &vec![Value::from(2)]));
        }
        other => panic!("{other:?}"),
    }
    t.events.clear();
    // Separators before, between and after records are all skipped.
    let c = t.call("com.example.c");
    t.router
        .send_payload(format!("\x18[50,{c},{{}},[3]]\x1e\x1e").as_bytes());
    t.pump();
    assert_result(&t.events, c, 3);

    // Every CALL went out as its own 0x18-terminated record.
    for p in &t.router.payloads[1..] {
        assert_eq!(p.last(), Some(&0x18));
        assert_eq!(p.iter().filter(|b| **b == 0x18).count(), 1);
    }
}

#[test]
fn binary_batched_records_are_length_prefixed() {
    for serializer in [Serializer::MsgPack, Serializer::Cbor] {
        let mut t = Test::websocket(&[Codec::batched(serializer)], wamp_subprotocols());
        t.join();
        let hello = &t.router.payloads[0];
        let len = u32::from_be_bytes(hello[..4].try_into().unwrap()) as usize;
        assert_eq!(len, hello.len() - 4);
        // A truncated record from the router is undecodable.
        t.router.send_payload(&[0, 0, 0, 50, 0x93]);
        t.pump();
        t.assert_protocol_violation("undecodable message");
    }
}

// ----- random input -------------------------------------------------------------

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A joined client for transport `kind` (0 RawSocket, 1 WebSocket, 2
/// WebSocket batched) and `serializer`.
fn joined(kind: u8, serializer: Serializer) -> Test {
    let mut t = match kind {
        0 => Test::rawsocket(serializer),
        1 => Test::websocket(&[Codec::new(serializer)], wamp_subprotocols()),
        _ => Test::websocket(&[Codec::batched(serializer)], wamp_subprotocols()),
    };
    t.join();
    t
}

fn check_events(events: &[SessionEvent]) {
    let closes = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::Closed(_)))
        .count();
    assert!(closes <= 1, "{events:?}");
    if closes == 1 {
        assert!(
            matches!(events.last(), Some(SessionEvent::Closed(_))),
            "{events:?}"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    /// Random transport bytes after the join, in random pieces, then EOF:
    /// no panic, at most one `Closed` and only as the last event, and after
    /// EOF exactly one.
    #[test]
    fn random_transport_bytes_after_join(
        kind in 0u8..3,
        serializer in prop::sample::select(Serializer::ALL.to_vec()),
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        piece in 1usize..64,
    ) {
        let mut t = joined(kind, serializer);
        for chunk in bytes.chunks(piece) {
            t.client.handle_bytes(t.now, chunk);
            while let Some(e) = t.client.poll_event() {
                t.events.push(e);
            }
            check_events(&t.events);
        }
        t.client.handle_eof(t.now);
        while let Some(e) = t.client.poll_event() {
            t.events.push(e);
        }
        check_events(&t.events);
        prop_assert!(matches!(t.events.last(), Some(SessionEvent::Closed(_))), "{:?}", t.events);
        prop_assert!(t.client.is_closed());
        prop_assert!(t.client.poll_event().is_none());
    }

    /// Random payloads in well-formed frames after the join (a pending call
    /// so RESULTs can match): no panic, at most one `Closed`, last; a
    /// session that ended by a protocol violation sent ABORT.
    #[test]
    fn random_payloads_after_join(
        kind in 0u8..3,
        serializer in prop::sample::select(Serializer::ALL.to_vec()),
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..6),
    ) {
        let mut t = joined(kind, serializer);
        let _ = t.call("com.example.add2");
        for p in &payloads {
            if t.router.closed.is_some() || t.client.is_closed() {
                break;
            }
            t.router.send_payload(p);
            t.pump();
            check_events(&t.events);
        }
        if let Some(SessionEvent::Closed(c)) = t.events.last() {
            prop_assert!(t.client.is_closed());
            if matches!(c.error, Some(SessionError::ProtocolViolation(_))) {
                let aborted = matches!(
                    t.router.received.last(),
                    Some(Message::Abort { reason, .. }) if reason == ERROR_PROTOCOL_VIOLATION
                );
                prop_assert!(aborted, "{:?}", t.router.received);
            }
        }
    }
}

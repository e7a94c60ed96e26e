//! The router forwards payloads (`args`, `kwargs`) as the bytes they came
//! in: clients here talk to it in encoded bytes of every codec
//! ([`Codec::decode_raw`] → [`Router::handle_raw_message`], and
//! [`Router::poll_transmit_payload`] back), and every receiver gets exactly
//! the payload that was sent — the very bytes when it speaks the sender's
//! serializer, transcoded once per other serializer.
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

use std::sync::Arc;
use std::time::Instant;

use fahrbahn_core::wamp::error::{ERROR_PAYLOAD_SIZE_EXCEEDED, ERROR_PROTOCOL_VIOLATION};
use fahrbahn_core::wamp::router::{ConnectionId, Payload, Router, RouterConfig};
use fahrbahn_core::wamp::{
    Codec, Dict, List, Message, Serializer, ServerConnection, ServerEvent, Value, client_roles,
};
use fahrbahn_core::{Machine, Rng, rawsocket};

fn d(entries: &[(&str, Value)]) -> Dict {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Every codec: each serializer, plain and batched.
fn codecs() -> Vec<Codec> {
    Serializer::ALL
        .iter()
        .flat_map(|&s| [Codec::new(s), Codec::batched(s)])
        .collect()
}

/// A payload of values every serializer carries exactly.
fn payload(tag: i64) -> (Option<List>, Option<Dict>) {
    (
        Some(vec![
            Value::from(tag),
            Value::from("Grüße, 世界"),
            Value::Bytes(vec![0, 1, 2, 255]),
            Value::from(-7),
            Value::from(u64::MAX),
            Value::from(1.5),
            Value::Null,
            Value::Bool(true),
            Value::List((0..100).map(Value::from).collect()),
        ]),
        Some(d(&[
            ("color", "orange".into()),
            (
                "nested",
                Value::Dict(d(&[("deep", Value::List(vec![Value::Dict(Dict::new())]))])),
            ),
        ])),
    )
}

#[derive(Clone, Copy, Debug)]
struct Client {
    conn: ConnectionId,
    codec: Codec,
}

struct Net {
    router: Router,
    now: Instant,
}

impl Net {
    fn new() -> Self {
        Self {
            router: Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(3)),
            now: Instant::now(),
        }
    }

    fn join(&mut self, codec: Codec, max_message_size: Option<usize>) -> Client {
        self.join_with(codec, max_message_size, client_roles())
    }

    fn join_with(&mut self, codec: Codec, max_message_size: Option<usize>, roles: Dict) -> Client {
        let conn = self.router.attach(self.now);
        self.router
            .handle_connected(self.now, conn, codec, max_message_size);
        let client = Client { conn, codec };
        self.send(
            client,
            &Message::Hello {
                realm: "realm1".into(),
                details: d(&[("roles", Value::Dict(roles))]),
            },
        );
        assert!(matches!(self.recv(client).0, Message::Welcome { .. }));
        client
    }

    /// Sends `msg` as the client's bytes; returns the payload bytes the
    /// router kept (what the client's codec put there).
    fn send(&mut self, client: Client, msg: &Message) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        client.codec.encode(msg, &mut bytes);
        let mut kept = None;
        for raw in client.codec.decode_raw(bytes).unwrap() {
            kept = raw.payload().map(|p| p.bytes().to_vec());
            self.router.handle_raw_message(self.now, client.conn, raw);
        }
        kept
    }

    /// The next message for `client`, its payload bytes as received, and
    /// the shared buffer it came in.
    fn recv(&mut self, client: Client) -> (Message, Option<Vec<u8>>, Payload) {
        let bytes = self
            .router
            .poll_transmit_payload(client.conn)
            .unwrap_or_else(|| panic!("nothing for {client:?}"));
        let mut raws = client.codec.decode_raw(bytes.to_vec()).unwrap();
        assert_eq!(raws.len(), 1);
        let raw = raws.pop().unwrap();
        let kept = raw.payload().map(|p| p.bytes().to_vec());
        assert_eq!(
            client.codec.decode(&bytes).unwrap(),
            vec![raw.clone().into_message().unwrap()]
        );
        (raw.into_message().unwrap(), kept, bytes)
    }

    fn quiet(&mut self, client: Client) {
        assert_eq!(self.router.queued(client.conn), 0, "{client:?}");
    }

    fn subscribe(&mut self, client: Client, topic: &str) {
        self.send(
            client,
            &Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: topic.into(),
            },
        );
        assert!(matches!(self.recv(client).0, Message::Subscribed { .. }));
    }

    fn register(&mut self, client: Client, procedure: &str) {
        self.send(
            client,
            &Message::Register {
                request: 1,
                options: Dict::new(),
                procedure: procedure.into(),
            },
        );
        assert!(matches!(self.recv(client).0, Message::Registered { .. }));
    }
}

/// The receiver got `expected`; when it speaks the sender's serializer,
/// in the sender's very bytes.
fn check_payload(
    from: Codec,
    to: Codec,
    sent: &Option<Vec<u8>>,
    got: &Option<Vec<u8>>,
    (args, kwargs): (&Option<List>, &Option<Dict>),
    expected: &(Option<List>, Option<Dict>),
) {
    assert_eq!((args, kwargs), (&expected.0, &expected.1), "{from} -> {to}");
    if from.serializer == to.serializer {
        assert!(sent.is_some());
        assert_eq!(got, sent, "{from} -> {to}: the payload bytes as sent");
    }
}

#[test]
fn publish_reaches_subscribers_of_every_codec_intact() {
    for from in codecs() {
        let mut net = Net::new();
        let publisher = net.join(from, None);
        // Two subscribers per codec.
        let subscribers: Vec<Client> = codecs()
            .into_iter()
            .flat_map(|c| [c, c])
            .map(|c| net.join(c, None))
            .collect();
        for s in &subscribers {
            net.subscribe(*s, "com.example.topic");
        }
        let expected = payload(1);
        let sent = net.send(
            publisher,
            &Message::Publish {
                request: 2,
                options: Dict::new(),
                topic: "com.example.topic".into(),
                args: expected.0.clone(),
                kwargs: expected.1.clone(),
            },
        );
        let mut shared: Vec<(Codec, Payload)> = Vec::new();
        for s in &subscribers {
            let (msg, got, bytes) = net.recv(*s);
            let Message::Event { args, kwargs, .. } = &msg else {
                panic!("{msg:?}")
            };
            check_payload(from, s.codec, &sent, &got, (args, kwargs), &expected);
            // One EVENT per codec, its bytes shared by its subscribers.
            match shared.iter().find(|(c, _)| *c == s.codec) {
                Some((_, first)) => assert!(Arc::ptr_eq(first, &bytes), "{}", s.codec),
                None => shared.push((s.codec, bytes)),
            }
            net.quiet(*s);
        }
        assert_eq!(shared.len(), codecs().len());
        net.quiet(publisher);
    }
}

#[test]
fn events_of_several_subscriptions_carry_the_payload() {
    // A prefix and an exact subscription match: two EVENTs (their details
    // differ), the same payload.
    let mut net = Net::new();
    let publisher = net.join(Codec::new(Serializer::Cbor), None);
    let exact = net.join(Codec::new(Serializer::Json), None);
    let prefix = net.join(Codec::new(Serializer::MsgPack), None);
    net.subscribe(exact, "com.example.topic");
    net.send(
        prefix,
        &Message::Subscribe {
            request: 1,
            options: d(&[("match", "prefix".into())]),
            topic: "com.example".into(),
        },
    );
    assert!(matches!(net.recv(prefix).0, Message::Subscribed { .. }));
    let expected = payload(2);
    net.send(
        publisher,
        &Message::Publish {
            request: 2,
            options: Dict::new(),
            topic: "com.example.topic".into(),
            args: expected.0.clone(),
            kwargs: expected.1.clone(),
        },
    );
    for s in [exact, prefix] {
        let Message::Event {
            args,
            kwargs,
            details,
            ..
        } = net.recv(s).0
        else {
            panic!()
        };
        assert_eq!((args, kwargs), expected.clone());
        assert_eq!(details.contains_key("topic"), s.conn == prefix.conn);
    }
}

#[test]
fn call_invocation_progressive_results_and_errors_between_every_codec() {
    for caller_codec in codecs() {
        for callee_codec in codecs() {
            let mut net = Net::new();
            let caller = net.join(caller_codec, None);
            let callee = net.join(callee_codec, None);
            net.register(callee, "com.example.p");

            // CALL -> INVOCATION.
            let call_payload = payload(10);
            let sent = net.send(
                caller,
                &Message::Call {
                    request: 7,
                    options: d(&[("receive_progress", true.into())]),
                    procedure: "com.example.p".into(),
                    args: call_payload.0.clone(),
                    kwargs: call_payload.1.clone(),
                },
            );
            let (msg, got, _) = net.recv(callee);
            let Message::Invocation {
                request: invocation,
                args,
                kwargs,
                details,
                ..
            } = &msg
            else {
                panic!("{msg:?}")
            };
            assert_eq!(details.get("receive_progress"), Some(&Value::Bool(true)));
            check_payload(
                caller_codec,
                callee_codec,
                &sent,
                &got,
                (args, kwargs),
                &call_payload,
            );
            let invocation = *invocation;

            // Progressive YIELDs -> RESULTs, then the final one.
            for (i, progress) in [(11, true), (12, true), (13, false)] {
                let result_payload = payload(i);
                let mut options = Dict::new();
                if progress {
                    options.insert("progress".into(), true.into());
                }
                let sent = net.send(
                    callee,
                    &Message::Yield {
                        request: invocation,
                        options,
                        args: result_payload.0.clone(),
                        kwargs: result_payload.1.clone(),
                    },
                );
                let (msg, got, _) = net.recv(caller);
                let Message::Result {
                    request: 7,
                    details,
                    args,
                    kwargs,
                } = &msg
                else {
                    panic!("{msg:?}")
                };
                assert_eq!(details.contains_key("progress"), progress);
                check_payload(
                    callee_codec,
                    caller_codec,
                    &sent,
                    &got,
                    (args, kwargs),
                    &result_payload,
                );
            }

            // A CALL answered with ERROR: its payload is forwarded too.
            net.send(
                caller,
                &Message::Call {
                    request: 8,
                    options: Dict::new(),
                    procedure: "com.example.p".into(),
                    args: None,
                    kwargs: None,
                },
            );
            let (msg, got, _) = net.recv(callee);
            let Message::Invocation {
                request: invocation,
                args: None,
                kwargs: None,
                ..
            } = msg
            else {
                panic!("{msg:?}")
            };
            assert_eq!(got, None);
            let error_payload = payload(20);
            let sent = net.send(
                callee,
                &Message::Error {
                    request_type: Message::INVOCATION,
                    request: invocation,
                    details: Dict::new(),
                    error: "com.example.error.failed".into(),
                    args: error_payload.0.clone(),
                    kwargs: error_payload.1.clone(),
                },
            );
            let (msg, got, _) = net.recv(caller);
            let Message::Error {
                request_type: Message::CALL,
                request: 8,
                error,
                args,
                kwargs,
                ..
            } = &msg
            else {
                panic!("{msg:?}")
            };
            assert_eq!(error, "com.example.error.failed");
            check_payload(
                callee_codec,
                caller_codec,
                &sent,
                &got,
                (args, kwargs),
                &error_payload,
            );
            net.quiet(caller);
            net.quiet(callee);
        }
    }
}

#[test]
fn payloads_larger_than_a_client_accepts_are_refused_as_before() {
    let big = || (Some(vec![Value::from("x".repeat(4096))]), None);
    for &ser in Serializer::ALL {
        let mut net = Net::new();
        let codec = Codec::new(ser);
        let caller = net.join(codec, Some(1024));
        let callee = net.join(Codec::new(Serializer::Json), Some(1024));
        let roomy = net.join(codec, None);
        net.register(callee, "com.example.p");
        net.subscribe(caller, "com.example.topic");
        net.subscribe(roomy, "com.example.topic");

        // An INVOCATION too large for the callee: the caller gets ERROR.
        let (args, kwargs) = big();
        net.send(
            caller,
            &Message::Call {
                request: 1,
                options: Dict::new(),
                procedure: "com.example.p".into(),
                args,
                kwargs,
            },
        );
        let msg = net.recv(caller).0;
        assert!(
            matches!(&msg, Message::Error { request: 1, error, .. } if error == ERROR_PAYLOAD_SIZE_EXCEEDED),
            "{msg:?}"
        );
        net.quiet(callee);

        // A RESULT too large for the caller becomes that ERROR.
        net.send(
            caller,
            &Message::Call {
                request: 2,
                options: Dict::new(),
                procedure: "com.example.p".into(),
                args: None,
                kwargs: None,
            },
        );
        let Message::Invocation { request, .. } = net.recv(callee).0 else {
            panic!()
        };
        let (args, kwargs) = big();
        net.send(
            callee,
            &Message::Yield {
                request,
                options: Dict::new(),
                args,
                kwargs,
            },
        );
        let msg = net.recv(caller).0;
        assert!(
            matches!(&msg, Message::Error { request: 2, error, .. } if error == ERROR_PAYLOAD_SIZE_EXCEEDED),
            "{msg:?}"
        );

        // An EVENT too large for one subscriber is skipped for it only.
        let (args, kwargs) = big();
        net.send(
            callee,
            &Message::Publish {
                request: 3,
                options: Dict::new(),
                topic: "com.example.topic".into(),
                args: args.clone(),
                kwargs,
            },
        );
        let Message::Event { args: got, .. } = net.recv(roomy).0 else {
            panic!()
        };
        assert_eq!(got, args);
        net.quiet(caller);
        assert_eq!(net.router.session_count(), 3);
    }
}

/// A RawSocket server connection in raw mode, after the handshake.
fn rawsocket_server(ser: Serializer, now: Instant) -> ServerConnection {
    let mut server = ServerConnection::rawsocket(rawsocket::ServerConfig::new(Vec::new()), now);
    server.set_raw_payloads(true);
    server.handle_bytes(now, &[0x7f, 0xf0 | ser.rawsocket_id(), 0, 0]);
    let mut reply = Vec::new();
    server.poll_transmit(&mut reply);
    assert_eq!(reply.len(), 4, "handshake reply");
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Connected(Codec::new(ser)))
    );
    server
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![0, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    out.extend_from_slice(payload);
    out
}

#[test]
fn malformed_payloads_abort_with_protocol_violation() {
    let now = Instant::now();
    for &ser in Serializer::ALL {
        let publish = |args: Value| {
            let mut out = Vec::new();
            ser.encode_value(
                &Value::List(vec![
                    16.into(),
                    1.into(),
                    Value::Dict(Dict::new()),
                    "com.example.topic".into(),
                    args,
                ]),
                &mut out,
            );
            out
        };
        let deep = (0..80).fold(Value::from(1), |v, _| Value::List(vec![v]));
        let good = publish(Value::List(vec!["héllo".into(), 5.into()]));
        let mut not_utf8 = good.clone();
        let at = good.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        not_utf8[at] = 0xff;
        not_utf8[at + 1] = 0xfe;
        let truncated = good[..good.len() - 2].to_vec();
        let not_a_list = publish(Value::from(5));
        for (case, bytes) in [
            ("too deep", publish(deep)),
            ("truncated", truncated),
            ("args not a list", not_a_list),
        ]
        .into_iter()
        .chain((ser == Serializer::Json).then_some(("not UTF-8", not_utf8)))
        {
            let mut server = rawsocket_server(ser, now);
            server.handle_bytes(now, &frame(&bytes));
            let Some(ServerEvent::Closed(closed)) = server.poll_event() else {
                panic!("{ser} {case}: not closed")
            };
            assert!(closed.error.is_some(), "{ser} {case}");
            // The ABORT went out first.
            let mut out = Vec::new();
            server.poll_transmit(&mut out);
            let abort = ser.decode(&out[4..]).unwrap();
            assert!(
                matches!(&abort, Message::Abort { reason, .. } if reason == ERROR_PROTOCOL_VIOLATION),
                "{ser} {case}: {abort:?}"
            );
        }
        // The well-formed one passes, its payload kept encoded.
        let mut server = rawsocket_server(ser, now);
        server.handle_bytes(now, &frame(&good));
        let Some(ServerEvent::RawMessage(raw)) = server.poll_event() else {
            panic!("{ser}")
        };
        assert!(raw.payload().is_some());
    }
}

#[test]
fn payload_bytes_pass_through_untouched_even_when_not_canonical() {
    // Payloads our encoder would write differently (spaces, float and
    // integer spellings, wide integer encodings): a receiver of the
    // sender's serializer gets them byte for byte, the others get the
    // same values.
    let cases: Vec<(Serializer, Vec<u8>, &[u8])> = vec![
        (
            Serializer::Json,
            br#"[16, 2, {}, "com.example.topic", [ 1.50e0, 5 ,"a"] , {"k" : [ ] }]"#.to_vec(),
            br#"[ 1.50e0, 5 ,"a"] , {"k" : [ ] }"#,
        ),
        (
            Serializer::MsgPack,
            // [16, 2, {}, "com.example.topic", [uint32 5, float64 1.5]]
            [
                &[0x95, 0x10, 0x02, 0x80, 0xb1][..],
                b"com.example.topic",
                &[0x92, 0xce, 0, 0, 0, 5, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
            ]
            .concat(),
            &[0x92, 0xce, 0, 0, 0, 5, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
        ),
        (
            Serializer::Cbor,
            // An indefinite-length message list, [uint32 5, float64 1.5].
            [
                &[0x9f, 0x10, 0x02, 0xa0, 0x71][..],
                b"com.example.topic",
                &[
                    0x82, 0x1a, 0, 0, 0, 5, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xff,
                ],
            ]
            .concat(),
            &[0x82, 0x1a, 0, 0, 0, 5, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
        ),
    ];
    for (ser, bytes, payload_bytes) in cases {
        let mut net = Net::new();
        let publisher = net.join(Codec::new(ser), None);
        let subscribers: Vec<Client> = codecs().into_iter().map(|c| net.join(c, None)).collect();
        for s in &subscribers {
            net.subscribe(*s, "com.example.topic");
        }
        let expected = ser.decode(&bytes).unwrap();
        let Message::Publish { args, kwargs, .. } = expected else {
            panic!()
        };
        let raw = ser.decode_raw(bytes).unwrap();
        assert_eq!(raw.payload().unwrap().bytes(), payload_bytes, "{ser}");
        net.router.handle_raw_message(net.now, publisher.conn, raw);
        for s in &subscribers {
            let (msg, got, _) = net.recv(*s);
            let Message::Event {
                args: a, kwargs: k, ..
            } = msg
            else {
                panic!()
            };
            assert_eq!((&a, &k), (&args, &kwargs), "{ser} -> {}", s.codec);
            if s.codec.serializer == ser {
                assert_eq!(got.as_deref(), Some(payload_bytes), "{ser} -> {}", s.codec);
            } else {
                assert_ne!(got.as_deref(), Some(payload_bytes));
            }
        }
    }
}

/// A callee that also announces `progressive_call_invocations`.
fn streaming_callee_roles() -> Dict {
    let mut roles = client_roles();
    if let Some(Value::Dict(callee)) = roles.get_mut("callee") {
        if let Some(Value::Dict(features)) = callee.get_mut("features") {
            features.insert("progressive_call_invocations".into(), true.into());
        }
    }
    roles
}

#[test]
fn progressive_call_invocations_carry_each_part_between_codecs() {
    let pairs = [
        (
            Codec::new(Serializer::Json),
            Codec::new(Serializer::MsgPack),
        ),
        (Codec::new(Serializer::Cbor), Codec::new(Serializer::Cbor)),
        (
            Codec::batched(Serializer::MsgPack),
            Codec::new(Serializer::Json),
        ),
    ];
    for (caller_codec, callee_codec) in pairs {
        let mut net = Net::new();
        let caller = net.join(caller_codec, None);
        let callee = net.join_with(callee_codec, None, streaming_callee_roles());
        net.register(callee, "com.example.stream");
        let mut invocations = Vec::new();
        for part in 0..3 {
            let last = part == 2;
            let options = if last {
                Dict::new()
            } else {
                d(&[("progress", true.into())])
            };
            let part_payload = payload(part);
            let sent = net.send(
                caller,
                &Message::Call {
                    request: 5,
                    options,
                    procedure: "com.example.stream".into(),
                    args: part_payload.0.clone(),
                    kwargs: part_payload.1.clone(),
                },
            );
            let (msg, got, _) = net.recv(callee);
            let Message::Invocation {
                request,
                args,
                kwargs,
                details,
                ..
            } = &msg
            else {
                panic!("{msg:?}")
            };
            assert_eq!(
                details.get("progress") == Some(&Value::Bool(true)),
                !last,
                "{caller_codec} -> {callee_codec} part {part}"
            );
            check_payload(
                caller_codec,
                callee_codec,
                &sent,
                &got,
                (args, kwargs),
                &part_payload,
            );
            invocations.push(*request);
        }
        assert!(invocations.iter().all(|i| *i == invocations[0]));
        // The callee answers once; the caller gets it.
        let answer = payload(9);
        net.send(
            callee,
            &Message::Yield {
                request: invocations[0],
                options: Dict::new(),
                args: answer.0.clone(),
                kwargs: answer.1.clone(),
            },
        );
        match net.recv(caller).0 {
            Message::Result {
                request: 5,
                args,
                kwargs,
                ..
            } => assert_eq!((args, kwargs), answer),
            other => panic!("{other:?}"),
        }
        net.quiet(caller);
        net.quiet(callee);
    }
}

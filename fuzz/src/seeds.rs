//! The seed inputs of `fuzz/corpus/`, made by the core itself (valid
//! handshakes, frames and messages), so that they stay valid: the test
//! `generated_seeds_run_and_are_committed` checks the committed files
//! against them.

use fahrbahn_core::Rng;
use fahrbahn_core::wamp::{Codec, Dict, Message, Serializer, Value, client_roles};
use fahrbahn_core::ws::{CloseCode, Connection, Message as WsMessage};

use crate::util::base;
use crate::wamp_target::codec_of;
use crate::ws_target::{Setup, open_pair};

/// Every seed: (target, file name, contents).
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    ws_handshake(&mut out);
    ws_frames(&mut out);
    rawsocket(&mut out);
    wamp_decode(&mut out);
    router(&mut out);
    out
}

type Seeds = Vec<(&'static str, String, Vec<u8>)>;

fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = conn.poll_transmit(&mut buf);
    buf
}

fn ws_handshake(out: &mut Seeds) {
    // Setup bytes: bit 0 client, 0x02 deflate, 0x20 subprotocols, 0x40
    // deferred accept, 0x80 small limits.
    for (name, b) in [
        ("plain", 0x00u8),
        ("deflate", 0x02),
        ("deflate-no-takeover-bits", 0x1e),
        ("subprotocols", 0x20),
        ("deferred", 0x40),
        ("small", 0x80),
    ] {
        for role in [0u8, 1] {
            let setup = Setup::from_byte(b | role);
            let limits = setup.limits();
            let mut client = setup.client(limits);
            let request = transmit(&mut client);
            let input = if role == 0 {
                request
            } else {
                // The server's answer to exactly this client's request.
                let mut server = setup.server(limits);
                server.handle_bytes(base(), &request);
                while let Some(event) = server.poll_event() {
                    if let fahrbahn_core::ws::Event::Request(_) = event {
                        let _ = server.accept(base(), Default::default());
                    }
                }
                transmit(&mut server)
            };
            let side = if role == 0 { "server" } else { "client" };
            for chunk in [0u8, 7] {
                let mut data = vec![b | role, chunk];
                data.extend_from_slice(&input);
                out.push(("ws_handshake", format!("{side}-{name}-{chunk}"), data));
            }
        }
    }
    let mut data = vec![0, 0];
    data.extend_from_slice(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    out.push(("ws_handshake", "server-http10".into(), data));
}

fn ws_frames(out: &mut Seeds) {
    for (name, b) in [
        ("plain", 0x00u8),
        ("deflate", 0x02),
        ("deflate-no-takeover", 0x0e),
        ("deflate-bits9", 0x12),
        ("deflate-min16", 0x42),
        ("small", 0x80),
    ] {
        for role in [0u8, 1] {
            let setup = Setup::from_byte(b | role);
            let (mut client, mut server) = open_pair(setup, setup.limits());
            // What the fuzzed side's peer sends.
            let peer = if role == 0 { &mut client } else { &mut server };
            peer.send(WsMessage::text("hello")).unwrap();
            peer.send(WsMessage::binary(vec![7u8; 300])).unwrap();
            peer.ping(b"ping").unwrap();
            peer.send(WsMessage::text("hello again, hello again"))
                .unwrap();
            peer.close(base(), CloseCode::NORMAL, "bye").unwrap();
            let frames = transmit(peer);
            let side = if role == 0 { "server" } else { "client" };
            for chunk in [0u8, 3] {
                let mut data = vec![b | role, chunk];
                data.extend_from_slice(&frames);
                out.push(("ws_frames", format!("{side}-{name}-{chunk}"), data));
            }
        }
    }
    // A fragmented text message (to a client: unmasked frames).
    let mut data = vec![0x01, 0];
    data.extend_from_slice(&[
        0x01, 3, b'a', b'b', b'c', 0x89, 1, b'p', 0x80, 2, b'd', b'e',
    ]);
    out.push(("ws_frames", "client-fragmented".into(), data));
}

fn rawsocket(out: &mut Seeds) {
    let frame = |kind: u8, payload: &[u8]| {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut f = vec![kind, len[1], len[2], len[3]];
        f.extend_from_slice(payload);
        f
    };
    let frames = [
        frame(0, br#"[1,"realm1",{}]"#),
        frame(1, b"ping"),
        frame(2, b"pong"),
        frame(0, &[0x55; 600]),
    ]
    .concat();
    // Setup: bit 0 client, bits 1-2 serializer, bits 4-7 our exponent.
    for (name, b) in [("json", 0x02u8), ("msgpack", 0x04), ("cbor", 0x06)] {
        for role in [0u8, 1] {
            let serializer = b >> 1 & 3;
            let mut data = vec![b | role | 0xf0, 0, 0x7f, 0xf0 | serializer, 0, 0];
            data.extend_from_slice(&frames);
            let side = if role == 0 { "server" } else { "client" };
            out.push(("rawsocket", format!("{side}-{name}"), data.clone()));
            data[1] = 5;
            out.push(("rawsocket", format!("{side}-{name}-chunked"), data));
        }
    }
    out.push((
        "rawsocket",
        "client-refused".into(),
        vec![0x03, 0, 0x7f, 0x20, 0, 0],
    ));
}

fn messages() -> Vec<Message> {
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(client_roles()));
    let mut kwargs = Dict::new();
    kwargs.insert("k".into(), Value::Float(1.5));
    kwargs.insert("b".into(), Value::Bytes(vec![0, 1, 2, 255]));
    let args = vec![
        Value::Int(-3),
        Value::UInt(u64::MAX),
        Value::String("ü".into()),
        Value::Null,
        Value::Bool(true),
        Value::List(vec![Value::Int(1)]),
    ];
    vec![
        Message::Hello {
            realm: "realm1".into(),
            details,
        },
        Message::Welcome {
            session: 42,
            details: Dict::new(),
        },
        Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "com.example.add".into(),
            args: Some(args.clone()),
            kwargs: Some(kwargs.clone()),
        },
        Message::Event {
            subscription: 5,
            publication: 6,
            details: Dict::new(),
            args: Some(args),
            kwargs: Some(kwargs),
        },
        Message::Error {
            request_type: Message::CALL,
            request: 1,
            details: Dict::new(),
            error: "wamp.error.no_such_procedure".into(),
            args: None,
            kwargs: None,
        },
        Message::Goodbye {
            details: Dict::new(),
            reason: "wamp.close.normal".into(),
        },
    ]
}

fn wamp_decode(out: &mut Seeds) {
    let msgs = messages();
    for b in 0..6u8 {
        // Bytes 0-2: the serializers; 4-6 the same, batched.
        let b = if b < 3 { b } else { b + 1 };
        let codec: Codec = codec_of(b);
        let serializer: Serializer = codec.serializer;
        let tag = format!(
            "{}{}",
            serializer.name().to_lowercase(),
            if codec.batched { "-batched" } else { "" }
        );
        if codec.batched {
            let mut data = vec![b];
            for m in &msgs {
                codec.encode(m, &mut data);
            }
            out.push(("wamp_decode", tag, data));
        } else {
            for m in &msgs {
                let mut data = vec![b];
                codec.encode(m, &mut data);
                let name = format!("{tag}-{}", m.name().to_lowercase());
                out.push(("wamp_decode", name, data));
            }
        }
    }
}

fn router(out: &mut Seeds) {
    for seed in 0..8u64 {
        let mut data = vec![0u8; 64 + 32 * seed as usize];
        Rng::from_seed(seed).fill(&mut data);
        out.push(("router", format!("random-{seed}"), data));
    }
}

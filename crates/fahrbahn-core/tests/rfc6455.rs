//! Byte-level checks of the RFC 6455 / RFC 7692 rules: hand-made frames are
//! fed into one side of an open connection, and the close frame it emits
//! and its `Closed` event are checked.
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

mod util;

use std::time::Instant;

use fahrbahn_core::Rng;
use fahrbahn_core::ws::{
    ClientConfig, CloseCode, Connection, DeflateConfig, Error, Event, HandshakeError, Limits,
    MAX_QUEUED_PONGS, Message, ProtocolError, ServerConfig,
};
use util::{
    BINARY, CLOSE, CONT, KEY, PING, PONG, Pair, Side, TEXT, b0, client_frame, close_payload,
    emitted_close_code, frame_from, parse_frames, raw_frame, server_frame,
};

fn plain() -> Pair {
    Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default())
}

fn deflate() -> Pair {
    let mut client = ClientConfig::new("localhost", "/");
    client.deflate = Some(DeflateConfig::default());
    let mut server = ServerConfig::default();
    server.deflate = Some(DeflateConfig::default());
    Pair::connected(client, server)
}

fn limited(limits: Limits) -> Pair {
    let mut client = ClientConfig::new("localhost", "/");
    client.limits = limits;
    let mut server = ServerConfig::default();
    server.limits = limits;
    Pair::connected(client, server)
}

/// Feeds `bytes` into `side` and checks it fails the connection with
/// `code`: one close frame with that code is emitted, and `Closed` reports
/// it with a protocol error. Returns the error.
fn expect_failure(pair: &mut Pair, side: Side, bytes: &[u8], code: u16) -> ProtocolError {
    pair.inject(side, bytes);
    let wire = pair.take_transmit(side);
    assert_eq!(emitted_close_code(&wire), Some(code), "{side:?} {bytes:x?}");
    if side == Side::Client {
        assert!(parse_frames(&wire).iter().all(|f| f.masked));
    }
    let closed = pair.expect_closed(side);
    assert_eq!(closed.code, CloseCode(code));
    assert!(!closed.by_peer);
    assert!(pair.conn(side).is_closed());
    // Nothing more happens, whatever arrives.
    pair.inject(side, &frame_from(side.other(), true, TEXT, b"late"));
    assert!(pair.events(side).is_empty());
    assert!(pair.take_transmit(side).is_empty());
    match closed.error {
        Some(Error::Protocol(e)) => {
            assert_eq!(e.close_code(), CloseCode(code));
            e
        }
        other => panic!("not a protocol error: {other:?}"),
    }
}

/// Runs `expect_failure` on a fresh connection for both roles, with the
/// frame built as the peer would (masked towards a server).
fn both_roles(make: impl Fn() -> Pair, fin: bool, rsv: u8, opcode: u8, payload: &[u8], code: u16) {
    for side in [Side::Server, Side::Client] {
        let mask = (side == Side::Server).then_some(KEY);
        let bytes = raw_frame(b0(fin, rsv, opcode), mask, payload);
        expect_failure(&mut make(), side, &bytes, code);
    }
}

// ----- framing (5.2) ----------------------------------------------------

#[test]
fn reserved_bits_are_a_protocol_error() {
    for rsv in 1..=7 {
        for opcode in [TEXT, BINARY, PING] {
            both_roles(plain, true, rsv, opcode, b"x", 1002);
        }
    }
    let e = expect_failure(
        &mut plain(),
        Side::Server,
        &raw_frame(0xC1, Some(KEY), b"x"),
        1002,
    );
    assert_eq!(e, ProtocolError::ReservedBits(0b100));
}

#[test]
fn unknown_opcodes_are_a_protocol_error() {
    for opcode in (3..=7).chain(0xB..=0xF) {
        for side in [Side::Server, Side::Client] {
            let bytes = frame_from(side.other(), true, opcode, b"");
            let e = expect_failure(&mut plain(), side, &bytes, 1002);
            assert_eq!(e, ProtocolError::UnknownOpcode(opcode));
        }
    }
}

#[test]
fn fragmented_control_frames_are_a_protocol_error() {
    for opcode in [PING, PONG, CLOSE] {
        both_roles(plain, false, 0, opcode, b"", 1002);
    }
}

#[test]
fn control_frames_over_125_bytes_are_a_protocol_error() {
    for opcode in [PING, PONG, CLOSE] {
        both_roles(plain, true, 0, opcode, &[b'a'; 126], 1002);
    }
    // The header alone is enough to fail.
    let header = &client_frame(true, PING, &[0; 126])[..8];
    let e = expect_failure(&mut plain(), Side::Server, header, 1002);
    assert_eq!(e, ProtocolError::ControlFrameTooLong(126));
}

#[test]
fn ping_of_125_bytes_is_answered() {
    let mut pair = plain();
    pair.inject(Side::Server, &client_frame(true, PING, &[b'p'; 125]));
    assert_eq!(pair.events(Side::Server), [Event::Ping(vec![b'p'; 125])]);
    let out = parse_frames(&pair.take_transmit(Side::Server));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].opcode, out[0].fin, out[0].masked),
        (PONG, true, false)
    );
    assert_eq!(out[0].payload, [b'p'; 125]);
}

#[test]
fn continuation_without_a_message_is_a_protocol_error() {
    both_roles(plain, true, 0, CONT, b"x", 1002);
    both_roles(plain, false, 0, CONT, b"x", 1002);
}

#[test]
fn new_data_frame_inside_a_fragmented_message_is_a_protocol_error() {
    for second in [TEXT, BINARY] {
        for side in [Side::Server, Side::Client] {
            let from = side.other();
            let mut bytes = frame_from(from, false, TEXT, b"start");
            bytes.extend(frame_from(from, true, second, b"again"));
            let e = expect_failure(&mut plain(), side, &bytes, 1002);
            assert_eq!(e, ProtocolError::ExpectedContinuation);
        }
    }
}

#[test]
fn unmasked_client_frame_is_a_protocol_error() {
    let e = expect_failure(
        &mut plain(),
        Side::Server,
        &server_frame(true, TEXT, b"hi"),
        1002,
    );
    assert_eq!(e, ProtocolError::UnmaskedFrame);
}

#[test]
fn masked_server_frame_is_a_protocol_error() {
    let e = expect_failure(
        &mut plain(),
        Side::Client,
        &client_frame(true, TEXT, b"hi"),
        1002,
    );
    assert_eq!(e, ProtocolError::MaskedFrame);
}

#[test]
fn length_with_the_top_bit_set_is_a_protocol_error() {
    let mut bytes = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&KEY);
    let e = expect_failure(&mut plain(), Side::Server, &bytes, 1002);
    assert_eq!(e, ProtocolError::InvalidLength);
}

#[test]
fn rfc_examples_are_understood() {
    // RFC 6455 5.7: single-frame unmasked "Hello" (to a client).
    let mut pair = plain();
    pair.inject(Side::Client, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    // A single-frame masked "Hello" (to a server).
    pair.inject(
        Side::Server,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    );
    // A fragmented unmasked "Hello".
    pair.inject(Side::Client, &[0x01, 0x03, 0x48, 0x65, 0x6c]);
    pair.inject(Side::Client, &[0x80, 0x02, 0x6c, 0x6f]);
    // 256 bytes binary in a single unmasked frame, and 64 KiB.
    let mut big = vec![0x82, 0x7E, 0x01, 0x00];
    big.extend([7; 256]);
    big.extend([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    big.extend(vec![8; 65536]);
    pair.inject(Side::Client, &big);
    assert_eq!(
        pair.events(Side::Client),
        [
            Event::Message(Message::text("Hello")),
            Event::Message(Message::text("Hello")),
            Event::Message(Message::binary(vec![7; 256])),
            Event::Message(Message::binary(vec![8; 65536])),
        ]
    );
    assert_eq!(
        pair.events(Side::Server),
        [Event::Message(Message::text("Hello"))]
    );
    // An unmasked ping "Hello" gets a pong "Hello" (masked by the client).
    pair.inject(Side::Client, &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    let pong = parse_frames(&pair.take_transmit(Side::Client));
    assert_eq!(pong.len(), 1);
    assert_eq!((pong[0].opcode, pong[0].masked), (PONG, true));
    assert_eq!(pong[0].payload, b"Hello");
}

// ----- close frames (5.5.1, 7.4) -------------------------------------------

#[test]
fn close_with_one_byte_payload_is_a_protocol_error() {
    for side in [Side::Server, Side::Client] {
        let bytes = frame_from(side.other(), true, CLOSE, &[0x03]);
        let e = expect_failure(&mut plain(), side, &bytes, 1002);
        assert_eq!(e, ProtocolError::CloseFrameTooShort);
    }
}

#[test]
fn invalid_close_codes_are_a_protocol_error() {
    let codes = [
        0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000,
    ];
    for code in codes {
        for side in [Side::Server, Side::Client] {
            let bytes = frame_from(side.other(), true, CLOSE, &close_payload(code, ""));
            let e = expect_failure(&mut plain(), side, &bytes, 1002);
            assert_eq!(e, ProtocolError::InvalidCloseCode(code));
        }
    }
}

#[test]
fn valid_close_codes_are_echoed() {
    let codes = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ];
    for code in codes {
        for side in [Side::Server, Side::Client] {
            let mut pair = plain();
            let bytes = frame_from(side.other(), true, CLOSE, &close_payload(code, "reason"));
            pair.inject(side, &bytes);
            assert_eq!(
                emitted_close_code(&pair.take_transmit(side)),
                Some(code),
                "{side:?}"
            );
            util::assert_clean(&pair.expect_closed(side), code, "reason", true);
        }
    }
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    for side in [Side::Server, Side::Client] {
        let mut pair = plain();
        pair.inject(side, &frame_from(side.other(), true, CLOSE, b""));
        assert_eq!(emitted_close_code(&pair.take_transmit(side)), None);
        util::assert_clean(&pair.expect_closed(side), 1005, "", true);
    }
}

#[test]
fn invalid_utf8_close_reason_is_1007() {
    for side in [Side::Server, Side::Client] {
        let mut payload = close_payload(1000, "ok");
        payload.extend_from_slice(b"\xff\xfe");
        let bytes = frame_from(side.other(), true, CLOSE, &payload);
        let e = expect_failure(&mut plain(), side, &bytes, 1007);
        assert_eq!(e, ProtocolError::InvalidUtf8);
    }
}

// ----- UTF-8 (8.1) --------------------------------------------------------

#[test]
fn invalid_utf8_text_is_1007() {
    for bad in [
        &b"\xff"[..],
        b"abc\xc0\xaf",
        b"\xed\xa0\x80",
        b"ok\xf4\x90\x80\x80",
    ] {
        for side in [Side::Server, Side::Client] {
            let bytes = frame_from(side.other(), true, TEXT, bad);
            let e = expect_failure(&mut plain(), side, &bytes, 1007);
            assert_eq!(e, ProtocolError::InvalidUtf8);
        }
    }
}

#[test]
fn utf8_split_across_fragments() {
    // Valid: "κ" (ce ba) and "𝄞" (f0 9d 84 9e) split between frames.
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut pair = plain();
        let mut bytes = frame_from(from, false, TEXT, b"a\xce");
        bytes.extend(frame_from(from, false, CONT, b"\xbab\xf0\x9d"));
        bytes.extend(frame_from(from, false, CONT, b"\x84"));
        bytes.extend(frame_from(from, true, CONT, b"\x9e"));
        pair.inject(side, &bytes);
        assert_eq!(pair.events(side), [Event::Message(Message::text("aκb𝄞"))]);
    }
    // Invalid: an overlong sequence split between frames.
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut bytes = frame_from(from, false, TEXT, b"a\xe0");
        bytes.extend(frame_from(from, true, CONT, b"\x80\x80"));
        expect_failure(&mut plain(), side, &bytes, 1007);
    }
    // Invalid: the message ends inside a code point.
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut bytes = frame_from(from, false, TEXT, b"a");
        bytes.extend(frame_from(from, true, CONT, b"\xce"));
        expect_failure(&mut plain(), side, &bytes, 1007);
    }
}

#[test]
fn invalid_utf8_fails_fast_inside_a_partial_frame() {
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut payload = b"hello \xf4\x90".to_vec();
        payload.extend([b'x'; 100]);
        // Single-frame message, only its start delivered.
        let bytes = frame_from(from, true, TEXT, &payload);
        let header = if from == Side::Client { 6 } else { 2 };
        let mut pair = plain();
        let e = expect_failure(&mut pair, side, &bytes[..header + 8], 1007);
        assert_eq!(e, ProtocolError::InvalidUtf8);
        // Inside the first fragment of a fragmented message, too.
        let bytes = frame_from(from, false, TEXT, &payload);
        expect_failure(&mut plain(), side, &bytes[..header + 8], 1007);
        // And a first fragment that is complete but cannot continue.
        let bytes = frame_from(from, false, TEXT, b"ok\xf4\x90");
        expect_failure(&mut plain(), side, &bytes, 1007);
    }
}

#[test]
fn valid_text_delivered_byte_by_byte() {
    let text = "κόσμε Hello-µ@ßöäüàá-UTF-8!! 𝄞";
    for side in [Side::Server, Side::Client] {
        let mut pair = plain();
        pair.chunk = Some(1);
        pair.inject(side, &frame_from(side.other(), true, TEXT, text.as_bytes()));
        assert_eq!(pair.events(side), [Event::Message(Message::text(text))]);
    }
}

// ----- limits -------------------------------------------------------------

#[test]
fn frame_over_max_frame_size_is_1009() {
    let mut limits = Limits::default();
    limits.max_frame_size = 100;
    for side in [Side::Server, Side::Client] {
        // The header alone fails the connection; the payload never comes.
        let bytes = frame_from(side.other(), true, BINARY, &[0; 101]);
        let header = if side == Side::Server { 8 } else { 4 };
        let e = expect_failure(&mut limited(limits), side, &bytes[..header], 1009);
        assert_eq!(
            e,
            ProtocolError::FrameTooBig {
                len: 101,
                limit: 100
            }
        );
    }
}

#[test]
fn message_over_max_message_size_is_1009() {
    let mut limits = Limits::default();
    limits.max_message_size = 100;
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut bytes = frame_from(from, false, TEXT, &[b'a'; 60]);
        bytes.extend(frame_from(from, false, CONT, &[b'a'; 40]));
        bytes.extend(frame_from(from, true, CONT, &[b'a'; 1]));
        let e = expect_failure(&mut limited(limits), side, &bytes, 1009);
        assert_eq!(e, ProtocolError::MessageTooBig { limit: 100 });
        let bytes = frame_from(from, true, BINARY, &[0; 101]);
        expect_failure(&mut limited(limits), side, &bytes, 1009);
    }
}

#[test]
fn deflate_bomb_is_1009() {
    for side in [Side::Server, Side::Client] {
        let mut client = ClientConfig::new("localhost", "/");
        client.deflate = Some(DeflateConfig::default());
        let mut limits = Limits::default();
        limits.max_message_size = 64 << 10;
        let mut server = ServerConfig::default();
        server.deflate = Some(DeflateConfig::default());
        match side {
            Side::Server => server.limits = limits,
            Side::Client => client.limits = limits,
        }
        let mut pair = Pair::connected(client, server);
        let from = side.other();
        pair.conn(from).send_binary(&vec![0; 4 << 20]).unwrap();
        let wire = pair.take_transmit(from);
        assert!(wire.len() < 10_000, "compressed to {} bytes", wire.len());
        let e = expect_failure(&mut pair, side, &wire, 1009);
        assert_eq!(e, ProtocolError::MessageTooBig { limit: 64 << 10 });
    }
}

// ----- permessage-deflate (RFC 7692) ---------------------------------------

#[test]
fn rfc7692_examples_inflate() {
    let mut pair = deflate();
    // 7.2.3.1: "Hello" compressed in one frame.
    pair.inject(
        Side::Client,
        &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    // 7.2.3.1: the same, fragmented.
    pair.inject(Side::Client, &[0x41, 0x03, 0xf2, 0x48, 0xcd]);
    pair.inject(Side::Client, &[0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00]);
    // 7.2.3.3: "Hello" in a stored block.
    pair.inject(
        Side::Client,
        &[
            0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ],
    );
    // 7.2.3.6: an empty compressed message.
    pair.inject(Side::Client, &[0xc1, 0x01, 0x00]);
    // An uncompressed message on the same connection.
    pair.inject(Side::Client, &server_frame(true, TEXT, b"plain"));
    assert_eq!(
        pair.events(Side::Client),
        [
            Event::Message(Message::text("Hello")),
            Event::Message(Message::text("Hello")),
            Event::Message(Message::text("Hello")),
            Event::Message(Message::text("")),
            Event::Message(Message::text("plain")),
        ]
    );
}

#[test]
fn rfc7692_context_takeover_example() {
    // 7.2.3.2: the second "Hello" refers back into the first message.
    let mut pair = deflate();
    pair.inject(
        Side::Client,
        &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    pair.inject(Side::Client, &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    assert_eq!(
        pair.events(Side::Client),
        [
            Event::Message(Message::text("Hello")),
            Event::Message(Message::text("Hello")),
        ]
    );
}

#[test]
fn rsv1_on_control_or_continuation_frames_is_1002() {
    for side in [Side::Server, Side::Client] {
        let mask = (side == Side::Server).then_some(KEY);
        for opcode in [PING, PONG, CLOSE] {
            let bytes = raw_frame(b0(true, 0b100, opcode), mask, b"");
            expect_failure(&mut deflate(), side, &bytes, 1002);
        }
        let mut bytes = frame_from(side.other(), false, BINARY, b"abc");
        bytes.extend(raw_frame(b0(true, 0b100, CONT), mask, b"def"));
        let e = expect_failure(&mut deflate(), side, &bytes, 1002);
        assert_eq!(e, ProtocolError::ReservedBits(0b100));
    }
}

#[test]
fn rsv1_without_deflate_is_1002() {
    both_roles(
        plain,
        true,
        0b100,
        TEXT,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        1002,
    );
}

#[test]
fn garbage_compressed_data_is_1007() {
    for side in [Side::Server, Side::Client] {
        let mask = (side == Side::Server).then_some(KEY);
        let bytes = raw_frame(b0(true, 0b100, BINARY), mask, &[0xff; 8]);
        let e = expect_failure(&mut deflate(), side, &bytes, 1007);
        assert_eq!(e, ProtocolError::InvalidCompressedData);
    }
}

#[test]
fn compressed_invalid_utf8_is_1007() {
    // A stored block holding "\xff" as a compressed text message.
    let payload = [0x00, 0x01, 0x00, 0xfe, 0xff, 0xff, 0x00];
    for side in [Side::Server, Side::Client] {
        let mask = (side == Side::Server).then_some(KEY);
        let bytes = raw_frame(b0(true, 0b100, TEXT), mask, &payload);
        let e = expect_failure(&mut deflate(), side, &bytes, 1007);
        assert_eq!(e, ProtocolError::InvalidUtf8);
    }
}

// ----- control frames inside fragmented messages (5.4) --------------------

#[test]
fn pings_inside_a_fragmented_message_are_answered() {
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut pair = plain();
        let mut bytes = frame_from(from, false, TEXT, b"Hel");
        bytes.extend(frame_from(from, true, PING, b"p1"));
        bytes.extend(frame_from(from, false, CONT, b"lo"));
        bytes.extend(frame_from(from, true, PONG, b"unsolicited"));
        bytes.extend(frame_from(from, true, PING, b"p2"));
        bytes.extend(frame_from(from, true, CONT, b" world"));
        for chunk in [None, Some(1), Some(5)] {
            pair.chunk = chunk;
            pair.inject(side, &bytes);
            assert_eq!(
                pair.events(side),
                [
                    Event::Ping(b"p1".to_vec()),
                    Event::Pong(b"unsolicited".to_vec()),
                    Event::Ping(b"p2".to_vec()),
                    Event::Message(Message::text("Hello world")),
                ]
            );
            // Every ping is answered, in order (the Autobahn|Testsuite's
            // cases 5.6 and 5.19 want the pongs before the message's echo).
            let out = parse_frames(&pair.take_transmit(side));
            let pongs: Vec<_> = out.iter().map(|f| (f.opcode, f.payload.clone())).collect();
            assert_eq!(pongs, [(PONG, b"p1".to_vec()), (PONG, b"p2".to_vec())]);
        }
    }
}

// ----- ping floods: a bounded number of pongs (5.5.3) -----------------------

/// The most a pong frame takes: 2 bytes of header, 4 of mask on a client,
/// 125 of payload.
const PONG_FRAME_MAX: usize = 2 + 4 + 125;

#[test]
fn a_ping_flood_without_draining_queues_a_bounded_number_of_pongs() {
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut pair = plain();
        let mut bound = 0;
        for i in 0..1000u32 {
            let payload = vec![b'x'; (i % 126) as usize];
            pair.inject(side, &frame_from(from, true, PING, &payload));
            bound = bound.max(pair.conn(side).queued_output());
        }
        assert!(bound <= (MAX_QUEUED_PONGS + 1) * PONG_FRAME_MAX, "{bound}");
        assert!(pair.conn(side).pong_pending());
        let out = parse_frames(&pair.take_transmit(side));
        // The first pings are answered in order, then only the last one.
        assert_eq!(out.len(), MAX_QUEUED_PONGS + 1, "{side:?}");
        for (i, frame) in out[..MAX_QUEUED_PONGS].iter().enumerate() {
            assert_eq!((frame.opcode, frame.payload.len()), (PONG, i % 126));
        }
        let last = &out[MAX_QUEUED_PONGS];
        assert_eq!((last.opcode, last.payload.len()), (PONG, 999 % 126));
        assert!(!pair.conn(side).pong_pending());
        assert_eq!(pair.conn(side).queued_output(), 0);
    }
}

#[test]
fn ten_pings_get_ten_pongs_in_order() {
    // The Autobahn|Testsuite's case 2.10: not required by RFC 6455, but
    // expected of a strict implementation.
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut pair = plain();
        let mut bytes = Vec::new();
        for i in 0..10u8 {
            bytes.extend(frame_from(from, true, PING, &[b'p', b'0' + i]));
        }
        pair.inject(side, &bytes);
        let out = parse_frames(&pair.take_transmit(side));
        let payloads: Vec<_> = out.iter().map(|f| (f.opcode, f.payload.clone())).collect();
        let expected: Vec<_> = (0..10u8).map(|i| (PONG, vec![b'p', b'0' + i])).collect();
        assert_eq!(payloads, expected);
    }
}

#[test]
fn a_pending_pong_goes_out_after_queued_output_and_before_the_close() {
    for side in [Side::Server, Side::Client] {
        let from = side.other();
        let mut pair = plain();
        let mut flood = Vec::new();
        for _ in 0..MAX_QUEUED_PONGS {
            flood.extend(frame_from(from, true, PING, b"p"));
        }
        pair.inject(side, &flood);
        // Over the bound: answered after what is queued, as one pong.
        pair.inject(side, &frame_from(from, true, PING, b"q1"));
        pair.conn(side).send(Message::text("after")).unwrap();
        let mut close = frame_from(from, true, PING, b"q2");
        close.extend(frame_from(from, true, CLOSE, &close_payload(1000, "")));
        pair.inject(side, &close);
        let out = parse_frames(&pair.take_transmit(side));
        let kinds: Vec<_> = out.iter().map(|f| (f.opcode, f.payload.clone())).collect();
        let mut expected: Vec<_> = (0..MAX_QUEUED_PONGS)
            .map(|_| (PONG, b"p".to_vec()))
            .collect();
        expected.push((TEXT, b"after".to_vec()));
        expected.push((PONG, b"q2".to_vec()));
        expected.push((CLOSE, close_payload(1000, "")[..2].to_vec()));
        assert_eq!(kinds, expected);
    }
}

// ----- opening handshake (4.2) ----------------------------------------------

fn bad_request(request: &[u8], status: u16) -> HandshakeError {
    let now = Instant::now();
    let mut server = Connection::server(ServerConfig::default(), Rng::from_seed(1), now);
    server.handle_bytes(now, request);
    let out = util::drain_transmit(&mut server);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status}: {text}"
    );
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    let events = util::drain_events(&mut server);
    let closed = util::closed_of(&events).expect("closed");
    assert_eq!(events.len(), 1);
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert!(server.is_closed());
    match closed.error {
        Some(Error::Handshake(e)) => {
            assert_eq!(e.http_status(), status);
            e
        }
        other => panic!("{other:?}"),
    }
}

fn request_without(header: &str) -> Vec<u8> {
    let text = String::from_utf8(util::request("")).unwrap();
    text.lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with(header))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn bad_handshake_requests_get_an_http_error() {
    assert!(matches!(
        bad_request(&request_without("upgrade:"), 400),
        HandshakeError::InvalidRequest(_)
    ));
    assert!(matches!(
        bad_request(&request_without("connection:"), 400),
        HandshakeError::InvalidRequest(_)
    ));
    assert!(matches!(
        bad_request(&request_without("sec-websocket-key:"), 400),
        HandshakeError::InvalidRequest(_)
    ));
    assert!(matches!(
        bad_request(&request_without("host:"), 400),
        HandshakeError::InvalidRequest(_)
    ));
    let v8 = String::from_utf8(util::request(""))
        .unwrap()
        .replace("Version: 13", "Version: 8");
    assert_eq!(
        bad_request(v8.as_bytes(), 426),
        HandshakeError::UnsupportedVersion
    );
    let post = String::from_utf8(util::request(""))
        .unwrap()
        .replacen("GET", "POST", 1);
    assert!(matches!(
        bad_request(post.as_bytes(), 400),
        HandshakeError::InvalidRequest(_)
    ));
    let http10 = String::from_utf8(util::request(""))
        .unwrap()
        .replacen("HTTP/1.1", "HTTP/1.0", 1);
    assert!(matches!(
        bad_request(http10.as_bytes(), 400),
        HandshakeError::InvalidRequest(_)
    ));
    assert!(matches!(
        bad_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
        HandshakeError::MalformedHttp(_)
    ));
}

#[test]
fn version_426_names_the_supported_version() {
    let now = Instant::now();
    let mut server = Connection::server(ServerConfig::default(), Rng::from_seed(1), now);
    let v8 = String::from_utf8(util::request(""))
        .unwrap()
        .replace("Version: 13", "Version: 8");
    server.handle_bytes(now, v8.as_bytes());
    let out = String::from_utf8(util::drain_transmit(&mut server)).unwrap();
    assert!(out.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{out}");
}

#[test]
fn oversize_handshake_head_is_431() {
    // Complete but too long.
    let long = util::request(&format!("X-Pad: {}\r\n", "a".repeat(20_000)));
    assert_eq!(
        bad_request(&long, 431),
        HandshakeError::HeadTooLarge { limit: 16 << 10 }
    );
    // Never ending: fails as soon as the limit is passed.
    let mut endless = util::request("");
    endless.truncate(endless.len() - 2);
    endless.extend(b"X-Pad: ".iter().chain(&[b'a'; 17_000]));
    assert_eq!(
        bad_request(&endless, 431),
        HandshakeError::HeadTooLarge { limit: 16 << 10 }
    );
}

#[test]
fn handshake_split_into_single_bytes() {
    let now = Instant::now();
    let mut server = Connection::server(ServerConfig::default(), Rng::from_seed(1), now);
    for b in util::request("") {
        assert!(util::drain_events(&mut server).is_empty());
        server.handle_bytes(now, &[b]);
    }
    assert!(matches!(
        util::drain_events(&mut server).as_slice(),
        [Event::Connected(_)]
    ));
    let out = String::from_utf8(util::drain_transmit(&mut server)).unwrap();
    assert!(out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

#[test]
fn frames_in_the_same_packet_as_the_request_are_processed() {
    let now = Instant::now();
    let mut server = Connection::server(ServerConfig::default(), Rng::from_seed(1), now);
    let mut packet = util::request("");
    packet.extend(client_frame(true, TEXT, b"first"));
    packet.extend(client_frame(true, PING, b"p"));
    packet.extend(&client_frame(false, BINARY, b"par")[..5]);
    server.handle_bytes(now, &packet);
    server.handle_bytes(now, &client_frame(false, BINARY, b"par")[5..]);
    server.handle_bytes(now, &client_frame(true, CONT, b"tial"));
    let events = util::drain_events(&mut server);
    assert!(matches!(events[0], Event::Connected(_)), "{events:?}");
    assert_eq!(
        events[1..],
        [
            Event::Message(Message::text("first")),
            Event::Ping(b"p".to_vec()),
            Event::Message(Message::binary(b"partial".to_vec())),
        ]
    );
}

#[test]
fn frames_in_the_same_packet_as_the_response_are_processed() {
    let now = Instant::now();
    let mut client =
        Connection::client(ClientConfig::new("localhost", "/"), Rng::from_seed(1), now);
    let request = util::drain_transmit(&mut client);
    let mut packet = util::response(&util::request_key(&request), "");
    packet.extend(server_frame(true, TEXT, b"welcome"));
    packet.extend(server_frame(true, CLOSE, &close_payload(1001, "bye")));
    client.handle_bytes(now, &packet);
    let events = util::drain_events(&mut client);
    assert!(matches!(events[0], Event::Connected(_)), "{events:?}");
    assert_eq!(events[1], Event::Message(Message::text("welcome")));
    util::assert_clean(&util::closed_of(&events).unwrap(), 1001, "bye", true);
    assert_eq!(
        emitted_close_code(&util::drain_transmit(&mut client)),
        Some(1001)
    );
}

fn bad_response(extra: &str, key_override: Option<&str>, config: ClientConfig) -> HandshakeError {
    let now = Instant::now();
    let mut client = Connection::client(config, Rng::from_seed(1), now);
    let request = util::drain_transmit(&mut client);
    let key = key_override.map_or_else(|| util::request_key(&request), str::to_owned);
    client.handle_bytes(now, &util::response(&key, extra));
    let events = util::drain_events(&mut client);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(util::drain_transmit(&mut client).is_empty());
    match util::closed_of(&events).and_then(|c| c.error) {
        Some(Error::Handshake(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_handshake_responses_fail_the_client() {
    let cfg = || ClientConfig::new("localhost", "/");
    assert_eq!(
        bad_response("", Some("AAAAAAAAAAAAAAAAAAAAAA=="), cfg()),
        HandshakeError::AcceptMismatch
    );
    assert_eq!(
        bad_response("Sec-WebSocket-Protocol: chat\r\n", None, cfg()),
        HandshakeError::UnofferedSubprotocol("chat".into())
    );
    assert!(matches!(
        bad_response(
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            None,
            cfg()
        ),
        HandshakeError::InvalidExtension(_)
    ));
    let mut deflate_cfg = cfg();
    deflate_cfg.deflate = Some(DeflateConfig::default());
    assert!(matches!(
        bad_response(
            "Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n",
            None,
            deflate_cfg
        ),
        HandshakeError::InvalidExtension(_)
    ));
}

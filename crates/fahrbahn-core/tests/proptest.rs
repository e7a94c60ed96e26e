//! Property tests: chunking independence, robustness against random input,
//! and message integrity through a [`Pair`].
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

mod util;

use std::time::Instant;

use fahrbahn_core::Rng;
use fahrbahn_core::ws::{ClientConfig, Connection, DeflateConfig, Event, Message, ServerConfig};
use proptest::prelude::*;
use util::{
    BINARY, CLOSE, CONT, KEY, PING, Pair, Side, TEXT, b0, close_payload, drain_events,
    drain_transmit, frame_from, raw_frame,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A connection of `role` before any input, and the handshake bytes its
/// peer would send.
fn fresh(role: Side, deflate: bool) -> (Connection, Vec<u8>) {
    let now = Instant::now();
    let dcfg = deflate.then(DeflateConfig::default);
    match role {
        Side::Server => {
            let mut cfg = ServerConfig::default();
            cfg.deflate = dcfg;
            let extra = if deflate {
                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            } else {
                ""
            };
            let server = Connection::server(cfg, Rng::from_seed(5), now);
            (server, util::request(extra))
        }
        Side::Client => {
            let mut cfg = ClientConfig::new("localhost", "/");
            cfg.deflate = dcfg;
            let mut client = Connection::client(cfg, Rng::from_seed(6), now);
            let key = util::request_key(&drain_transmit(&mut client));
            let extra = if deflate {
                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            } else {
                ""
            };
            (client, util::response(&key, extra))
        }
    }
}

/// Feeds `bytes` in pieces of the given sizes (cycled); returns all events
/// and all transmitted bytes.
fn run(role: Side, deflate: bool, bytes: &[u8], sizes: &[usize]) -> (Vec<Event>, Vec<u8>) {
    let (mut conn, _) = fresh(role, deflate);
    let now = Instant::now();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        conn.handle_bytes(now, &rest[..n]);
        rest = &rest[n..];
        events.extend(drain_events(&mut conn));
        out.extend(drain_transmit(&mut conn));
    }
    (events, out)
}

/// One message: text or binary, its payload, and where to cut it into
/// fragments (with a ping after some of them).
#[derive(Debug, Clone)]
struct Msg {
    text: bool,
    payload: Vec<u8>,
    cuts: Vec<(usize, bool)>,
}

fn msg_strategy() -> impl Strategy<Value = Msg> {
    (
        any::<bool>(),
        prop_oneof![
            "[a-zé𝄞κ ]{0,40}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..300),
        ],
        proptest::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..4),
    )
        .prop_map(|(text, payload, cuts)| {
            let payload = if text {
                String::from_utf8_lossy(&payload).into_owned().into_bytes()
            } else {
                payload
            };
            let mut cuts: Vec<(usize, bool)> = cuts
                .into_iter()
                .map(|(i, ping)| (i.index(payload.len() + 1), ping))
                .collect();
            cuts.sort();
            Msg {
                text,
                payload,
                cuts,
            }
        })
}

/// The frames of `msgs` as `from` sends them, followed by a close, and the
/// events the receiver must report.
fn encode(from: Side, msgs: &[Msg]) -> (Vec<u8>, Vec<Event>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for (n, m) in msgs.iter().enumerate() {
        let mut start = 0;
        let mut opcode = if m.text { TEXT } else { BINARY };
        for (i, &(cut, ping)) in m.cuts.iter().enumerate() {
            wire.extend(frame_from(from, false, opcode, &m.payload[start..cut]));
            opcode = CONT;
            start = cut;
            if ping {
                let payload = format!("{n}.{i}").into_bytes();
                wire.extend(frame_from(from, true, PING, &payload));
                expected.push(Event::Ping(payload));
            }
        }
        wire.extend(frame_from(from, true, opcode, &m.payload[start..]));
        expected.push(Event::Message(if m.text {
            Message::text(String::from_utf8(m.payload.clone()).unwrap())
        } else {
            Message::binary(m.payload.clone())
        }));
    }
    wire.extend(frame_from(from, true, CLOSE, &close_payload(1000, "done")));
    (wire, expected)
}

/// Splits a connection's output into its HTTP head (a server's response),
/// its frames other than pongs, and the pongs' payloads.
fn split_pongs(role: Side, out: &[u8]) -> (&[u8], Vec<util::RawFrame>, Vec<Vec<u8>>) {
    let head_len = match role {
        Side::Server => out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| i + 4),
        Side::Client => 0,
    };
    let (frames, pongs): (Vec<_>, Vec<_>) = util::parse_frames(&out[head_len..])
        .into_iter()
        .partition(|f| f.opcode != util::PONG);
    let pongs = pongs.into_iter().map(|f| f.payload).collect();
    (&out[..head_len], frames, pongs)
}

/// Random frame-like input: mostly well-formed headers with random bits,
/// sometimes raw garbage.
fn noisy_frames(masked: bool) -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        prop_oneof![
            4 => prop::sample::select(vec![TEXT, BINARY, CONT, PING, PONG_OP, CLOSE]),
            1 => 0u8..16,
        ],
        any::<bool>(),
        prop_oneof![6 => Just(0u8), 1 => 0u8..8],
        prop::bool::weighted(if masked { 0.95 } else { 0.05 }),
        proptest::collection::vec(any::<u8>(), 0..140),
    )
        .prop_map(|(opcode, fin, rsv, mask, payload)| {
            raw_frame(b0(fin, rsv, opcode), mask.then_some(KEY), &payload)
        });
    let item = prop_oneof![
        8 => frame,
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ];
    proptest::collection::vec(item, 0..12).prop_map(|v| v.concat())
}

const PONG_OP: u8 = util::PONG;

/// At most one `Closed`, and it is the last event.
fn check_ending(events: &[Event]) {
    let _ = util::closed_of(events);
}

proptest! {
    #![proptest_config(config())]

    /// (a) Any chunking of the same valid stream gives the same events and
    /// the same output.
    #[test]
    fn chunking_does_not_change_the_outcome(
        server_role in any::<bool>(),
        msgs in proptest::collection::vec(msg_strategy(), 0..6),
        sizes in proptest::collection::vec(1usize..40, 1..8),
    ) {
        let role = if server_role { Side::Server } else { Side::Client };
        let (_, mut stream) = fresh(role, false);
        let (frames, expected) = encode(role.other(), &msgs);
        stream.extend(frames);
        let (whole_events, whole_out) = run(role, false, &stream, &[stream.len()]);
        let (events, out) = run(role, false, &stream, &sizes);
        prop_assert_eq!(&events, &whole_events);
        // The same output, except for pongs: pings that arrive together
        // are answered by one pong, to the last of them (RFC 6455 5.5.3).
        let (head, frames, pongs) = split_pongs(role, &out);
        let (whole_head, whole_frames, whole_pongs) = split_pongs(role, &whole_out);
        prop_assert_eq!(head, whole_head);
        prop_assert_eq!(&frames, &whole_frames);
        let pings: Vec<Vec<u8>> = expected
            .iter()
            .filter_map(|e| match e {
                Event::Ping(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        for answered in [&pongs, &whole_pongs] {
            let mut rest = pings.iter();
            prop_assert!(answered.iter().all(|p| rest.any(|q| q == p)), "pongs in ping order");
            prop_assert_eq!(answered.last(), pings.last(), "the last ping is answered");
        }
        prop_assert!(matches!(events.first(), Some(Event::Connected(_))));
        prop_assert_eq!(&events[1..events.len() - 1], expected.as_slice());
        match events.last() {
            Some(Event::Closed(c)) => {
                prop_assert_eq!(c.code.0, 1000);
                prop_assert!(c.by_peer && c.error.is_none());
            }
            other => prop_assert!(false, "no close: {:?}", other),
        }
    }

    /// (b) Random frames after a valid handshake never panic and end in at
    /// most one `Closed`, with nothing after it.
    #[test]
    fn random_frames_after_the_handshake(
        server_role in any::<bool>(),
        deflate in any::<bool>(),
        noise in noisy_frames(true),
        sizes in proptest::collection::vec(1usize..64, 1..4),
    ) {
        let role = if server_role { Side::Server } else { Side::Client };
        let (_, mut stream) = fresh(role, deflate);
        let handshake_len = stream.len();
        let mut noise = noise;
        if role == Side::Client {
            // Clear the mask bits so the frames get past that rule.
            noise = strip_masks(&noise);
        }
        stream.extend(&noise);
        let (events, out) = run(role, deflate, &stream, &sizes);
        prop_assert!(matches!(events.first(), Some(Event::Connected(_))));
        check_ending(&events);
        // Whatever was emitted after the handshake is well-formed frames.
        let (_, handshake_out) = run(role, deflate, &stream[..handshake_len], &[handshake_len]);
        let frames = util::parse_frames(&out[handshake_out.len()..]);
        prop_assert!(frames.iter().filter(|f| f.opcode == CLOSE).count() <= 1);
        if let Some(Event::Closed(c)) = events.last() {
            if c.error.is_some() || c.by_peer {
                prop_assert_eq!(frames.last().map(|f| f.opcode), Some(CLOSE));
            }
        }
    }

    /// (b') Plain random bytes after the handshake.
    #[test]
    fn random_bytes_after_the_handshake(
        server_role in any::<bool>(),
        deflate in any::<bool>(),
        noise in proptest::collection::vec(any::<u8>(), 0..512),
        sizes in proptest::collection::vec(1usize..64, 1..4),
    ) {
        let role = if server_role { Side::Server } else { Side::Client };
        let (_, mut stream) = fresh(role, deflate);
        stream.extend(&noise);
        let (events, _) = run(role, deflate, &stream, &sizes);
        prop_assert!(matches!(events.first(), Some(Event::Connected(_))));
        check_ending(&events);
    }

    /// (c) Random bytes as the handshake never panic.
    #[test]
    fn random_handshake_bytes(
        server_role in any::<bool>(),
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..64, 1..4),
    ) {
        let role = if server_role { Side::Server } else { Side::Client };
        let (events, _) = run(role, false, &noise, &sizes);
        check_ending(&events);
        prop_assert!(events.iter().all(|e| matches!(e, Event::Closed(_))));
    }

    /// (c') A valid handshake with random bytes spliced in or cut off.
    #[test]
    fn mutated_handshakes(
        server_role in any::<bool>(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..8,
        insert in proptest::collection::vec(any::<u8>(), 0..6),
    ) {
        let role = if server_role { Side::Server } else { Side::Client };
        let (_, mut stream) = fresh(role, false);
        let i = at.index(stream.len());
        let end = (i + cut).min(stream.len());
        stream.splice(i..end, insert);
        let (events, _) = run(role, false, &stream, &[stream.len()]);
        check_ending(&events);
        if let Some(Event::Closed(c)) = events.last() {
            prop_assert!(c.error.is_some());
        }
    }

    /// (d) Messages of random sizes and kinds arrive identical and in order,
    /// with and without deflate, whatever the delivery chunk size.
    #[test]
    fn messages_arrive_intact(
        deflate in any::<bool>(),
        chunk in prop_oneof![Just(None), (1usize..200).prop_map(Some)],
        msgs in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), prop_oneof![Just(0usize), 0usize..5000], any::<u8>(), any::<bool>()),
            0..12,
        ),
    ) {
        let mut client = ClientConfig::new("localhost", "/");
        client.deflate = deflate.then(DeflateConfig::default);
        let mut server = ServerConfig::default();
        server.deflate = deflate.then(DeflateConfig::default);
        let mut pair = Pair::connected(client, server);
        pair.chunk = chunk;
        let mut sent = [Vec::new(), Vec::new()];
        for (from_client, text, len, seed, compressible) in msgs {
            let from = if from_client { Side::Client } else { Side::Server };
            let msg = make_message(text, len, seed, compressible);
            pair.conn(from).send(msg.clone()).unwrap();
            sent[from as usize].push(msg);
            if seed % 3 == 0 {
                pair.drive();
            }
        }
        pair.drive();
        prop_assert_eq!(util::messages(&pair.events(Side::Server)), sent[0].clone());
        prop_assert_eq!(util::messages(&pair.events(Side::Client)), sent[1].clone());
    }
}

fn make_message(text: bool, len: usize, seed: u8, compressible: bool) -> Message {
    let mut bytes = vec![0u8; len];
    if compressible {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = b"abcab"[(i + usize::from(seed)) % 5];
        }
    } else {
        Rng::from_seed(u64::from(seed)).fill(&mut bytes);
    }
    if text {
        Message::text(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        Message::binary(bytes)
    }
}

/// Walks a stream of frames built by [`noisy_frames`] and clears the mask
/// bit of headers it can find (garbage in between may hide some; fine).
fn strip_masks(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while rest.len() >= 2 {
        let masked = rest[1] & 0x80 != 0;
        let len7 = usize::from(rest[1] & 0x7F);
        let (len, ext) = match len7 {
            126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 2),
            126 | 127 => break,
            n => (n, 0),
        };
        let head = 2 + ext;
        let key_len = if masked { 4 } else { 0 };
        if rest.len() < head + key_len + len {
            break;
        }
        let mut frame = raw_frame(rest[0], None, &rest[head + key_len..head + key_len + len]);
        if masked {
            // Unmask so the payload stays what the strategy generated.
            let key = [rest[head], rest[head + 1], rest[head + 2], rest[head + 3]];
            let start = frame.len() - len;
            for (i, b) in frame[start..].iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        out.extend(frame);
        rest = &rest[head + key_len + len..];
    }
    out.extend_from_slice(rest);
    out
}

//! End-to-end behaviour of a client and a server connected in memory.
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

mod util;

use std::time::Duration;

use fahrbahn_core::ws::{
    Accept, ClientConfig, CloseCode, DeflateConfig, Error, Event, HandshakeError, Limits, Message,
    SendError, ServerConfig, Timeouts,
};
use util::{Pair, Side, assert_clean, closed_of, messages};

fn deflate_pair() -> Pair {
    let mut client = ClientConfig::new("localhost", "/");
    client.deflate = Some(DeflateConfig::default());
    let mut server = ServerConfig::default();
    server.deflate = Some(DeflateConfig::default());
    Pair::connected(client, server)
}

/// Deterministic pseudo-random bytes (incompressible).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fahrbahn_core::Rng::from_seed(seed);
    let mut v = vec![0; len];
    rng.fill(&mut v);
    v
}

/// Sends `msgs` from `from` and checks they arrive identical and in order.
fn round_trip(pair: &mut Pair, from: Side, msgs: &[Message]) {
    for m in msgs {
        pair.conn(from).send(m.clone()).expect("open");
    }
    pair.drive();
    let got = pair.events(from.other());
    let short: Vec<String> = got
        .iter()
        .map(|e| format!("{e:?}").chars().take(200).collect())
        .collect();
    assert_eq!(got.len(), msgs.len(), "only messages expected: {short:?}");
    assert_eq!(messages(&got), msgs);
    assert!(pair.events(from).is_empty());
}

fn sample_messages() -> Vec<Message> {
    vec![
        Message::text("hello"),
        Message::binary(vec![0, 1, 2, 255]),
        Message::text(""),
        Message::binary(Vec::new()),
        Message::text("κόσμε 𝄞 ".repeat(1000)),
        Message::binary(noise(70_000, 9)),
        Message::text("hello"),
    ]
}

// ----- opening handshake ------------------------------------------------

#[test]
fn handshake_negotiates_subprotocol_and_passes_headers() {
    let mut client = ClientConfig::new("example.com:8080", "/ws?x=1");
    client.subprotocols = vec!["v2".into(), "v1".into()];
    client.origin = Some("http://example.com".into());
    client.headers = vec![("X-Token".into(), "abc".into())];
    let mut server = ServerConfig::default();
    server.subprotocols = vec!["v1".into(), "v3".into(), "v2".into()];
    server.headers = vec![("X-Server".into(), "fahrbahn".into())];
    let mut pair = Pair::with_configs(client, server);
    let (c, s) = pair.connect();
    // The server's preference order wins among the offered ones.
    assert_eq!(c.subprotocol.as_deref(), Some("v1"));
    assert_eq!(s.subprotocol.as_deref(), Some("v1"));
    assert_eq!(s.path, "/ws?x=1");
    assert_eq!(c.path, "/ws?x=1");
    let header = |hs: &[(String, String)], name: &str| {
        hs.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(&s.headers, "x-token").as_deref(), Some("abc"));
    assert_eq!(
        header(&s.headers, "host").as_deref(),
        Some("example.com:8080")
    );
    assert_eq!(
        header(&s.headers, "origin").as_deref(),
        Some("http://example.com")
    );
    assert_eq!(header(&c.headers, "x-server").as_deref(), Some("fahrbahn"));
    assert_eq!(c.extensions, None);
    assert_eq!(s.extensions, None);
    assert!(pair.client.is_open() && pair.server.is_open());
    // Nothing is pending after the handshake.
    assert_eq!(pair.next_timeout(), None);
}

#[test]
fn handshake_without_common_subprotocol_has_none() {
    let mut client = ClientConfig::new("localhost", "/");
    client.subprotocols = vec!["a".into()];
    let mut server = ServerConfig::default();
    server.subprotocols = vec!["b".into()];
    let (c, s) = Pair::with_configs(client, server).connect();
    assert_eq!(c.subprotocol, None);
    assert_eq!(s.subprotocol, None);
}

#[test]
fn deflate_is_declined_when_only_one_side_wants_it() {
    let mut client = ClientConfig::new("localhost", "/");
    client.deflate = Some(DeflateConfig::default());
    let (c, s) = Pair::with_configs(client, ServerConfig::default()).connect();
    assert_eq!((c.extensions, s.extensions), (None, None));

    let mut server = ServerConfig::default();
    server.deflate = Some(DeflateConfig::default());
    let mut pair = Pair::with_configs(ClientConfig::new("localhost", "/"), server);
    let (c, s) = pair.connect();
    assert_eq!((c.extensions, s.extensions), (None, None));
    round_trip(&mut pair, Side::Client, &sample_messages());
}

fn param(ext: &str, name: &str) -> Option<Option<u8>> {
    ext.split(';')
        .map(str::trim)
        .find_map(|p| match p.split_once('=') {
            Some((k, v)) if k == name => Some(Some(v.parse().expect("number"))),
            None if p == name => Some(None),
            _ => None,
        })
}

/// Bytes on the wire for two identical compressible messages from `from`.
fn wire_sizes_of_repeated_message(pair: &mut Pair, from: Side) -> (usize, usize) {
    let msg = Message::text("a fairly compressible sentence, repeated. ".repeat(20));
    let idx = from as usize;
    let mut sizes = [0; 2];
    for size in &mut sizes {
        let before = pair.moved[idx];
        pair.conn(from).send(msg.clone()).unwrap();
        pair.drive();
        *size = pair.moved[idx] - before;
        assert_eq!(
            messages(&pair.events(from.other())),
            std::slice::from_ref(&msg)
        );
    }
    (sizes[0], sizes[1])
}

#[test]
fn deflate_negotiates_every_parameter_combination() {
    let bits = [None, Some(8), Some(9), Some(15)];
    let mut checked = 0;
    for c_cnct in [false, true] {
        for c_snct in [false, true] {
            for c_cmwb in bits {
                for c_smwb in bits {
                    for (s_cnct, s_snct, s_cmwb, s_smwb) in [
                        (false, false, None, None),
                        (true, false, Some(9), Some(10)),
                        (false, true, Some(8), Some(8)),
                    ] {
                        let mut c_cfg = DeflateConfig::default();
                        c_cfg.client_no_context_takeover = c_cnct;
                        c_cfg.server_no_context_takeover = c_snct;
                        c_cfg.client_max_window_bits = c_cmwb;
                        c_cfg.server_max_window_bits = c_smwb;
                        let mut s_cfg = DeflateConfig::default();
                        s_cfg.client_no_context_takeover = s_cnct;
                        s_cfg.server_no_context_takeover = s_snct;
                        s_cfg.client_max_window_bits = s_cmwb;
                        s_cfg.server_max_window_bits = s_smwb;
                        let what = format!("client {c_cfg:?} server {s_cfg:?}");
                        let mut client = ClientConfig::new("localhost", "/");
                        client.deflate = Some(c_cfg);
                        let mut server = ServerConfig::default();
                        server.deflate = Some(s_cfg);
                        let mut pair = Pair::with_configs(client, server);
                        let (c, s) = pair.connect();
                        let ext = c.extensions.clone().expect(&what);
                        assert_eq!(s.extensions.as_deref(), Some(ext.as_str()), "{what}");
                        assert!(ext.starts_with("permessage-deflate"), "{what}: {ext}");
                        let snct = c_snct || s_snct;
                        let cnct = c_cnct || s_cnct;
                        assert_eq!(
                            param(&ext, "server_no_context_takeover").is_some(),
                            snct,
                            "{what}: {ext}"
                        );
                        assert_eq!(
                            param(&ext, "client_no_context_takeover").is_some(),
                            cnct,
                            "{what}: {ext}"
                        );
                        let smwb = match (c_smwb, s_smwb) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                        assert_eq!(
                            param(&ext, "server_max_window_bits"),
                            smwb.map(Some),
                            "{what}: {ext}"
                        );
                        // A response always gives client_max_window_bits a
                        // value, and never one above the client's offer.
                        let cmwb = match param(&ext, "client_max_window_bits") {
                            Some(v) => {
                                let v = v.expect("value in a response");
                                assert!(c_cmwb.is_none_or(|c| v <= c), "{what}: {ext}");
                                Some(v)
                            }
                            None => c_cmwb,
                        };

                        // Context takeover is visible on the wire: with it
                        // the second identical message is much smaller. (An
                        // 8-bit window is sent as stored blocks, which never
                        // refer back.)
                        for (from, nct, bits) in
                            [(Side::Client, cnct, cmwb), (Side::Server, snct, smwb)]
                        {
                            let (first, second) = wire_sizes_of_repeated_message(&mut pair, from);
                            if bits == Some(8) {
                                assert!(second + 8 > first, "{what} {from:?}: {first} {second}");
                            } else if nct {
                                assert_eq!(first, second, "{what} {from:?}");
                            } else {
                                assert!(second < first, "{what} {from:?}: {first} {second}");
                            }
                        }
                        let msgs = [
                            Message::text("κόσμε"),
                            Message::binary(Vec::new()),
                            Message::binary(noise(3000, 5)),
                            Message::text("κόσμε"),
                        ];
                        round_trip(&mut pair, Side::Client, &msgs);
                        round_trip(&mut pair, Side::Server, &msgs);
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 2 * 4 * 4 * 3);
}

#[test]
fn deflate_compresses_on_the_wire() {
    let mut pair = deflate_pair();
    let msg = Message::text("x".repeat(100_000));
    pair.client.send(msg.clone()).unwrap();
    pair.drive();
    assert!(pair.moved[0] < 2_000, "sent {} bytes", pair.moved[0]);
    assert_eq!(messages(&pair.events(Side::Server)), [msg]);
}

#[test]
fn deflate_min_message_size_sends_small_messages_plain() {
    let mut client = ClientConfig::new("localhost", "/");
    let mut deflate = DeflateConfig::default();
    deflate.min_message_size = 64;
    client.deflate = Some(deflate);
    let mut server = ServerConfig::default();
    server.deflate = Some(DeflateConfig::default());
    let mut pair = Pair::connected(client, server);
    pair.client.send_text("short").unwrap();
    let wire = pair.take_transmit(Side::Client);
    let frames = util::parse_frames(&wire);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].rsv, 0, "not compressed");
    assert_eq!(frames[0].payload, b"short");
    pair.inject(Side::Server, &wire);
    pair.client.send_text(&"long ".repeat(20)).unwrap();
    let wire = pair.take_transmit(Side::Client);
    assert_eq!(util::parse_frames(&wire)[0].rsv, 0b100, "compressed");
    pair.inject(Side::Server, &wire);
    assert_eq!(
        messages(&pair.events(Side::Server)),
        [Message::text("short"), Message::text("long ".repeat(20))]
    );
}

// ----- messages ---------------------------------------------------------

#[test]
fn messages_both_ways_without_deflate() {
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
    round_trip(&mut pair, Side::Client, &sample_messages());
    round_trip(&mut pair, Side::Server, &sample_messages());
}

#[test]
fn messages_both_ways_with_deflate() {
    let mut pair = deflate_pair();
    round_trip(&mut pair, Side::Client, &sample_messages());
    round_trip(&mut pair, Side::Server, &sample_messages());
}

#[test]
fn messages_survive_byte_by_byte_delivery() {
    for mut pair in [
        Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default()),
        deflate_pair(),
    ] {
        for chunk in [1, 2, 3, 7, 13] {
            pair.chunk = Some(chunk);
            let msgs = [
                Message::text("κόσμε 𝄞 split everywhere"),
                Message::binary(noise(300, chunk as u64)),
                Message::text(""),
            ];
            round_trip(&mut pair, Side::Client, &msgs);
            round_trip(&mut pair, Side::Server, &msgs);
        }
    }
}

#[test]
fn large_messages_both_ways() {
    let big_text = Message::text("Fahrbahn 🚗 ".repeat(250_000)); // 3.5 MB
    let big_noise = Message::binary(noise(2 << 20, 42));
    for mut pair in [
        Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default()),
        deflate_pair(),
    ] {
        pair.chunk = Some(64 << 10);
        let msgs = [big_text.clone(), big_noise.clone()];
        round_trip(&mut pair, Side::Client, &msgs);
        round_trip(&mut pair, Side::Server, &msgs);
    }
}

#[test]
fn message_at_exactly_the_limit_is_accepted() {
    let mut limits = Limits::default();
    limits.max_frame_size = 1000;
    limits.max_message_size = 1000;
    let mut server = ServerConfig::default();
    server.limits = limits;
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), server);
    round_trip(&mut pair, Side::Client, &[Message::binary(vec![7; 1000])]);
    pair.client.send_binary(&[7; 1001]).unwrap();
    pair.drive();
    let closed = pair.expect_closed(Side::Server);
    assert_eq!(closed.code, CloseCode::MESSAGE_TOO_BIG);
}

// ----- ping / pong ------------------------------------------------------

#[test]
fn ping_is_answered_with_pong_both_ways() {
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
    for (from, payload) in [(Side::Client, &b"abc"[..]), (Side::Server, &[][..])] {
        pair.conn(from).ping(payload).unwrap();
        pair.drive();
        assert_eq!(pair.events(from.other()), [Event::Ping(payload.to_vec())]);
        assert_eq!(pair.events(from), [Event::Pong(payload.to_vec())]);
    }
    let max = [9u8; 125];
    pair.client.ping(&max).unwrap();
    assert_eq!(
        pair.client.ping(&[0; 126]),
        Err(SendError::ControlPayloadTooLong(126))
    );
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Event::Pong(max.to_vec())]);
}

// ----- closing ----------------------------------------------------------

#[test]
fn close_initiated_by_either_side() {
    for initiator in [Side::Client, Side::Server] {
        let mut pair =
            Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
        let now = pair.now();
        pair.conn(initiator)
            .close(now, CloseCode(4000), "bye now")
            .unwrap();
        assert!(!pair.conn(initiator).is_open());
        assert!(!pair.conn(initiator).is_closed(), "waits for the answer");
        pair.drive();
        let peer = pair.expect_closed(initiator.other());
        assert_clean(&peer, 4000, "bye now", true);
        let own = pair.expect_closed(initiator);
        // The initiator reports the code the peer echoed.
        assert_clean(&own, 4000, "", false);
        assert!(pair.client.is_closed() && pair.server.is_closed());
        assert_eq!(pair.next_timeout(), None);
        // Further input is ignored.
        pair.eof(Side::Client);
        pair.eof(Side::Server);
        assert!(pair.events(Side::Client).is_empty());
        assert!(pair.events(Side::Server).is_empty());
    }
}

#[test]
fn simultaneous_close_is_clean_on_both_sides() {
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
    let now = pair.now();
    pair.client.close(now, CloseCode::NORMAL, "c").unwrap();
    pair.server.close(now, CloseCode::GOING_AWAY, "s").unwrap();
    pair.drive();
    // Each sees the other's close as the answer to its own.
    assert_clean(&pair.expect_closed(Side::Client), 1001, "s", false);
    assert_clean(&pair.expect_closed(Side::Server), 1000, "c", false);
}

#[test]
fn close_rejects_bad_arguments() {
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
    let now = pair.now();
    assert_eq!(
        pair.client.close(now, CloseCode::NO_STATUS, ""),
        Err(SendError::InvalidCloseCode(1005))
    );
    assert_eq!(
        pair.client.close(now, CloseCode::NORMAL, &"x".repeat(124)),
        Err(SendError::CloseReasonTooLong(124))
    );
    assert!(pair.client.is_open(), "failed commands change nothing");
    pair.client
        .close(now, CloseCode::NORMAL, &"é".repeat(61))
        .unwrap();
    pair.drive();
    assert_clean(
        &pair.expect_closed(Side::Server),
        1000,
        &"é".repeat(61),
        true,
    );
}

#[test]
fn close_timeout_when_peer_never_answers() {
    let mut client = ClientConfig::new("localhost", "/");
    client.timeouts.close = Duration::from_secs(3);
    let mut pair = Pair::connected(client, ServerConfig::default());
    pair.drop_to = Some(Side::Server);
    let now = pair.now();
    pair.client.close(now, CloseCode::NORMAL, "").unwrap();
    pair.drive();
    pair.advance_by(Duration::from_millis(2999));
    assert!(pair.events(Side::Client).is_empty());
    assert!(pair.advance_to_next_timeout());
    assert_eq!(pair.elapsed(), Duration::from_secs(3));
    let closed = pair.expect_closed(Side::Client);
    assert_eq!(closed.error, Some(Error::CloseTimeout));
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert!(!closed.by_peer);
    assert_eq!(pair.client.poll_timeout(), None);
}

#[test]
fn close_timeout_with_keepalive_pings_configured() {
    // Regression: a pending keepalive ping must not keep reporting a past
    // deadline while the close handshake waits (a busy loop for drivers).
    let mut client = ClientConfig::new("localhost", "/");
    client.timeouts.close = Duration::from_secs(5);
    client.timeouts.ping_interval = Some(Duration::from_secs(2));
    client.timeouts.pong_timeout = Duration::from_secs(30);
    let mut pair = Pair::connected(client, ServerConfig::default());
    pair.drop_to = Some(Side::Server);
    let now = pair.now();
    pair.client.close(now, CloseCode::NORMAL, "").unwrap();
    let mut steps = 0;
    while pair.advance_to_next_timeout() {
        steps += 1;
        assert!(steps < 10, "timers do not make progress");
        assert!(pair.client.poll_timeout().is_none_or(|t| t > pair.now()));
    }
    let closed = pair.expect_closed(Side::Client);
    assert_eq!(closed.error, Some(Error::CloseTimeout));
    assert_eq!(pair.elapsed(), Duration::from_secs(5));
}

#[test]
fn eof_without_close_is_a_reset() {
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
    pair.eof(Side::Server);
    let closed = pair.expect_closed(Side::Server);
    assert_eq!(closed.error, Some(Error::ConnectionReset));
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert!(
        pair.take_transmit(Side::Server).is_empty(),
        "no close frame"
    );
}

#[test]
fn closing_while_a_message_is_arriving_stays_clean() {
    // Regression: the peer's message is half-received (inside a frame, and
    // inside a fragmented message) when we start the close. Its rest must
    // be read and dropped, and the peer's answer must end the connection
    // cleanly.
    for fragmented in [false, true] {
        let mut pair =
            Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
        let msg = vec![1u8; 1000];
        let wire = if fragmented {
            let mut w = util::server_frame(false, util::BINARY, &msg[..500]);
            w.extend(util::server_frame(true, util::CONT, &msg[500..]));
            w
        } else {
            util::server_frame(true, util::BINARY, &msg)
        };
        let (head, tail) = wire.split_at(600);
        pair.inject(Side::Client, head);
        let now = pair.now();
        pair.client.close(now, CloseCode::NORMAL, "").unwrap();
        pair.inject(Side::Client, tail);
        assert!(pair.events(Side::Client).is_empty());
        pair.drive();
        assert_clean(&pair.expect_closed(Side::Client), 1000, "", false);
        assert_clean(&pair.expect_closed(Side::Server), 1000, "", true);
    }
}

// ----- timers -----------------------------------------------------------

#[test]
fn open_handshake_timeout() {
    let mut client = ClientConfig::new("localhost", "/");
    client.timeouts.open = Duration::from_secs(2);
    let mut pair = Pair::with_configs(client, ServerConfig::default());
    pair.drop_to = Some(Side::Server);
    pair.drive();
    assert!(pair.advance_to_next_timeout());
    assert_eq!(pair.elapsed(), Duration::from_secs(2));
    let closed = pair.expect_closed(Side::Client);
    assert_eq!(closed.error, Some(Error::OpenTimeout));
    assert!(pair.events(Side::Server).is_empty());
    // The server never saw a request: its own default (10 s) fires later.
    assert!(pair.advance_to_next_timeout());
    assert_eq!(pair.elapsed(), Timeouts::default().open);
    assert_eq!(
        pair.expect_closed(Side::Server).error,
        Some(Error::OpenTimeout)
    );
    assert!(!pair.advance_to_next_timeout());
}

#[test]
fn open_timeout_is_cancelled_by_connecting() {
    let mut pair = Pair::new();
    pair.connect();
    assert_eq!(pair.next_timeout(), None);
    assert!(!pair.advance_to_next_timeout());
}

fn keepalive_pair(interval: u64, pong: u64) -> Pair {
    let mut client = ClientConfig::new("localhost", "/");
    client.timeouts.ping_interval = Some(Duration::from_secs(interval));
    client.timeouts.pong_timeout = Duration::from_secs(pong);
    Pair::connected(client, ServerConfig::default())
}

#[test]
fn keepalive_pings_keep_an_answering_peer_open() {
    let mut pair = keepalive_pair(10, 5);
    for i in 1..=5u64 {
        assert!(pair.advance_to_next_timeout());
        assert_eq!(pair.elapsed(), Duration::from_secs(10 * i));
        let server = pair.events(Side::Server);
        assert!(matches!(server.as_slice(), [Event::Ping(_)]), "{server:?}");
        let client = pair.events(Side::Client);
        assert!(matches!(client.as_slice(), [Event::Pong(_)]), "{client:?}");
    }
    assert!(pair.client.is_open());
}

#[test]
fn keepalive_fails_a_silent_peer_with_1011() {
    for (interval, pong) in [(10, 5), (5, 12)] {
        let mut pair = keepalive_pair(interval, pong);
        // The server still reads, but its pongs are lost.
        pair.drop_to = Some(Side::Client);
        let mut steps = 0;
        while !pair.client.is_closed() {
            steps += 1;
            assert!(steps < 20, "no ping timeout ({interval}, {pong})");
            assert!(pair.advance_to_next_timeout());
        }
        // First ping at `interval`, fail `pong` later.
        assert_eq!(
            pair.elapsed(),
            Duration::from_secs(interval + pong),
            "({interval}, {pong})"
        );
        let closed = pair.expect_closed(Side::Client);
        assert_eq!(closed.error, Some(Error::PingTimeout));
        assert_eq!(closed.code, CloseCode::INTERNAL_ERROR);
        // The server got the 1011 close frame.
        let server = pair.events(Side::Server);
        let peer = closed_of(&server).expect("server closed");
        assert_clean(&peer, 1011, &closed.reason, true);
    }
}

// ----- deferred accept --------------------------------------------------

fn deferred_pair() -> Pair {
    let mut client = ClientConfig::new("localhost", "/room/1");
    client.subprotocols = vec!["chat".into(), "superchat".into()];
    let mut server = ServerConfig::default();
    server.defer_accept = true;
    Pair::with_configs(client, server)
}

#[test]
fn defer_accept_then_accept() {
    let mut pair = deferred_pair();
    pair.drive();
    let request = match pair.events(Side::Server).as_slice() {
        [Event::Request(r)] => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(request.path, "/room/1");
    assert_eq!(request.subprotocols(), ["chat", "superchat"]);
    assert!(pair.events(Side::Client).is_empty());
    assert_eq!(pair.server.send_text("x"), Err(SendError::NotOpen));
    let now = pair.now();
    pair.server
        .accept(
            now,
            Accept {
                subprotocol: Some("superchat".into()),
                headers: vec![("X-Room".into(), "1".into())],
            },
        )
        .unwrap();
    assert_eq!(
        pair.server.accept(now, Accept::default()),
        Err(SendError::NoPendingRequest)
    );
    let (c, s) = pair.connect();
    assert_eq!(c.subprotocol.as_deref(), Some("superchat"));
    assert_eq!(s.subprotocol.as_deref(), Some("superchat"));
    assert!(c.headers.contains(&("X-Room".into(), "1".into())));
    round_trip(&mut pair, Side::Client, &sample_messages());
}

#[test]
fn defer_accept_keeps_frames_that_arrive_before_the_decision() {
    let mut pair = deferred_pair();
    pair.drive();
    assert!(matches!(
        pair.events(Side::Server).as_slice(),
        [Event::Request(_)]
    ));
    // The client is not open yet, so hand-make its early frame.
    pair.inject(
        Side::Server,
        &util::client_frame(true, util::TEXT, b"early"),
    );
    assert!(pair.events(Side::Server).is_empty());
    let now = pair.now();
    pair.server.accept(now, Accept::default()).unwrap();
    pair.drive();
    let events = pair.events(Side::Server);
    assert!(matches!(events[0], Event::Connected(_)), "{events:?}");
    assert_eq!(messages(&events), [Message::text("early")]);
}

#[test]
fn defer_accept_then_reject_403() {
    let mut pair = deferred_pair();
    pair.drive();
    assert!(matches!(
        pair.events(Side::Server).as_slice(),
        [Event::Request(_)]
    ));
    pair.server.reject(403, "no entry").unwrap();
    assert_eq!(
        pair.server.reject(403, ""),
        Err(SendError::NoPendingRequest)
    );
    let wire = pair.take_transmit(Side::Server);
    assert!(wire.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
    assert!(wire.ends_with(b"\r\n\r\nno entry"));
    pair.inject(Side::Client, &wire);
    let server = pair.expect_closed(Side::Server);
    assert_eq!(
        server.error,
        Some(Error::Handshake(HandshakeError::Rejected(403)))
    );
    let client = pair.expect_closed(Side::Client);
    assert_eq!(
        client.error,
        Some(Error::Handshake(HandshakeError::UnexpectedStatus(403)))
    );
    assert_eq!(client.code, CloseCode::ABNORMAL);
}

#[test]
fn accept_without_a_pending_request_changes_nothing() {
    // Regression: a misplaced accept() must not break an open connection.
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
    let now = pair.now();
    assert_eq!(
        pair.server.accept(now, Accept::default()),
        Err(SendError::NoPendingRequest)
    );
    assert_eq!(
        pair.server.reject(400, ""),
        Err(SendError::NoPendingRequest)
    );
    assert!(pair.server.is_open());
    round_trip(&mut pair, Side::Server, &[Message::text("still here")]);
    round_trip(&mut pair, Side::Client, &[Message::text("still here")]);

    // And on a server still waiting for its request.
    let mut pair = Pair::new();
    let now = pair.now();
    assert_eq!(
        pair.server.accept(now, Accept::default()),
        Err(SendError::NoPendingRequest)
    );
    pair.connect();
}

// ----- command errors ---------------------------------------------------

#[test]
fn sending_before_open_is_not_open() {
    let mut pair = Pair::new();
    let now = pair.now();
    for side in [Side::Client, Side::Server] {
        let conn = pair.conn(side);
        assert!(!conn.is_open() && !conn.is_closed());
        assert_eq!(conn.send_text("x"), Err(SendError::NotOpen));
        assert_eq!(conn.send_binary(b"x"), Err(SendError::NotOpen));
        assert_eq!(conn.ping(b""), Err(SendError::NotOpen));
        assert_eq!(
            conn.close(now, CloseCode::NORMAL, ""),
            Err(SendError::NotOpen)
        );
    }
    pair.connect();
}

#[test]
fn sending_after_close_is_closed() {
    let mut pair = Pair::connected(ClientConfig::new("localhost", "/"), ServerConfig::default());
    let now = pair.now();
    pair.client.close(now, CloseCode::NORMAL, "").unwrap();
    // Closing: nothing more may be sent.
    assert_eq!(pair.client.send_text("x"), Err(SendError::Closed));
    assert_eq!(pair.client.ping(b""), Err(SendError::Closed));
    assert_eq!(
        pair.client.close(now, CloseCode::NORMAL, ""),
        Err(SendError::Closed)
    );
    pair.drive();
    assert!(pair.client.is_closed());
    for side in [Side::Client, Side::Server] {
        assert_eq!(pair.conn(side).send_text("x"), Err(SendError::Closed));
        assert_eq!(
            pair.conn(side).send(Message::binary(vec![1])),
            Err(SendError::Closed)
        );
    }
}

#[test]
fn chunked_transmit_keeps_order_and_hands_over_large_payloads() {
    for from in [Side::Server, Side::Client] {
        let mut pair = Pair::new();
        pair.drive();
        let big = noise(100_000, 7);
        let msgs = [
            Message::text("before"),
            Message::binary(big.clone()),
            Message::text("between"),
            Message::text("x".repeat(5000)),
            Message::binary(vec![1, 2, 3]),
        ];
        for m in &msgs {
            pair.conn(from).send(m.clone()).expect("open");
        }
        pair.conn(from).ping(b"p").expect("open");
        // One buffer at a time, as a gathering writer takes them.
        let mut chunks = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = pair.conn(from).poll_transmit_chunk(&mut buf);
            if n == 0 {
                break;
            }
            assert_eq!(n, buf.len());
            chunks.push(buf);
        }
        assert!(
            chunks.len() >= 4,
            "large payloads travel in their own buffers"
        );
        if from == Side::Server {
            assert!(
                chunks.iter().any(|c| c == &big),
                "the payload buffer itself"
            );
        }
        let wire: Vec<u8> = chunks.concat();
        pair.inject(from.other(), &wire);
        let got = pair.events(from.other());
        assert_eq!(messages(&got), msgs);
        let pong = pair.take_transmit(from.other());
        assert!(!pong.is_empty(), "the ping after the messages is answered");
    }
}

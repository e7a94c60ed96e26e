//! Micro-benchmarks of the sans-IO WebSocket core, through its public API.
//!
//! * `parse_unmask`: a connected server [`Connection`] is fed masked client
//!   frames (built once, outside the timed loop) and its events are drained.
//! * `build_mask`: a connected client queues a binary message with
//!   `send_binary` and takes the masked frame out with `poll_transmit`.
//! * `utf8`: text messages through the server connection (unmask, UTF-8
//!   validation, message assembly) next to `simdutf8::basic::from_utf8` and
//!   `std::str::from_utf8` on the same (unmasked) bytes.
//! * `deflate_round_trip`: permessage-deflate, client compress + mask,
//!   server unmask + inflate + validate (no context takeover, level 6).
//!
//! `cargo bench -p fahrbahn-core --bench ws`; `cargo xtask bench` runs it
//! with the others and summarises the figures in docs/benchmarks.md.
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock
#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fahrbahn_core::Rng;
use fahrbahn_core::ws::{ClientConfig, Connection, DeflateConfig, Event, ServerConfig};

/// Payload sizes of the frame benchmarks.
const SIZES: [(usize, &str); 4] = [
    (20, "20B"),
    (1 << 10, "1KiB"),
    (16 << 10, "16KiB"),
    (1 << 20, "1MiB"),
];

/// Moves bytes both ways until both sides are quiet.
fn pump(a: &mut Connection, b: &mut Connection, now: Instant) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let ab = a.poll_transmit(&mut buf);
        b.handle_bytes(now, &buf);
        buf.clear();
        let ba = b.poll_transmit(&mut buf);
        a.handle_bytes(now, &buf);
        if ab == 0 && ba == 0 {
            break;
        }
    }
}

/// A client and a server connection after the opening handshake.
fn connected_pair(deflate: Option<DeflateConfig>) -> (Connection, Connection) {
    let now = Instant::now();
    let mut client_config = ClientConfig::new("localhost", "/");
    client_config.deflate = deflate;
    let mut server_config = ServerConfig::default();
    server_config.deflate = deflate;
    let mut client = Connection::client(client_config, Rng::from_seed(1), now);
    let mut server = Connection::server(server_config, Rng::from_seed(2), now);
    pump(&mut client, &mut server, now);
    assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
    match server.poll_event() {
        Some(Event::Connected(handshake)) => {
            assert_eq!(handshake.extensions.is_some(), deflate.is_some());
        }
        other => panic!("server did not connect: {other:?}"),
    }
    (client, server)
}

/// Compressible, valid UTF-8 text of exactly `len` bytes, mostly ASCII with
/// some two-, three- and four-byte sequences.
fn text(len: usize) -> String {
    const PATTERN: &str = "Fahrbahn: WebSocket und WAMP – Straße, Brücke, 日本語, 🚗 … ";
    let mut out = String::with_capacity(len + PATTERN.len());
    while out.len() < len {
        for c in PATTERN.chars() {
            if out.len() + c.len_utf8() > len {
                // Pad with ASCII to the exact length.
                while out.len() < len {
                    out.push('.');
                }
                break;
            }
            out.push(c);
        }
    }
    out
}

/// Binary payload of `len` bytes (not all zero, so masking is visible).
fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// The masked frames of `count` messages of `payload`, sent by `client`.
fn client_frames(client: &mut Connection, payload: &[u8], text: bool, count: usize) -> Vec<u8> {
    for _ in 0..count {
        if text {
            let s = std::str::from_utf8(payload).expect("text payload");
            client.send_text(s).expect("send");
        } else {
            client.send_binary(payload).expect("send");
        }
    }
    let mut wire = Vec::new();
    let _ = client.poll_transmit(&mut wire);
    wire
}

/// Feeds `wire` to `server` and drains its events; returns the number of
/// payload bytes received (checked against `expected` messages).
fn feed(server: &mut Connection, wire: &[u8], expected: usize) -> usize {
    server.handle_bytes(Instant::now(), wire);
    let mut messages = 0;
    let mut bytes = 0;
    while let Some(event) = server.poll_event() {
        match event {
            Event::Message(message) => {
                messages += 1;
                bytes += message.len();
                drop(black_box(message));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    debug_assert_eq!(messages, expected);
    bytes
}

/// How many messages one iteration carries: small frames are batched so
/// that the per-iteration overhead of the harness does not dominate.
fn batch(len: usize) -> usize {
    (64 << 10) / len.max(1) + 1
}

fn parse_unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_unmask");
    for (len, name) in SIZES {
        let (mut client, mut server) = connected_pair(None);
        let count = batch(len).min(64);
        let wire = client_frames(&mut client, &binary(len), false, count);
        assert_eq!(feed(&mut server, &wire, count), len * count);
        group.throughput(Throughput::Bytes((len * count) as u64));
        group.bench_function(BenchmarkId::new("binary", name), |b| {
            b.iter(|| feed(&mut server, black_box(&wire), count));
        });
    }
    group.finish();
}

fn build_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("build_mask");
    for (len, name) in SIZES {
        let (mut client, _server) = connected_pair(None);
        let payload = binary(len);
        let mut buf = Vec::with_capacity(len + 14);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("binary", name), |b| {
            b.iter(|| {
                client.send_binary(black_box(&payload)).expect("send");
                buf.clear();
                let n = client.poll_transmit(&mut buf);
                black_box(&buf);
                n
            });
        });
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for (len, name) in [(16 << 10, "16KiB"), (1 << 20, "1MiB")] {
        let payload = text(len);
        let bytes = payload.as_bytes();
        assert_eq!(bytes.len(), len);
        let (mut client, mut server) = connected_pair(None);
        let wire = client_frames(&mut client, bytes, true, 1);
        assert_eq!(feed(&mut server, &wire, 1), len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("fahrbahn_text_message", name), |b| {
            b.iter(|| feed(&mut server, black_box(&wire), 1));
        });
        group.bench_function(BenchmarkId::new("simdutf8_basic", name), |b| {
            b.iter(|| simdutf8::basic::from_utf8(black_box(bytes)).is_ok());
        });
        group.bench_function(BenchmarkId::new("std_from_utf8", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(bytes)).is_ok());
        });
    }
    group.finish();
}

fn deflate_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_round_trip");
    for (len, name) in [(1 << 10, "1KiB"), (16 << 10, "16KiB")] {
        // No context takeover: every message is compressed on its own, or
        // the repeated payload would shrink to back-references.
        let mut deflate = DeflateConfig::default();
        deflate.client_no_context_takeover = true;
        deflate.server_no_context_takeover = true;
        let (mut client, mut server) = connected_pair(Some(deflate));
        let payload = text(len);
        let mut buf = Vec::new();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("text", name), |b| {
            b.iter(|| {
                client.send_text(black_box(&payload)).expect("send");
                buf.clear();
                let _ = client.poll_transmit(&mut buf);
                feed(&mut server, &buf, 1)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse_unmask, build_mask, utf8, deflate_round_trip);
criterion_main!(benches);

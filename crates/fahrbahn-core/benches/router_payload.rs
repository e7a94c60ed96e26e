//! Micro-benchmarks of forwarding a large payload through the router, as
//! the served router does it: the received bytes in, the two subscribers'
//! encoded EVENTs out.
//!
//! * `router_payload/decoded/<ser>`: the bytes decoded whole into a
//!   `Message` ([`Codec::decode`]), [`Router::handle_message`] (the
//!   payload's values re-encoded for each codec): how the served router
//!   worked before it kept payloads encoded.
//! * `router_payload/raw/<ser>`: the envelope decoded and the payload
//!   validated ([`Codec::decode_raw`]), [`Router::handle_raw_message`]
//!   (the payload's bytes spliced into the EVENT).
//! * `router_payload/raw_transcoded/<ser>`: as `raw`, the subscribers
//!   speaking another serializer (JSON, or MessagePack for a JSON sender):
//!   the payload transcoded once.
//!
//! The PUBLISH carries 64 KiB of small integers (one value per one or two
//! bytes, the hardest case for a value tree) to two subscribers.
//! `cargo bench -p fahrbahn-core --bench router_payload`.
#![allow(clippy::disallowed_methods)] // benches take a base instant from the clock
#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fahrbahn_core::Rng;
use fahrbahn_core::wamp::router::{ConnectionId, Router, RouterConfig};
use fahrbahn_core::wamp::{Codec, Dict, Message, Serializer, Value, client_roles};

/// The payload's encoded size, about.
const SIZE: usize = 64 << 10;

fn join(router: &mut Router, now: Instant, codec: Codec) -> ConnectionId {
    let conn = router.attach(now);
    router.handle_connected(now, conn, codec, None);
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(client_roles()));
    router.handle_message(
        now,
        conn,
        Message::Hello {
            realm: "realm1".into(),
            details,
        },
    );
    while router.poll_transmit_payload(conn).is_some() {}
    conn
}

/// A router with a publisher of `from` and two subscribers of `to`.
fn setup(from: Codec, to: Codec, now: Instant) -> (Router, ConnectionId, [ConnectionId; 2]) {
    let mut router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(1));
    let publisher = join(&mut router, now, from);
    let subscribers = [join(&mut router, now, to), join(&mut router, now, to)];
    for s in subscribers {
        router.handle_message(
            now,
            s,
            Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: "com.example.topic".into(),
            },
        );
        while router.poll_transmit_payload(s).is_some() {}
    }
    while router.poll_event().is_some() {}
    (router, publisher, subscribers)
}

fn publish_bytes(codec: Codec) -> Vec<u8> {
    let per_value = if codec.serializer == Serializer::Json {
        2
    } else {
        1
    };
    let args = (0..SIZE / per_value)
        .map(|i| Value::from((i % 10) as i64))
        .collect();
    let mut out = Vec::new();
    codec.encode(
        &Message::Publish {
            request: 1,
            options: Dict::new(),
            topic: "com.example.topic".into(),
            args: Some(args),
            kwargs: None,
        },
        &mut out,
    );
    out
}

fn payload(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("router_payload");
    for &ser in Serializer::ALL {
        let from = Codec::new(ser);
        let other = Codec::new(if ser == Serializer::Json {
            Serializer::MsgPack
        } else {
            Serializer::Json
        });
        let bytes = publish_bytes(from);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        for (case, to) in [("decoded", from), ("raw", from), ("raw_transcoded", other)] {
            let (mut router, publisher, subscribers) = setup(from, to, now);
            group.bench_with_input(BenchmarkId::new(case, ser.name()), &bytes, |b, bytes| {
                b.iter(|| {
                    if case == "decoded" {
                        for msg in from.decode(bytes).unwrap() {
                            router.handle_message(now, publisher, msg);
                        }
                    } else {
                        for msg in from.decode_raw(bytes.clone()).unwrap() {
                            router.handle_raw_message(now, publisher, msg);
                        }
                    }
                    for s in subscribers {
                        black_box(router.poll_transmit_payload(s).unwrap());
                    }
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, payload);
criterion_main!(benches);

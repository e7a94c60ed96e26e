//! Micro-benchmarks of the router's URI matching, through the public
//! [`Router`] API.
//!
//! * `router_publish`: a PUBLISH (no acknowledgement) to
//!   `com.example.topic`, which one exact subscription matches, while `n`
//!   other subscriptions (half `prefix`, half `wildcard`, spread over
//!   sessions of 1000 each) match nothing but share the topic's first
//!   components: `com.example.t{i}` (prefix) and `com..x{i}` (wildcard).
//!   Timed: `handle_message` and taking the one EVENT out.
//! * `router_call_unmatched`: a CALL to `com.example.nothing`, which no
//!   registration matches, among `n` such prefix/wildcard registrations;
//!   timed: `handle_message` and taking the ERROR out.
//!
//! `n` is 1, 1000 and 100 000. `cargo bench -p fahrbahn-core --bench
//! matching`.
#![allow(clippy::disallowed_methods)] // benches take a base instant from the clock
#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fahrbahn_core::Rng;
use fahrbahn_core::wamp::router::{ConnectionId, Router, RouterConfig};
use fahrbahn_core::wamp::{Dict, Message, Value, client_roles};

/// Pattern counts.
const COUNTS: [usize; 3] = [1, 1000, 100_000];

/// Patterns per session (stays under any per-session limit).
const PER_SESSION: usize = 1000;

/// A joined session on a new connection.
fn join(router: &mut Router, now: Instant) -> ConnectionId {
    let conn = router.attach(now);
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
    drain(router);
    conn
}

/// Takes every queued outgoing message; how many.
fn drain(router: &mut Router) -> usize {
    let mut n = 0;
    while router.poll_outgoing().is_some() {
        n += 1;
    }
    n
}

fn options(policy: &str) -> Dict {
    let mut o = Dict::new();
    o.insert("match".into(), policy.into());
    o
}

/// A router with `n` never-matching patterns, made by `make(i, policy)`
/// (a SUBSCRIBE or REGISTER), half prefix and half wildcard.
fn router_with(n: usize, make: impl Fn(usize, &'static str) -> Message) -> Router {
    let now = Instant::now();
    let mut router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(1));
    let mut conn = join(&mut router, now);
    for i in 0..n {
        if i > 0 && i % PER_SESSION == 0 {
            conn = join(&mut router, now);
        }
        let policy = if i % 2 == 0 { "prefix" } else { "wildcard" };
        router.handle_message(now, conn, make(i, policy));
        drain(&mut router);
    }
    router
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("router_publish");
    group.throughput(Throughput::Elements(1));
    for n in COUNTS {
        let now = Instant::now();
        let mut router = router_with(n, |i, policy| Message::Subscribe {
            request: i as u64 + 1,
            options: options(policy),
            topic: if policy == "prefix" {
                format!("com.example.t{i}")
            } else {
                format!("com..x{i}")
            },
        });
        let subscriber = join(&mut router, now);
        router.handle_message(
            now,
            subscriber,
            Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: "com.example.topic".into(),
            },
        );
        drain(&mut router);
        let publisher = join(&mut router, now);
        let mut request = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                request += 1;
                router.handle_message(
                    now,
                    publisher,
                    Message::Publish {
                        request,
                        options: Dict::new(),
                        topic: "com.example.topic".into(),
                        args: None,
                        kwargs: None,
                    },
                );
                assert_eq!(drain(black_box(&mut router)), 1);
            });
        });
    }
    group.finish();
}

fn call(c: &mut Criterion) {
    let mut group = c.benchmark_group("router_call_unmatched");
    group.throughput(Throughput::Elements(1));
    for n in COUNTS {
        let now = Instant::now();
        let mut router = router_with(n, |i, policy| Message::Register {
            request: i as u64 + 1,
            options: options(policy),
            procedure: if policy == "prefix" {
                format!("com.example.t{i}")
            } else {
                format!("com..x{i}")
            },
        });
        let caller = join(&mut router, now);
        let mut request = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                request += 1;
                router.handle_message(
                    now,
                    caller,
                    Message::Call {
                        request,
                        options: Dict::new(),
                        procedure: "com.example.nothing".into(),
                        args: None,
                        kwargs: None,
                    },
                );
                assert_eq!(drain(black_box(&mut router)), 1);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, publish, call);
criterion_main!(benches);

//! Micro-benchmarks of the WAMP serializers: encode and decode of a CALL
//! with a few positional and keyword arguments, per serializer, in
//! messages per second.
//!
//! `cargo bench -p fahrbahn-core --bench wamp`.

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fahrbahn_core::wamp::{Dict, Message, Serializer, Value};

/// A typical CALL: a small options dict, three positional arguments and
/// two keyword arguments.
fn call() -> Message {
    let mut options = Dict::new();
    options.insert("timeout".into(), Value::Int(1000));
    options.insert("receive_progress".into(), Value::Bool(false));
    let mut kwargs = Dict::new();
    kwargs.insert("name".into(), Value::String("Fahrbahn".into()));
    kwargs.insert("ratio".into(), Value::Float(0.75));
    Message::Call {
        request: 7_814_135,
        options,
        procedure: "com.example.add_and_describe".into(),
        args: Some(vec![
            Value::Int(23),
            Value::Int(-42),
            Value::String("a short argument string".into()),
        ]),
        kwargs: Some(kwargs),
    }
}

const SERIALIZERS: [Serializer; 3] = [Serializer::Json, Serializer::MsgPack, Serializer::Cbor];

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("wamp_encode");
    group.throughput(Throughput::Elements(1));
    let message = call();
    for serializer in SERIALIZERS {
        let mut out = Vec::with_capacity(256);
        group.bench_function(BenchmarkId::new("call", serializer.name()), |b| {
            b.iter(|| {
                out.clear();
                serializer.encode(black_box(&message), &mut out);
                out.len()
            });
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("wamp_decode");
    group.throughput(Throughput::Elements(1));
    let message = call();
    for serializer in SERIALIZERS {
        let mut bytes = Vec::new();
        serializer.encode(&message, &mut bytes);
        assert_eq!(serializer.decode(&bytes).expect("decode"), message);
        group.bench_function(BenchmarkId::new("call", serializer.name()), |b| {
            b.iter(|| serializer.decode(black_box(&bytes)).expect("decode"));
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);

//! What routing one large PUBLISH costs on the heap, counted by a global
//! allocator that tracks the peak of the bytes allocated: with payloads
//! kept encoded ([`Router::handle_raw_message`]) the router holds a small
//! multiple of the message, not the 20–50× of its values as a tree.
//!
//! One test in this binary: the count is process-wide.
#![allow(unsafe_code)] // the counting allocator only; it defers to `System`
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use fahrbahn_core::Rng;
use fahrbahn_core::wamp::router::{ConnectionId, Router, RouterConfig};
use fahrbahn_core::wamp::{Codec, Dict, Message, Serializer, Value, client_roles};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = ALLOCATED.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` with the same arguments;
// only the byte counts are recorded besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                ALLOCATED.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The encoded size of the PUBLISH, about.
const SIZE: usize = 512 << 10;

/// A PUBLISH of many small integers (the worst case for a tree: one
/// `Value` per one or two bytes), encoded with `ser`.
fn large_publish(ser: Serializer) -> Vec<u8> {
    // Single digits: 2 bytes each in JSON ("7,"), 1 in MessagePack and CBOR.
    let per_value = if ser == Serializer::Json { 2 } else { 1 };
    let args: Vec<Value> = (0..SIZE / per_value)
        .map(|i| Value::from((i % 10) as i64))
        .collect();
    let mut out = Vec::new();
    ser.encode(
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

struct Setup {
    router: Router,
    publisher: ConnectionId,
    subscribers: Vec<ConnectionId>,
}

/// A router with a publisher speaking `from` and two subscribers per
/// codec of `to`, all joined and subscribed (their answers drained).
fn setup(from: Serializer, to: &[Serializer], now: Instant) -> Setup {
    let mut router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(1));
    let join = |router: &mut Router, ser: Serializer| {
        let conn = router.attach(now);
        router.handle_connected(now, conn, Codec::new(ser), None);
        let mut details = Dict::new();
        details.insert("roles".into(), client_roles().into());
        router.handle_message(
            now,
            conn,
            Message::Hello {
                realm: "realm1".into(),
                details,
            },
        );
        conn
    };
    let publisher = join(&mut router, from);
    let subscribers: Vec<ConnectionId> = to
        .iter()
        .flat_map(|&s| [s, s])
        .map(|s| join(&mut router, s))
        .collect();
    for &s in &subscribers {
        router.handle_message(
            now,
            s,
            Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: "com.example.topic".into(),
            },
        );
    }
    while router.poll_outgoing().is_some() {}
    while router.poll_event().is_some() {}
    Setup {
        router,
        publisher,
        subscribers,
    }
}

/// Routes the PUBLISH `publish` of `from` to subscribers of `to`: the
/// peak of the bytes allocated meanwhile over what was allocated before
/// (the received bytes included), and what is held afterwards (the
/// queued EVENTs; the received bytes are gone).
fn route(from: Serializer, publish: &[u8], to: &[Serializer], raw: bool) -> (usize, usize) {
    let now = Instant::now();
    let mut s = setup(from, to, now);
    let before_input = ALLOCATED.load(Ordering::Relaxed);
    let bytes = publish.to_vec();
    let size = bytes.len();
    let base = ALLOCATED.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    if raw {
        // What the served router does: the envelope decoded, the payload
        // validated and kept as the received bytes.
        let msg = Serializer::decode_raw(from, bytes).unwrap();
        s.router.handle_raw_message(now, s.publisher, msg);
    } else {
        let msg = from.decode(&bytes).unwrap();
        drop(bytes);
        s.router.handle_message(now, s.publisher, msg);
    }
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let held = ALLOCATED
        .load(Ordering::Relaxed)
        .saturating_sub(before_input);
    for &sub in &s.subscribers {
        let payload = s.router.poll_transmit_payload(sub).expect("an EVENT");
        assert!(
            payload.len() >= size / 2,
            "{from}: the EVENT carries the payload"
        );
    }
    (peak, held)
}

#[test]
fn one_large_publish_costs_a_small_multiple_of_its_size() {
    let all = Serializer::ALL;
    for &from in all {
        let publish = large_publish(from);
        let size = publish.len();
        let ratio = |bytes: usize| bytes as f64 / size as f64;

        // Everyone speaks the sender's serializer: the EVENT is the new
        // envelope plus the received payload bytes, built once, shared.
        let (peak, held) = route(from, &publish, &[from], true);
        eprintln!(
            "{from}: {size} bytes to 2 subscribers of the same serializer: peak {:.2}x, held {:.2}x",
            ratio(peak),
            ratio(held)
        );
        // The shared EVENT, built in place: about 1x.
        assert!(peak <= 2 * size, "{from}: peak {peak} for {size} bytes");
        assert!(held <= 2 * size, "{from}: held {held} for {size} bytes");

        // Two subscribers per serializer: the payload is transcoded once
        // per other serializer, one item at a time (its encoded forms and
        // the EVENTs are what counts: JSON ones are twice the size of
        // MessagePack's for one-digit integers).
        let (peak_mixed, held_mixed) = route(from, &publish, all, true);
        eprintln!(
            "{from}: {size} bytes to 2 subscribers of each serializer: peak {:.2}x, held {:.2}x",
            ratio(peak_mixed),
            ratio(held_mixed)
        );
        assert!(
            held_mixed <= 5 * size,
            "{from}: held {held_mixed} for {size} bytes"
        );
        assert!(
            peak_mixed <= 16 * size,
            "{from}: peak {peak_mixed} for {size} bytes"
        );

        // For comparison: the payload decoded into values (`handle_message`).
        let (peak_decoded, _) = route(from, &publish, &[from], false);
        eprintln!(
            "{from}: decoded into values first: peak {:.2}x",
            ratio(peak_decoded)
        );
        assert!(peak * 4 < peak_decoded, "{from}: {peak} vs {peak_decoded}");
    }
}

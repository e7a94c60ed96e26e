//! What an idle WebSocket connection holds on the heap, counted by a
//! global allocator that tracks the bytes currently allocated: an idle
//! permessage-deflate connection costs at most twice a plain one (the
//! zlib state is allocated when a message first needs it), and with no
//! context takeover it is freed again after each message.
//!
//! One test in this binary: the count is process-wide.
#![allow(unsafe_code)] // the counting allocator only; it defers to `System`
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use fahrbahn_core::Rng;
use fahrbahn_core::ws::{ClientConfig, Connection, DeflateConfig, Event, Message, ServerConfig};

struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the same arguments;
// only the byte count is recorded besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> isize {
    ALLOCATED.load(Ordering::Relaxed)
}

const PAIRS: usize = 32;

/// Moves bytes both ways until neither side has anything to send, and
/// drops the events; returns the messages received.
fn pump(client: &mut Connection, server: &mut Connection, now: Instant) -> Vec<Message> {
    let mut got = Vec::new();
    loop {
        let mut moved = 0;
        let mut buf = Vec::new();
        moved += client.poll_transmit(&mut buf);
        server.handle_bytes(now, &buf);
        buf.clear();
        moved += server.poll_transmit(&mut buf);
        client.handle_bytes(now, &buf);
        for conn in [&mut *client, &mut *server] {
            while let Some(event) = conn.poll_event() {
                if let Event::Message(m) = event {
                    got.push(m);
                }
            }
        }
        if moved == 0 {
            return got;
        }
    }
}

fn configs(deflate: Option<DeflateConfig>) -> (ClientConfig, ServerConfig) {
    let mut client = ClientConfig::new("localhost", "/");
    client.deflate = deflate;
    let mut server = ServerConfig::default();
    server.deflate = deflate;
    (client, server)
}

/// Opens `PAIRS` client/server pairs (handshake done) with `deflate`, and
/// returns the bytes they hold per connection, after `exchange` ran on
/// each pair.
fn per_connection(
    deflate: Option<DeflateConfig>,
    exchange: impl Fn(&mut Connection, &mut Connection, Instant),
) -> isize {
    let now = Instant::now();
    let (client_config, server_config) = configs(deflate);
    let before = allocated();
    // The connections themselves count too, not only what they point to.
    let mut pairs = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS as u64 {
        let mut client = Connection::client(client_config.clone(), Rng::from_seed(i), now);
        let mut server = Connection::server(server_config.clone(), Rng::from_seed(!i), now);
        pump(&mut client, &mut server, now);
        assert!(client.is_open() && server.is_open());
        exchange(&mut client, &mut server, now);
        pairs.push((client, server));
    }
    let used = allocated() - before;
    drop(pairs);
    used / (2 * PAIRS as isize)
}

fn idle(_: &mut Connection, _: &mut Connection, _: Instant) {}

/// One compressible message each way.
fn one_message_each_way(client: &mut Connection, server: &mut Connection, now: Instant) {
    let text = "an idle connection holds no compression state ".repeat(40);
    client.send(Message::text(text.clone())).unwrap();
    server.send(Message::text(text.clone())).unwrap();
    let got = pump(client, server, now);
    assert_eq!(got, [Message::text(text.clone()), Message::text(text)]);
}

#[test]
fn an_idle_deflate_connection_costs_at_most_twice_a_plain_one() {
    // Warm up whatever is allocated once per process.
    let _ = per_connection(Some(DeflateConfig::default()), one_message_each_way);

    let plain = per_connection(None, idle);
    let deflate = per_connection(Some(DeflateConfig::default()), idle);
    eprintln!("idle: plain {plain} B, permessage-deflate {deflate} B per connection");
    assert!(plain > 0);
    assert!(
        deflate <= 2 * plain,
        "deflate {deflate} B vs plain {plain} B"
    );

    // No context takeover either way: the state is freed after each
    // message, so a connection that went quiet is idle again.
    let mut no_takeover = DeflateConfig::default();
    no_takeover.server_no_context_takeover = true;
    no_takeover.client_no_context_takeover = true;
    let plain_after = per_connection(None, one_message_each_way);
    let after = per_connection(Some(no_takeover), one_message_each_way);
    eprintln!("after a message: plain {plain_after} B, deflate without takeover {after} B");
    assert!(
        after <= 2 * plain_after,
        "deflate {after} B vs plain {plain_after} B"
    );

    // With context takeover the state stays (it is needed for the next
    // message): about 300 KiB, the cost the lazy allocation avoids.
    let takeover = per_connection(Some(DeflateConfig::default()), one_message_each_way);
    eprintln!("after a message: deflate with takeover {takeover} B");
    assert!(takeover > 4 * plain_after, "{takeover} B");
}

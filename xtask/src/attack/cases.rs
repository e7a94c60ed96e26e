//! The attacks A–K of issue 10 (L is client-side: see the module docs of
//! [`super`]), each with the bound its documented limits give.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::wire::{self, Conn, Dial, Serializer, Transport};
use super::{Case, Ctx, Outcome, PER_CONNECTION, ProbeMode, TargetKind, limits, mib};
use crate::Result;
use crate::router::REALM;

/// Every attack, in report order.
pub(super) fn all() -> Vec<Case> {
    use ProbeMode::{Persistent, Reconnect};
    use TargetKind::{Echo, Router};
    let case = |name, what, target, probe, run| Case {
        name,
        what,
        target,
        probe,
        run,
    };
    vec![
        case(
            "A-ws-echo",
            "ping flood, never reading",
            Echo,
            Persistent,
            ping_flood,
        ),
        case(
            "A-ws-router",
            "ping flood, never reading",
            Router,
            Persistent,
            ping_flood,
        ),
        case(
            "A-rs-router",
            "RawSocket PING flood, never reading",
            Router,
            Persistent,
            ping_flood_rs,
        ),
        case(
            "B-router",
            "subscribers that never read, 64 KiB events",
            Router,
            Persistent,
            slow_subscribers,
        ),
        case(
            "C-echo",
            "silent and half-sent handshakes",
            Echo,
            Reconnect,
            silent_handshakes,
        ),
        case(
            "C-router",
            "silent and half-sent handshakes",
            Router,
            Reconnect,
            silent_handshakes,
        ),
        case(
            "D-json",
            "one 16 MiB PUBLISH of zeros to 2 subscribers",
            Router,
            Persistent,
            |ctx| big_publish(ctx, Serializer::Json),
        ),
        case(
            "D-msgpack",
            "one 16 MiB PUBLISH of zeros to 2 subscribers",
            Router,
            Persistent,
            |ctx| big_publish(ctx, Serializer::MsgPack),
        ),
        case(
            "D-cbor",
            "one 16 MiB PUBLISH of zeros to 2 subscribers",
            Router,
            Persistent,
            |ctx| big_publish(ctx, Serializer::Cbor),
        ),
        case(
            "E-router",
            "2000 overlapping prefix subscriptions, 64 KiB publishes",
            Router,
            Persistent,
            overlapping_prefixes,
        ),
        case(
            "F-router",
            "never-matching wildcard subscriptions, publisher",
            Router,
            Persistent,
            wildcard_patterns,
        ),
        case(
            "G-router",
            "thousands of pending calls, callee dies",
            Router,
            Persistent,
            pending_calls,
        ),
        case(
            "H-router",
            "RawSocket caller with a 1 KiB maximum, 1 MiB RESULTs",
            Router,
            Persistent,
            small_rawsocket_caller,
        ),
        case(
            "I-router",
            "one session registering, subscribing, calling past the limits",
            Router,
            Persistent,
            past_the_limits,
        ),
        case(
            "J-router",
            "connections that never say HELLO; a callee gone silent",
            Router,
            Persistent,
            no_hello,
        ),
        case(
            "K-echo",
            "idle permessage-deflate connections vs plain",
            Echo,
            Persistent,
            idle_deflate,
        ),
        case(
            "K-router",
            "idle permessage-deflate connections vs plain",
            Router,
            Persistent,
            idle_deflate,
        ),
    ]
}

/// A callee answering `procedure` with `reply(args)` until dropped.
pub(super) struct Callee {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Callee {
    /// Joins, registers (waiting for REGISTERED) and starts answering.
    pub(super) fn start(
        dial: Dial,
        procedure: &str,
        reply: fn(Value) -> Value,
    ) -> io::Result<Self> {
        let mut conn = Conn::join(&dial, REALM)?;
        conn.send(&wire::register(1, procedure))?;
        let registered = conn.recv(Instant::now() + wire::CONNECT_TIMEOUT)?;
        if wire::kind(&registered).0 != wire::REGISTERED {
            return Err(io::Error::other(format!("REGISTER answered {registered}")));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match conn.recv(Instant::now() + Duration::from_millis(100)) {
                    Ok(message) if wire::kind(&message).0 == wire::INVOCATION => {
                        let args = message.get(4).cloned().unwrap_or(json!([]));
                        let request = wire::kind(&message).1;
                        if conn.send(&json!([70, request, {}, reply(args)])).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Callee {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads and discards everything from `conn` until `stop`, counting
/// messages; ends at the end of the stream.
struct Drain {
    stop: Arc<AtomicBool>,
    messages: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    fn start(mut conn: Conn) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let (stopping, count, ended) = (stop.clone(), messages.clone(), closed.clone());
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match conn.recv_raw(Instant::now() + Duration::from_millis(100)) {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    Err(_) => {
                        ended.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        Self {
            stop,
            messages,
            closed,
            thread: Some(thread),
        }
    }

    fn count(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` until `count` messages arrived.
    fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.count() < count {
            if Instant::now() >= end || self.closed.load(Ordering::Relaxed) {
                return self.count() >= count;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes `next()` frames to `stream` (made non-blocking) as fast as it
/// takes them until `duration` has passed or the connection ends; returns
/// the bytes written and whether the connection ended.
fn flood(
    streams: &mut [TcpStream],
    duration: Duration,
    next: impl Fn(usize) -> Vec<u8>,
) -> (u64, usize) {
    let end = Instant::now() + duration;
    let mut pending: Vec<Vec<u8>> = vec![Vec::new(); streams.len()];
    let mut dead = vec![false; streams.len()];
    let mut written = 0u64;
    for stream in streams.iter() {
        let _ = stream.set_nonblocking(true);
    }
    while Instant::now() < end && dead.iter().any(|d| !d) {
        let mut progress = false;
        for (i, stream) in streams.iter_mut().enumerate() {
            if dead[i] {
                continue;
            }
            if pending[i].len() < 64 << 10 {
                pending[i].extend_from_slice(&next(i));
            }
            match wire::write_some(stream, &mut pending[i]) {
                Ok(n) => {
                    written += n as u64;
                    progress |= n > 0;
                }
                Err(_) => dead[i] = true,
            }
        }
        if !progress {
            // the sockets are full: the target is not reading (attacker pacing)
            thread::sleep(Duration::from_millis(1));
        }
    }
    (written, dead.iter().filter(|d| **d).count())
}

/// A: ping floods on `transport`, never reading.
fn ping_flood_on(ctx: &Ctx<'_>, transport: Transport) -> Result<Outcome> {
    let conns = ctx.scale(2, 8);
    let dial = match ctx.target.kind() {
        TargetKind::Echo => ctx.target.websocket(),
        TargetKind::Router => ctx.target.wamp(transport),
    };
    let mut streams = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..conns {
        let conn = match ctx.target.kind() {
            TargetKind::Echo => Conn::open(&dial),
            TargetKind::Router => Conn::join(&dial, REALM),
        }
        .map_err(|e| format!("connect: {e}"))?;
        let burst: Vec<u8> = (0..64)
            .flat_map(|_| conn.ping_frame(&[0x55; 125]))
            .collect();
        frames.push(burst);
        streams.push(conn.stream);
    }
    let (written, ended) = flood(&mut streams, ctx.duration, |i| frames[i].clone());
    let per_conn = limits::READ_HIGH_WATER + limits::READ_BUF + PER_CONNECTION;
    Ok(Outcome {
        bound: conns as u64 * per_conn,
        bound_why: format!("{conns} conns × (read_high_water 1 MiB + read buffer 64 KiB + 16 KiB)"),
        notes: vec![format!(
            "{conns} connections sent {} MiB of pings without reading; {ended} ended by the target",
            mib(written)
        )],
        failures: Vec::new(),
    })
}

fn ping_flood(ctx: &Ctx<'_>) -> Result<Outcome> {
    ping_flood_on(ctx, Transport::WebSocket)
}

fn ping_flood_rs(ctx: &Ctx<'_>) -> Result<Outcome> {
    ping_flood_on(ctx, Transport::RawSocket)
}

/// Subscribes `conn` to `topic` (`policy`: `None` exact) and waits for
/// SUBSCRIBED.
fn subscribe_one(conn: &mut Conn, topic: &str) -> Result<()> {
    conn.send(&wire::subscribe(1, topic, None))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + wire::CONNECT_TIMEOUT;
    loop {
        let bytes = conn
            .recv_raw(deadline)
            .map_err(|e| format!("subscribe: {e}"))?;
        match conn.serializer().message_type(&bytes) {
            Some(wire::SUBSCRIBED) => return Ok(()),
            Some(wire::ERROR) => return Err(format!("SUBSCRIBE {topic} refused")),
            _ => {}
        }
    }
}

/// Whether the target ended `stream` within `timeout`, reading (and
/// discarding) what it had queued for us.
fn ended_by_target(stream: &mut TcpStream, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    let _ = stream.set_nonblocking(false);
    let mut sink = vec![0u8; 1 << 20];
    while Instant::now() < end {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// How many of `streams` the target ends (EOF or reset) by `deadline`,
/// reading and discarding what it sends; each is checked at least once.
fn count_ended(streams: &mut [TcpStream], deadline: Instant) -> usize {
    let mut ended = vec![false; streams.len()];
    let mut sink = vec![0u8; 64 << 10];
    for stream in streams.iter() {
        let _ = stream.set_nonblocking(true);
    }
    loop {
        for (stream, ended) in streams.iter_mut().zip(ended.iter_mut()) {
            while !*ended {
                match stream.read(&mut sink) {
                    Ok(0) => *ended = true,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => *ended = true,
                }
            }
        }
        if ended.iter().all(|e| *e) || Instant::now() >= deadline {
            return ended.iter().filter(|e| **e).count();
        }
        // waiting for the target's timeouts (attacker time)
        thread::sleep(Duration::from_millis(100));
    }
}

/// B: a subscriber on each transport that never reads, a publisher of
/// 64 KiB events.
fn slow_subscribers(ctx: &Ctx<'_>) -> Result<Outcome> {
    const TOPIC: &str = "attack.b";
    let mut subscribers = Vec::new();
    for transport in [Transport::WebSocket, Transport::RawSocket] {
        let mut conn = Conn::join(&ctx.target.wamp(transport), REALM).map_err(|e| e.to_string())?;
        subscribe_one(&mut conn, TOPIC)?;
        subscribers.push(conn.stream);
    }
    let publisher =
        Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
    let event = publisher.frame(&Serializer::Json.encode(&wire::publish(
        1,
        TOPIC,
        json!(["x".repeat(64 << 10)]),
    )));
    let mut streams = vec![publisher.stream];
    let (written, ended) = flood(&mut streams, ctx.duration, |_| event.clone());
    let mut outcome = Outcome {
        bound: 2 * (limits::OUTBOUND_QUEUE + (64 << 10)) + limits::READ_BUF + 3 * PER_CONNECTION,
        bound_why: "2 subscribers × (outbound_queue_bytes 16 MiB + one 64 KiB event) + read buffer"
            .to_owned(),
        notes: vec![format!("published {} MiB of 64 KiB events", mib(written))],
        failures: Vec::new(),
    };
    outcome.check(ended == 0, "the publisher was disconnected");
    // Only a flood far past the bound and the kernel's buffers must have cut them off.
    if written > 4 * limits::OUTBOUND_QUEUE {
        let cut = subscribers
            .iter_mut()
            .map(|s| ended_by_target(s, Duration::from_secs(10)))
            .filter(|ended| *ended)
            .count();
        outcome
            .notes
            .push(format!("{cut}/2 slow subscribers cut off"));
        outcome.check(cut == 2, "a slow subscriber was not cut off");
    }
    Ok(outcome)
}

/// C: silent TCP connections and half-sent handshakes, held while the
/// probe connects anew for every round trip.
fn silent_handshakes(ctx: &Ctx<'_>) -> Result<Outcome> {
    let n = ctx.scale(300, 1000);
    let mut held = Vec::new();
    let dial = ctx.target.websocket();
    let request = wire::ws_request(&dial);
    let half = &request.as_bytes()[..request.len() / 2];
    for i in 0..n {
        let (port, hello): (u16, &[u8]) = match (ctx.target.kind(), i % 3) {
            (_, 0) => (dial.port, b""),
            (TargetKind::Router, 2) => (ctx.target.ports.rawsocket, &[0x7f]),
            _ => (dial.port, half),
        };
        let mut stream = wire::tcp(port).map_err(|e| format!("connection {i}: {e}"))?;
        if !hello.is_empty() {
            std::io::Write::write_all(&mut stream, hello).map_err(|e| e.to_string())?;
        }
        held.push(stream);
    }
    thread::sleep(ctx.duration); // the attack: holding them (attacker time, not synchronisation)
    Ok(Outcome {
        bound: n as u64 * (limits::HANDSHAKE + PER_CONNECTION),
        bound_why: format!("{n} conns × (max_handshake_size 16 KiB + 16 KiB)"),
        notes: vec![format!(
            "{n} connections held for {} s: silent, half an HTTP request{}",
            ctx.duration.as_secs(),
            if ctx.target.kind() == TargetKind::Router {
                ", one RawSocket byte"
            } else {
                ""
            }
        )],
        failures: Vec::new(),
    })
}

/// D: one PUBLISH just under 16 MiB of zeros to 2 subscribers (one per
/// transport) of the same serializer.
fn big_publish(ctx: &Ctx<'_>, serializer: Serializer) -> Result<Outcome> {
    const TOPIC: &str = "attack.d";
    let mut drains = Vec::new();
    for transport in [Transport::WebSocket, Transport::RawSocket] {
        let mut conn = Conn::join(&ctx.target.wamp_with(transport, serializer), REALM)
            .map_err(|e| e.to_string())?;
        subscribe_one(&mut conn, TOPIC)?;
        drains.push(Drain::start(conn));
    }
    let mut publisher = Conn::join(
        &ctx.target.wamp_with(Transport::WebSocket, serializer),
        REALM,
    )
    .map_err(|e| e.to_string())?;
    let zeros = match serializer {
        Serializer::Json => (limits::MAX_MESSAGE as usize - 1024) / 2,
        _ => limits::MAX_MESSAGE as usize - 1024,
    };
    let message =
        serializer.encode_with_zeros(&[json!(16), json!(1), json!({}), json!(TOPIC)], zeros);
    let size = message.len() as u64;
    publisher
        .send_bytes(&message)
        .map_err(|e| format!("publish: {e}"))?;
    drop(message);
    let got = drains
        .iter()
        .filter(|d| d.wait_for(1, Duration::from_secs(60)))
        .count();
    let mut outcome = Outcome {
        // the PUBLISH read, its decoded tree (documented as not bounded
        // yet: counted here at its encoded size), one EVENT per codec
        // shared by the subscribers, and one in each connection's buffer
        bound: 5 * limits::MAX_MESSAGE + 3 * PER_CONNECTION,
        bound_why: "5 × max_message_size 16 MiB (the PUBLISH, its decoded tree at its encoded size, the shared EVENT, 2 connection buffers)".to_owned(),
        notes: vec![format!(
            "{} PUBLISH of {} MiB ({zeros} zeros); {got}/2 subscribers got the EVENT",
            serializer.name(),
            mib(size)
        )],
        failures: Vec::new(),
    };
    outcome.check(got == 2, "a subscriber did not get the EVENT");
    Ok(outcome)
}

/// Sends all `messages` at once and reads one reply per message,
/// counting them by type code.
fn pipeline(conn: &mut Conn, messages: &[Value], timeout: Duration) -> Result<Vec<Value>> {
    let mut bytes = Vec::new();
    for message in messages {
        bytes.extend(conn.frame(&Serializer::Json.encode(message)));
    }
    // a reader while we write: the target may answer before it has read all
    let mut replies = Vec::new();
    std::io::Write::write_all(&mut conn.stream, &bytes).map_err(|e| format!("write: {e}"))?;
    let deadline = Instant::now() + timeout;
    while replies.len() < messages.len() {
        match conn.recv(deadline) {
            Ok(message) => replies.push(message),
            Err(e) => {
                return Err(format!(
                    "{} of {} replies, then: {e}",
                    replies.len(),
                    messages.len()
                ));
            }
        }
    }
    Ok(replies)
}

fn count(replies: &[Value], code: u64) -> usize {
    replies.iter().filter(|m| wire::kind(m).0 == code).count()
}

/// E: one session subscribing 2000 overlapping prefixes of one topic, a
/// publisher of 64 KiB events to it.
fn overlapping_prefixes(ctx: &Ctx<'_>) -> Result<Outcome> {
    let topic = format!("e{}", "x".repeat(2000));
    let mut subscriber =
        Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
    let subscribes: Vec<Value> = (0..2000u64)
        .map(|k| wire::subscribe(k + 1, &topic[..=k as usize], Some("prefix")))
        .collect();
    let replies = pipeline(&mut subscriber, &subscribes, Duration::from_secs(30))?;
    let (accepted, refused) = (
        count(&replies, wire::SUBSCRIBED),
        count(&replies, wire::ERROR),
    );
    let drain = Drain::start(subscriber);
    let publisher =
        Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
    let event = publisher.frame(&Serializer::Json.encode(&wire::publish(
        1,
        &topic,
        json!(["x".repeat(64 << 10)]),
    )));
    let publishes = ctx.scale(4, 16);
    let frames = event.repeat(publishes);
    let mut stream = publisher.stream;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut stream, &frames).map_err(|e| format!("publish: {e}"))?;
    let written = frames.len() as u64;
    thread::sleep(ctx.duration); // let the fan-out run (attacker time)
    let mut outcome = Outcome {
        bound: limits::OUTBOUND_QUEUE + (64 << 10) + limits::URI_BYTES + limits::READ_BUF + 2 * PER_CONNECTION,
        bound_why: "outbound_queue_bytes 16 MiB + one event + max_uri_bytes_per_session 1 MiB + read buffer".to_owned(),
        notes: vec![format!(
            "{accepted} prefix subscriptions accepted, {refused} refused; {} MiB of 64 KiB publishes; the subscriber read {} events{}",
            mib(written),
            drain.count(),
            if drain.closed.load(Ordering::Relaxed) { " and was cut off" } else { "" }
        )],
        failures: Vec::new(),
    };
    outcome.check(
        accepted <= limits::PER_SESSION,
        "more subscriptions than the limit",
    );
    outcome.check(
        accepted + refused == 2000,
        "not every SUBSCRIBE was answered",
    );
    Ok(outcome)
}

/// F: sessions each holding 1000 never-matching wildcard subscriptions, a
/// publisher publishing to a topic none of them matches.
fn wildcard_patterns(ctx: &Ctx<'_>) -> Result<Outcome> {
    let sessions = ctx.scale(20, 100);
    let mut holders = Vec::new();
    let mut accepted = 0;
    let mut uri_bytes = 0u64;
    for s in 0..sessions {
        let mut conn =
            Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
        let subscribes: Vec<Value> = (0..limits::PER_SESSION as u64)
            .map(|j| {
                let pattern = format!("attack..p{s}_{j}");
                uri_bytes += pattern.len() as u64;
                wire::subscribe(j + 1, &pattern, Some("wildcard"))
            })
            .collect();
        let replies = pipeline(&mut conn, &subscribes, Duration::from_secs(30))?;
        accepted += count(&replies, wire::SUBSCRIBED);
        holders.push(conn);
    }
    let publisher =
        Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
    let event =
        publisher.frame(&Serializer::Json.encode(&wire::publish(1, "attack.f.topic", json!([1]))));
    let burst = event.repeat(64);
    let mut streams = vec![publisher.stream];
    let (written, _) = flood(&mut streams, ctx.duration, |_| burst.clone());
    let mut outcome = Outcome {
        bound: sessions as u64 * (limits::URI_BYTES + PER_CONNECTION) + limits::READ_BUF,
        bound_why: format!("{sessions} sessions × max_uri_bytes_per_session 1 MiB"),
        notes: vec![format!(
            "{accepted} wildcard subscriptions ({} MiB of patterns) in {sessions} sessions; {} unmatched PUBLISHes",
            mib(uri_bytes),
            written / event.len() as u64
        )],
        failures: Vec::new(),
    };
    outcome.check(
        accepted == sessions * limits::PER_SESSION,
        "a subscription was refused",
    );
    Ok(outcome)
}

/// G: a caller with more calls than it may have pending to a callee that
/// never answers and then dies.
fn pending_calls(ctx: &Ctx<'_>) -> Result<Outcome> {
    const PROCEDURE: &str = "attack.g";
    let calls = ctx.scale(2000, 5000);
    let mut callee =
        Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
    callee
        .send(&wire::register(1, PROCEDURE))
        .map_err(|e| e.to_string())?;
    let registered = callee
        .recv(Instant::now() + wire::CONNECT_TIMEOUT)
        .map_err(|e| e.to_string())?;
    if wire::kind(&registered).0 != wire::REGISTERED {
        return Err(format!("REGISTER answered {registered}"));
    }
    let mut caller =
        Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
    let arg = "x".repeat(1024);
    let messages: Vec<Value> = (1..=calls as u64)
        .map(|r| wire::call(r, PROCEDURE, json!([arg])))
        .collect();
    let mut bytes = Vec::new();
    for message in &messages {
        bytes.extend(caller.frame(&Serializer::Json.encode(message)));
    }
    std::io::Write::write_all(&mut caller.stream, &bytes).map_err(|e| format!("write: {e}"))?;
    // the calls over the limit are refused at once
    let over = calls - limits::PER_SESSION;
    let mut errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while errors.len() < over {
        match caller.recv(deadline) {
            Ok(m) if wire::kind(&m).0 == wire::ERROR => errors.push(m),
            Ok(_) => {}
            Err(e) => return Err(format!("{} refusals, then: {e}", errors.len())),
        }
    }
    thread::sleep(ctx.duration / 2); // the callee holding them (attacker time)
    drop(callee); // it dies
    let deadline = Instant::now() + Duration::from_secs(30);
    while errors.len() < calls {
        match caller.recv(deadline) {
            Ok(m) if wire::kind(&m).0 == wire::ERROR => errors.push(m),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let uri = |m: &Value| m.get(4).and_then(Value::as_str).unwrap_or("").to_owned();
    let canceled = errors
        .iter()
        .filter(|m| uri(m) == "wamp.error.canceled")
        .count();
    let refused = errors
        .iter()
        .filter(|m| uri(m) == "wamp.error.not_authorized")
        .count();
    let mut outcome = Outcome {
        bound: limits::OUTBOUND_QUEUE + 2 * limits::PER_SESSION as u64 * 2048 + limits::READ_BUF + 2 * PER_CONNECTION,
        bound_why: "outbound_queue_bytes 16 MiB (INVOCATIONs for the callee) + 1000 pending calls × 2 × 2 KiB".to_owned(),
        notes: vec![format!(
            "{calls} CALLs of 1 KiB: {refused} refused (not_authorized), {canceled} canceled when the callee died, of {} ERRORs",
            errors.len()
        )],
        failures: Vec::new(),
    };
    outcome.check(
        errors.len() == calls,
        "the caller did not get an ERROR for every call",
    );
    outcome.check(refused == over, "not every call over the limit was refused");
    Ok(outcome)
}

/// H: a RawSocket caller announcing a 1 KiB maximum calls a procedure
/// whose RESULT is 1 MiB. (512 bytes, the smallest RawSocket maximum, no
/// longer holds the router's WELCOME, which announces every Advanced
/// Profile feature: such a client is refused at HELLO.)
fn small_rawsocket_caller(ctx: &Ctx<'_>) -> Result<Outcome> {
    const PROCEDURE: &str = "attack.h";
    let callee = Callee::start(ctx.target.wamp(Transport::WebSocket), PROCEDURE, |_| {
        json!(["x".repeat(1 << 20)])
    })
    .map_err(|e| format!("callee: {e}"))?;
    let mut dial = ctx.target.wamp(Transport::RawSocket);
    dial.max_len_exponent = 1;
    let mut caller = Conn::join(&dial, REALM).map_err(|e| e.to_string())?;
    let calls = ctx.scale(20, 100);
    let mut answered = 0;
    let mut right_uri = 0;
    for request in 1..=calls as u64 {
        caller
            .send(&wire::call(request, PROCEDURE, json!([])))
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(m) = caller.recv(deadline) {
            if wire::kind(&m).1 == request {
                answered += 1;
                if m.get(4).and_then(Value::as_str) == Some("wamp.error.payload_size_exceeded") {
                    right_uri += 1;
                }
                break;
            }
        }
    }
    drop(callee);
    let mut outcome = Outcome {
        bound: 4 * (1 << 20) + limits::READ_BUF + 3 * PER_CONNECTION,
        bound_why: "4 × the 1 MiB RESULT (read, decoded, encoded, buffered)".to_owned(),
        notes: vec![format!(
            "{calls} calls: {answered} answered, {right_uri} with wamp.error.payload_size_exceeded"
        )],
        failures: Vec::new(),
    };
    outcome.check(
        right_uri == calls,
        "a call was not answered with payload_size_exceeded",
    );
    Ok(outcome)
}

/// I: one session registering, subscribing and calling (itself) twice as
/// often as its limits allow.
fn past_the_limits(ctx: &Ctx<'_>) -> Result<Outcome> {
    let n = 2 * limits::PER_SESSION as u64;
    let mut conn =
        Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
    let registers: Vec<Value> = (1..=n)
        .map(|r| wire::register(r, &format!("attack.i.r{r}")))
        .collect();
    let replies = pipeline(&mut conn, &registers, Duration::from_secs(30))?;
    let registered = count(&replies, wire::REGISTERED);
    let subscribes: Vec<Value> = (1..=n)
        .map(|r| wire::subscribe(n + r, &format!("attack.i.s{r}"), None))
        .collect();
    let replies = pipeline(&mut conn, &subscribes, Duration::from_secs(30))?;
    let subscribed = count(&replies, wire::SUBSCRIBED);
    // calls to itself, which it never answers: INVOCATIONs and ERRORs
    let calls: Vec<Value> = (1..=n)
        .map(|r| wire::call(2 * n + r, "attack.i.r1", json!(["x".repeat(1024)])))
        .collect();
    let replies = pipeline(&mut conn, &calls, Duration::from_secs(30))?;
    let invocations = count(&replies, wire::INVOCATION);
    let refused_calls = count(&replies, wire::ERROR);
    // still in session: an acknowledged PUBLISH is answered
    conn.send(&json!([16, 3 * n + 1, {"acknowledge": true}, "attack.i.alive", []]))
        .map_err(|e| e.to_string())?;
    let alive = conn
        .recv(Instant::now() + Duration::from_secs(10))
        .is_ok_and(|m| wire::kind(&m) == (17, 3 * n + 1));
    let limit = limits::PER_SESSION;
    let mut outcome = Outcome {
        bound: limits::URI_BYTES + limit as u64 * 2 * 2048 + limits::READ_BUF + PER_CONNECTION,
        bound_why: "max_uri_bytes_per_session 1 MiB + 1000 pending calls × 2 × 2 KiB".to_owned(),
        notes: vec![format!(
            "{n} each: {registered} registered, {subscribed} subscribed, {invocations} calls pending, {refused_calls} refused; session alive: {alive}"
        )],
        failures: Vec::new(),
    };
    outcome.check(
        registered == limit && subscribed == limit,
        "registrations or subscriptions not held at the limit",
    );
    outcome.check(
        invocations == limit && refused_calls == n as usize - limit,
        "pending calls not held at the limit",
    );
    outcome.check(alive, "the session did not stay up");
    Ok(outcome)
}

/// J: connections that never say HELLO (WebSocket and RawSocket after
/// their handshakes, bare TCP); in the full form also a callee that goes
/// silent (stops reading and answering pings, as if gone without a FIN).
fn no_hello(ctx: &Ctx<'_>) -> Result<Outcome> {
    let n = ctx.scale(150, 1000);
    let silent_callee = if ctx.quick {
        None
    } else {
        let mut callee =
            Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
        callee
            .send(&wire::register(1, "attack.j"))
            .map_err(|e| e.to_string())?;
        let _ = callee.recv(Instant::now() + wire::CONNECT_TIMEOUT);
        Some(callee.stream) // never read again
    };
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..n {
        let stream = match i % 3 {
            0 => wire::tcp(ctx.target.ports.websocket),
            1 => Conn::open(&ctx.target.wamp(Transport::WebSocket)).map(|c| c.stream),
            _ => Conn::open(&ctx.target.wamp(Transport::RawSocket)).map(|c| c.stream),
        }
        .map_err(|e| format!("connection {i}: {e}"))?;
        held.push(stream);
    }
    // The HELLO timeout, then (WebSocket) the close handshake the router
    // waits for in vain, `Timeouts::close`.
    let deadline =
        started + Duration::from_secs(limits::HELLO_TIMEOUT_SECS + limits::CLOSE_SECS + 3);
    let closed = count_ended(&mut held, deadline);
    let mut outcome = Outcome {
        bound: n as u64 * (limits::HANDSHAKE + PER_CONNECTION) + PER_CONNECTION,
        bound_why: format!("{n} conns × (max_handshake_size 16 KiB + 16 KiB)"),
        notes: vec![format!(
            "{n} connections without HELLO: {closed} closed by the router within hello_timeout + close timeout + 3 s"
        )],
        failures: Vec::new(),
    };
    outcome.check(
        closed == n,
        "a connection without HELLO was not closed in time",
    );
    if let Some(stream) = silent_callee {
        let dead = Duration::from_secs(limits::PING_DEAD_SECS + 35);
        let mut caller =
            Conn::join(&ctx.target.wamp(Transport::WebSocket), REALM).map_err(|e| e.to_string())?;
        let mut freed = None;
        let mut request = 0;
        while started.elapsed() < dead {
            request += 1;
            caller
                .send(&wire::call(request, "attack.j", json!([])))
                .map_err(|e| e.to_string())?;
            // an INVOCATION to a silent callee stays pending: wait briefly
            if let Ok(m) = caller.recv(Instant::now() + Duration::from_secs(2)) {
                if m.get(4).and_then(Value::as_str) == Some("wamp.error.no_such_procedure") {
                    freed = Some(started.elapsed());
                    break;
                }
            }
        }
        outcome.notes.push(match freed {
            Some(after) => format!(
                "the silent callee's registration was freed after {} s",
                after.as_secs()
            ),
            None => "the silent callee's registration was never freed".to_owned(),
        });
        outcome.check(
            freed.is_some(),
            "the registration of a silent callee was not freed",
        );
        drop(stream);
    }
    Ok(outcome)
}

/// K: idle connections, first plain, then offering permessage-deflate;
/// what each set costs.
fn idle_deflate(ctx: &Ctx<'_>) -> Result<Outcome> {
    let n = ctx.scale(200, 1000);
    let open = |deflate: bool| -> Result<Vec<Conn>> {
        let mut dial = ctx.target.websocket();
        dial.deflate = deflate;
        (0..n)
            .map(|i| {
                let mut conn = Conn::open(&dial).map_err(|e| format!("connection {i}: {e}"))?;
                if ctx.target.kind() == TargetKind::Router {
                    // joined, so that the HELLO timeout does not end them;
                    // the WELCOME may be compressed: not decoded
                    conn.send(&wire::hello(REALM)).map_err(|e| e.to_string())?;
                    conn.recv_raw(Instant::now() + wire::CONNECT_TIMEOUT)
                        .map_err(|e| format!("connection {i}: {e}"))?;
                }
                Ok(conn)
            })
            .collect()
    };
    // settling of the target's allocator after a burst of handshakes (attacker time)
    let settle = || thread::sleep(Duration::from_millis(500));
    let before = ctx.target.rss();
    let plain = open(false)?;
    settle();
    let with_plain = ctx.target.rss();
    let deflate = open(true)?;
    settle();
    let with_deflate = ctx.target.rss();
    let negotiated = deflate.iter().filter(|c| c.deflate).count();
    let plain_cost = with_plain.saturating_sub(before) / n as u64;
    let deflate_cost = with_deflate.saturating_sub(with_plain) / n as u64;
    let mut outcome = Outcome {
        bound: 2 * n as u64 * PER_CONNECTION,
        bound_why: format!("{} conns × 16 KiB", 2 * n),
        notes: vec![format!(
            "{n} idle plain connections: {:.1} KiB each; {n} idle deflate ({negotiated} negotiated): {:.1} KiB each",
            plain_cost as f64 / 1024.0,
            deflate_cost as f64 / 1024.0
        )],
        failures: Vec::new(),
    };
    outcome.check(negotiated == n, "permessage-deflate was not negotiated");
    // 2× a plain one, with 1 KiB of slack for the resolution of RSS
    outcome.check(
        deflate_cost <= 2 * plain_cost + 1024,
        "an idle deflate connection costs more than twice a plain one",
    );
    drop(plain);
    Ok(outcome)
}

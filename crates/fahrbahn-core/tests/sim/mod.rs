//! The network and serving layer of the deterministic full-stack
//! simulation (`tests/simulation.rs`), in the style of quinn-proto's
//! in-crate connection tests: client machines ([`ClientConnection`]) and
//! their router-side transports ([`ServerConnection`]) joined by in-memory
//! byte pipes, one router core ([`Router`]), a simulated clock and a seeded
//! [`Rng`] for everything.
//!
//! Faults: per-pipe delivery delays, reordering of deliveries across
//! connections (never within one byte stream), chunking of byte streams at
//! random boundaries, cut connections (in-flight bytes truncated, EOF to
//! both sides) and clients that stop reading (their pipe fills, the
//! serving glue stops taking their messages from the router: backpressure,
//! so the router's bounded queue overflows).
//!
//! The serving glue mirrors `fahrbahn-rt`'s `serve_connection`: client
//! messages go into the router, a connection's queued messages are taken
//! with [`Router::poll_transmit_to`] while its transport accepts more,
//! [`RouterEvent::CloseTransport`] closes the transport once its queue is
//! flushed, [`ServerEvent::Closed`] detaches the connection. Transports end
//! as the `Driver` ends them: flush, then [`CloseOrder`] and
//! [`Machine::linger`].
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use fahrbahn_core::wamp::router::{CloseReason, ConnectionId, Router, RouterEvent};
use fahrbahn_core::wamp::{
    ClientConnection, Codec, Serializer, ServerConnection, ServerEvent, SessionConfig, SessionEvent,
};
use fahrbahn_core::{CloseOrder, Machine, Rng, rawsocket, ws};

/// Messages the glue takes from the router per pass (like `serve.rs`).
const BATCH: usize = 8;

/// A uniform draw in `0..n` (`n > 0`).
pub(crate) fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.next_u64() % n.max(1)
}

/// A transport and codec for a client: 0–5 WebSocket (JSON, MessagePack,
/// CBOR; plain and batched), 6–8 RawSocket (JSON, MessagePack, CBOR).
pub(crate) const TRANSPORTS: u8 = 9;

/// Describes transport `kind` for messages.
pub(crate) fn transport_name(kind: u8) -> String {
    let s = [Serializer::Json, Serializer::MsgPack, Serializer::Cbor][usize::from(kind % 3)];
    if kind < 6 {
        let codec = if kind < 3 {
            Codec::new(s)
        } else {
            Codec::batched(s)
        };
        format!("WebSocket {codec}")
    } else {
        format!("RawSocket {}", s.name())
    }
}

/// Fault settings of one scenario.
#[derive(Debug, Clone)]
pub(crate) struct Faults {
    /// Deliver bytes in random pieces rather than as written.
    pub(crate) chunking: bool,
    /// Bytes in flight towards a client (written by its transport, not yet
    /// read) above which the glue takes no more messages from the router.
    pub(crate) pipe_capacity: usize,
}

#[derive(Debug)]
enum Item {
    Bytes(Vec<u8>),
    Eof,
}

/// One direction of a byte stream, with delivery times.
#[derive(Debug)]
pub(crate) struct Pipe {
    items: VecDeque<(Instant, Item)>,
    /// Due time of the last item: later writes never overtake it.
    last_due: Instant,
    /// Bytes in `items`.
    pub(crate) buffered: usize,
    /// The writer ended the stream (or the pipe was cut): writes are dropped.
    shut: bool,
    /// Largest delivery delay of this pipe.
    max_delay: Duration,
}

impl Pipe {
    fn new(now: Instant, max_delay: Duration) -> Self {
        Self {
            items: VecDeque::new(),
            last_due: now,
            buffered: 0,
            shut: false,
            max_delay,
        }
    }

    fn due(&mut self, now: Instant, rng: &mut Rng) -> Instant {
        let nanos = u64::try_from(self.max_delay.as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(if nanos == 0 { 0 } else { below(rng, nanos + 1) });
        self.last_due = self.last_due.max(now + delay);
        self.last_due
    }

    fn write(&mut self, now: Instant, mut bytes: Vec<u8>, rng: &mut Rng, chunking: bool) {
        if self.shut || bytes.is_empty() {
            return;
        }
        while chunking && bytes.len() > 1 && below(rng, 3) != 0 {
            let at = 1 + below(rng, bytes.len() as u64 - 1) as usize;
            let rest = bytes.split_off(at);
            let due = self.due(now, rng);
            self.buffered += bytes.len();
            self.items.push_back((due, Item::Bytes(bytes)));
            bytes = rest;
        }
        let due = self.due(now, rng);
        self.buffered += bytes.len();
        self.items.push_back((due, Item::Bytes(bytes)));
    }

    fn write_eof(&mut self, now: Instant, rng: &mut Rng) {
        if self.shut {
            return;
        }
        self.shut = true;
        let due = self.due(now, rng);
        self.items.push_back((due, Item::Eof));
    }

    /// Cuts the stream: a random prefix of what is in flight survives,
    /// then EOF; later writes are dropped.
    fn cut(&mut self, now: Instant, rng: &mut Rng) {
        let keep = below(rng, self.buffered as u64 + 1) as usize;
        let mut kept = 0;
        let mut items = VecDeque::new();
        while let Some((due, item)) = self.items.pop_front() {
            if let Item::Bytes(mut b) = item {
                if kept < keep {
                    b.truncate(keep - kept);
                    kept += b.len();
                    items.push_back((due, Item::Bytes(b)));
                }
            }
        }
        self.items = items;
        self.buffered = kept;
        self.shut = false;
        self.write_eof(now, rng);
    }

    fn head_due(&self) -> Option<Instant> {
        self.items.front().map(|(due, _)| *due)
    }

    fn pop(&mut self) -> Option<Item> {
        let (_, item) = self.items.pop_front()?;
        if let Item::Bytes(b) = &item {
            self.buffered -= b.len();
        }
        Some(item)
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Where one end of a transport is in ending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The machine runs.
    Running,
    /// The machine ended: waiting (until the deadline) for the peer's EOF;
    /// `then_close`: end our side afterwards (WebSocket client).
    Lingering { until: Instant, then_close: bool },
    /// The transport is gone: input is dropped.
    Done,
}

/// One client, its router-side transport, and the pipes between them.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) kind: u8,
    pub(crate) client: ClientConnection,
    pub(crate) client_phase: Phase,
    client_eof: bool,
    /// The client drains its inbound pipe (false: it stopped reading).
    pub(crate) reading: bool,
    /// Session events not yet taken by the model.
    pub(crate) events: VecDeque<SessionEvent>,
    pub(crate) server: ServerConnection,
    pub(crate) server_phase: Phase,
    server_eof: bool,
    pub(crate) conn: ConnectionId,
    /// The router asked to close the transport.
    pub(crate) close: Option<CloseReason>,
    closing: bool,
    pub(crate) detached: bool,
    /// Client → server.
    pub(crate) up: Pipe,
    /// Server → client.
    pub(crate) down: Pipe,
    /// Every `CloseTransport` reason the router gave for this connection.
    pub(crate) close_reasons: Vec<CloseReason>,
    pub(crate) cut: bool,
}

/// Counters over a scenario.
#[derive(Debug, Default, Clone)]
pub(crate) struct NetStats {
    pub(crate) deliveries: u64,
    pub(crate) router_messages: u64,
    pub(crate) slow_consumers: u64,
    pub(crate) cuts: u64,
}

/// The whole simulated system.
pub(crate) struct World {
    pub(crate) base: Instant,
    pub(crate) offset: Duration,
    pub(crate) rng: Rng,
    pub(crate) router: Router,
    pub(crate) links: Vec<Link>,
    by_conn: BTreeMap<ConnectionId, usize>,
    pub(crate) faults: Faults,
    pub(crate) stats: NetStats,
}

impl World {
    pub(crate) fn new(base: Instant, router: Router, rng: Rng, faults: Faults) -> Self {
        Self {
            base,
            offset: Duration::ZERO,
            rng,
            router,
            links: Vec::new(),
            by_conn: BTreeMap::new(),
            faults,
            stats: NetStats::default(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.base + self.offset
    }

    /// Connects a new client over transport `kind` (see [`TRANSPORTS`]);
    /// `max_delay` bounds the delays of both its pipes.
    pub(crate) fn connect(&mut self, kind: u8, realm: &str, max_delay: Duration) -> usize {
        let now = self.now();
        let serializer =
            [Serializer::Json, Serializer::MsgPack, Serializer::Cbor][usize::from(kind % 3)];
        let seed = self.rng.next_u64();
        let (client, server) = if kind < 6 {
            let codec = if kind < 3 {
                Codec::new(serializer)
            } else {
                Codec::batched(serializer)
            };
            // permessage-deflate, at level 1, now and then (it is costly in
            // debug builds); the server always accepts it.
            let mut deflate = ws::DeflateConfig::default();
            deflate.level = 1;
            let mut config = ws::ClientConfig::new("localhost", "/ws");
            if below(&mut self.rng, 8) == 0 {
                config.deflate = Some(deflate);
            }
            let client = ClientConnection::websocket(
                config,
                &[codec],
                SessionConfig::new(realm),
                Rng::from_seed(seed),
                now,
            );
            let mut server_config = ws::ServerConfig::default();
            server_config.deflate = Some(deflate);
            let server =
                ServerConnection::websocket(server_config, Rng::from_seed(seed ^ 0x5EED), now);
            (client, server)
        } else {
            let client = ClientConnection::rawsocket(
                rawsocket::ClientConfig::new(serializer.rawsocket_id()),
                serializer,
                SessionConfig::new(realm),
                now,
            );
            let server = ServerConnection::rawsocket(rawsocket::ServerConfig::new(vec![]), now);
            (client, server)
        };
        let conn = self.router.attach(now);
        let index = self.links.len();
        // Every other link hands the router raw messages (payloads kept
        // encoded), the others decoded ones: both paths are simulated.
        let mut server = server;
        server.set_raw_payloads(index % 2 == 1);
        self.by_conn.insert(conn, index);
        self.links.push(Link {
            kind,
            client,
            client_phase: Phase::Running,
            client_eof: false,
            reading: true,
            events: VecDeque::new(),
            server,
            server_phase: Phase::Running,
            server_eof: false,
            conn,
            close: None,
            closing: false,
            detached: false,
            up: Pipe::new(now, max_delay),
            down: Pipe::new(now, max_delay),
            close_reasons: Vec::new(),
            cut: false,
        });
        index
    }

    /// Cuts link `i`: in-flight bytes are truncated, both sides get EOF.
    pub(crate) fn cut(&mut self, i: usize) {
        let now = self.now();
        let link = &mut self.links[i];
        if link.cut {
            return;
        }
        link.cut = true;
        self.stats.cuts += 1;
        link.up.cut(now, &mut self.rng);
        link.down.cut(now, &mut self.rng);
    }

    /// Routes what the router reports.
    fn route(&mut self) {
        while self.router.poll_ready().is_some() {}
        while let Some(event) = self.router.poll_event() {
            self.router_event(event);
        }
    }

    /// Does everything that needs no delivery and no time: transmits,
    /// events, the glue, transport endings. Returns whether anything
    /// happened.
    pub(crate) fn pump(&mut self) -> bool {
        let mut any = false;
        loop {
            let mut changed = false;
            for i in 0..self.links.len() {
                changed |= self.pump_link(i);
            }
            self.route();
            if !changed {
                return any;
            }
            any = true;
        }
    }

    fn pump_link(&mut self, i: usize) -> bool {
        let now = self.now();
        let mut changed = false;
        // The server side: the glue.
        while !self.links[i].detached {
            let link = &mut self.links[i];
            let mut progress = false;
            if !link.closing && link.down.buffered < self.faults.pipe_capacity {
                for _ in 0..BATCH {
                    let Some(msg) = self.router.poll_transmit_to(link.conn) else {
                        break;
                    };
                    progress = true;
                    self.stats.router_messages += 1;
                    // Fails once the transport ended: dropped, as the
                    // serving layer drops it.
                    let _ = link.server.send(&msg);
                }
            }
            if let Some(reason) = link.close {
                if !link.closing && self.router.queued(link.conn) == 0 {
                    link.closing = true;
                    progress = true;
                    link.server.close(now, reason.close_code());
                }
            }
            while let Some(event) = link.server.poll_event() {
                progress = true;
                match event {
                    ServerEvent::Message(msg) => {
                        self.router.handle_message(now, link.conn, msg);
                    }
                    ServerEvent::RawMessage(msg) => {
                        self.router.handle_raw_message(now, link.conn, msg);
                    }
                    ServerEvent::Closed(_) => {
                        link.detached = true;
                        self.router.detach(link.conn);
                        break;
                    }
                    _ => {}
                }
            }
            if !progress {
                break;
            }
            changed = true;
            // Router events may concern this very link (a CloseTransport).
            self.route();
        }
        let link = &mut self.links[i];
        // Bytes out.
        if link.server_phase != Phase::Done {
            let mut buf = Vec::new();
            if link.server.poll_transmit(&mut buf) > 0 {
                changed = true;
                link.down
                    .write(now, buf, &mut self.rng, self.faults.chunking);
            }
        }
        if link.client_phase != Phase::Done {
            let mut buf = Vec::new();
            if link.client.poll_transmit(&mut buf) > 0 {
                changed = true;
                link.up.write(now, buf, &mut self.rng, self.faults.chunking);
            }
            while let Some(event) = link.client.poll_event() {
                changed = true;
                link.events.push_back(event);
            }
        }
        // Transport endings.
        if link.server_phase == Phase::Running && link.server.is_closed() && link.detached {
            changed = true;
            link.server_phase = start_ending(
                link.server.close_order(),
                link.server.linger(),
                link.server_eof,
                &mut link.down,
                now,
                &mut self.rng,
            );
        }
        if link.client_phase == Phase::Running && link.client.is_closed() {
            changed = true;
            link.client_phase = start_ending(
                link.client.close_order(),
                link.client.linger(),
                link.client_eof,
                &mut link.up,
                now,
                &mut self.rng,
            );
        }
        changed
    }

    fn router_event(&mut self, event: RouterEvent) {
        if let RouterEvent::CloseTransport { conn, reason } = event {
            if reason == CloseReason::SlowConsumer {
                self.stats.slow_consumers += 1;
            }
            let i = *self
                .by_conn
                .get(&conn)
                .unwrap_or_else(|| panic!("CloseTransport for unknown {conn}"));
            let link = &mut self.links[i];
            assert!(!link.detached, "CloseTransport for detached {conn}");
            link.close_reasons.push(reason);
            link.close.get_or_insert(reason);
        }
    }

    /// Pipes with an item due now whose reader reads.
    fn deliverable(&self, now: Instant) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        for (i, link) in self.links.iter().enumerate() {
            if link.up.head_due().is_some_and(|d| d <= now) {
                out.push((i, true));
            }
            if link.reading && link.down.head_due().is_some_and(|d| d <= now) {
                out.push((i, false));
            }
        }
        out
    }

    /// Delivers one due item, picked at random among the pipes (so
    /// deliveries of different connections interleave in any order).
    /// Returns `false` when nothing is due.
    pub(crate) fn deliver_one(&mut self) -> bool {
        let now = self.now();
        let ready = self.deliverable(now);
        if ready.is_empty() {
            return false;
        }
        let (i, up) = ready[below(&mut self.rng, ready.len() as u64) as usize];
        self.stats.deliveries += 1;
        let link = &mut self.links[i];
        if up {
            let item = link.up.pop().expect("a due item");
            match (item, link.server_phase) {
                (Item::Bytes(b), Phase::Running) => link.server.handle_bytes(now, &b),
                (Item::Eof, Phase::Running) => {
                    link.server_eof = true;
                    link.server.handle_eof(now);
                }
                (Item::Eof, Phase::Lingering { then_close, .. }) => {
                    link.server_eof = true;
                    if then_close {
                        link.down.write_eof(now, &mut self.rng);
                    }
                    link.server_phase = Phase::Done;
                }
                _ => {}
            }
        } else {
            let item = link.down.pop().expect("a due item");
            match (item, link.client_phase) {
                (Item::Bytes(b), Phase::Running) => link.client.handle_bytes(now, &b),
                (Item::Eof, Phase::Running) => {
                    link.client_eof = true;
                    link.client.handle_eof(now);
                }
                (Item::Eof, Phase::Lingering { then_close, .. }) => {
                    link.client_eof = true;
                    if then_close {
                        link.up.write_eof(now, &mut self.rng);
                    }
                    link.client_phase = Phase::Done;
                }
                _ => {}
            }
        }
        true
    }

    /// Whether bytes are in flight that a reader will take.
    pub(crate) fn in_flight(&self) -> bool {
        self.links
            .iter()
            .any(|l| !l.up.is_empty() || (l.reading && !l.down.is_empty()))
    }

    /// The earliest delivery time of a readable pipe.
    fn next_delivery(&self) -> Option<Instant> {
        self.links
            .iter()
            .flat_map(|l| [l.up.head_due(), l.down.head_due().filter(|_| l.reading)])
            .flatten()
            .min()
    }

    /// The earliest timer: machines, lingering transports, the router.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        let mut t = self.router.poll_timeout();
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for l in &self.links {
            match l.client_phase {
                Phase::Running => min(l.client.poll_timeout()),
                Phase::Lingering { until, .. } => min(Some(until)),
                Phase::Done => {}
            }
            match l.server_phase {
                Phase::Running => min(l.server.poll_timeout()),
                Phase::Lingering { until, .. } => min(Some(until)),
                Phase::Done => {}
            }
        }
        t
    }

    /// Moves the clock to `t` (never backwards) and runs what is due.
    fn advance_to(&mut self, t: Instant) {
        if t > self.now() {
            self.offset = t - self.base;
        }
        let now = self.now();
        if self.router.poll_timeout().is_some_and(|d| d <= now) {
            self.router.handle_timeout(now);
        }
        for link in &mut self.links {
            match link.client_phase {
                Phase::Running if link.client.poll_timeout().is_some_and(|d| d <= now) => {
                    link.client.handle_timeout(now);
                }
                Phase::Lingering { until, then_close } if until <= now => {
                    if then_close {
                        link.up.write_eof(now, &mut self.rng);
                    }
                    link.client_phase = Phase::Done;
                }
                _ => {}
            }
            match link.server_phase {
                Phase::Running if link.server.poll_timeout().is_some_and(|d| d <= now) => {
                    link.server.handle_timeout(now);
                }
                Phase::Lingering { until, then_close } if until <= now => {
                    if then_close {
                        link.down.write_eof(now, &mut self.rng);
                    }
                    link.server_phase = Phase::Done;
                }
                _ => {}
            }
        }
    }

    /// One step: deliver one due item, else move the clock to the next
    /// delivery or (with `timers`, or when one comes first) timer; then
    /// pump. Returns `false` when nothing is left to do.
    pub(crate) fn step(&mut self, timers: bool) -> bool {
        if self.deliver_one() {
            self.pump();
            return true;
        }
        let delivery = self.next_delivery();
        let timer = self.next_timer();
        let next = match (delivery, timer) {
            (Some(d), Some(t)) => d.min(t),
            (Some(d), None) => d,
            (None, Some(t)) if timers => t,
            _ => return false,
        };
        self.advance_to(next);
        self.pump();
        true
    }
}

fn start_ending(
    order: CloseOrder,
    linger: Duration,
    eof_seen: bool,
    out: &mut Pipe,
    now: Instant,
    rng: &mut Rng,
) -> Phase {
    match order {
        CloseOrder::CloseFirst => {
            out.write_eof(now, rng);
            if eof_seen {
                Phase::Done
            } else {
                Phase::Lingering {
                    until: now + linger,
                    then_close: false,
                }
            }
        }
        CloseOrder::WaitForPeer => {
            if eof_seen {
                out.write_eof(now, rng);
                Phase::Done
            } else {
                Phase::Lingering {
                    until: now + linger,
                    then_close: true,
                }
            }
        }
    }
}

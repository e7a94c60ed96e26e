//! A deterministic in-memory test harness for `fahrbahn_core::ws`, in the
//! spirit of quinn-proto's `tests/util.rs`: a client and a server
//! [`Connection`] joined by two byte pipes and a simulated clock, plus
//! helpers to build and parse raw frames and handshakes by hand.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use fahrbahn_core::Rng;
use fahrbahn_core::ws::{
    ClientConfig, CloseCode, Closed, Connection, Event, Handshake, ServerConfig, accept_key,
};

/// One end of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

impl Side {
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// A client and a server connected in memory, driven by a simulated clock.
pub(crate) struct Pair {
    pub(crate) client: Connection,
    pub(crate) server: Connection,
    start: Instant,
    offset: Duration,
    /// Deliver bytes in pieces of at most this size (`None`: all at once).
    pub(crate) chunk: Option<usize>,
    /// Bytes sent towards a side listed here are dropped (it "stops
    /// reading", so it never answers either).
    pub(crate) drop_to: Option<Side>,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
    /// Total bytes moved in each direction (client→server, server→client).
    pub(crate) moved: [usize; 2],
}

impl Pair {
    /// A pair with default configurations (`ws://localhost/`).
    pub(crate) fn new() -> Self {
        Self::with_configs(ClientConfig::new("localhost", "/"), ServerConfig::default())
    }

    /// A pair with the given configurations and fixed seeds.
    pub(crate) fn with_configs(client: ClientConfig, server: ServerConfig) -> Self {
        let start = Instant::now();
        Self {
            client: Connection::client(client, Rng::from_seed(1), start),
            server: Connection::server(server, Rng::from_seed(2), start),
            start,
            offset: Duration::ZERO,
            chunk: None,
            drop_to: None,
            client_events: Vec::new(),
            server_events: Vec::new(),
            moved: [0; 2],
        }
    }

    /// A pair whose handshake already finished; the `Connected` events are
    /// consumed.
    pub(crate) fn connected(client: ClientConfig, server: ServerConfig) -> Self {
        let mut pair = Self::with_configs(client, server);
        pair.connect();
        pair
    }

    /// The simulated current time.
    pub(crate) fn now(&self) -> Instant {
        self.start + self.offset
    }

    /// Time elapsed since the pair was created.
    pub(crate) fn elapsed(&self) -> Duration {
        self.offset
    }

    pub(crate) fn conn(&mut self, side: Side) -> &mut Connection {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn events_mut(&mut self, side: Side) -> &mut Vec<Event> {
        match side {
            Side::Client => &mut self.client_events,
            Side::Server => &mut self.server_events,
        }
    }

    /// Moves every queued event of `side` into its collected list.
    fn collect(&mut self, side: Side) {
        while let Some(e) = self.conn(side).poll_event() {
            self.events_mut(side).push(e);
        }
    }

    /// Takes the bytes `side` wants to send, without delivering them.
    pub(crate) fn take_transmit(&mut self, side: Side) -> Vec<u8> {
        let mut buf = Vec::new();
        let n = self.conn(side).poll_transmit(&mut buf);
        assert_eq!(n, buf.len(), "poll_transmit reports what it appended");
        buf
    }

    /// Feeds `bytes` into `side` as if its peer had sent them (in pieces
    /// when [`Pair::chunk`] is set) and collects the resulting events.
    pub(crate) fn inject(&mut self, side: Side, bytes: &[u8]) {
        let now = self.now();
        let size = self.chunk.unwrap_or(usize::MAX).max(1);
        for piece in bytes.chunks(size) {
            self.conn(side).handle_bytes(now, piece);
        }
        self.collect(side);
    }

    /// Signals end of stream to `side`.
    pub(crate) fn eof(&mut self, side: Side) {
        let now = self.now();
        self.conn(side).handle_eof(now);
        self.collect(side);
    }

    /// Moves what `from` transmits to its peer once; returns the byte count.
    fn transmit(&mut self, from: Side) -> usize {
        let bytes = self.take_transmit(from);
        let to = from.other();
        if !bytes.is_empty() && self.drop_to != Some(to) {
            self.inject(to, &bytes);
        }
        self.moved[from as usize] += bytes.len();
        bytes.len()
    }

    /// Moves bytes both ways until neither side has anything to send.
    pub(crate) fn drive(&mut self) {
        for _ in 0..10_000 {
            let a = self.transmit(Side::Client);
            let b = self.transmit(Side::Server);
            self.collect(Side::Client);
            self.collect(Side::Server);
            if a == 0 && b == 0 {
                return;
            }
        }
        panic!("the pair never became quiet");
    }

    /// The earliest timer deadline of both sides.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Moves the clock to the earliest timer of both sides (never
    /// backwards), runs the timers and drives. Returns `false` when no timer
    /// is set.
    pub(crate) fn advance_to_next_timeout(&mut self) -> bool {
        let Some(t) = self.next_timeout() else {
            return false;
        };
        if t > self.now() {
            self.offset = t - self.start;
        }
        let now = self.now();
        self.client.handle_timeout(now);
        self.server.handle_timeout(now);
        self.collect(Side::Client);
        self.collect(Side::Server);
        self.drive();
        true
    }

    /// Runs every timer up to `now + d`, then moves the clock there.
    pub(crate) fn advance_by(&mut self, d: Duration) {
        let target = self.now() + d;
        let mut guard = 0;
        while self.next_timeout().is_some_and(|t| t <= target) {
            guard += 1;
            assert!(guard < 100_000, "timers keep firing without progress");
            self.advance_to_next_timeout();
        }
        self.offset = target - self.start;
    }

    /// Drives the opening handshake and returns both `Connected` results
    /// (client's, server's).
    pub(crate) fn connect(&mut self) -> (Handshake, Handshake) {
        self.drive();
        let c = match self.client_events.as_slice() {
            [Event::Connected(h)] => h.clone(),
            other => panic!("client did not connect: {other:?}"),
        };
        let s = match self.server_events.as_slice() {
            [Event::Connected(h)] => h.clone(),
            other => panic!("server did not connect: {other:?}"),
        };
        self.client_events.clear();
        self.server_events.clear();
        (c, s)
    }

    /// Takes the events `side` has reported so far.
    pub(crate) fn events(&mut self, side: Side) -> Vec<Event> {
        self.collect(side);
        std::mem::take(self.events_mut(side))
    }

    /// Takes the events of `side` and asserts the last is `Closed`, and the
    /// only one; returns it.
    pub(crate) fn expect_closed(&mut self, side: Side) -> Closed {
        let events = self.events(side);
        closed_of(&events).unwrap_or_else(|| panic!("{side:?} did not close: {events:?}"))
    }
}

/// The `Closed` of an event list, asserting it is the last and only one.
pub(crate) fn closed_of(events: &[Event]) -> Option<Closed> {
    let n = events
        .iter()
        .filter(|e| matches!(e, Event::Closed(_)))
        .count();
    assert!(n <= 1, "more than one Closed event: {events:?}");
    match events.last() {
        Some(Event::Closed(c)) => Some(c.clone()),
        _ => {
            assert_eq!(n, 0, "Closed is not the last event: {events:?}");
            None
        }
    }
}

/// Data messages of an event list.
pub(crate) fn messages(events: &[Event]) -> Vec<fahrbahn_core::ws::Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

// ----- raw frames ---------------------------------------------------------

pub(crate) const CONT: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// The mask key used for hand-made client frames.
pub(crate) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Encodes a frame. `b0` is the whole first byte (FIN, RSV, opcode), so any
/// combination of bits can be produced. The payload is masked with `mask`.
pub(crate) fn raw_frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The first byte for `fin`, `rsv` (RSV1 = 0b100) and `opcode`.
pub(crate) fn b0(fin: bool, rsv: u8, opcode: u8) -> u8 {
    (u8::from(fin) << 7) | (rsv << 4) | opcode
}

/// A frame as a client sends it (masked).
pub(crate) fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0(fin, 0, opcode), Some(KEY), payload)
}

/// A frame as a server sends it (unmasked).
pub(crate) fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0(fin, 0, opcode), None, payload)
}

/// A frame as `from` would send it (masked for a client).
pub(crate) fn frame_from(from: Side, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    match from {
        Side::Client => client_frame(fin, opcode, payload),
        Side::Server => server_frame(fin, opcode, payload),
    }
}

/// A close frame payload.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// A frame parsed back from emitted bytes (payload unmasked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFrame {
    pub(crate) fin: bool,
    pub(crate) rsv: u8,
    pub(crate) opcode: u8,
    pub(crate) masked: bool,
    pub(crate) payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame.
    pub(crate) fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Parses a byte stream of complete frames.
pub(crate) fn parse_frames(mut bytes: &[u8]) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated frame header");
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut at) = match bytes[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")),
                10,
            ),
            n => (u64::from(n), 2),
        };
        let key = masked.then(|| {
            let k = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            at += 4;
            k
        });
        let len = usize::try_from(len).expect("length fits");
        let mut payload = bytes[at..at + len].to_vec();
        if let Some(k) = key {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= k[i % 4]);
        }
        frames.push(RawFrame {
            fin: bytes[0] & 0x80 != 0,
            rsv: (bytes[0] >> 4) & 7,
            opcode: bytes[0] & 0x0F,
            masked,
            payload,
        });
        bytes = &bytes[at + len..];
    }
    frames
}

/// Parses emitted bytes and returns the close code of the single close
/// frame in them (which must come last).
pub(crate) fn emitted_close_code(bytes: &[u8]) -> Option<u16> {
    let frames = parse_frames(bytes);
    let closes: Vec<_> = frames.iter().filter(|f| f.opcode == CLOSE).collect();
    assert_eq!(closes.len(), 1, "expected one close frame: {frames:?}");
    assert_eq!(frames.last().map(|f| f.opcode), Some(CLOSE));
    closes[0].close_code()
}

// ----- hand-made handshakes -----------------------------------------------

/// A valid upgrade request with the RFC 6455 sample key and `extra` header
/// lines (each ending in `\r\n`).
pub(crate) fn request(extra: &str) -> Vec<u8> {
    format!(
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// The `Sec-WebSocket-Key` of a request the client wrote.
pub(crate) fn request_key(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("request has a key")
}

/// A 101 response accepting `key`, with `extra` header lines.
pub(crate) fn response(key: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// A server that has accepted the sample request; its 101 response is
/// consumed and its `Connected` event checked.
pub(crate) fn open_server(config: ServerConfig, now: Instant) -> Connection {
    let mut server = Connection::server(config, Rng::from_seed(3), now);
    server.handle_bytes(now, &request(""));
    let mut out = Vec::new();
    let _ = server.poll_transmit(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    assert!(matches!(server.poll_event(), Some(Event::Connected(_))));
    server
}

/// A client that has received a valid 101 response; its `Connected` event
/// and request are consumed.
pub(crate) fn open_client(config: ClientConfig, now: Instant) -> Connection {
    let mut client = Connection::client(config, Rng::from_seed(4), now);
    let mut out = Vec::new();
    let _ = client.poll_transmit(&mut out);
    client.handle_bytes(now, &response(&request_key(&out), ""));
    assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
    client
}

/// Drains all events of a connection.
pub(crate) fn drain_events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Drains the bytes a connection wants to send.
pub(crate) fn drain_transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    out
}

/// A clean close: code, reason, by_peer, and no error.
pub(crate) fn assert_clean(closed: &Closed, code: u16, reason: &str, by_peer: bool) {
    assert_eq!(closed.error, None, "{closed:?}");
    assert_eq!(closed.code, CloseCode(code), "{closed:?}");
    assert_eq!(closed.reason, reason, "{closed:?}");
    assert_eq!(closed.by_peer, by_peer, "{closed:?}");
}

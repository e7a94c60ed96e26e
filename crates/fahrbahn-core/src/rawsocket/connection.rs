//! The RawSocket state machine.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::error::{Error, HandshakeErrorCode};
use crate::{CloseOrder, Machine};

const MAGIC: u8 = 0x7F;
const FRAME_MESSAGE: u8 = 0;
const FRAME_PING: u8 = 1;
const FRAME_PONG: u8 = 2;
/// The largest length a 3-byte frame header can carry.
const MAX_FRAME: usize = (1 << 24) - 1;

/// The maximum message length a handshake exponent announces:
/// 2^(9 + exponent) bytes, capped at what a frame header can carry.
///
/// ```
/// use fahrbahn_core::rawsocket::max_len_for_exponent;
/// assert_eq!(max_len_for_exponent(0), 512);
/// assert_eq!(max_len_for_exponent(15), (1 << 24) - 1);
/// ```
pub fn max_len_for_exponent(exp: u8) -> usize {
    (1usize << (9 + usize::from(exp.min(15)))).min(MAX_FRAME)
}

/// Client settings.
///
/// ```
/// use std::time::Duration;
/// use fahrbahn_core::rawsocket::ClientConfig;
/// let mut cfg = ClientConfig::new(1);
/// cfg.open_timeout = Duration::from_secs(3);
/// cfg.ping_interval = Some(Duration::from_secs(30));
/// assert_eq!(cfg.max_len_exponent, 15);
/// assert_eq!(cfg.pong_timeout, Duration::from_secs(20));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Serializer id: 1 JSON, 2 MessagePack, 3 CBOR.
    pub serializer: u8,
    /// We accept messages up to 2^(9 + exponent) bytes (default 15: 16 MiB).
    pub max_len_exponent: u8,
    /// Handshake timeout (default 10 s).
    pub open_timeout: Duration,
    /// Send a keepalive PING after this much time without one (default:
    /// off).
    pub ping_interval: Option<Duration>,
    /// End the connection ([`Error::PingTimeout`]) when a PING is not
    /// answered within this time (default 20 s).
    pub pong_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for `serializer`.
    pub fn new(serializer: u8) -> Self {
        Self {
            serializer,
            max_len_exponent: 15,
            open_timeout: Duration::from_secs(10),
            ping_interval: None,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
        }
    }
}

/// Server settings.
///
/// ```
/// use fahrbahn_core::rawsocket::ServerConfig;
/// let mut cfg = ServerConfig::new(vec![1, 2]);
/// cfg.max_len_exponent = 10;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Serializer ids we accept.
    pub serializers: Vec<u8>,
    /// We accept messages up to 2^(9 + exponent) bytes (default 15).
    pub max_len_exponent: u8,
    /// Handshake timeout (default 10 s).
    pub open_timeout: Duration,
    /// Send a keepalive PING after this much time without one (default:
    /// off).
    pub ping_interval: Option<Duration>,
    /// End the connection ([`Error::PingTimeout`]) when a PING is not
    /// answered within this time (default 20 s).
    pub pong_timeout: Duration,
}

impl ServerConfig {
    /// Defaults accepting `serializers`.
    pub fn new(serializers: Vec<u8>) -> Self {
        Self {
            serializers,
            max_len_exponent: 15,
            open_timeout: Duration::from_secs(10),
            ping_interval: None,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
        }
    }
}

/// The default of `pong_timeout` (as `ws::Timeouts::pong_timeout`).
const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(20);

/// Keepalive settings of a connection.
#[derive(Debug, Clone, Copy)]
struct Keepalive {
    interval: Option<Duration>,
    pong_timeout: Duration,
}

/// What a RawSocket connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished.
    Connected {
        /// The serializer id both sides use.
        serializer: u8,
        /// The longest message the peer accepts.
        peer_max_len: usize,
    },
    /// A complete message.
    Message(Vec<u8>),
    /// The peer answered a ping.
    Pong(Vec<u8>),
    /// The connection ended; the last event.
    Closed(Closed),
}

/// How a RawSocket connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Whether the peer ended it (end of stream, a refused handshake, a
    /// broken frame) rather than we (a [`Connection::close`] call, a
    /// timeout).
    pub by_peer: bool,
    /// Why it ended abnormally; `None` for a clean end.
    pub error: Option<Error>,
}

impl Closed {
    /// Whether the connection ended cleanly.
    pub fn is_clean(&self) -> bool {
        self.error.is_none()
    }
}

#[derive(Debug)]
enum State {
    Handshake,
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Client { serializer: u8 },
    Server,
}

/// A RawSocket connection (client or server) as a sans-IO state machine.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    state: State,
    server_serializers: Vec<u8>,
    max_len_exponent: u8,
    /// What the peer accepts.
    peer_max_len: usize,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// The payload of the PONG still to send, when `pong_pending`: only the
    /// most recent PING is answered, so a peer that pings and never reads
    /// makes us queue one PONG at most. It goes out after `out`.
    pong: Vec<u8>,
    pong_pending: bool,
    events: VecDeque<Event>,
    open_deadline: Option<Instant>,
    keepalive: Keepalive,
    /// When to send the next keepalive PING (open connections with
    /// `ping_interval`).
    next_ping: Option<Instant>,
    /// When an unanswered PING times out.
    pong_deadline: Option<Instant>,
    pings_sent: u64,
}

impl Connection {
    fn new(
        role: Role,
        serializers: Vec<u8>,
        exp: u8,
        timeout: Duration,
        keepalive: Keepalive,
        now: Instant,
    ) -> Self {
        Self {
            role,
            state: State::Handshake,
            server_serializers: serializers,
            max_len_exponent: exp.min(15),
            peer_max_len: 0,
            inbuf: Vec::new(),
            out: Vec::new(),
            pong: Vec::new(),
            pong_pending: false,
            events: VecDeque::new(),
            open_deadline: Some(now + timeout),
            keepalive,
            next_ping: None,
            pong_deadline: None,
            pings_sent: 0,
        }
    }

    /// A client; its handshake is queued at once.
    pub fn client(config: ClientConfig, now: Instant) -> Self {
        let mut conn = Self::new(
            Role::Client {
                serializer: config.serializer,
            },
            Vec::new(),
            config.max_len_exponent,
            config.open_timeout,
            Keepalive {
                interval: config.ping_interval,
                pong_timeout: config.pong_timeout,
            },
            now,
        );
        conn.out.extend_from_slice(&[
            MAGIC,
            (conn.max_len_exponent << 4) | (config.serializer & 0x0F),
            0,
            0,
        ]);
        conn
    }

    /// A server waiting for a client's handshake.
    pub fn server(config: ServerConfig, now: Instant) -> Self {
        Self::new(
            Role::Server,
            config.serializers,
            config.max_len_exponent,
            config.open_timeout,
            Keepalive {
                interval: config.ping_interval,
                pong_timeout: config.pong_timeout,
            },
            now,
        )
    }

    /// The longest message we accept.
    pub fn max_len(&self) -> usize {
        max_len_for_exponent(self.max_len_exponent)
    }

    /// Whether the handshake finished and the connection has not ended.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// Queues a message.
    pub fn send(&mut self, message: &[u8]) -> Result<(), Error> {
        self.send_frame(FRAME_MESSAGE, message)
    }

    /// Queues a ping (its pong arrives as [`Event::Pong`]).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_frame(FRAME_PING, payload)
    }

    fn send_frame(&mut self, kind: u8, payload: &[u8]) -> Result<(), Error> {
        if !self.is_open() {
            return Err(Error::NotOpen);
        }
        if payload.len() > self.peer_max_len {
            return Err(Error::MessageTooLong {
                len: payload.len(),
                max: self.peer_max_len,
            });
        }
        self.write_frame(kind, payload);
        Ok(())
    }

    fn write_frame(&mut self, kind: u8, payload: &[u8]) {
        let len = payload.len() as u32;
        self.out.reserve(4 + payload.len());
        self.out.push(kind);
        self.out.extend_from_slice(&len.to_be_bytes()[1..]);
        self.out.extend_from_slice(payload);
    }

    /// Ends the connection (RawSocket has no closing handshake: WAMP's
    /// GOODBYE comes first, then the transport closes).
    pub fn close(&mut self) {
        if !matches!(self.state, State::Closed) {
            self.end(false, None);
        }
    }

    fn end(&mut self, by_peer: bool, error: Option<Error>) {
        if let Some(e) = &error {
            log::debug!("RawSocket connection failed: {e}");
        }
        self.state = State::Closed;
        self.inbuf = Vec::new();
        self.events
            .push_back(Event::Closed(Closed { by_peer, error }));
    }

    /// Feeds bytes from the transport.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        match self.state {
            State::Closed => {}
            State::Handshake => {
                self.inbuf.extend_from_slice(data);
                if self.read_handshake(now) {
                    self.read_buffered();
                }
            }
            // The common case: nothing buffered, so frames are read
            // straight from `data` and only a trailing partial frame is
            // copied.
            State::Open if self.inbuf.is_empty() => {
                let (consumed, needed) = self.read_frames(data);
                if matches!(self.state, State::Open) && consumed < data.len() {
                    self.inbuf.reserve(needed.max(data.len() - consumed));
                    self.inbuf.extend_from_slice(&data[consumed..]);
                }
            }
            State::Open => {
                self.inbuf.extend_from_slice(data);
                self.read_buffered();
            }
        }
    }

    /// Reads the frames buffered in `inbuf`, keeping what is left.
    fn read_buffered(&mut self) {
        let mut buf = std::mem::take(&mut self.inbuf);
        let (consumed, needed) = self.read_frames(&buf);
        if matches!(self.state, State::Open) {
            buf.drain(..consumed);
            // Make room for the whole pending frame once (bounded by
            // max_len, checked when its header was read).
            buf.reserve(needed.saturating_sub(buf.len()));
            self.inbuf = buf;
        }
    }

    /// Returns true once the handshake is done.
    fn read_handshake(&mut self, now: Instant) -> bool {
        if let Some(&first) = self.inbuf.first() {
            if first != MAGIC {
                self.end(true, Some(Error::BadMagic(first)));
                return false;
            }
        }
        if self.inbuf.len() < 4 {
            return false;
        }
        let hs = [self.inbuf[0], self.inbuf[1], self.inbuf[2], self.inbuf[3]];
        self.inbuf.drain(..4);
        let (hi, lo) = (hs[1] >> 4, hs[1] & 0x0F);
        match self.role {
            Role::Client { serializer } => {
                if lo == 0 {
                    let code = HandshakeErrorCode::from_code(hi);
                    self.end(true, Some(Error::Rejected(code)));
                    return false;
                }
                if lo != serializer {
                    self.end(
                        true,
                        Some(Error::SerializerMismatch {
                            requested: serializer,
                            answered: lo,
                        }),
                    );
                    return false;
                }
                self.open(now, lo, hi);
            }
            Role::Server => {
                let refusal = if hs[2] != 0 || hs[3] != 0 {
                    Some(HandshakeErrorCode::ReservedBitsUsed)
                } else if !self.server_serializers.contains(&lo) {
                    Some(HandshakeErrorCode::SerializerUnsupported)
                } else {
                    None
                };
                if let Some(code) = refusal {
                    self.out.extend_from_slice(&[MAGIC, code.code() << 4, 0, 0]);
                    self.end(true, Some(Error::Refused(code)));
                    return false;
                }
                self.out
                    .extend_from_slice(&[MAGIC, (self.max_len_exponent << 4) | lo, 0, 0]);
                self.open(now, lo, hi);
            }
        }
        true
    }

    fn open(&mut self, now: Instant, serializer: u8, peer_exp: u8) {
        self.state = State::Open;
        self.open_deadline = None;
        self.next_ping = self.keepalive.interval.map(|i| now + i);
        self.peer_max_len = max_len_for_exponent(peer_exp);
        self.events.push_back(Event::Connected {
            serializer,
            peer_max_len: self.peer_max_len,
        });
    }

    /// Handles every complete frame at the start of `buf`. Returns how
    /// many bytes were consumed and the size of the incomplete frame that
    /// follows, when its header is known.
    fn read_frames(&mut self, buf: &[u8]) -> (usize, usize) {
        let mut pos = 0;
        while matches!(self.state, State::Open) && buf.len() - pos >= 4 {
            let head = &buf[pos..pos + 4];
            let kind = head[0];
            let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
            if kind & 0xF8 != 0 || kind > FRAME_PONG {
                self.end(true, Some(Error::BadFrameType(kind)));
                return (pos, 0);
            }
            if len > self.max_len() {
                self.end(
                    true,
                    Some(Error::FrameTooLong {
                        len,
                        max: self.max_len(),
                    }),
                );
                return (pos, 0);
            }
            if buf.len() - pos - 4 < len {
                return (pos, 4 + len);
            }
            let payload = &buf[pos + 4..pos + 4 + len];
            pos += 4 + len;
            match kind {
                FRAME_MESSAGE => self.events.push_back(Event::Message(payload.to_vec())),
                FRAME_PING => {
                    // Replaces a PONG not handed out yet.
                    self.pong.clear();
                    self.pong.extend_from_slice(payload);
                    self.pong_pending = true;
                }
                _ => self.on_pong(payload),
            }
        }
        (pos, 0)
    }

    /// A PONG came: any one answers the outstanding keepalive PING.
    fn on_pong(&mut self, payload: &[u8]) {
        self.pong_deadline = None;
        self.events.push_back(Event::Pong(payload.to_vec()));
    }

    /// The transport ended.
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.state {
            State::Closed => {}
            State::Open if self.inbuf.is_empty() => self.end(true, None),
            _ => self.end(true, Some(Error::ConnectionReset)),
        }
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        match self.state {
            State::Handshake if due(self.open_deadline) => {
                self.end(false, Some(Error::OpenTimeout));
            }
            State::Open if due(self.pong_deadline) => {
                self.end(false, Some(Error::PingTimeout));
            }
            State::Open if due(self.next_ping) => {
                self.pings_sent += 1;
                let payload = self.pings_sent.to_be_bytes();
                self.write_frame(FRAME_PING, &payload);
                // Keep the deadline of an earlier unanswered PING: a new
                // one must not push it back.
                self.pong_deadline
                    .get_or_insert(now + self.keepalive.pong_timeout);
                self.next_ping = self.keepalive.interval.map(|i| now + i);
            }
            _ => {}
        }
    }

    /// Appends the bytes to send to `buf`.
    #[must_use = "the bytes must be written to the transport"]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        if self.pong_pending {
            self.pong_pending = false;
            let payload = std::mem::take(&mut self.pong);
            self.write_frame(FRAME_PONG, &payload);
            self.pong = payload;
        }
        let n = self.out.len();
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.append(&mut self.out);
        }
        n
    }

    /// How many bytes are queued for [`poll_transmit`](Self::poll_transmit)
    /// (including a pending PONG).
    #[must_use]
    pub fn queued_output(&self) -> usize {
        self.out.len()
            + if self.pong_pending {
                4 + self.pong.len()
            } else {
                0
            }
    }

    /// Whether an answer to a PING is queued and not yet handed out.
    #[must_use]
    pub fn pong_pending(&self) -> bool {
        self.pong_pending
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Handshake => self.open_deadline,
            State::Open => self.next_ping.into_iter().chain(self.pong_deadline).min(),
            State::Closed => None,
        }
    }

    /// Whether the connection ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }
}

impl Machine for Connection {
    type Event = Event;

    fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        Connection::handle_bytes(self, now, data);
    }

    fn handle_eof(&mut self, now: Instant) {
        Connection::handle_eof(self, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        Connection::poll_transmit(self, buf)
    }

    fn queued_output(&self) -> usize {
        Connection::queued_output(self)
    }

    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self)
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }

    fn close_order(&self) -> CloseOrder {
        CloseOrder::CloseFirst
    }

    fn linger(&self) -> Duration {
        Duration::from_secs(1)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod tests {
    use super::*;

    fn pair(serializer: u8) -> (Connection, Connection, Instant) {
        let now = Instant::now();
        let mut c = Connection::client(ClientConfig::new(serializer), now);
        let mut s = Connection::server(ServerConfig::new(vec![1, 2, 3]), now);
        pump(&mut c, &mut s, now);
        (c, s, now)
    }

    fn pump(a: &mut Connection, b: &mut Connection, now: Instant) {
        loop {
            let mut buf = Vec::new();
            let n1 = a.poll_transmit(&mut buf);
            b.handle_bytes(now, &buf);
            buf.clear();
            let n2 = b.poll_transmit(&mut buf);
            a.handle_bytes(now, &buf);
            if n1 + n2 == 0 {
                break;
            }
        }
    }

    #[test]
    fn a_ping_flood_without_draining_queues_one_pong() {
        let (_c, mut s, now) = pair(1);
        for i in 0..1000u32 {
            let payload = i.to_be_bytes();
            let mut frame = vec![FRAME_PING, 0, 0, 4];
            frame.extend_from_slice(&payload);
            s.handle_bytes(now, &frame);
            assert!(s.pong_pending());
            assert_eq!(s.queued_output(), 4 + 4);
        }
        let mut buf = Vec::new();
        assert_eq!(s.poll_transmit(&mut buf), 8);
        let mut expected = vec![FRAME_PONG, 0, 0, 4];
        expected.extend_from_slice(&999u32.to_be_bytes());
        assert_eq!(buf, expected);
        assert_eq!(s.queued_output(), 0);
        // The next PING gets its own PONG; what was handed out is kept.
        s.handle_bytes(now, &[FRAME_PING, 0, 0, 1, b'n']);
        let mut next = Vec::new();
        let _ = s.poll_transmit(&mut next);
        assert_eq!(next, [FRAME_PONG, 0, 0, 1, b'n']);
        assert_eq!(buf, expected);
    }

    #[test]
    fn handshake_bytes_match_the_spec() {
        let now = Instant::now();
        let mut c = Connection::client(ClientConfig::new(2), now);
        let mut buf = Vec::new();
        let _ = c.poll_transmit(&mut buf);
        assert_eq!(buf, [0x7F, 0xF2, 0, 0]);
        let mut s = Connection::server(ServerConfig::new(vec![1, 2]), now);
        s.handle_bytes(now, &buf);
        buf.clear();
        let _ = s.poll_transmit(&mut buf);
        assert_eq!(buf, [0x7F, 0xF2, 0, 0]);
        assert_eq!(
            s.poll_event(),
            Some(Event::Connected {
                serializer: 2,
                peer_max_len: MAX_FRAME
            })
        );
    }

    #[test]
    fn messages_ping_pong_both_ways_in_any_chunking() {
        let (mut c, mut s, now) = pair(1);
        assert!(matches!(c.poll_event(), Some(Event::Connected { .. })));
        assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
        c.send(b"[1,\"realm1\",{}]").unwrap();
        c.ping(b"p").unwrap();
        let mut wire = Vec::new();
        let _ = c.poll_transmit(&mut wire);
        for b in &wire {
            s.handle_bytes(now, std::slice::from_ref(b));
        }
        assert_eq!(
            s.poll_event(),
            Some(Event::Message(b"[1,\"realm1\",{}]".to_vec()))
        );
        pump(&mut c, &mut s, now);
        assert_eq!(c.poll_event(), Some(Event::Pong(b"p".to_vec())));
        s.send(&[]).unwrap();
        pump(&mut c, &mut s, now);
        assert_eq!(c.poll_event(), Some(Event::Message(Vec::new())));
    }

    #[test]
    fn server_refuses_unknown_serializer_and_reserved_bits() {
        let now = Instant::now();
        let mut s = Connection::server(ServerConfig::new(vec![1]), now);
        s.handle_bytes(now, &[0x7F, 0xF5, 0, 0]);
        let mut buf = Vec::new();
        let _ = s.poll_transmit(&mut buf);
        assert_eq!(buf, [0x7F, 0x10, 0, 0]);
        let mut c = Connection::client(ClientConfig::new(5), now);
        c.handle_bytes(now, &buf);
        assert_eq!(
            c.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: true,
                error: Some(Error::Rejected(HandshakeErrorCode::SerializerUnsupported))
            }))
        );
        let mut s = Connection::server(ServerConfig::new(vec![1]), now);
        s.handle_bytes(now, &[0x7F, 0xF1, 0, 1]);
        buf.clear();
        let _ = s.poll_transmit(&mut buf);
        assert_eq!(buf, [0x7F, 0x30, 0, 0]);
    }

    #[test]
    fn bad_magic_and_bad_frames_end_the_connection() {
        let now = Instant::now();
        let mut s = Connection::server(ServerConfig::new(vec![1]), now);
        s.handle_bytes(now, b"GET / HTTP/1.1\r\n");
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: true,
                error: Some(Error::BadMagic(b'G'))
            }))
        );
        let (_, mut s, now) = pair(1);
        let _ = s.poll_event();
        s.handle_bytes(now, &[0x08, 0, 0, 0]);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: true,
                error: Some(Error::BadFrameType(8))
            }))
        );
    }

    #[test]
    fn length_limits_both_ways() {
        let now = Instant::now();
        let mut cfg = ClientConfig::new(1);
        cfg.max_len_exponent = 0; // we accept 512 bytes
        let mut c = Connection::client(cfg, now);
        let mut s = Connection::server(
            ServerConfig {
                max_len_exponent: 1,
                ..ServerConfig::new(vec![1])
            },
            now,
        );
        pump(&mut c, &mut s, now);
        let _ = (c.poll_event(), s.poll_event());
        assert_eq!(
            c.send(&[0; 1025]),
            Err(Error::MessageTooLong {
                len: 1025,
                max: 1024
            })
        );
        c.send(&[0; 1024]).unwrap();
        // The server (ignoring our limit) sends 513 bytes: we end it.
        c.handle_bytes(now, &[0, 0, 2, 1]);
        assert_eq!(
            c.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: true,
                error: Some(Error::FrameTooLong { len: 513, max: 512 })
            }))
        );
    }

    #[test]
    fn eof_inside_a_frame_is_a_reset_and_clean_otherwise() {
        let (_, mut s, now) = pair(1);
        let _ = s.poll_event();
        s.handle_bytes(now, &[0, 0, 0, 9, 1]);
        s.handle_eof(now);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: true,
                error: Some(Error::ConnectionReset)
            }))
        );
        let (_, mut s, now) = pair(1);
        let _ = s.poll_event();
        s.handle_eof(now);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: true,
                error: None
            }))
        );
    }

    #[test]
    fn handshake_times_out() {
        let now = Instant::now();
        let mut s = Connection::server(ServerConfig::new(vec![1]), now);
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: false,
                error: Some(Error::OpenTimeout)
            }))
        );
    }

    /// A server with keepalive (interval 30 s, timeout 15 s) and an open
    /// client, both at `now`.
    fn keepalive_pair() -> (Connection, Connection, Instant) {
        let now = Instant::now();
        let mut c = Connection::client(ClientConfig::new(1), now);
        let mut cfg = ServerConfig::new(vec![1]);
        cfg.ping_interval = Some(Duration::from_secs(30));
        cfg.pong_timeout = Duration::from_secs(15);
        let mut s = Connection::server(cfg, now);
        pump(&mut c, &mut s, now);
        assert!(matches!(c.poll_event(), Some(Event::Connected { .. })));
        assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
        (c, s, now)
    }

    #[test]
    fn keepalive_ends_a_silent_peer_after_interval_and_timeout() {
        let (_silent, mut s, start) = keepalive_pair();
        let ping_at = s.poll_timeout().unwrap();
        assert_eq!(ping_at, start + Duration::from_secs(30));
        s.handle_timeout(ping_at);
        let mut wire = Vec::new();
        let _ = s.poll_transmit(&mut wire);
        assert_eq!(wire, [FRAME_PING, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        // No answer: the connection ends at interval + timeout, not later
        // and not before.
        let deadline = s.poll_timeout().unwrap();
        assert_eq!(deadline, start + Duration::from_secs(45));
        s.handle_timeout(deadline - Duration::from_millis(1));
        assert!(s.is_open());
        s.handle_timeout(deadline);
        assert!(s.is_closed());
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(Closed {
                by_peer: false,
                error: Some(Error::PingTimeout)
            }))
        );
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(
            Error::PingTimeout.to_string(),
            "peer did not answer a keepalive ping in time"
        );
    }

    #[test]
    fn keepalive_keeps_an_answering_peer() {
        let (mut c, mut s, start) = keepalive_pair();
        let mut now = start;
        // Ten rounds of pings, each answered (the client answers PING
        // inside its state machine).
        for round in 1..=10u64 {
            let at = s.poll_timeout().unwrap();
            assert_eq!(at, now + Duration::from_secs(30));
            now = at;
            s.handle_timeout(now);
            pump(&mut c, &mut s, now);
            assert_eq!(
                s.poll_event(),
                Some(Event::Pong(round.to_be_bytes().to_vec()))
            );
            assert!(s.is_open());
        }
        // A late answer still counts if it comes before the deadline; none
        // at all ends the connection.
        let at = s.poll_timeout().unwrap();
        s.handle_timeout(at);
        let deadline = s.poll_timeout().unwrap();
        assert_eq!(deadline, at + Duration::from_secs(15));
        pump(&mut c, &mut s, deadline - Duration::from_millis(1));
        s.handle_timeout(deadline);
        assert!(s.is_open());
        assert_eq!(s.poll_timeout(), Some(at + Duration::from_secs(30)));
    }

    #[test]
    fn keepalive_is_off_by_default() {
        let (_, mut s, now) = pair(1);
        let _ = s.poll_event();
        assert_eq!(s.poll_timeout(), None);
        s.handle_timeout(now + Duration::from_secs(3600));
        assert!(s.is_open());
    }
}

//! The WebSocket connection state machine.

use std::collections::VecDeque;
use std::time::Instant;

use base64::Engine as _;

use super::config::{ClientConfig, Limits, ServerConfig, Timeouts};
use super::deflate::{self, Agreement};
use super::error::{Error, HandshakeError, ProtocolError, SendError};
use super::frame::{self, FrameHeader, MAX_HEADER_LEN, OpCode};
use super::handshake::{self, HandshakeRequest};
use super::mask::{apply_mask, mask_extend};
use super::message::{CloseCode, Message};
use super::utf8::Utf8Validator;
use crate::Rng;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that sent the upgrade request (masks its frames).
    Client,
    /// The side that accepted it.
    Server,
}

/// The outcome of the opening handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Handshake {
    /// The request target.
    pub path: String,
    /// The negotiated subprotocol, if any.
    pub subprotocol: Option<String>,
    /// The negotiated `Sec-WebSocket-Extensions` value, if any.
    pub extensions: Option<String>,
    /// The peer's headers: the request's on a server, the response's on a
    /// client.
    pub headers: Vec<(String, String)>,
}

/// How the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close code: the peer's on a close it started or answered, ours
    /// when we failed the connection, [`CloseCode::ABNORMAL`] when the
    /// transport ended without a close frame.
    pub code: CloseCode,
    /// The reason text that went with the code.
    pub reason: String,
    /// Whether the peer started the close.
    pub by_peer: bool,
    /// Why the connection ended abnormally; `None` for a clean close.
    pub error: Option<Error>,
}

/// What a [`Connection`] reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A server with [`ServerConfig::defer_accept`] received this request;
    /// answer with [`Connection::accept`] or [`Connection::reject`].
    Request(HandshakeRequest),
    /// The opening handshake finished.
    Connected(Handshake),
    /// A complete data message.
    Message(Message),
    /// The peer pinged (the pong is already queued).
    Ping(Vec<u8>),
    /// The peer sent a pong.
    Pong(Vec<u8>),
    /// The connection ended; the last event. Flush [`Connection::poll_transmit`]
    /// and then close the transport (a client first waits briefly for the
    /// server to close it, as RFC 6455 section 7.1.1 asks).
    Closed(Closed),
}

/// Settings for [`Connection::accept`].
#[derive(Debug, Clone, Default)]
pub struct Accept {
    /// The subprotocol to answer with (must be one the client offered).
    pub subprotocol: Option<String>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
enum State {
    /// Client: request sent, waiting for the response.
    ClientHandshake {
        key: String,
        config: Box<ClientConfig>,
    },
    /// Server: waiting for the request.
    ServerHandshake {
        config: Box<ServerConfig>,
    },
    /// Server: request received, waiting for the application's decision.
    AwaitingAccept {
        config: Box<ServerConfig>,
        key: String,
        request: HandshakeRequest,
    },
    Open,
    Closed,
}

#[derive(Debug)]
enum ReadState {
    Header,
    Payload(Frame),
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    header: FrameHeader,
    remaining: u64,
    /// Bytes of payload already read (the mask phase).
    offset: usize,
    /// The whole message arrives in this one frame and is read in one piece:
    /// its text is validated once at the end rather than incrementally.
    whole: bool,
}

/// A data message being assembled from frames.
#[derive(Debug)]
struct Incoming {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// Messages at least this long are sent from their own buffer rather than
/// copied behind their header.
const OWNED_SEND_MIN: usize = 2048;

/// Spent output buffers up to this capacity are kept for reuse.
const RECYCLE_MAX: usize = 64 << 10;

/// Pongs queued in a connection's output at most before only the most
/// recent ping is answered (see [`Connection::pong_pending`]): enough for
/// every ping of a peer that reads (the Autobahn|Testsuite sends 10 at
/// once and expects 10 pongs), and a bound of about 2 KiB against a peer
/// that pings and never reads.
pub const MAX_QUEUED_PONGS: usize = 16;

/// Moves the bytes of `src` to the end of `buf`, leaving `src` empty:
/// by swapping the two when `buf` is empty, by copying otherwise. Returns
/// how many bytes moved.
fn hand_over(src: &mut Vec<u8>, buf: &mut Vec<u8>) -> usize {
    let n = src.len();
    if buf.is_empty() {
        std::mem::swap(buf, src);
    } else {
        buf.extend_from_slice(src);
        src.clear();
    }
    n
}

/// A WebSocket connection as a sans-IO state machine (client or server).
///
/// Feed it with [`handle_bytes`](Self::handle_bytes),
/// [`handle_eof`](Self::handle_eof) and [`handle_timeout`](Self::handle_timeout);
/// give it commands ([`send`](Self::send), [`ping`](Self::ping),
/// [`close`](Self::close)); after each, drain
/// [`poll_transmit`](Self::poll_transmit), [`poll_timeout`](Self::poll_timeout)
/// and [`poll_event`](Self::poll_event). See the crate docs for a complete
/// example.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    state: State,
    limits: Limits,
    timeouts: Timeouts,
    rng: Rng,
    /// Bytes of the HTTP head (and whatever followed it) until it is parsed.
    head: Vec<u8>,
    /// Bytes to send, after everything in `sealed`.
    out: Vec<u8>,
    /// Buffers to send before `out`, in order: large payloads handed over
    /// by [`Connection::send`] go out as they are, without a copy.
    sealed: VecDeque<Vec<u8>>,
    /// Pong frames written to `out` since it was last handed out: each
    /// ping is answered at once, in order, up to [`MAX_QUEUED_PONGS`].
    pongs_queued: usize,
    /// Past that, the payload of the one pong still to send, when
    /// `pong_pending`: only the most recent ping is answered (RFC 6455
    /// section 5.5.3), so a peer that pings and never reads makes us queue
    /// [`MAX_QUEUED_PONGS`] + 1 pongs at most. It goes out after everything
    /// in `sealed` and `out` (at a frame boundary), or just before our
    /// close frame.
    pong: Vec<u8>,
    pong_pending: bool,
    events: VecDeque<Event>,
    read: ReadState,
    header_buf: [u8; MAX_HEADER_LEN],
    header_len: usize,
    incoming: Option<Incoming>,
    control: Vec<u8>,
    utf8: Utf8Validator,
    #[cfg(feature = "deflate")]
    deflate: Option<deflate::Codec>,
    /// Compression scratch space (reused between messages).
    #[cfg(feature = "deflate")]
    scratch: Vec<u8>,
    close_sent: bool,
    open_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    ping_counter: u64,
    /// An ending waiting for the application to drain earlier events.
    ending: Option<Ending>,
}

/// What a client learns from the response: subprotocol, the extensions
/// header, and the permessage-deflate agreement.
type ClientNegotiation = (Option<String>, Option<String>, Option<Agreement>);

/// How the connection is about to end (see `Connection::end`).
#[derive(Debug)]
enum Ending {
    /// We fail it with a close code.
    Fail { error: Error, code: CloseCode },
    /// The peer sent a close frame.
    PeerClose {
        code: Option<CloseCode>,
        reason: String,
    },
}

fn random_key(rng: &mut Rng) -> String {
    let mut nonce = [0u8; 16];
    rng.fill(&mut nonce);
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Connection {
    fn new(
        role: Role,
        state: State,
        limits: Limits,
        timeouts: Timeouts,
        rng: Rng,
        now: Instant,
    ) -> Self {
        Self {
            role,
            state,
            limits,
            timeouts,
            rng,
            head: Vec::new(),
            out: Vec::new(),
            sealed: VecDeque::new(),
            pongs_queued: 0,
            pong: Vec::new(),
            pong_pending: false,
            events: VecDeque::new(),
            read: ReadState::Header,
            header_buf: [0; MAX_HEADER_LEN],
            header_len: 0,
            incoming: None,
            control: Vec::new(),
            utf8: Utf8Validator::default(),
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "deflate")]
            scratch: Vec::new(),
            close_sent: false,
            open_deadline: Some(now + timeouts.open),
            close_deadline: None,
            next_ping: None,
            pong_deadline: None,
            ping_counter: 0,
            ending: None,
        }
    }

    /// A client connection; the upgrade request is queued for
    /// [`poll_transmit`](Self::poll_transmit) at once.
    pub fn client(config: ClientConfig, mut rng: Rng, now: Instant) -> Self {
        let key = random_key(&mut rng);
        let offer = Self::deflate_offer(&config);
        let mut out = Vec::with_capacity(256);
        handshake::RequestHead {
            host: &config.host,
            path: &config.path,
            key: &key,
            origin: config.origin.as_deref(),
            subprotocols: &config.subprotocols,
            extensions: offer.as_deref(),
            headers: &config.headers,
        }
        .write(&mut out);
        let (limits, timeouts) = (config.limits, config.timeouts);
        let state = State::ClientHandshake {
            key,
            config: Box::new(config),
        };
        let mut conn = Self::new(Role::Client, state, limits, timeouts, rng, now);
        conn.out = out;
        conn
    }

    #[cfg(feature = "deflate")]
    fn deflate_offer(config: &ClientConfig) -> Option<String> {
        config.deflate.as_ref().map(deflate::client_offer)
    }

    #[cfg(not(feature = "deflate"))]
    fn deflate_offer(config: &ClientConfig) -> Option<String> {
        if config.deflate.is_some() {
            log::warn!("permessage-deflate requested but the `deflate` feature is off");
        }
        None
    }

    /// A server connection waiting for the client's upgrade request.
    pub fn server(config: ServerConfig, rng: Rng, now: Instant) -> Self {
        let (limits, timeouts) = (config.limits, config.timeouts);
        let state = State::ServerHandshake {
            config: Box::new(config),
        };
        Self::new(Role::Server, state, limits, timeouts, rng, now)
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the handshake finished and no close frame was sent yet.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open) && !self.close_sent
    }

    /// Whether the connection has ended ([`Event::Closed`] was queued).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The configured timers (the driver uses `close` as the linger time
    /// after [`Event::Closed`]).
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    // ----- inputs -------------------------------------------------------

    /// Feeds bytes received from the transport.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        match self.state {
            State::Open => self.read_frames(now, data),
            State::ClientHandshake { .. } | State::ServerHandshake { .. } => {
                self.head.extend_from_slice(data);
                self.read_head(now);
            }
            State::AwaitingAccept { .. } => {
                if self.head.len() + data.len() > self.limits.max_message_size {
                    self.terminate(Error::Handshake(HandshakeError::HeadTooLarge {
                        limit: self.limits.max_message_size,
                    }));
                } else {
                    self.head.extend_from_slice(data);
                }
            }
            State::Closed => {}
        }
    }

    /// Tells the connection the transport reached end of stream.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.ending.is_some() {
            return; // the pending ending reports the close
        }
        match self.state {
            State::Closed => {}
            State::Open => self.terminate(Error::ConnectionReset),
            _ => self.terminate(Error::Handshake(HandshakeError::ConnectionClosed)),
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if self.ending.is_some() {
            return;
        }
        match self.state {
            State::Closed => {}
            State::Open => {
                if due(self.close_deadline) {
                    self.terminate(Error::CloseTimeout);
                } else if due(self.pong_deadline) {
                    self.fail(Error::PingTimeout, CloseCode::INTERNAL_ERROR);
                } else if due(self.next_ping) && !self.close_sent {
                    self.ping_counter += 1;
                    let payload = self.ping_counter.to_be_bytes();
                    self.write_control(OpCode::Ping, &payload);
                    // Keep the deadline of an earlier unanswered ping: a
                    // new ping must not push it back (with an interval
                    // shorter than the pong timeout it never fired).
                    self.pong_deadline
                        .get_or_insert(now + self.timeouts.pong_timeout);
                    self.next_ping = self.timeouts.ping_interval.map(|i| now + i);
                }
            }
            _ => {
                if due(self.open_deadline) {
                    self.terminate(Error::OpenTimeout);
                }
            }
        }
    }

    // ----- commands -----------------------------------------------------

    /// Queues a data message. A large message's buffer is sent as it is
    /// (masked in place by a client), without a copy.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        let (opcode, mut payload) = match message {
            Message::Text(s) => (OpCode::Text, s.into_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        if payload.len() < OWNED_SEND_MIN || self.compresses(payload.len()) {
            return self.send_data(opcode, &payload);
        }
        self.check_sendable()?;
        let mask = self.mask_key();
        frame::write_header(&mut self.out, true, false, opcode, mask, payload.len());
        if let Some(key) = mask {
            apply_mask(&mut payload, key, 0);
        }
        self.sealed.push_back(std::mem::take(&mut self.out));
        self.sealed.push_back(payload);
        Ok(())
    }

    /// Whether a message of `len` bytes would be compressed.
    #[cfg(feature = "deflate")]
    fn compresses(&self, len: usize) -> bool {
        self.deflate.as_ref().is_some_and(|c| c.wants(len))
    }

    #[cfg(not(feature = "deflate"))]
    fn compresses(&self, _len: usize) -> bool {
        false
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_data(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_data(OpCode::Binary, data)
    }

    fn check_sendable(&self) -> Result<(), SendError> {
        match self.state {
            State::Open if !self.close_sent => Ok(()),
            State::Open | State::Closed => Err(SendError::Closed),
            _ => Err(SendError::NotOpen),
        }
    }

    fn mask_key(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => Some((self.rng.next_u64() as u32).to_ne_bytes()),
            Role::Server => None,
        }
    }

    fn send_data(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.check_sendable()?;
        let mask = self.mask_key();
        #[cfg(feature = "deflate")]
        if let Some(codec) = self.deflate.as_mut().filter(|c| c.wants(payload.len())) {
            let mut compressed = std::mem::take(&mut self.scratch);
            compressed.clear();
            codec.compress(payload, &mut compressed);
            frame::write_frame(&mut self.out, true, true, opcode, mask, &compressed);
            self.scratch = compressed;
            return Ok(());
        }
        frame::write_frame(&mut self.out, true, false, opcode, mask, payload);
        Ok(())
    }

    /// Queues a ping with `payload` (at most 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.check_sendable()?;
        if payload.len() > 125 {
            return Err(SendError::ControlPayloadTooLong(payload.len()));
        }
        self.write_control(OpCode::Ping, payload);
        Ok(())
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123
    /// bytes). [`Event::Closed`] follows when the peer answers, or after the
    /// close timeout.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.check_sendable()?;
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        if reason.len() > 123 {
            return Err(SendError::CloseReasonTooLong(reason.len()));
        }
        self.write_close(Some(code), reason);
        self.close_deadline = Some(now + self.timeouts.close);
        Ok(())
    }

    /// Accepts a request announced by [`Event::Request`].
    pub fn accept(&mut self, now: Instant, accept: Accept) -> Result<(), SendError> {
        // Check before taking the state out: a misplaced call must leave the
        // connection as it was.
        if !matches!(self.state, State::AwaitingAccept { .. }) {
            return Err(SendError::NoPendingRequest);
        }
        let State::AwaitingAccept {
            config,
            key,
            request,
        } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(SendError::NoPendingRequest);
        };
        let mut headers = config.headers.clone();
        headers.extend(accept.headers);
        self.finish_server_handshake(now, &config, &key, request, accept.subprotocol, &headers);
        Ok(())
    }

    /// Refuses a request announced by [`Event::Request`] with an HTTP
    /// `status` (e.g. 403) and a plain-text `body`.
    pub fn reject(&mut self, status: u16, body: &str) -> Result<(), SendError> {
        if !matches!(self.state, State::AwaitingAccept { .. }) {
            return Err(SendError::NoPendingRequest);
        }
        handshake::write_reject(&mut self.out, status, body);
        self.terminate(Error::Handshake(HandshakeError::Rejected(status)));
        Ok(())
    }

    // ----- outputs ------------------------------------------------------

    /// Appends the bytes to send to `buf`; returns how many were added.
    #[must_use = "the bytes must be written to the transport"]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let mut n = 0;
        loop {
            let added = self.poll_transmit_chunk(buf);
            if added == 0 {
                return n;
            }
            n += added;
        }
    }

    /// Like [`poll_transmit`](Self::poll_transmit), one buffer at a time:
    /// into an empty `buf`, a large message's own buffer is swapped in
    /// rather than copied (`buf`'s allocation is kept for reuse). Call it
    /// until it returns 0; writers that gather buffers (`writev`) send
    /// large messages without a copy this way.
    #[must_use = "the bytes must be written to the transport"]
    pub fn poll_transmit_chunk(&mut self, buf: &mut Vec<u8>) -> usize {
        let Some(mut chunk) = self.sealed.pop_front() else {
            if self.out.is_empty() && self.pong_pending {
                // Everything before it is handed out: the stream is at a
                // frame boundary.
                self.flush_pong();
            }
            self.pongs_queued = 0;
            return hand_over(&mut self.out, buf);
        };
        let n = hand_over(&mut chunk, buf);
        // `chunk` is now an empty spent buffer: keep it for the next header
        // or small message.
        if self.out.capacity() == 0 && chunk.capacity() <= RECYCLE_MAX {
            self.out = chunk;
        }
        n
    }

    /// How many bytes are queued for [`poll_transmit`](Self::poll_transmit)
    /// (including a pending pong).
    #[must_use]
    pub fn queued_output(&self) -> usize {
        let pong = if self.pong_pending {
            let mask = if self.role == Role::Client { 4 } else { 0 };
            2 + mask + self.pong.len()
        } else {
            0
        };
        self.sealed.iter().map(Vec::len).sum::<usize>() + self.out.len() + pong
    }

    /// Whether an answer to a ping waits to be queued: the peer pinged
    /// while [`MAX_QUEUED_PONGS`] pongs were queued and not yet handed out
    /// by [`poll_transmit`](Self::poll_transmit), so only its most recent
    /// ping will be answered, after them.
    #[must_use]
    pub fn pong_pending(&self) -> bool {
        self.pong_pending
    }

    /// Writes the pending pong at the end of `out`.
    fn flush_pong(&mut self) {
        if self.pong_pending {
            self.pong_pending = false;
            let payload = std::mem::take(&mut self.pong);
            self.write_control(OpCode::Pong, &payload);
            self.pong = payload;
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            if let Some(ending) = self.ending.take() {
                self.apply_ending(ending);
            }
        }
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Open => [self.close_deadline, self.pong_deadline, self.next_ping]
                .into_iter()
                .flatten()
                .min(),
            _ => self.open_deadline,
        }
    }

    // ----- handshake ----------------------------------------------------

    fn read_head(&mut self, now: Instant) {
        let limit = self.limits.max_handshake_size;
        match &self.state {
            State::ClientHandshake { key, config } => {
                let parsed = match handshake::parse_response(&self.head, limit) {
                    Ok(Some(p)) => p,
                    Ok(None) => return,
                    Err(e) => return self.terminate(e.into()),
                };
                let (resp, n) = parsed;
                let result = handshake::check_response(&resp, key)
                    .and_then(|()| Self::client_negotiate(config, &resp.headers));
                match result {
                    Ok((subprotocol, extensions, agreement)) => {
                        let path = config.path.clone();
                        self.open(now, agreement);
                        self.events.push_back(Event::Connected(Handshake {
                            path,
                            subprotocol,
                            extensions,
                            headers: resp.headers,
                        }));
                        self.process_leftover(now, n);
                    }
                    Err(e) => self.terminate(e.into()),
                }
            }
            State::ServerHandshake { .. } => {
                let parsed = match handshake::parse_request(&self.head, limit) {
                    Ok(Some(p)) => p,
                    Ok(None) => return,
                    Err(e) => {
                        let status = e.http_status();
                        handshake::write_reject(&mut self.out, status, &e.to_string());
                        return self.terminate(e.into());
                    }
                };
                let (parsed, n) = parsed;
                let State::ServerHandshake { config } =
                    std::mem::replace(&mut self.state, State::Closed)
                else {
                    unreachable!("matched above")
                };
                self.head.drain(..n);
                let origin = parsed.request.header("origin");
                if let Some(allowed) = &config.allowed_origins {
                    if !allowed.admits(origin) {
                        log::debug!(
                            "WebSocket request from origin {origin:?} refused: not allowed"
                        );
                        handshake::write_reject(&mut self.out, 403, "origin not allowed");
                        return self.terminate(Error::Handshake(HandshakeError::Rejected(403)));
                    }
                }
                if config.defer_accept {
                    self.events
                        .push_back(Event::Request(parsed.request.clone()));
                    self.state = State::AwaitingAccept {
                        config,
                        key: parsed.key,
                        request: parsed.request,
                    };
                    return;
                }
                let offered = parsed.request.subprotocols();
                let subprotocol = config
                    .subprotocols
                    .iter()
                    .find(|p| offered.contains(&p.as_str()))
                    .cloned();
                self.finish_server_handshake(
                    now,
                    &config,
                    &parsed.key,
                    parsed.request,
                    subprotocol,
                    &config.headers,
                );
            }
            _ => {}
        }
    }

    /// Feeds what followed the HTTP head (its first `n` bytes) as frames.
    fn process_leftover(&mut self, now: Instant, n: usize) {
        let head = std::mem::take(&mut self.head);
        if head.len() > n {
            self.read_frames(now, &head[n..]);
        }
    }

    fn client_negotiate(
        config: &ClientConfig,
        headers: &[(String, String)],
    ) -> Result<ClientNegotiation, HandshakeError> {
        let subprotocol = handshake::header(headers, "sec-websocket-protocol").map(str::to_owned);
        if let Some(p) = &subprotocol {
            if !config.subprotocols.iter().any(|o| o == p) {
                return Err(HandshakeError::UnofferedSubprotocol(p.clone()));
            }
        }
        let elements = handshake::parse_extensions(headers);
        if elements.is_empty() {
            return Ok((subprotocol, None, None));
        }
        let extensions = handshake::header(headers, "sec-websocket-extensions").map(str::to_owned);
        let cfg = match (&config.deflate, Self::deflate_offer(config)) {
            (Some(cfg), Some(_)) => cfg,
            _ => {
                return Err(HandshakeError::InvalidExtension(
                    "server enabled an extension that was not offered".into(),
                ));
            }
        };
        if elements.iter().any(|e| e.name != deflate::EXTENSION_NAME) {
            return Err(HandshakeError::InvalidExtension(
                "server enabled an extension that was not offered".into(),
            ));
        }
        let agreement =
            deflate::client_check(&elements, cfg).map_err(HandshakeError::InvalidExtension)?;
        Ok((subprotocol, extensions, Some(agreement)))
    }

    fn finish_server_handshake(
        &mut self,
        now: Instant,
        config: &ServerConfig,
        key: &str,
        request: HandshakeRequest,
        subprotocol: Option<String>,
        headers: &[(String, String)],
    ) {
        let (agreement, extensions) = Self::server_negotiate(config, &request.headers);
        handshake::write_accept(
            &mut self.out,
            key,
            subprotocol.as_deref(),
            extensions.as_deref(),
            headers,
        );
        self.open(now, agreement);
        self.events.push_back(Event::Connected(Handshake {
            path: request.path,
            subprotocol,
            extensions,
            headers: request.headers,
        }));
        self.process_leftover(now, 0);
    }

    #[cfg(feature = "deflate")]
    fn server_negotiate(
        config: &ServerConfig,
        headers: &[(String, String)],
    ) -> (Option<Agreement>, Option<String>) {
        let Some(cfg) = &config.deflate else {
            return (None, None);
        };
        match deflate::server_accept(&handshake::parse_extensions(headers), cfg) {
            Some((a, resp)) => (Some(a), Some(resp)),
            None => (None, None),
        }
    }

    #[cfg(not(feature = "deflate"))]
    fn server_negotiate(
        _config: &ServerConfig,
        _headers: &[(String, String)],
    ) -> (Option<Agreement>, Option<String>) {
        (None, None)
    }

    fn open(&mut self, now: Instant, agreement: Option<Agreement>) {
        self.state = State::Open;
        self.open_deadline = None;
        self.next_ping = self.timeouts.ping_interval.map(|i| now + i);
        #[cfg(feature = "deflate")]
        {
            self.deflate = agreement.map(deflate::Codec::new);
        }
        #[cfg(not(feature = "deflate"))]
        let _ = agreement;
    }

    // ----- frames -------------------------------------------------------

    fn read_frames(&mut self, now: Instant, mut data: &[u8]) {
        while !data.is_empty() && matches!(self.state, State::Open) && self.ending.is_none() {
            match self.read {
                ReadState::Header => {
                    let parsed = if self.header_len > 0 {
                        let old = self.header_len;
                        let take = (MAX_HEADER_LEN - old).min(data.len());
                        self.header_buf[old..old + take].copy_from_slice(&data[..take]);
                        match frame::parse_header(&self.header_buf[..old + take]) {
                            Ok(Some((h, n))) => {
                                data = &data[n - old..];
                                self.header_len = 0;
                                h
                            }
                            Ok(None) => {
                                self.header_len += take;
                                return;
                            }
                            Err(e) => return self.fail_protocol(e),
                        }
                    } else {
                        match frame::parse_header(data) {
                            Ok(Some((h, n))) => {
                                data = &data[n..];
                                h
                            }
                            Ok(None) => {
                                self.header_buf[..data.len()].copy_from_slice(data);
                                self.header_len = data.len();
                                return;
                            }
                            Err(e) => return self.fail_protocol(e),
                        }
                    };
                    let whole = parsed.fin
                        && parsed.opcode != OpCode::Continuation
                        && data.len() as u64 >= parsed.payload_len;
                    if let Err(e) = self.begin_frame(&parsed) {
                        return self.fail_protocol(e);
                    }
                    let frame = Frame {
                        header: parsed,
                        remaining: parsed.payload_len,
                        offset: 0,
                        whole,
                    };
                    if frame.remaining == 0 {
                        self.end_frame(now, &frame);
                    } else {
                        self.read = ReadState::Payload(frame);
                    }
                }
                ReadState::Payload(mut frame) => {
                    let n = frame.remaining.min(data.len() as u64) as usize;
                    if let Err(e) = self.read_payload(&mut frame, &data[..n]) {
                        return self.fail_protocol(e);
                    }
                    data = &data[n..];
                    frame.remaining -= n as u64;
                    if frame.remaining == 0 {
                        self.read = ReadState::Header;
                        self.end_frame(now, &frame);
                    } else {
                        self.read = ReadState::Payload(frame);
                    }
                }
            }
        }
    }

    /// Checks a new frame header against the rules and the connection state.
    fn begin_frame(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        let rsv1_allowed =
            self.deflate_active() && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let bad_rsv = if rsv1_allowed { h.rsv & 0b011 } else { h.rsv };
        if bad_rsv != 0 {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if h.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong(h.payload_len));
            }
            self.control.clear();
            return Ok(());
        }
        if h.payload_len > self.limits.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooBig {
                len: h.payload_len,
                limit: self.limits.max_frame_size,
            });
        }
        let limit = self.limits.max_message_size;
        match (h.opcode, &self.incoming) {
            (OpCode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(inc)) => {
                if !inc.compressed && inc.data.len() as u64 + h.payload_len > limit as u64 {
                    return Err(ProtocolError::MessageTooBig { limit });
                }
                Ok(())
            }
            (_, Some(_)) => Err(ProtocolError::ExpectedContinuation),
            (opcode, None) => {
                let compressed = h.rsv & 0b100 != 0;
                if !compressed && h.payload_len > limit as u64 {
                    return Err(ProtocolError::MessageTooBig { limit });
                }
                // Trust the declared length only up to a point.
                let capacity = h.payload_len.min(1 << 20) as usize;
                self.incoming = Some(Incoming {
                    text: opcode == OpCode::Text,
                    compressed,
                    data: Vec::with_capacity(capacity),
                });
                self.utf8.reset();
                Ok(())
            }
        }
    }

    #[cfg(feature = "deflate")]
    fn deflate_active(&self) -> bool {
        self.deflate.is_some()
    }

    #[cfg(not(feature = "deflate"))]
    fn deflate_active(&self) -> bool {
        false
    }

    fn read_payload(&mut self, frame: &mut Frame, chunk: &[u8]) -> Result<(), ProtocolError> {
        let key = frame.header.mask;
        if frame.header.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(chunk);
            if let Some(key) = key {
                apply_mask(&mut self.control[start..], key, frame.offset);
            }
            frame.offset += chunk.len();
            return Ok(());
        }
        let inc = self.incoming.as_mut().expect("data frame has a message");
        let start = inc.data.len();
        if inc.compressed {
            #[cfg(feature = "deflate")]
            {
                self.scratch.clear();
                self.scratch.extend_from_slice(chunk);
                if let Some(key) = key {
                    apply_mask(&mut self.scratch, key, frame.offset);
                }
                let codec = self.deflate.as_mut().expect("compressed implies deflate");
                codec.decompress(&self.scratch, &mut inc.data, self.limits.max_message_size)?;
            }
        } else if let Some(key) = key {
            mask_extend(&mut inc.data, chunk, key, frame.offset);
        } else {
            inc.data.extend_from_slice(chunk);
        }
        frame.offset += chunk.len();
        // A whole uncompressed message read in one piece is validated once,
        // at the end; everything else incrementally, to fail fast.
        let validate_now = inc.compressed || !frame.whole;
        if inc.text && validate_now {
            self.utf8
                .feed(&inc.data[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    fn end_frame(&mut self, now: Instant, frame: &Frame) {
        let h = &frame.header;
        if h.opcode.is_control() {
            let payload = std::mem::take(&mut self.control);
            self.handle_control(now, h.opcode, &payload);
            self.control = payload;
            return;
        }
        if !h.fin {
            return;
        }
        let Some(mut inc) = self.incoming.take() else {
            return;
        };
        if let Err(e) = self.finish_message(&mut inc) {
            return self.fail_protocol(e);
        }
        let message = if inc.text {
            match String::from_utf8(inc.data) {
                Ok(s) => Message::Text(s),
                Err(_) => return self.fail_protocol(ProtocolError::InvalidUtf8),
            }
        } else {
            Message::Binary(inc.data)
        };
        if !self.close_sent {
            self.events.push_back(Event::Message(message));
        }
    }

    fn finish_message(&mut self, inc: &mut Incoming) -> Result<(), ProtocolError> {
        #[cfg(feature = "deflate")]
        if inc.compressed {
            let start = inc.data.len();
            let codec = self.deflate.as_mut().expect("compressed implies deflate");
            codec.finish_message(&mut inc.data, self.limits.max_message_size)?;
            if inc.text {
                self.utf8
                    .feed(&inc.data[start..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if inc.text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    fn handle_control(&mut self, _now: Instant, opcode: OpCode, payload: &[u8]) {
        match opcode {
            OpCode::Ping => {
                if !self.close_sent {
                    if self.pongs_queued < MAX_QUEUED_PONGS && !self.pong_pending {
                        // Answered at once, in order with what we send.
                        self.write_control(OpCode::Pong, payload);
                        self.pongs_queued += 1;
                    } else {
                        // The peer pings faster than it reads: the pending
                        // pong not handed out yet is replaced by this one
                        // (RFC 6455 section 5.5.3: answering only the most
                        // recent ping is allowed).
                        self.pong.clear();
                        self.pong.extend_from_slice(payload);
                        self.pong_pending = true;
                    }
                }
                self.events.push_back(Event::Ping(payload.to_vec()));
            }
            OpCode::Pong => {
                self.pong_deadline = None;
                self.events.push_back(Event::Pong(payload.to_vec()));
            }
            OpCode::Close => {
                let (code, reason) = match Self::parse_close(payload) {
                    Ok(v) => v,
                    Err(e) => return self.fail_protocol(e),
                };
                self.end(Ending::PeerClose { code, reason });
            }
            _ => unreachable!("not a control opcode"),
        }
    }

    fn parse_close(payload: &[u8]) -> Result<(Option<CloseCode>, String), ProtocolError> {
        match payload {
            [] => Ok((None, String::new())),
            [_] => Err(ProtocolError::CloseFrameTooShort),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
                Ok((Some(code), reason.to_owned()))
            }
        }
    }

    fn write_control(&mut self, opcode: OpCode, payload: &[u8]) {
        let mask = self.mask_key();
        frame::write_frame(&mut self.out, true, false, opcode, mask, payload);
    }

    fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
        // Nothing may follow the close frame.
        self.flush_pong();
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(code) = code {
            payload.extend_from_slice(&code.0.to_be_bytes());
            payload.extend_from_slice(truncate_utf8(reason, 123).as_bytes());
        }
        self.write_control(OpCode::Close, &payload);
        self.close_sent = true;
        // No keepalive pings after our close: the timer would stay due (and
        // make poll_timeout report a past deadline) until the close ends.
        // The message being received is kept: its remaining frames still
        // arrive and are read (and dropped) normally.
        self.next_ping = None;
    }

    // ----- endings ------------------------------------------------------

    fn fail_protocol(&mut self, e: ProtocolError) {
        let code = e.close_code();
        self.fail(Error::Protocol(e), code);
    }

    /// Fails the connection: sends a close frame with `code` (unless one
    /// was sent already) and ends it.
    fn fail(&mut self, error: Error, code: CloseCode) {
        log::debug!("failing WebSocket connection ({code}): {error}");
        self.end(Ending::Fail { error, code });
    }

    /// Ends the connection once the application has seen every event that
    /// came before the ending, so that what it sends in answer to them
    /// (an echo, say) goes out before our close frame. Input is ignored
    /// from here on.
    fn end(&mut self, ending: Ending) {
        if self.events.is_empty() {
            self.apply_ending(ending);
        } else {
            self.ending = Some(ending);
        }
    }

    fn apply_ending(&mut self, ending: Ending) {
        let closed = match ending {
            Ending::Fail { error, code } => {
                let reason = truncate_utf8(&error.to_string(), 123).to_owned();
                if !self.close_sent {
                    self.write_close(Some(code), &reason);
                }
                Closed {
                    code,
                    reason,
                    by_peer: false,
                    error: Some(error),
                }
            }
            Ending::PeerClose { code, reason } => {
                let by_peer = !self.close_sent;
                if by_peer {
                    // Echo the peer's code (RFC 6455 section 5.5.1).
                    self.write_close(code, "");
                }
                Closed {
                    code: code.unwrap_or(CloseCode::NO_STATUS),
                    reason,
                    by_peer,
                    error: None,
                }
            }
        };
        self.state = State::Closed;
        self.events.push_back(Event::Closed(closed));
    }

    /// Ends the connection without a close frame.
    fn terminate(&mut self, error: Error) {
        log::debug!("WebSocket connection ended: {error}");
        self.state = State::Closed;
        self.head = Vec::new();
        self.events.push_back(Event::Closed(Closed {
            code: CloseCode::ABNORMAL,
            reason: String::new(),
            by_peer: false,
            error: Some(error),
        }));
    }
}

impl crate::Machine for Connection {
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

    fn poll_transmit_chunk(&mut self, buf: &mut Vec<u8>) -> usize {
        Connection::poll_transmit_chunk(self, buf)
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

    fn close_order(&self) -> crate::CloseOrder {
        match self.role {
            Role::Server => crate::CloseOrder::CloseFirst,
            Role::Client => crate::CloseOrder::WaitForPeer,
        }
    }

    fn linger(&self) -> std::time::Duration {
        self.timeouts.close
    }
}

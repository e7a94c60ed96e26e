//! A WAMP client over a byte stream: a framing (WebSocket or RawSocket), a
//! serializer and a [`Session`] composed into one [`Machine`], the way
//! str0m composes ICE, DTLS and SCTP — no I/O nested anywhere.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::framing::{self, Framing, FramingEvent};
use super::message::Message;
use super::serializer::Serializer;
use super::session::{Session, SessionConfig, SessionEvent};
use crate::{CloseOrder, Machine, Rng, rawsocket, ws};

/// A WAMP client session over WebSocket or RawSocket bytes.
///
/// Commands go to the [`Session`] ([`session_mut`](Self::session_mut));
/// the connection encodes, frames and transmits what it queues.
///
/// ```
/// use std::time::Instant;
/// use fahrbahn_core::{Machine, Rng};
/// use fahrbahn_core::wamp::{ClientConnection, Serializer, SessionConfig};
///
/// let mut conn = ClientConnection::websocket(
///     fahrbahn_core::ws::ClientConfig::new("127.0.0.1:8080", "/ws"),
///     &[(Serializer::MsgPack, false), (Serializer::Json, false)],
///     SessionConfig::new("realm1"),
///     Rng::from_seed(1),
///     Instant::now(),
/// );
/// let mut request = Vec::new();
/// let _ = conn.poll_transmit(&mut request);
/// assert!(String::from_utf8_lossy(&request).contains("Sec-WebSocket-Protocol: wamp.2.msgpack, wamp.2.json"));
/// ```
#[derive(Debug)]
pub struct ClientConnection {
    framing: Framing,
    /// Serializer and batching, once the framing is connected.
    serializer: Option<(Serializer, bool)>,
    session: Session,
    /// Session events, with the session's `Closed` held back until the
    /// framing has closed too.
    events: VecDeque<SessionEvent>,
    framing_closed: bool,
    close_started: bool,
    scratch: Vec<u8>,
}

impl ClientConnection {
    /// A session over a WebSocket client connection, offering the given
    /// serializers (in order of preference) as subprotocols.
    pub fn websocket(
        mut config: ws::ClientConfig,
        serializers: &[(Serializer, bool)],
        session: SessionConfig,
        rng: Rng,
        now: Instant,
    ) -> Self {
        config.subprotocols = serializers
            .iter()
            .map(|(s, batched)| s.subprotocol(*batched).to_owned())
            .collect();
        Self::new(
            Framing::WebSocket(Box::new(ws::Connection::client(config, rng, now))),
            None,
            Session::new(session),
        )
    }

    /// A session over a RawSocket client connection.
    pub fn rawsocket(
        config: rawsocket::ClientConfig,
        serializer: Serializer,
        session: SessionConfig,
        now: Instant,
    ) -> Self {
        let mut config = config;
        config.serializer = serializer.rawsocket_id();
        // The serializer takes effect once the handshake is answered (see
        // `drain_framing`): nothing may be sent before.
        Self::new(
            Framing::RawSocket(rawsocket::Connection::client(config, now)),
            None,
            Session::new(session),
        )
    }

    fn new(framing: Framing, serializer: Option<(Serializer, bool)>, session: Session) -> Self {
        Self {
            framing,
            serializer,
            session,
            events: VecDeque::new(),
            framing_closed: false,
            close_started: false,
            scratch: Vec::new(),
        }
    }

    /// The session, for commands.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The session, for getters.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The negotiated serializer (and whether batched), once connected.
    pub fn serializer(&self) -> Option<(Serializer, bool)> {
        self.serializer
    }

    /// Encodes and frames what the session queued; closes the framing
    /// once the session has ended. Call after every command.
    pub fn flush(&mut self, now: Instant) {
        if let Some((serializer, batched)) = self.serializer {
            while let Some(msg) = self.session.poll_message() {
                self.send(now, serializer, batched, &msg);
            }
        }
        self.pull_session_events();
        if self.session.is_closed() && !self.close_started && !self.framing_closed {
            self.close_started = true;
            self.framing.close(now, ws::CloseCode::NORMAL);
        }
    }

    fn send(&mut self, now: Instant, serializer: Serializer, batched: bool, msg: &Message) {
        if let Err(e) = self
            .framing
            .send(serializer, batched, msg, &mut self.scratch)
        {
            // E.g. too large for the peer: the transport is unusable.
            log::warn!("cannot send {}: {e}", msg.name());
            self.end_transport(now, ws::CloseCode::POLICY_VIOLATION, &e);
        }
    }

    /// Closes the framing because of `why` and ends the session with it.
    fn end_transport(&mut self, now: Instant, code: ws::CloseCode, why: &str) {
        self.framing.close(now, code);
        self.session.handle_transport_closed(why);
        // A RawSocket ends at once: take its Closed event now, or the
        // session's end would wait for a transport event that never comes.
        self.drain_framing(now);
    }

    fn pull_session_events(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push_back(e);
        }
    }

    fn handle_payload(&mut self, payload: &[u8]) {
        let Some((serializer, batched)) = self.serializer else {
            return;
        };
        match framing::decode(serializer, batched, payload) {
            Ok(messages) => {
                for m in messages {
                    self.session.handle_message(m);
                }
            }
            Err(e) => self
                .session
                .protocol_violation(format!("undecodable message: {e}")),
        }
    }

    fn process_framing(&mut self, now: Instant) {
        self.drain_framing(now);
        self.flush(now);
        // Closing the framing may have ended it at once (RawSocket).
        self.drain_framing(now);
    }

    fn drain_framing(&mut self, now: Instant) {
        while let Some(event) = self.framing.poll_event() {
            match event {
                FramingEvent::Connected(Some(serializer)) => self.serializer = Some(serializer),
                FramingEvent::Connected(None) => {
                    let why = "the router chose no WAMP subprotocol";
                    self.end_transport(now, ws::CloseCode::POLICY_VIOLATION, why);
                }
                FramingEvent::Payload(payload) => self.handle_payload(&payload),
                FramingEvent::Closed { why, .. } => {
                    self.framing_closed = true;
                    self.session.handle_transport_closed(&why);
                }
                FramingEvent::Request(_) => {}
            }
        }
    }
}

impl Machine for ClientConnection {
    type Event = SessionEvent;

    fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        self.framing.handle_bytes(now, data);
        self.process_framing(now);
    }

    fn handle_eof(&mut self, now: Instant) {
        self.framing.handle_eof(now);
        self.process_framing(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.framing.handle_timeout(now);
        self.process_framing(now);
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        self.framing.poll_transmit(buf)
    }

    fn poll_event(&mut self) -> Option<SessionEvent> {
        self.pull_session_events();
        match self.events.front() {
            Some(SessionEvent::Closed(_)) if !self.framing_closed => None,
            _ => self.events.pop_front(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.framing.poll_timeout()
    }

    fn is_closed(&self) -> bool {
        self.framing_closed && self.session.is_closed()
    }

    fn close_order(&self) -> CloseOrder {
        self.framing.close_order()
    }

    fn linger(&self) -> Duration {
        self.framing.linger()
    }
}

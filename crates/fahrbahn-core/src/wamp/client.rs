//! A WAMP client over a byte stream: a framing (WebSocket or RawSocket), a
//! serializer and a [`Session`] composed into one [`Machine`], the way
//! str0m composes ICE, DTLS and SCTP — no I/O nested anywhere.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::RequestId;
use super::codec::Codec;
use super::framing::{Framing, FramingEvent};
use super::serializer::Serializer;
use super::session::{CommandError, Session, SessionConfig, SessionEvent};
use super::transport::{TransportClosed, TransportError};
use super::value::{Dict, List};
use crate::{CloseOrder, Machine, Rng, rawsocket, ws};

/// A WAMP client session over WebSocket or RawSocket bytes.
///
/// Commands go to the [`Session`] ([`session_mut`](Self::session_mut)); they
/// only change its state. The connection encodes, frames and transmits what
/// they queued when its output is polled ([`Machine::poll_transmit`]), as
/// every machine of the core does: there is no separate flush step.
///
/// ```
/// use std::time::Instant;
/// use fahrbahn_core::{Machine, Rng};
/// use fahrbahn_core::wamp::{ClientConnection, Codec, Serializer, SessionConfig};
///
/// let mut conn = ClientConnection::websocket(
///     fahrbahn_core::ws::ClientConfig::new("127.0.0.1:8080", "/ws"),
///     &[Codec::new(Serializer::MsgPack), Codec::new(Serializer::Json)],
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
    /// The codec, once the framing is connected.
    codec: Option<Codec>,
    session: Session,
    /// Session events, with the session's `Closed` held back until the
    /// framing has closed too.
    events: VecDeque<SessionEvent>,
    framing_closed: bool,
    close_started: bool,
    /// The latest time passed in.
    now: Instant,
    scratch: Vec<u8>,
    /// The largest message the router accepts, if it announced one
    /// (RawSocket).
    peer_max_len: Option<usize>,
}

impl ClientConnection {
    /// A session over a WebSocket client connection, offering the given
    /// codecs (in order of preference) as subprotocols.
    pub fn websocket(
        mut config: ws::ClientConfig,
        codecs: &[Codec],
        session: SessionConfig,
        mut rng: Rng,
        now: Instant,
    ) -> Self {
        config.subprotocols = codecs.iter().map(|c| c.subprotocol().to_owned()).collect();
        let session = Self::new_session(session, now, &mut rng);
        Self::new(
            Framing::WebSocket(Box::new(ws::Connection::client(config, rng, now))),
            session,
            now,
        )
    }

    /// The session; one that needs randomness (a SCRAM nonce) gets its own
    /// generator seeded from `rng` (drawn only then, so other sessions see
    /// the same mask keys as before).
    fn new_session(config: SessionConfig, now: Instant, rng: &mut Rng) -> Session {
        if Session::needs_rng(&config) {
            let mut seed = [0u8; 32];
            rng.fill(&mut seed);
            Session::with_rng(config, now, &mut Rng::from_entropy_bytes(seed))
        } else {
            Session::new(config, now)
        }
    }

    /// [`rawsocket`](Self::rawsocket) with the RNG that makes
    /// authentication nonces (needed by a SCRAM credential).
    pub fn rawsocket_with_rng(
        mut config: rawsocket::ClientConfig,
        serializer: Serializer,
        session: SessionConfig,
        mut rng: Rng,
        now: Instant,
    ) -> Self {
        config.serializer = serializer.rawsocket_id();
        let session = Self::new_session(session, now, &mut rng);
        Self::new(
            Framing::RawSocket(Box::new(rawsocket::Connection::client(config, now))),
            session,
            now,
        )
    }

    /// A session over a RawSocket client connection. Nothing is sent
    /// before the handshake is answered.
    pub fn rawsocket(
        mut config: rawsocket::ClientConfig,
        serializer: Serializer,
        session: SessionConfig,
        now: Instant,
    ) -> Self {
        config.serializer = serializer.rawsocket_id();
        Self::new(
            Framing::RawSocket(Box::new(rawsocket::Connection::client(config, now))),
            Session::new(session, now),
            now,
        )
    }

    fn new(framing: Framing, session: Session, now: Instant) -> Self {
        Self {
            framing,
            codec: None,
            session,
            events: VecDeque::new(),
            framing_closed: false,
            close_started: false,
            now,
            scratch: Vec::new(),
            peer_max_len: None,
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

    /// The negotiated codec, once connected.
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }

    /// Calls `procedure` like [`Session::call`], but first checks that the
    /// CALL fits what the router accepts
    /// ([`peer_max_message_size`](Self::peer_max_message_size)): a larger
    /// one fails at once with [`CommandError::PayloadTooLarge`] and
    /// nothing is queued — the router could never receive it, and the
    /// call would otherwise end the transport.
    pub fn call(
        &mut self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<RequestId, CommandError> {
        let (Some(codec), Some(max)) = (self.codec, self.peer_max_len) else {
            return self.session.call(procedure, args, kwargs, options);
        };
        // Connected to a router that announced a maximum: what the session
        // queued before goes out first, then the CALL is encoded once, to
        // be measured and, when it fits, sent as it is.
        self.pump();
        let request = self.session.call(procedure, args, kwargs, options)?;
        let call = self
            .session
            .poll_message()
            .expect("the session queued the CALL last");
        self.scratch.clear();
        codec.encode(&call, &mut self.scratch);
        let size = self.scratch.len();
        if size > max {
            self.session.forget_call(request);
            return Err(CommandError::PayloadTooLarge { size, max });
        }
        if let Err(e) = self.framing.send_payload(codec, &self.scratch) {
            let now = self.now.max(self.session.now());
            log::warn!("cannot send CALL: {e}");
            self.end_transport(now, TransportError::Send(e));
        }
        Ok(request)
    }

    /// Sends one more part of a progressive call's input like
    /// [`Session::call_part`], checking first that it fits what the
    /// router accepts (else [`CommandError::PayloadTooLarge`], nothing
    /// sent, the call goes on).
    pub fn call_part(
        &mut self,
        request: RequestId,
        args: List,
        kwargs: Dict,
        last: bool,
    ) -> Result<(), CommandError> {
        let (Some(codec), Some(max)) = (self.codec, self.peer_max_len) else {
            return self.session.call_part(request, args, kwargs, last);
        };
        self.pump();
        let part = self.session.part_message(request, args, kwargs, last)?;
        self.scratch.clear();
        codec.encode(&part, &mut self.scratch);
        let size = self.scratch.len();
        if size > max {
            return Err(CommandError::PayloadTooLarge { size, max });
        }
        self.session.commit_part(request, last);
        if let Err(e) = self.framing.send_payload(codec, &self.scratch) {
            let now = self.now.max(self.session.now());
            log::warn!("cannot send CALL: {e}");
            self.end_transport(now, TransportError::Send(e));
        }
        Ok(())
    }

    /// Publishes like [`Session::publish`], but first checks that the
    /// PUBLISH fits what the router accepts
    /// ([`peer_max_message_size`](Self::peer_max_message_size)): a larger
    /// one fails at once with [`CommandError::PayloadTooLarge`], nothing is
    /// queued and the session goes on.
    pub fn publish(
        &mut self,
        topic: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<RequestId, CommandError> {
        let (Some(codec), Some(max)) = (self.codec, self.peer_max_len) else {
            return self.session.publish(topic, args, kwargs, options);
        };
        self.pump();
        let request = self.session.publish(topic, args, kwargs, options)?;
        match self.send_measured(codec, max, "PUBLISH") {
            Ok(()) => Ok(request),
            Err(e) => {
                self.session.forget_publish(request);
                Err(e)
            }
        }
    }

    /// Answers an invocation like [`Session::yield_result`], but first
    /// checks that the YIELD fits what the router accepts
    /// ([`peer_max_message_size`](Self::peer_max_message_size)): for a
    /// larger one the invocation is answered with ERROR
    /// `wamp.error.payload_size_exceeded` instead (the reason in
    /// `args[0]`), this returns [`CommandError::PayloadTooLarge`] and the
    /// session goes on.
    pub fn yield_result(
        &mut self,
        request: RequestId,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<(), CommandError> {
        let (Some(codec), Some(max)) = (self.codec, self.peer_max_len) else {
            return self.session.yield_result(request, args, kwargs, options);
        };
        self.pump();
        self.session.yield_result(request, args, kwargs, options)?;
        let result = self.send_measured(codec, max, "YIELD");
        if let Err(CommandError::PayloadTooLarge { size, max }) = result {
            log::warn!(
                "the result of invocation {} is {size} bytes, the router accepts at most {max}: \
                 answered with {}",
                request.0,
                super::error::ERROR_PAYLOAD_SIZE_EXCEEDED
            );
            self.session.yield_too_large(request, size, max);
            self.pump();
        }
        result
    }

    /// Encodes the message the session queued last (the only one queued:
    /// the caller pumped before issuing it) and sends it if it is at most
    /// `max` bytes; else drops it and fails with
    /// [`CommandError::PayloadTooLarge`].
    fn send_measured(&mut self, codec: Codec, max: usize, what: &str) -> Result<(), CommandError> {
        let message = self
            .session
            .poll_message()
            .expect("the session queued the message last");
        self.scratch.clear();
        codec.encode(&message, &mut self.scratch);
        let size = self.scratch.len();
        if size > max {
            return Err(CommandError::PayloadTooLarge { size, max });
        }
        if let Err(e) = self.framing.send_payload(codec, &self.scratch) {
            let now = self.now.max(self.session.now());
            log::warn!("cannot send {what}: {e}");
            self.end_transport(now, TransportError::Send(e));
        }
        Ok(())
    }

    /// The largest message the router accepts, in bytes, once connected:
    /// what it announced in the RawSocket handshake; `None` over
    /// WebSocket, which announces no maximum.
    pub fn peer_max_message_size(&self) -> Option<usize> {
        self.peer_max_len
    }

    /// Moves what the session queued into the framing (once connected),
    /// and closes the framing once the session has ended.
    fn pump(&mut self) {
        // Commands that end the session carry their own `now`.
        let now = self.now.max(self.session.now());
        if let Some(codec) = self.codec {
            while let Some(msg) = self.session.poll_message() {
                if let Err(e) = self.framing.send(codec, &msg, &mut self.scratch) {
                    // E.g. too large for the peer: the transport is unusable.
                    log::warn!("cannot send {}: {e}", msg.name());
                    self.end_transport(now, TransportError::Send(e));
                }
            }
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push_back(e);
        }
        if self.session.is_closed() && !self.close_started && !self.framing_closed {
            self.close_started = true;
            self.framing.close(now, ws::CloseCode::NORMAL);
            // A RawSocket ends at once.
            self.drain_framing(now);
        }
    }

    /// Closes the framing because of `error` and ends the session with it.
    fn end_transport(&mut self, now: Instant, error: TransportError) {
        let code = match &error {
            TransportError::Send(_) | TransportError::NoWampSubprotocol => {
                ws::CloseCode::POLICY_VIOLATION
            }
            _ => ws::CloseCode::PROTOCOL_ERROR,
        };
        self.framing.close(now, code);
        self.close_started = true;
        self.session
            .handle_transport_closed(now, TransportClosed::failed(false, error));
        // A RawSocket ends at once: take its Closed event now, or the
        // session's end would wait for a transport event that never comes.
        self.drain_framing(now);
    }

    fn handle_payload(&mut self, now: Instant, payload: &[u8]) {
        let Some(codec) = self.codec else {
            return;
        };
        match codec.decode(payload) {
            Ok(messages) => {
                for m in messages {
                    self.session.handle_message(now, m);
                }
            }
            Err(e) => self.session.handle_decode_error(now, e),
        }
    }

    fn process(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.drain_framing(now);
        self.pump();
    }

    fn drain_framing(&mut self, now: Instant) {
        while let Some(event) = self.framing.poll_event() {
            match event {
                FramingEvent::Connected(Some(codec), peer_max_len) => {
                    self.codec = Some(codec);
                    self.peer_max_len = peer_max_len;
                }
                FramingEvent::Connected(None, _) => {
                    self.end_transport(now, TransportError::NoWampSubprotocol);
                }
                FramingEvent::Payload(payload) => self.handle_payload(now, &payload),
                FramingEvent::Closed(closed) => {
                    self.framing_closed = true;
                    self.session.handle_transport_closed(now, closed);
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
        self.process(now);
    }

    fn handle_eof(&mut self, now: Instant) {
        self.framing.handle_eof(now);
        self.process(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.framing.handle_timeout(now);
        self.session.handle_timeout(now);
        self.process(now);
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        self.pump();
        self.framing.poll_transmit(buf)
    }

    fn queued_output(&self) -> usize {
        self.framing.queued_output()
    }

    fn poll_event(&mut self) -> Option<SessionEvent> {
        self.pump();
        match self.events.front() {
            Some(SessionEvent::Closed(_)) if !self.framing_closed => None,
            _ => self.events.pop_front(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.framing.poll_timeout(), self.session.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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

//! The router's side of one WAMP transport: WebSocket or RawSocket server
//! framing plus the negotiated serializer, as a [`Machine`] that turns
//! bytes into [`Message`]s and back. Sessions and routing live in the
//! router; this only speaks the transport.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::codec::Codec;
use super::error::ERROR_PROTOCOL_VIOLATION;
use super::framing::{Framing, FramingEvent};
use super::message::Message;
use super::raw::RawMessage;
use super::serializer::Serializer;
use super::transport::{SendError, TransportClosed, TransportError};
use super::value::{Dict, Value};
use crate::{CloseOrder, Machine, Rng, rawsocket, ws};

/// Every WAMP WebSocket subprotocol we serve, in order of preference.
pub fn server_subprotocols() -> Vec<String> {
    let mut all = Vec::new();
    for &s in Serializer::ALL {
        for batched in [false, true] {
            all.push(s.subprotocol(batched).to_owned());
        }
    }
    all
}

/// What a [`ServerConnection`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The transport handshake finished with this codec.
    Connected(Codec),
    /// A message from the client.
    Message(Message),
    /// A message from the client, its payload kept encoded (after
    /// [`ServerConnection::set_raw_payloads`]).
    RawMessage(RawMessage),
    /// The transport ended; the last event. A client that sent something
    /// that does not decode gets ABORT `wamp.error.protocol_violation` and
    /// is closed with [`TransportError::Decode`].
    Closed(TransportClosed),
}

/// One client transport of a router.
#[derive(Debug)]
pub struct ServerConnection {
    framing: Framing,
    codec: Option<Codec>,
    events: VecDeque<ServerEvent>,
    closed: bool,
    scratch: Vec<u8>,
    /// The largest message the client accepts, if it announced one
    /// (RawSocket).
    peer_max_len: Option<usize>,
    /// Messages are reported as [`ServerEvent::RawMessage`].
    raw_payloads: bool,
}

impl ServerConnection {
    /// A WebSocket transport; the client must offer a `wamp.2.*`
    /// subprotocol (others get HTTP 400, as Crossbar.io answers).
    pub fn websocket(mut config: ws::ServerConfig, rng: Rng, now: Instant) -> Self {
        config.subprotocols = server_subprotocols();
        config.defer_accept = true;
        Self::new(Framing::WebSocket(Box::new(ws::Connection::server(
            config, rng, now,
        ))))
    }

    /// A RawSocket transport accepting JSON, MessagePack and CBOR.
    pub fn rawsocket(mut config: rawsocket::ServerConfig, now: Instant) -> Self {
        config.serializers = Serializer::ALL.iter().map(|s| s.rawsocket_id()).collect();
        Self::new(Framing::RawSocket(Box::new(rawsocket::Connection::server(
            config, now,
        ))))
    }

    fn new(framing: Framing) -> Self {
        Self {
            framing,
            codec: None,
            events: VecDeque::new(),
            closed: false,
            scratch: Vec::new(),
            raw_payloads: false,
            peer_max_len: None,
        }
    }

    /// The negotiated codec, once connected.
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }

    /// The largest message the client accepts, in bytes, once connected:
    /// what it announced in the RawSocket handshake; `None` over
    /// WebSocket, which announces no maximum. Tell the router core
    /// ([`Router::handle_connected`](super::router::Router::handle_connected)).
    pub fn peer_max_message_size(&self) -> Option<usize> {
        self.peer_max_len
    }

    /// Report the client's messages as [`ServerEvent::RawMessage`]: the
    /// envelope decoded, `args`/`kwargs` validated and kept as the bytes
    /// they came in ([`Codec::decode_raw`]), for a router that forwards
    /// them ([`Router::handle_raw_message`](super::router::Router::handle_raw_message)).
    /// Off by default ([`ServerEvent::Message`]).
    pub fn set_raw_payloads(&mut self, on: bool) {
        self.raw_payloads = on;
    }

    /// Encodes and frames a message for the client; returns the encoded
    /// payload's length. Fails when the transport is not open or the
    /// message is too large for the client.
    pub fn send(&mut self, message: &Message) -> Result<usize, SendError> {
        let Some(codec) = self.codec.filter(|_| !self.closed) else {
            return Err(SendError::NotConnected);
        };
        self.framing.send(codec, message, &mut self.scratch)
    }

    /// Frames a payload already encoded with this connection's codec, e.g.
    /// one the router core queued
    /// ([`Router::poll_transmit_payload`](super::router::Router::poll_transmit_payload)).
    /// Fails when the transport is not open or the payload is too large
    /// for the client.
    pub fn send_payload(&mut self, payload: &[u8]) -> Result<(), SendError> {
        let Some(codec) = self.codec.filter(|_| !self.closed) else {
            return Err(SendError::NotConnected);
        };
        self.framing.send_payload(codec, payload)
    }

    /// Ends the transport after whatever was sent so far; a WebSocket
    /// closes with `code` (e.g. from
    /// [`CloseReason::close_code`](super::router::CloseReason::close_code)).
    pub fn close(&mut self, now: Instant, code: ws::CloseCode) {
        self.framing.close(now, code);
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.framing.poll_event() {
            if self.closed {
                continue; // failed already: the rest is not delivered
            }
            match event {
                FramingEvent::Request(request) => self.answer_request(now, &request),
                FramingEvent::Connected(Some(codec), peer_max_len) => {
                    self.codec = Some(codec);
                    self.peer_max_len = peer_max_len;
                    self.events.push_back(ServerEvent::Connected(codec));
                }
                // Only WAMP subprotocols are accepted, so this cannot
                // happen; treat it as the end of a useless transport.
                FramingEvent::Connected(None, _) => {
                    self.fail(now, TransportError::NoWampSubprotocol);
                }
                FramingEvent::Payload(payload) => self.push_payload(now, payload),
                FramingEvent::Closed(closed) => {
                    self.closed = true;
                    self.events.push_back(ServerEvent::Closed(closed));
                }
            }
        }
    }

    /// Ends the transport because the client broke it: what it sent so far
    /// is delivered, then ABORT (for a message that does not decode) and
    /// the close; [`ServerEvent::Closed`] with `error` comes at once.
    fn fail(&mut self, now: Instant, error: TransportError) {
        log::debug!("closing a WAMP transport: {error}");
        if let (TransportError::Decode(e), Some(codec)) = (&error, self.codec) {
            let mut details = Dict::new();
            details.insert(
                "message".into(),
                Value::String(format!("undecodable message: {e}")),
            );
            let abort = Message::Abort {
                details,
                reason: ERROR_PROTOCOL_VIOLATION.to_owned(),
            };
            if let Err(e) = self.framing.send(codec, &abort, &mut self.scratch) {
                log::debug!("cannot send ABORT: {e}");
            }
        }
        self.framing.close(now, ws::CloseCode::PROTOCOL_ERROR);
        self.closed = true;
        self.events
            .push_back(ServerEvent::Closed(TransportClosed::failed(true, error)));
    }

    /// Accepts a WebSocket upgrade that offers a WAMP subprotocol (the
    /// first of ours the client offered); anything else gets HTTP 400.
    fn answer_request(&mut self, now: Instant, request: &ws::HandshakeRequest) {
        let Some(ws) = self.framing.websocket_mut() else {
            return;
        };
        let offered = request.subprotocols();
        let chosen = server_subprotocols()
            .into_iter()
            .find(|p| offered.contains(&p.as_str()));
        let result = match chosen {
            Some(p) => ws.accept(
                now,
                ws::Accept {
                    subprotocol: Some(p),
                    headers: Vec::new(),
                },
            ),
            None => ws.reject(
                400,
                &format!(
                    "This server only speaks WebSocket subprotocols {}",
                    server_subprotocols().join(", ")
                ),
            ),
        };
        if let Err(e) = result {
            log::debug!("handshake answer failed: {e}");
        }
    }

    fn push_payload(&mut self, now: Instant, payload: Vec<u8>) {
        let Some(codec) = self.codec else {
            return;
        };
        if self.raw_payloads {
            match codec.decode_raw(payload) {
                Ok(messages) => self
                    .events
                    .extend(messages.into_iter().map(ServerEvent::RawMessage)),
                Err(e) => self.fail(now, TransportError::Decode(e)),
            }
            return;
        }
        match codec.decode(&payload) {
            Ok(messages) => self
                .events
                .extend(messages.into_iter().map(ServerEvent::Message)),
            Err(e) => self.fail(now, TransportError::Decode(e)),
        }
    }
}

impl Machine for ServerConnection {
    type Event = ServerEvent;

    fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        self.framing.handle_bytes(now, data);
        self.drain(now);
    }

    fn handle_eof(&mut self, now: Instant) {
        self.framing.handle_eof(now);
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.framing.handle_timeout(now);
        self.drain(now);
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        self.framing.poll_transmit(buf)
    }

    fn queued_output(&self) -> usize {
        self.framing.queued_output()
    }

    fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.framing.poll_timeout()
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn close_order(&self) -> CloseOrder {
        CloseOrder::CloseFirst
    }

    fn linger(&self) -> Duration {
        self.framing.linger()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod tests {
    use super::*;
    use crate::wamp::{ClientConnection, Dict, SessionConfig, SessionEvent, SessionId};

    fn pump(client: &mut ClientConnection, server: &mut ServerConnection, now: Instant) {
        loop {
            let mut buf = Vec::new();
            let a = client.poll_transmit(&mut buf);
            server.handle_bytes(now, &buf);
            buf.clear();
            let b = server.poll_transmit(&mut buf);
            client.handle_bytes(now, &buf);
            if a + b == 0 {
                break;
            }
        }
    }

    fn join_over(mut client: ClientConnection, mut server: ServerConnection) {
        let now = Instant::now();
        pump(&mut client, &mut server, now);
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Connected(_))
        ));
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Message(Message::Hello { .. }))
        ));
        server
            .send(&Message::Welcome {
                session: 5,
                details: Dict::new(),
            })
            .unwrap();
        pump(&mut client, &mut server, now);
        assert!(matches!(
            client.poll_event(),
            Some(SessionEvent::Joined {
                session: SessionId(5),
                ..
            })
        ));
    }

    #[test]
    fn client_joins_over_every_transport_and_serializer() {
        let now = Instant::now();
        for codec in [
            Codec::new(Serializer::Json),
            Codec::batched(Serializer::Json),
            Codec::new(Serializer::MsgPack),
            Codec::batched(Serializer::Cbor),
        ] {
            let client = ClientConnection::websocket(
                ws::ClientConfig::default(),
                &[codec],
                SessionConfig::new("realm1"),
                Rng::from_seed(1),
                now,
            );
            let server =
                ServerConnection::websocket(ws::ServerConfig::default(), Rng::from_seed(2), now);
            join_over(client, server);
        }
        for s in [Serializer::Json, Serializer::MsgPack, Serializer::Cbor] {
            let client = ClientConnection::rawsocket(
                rawsocket::ClientConfig::new(1),
                s,
                SessionConfig::new("realm1"),
                now,
            );
            let server = ServerConnection::rawsocket(rawsocket::ServerConfig::new(vec![]), now);
            join_over(client, server);
        }
    }

    #[test]
    fn non_wamp_websocket_clients_get_400() {
        let now = Instant::now();
        let mut client =
            ws::Connection::client(ws::ClientConfig::default(), Rng::from_seed(1), now);
        let mut server =
            ServerConnection::websocket(ws::ServerConfig::default(), Rng::from_seed(2), now);
        let mut buf = Vec::new();
        let _ = client.poll_transmit(&mut buf);
        server.handle_bytes(now, &buf);
        buf.clear();
        let _ = server.poll_transmit(&mut buf);
        assert!(buf.starts_with(b"HTTP/1.1 400"));
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Closed(TransportClosed { error: Some(_), .. }))
        ));
    }

    #[test]
    fn garbage_is_reported_invalid() {
        let now = Instant::now();
        let mut server = ServerConnection::rawsocket(rawsocket::ServerConfig::new(vec![]), now);
        server.handle_bytes(now, &[0x7F, 0xF1, 0, 0]);
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Connected(_))
        ));
        server.handle_bytes(now, &[0, 0, 0, 3, b'[', b'x', b']']);
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Closed(TransportClosed {
                error: Some(TransportError::Decode(_)),
                ..
            }))
        ));
        assert!(server.is_closed());
        // The client got ABORT wamp.error.protocol_violation.
        let mut buf = Vec::new();
        let _ = server.poll_transmit(&mut buf);
        assert!(String::from_utf8_lossy(&buf).contains("wamp.error.protocol_violation"));
    }
}

//! The transport under a WAMP peer — WebSocket or RawSocket — seen the
//! same way by the client ([`ClientConnection`](super::ClientConnection))
//! and the router side ([`ServerConnection`](super::ServerConnection)):
//! payloads in, encoded messages out, one event type.

use std::time::{Duration, Instant};

use super::codec::Codec;
use super::message::Message;
use super::serializer::Serializer;
use super::transport::{SendError, TransportClosed};
use crate::{CloseOrder, Machine, rawsocket, ws};

/// WebSocket or RawSocket framing, either role.
#[derive(Debug)]
pub(crate) enum Framing {
    WebSocket(Box<ws::Connection>),
    RawSocket(Box<rawsocket::Connection>),
}

/// What the framing reports, whatever it is.
#[derive(Debug)]
pub(crate) enum FramingEvent {
    /// A WebSocket server received an upgrade request: accept or reject it
    /// with [`Framing::websocket_mut`].
    Request(ws::HandshakeRequest),
    /// The transport handshake finished; the codec the peers agreed on, if
    /// it is a WAMP one, and the largest message the peer accepts, if it
    /// announced one (RawSocket).
    Connected(Option<Codec>, Option<usize>),
    /// One WebSocket message or RawSocket frame.
    Payload(Vec<u8>),
    /// The transport ended.
    Closed(TransportClosed),
}

impl Framing {
    /// The WebSocket connection, when that is the framing.
    pub(crate) fn websocket_mut(&mut self) -> Option<&mut ws::Connection> {
        match self {
            Framing::WebSocket(ws) => Some(ws),
            Framing::RawSocket(_) => None,
        }
    }

    /// Encodes `message` (reusing `scratch`) and frames it: a text frame
    /// for JSON, binary otherwise, or one RawSocket frame. Returns the
    /// payload's length.
    pub(crate) fn send(
        &mut self,
        codec: Codec,
        message: &Message,
        scratch: &mut Vec<u8>,
    ) -> Result<usize, SendError> {
        scratch.clear();
        codec.encode(message, scratch);
        self.send_payload(codec, scratch).map(|()| scratch.len())
    }

    /// Frames a payload encoded with `codec`. A JSON payload must be UTF-8
    /// (what our encoder writes); one that is not is refused.
    pub(crate) fn send_payload(&mut self, codec: Codec, payload: &[u8]) -> Result<(), SendError> {
        match self {
            Framing::WebSocket(ws) if codec.serializer.is_binary() => {
                ws.send_binary(payload).map_err(SendError::WebSocket)
            }
            Framing::WebSocket(ws) => match std::str::from_utf8(payload) {
                Ok(text) => ws.send_text(text).map_err(SendError::WebSocket),
                Err(_) => Err(SendError::NotUtf8),
            },
            Framing::RawSocket(rs) => rs.send(payload).map_err(SendError::RawSocket),
        }
    }

    /// Ends the transport: a WebSocket close with `code` (if still open),
    /// or the end of the RawSocket.
    pub(crate) fn close(&mut self, now: Instant, code: ws::CloseCode) {
        match self {
            Framing::WebSocket(ws) => {
                if ws.is_open() {
                    let _ = ws.close(now, code, "");
                }
            }
            Framing::RawSocket(rs) => rs.close(),
        }
    }

    /// The next event.
    pub(crate) fn poll_event(&mut self) -> Option<FramingEvent> {
        loop {
            let event = match self {
                Framing::WebSocket(ws) => match ws.poll_event()? {
                    ws::Event::Request(request) => FramingEvent::Request(request),
                    ws::Event::Connected(handshake) => FramingEvent::Connected(
                        handshake
                            .subprotocol
                            .as_deref()
                            .and_then(Codec::from_subprotocol),
                        None,
                    ),
                    ws::Event::Message(m) => FramingEvent::Payload(m.into_bytes()),
                    ws::Event::Closed(closed) => FramingEvent::Closed((&closed).into()),
                    ws::Event::Ping(_) | ws::Event::Pong(_) => continue,
                },
                Framing::RawSocket(rs) => match rs.poll_event()? {
                    rawsocket::Event::Connected {
                        serializer,
                        peer_max_len,
                    } => FramingEvent::Connected(
                        Serializer::from_rawsocket_id(serializer).map(Codec::new),
                        Some(peer_max_len),
                    ),
                    rawsocket::Event::Message(m) => FramingEvent::Payload(m),
                    rawsocket::Event::Closed(closed) => FramingEvent::Closed(closed.into()),
                    rawsocket::Event::Pong(_) => continue,
                },
            };
            return Some(event);
        }
    }
}

/// Forwards the byte-level half of [`Machine`] to whichever framing is in
/// use; the owners add their own events.
macro_rules! forward {
    ($self:ident, $f:ident => $e:expr) => {
        match $self {
            Framing::WebSocket($f) => $e,
            Framing::RawSocket($f) => $e,
        }
    };
}

impl Framing {
    pub(crate) fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        forward!(self, f => f.handle_bytes(now, data));
    }

    pub(crate) fn handle_eof(&mut self, now: Instant) {
        forward!(self, f => f.handle_eof(now));
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        forward!(self, f => f.handle_timeout(now));
    }

    pub(crate) fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        forward!(self, f => f.poll_transmit(buf))
    }

    pub(crate) fn queued_output(&self) -> usize {
        forward!(self, f => f.queued_output())
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        forward!(self, f => f.poll_timeout())
    }

    pub(crate) fn close_order(&self) -> CloseOrder {
        match self {
            Framing::WebSocket(f) => Machine::close_order(f.as_ref()),
            Framing::RawSocket(f) => Machine::close_order(f.as_ref()),
        }
    }

    pub(crate) fn linger(&self) -> Duration {
        match self {
            Framing::WebSocket(f) => Machine::linger(f.as_ref()),
            Framing::RawSocket(f) => Machine::linger(f.as_ref()),
        }
    }
}

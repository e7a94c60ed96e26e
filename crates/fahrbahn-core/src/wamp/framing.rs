//! The transport under a WAMP peer — WebSocket or RawSocket — seen the
//! same way by the client ([`ClientConnection`](super::ClientConnection))
//! and the router side ([`ServerConnection`](super::ServerConnection)):
//! payloads in, encoded messages out, one event type.

use std::time::{Duration, Instant};

use super::error::DecodeError;
use super::message::Message;
use super::serializer::Serializer;
use crate::{CloseOrder, Machine, rawsocket, ws};

/// WebSocket or RawSocket framing, either role.
#[derive(Debug)]
pub(crate) enum Framing {
    WebSocket(Box<ws::Connection>),
    RawSocket(rawsocket::Connection),
}

/// What the framing reports, whatever it is.
#[derive(Debug)]
pub(crate) enum FramingEvent {
    /// A WebSocket server received an upgrade request: accept or reject it
    /// with [`Framing::websocket_mut`].
    Request(ws::HandshakeRequest),
    /// The transport handshake finished; the serializer the peers agreed
    /// on, if it is a WAMP one.
    Connected(Option<(Serializer, bool)>),
    /// One WebSocket message or RawSocket frame.
    Payload(Vec<u8>),
    /// The transport ended: why, in words.
    Closed {
        /// Whether it ended abnormally.
        error: bool,
        /// A description for logs and session errors.
        why: String,
    },
}

/// Decodes one payload into its messages (several when batched).
pub(crate) fn decode(
    serializer: Serializer,
    batched: bool,
    payload: &[u8],
) -> Result<Vec<Message>, DecodeError> {
    if batched {
        serializer.decode_batched(payload)
    } else {
        serializer.decode(payload).map(|m| vec![m])
    }
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
    /// for JSON, binary otherwise, or one RawSocket frame.
    pub(crate) fn send(
        &mut self,
        serializer: Serializer,
        batched: bool,
        message: &Message,
        scratch: &mut Vec<u8>,
    ) -> Result<(), String> {
        scratch.clear();
        if batched {
            serializer.encode_batched(message, scratch);
        } else {
            serializer.encode(message, scratch);
        }
        match self {
            Framing::WebSocket(ws) if serializer.is_binary() => {
                ws.send_binary(scratch).map_err(|e| e.to_string())
            }
            Framing::WebSocket(ws) => match std::str::from_utf8(scratch) {
                Ok(text) => ws.send_text(text).map_err(|e| e.to_string()),
                Err(_) => Err("JSON encoder produced invalid UTF-8".to_owned()),
            },
            Framing::RawSocket(rs) => rs.send(scratch).map_err(|e| e.to_string()),
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
                            .and_then(Serializer::from_subprotocol),
                    ),
                    ws::Event::Message(m) => FramingEvent::Payload(m.into_bytes()),
                    ws::Event::Closed(closed) => FramingEvent::Closed {
                        error: closed.error.is_some(),
                        why: match &closed.error {
                            Some(e) => e.to_string(),
                            None => format!("WebSocket closed ({})", closed.code),
                        },
                    },
                    ws::Event::Ping(_) | ws::Event::Pong(_) => continue,
                },
                Framing::RawSocket(rs) => match rs.poll_event()? {
                    rawsocket::Event::Connected { serializer, .. } => FramingEvent::Connected(
                        Serializer::from_rawsocket_id(serializer).map(|s| (s, false)),
                    ),
                    rawsocket::Event::Message(m) => FramingEvent::Payload(m),
                    rawsocket::Event::Closed(error) => FramingEvent::Closed {
                        error: error.is_some(),
                        why: match error {
                            Some(e) => e.to_string(),
                            None => "RawSocket closed".to_owned(),
                        },
                    },
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

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        forward!(self, f => f.poll_timeout())
    }

    pub(crate) fn close_order(&self) -> CloseOrder {
        match self {
            Framing::WebSocket(f) => Machine::close_order(f.as_ref()),
            Framing::RawSocket(f) => Machine::close_order(f),
        }
    }

    pub(crate) fn linger(&self) -> Duration {
        match self {
            Framing::WebSocket(f) => Machine::linger(f.as_ref()),
            Framing::RawSocket(f) => Machine::linger(f),
        }
    }
}

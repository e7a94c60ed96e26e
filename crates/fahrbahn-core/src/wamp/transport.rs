//! How the transport under a WAMP peer ends, and why sending on it fails:
//! one shape for WebSocket and RawSocket alike.

use std::fmt;

use super::error::DecodeError;
use crate::{rawsocket, ws};

/// Why the transport under a WAMP session ended abnormally.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// The WebSocket connection failed (protocol error, timeout, reset…).
    WebSocket(ws::Error),
    /// The RawSocket connection failed (refused handshake, bad frame,
    /// timeout, reset…).
    RawSocket(rawsocket::Error),
    /// The WebSocket handshake agreed on no WAMP subprotocol.
    NoWampSubprotocol,
    /// The peer sent a payload that is not a WAMP message.
    Decode(DecodeError),
    /// A message could not be sent (e.g. larger than the peer accepts).
    Send(SendError),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::WebSocket(e) => write!(f, "WebSocket: {e}"),
            TransportError::RawSocket(e) => write!(f, "RawSocket: {e}"),
            TransportError::NoWampSubprotocol => {
                f.write_str("the WebSocket handshake chose no WAMP subprotocol (wamp.2.*)")
            }
            TransportError::Decode(e) => write!(f, "undecodable message: {e}"),
            TransportError::Send(e) => write!(f, "cannot send: {e}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::WebSocket(e) => Some(e),
            TransportError::RawSocket(e) => Some(e),
            TransportError::Decode(e) => Some(e),
            TransportError::Send(e) => Some(e),
            TransportError::NoWampSubprotocol => None,
        }
    }
}

/// How the transport under a WAMP peer ended: the last event of a
/// [`ServerConnection`](super::ServerConnection), and what a session that
/// outlived its transport reports
/// ([`SessionError::TransportClosed`](super::SessionError::TransportClosed)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportClosed {
    /// Whether the peer ended it.
    pub by_peer: bool,
    /// The WebSocket close code (`None` for RawSocket, which has none).
    pub code: Option<ws::CloseCode>,
    /// Why it ended abnormally; `None` for a clean close.
    pub error: Option<TransportError>,
}

impl TransportClosed {
    /// Whether the transport ended cleanly.
    pub fn is_clean(&self) -> bool {
        self.error.is_none()
    }

    /// An abnormal end, by us or the peer, with no close code.
    pub(crate) fn failed(by_peer: bool, error: TransportError) -> Self {
        Self {
            by_peer,
            code: None,
            error: Some(error),
        }
    }
}

impl From<&ws::Closed> for TransportClosed {
    fn from(closed: &ws::Closed) -> Self {
        Self {
            by_peer: closed.by_peer,
            code: Some(closed.code),
            error: closed.error.clone().map(TransportError::WebSocket),
        }
    }
}

impl From<rawsocket::Closed> for TransportClosed {
    fn from(closed: rawsocket::Closed) -> Self {
        Self {
            by_peer: closed.by_peer,
            code: None,
            error: closed.error.map(TransportError::RawSocket),
        }
    }
}

impl fmt::Display for TransportClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.by_peer { "the peer" } else { "us" };
        match &self.error {
            None => write!(f, "transport closed by {who}")?,
            Some(e) => write!(f, "transport failed ({e})")?,
        }
        if let Some(code) = self.code {
            write!(f, ", WebSocket close code {code}")?;
        }
        Ok(())
    }
}

/// A message could not be framed for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The transport handshake has not finished, or the transport ended.
    NotConnected,
    /// The WebSocket connection refused it.
    WebSocket(ws::SendError),
    /// The RawSocket connection refused it (e.g. longer than the peer
    /// accepts).
    RawSocket(rawsocket::Error),
    /// A payload for a JSON WebSocket connection was not UTF-8, so it
    /// cannot go in a text frame (a payload not encoded by our JSON
    /// encoder).
    NotUtf8,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotConnected => f.write_str("the transport is not connected"),
            SendError::WebSocket(e) => write!(f, "WebSocket: {e}"),
            SendError::RawSocket(e) => write!(f, "RawSocket: {e}"),
            SendError::NotUtf8 => f.write_str("a JSON payload must be UTF-8 to go in a text frame"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::WebSocket(e) => Some(e),
            SendError::RawSocket(e) => Some(e),
            SendError::NotConnected | SendError::NotUtf8 => None,
        }
    }
}

//! Errors of the async layer: core errors plus I/O, URL and TLS errors.

use std::fmt;
use std::io;

use fahrbahn_core::ws;

/// Everything that can go wrong with an async WebSocket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The connection ended abnormally (protocol error, failed handshake,
    /// timeout); see [`ws::Error`].
    WebSocket(ws::Error),
    /// A command could not be carried out (e.g. sending after close).
    Send(ws::SendError),
    /// The URL could not be used.
    Url(String),
    /// TLS setup failed.
    Tls(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::WebSocket(e) => write!(f, "{e}"),
            Error::Send(e) => write!(f, "{e}"),
            Error::Url(e) => write!(f, "invalid URL: {e}"),
            Error::Tls(e) => write!(f, "TLS error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::WebSocket(e) => Some(e),
            Error::Send(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ws::Error> for Error {
    fn from(e: ws::Error) -> Self {
        Error::WebSocket(e)
    }
}

impl From<ws::SendError> for Error {
    fn from(e: ws::SendError) -> Self {
        Error::Send(e)
    }
}

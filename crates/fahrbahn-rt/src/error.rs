//! Errors of the async layer: core errors plus I/O, URL and TLS errors.

use std::fmt;
use std::io;

use fahrbahn_core::wamp::{ApplicationError, CommandError, SessionError};
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
    /// A WAMP request failed with an error URI (e.g.
    /// `wamp.error.no_such_procedure`, or an application's own error).
    Wamp(ApplicationError),
    /// The WAMP session ended abnormally (aborted, protocol violation,
    /// transport lost).
    Session(SessionError),
    /// The WAMP session has ended (reason URI); no more requests.
    SessionClosed(String),
    /// A WAMP command was used wrongly (e.g. an invalid URI).
    Command(CommandError),
    /// A payload could not be converted to or from the requested type.
    Decode(String),
    /// A router configuration is invalid.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::WebSocket(e) => write!(f, "{e}"),
            Error::Send(e) => write!(f, "{e}"),
            Error::Url(e) => write!(f, "invalid URL: {e}"),
            Error::Tls(e) => write!(f, "TLS error: {e}"),
            Error::Wamp(e) => write!(f, "WAMP error {e}"),
            Error::Session(e) => write!(f, "{e}"),
            Error::SessionClosed(reason) => write!(f, "WAMP session closed ({reason})"),
            Error::Command(e) => write!(f, "{e}"),
            Error::Decode(e) => write!(f, "payload conversion failed: {e}"),
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::WebSocket(e) => Some(e),
            Error::Send(e) => Some(e),
            Error::Wamp(e) => Some(e),
            Error::Session(e) => Some(e),
            Error::Command(e) => Some(e),
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

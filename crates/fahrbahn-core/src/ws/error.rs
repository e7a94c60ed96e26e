//! WebSocket errors, grouped by whose fault they are.

use std::fmt;

use super::message::CloseCode;

/// The peer broke RFC 6455 / RFC 7692. Each variant knows the close code the
/// connection was failed with ([`ProtocolError::close_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1/RSV2/RSV3 set without an extension that defines them.
    ReservedBits(u8),
    /// An opcode RFC 6455 does not define.
    UnknownOpcode(u8),
    /// A control frame with FIN clear.
    FragmentedControlFrame,
    /// A control frame with a payload over 125 bytes.
    ControlFrameTooLong(u64),
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new data frame while a fragmented message was in progress.
    ExpectedContinuation,
    /// A client sent an unmasked frame.
    UnmaskedFrame,
    /// A server sent a masked frame.
    MaskedFrame,
    /// A 64-bit payload length with the most significant bit set.
    InvalidLength,
    /// A close frame with a one-byte payload.
    CloseFrameTooShort,
    /// A close frame with a code not allowed on the wire.
    InvalidCloseCode(u16),
    /// A text message or close reason that is not UTF-8 (close 1007).
    InvalidUtf8,
    /// Compressed data that does not inflate (close 1007).
    InvalidCompressedData,
    /// A frame longer than the configured limit (close 1009).
    FrameTooBig {
        /// The frame's payload length.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message (after decompression) longer than the limit (close 1009).
    MessageTooBig {
        /// The configured limit.
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code the connection is failed with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::FrameTooBig { .. } | ProtocolError::MessageTooBig { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits(b) => {
                write!(
                    f,
                    "reserved bits {b:#05b} set without a negotiated extension"
                )
            }
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            ProtocolError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            ProtocolError::ControlFrameTooLong(n) => {
                write!(
                    f,
                    "control frame payload of {n} bytes (at most 125 allowed)"
                )
            }
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message was in progress")
            }
            ProtocolError::UnmaskedFrame => f.write_str("client sent an unmasked frame"),
            ProtocolError::MaskedFrame => f.write_str("server sent a masked frame"),
            ProtocolError::InvalidLength => f.write_str("64-bit payload length with MSB set"),
            ProtocolError::CloseFrameTooShort => f.write_str("close frame with 1-byte payload"),
            ProtocolError::InvalidCloseCode(c) => write!(f, "invalid close code {c}"),
            ProtocolError::InvalidUtf8 => f.write_str("invalid UTF-8 in text payload"),
            ProtocolError::InvalidCompressedData => {
                f.write_str("compressed payload does not inflate")
            }
            ProtocolError::FrameTooBig { len, limit } => {
                write!(f, "frame of {len} bytes exceeds the limit of {limit} bytes")
            }
            ProtocolError::MessageTooBig { limit } => {
                write!(f, "message exceeds the limit of {limit} bytes")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The opening handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The HTTP head exceeded the configured size limit.
    HeadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The HTTP head could not be parsed.
    MalformedHttp(String),
    /// The request was not a valid WebSocket upgrade (reason given).
    InvalidRequest(&'static str),
    /// The client asked for a WebSocket version other than 13.
    UnsupportedVersion,
    /// The response was not a valid WebSocket upgrade (reason given).
    InvalidResponse(&'static str),
    /// The server answered with a status other than 101.
    UnexpectedStatus(u16),
    /// Sec-WebSocket-Accept did not match the key we sent.
    AcceptMismatch,
    /// The server chose a subprotocol we did not offer.
    UnofferedSubprotocol(String),
    /// The extension negotiation was invalid (reason given).
    InvalidExtension(String),
    /// The application rejected the request with this HTTP status.
    Rejected(u16),
    /// The peer closed the connection during the handshake.
    ConnectionClosed,
}

impl HandshakeError {
    /// The HTTP status a server answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge { .. } => 431,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::Rejected(status) => *status,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::HeadTooLarge { limit } => {
                write!(f, "handshake head larger than {limit} bytes")
            }
            HandshakeError::MalformedHttp(e) => write!(f, "malformed HTTP head: {e}"),
            HandshakeError::InvalidRequest(why) => write!(f, "invalid upgrade request: {why}"),
            HandshakeError::UnsupportedVersion => {
                f.write_str("unsupported Sec-WebSocket-Version (only 13 is supported)")
            }
            HandshakeError::InvalidResponse(why) => write!(f, "invalid upgrade response: {why}"),
            HandshakeError::UnexpectedStatus(s) => {
                write!(f, "server answered HTTP {s} instead of 101")
            }
            HandshakeError::AcceptMismatch => f.write_str("Sec-WebSocket-Accept does not match"),
            HandshakeError::UnofferedSubprotocol(p) => {
                write!(f, "server chose subprotocol {p:?} which was not offered")
            }
            HandshakeError::InvalidExtension(e) => write!(f, "invalid extension negotiation: {e}"),
            HandshakeError::Rejected(s) => write!(f, "request rejected with HTTP {s}"),
            HandshakeError::ConnectionClosed => {
                f.write_str("connection closed during the opening handshake")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Why a connection ended abnormally.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol; the connection was failed with
    /// the error's close code.
    Protocol(ProtocolError),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The opening handshake did not finish in time.
    OpenTimeout,
    /// The peer did not answer our close frame in time.
    CloseTimeout,
    /// The peer did not answer a keepalive ping in time.
    PingTimeout,
    /// The transport ended without a close handshake.
    ConnectionReset,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::OpenTimeout => f.write_str("opening handshake timed out"),
            Error::CloseTimeout => f.write_str("peer did not answer the close frame in time"),
            Error::PingTimeout => f.write_str("peer did not answer a keepalive ping in time"),
            Error::ConnectionReset => f.write_str("connection closed without a close frame"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            Error::Handshake(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

/// A command was used wrongly (the application's mistake, not the peer's).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The opening handshake has not finished yet.
    NotOpen,
    /// The connection is closing or closed; nothing more can be sent.
    Closed,
    /// A ping/pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// A close code that may not be sent (see [`CloseCode::is_sendable`]).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    CloseReasonTooLong(usize),
    /// `accept`/`reject` called when no request was waiting.
    NoPendingRequest,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotOpen => f.write_str("the opening handshake has not finished"),
            SendError::Closed => f.write_str("the connection is closing or closed"),
            SendError::ControlPayloadTooLong(n) => {
                write!(f, "control payload of {n} bytes (at most 125 allowed)")
            }
            SendError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            SendError::CloseReasonTooLong(n) => {
                write!(f, "close reason of {n} bytes (at most 123 allowed)")
            }
            SendError::NoPendingRequest => f.write_str("no handshake request is waiting"),
        }
    }
}

impl std::error::Error for SendError {}

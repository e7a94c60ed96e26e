//! RawSocket errors.

use std::fmt;

/// The error codes a RawSocket server answers a handshake with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeErrorCode {
    /// 1: the serializer is not supported.
    SerializerUnsupported,
    /// 2: the maximum message length is unacceptable.
    MaxLengthUnacceptable,
    /// 3: reserved bits were used (an unsupported feature).
    ReservedBitsUsed,
    /// 4: the maximum connection count was reached.
    MaxConnectionCountReached,
    /// Any other (illegal) code.
    Other(u8),
}

impl HandshakeErrorCode {
    /// The code as sent on the wire (high nibble of the second byte).
    pub fn code(self) -> u8 {
        match self {
            HandshakeErrorCode::SerializerUnsupported => 1,
            HandshakeErrorCode::MaxLengthUnacceptable => 2,
            HandshakeErrorCode::ReservedBitsUsed => 3,
            HandshakeErrorCode::MaxConnectionCountReached => 4,
            HandshakeErrorCode::Other(c) => c,
        }
    }

    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            1 => HandshakeErrorCode::SerializerUnsupported,
            2 => HandshakeErrorCode::MaxLengthUnacceptable,
            3 => HandshakeErrorCode::ReservedBitsUsed,
            4 => HandshakeErrorCode::MaxConnectionCountReached,
            c => HandshakeErrorCode::Other(c),
        }
    }
}

impl fmt::Display for HandshakeErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeErrorCode::SerializerUnsupported => f.write_str("serializer unsupported"),
            HandshakeErrorCode::MaxLengthUnacceptable => {
                f.write_str("maximum message length unacceptable")
            }
            HandshakeErrorCode::ReservedBitsUsed => f.write_str("use of reserved bits"),
            HandshakeErrorCode::MaxConnectionCountReached => {
                f.write_str("maximum connection count reached")
            }
            HandshakeErrorCode::Other(c) => write!(f, "error code {c}"),
        }
    }
}

/// Why a RawSocket connection ended abnormally, or a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The first byte was not the magic 0x7F: not a RawSocket peer.
    BadMagic(u8),
    /// The server refused our handshake.
    Rejected(HandshakeErrorCode),
    /// We refused the client's handshake.
    Refused(HandshakeErrorCode),
    /// The server answered with a different serializer than we asked for.
    SerializerMismatch {
        /// What we asked for.
        requested: u8,
        /// What the server answered.
        answered: u8,
    },
    /// A frame header used reserved bits or an unknown frame type.
    BadFrameType(u8),
    /// A frame longer than the maximum we announced.
    FrameTooLong {
        /// The frame's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A message longer than the peer accepts (command error).
    MessageTooLong {
        /// The message's length.
        len: usize,
        /// The peer's maximum.
        max: usize,
    },
    /// The handshake did not finish in time.
    OpenTimeout,
    /// The peer did not answer a keepalive PING in time (`pong_timeout`).
    PingTimeout,
    /// The transport ended during the handshake or inside a frame.
    ConnectionReset,
    /// The connection is not open (command error).
    NotOpen,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadMagic(b) => {
                write!(
                    f,
                    "not a RawSocket peer (first byte {b:#04x}, expected 0x7f)"
                )
            }
            Error::Rejected(c) => write!(f, "server refused the handshake: {c}"),
            Error::Refused(c) => write!(f, "refused the client's handshake: {c}"),
            Error::SerializerMismatch {
                requested,
                answered,
            } => write!(
                f,
                "asked for serializer {requested}, server answered {answered}"
            ),
            Error::BadFrameType(t) => write!(f, "invalid frame type byte {t:#04x}"),
            Error::FrameTooLong { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            Error::MessageTooLong { len, max } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the peer's maximum of {max}"
                )
            }
            Error::OpenTimeout => f.write_str("RawSocket handshake timed out"),
            Error::PingTimeout => f.write_str("peer did not answer a keepalive ping in time"),
            Error::ConnectionReset => {
                f.write_str("transport ended during the handshake or inside a frame")
            }
            Error::NotOpen => f.write_str("the RawSocket connection is not open"),
        }
    }
}

impl std::error::Error for Error {}

//! What can go wrong in a client session: errors returned by peers and
//! applications, why a session ended abnormally, and misused commands.

use std::fmt;
use std::time::Duration;

use crate::wamp::error::{
    DecodeError, ERROR_CANNOT_AUTHENTICATE, ERROR_NETWORK_FAILURE, ERROR_PROTOCOL_VIOLATION,
    ERROR_TIMEOUT,
};
use crate::wamp::id::{RegistrationId, RequestId};
use crate::wamp::transport::TransportClosed;
use crate::wamp::value::{Dict, List, Value};

use super::event::RequestKind;

/// An error a peer returned for a request, or an application raised in a
/// procedure: the error URI with its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationError {
    /// The error URI, e.g. `wamp.error.no_such_procedure`.
    pub error: String,
    /// Positional payload.
    pub args: List,
    /// Keyword payload.
    pub kwargs: Dict,
    /// Details of the ERROR message.
    pub details: Dict,
}

impl ApplicationError {
    /// An error with just a URI.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            args: List::new(),
            kwargs: Dict::new(),
            details: Dict::new(),
        }
    }

    /// Adds positional payload.
    pub fn with_args(mut self, args: List) -> Self {
        self.args = args;
        self
    }

    /// Adds keyword payload.
    pub fn with_kwargs(mut self, kwargs: Dict) -> Self {
        self.kwargs = kwargs;
        self
    }
}

impl fmt::Display for ApplicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(Value::String(msg)) = self.args.first() {
            write!(f, ": {msg}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApplicationError {}

/// Why a session ended abnormally.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionError {
    /// The router aborted the session (e.g. `wamp.error.no_such_realm`,
    /// `wamp.error.not_authorized`).
    Aborted {
        /// The ABORT reason URI.
        reason: String,
        /// The `message` detail, if any.
        message: Option<String>,
    },
    /// The router broke the protocol; we aborted with
    /// `wamp.error.protocol_violation` and this explanation.
    ProtocolViolation(ProtocolViolation),
    /// The router sent a message that does not decode; we aborted with
    /// `wamp.error.protocol_violation`.
    Decode(DecodeError),
    /// The transport ended before the session did.
    TransportClosed(TransportClosed),
    /// No WELCOME within [`SessionConfig::join_timeout`](crate::wamp::SessionConfig::join_timeout); we aborted.
    JoinTimeout(Duration),
    /// No GOODBYE reply within [`SessionConfig::leave_timeout`](crate::wamp::SessionConfig::leave_timeout).
    LeaveTimeout(Duration),
    /// We could not answer the router's CHALLENGE (no handler, the handler
    /// failed, or a method we did not offer); we aborted with
    /// `wamp.error.cannot_authenticate`.
    CannotAuthenticate {
        /// The challenged method.
        authmethod: String,
        /// Why.
        message: String,
    },
}

impl SessionError {
    /// The WAMP URI describing this error.
    pub fn uri(&self) -> &str {
        match self {
            SessionError::Aborted { reason, .. } => reason,
            SessionError::ProtocolViolation(_) | SessionError::Decode(_) => {
                ERROR_PROTOCOL_VIOLATION
            }
            SessionError::TransportClosed(_) => ERROR_NETWORK_FAILURE,
            SessionError::JoinTimeout(_) | SessionError::LeaveTimeout(_) => ERROR_TIMEOUT,
            SessionError::CannotAuthenticate { .. } => ERROR_CANNOT_AUTHENTICATE,
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Aborted { reason, message } => {
                write!(f, "session aborted by the router: {reason}")?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                Ok(())
            }
            SessionError::ProtocolViolation(violation) => {
                write!(f, "the router broke the WAMP protocol: {violation}")
            }
            SessionError::Decode(e) => write!(f, "the router sent an undecodable message: {e}"),
            SessionError::TransportClosed(closed) => {
                write!(f, "the session ended with its transport: {closed}")
            }
            SessionError::JoinTimeout(d) => {
                write!(f, "the router did not welcome the session within {d:?}")
            }
            SessionError::LeaveTimeout(d) => {
                write!(f, "the router did not answer GOODBYE within {d:?}")
            }
            SessionError::CannotAuthenticate {
                authmethod,
                message,
            } => write!(f, "cannot answer the {authmethod} challenge: {message}"),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Decode(e) => Some(e),
            SessionError::ProtocolViolation(v) => Some(v),
            SessionError::TransportClosed(c) => c.error.as_ref().map(|e| e as _),
            _ => None,
        }
    }
}

/// A command was used wrongly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The session has not joined yet (or is authenticating).
    NotJoined,
    /// The session is leaving or closed.
    Closed,
    /// A URI that breaks the WAMP URI rules.
    InvalidUri(String),
    /// No such pending invocation (already answered?).
    UnknownInvocation(RequestId),
    /// No challenge is waiting for an answer.
    NoChallenge,
    /// No call with this request id is streaming its input (progressive
    /// call invocations: it was not started with `progress`, its last
    /// part was sent, or it ended).
    NotStreaming(RequestId),
    /// The message, encoded, is larger than the router accepts (the
    /// maximum it announced in its RawSocket handshake); nothing was sent.
    PayloadTooLarge {
        /// The encoded size, in bytes (an upper bound).
        size: usize,
        /// The most the router accepts, in bytes.
        max: usize,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NotJoined => f.write_str("the session has not joined a realm yet"),
            CommandError::Closed => f.write_str("the session is closing or closed"),
            CommandError::InvalidUri(u) => write!(f, "invalid URI {u:?}"),
            CommandError::UnknownInvocation(r) => {
                write!(f, "no pending invocation with request id {r}")
            }
            CommandError::NoChallenge => f.write_str("no authentication challenge is waiting"),
            CommandError::NotStreaming(r) => write!(
                f,
                "call {r} does not stream its input: start it with progress, and send no part after the last"
            ),
            CommandError::PayloadTooLarge { size, max } => write!(
                f,
                "the message is {size} bytes, more than the router accepts ({max} bytes, announced in its RawSocket handshake): send smaller arguments"
            ),
        }
    }
}

impl std::error::Error for CommandError {}

/// How the router broke the WAMP protocol, as a client session saw it. The
/// session aborts with `wamp.error.protocol_violation` and this text as the
/// ABORT's `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A message the session's state does not allow: anything but
    /// CHALLENGE, WELCOME or ABORT before the session joined, or a message
    /// only a client sends after.
    UnexpectedMessage {
        /// The message's name, e.g. `EVENT`.
        message: &'static str,
        /// Whether the session had joined (received WELCOME).
        joined: bool,
    },
    /// An answer (RESULT, REGISTERED, ERROR, …) to a request this session
    /// has not made, or has already had answered.
    UnknownRequest {
        /// What the answer says it answers.
        kind: RequestKind,
        /// The request id it names.
        request: RequestId,
    },
    /// An ERROR for a message type a client does not send as a request.
    ErrorForRequestType(u64),
    /// An INVOCATION for a registration this session does not hold.
    UnknownRegistration(RegistrationId),
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolViolation::UnexpectedMessage {
                message,
                joined: false,
            } => write!(f, "{message} before WELCOME"),
            ProtocolViolation::UnexpectedMessage {
                message,
                joined: true,
            } => write!(f, "unexpected {message} in an established session"),
            ProtocolViolation::UnknownRequest { kind, request } => {
                write!(f, "answer to unknown {kind} request {request}")
            }
            ProtocolViolation::ErrorForRequestType(code) => {
                write!(
                    f,
                    "ERROR for request type {code}, which a client does not send"
                )
            }
            ProtocolViolation::UnknownRegistration(id) => {
                write!(f, "INVOCATION for unknown registration {id}")
            }
        }
    }
}

impl std::error::Error for ProtocolViolation {}

//! WAMP errors: the standard error and close reason URIs, and
//! [`DecodeError`], the reason a message could not be decoded.
//!
//! `ERROR_*` constants are the `wamp.error.*` URIs (used in ERROR messages
//! and as ABORT reasons), `CLOSE_*` constants the `wamp.close.*` URIs
//! (GOODBYE and ABORT reasons).

use std::fmt;

/// `wamp.error.invalid_uri`: A URI that is not valid under the router's URI rules.
pub const ERROR_INVALID_URI: &str = "wamp.error.invalid_uri";
/// `wamp.error.no_such_procedure`: A CALL to a procedure nobody registered.
pub const ERROR_NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
/// `wamp.error.procedure_already_exists`: A REGISTER for a procedure that is already registered.
pub const ERROR_PROCEDURE_ALREADY_EXISTS: &str = "wamp.error.procedure_already_exists";
/// `wamp.error.no_such_registration`: An UNREGISTER for an unknown registration.
pub const ERROR_NO_SUCH_REGISTRATION: &str = "wamp.error.no_such_registration";
/// `wamp.error.no_such_subscription`: An UNSUBSCRIBE for an unknown subscription.
pub const ERROR_NO_SUCH_SUBSCRIPTION: &str = "wamp.error.no_such_subscription";
/// `wamp.error.procedure_exists_with_different_invocation_policy`: A REGISTER for a procedure that is registered with another `invoke` policy (shared registrations; the URI AutobahnPython and Crossbar.io use).
pub const ERROR_PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY: &str =
    "wamp.error.procedure_exists_with_different_invocation_policy";
/// `crossbar.error.max_concurrency_reached`: Every callee that could take a CALL has as many pending invocations as its REGISTER option `concurrency` allows (Crossbar.io's URI, kept for compatibility).
pub const ERROR_MAX_CONCURRENCY_REACHED: &str = "crossbar.error.max_concurrency_reached";
/// `wamp.error.invalid_argument`: A call with arguments the callee does not accept.
pub const ERROR_INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
/// `wamp.error.system_shutdown`: The peer is shutting down (as an ABORT/GOODBYE reason).
pub const ERROR_SYSTEM_SHUTDOWN: &str = "wamp.error.system_shutdown";
/// `wamp.error.close_realm`: The peer is leaving the realm (as an ABORT/GOODBYE reason).
pub const ERROR_CLOSE_REALM: &str = "wamp.error.close_realm";
/// `wamp.error.goodbye_and_out`: The reply to a GOODBYE.
pub const ERROR_GOODBYE_AND_OUT: &str = "wamp.error.goodbye_and_out";
/// `wamp.error.protocol_violation`: A message that breaks the WAMP protocol (ABORT reason).
pub const ERROR_PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
/// `wamp.error.not_authorized`: The peer is not authorized to perform the action.
pub const ERROR_NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
/// `wamp.error.authorization_failed`: The authorization check itself failed.
pub const ERROR_AUTHORIZATION_FAILED: &str = "wamp.error.authorization_failed";
/// `wamp.error.authentication_failed`: Authentication of the session failed.
pub const ERROR_AUTHENTICATION_FAILED: &str = "wamp.error.authentication_failed";
/// `wamp.error.no_auth_method`: None of the offered authentication methods is acceptable.
pub const ERROR_NO_AUTH_METHOD: &str = "wamp.error.no_auth_method";
/// `wamp.error.no_such_realm`: The realm in HELLO does not exist.
pub const ERROR_NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
/// `wamp.error.no_such_role`: The role requested in HELLO does not exist.
pub const ERROR_NO_SUCH_ROLE: &str = "wamp.error.no_such_role";
/// `wamp.error.no_such_session`: The session referred to does not exist.
pub const ERROR_NO_SUCH_SESSION: &str = "wamp.error.no_such_session";
/// `wamp.error.canceled`: A call canceled with CANCEL.
pub const ERROR_CANCELED: &str = "wamp.error.canceled";
/// `wamp.error.runtime_error`: The callee failed unexpectedly while handling the call (AutobahnPython's answer to an uncaught exception; ours to a handler that panicked).
pub const ERROR_RUNTIME_ERROR: &str = "wamp.error.runtime_error";
/// `wamp.error.option_not_allowed`: An option the router does not allow for this peer.
pub const ERROR_OPTION_NOT_ALLOWED: &str = "wamp.error.option_not_allowed";
/// `wamp.error.no_eligible_callee`: Exclusions left no callee for a call.
pub const ERROR_NO_ELIGIBLE_CALLEE: &str = "wamp.error.no_eligible_callee";
/// `wamp.error.option_disallowed.disclose_me`: The caller asked to disclose itself and may not.
pub const ERROR_OPTION_DISALLOWED_DISCLOSE_ME: &str = "wamp.error.option_disallowed.disclose_me";
/// `wamp.error.network_failure`: The router lost the connection to a callee.
pub const ERROR_NETWORK_FAILURE: &str = "wamp.error.network_failure";
/// `wamp.error.timeout`: A call timed out (call timeout feature).
pub const ERROR_TIMEOUT: &str = "wamp.error.timeout";
/// `wamp.error.payload_size_exceeded`: A message payload over the negotiated limit.
pub const ERROR_PAYLOAD_SIZE_EXCEEDED: &str = "wamp.error.payload_size_exceeded";
/// `wamp.error.unavailable`: A callee is unavailable (shared registrations).
pub const ERROR_UNAVAILABLE: &str = "wamp.error.unavailable";
/// `wamp.error.feature_not_supported`: A feature the peer did not announce.
pub const ERROR_FEATURE_NOT_SUPPORTED: &str = "wamp.error.feature_not_supported";
/// `wamp.error.cannot_authenticate`: A client cannot answer the router's CHALLENGE (ABORT reason, as AutobahnPython sends).
pub const ERROR_CANNOT_AUTHENTICATE: &str = "wamp.error.cannot_authenticate";
/// `wamp.close.normal`: A normal close.
pub const CLOSE_NORMAL: &str = "wamp.close.normal";
/// `wamp.close.goodbye_and_out`: The reply to a GOODBYE.
pub const CLOSE_GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
/// `wamp.close.system_shutdown`: The router or client is shutting down.
pub const CLOSE_SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";
/// `wamp.close.close_realm`: The session leaves the realm.
pub const CLOSE_CLOSE_REALM: &str = "wamp.close.close_realm";
/// `wamp.close.killed`: The session was killed by the router (session meta API).
pub const CLOSE_KILLED: &str = "wamp.close.killed";

/// A WAMP message could not be decoded: the bytes are not valid for the
/// serializer, or the value is not a well-formed WAMP message.
///
/// The [`Display`](fmt::Display) text says what was wrong, e.g.
/// `CALL: element 3 (procedure) must be a string, got integer`. A router or
/// client answers it with an ABORT `wamp.error.protocol_violation`
/// ([`ERROR_PROTOCOL_VIOLATION`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not valid JSON/MessagePack/CBOR, have trailing data,
    /// nest too deep, or hold something WAMP cannot carry (non-string
    /// dictionary keys, tags, extension types, bad `"\u0000"` base64).
    Malformed {
        /// The serializer: "JSON", "MessagePack" or "CBOR".
        serializer: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// A batched transport record is cut short.
    TruncatedBatch {
        /// The serializer: "MessagePack" or "CBOR".
        serializer: &'static str,
        /// Bytes the record needs: 4 for the length prefix, or the length
        /// it announces.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// The message is not a list.
    NotAList {
        /// The kind of value found instead ("dict", "string", …).
        found: &'static str,
    },
    /// The message is an empty list.
    Empty,
    /// Element 0, the message type, is not a non-negative integer.
    InvalidType {
        /// The kind of value found instead.
        found: &'static str,
    },
    /// Element 0 is a message type code WAMP does not define.
    UnknownType(u64),
    /// The message has too few or too many elements.
    Arity {
        /// The message name ("CALL").
        message: &'static str,
        /// The number of elements found.
        len: usize,
        /// The fewest elements allowed.
        min: usize,
        /// The most elements allowed.
        max: usize,
    },
    /// An element has the wrong type or is out of range.
    Element {
        /// The message name ("CALL").
        message: &'static str,
        /// The element's position in the list (the type code is 0).
        index: usize,
        /// The element's name in the spec ("procedure").
        name: &'static str,
        /// What it must be ("a string", "an ID in [1, 2^53]").
        expected: &'static str,
        /// What was found: the kind of value, or the out-of-range number.
        found: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed { serializer, detail } => {
                write!(f, "malformed {serializer} message: {detail}")
            }
            DecodeError::TruncatedBatch {
                serializer,
                needed,
                available,
            } => write!(
                f,
                "truncated {serializer} batch: a record needs {needed} bytes, only {available} left"
            ),
            DecodeError::NotAList { found } => {
                write!(f, "a WAMP message must be a list, got {found}")
            }
            DecodeError::Empty => f.write_str("a WAMP message must not be an empty list"),
            DecodeError::InvalidType { found } => write!(
                f,
                "element 0 (message type) must be a non-negative integer, got {found}"
            ),
            DecodeError::UnknownType(code) => write!(f, "unknown WAMP message type {code}"),
            DecodeError::Arity {
                message,
                len,
                min,
                max,
            } => {
                if min == max {
                    write!(f, "{message}: must have {min} elements, got {len}")
                } else {
                    write!(f, "{message}: must have {min} to {max} elements, got {len}")
                }
            }
            DecodeError::Element {
                message,
                index,
                name,
                expected,
                found,
            } => write!(
                f,
                "{message}: element {index} ({name}) must be {expected}, got {found}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

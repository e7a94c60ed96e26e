//! What a client session reports: its events, and how it ended.

use std::fmt;

use crate::wamp::id::{PublicationId, RegistrationId, RequestId, SessionId, SubscriptionId};
use crate::wamp::message::Message;
use crate::wamp::value::{Dict, List};

use super::error::{ApplicationError, SessionError};

/// What kind of request an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// CALL.
    Call,
    /// REGISTER.
    Register,
    /// UNREGISTER.
    Unregister,
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// PUBLISH with `acknowledge`.
    Publish,
}

impl RequestKind {
    /// The kind of request a message type code names, for the request
    /// types a client sends and a router answers (`None` for others).
    ///
    /// ```
    /// use fahrbahn_core::wamp::{Message, RequestKind};
    /// assert_eq!(RequestKind::from_message_type(Message::CALL), Some(RequestKind::Call));
    /// assert_eq!(RequestKind::from_message_type(Message::YIELD), None);
    /// ```
    pub fn from_message_type(code: u64) -> Option<Self> {
        Some(match code {
            Message::CALL => RequestKind::Call,
            Message::REGISTER => RequestKind::Register,
            Message::UNREGISTER => RequestKind::Unregister,
            Message::SUBSCRIBE => RequestKind::Subscribe,
            Message::UNSUBSCRIBE => RequestKind::Unsubscribe,
            Message::PUBLISH => RequestKind::Publish,
            _ => return None,
        })
    }

    /// The message type code of the request, e.g. [`Message::CALL`].
    pub fn message_type(self) -> u64 {
        match self {
            RequestKind::Call => Message::CALL,
            RequestKind::Register => Message::REGISTER,
            RequestKind::Unregister => Message::UNREGISTER,
            RequestKind::Subscribe => Message::SUBSCRIBE,
            RequestKind::Unsubscribe => Message::UNSUBSCRIBE,
            RequestKind::Publish => Message::PUBLISH,
        }
    }
}

/// The request's message name, e.g. `CALL`.
impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Message::type_name(self.message_type()).unwrap_or("UNKNOWN"))
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    /// The GOODBYE or ABORT reason URI.
    pub reason: String,
    /// Its details.
    pub details: Dict,
    /// Whether the router ended it.
    pub by_router: bool,
    /// Why it ended abnormally; `None` after a clean GOODBYE exchange.
    pub error: Option<SessionError>,
}

/// What a [`Session`](crate::wamp::Session) reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The router asks us to authenticate; answer with
    /// [`Session::authenticate`](crate::wamp::Session::authenticate).
    Challenge {
        /// The authentication method.
        authmethod: String,
        /// Method-specific data.
        extra: Dict,
    },
    /// The session joined its realm.
    Joined {
        /// The session id.
        session: SessionId,
        /// WELCOME details (router roles, authid, authrole, …).
        details: Dict,
    },
    /// A call's result (or one of its progressive results).
    Result {
        /// The CALL request id.
        request: RequestId,
        /// Positional result.
        args: List,
        /// Keyword result.
        kwargs: Dict,
        /// RESULT details.
        details: Dict,
        /// A progressive result: more follow.
        progress: bool,
    },
    /// A procedure was registered.
    Registered {
        /// The REGISTER request id.
        request: RequestId,
        /// The registration id.
        registration: RegistrationId,
    },
    /// A procedure was unregistered.
    Unregistered {
        /// The UNREGISTER request id.
        request: RequestId,
    },
    /// The router revoked one of our registrations (registration
    /// revocation: e.g. `wamp.registration.remove_callee`, or another
    /// callee registered the procedure with `force_reregister`): no more
    /// invocations come for it.
    RegistrationRevoked {
        /// The registration that ended.
        registration: RegistrationId,
        /// The router's reason (`details.reason`), e.g.
        /// `wamp.error.unregistered`; empty if it gave none.
        reason: String,
    },
    /// A topic was subscribed.
    Subscribed {
        /// The SUBSCRIBE request id.
        request: RequestId,
        /// The subscription id.
        subscription: SubscriptionId,
    },
    /// A subscription ended.
    Unsubscribed {
        /// The UNSUBSCRIBE request id.
        request: RequestId,
    },
    /// The router ended a subscription on its own initiative
    /// (subscription revocation, e.g. `wamp.subscription.remove_subscriber`):
    /// no more events come for it.
    SubscriptionRevoked {
        /// The subscription id.
        subscription: SubscriptionId,
        /// Why, if the router said (`details.reason`).
        reason: Option<String>,
    },
    /// An acknowledged publication was accepted.
    Published {
        /// The PUBLISH request id.
        request: RequestId,
        /// The publication id.
        publication: PublicationId,
    },
    /// A request failed.
    Failed {
        /// Its request id.
        request: RequestId,
        /// Its kind.
        kind: RequestKind,
        /// The error.
        error: ApplicationError,
    },
    /// A procedure of ours is called: answer with [`Session::yield_result`](crate::wamp::Session::yield_result)
    /// or [`Session::yield_error`](crate::wamp::Session::yield_error).
    Invocation {
        /// The INVOCATION request id.
        request: RequestId,
        /// Which registration.
        registration: RegistrationId,
        /// Positional arguments.
        args: List,
        /// Keyword arguments.
        kwargs: Dict,
        /// INVOCATION details (caller, procedure for patterns, …).
        details: Dict,
    },
    /// The caller canceled an invocation.
    Interrupt {
        /// The INVOCATION request id.
        request: RequestId,
        /// INTERRUPT options (`mode`).
        options: Dict,
    },
    /// An event on a subscription of ours.
    Event {
        /// The subscription id.
        subscription: SubscriptionId,
        /// The publication id.
        publication: PublicationId,
        /// Positional payload.
        args: List,
        /// Keyword payload.
        kwargs: Dict,
        /// EVENT details (publisher, topic for patterns, …).
        details: Dict,
    },
    /// The session ended; the last event.
    Closed(Closed),
}

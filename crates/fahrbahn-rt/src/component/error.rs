//! Why a component could not carry out a request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// A request to a [`Component`](super::Component) that could not be
/// carried out because of the component's state (not joined, stopped), or
/// a deadline of its own.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ComponentError {
    /// Not joined, and the request was made with
    /// [`WhenDisconnected::FailFast`](super::WhenDisconnected::FailFast).
    NotJoined,
    /// No join came within this wait
    /// ([`WhenDisconnected::Wait`](super::WhenDisconnected::Wait)).
    JoinTimeout(Duration),
    /// The call or acknowledged publish got no answer within the
    /// component's call timeout; the call was cancelled.
    CallTimeout(Duration),
    /// The component was stopped.
    Stopped,
    /// The component gave up on a fatal error (authentication refused, no
    /// such realm, a bad URL…); the error.
    Failed(Arc<Error>),
    /// The component gave up after `max_retries` retries in a row.
    GaveUp {
        /// Retries made.
        retries: u32,
    },
    /// The component has no transport to connect with.
    NoTransport,
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentError::NotJoined => {
                f.write_str("the component is not joined (reconnecting); try again later")
            }
            ComponentError::JoinTimeout(d) => {
                write!(f, "the component did not join within {d:?}")
            }
            ComponentError::CallTimeout(d) => write!(f, "no answer within {d:?}"),
            ComponentError::Stopped => f.write_str("the component was stopped"),
            ComponentError::Failed(e) => write!(f, "the component gave up: {e}"),
            ComponentError::GaveUp { retries } => {
                write!(f, "the component gave up after {retries} retries")
            }
            ComponentError::NoTransport => {
                f.write_str("the component has no transport: add one with `transport(url)`")
            }
        }
    }
}

impl std::error::Error for ComponentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ComponentError::Failed(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<ComponentError> for Error {
    fn from(e: ComponentError) -> Self {
        Error::Component(e)
    }
}

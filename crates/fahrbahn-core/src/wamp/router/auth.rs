//! The router's authentication hook: [`Authenticator`] decides, on HELLO
//! and on each AUTHENTICATE, whether a session is welcomed, challenged or
//! denied.

use super::ConnectionId;
use crate::wamp::error::ERROR_AUTHENTICATION_FAILED;
use crate::wamp::{Dict, SessionId};

/// What the router knows when a HELLO arrives.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HelloContext<'a> {
    /// The connection the HELLO came on (e.g. to tell listeners apart).
    pub conn: ConnectionId,
    /// The session id the session will get if welcomed.
    pub session: SessionId,
    /// The realm the client asks to join (it exists).
    pub realm: &'a str,
    /// The HELLO details: `roles`, `authmethods`, `authid`, `authextra`, …
    pub details: &'a Dict,
    /// 32 fresh bytes from the router's injected RNG, for challenge
    /// nonces (new for every HELLO and AUTHENTICATE).
    pub random: [u8; 32],
}

impl<'a> HelloContext<'a> {
    /// The same HELLO with other details, e.g. for an authenticator that
    /// narrows `authmethods` before passing the HELLO on to another one.
    pub fn with_details<'b>(&self, details: &'b Dict) -> HelloContext<'b>
    where
        'a: 'b,
    {
        HelloContext {
            conn: self.conn,
            session: self.session,
            realm: self.realm,
            details,
            random: self.random,
        }
    }
}

/// What the router knows when an AUTHENTICATE arrives.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthenticateContext<'a> {
    /// The connection the AUTHENTICATE came on.
    pub conn: ConnectionId,
    /// The session id the session will get if welcomed.
    pub session: SessionId,
    /// The realm the client asks to join.
    pub realm: &'a str,
    /// The HELLO details.
    pub hello: &'a Dict,
    /// The method of the CHALLENGE being answered.
    pub authmethod: &'a str,
    /// The `extra` of that CHALLENGE.
    pub challenge: &'a Dict,
    /// The AUTHENTICATE signature.
    pub signature: &'a str,
    /// The AUTHENTICATE extra.
    pub extra: &'a Dict,
    /// 32 fresh bytes from the router's injected RNG (for a further
    /// challenge).
    pub random: [u8; 32],
}

/// An [`Authenticator`]'s verdict.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthDecision {
    /// Join the session: the router sends WELCOME with these.
    Welcome {
        /// The authenticated identity.
        authid: String,
        /// The role it gets.
        authrole: String,
        /// The method used, e.g. `anonymous`, `ticket`.
        authmethod: String,
        /// Who authenticated it, e.g. `static`.
        authprovider: String,
        /// Sent as `authextra` in WELCOME details when not empty.
        extra: Dict,
    },
    /// Send a CHALLENGE and wait for AUTHENTICATE.
    Challenge {
        /// The authentication method.
        authmethod: String,
        /// Method-specific data, e.g. a nonce.
        extra: Dict,
    },
    /// Refuse: the router sends ABORT and closes the transport.
    Deny {
        /// The ABORT reason URI, e.g. `wamp.error.not_authorized`.
        reason: String,
        /// A human-readable `message` detail.
        message: String,
    },
}

impl AuthDecision {
    /// A [`Welcome`](Self::Welcome) with provider `static` and no extra.
    ///
    /// ```
    /// use fahrbahn_core::wamp::router::AuthDecision;
    /// let d = AuthDecision::welcome("alice", "user", "ticket");
    /// assert!(matches!(d, AuthDecision::Welcome { ref authprovider, .. } if authprovider == "static"));
    /// ```
    pub fn welcome(
        authid: impl Into<String>,
        authrole: impl Into<String>,
        authmethod: impl Into<String>,
    ) -> Self {
        AuthDecision::Welcome {
            authid: authid.into(),
            authrole: authrole.into(),
            authmethod: authmethod.into(),
            authprovider: "static".into(),
            extra: Dict::new(),
        }
    }

    /// A [`Deny`](Self::Deny).
    pub fn deny(reason: impl Into<String>, message: impl Into<String>) -> Self {
        AuthDecision::Deny {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Decides who may join. Called by the router on HELLO (the realm exists)
/// and on every AUTHENTICATE answering a challenge; may challenge several
/// times.
///
/// ```
/// use fahrbahn_core::wamp::router::{AuthDecision, AuthenticateContext, Authenticator, HelloContext};
///
/// /// Ticket authentication with one fixed ticket.
/// struct Ticket;
/// impl Authenticator for Ticket {
///     fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision {
///         AuthDecision::Challenge { authmethod: "ticket".into(), extra: Default::default() }
///     }
///     fn on_authenticate(&mut self, auth: &AuthenticateContext<'_>) -> AuthDecision {
///         if auth.signature == "secret" {
///             AuthDecision::welcome("alice", "user", "ticket")
///         } else {
///             AuthDecision::deny("wamp.error.not_authorized", "wrong ticket")
///         }
///     }
/// }
/// ```
pub trait Authenticator {
    /// A HELLO arrived.
    fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision;

    /// An AUTHENTICATE arrived. The default denies with
    /// `wamp.error.authentication_failed` (for authenticators that never
    /// challenge).
    fn on_authenticate(&mut self, auth: &AuthenticateContext<'_>) -> AuthDecision {
        let _ = auth;
        AuthDecision::deny(
            ERROR_AUTHENTICATION_FAILED,
            "this router does not challenge, so it accepts no AUTHENTICATE",
        )
    }
}

/// Welcomes everyone: authid is the session id in decimal, authrole
/// `anonymous`, authmethod `anonymous`, authprovider `static`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnonymousAuthenticator;

impl Authenticator for AnonymousAuthenticator {
    fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision {
        AuthDecision::welcome(hello.session.to_string(), "anonymous", "anonymous")
    }
}

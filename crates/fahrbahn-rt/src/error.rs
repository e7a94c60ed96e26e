//! Errors of the async layer: the core's errors plus I/O, URL, TLS and
//! configuration errors, each a typed cause with a `source()` chain.

use std::fmt;
use std::io;
use std::net::AddrParseError;
use std::path::PathBuf;

use fahrbahn_core::wamp::{ApplicationError, Closed, CommandError, SessionError, ValueError};
use fahrbahn_core::ws;

/// Everything that can go wrong with a WebSocket, a WAMP session or a
/// served router, grouped by whose fault it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    // ----- the transport -------------------------------------------------
    /// The transport failed.
    Io(io::Error),
    /// The WebSocket connection ended abnormally (protocol error, failed
    /// handshake, timeout); see [`ws::Error`].
    WebSocket(ws::Error),
    /// TLS could not be set up.
    Tls(TlsError),
    /// An HTTP proxy could not be used (unreachable, refused the tunnel,
    /// wants credentials: 407); see [`ProxyError`](crate::ProxyError).
    Proxy(crate::proxy::ProxyError),

    // ----- the peer (WAMP) -----------------------------------------------
    /// A WAMP request failed with an error URI (e.g.
    /// `wamp.error.no_such_procedure`, or an application's own error).
    Wamp(ApplicationError),
    /// The WAMP session ended abnormally (aborted, protocol violation,
    /// transport lost, timeout).
    Session(SessionError),
    /// The WAMP session has ended normally (GOODBYE); no more requests.
    SessionClosed(Box<Closed>),

    // ----- the application -----------------------------------------------
    /// A WebSocket command could not be carried out (e.g. sending after
    /// close).
    Send(ws::SendError),
    /// A WAMP command was used wrongly (e.g. an invalid URI).
    Command(CommandError),
    /// A payload could not be converted to or from the requested type.
    Decode(ValueError),
    /// The URL could not be used.
    Url(UrlError),
    /// A router configuration is invalid.
    Config(ConfigError),

    // ----- a component ---------------------------------------------------
    /// A [`Component`](crate::Component) could not carry out the request
    /// (not joined, stopped, gave up, a deadline of its own).
    Component(crate::component::ComponentError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::WebSocket(e) => write!(f, "{e}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Proxy(e) => write!(f, "{e}"),
            Error::Wamp(e) => write!(f, "WAMP error {e}"),
            Error::Session(e) => write!(f, "{e}"),
            Error::SessionClosed(closed) => {
                write!(f, "the WAMP session has ended ({})", closed.reason)
            }
            Error::Send(e) => write!(f, "{e}"),
            Error::Command(e) => write!(f, "{e}"),
            Error::Decode(e) => write!(f, "payload conversion failed: {e}"),
            Error::Url(e) => write!(f, "{e}"),
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::Component(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::WebSocket(e) => Some(e),
            Error::Tls(e) => Some(e),
            Error::Proxy(e) => Some(e),
            Error::Wamp(e) => Some(e),
            Error::Session(e) => Some(e),
            Error::SessionClosed(_) => None,
            Error::Send(e) => Some(e),
            Error::Command(e) => Some(e),
            Error::Decode(e) => Some(e),
            Error::Url(e) => Some(e),
            Error::Config(e) => Some(e),
            Error::Component(e) => Some(e),
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

impl From<ApplicationError> for Error {
    fn from(e: ApplicationError) -> Self {
        Error::Wamp(e)
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        Error::Command(e)
    }
}

impl From<ValueError> for Error {
    fn from(e: ValueError) -> Self {
        Error::Decode(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Url(e)
    }
}

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Self {
        Error::Tls(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// A URL that cannot be used; each variant carries the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not one this function connects to.
    Scheme {
        /// The URL.
        url: String,
        /// The schemes it takes, e.g. `ws:// or wss://`.
        expected: &'static str,
    },
    /// `user@host` is not supported.
    UserInfo {
        /// The URL.
        url: String,
    },
    /// The host and port part is malformed (e.g. an unclosed `[`).
    Authority {
        /// The URL.
        url: String,
    },
    /// There is no host.
    NoHost {
        /// The URL.
        url: String,
    },
    /// The port is not a number from 0 to 65535.
    Port {
        /// The URL.
        url: String,
        /// The port text.
        port: String,
    },
    /// A `unix:` URL without a path.
    NoSocketPath {
        /// The URL.
        url: String,
    },
    /// A RawSocket URL with a path or without a port (`rs://host:port`).
    RawSocketShape {
        /// The URL.
        url: String,
    },
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Scheme { url, expected } => {
                write!(f, "invalid URL {url:?}: expected {expected}")
            }
            UrlError::UserInfo { url } => {
                write!(f, "invalid URL {url:?}: user info is not supported")
            }
            UrlError::Authority { url } => write!(f, "invalid URL {url:?}: bad host or port"),
            UrlError::NoHost { url } => write!(f, "invalid URL {url:?}: no host"),
            UrlError::Port { url, port } => write!(f, "invalid URL {url:?}: bad port {port:?}"),
            UrlError::NoSocketPath { url } => write!(f, "invalid URL {url:?}: no socket path"),
            UrlError::RawSocketShape { url } => write!(
                f,
                "invalid URL {url:?}: RawSocket URLs are rs://host:port or rss://host:port, without a path"
            ),
        }
    }
}

impl std::error::Error for UrlError {}

/// TLS could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// TLS needs the `tls` feature of `fahrbahn` (or `fahrbahn-rt`).
    Disabled,
    /// The host is not a valid TLS server name.
    ServerName {
        /// The host.
        host: String,
    },
    /// rustls refused the configuration (e.g. a certificate that does not
    /// match its key).
    #[cfg(feature = "tls")]
    Rustls(futures_rustls::rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Disabled => f.write_str("TLS needs the `tls` feature"),
            TlsError::ServerName { host } => write!(f, "{host:?} is not a valid TLS server name"),
            #[cfg(feature = "tls")]
            TlsError::Rustls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "tls")]
            TlsError::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

/// A router configuration that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML does not parse or has unknown or mistyped keys.
    Toml(toml::de::Error),
    /// The configuration file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A listener needs exactly one of `address` and `unix`.
    ListenerAddress,
    /// No realm is configured.
    NoRealm,
    /// A listener address is not `ip:port`.
    Address {
        /// The address text.
        address: String,
        /// Why.
        source: AddrParseError,
    },
    /// A `[[role]]` names a realm the router does not serve.
    RoleRealm {
        /// The realm.
        realm: String,
        /// The role.
        role: String,
    },
    /// The same role is defined twice in one realm.
    DuplicateRole {
        /// The realm.
        realm: String,
        /// The role.
        role: String,
    },
    /// Roles are configured and a custom authorizer is plugged in: the
    /// authorizer would ignore the roles.
    RolesAndAuthorizer,
    /// `allowed_origins` is set on a listener that is not WebSocket.
    OriginsNotWebSocket,
    /// A TCP listener on an address other than loopback, without
    /// `expose = true`.
    NotLoopback {
        /// The address.
        address: String,
    },
    /// A `[[principal]]` cannot be used.
    Principal {
        /// Its realm.
        realm: String,
        /// Its authid.
        authid: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A listener's `auth` cannot be used.
    ListenerAuth {
        /// The listener's address or path.
        listener: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// Principals are configured and a custom authenticator is plugged
    /// in: the authenticator would ignore the principals.
    PrincipalsAndAuthenticator,
    /// A TLS certificate or key file cannot be read or parsed.
    #[cfg(feature = "tls")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Toml(e) => write!(f, "{e}"),
            ConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::ListenerAddress => {
                f.write_str("each listener needs exactly one of `address` or `unix`")
            }
            ConfigError::NoRealm => f.write_str("at least one realm is needed"),
            ConfigError::Address { address, source } => {
                write!(f, "bad listener address {address:?}: {source}")
            }
            ConfigError::RoleRealm { realm, role } => write!(
                f,
                "role {role:?} is defined for realm {realm:?}, which is not in `realms`"
            ),
            ConfigError::DuplicateRole { realm, role } => {
                write!(f, "role {role:?} is defined twice in realm {realm:?}")
            }
            ConfigError::RolesAndAuthorizer => f.write_str(
                "roles are configured and a custom authorizer is set: the authorizer would ignore the roles (drop one of them)",
            ),
            ConfigError::OriginsNotWebSocket => {
                f.write_str("`allowed_origins` applies to WebSocket listeners only")
            }
            ConfigError::NotLoopback { address } => write!(
                f,
                "listener {address} is reachable from other machines: set `expose = true` on it (and configure roles, authentication and `allowed_origins`) or listen on 127.0.0.1"
            ),
            ConfigError::Principal {
                realm,
                authid,
                problem,
            } => write!(f, "principal {authid:?} of realm {realm:?}: {problem}"),
            ConfigError::ListenerAuth { listener, problem } => {
                write!(f, "listener {listener}: {problem}")
            }
            ConfigError::PrincipalsAndAuthenticator => f.write_str(
                "principals are configured and a custom authenticator is set: the authenticator would ignore the principals (drop one of them)",
            ),
            #[cfg(feature = "tls")]
            ConfigError::Pem { path, source } => {
                write!(f, "cannot use {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Toml(e) => Some(e),
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Address { source, .. } => Some(source),
            #[cfg(feature = "tls")]
            ConfigError::Pem { source, .. } => Some(source),
            ConfigError::ListenerAddress
            | ConfigError::NoRealm
            | ConfigError::RoleRealm { .. }
            | ConfigError::DuplicateRole { .. }
            | ConfigError::RolesAndAuthorizer
            | ConfigError::OriginsNotWebSocket
            | ConfigError::NotLoopback { .. }
            | ConfigError::Principal { .. }
            | ConfigError::ListenerAuth { .. }
            | ConfigError::PrincipalsAndAuthenticator => None,
        }
    }
}

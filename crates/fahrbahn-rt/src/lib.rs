//! Runtime-agnostic async layer of Fahrbahn.
//!
//! The [`Runtime`] trait says what the driver needs from an executor
//! (timers, spawning, TCP); `fahrbahn-tokio`, `fahrbahn-smol` and
//! `fahrbahn-async-std` implement it in a few dozen lines each. Everything
//! else — the driver loop that moves bytes between a stream and the sans-IO
//! core, the [`WebSocket`] type, connecting by URL — is written once, here,
//! over `futures-io` byte streams.
//!
//! Most users depend on the `fahrbahn` facade instead of this crate.

mod connect;
mod driver;
mod error;
mod incoming;
mod router;
mod runtime;
mod session;
mod wamp_url;
mod websocket;

#[cfg(feature = "tls")]
pub use connect::tls_connect_with;
pub use connect::{MaybeTlsStream, WsUrl, connect, connect_with};
pub use error::{ConfigError, Error, TlsError, UrlError};
pub use fahrbahn_core::wamp::auth::{Credential, CryptosignKey, Secret};
pub use fahrbahn_core::wamp::{
    ApplicationError, AuthDetails, Codec, Dict, Json, List, PublicationId, RegistrationId,
    RequestId, Serializer, SessionConfig, SessionError, SessionId, SubscriptionId, Value,
    from_value, to_value,
};
pub use fahrbahn_core::ws::{
    Accept, AllowedOrigins, ClientConfig, CloseCode, Closed, DeflateConfig, Handshake,
    HandshakeRequest, Limits, Message, ServerConfig, Timeouts,
};
pub use incoming::{DEFAULT_MAX_PENDING_HANDSHAKES, Incoming};
pub use router::{
    AllowConfig, DiscloseConfig, ListenerConfig, ListenerInfo, MatchConfig, PermissionConfig,
    RoleConfig, Router, RouterBuilder, RouterConfig, RouterLimits, TlsFiles, TransportKind,
};
pub use runtime::{
    AnyListener, AsyncTimer, BoxFuture, BoxTransport, Executor, ExecutorHandle, Runtime,
    TcpListener, Transport,
};
pub use session::{
    ByMatch, CallResult, ChallengeHandler, DEFAULT_MAX_QUEUED_EVENT_BYTES, Event, Invocation, Meta,
    Registration, Revocation, Session, SessionOptions, Subscription, TestamentScope, kwargs,
    to_args,
};
pub use wamp_url::WampUrl;
pub use websocket::{RequestCallback, WebSocket, WsReader, WsWriter};

/// The byte-stream traits every transport implements.
pub use futures_io::{AsyncRead, AsyncWrite};

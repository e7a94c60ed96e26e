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

mod component;
mod connect;
mod driver;
mod error;
mod incoming;
mod proxy;
mod router;
mod runtime;
mod session;
mod wamp_url;
mod websocket;

pub use component::{
    Component, ComponentBuilder, ComponentError, ComponentRegistration, ComponentSubscription,
    DEFAULT_CALL_TIMEOUT, DEFAULT_JOIN_WAIT, SubscriptionItem, TransportConfig, WhenDisconnected,
    classify,
};
#[cfg(feature = "tls")]
pub use connect::tls_connect_with;
pub use connect::{MaybeTlsStream, WsUrl, connect, connect_via, connect_with};
pub use error::{ConfigError, Error, TlsError, UrlError};
pub use fahrbahn_core::retry::{Backoff, Disposition, RetryPolicy, classify_reason};
pub use fahrbahn_core::wamp::auth::{Credential, CryptosignKey, Secret};
pub use fahrbahn_core::wamp::{
    ApplicationError, AuthDetails, Codec, Dict, Json, List, PublicationId, RegistrationId,
    RequestId, Serializer, SessionConfig, SessionError, SessionId, SubscriptionId, Value,
    from_value, to_value,
};
pub use fahrbahn_core::wamp::{CallOptions, Invoke, RegisterOptions, TimeoutUnit};
pub use fahrbahn_core::ws::{
    Accept, AllowedOrigins, ClientConfig, CloseCode, Closed, DeflateConfig, Handshake,
    HandshakeRequest, Limits, Message, ServerConfig, Timeouts,
};
pub use incoming::{DEFAULT_MAX_PENDING_HANDSHAKES, Incoming};
pub use proxy::{Proxy, ProxyConfig, ProxyEnv, ProxyError};
pub use router::{
    ANONYMOUS_ROLE, AUTH_METHODS, AllowConfig, CryptosignConfig, DiscloseConfig, InProcessStream,
    ListenerConfig, ListenerInfo, MatchConfig, PermissionConfig, PrincipalConfig, RoleConfig,
    Router, RouterBuilder, RouterConfig, RouterLimits, ScramConfig, TlsFiles, TlsPrincipalConfig,
    TransportKind, WampCraConfig, certificate_fingerprint, resolve_secret,
};
pub use runtime::{
    AnyListener, AsyncTimer, BoxFuture, BoxTransport, Executor, ExecutorHandle, Runtime,
    TcpListener, Transport,
};
pub use session::{
    ByMatch, CallProgress, CallResult, ChallengeHandler, DEFAULT_MAX_QUEUED_EVENT_BYTES, Event,
    Framing, Invocation, InvocationStream, Meta, ProgressiveCall, Registration, Revocation,
    Session, SessionOptions, StreamingCall, Subscription, TestamentScope, from_payload, kwargs,
    to_args, to_payload,
};
pub use wamp_url::WampUrl;
pub use websocket::{RequestCallback, WebSocket, WsReader, WsWriter};

/// The byte-stream traits every transport implements.
pub use futures_io::{AsyncRead, AsyncWrite};

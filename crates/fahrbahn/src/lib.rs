//! # Fahrbahn
//!
//! WebSocket (RFC 6455, with permessage-deflate RFC 7692) and WAMP v2 for
//! Rust, on the runtime of your choice, built on a sans-IO core ([`core`]).
//!
//! A WAMP session (caller, callee, publisher, subscriber):
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> Result<(), fahrbahn::Error> {
//! use fahrbahn::wamp::{CallResult, Dict};
//! let session = fahrbahn::tokio::session("ws://127.0.0.1:8080/ws", "realm1").await?;
//! session
//!     .register("com.example.add2", |inv| async move {
//!         let (a, b): (i64, i64) = inv.decode()?;
//!         Ok(CallResult::args(vec![(a + b).into()]))
//!     })
//!     .await?;
//! let sum: i64 = session.call_typed("com.example.add2", &(2, 3)).await?;
//! assert_eq!(sum, 5);
//! let mut events = session.subscribe("com.example.topic").await?;
//! session.publish("com.example.topic", vec!["hello".into()], Dict::new()).await?;
//! session.leave().await?;
//! # Ok(()) }
//! ```
//!
//! The API has one module per protocol: [`ws`] (WebSocket), [`wamp`]
//! (WAMP client) and [`wamp::router`] (the embedded router); the runtime
//! modules [`tokio`], [`smol`] and
//! [`async_std`] bind them to a runtime; [`Error`] is
//! the one error type of the async API; [`core`] is the sans-IO core for
//! custom transports.
//!
//! Features: `tokio` (default), `smol`, `async-std` (pick any; each adds a
//! module of the same name), `tls` (`wss://` with rustls), `deflate`
//! (permessage-deflate, default).
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> Result<(), fahrbahn::Error> {
//! let mut ws = fahrbahn::tokio::connect("ws://127.0.0.1:9001/").await?;
//! ws.send("hello").await?;
//! while let Some(msg) = ws.recv().await {
//!     println!("got {:?}", msg?);
//! }
//! # Ok(()) }
//! ```
//!
//! A server takes the connections of a listener with
//! [`incoming`](tokio::incoming), which runs every handshake in a task of
//! its own (a client that connects and says nothing delays nobody), or
//! accepts over any byte stream it already has (see
//! [`ws::WebSocket::accept`]):
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> Result<(), fahrbahn::Error> {
//! let listener = fahrbahn::tokio::bind("127.0.0.1:9001".parse().unwrap()).await?;
//! let mut incoming = fahrbahn::tokio::incoming(listener, fahrbahn::ws::ServerConfig::default());
//! while let Some(next) = incoming.next().await {
//!     let Ok(mut ws) = next else { continue }; // the listener failed; it goes on
//!     tokio::spawn(async move {
//!         while let Some(Ok(msg)) = ws.recv().await {
//!             if ws.send(msg).await.is_err() { break; }
//!         }
//!     });
//! }
//! # Ok(()) }
//! ```

pub use fahrbahn_core as core;
pub use fahrbahn_rt::{ConfigError, Error, ProxyError, TlsError, UrlError};

/// HTTP proxies (`CONNECT` tunnels, basic authentication, the
/// `http_proxy`/`https_proxy`/`no_proxy` conventions): chosen per session
/// with [`SessionOptions::proxy`](wamp::SessionOptions) or per WebSocket
/// with [`ws::connect_via`]. See `docs/proxies.md`.
pub mod proxy {
    pub use fahrbahn_rt::{Proxy, ProxyConfig, ProxyEnv, ProxyError};
}

/// WebSocket (RFC 6455, permessage-deflate RFC 7692): connections over any
/// byte stream, connecting by URL, server configuration. The functions
/// bound to a runtime are in [`tokio`], [`smol`]
/// and [`async_std`].
pub mod ws {
    #[cfg(feature = "tls")]
    pub use fahrbahn_rt::tls_connect_with;
    pub use fahrbahn_rt::{
        DEFAULT_MAX_PENDING_HANDSHAKES, Incoming, MaybeTlsStream, RequestCallback, WebSocket,
        WsReader, WsUrl, WsWriter, connect, connect_via, connect_with,
    };

    pub use fahrbahn_core::ws::{
        Accept, AllowedOrigins, ClientConfig, CloseCode, Closed, DeflateConfig, Error, Handshake,
        HandshakeRequest, Limits, Message, SendError, ServerConfig, Timeouts,
    };
}

/// WAMP v2: the client [`Session`](wamp::Session) (caller, callee,
/// publisher, subscriber), its options, payload values and errors, and the
/// embedded [`router`](wamp::router).
pub mod wamp {
    pub use fahrbahn_rt::{
        ByMatch, CallProgress, CallResult, ChallengeHandler, DEFAULT_MAX_QUEUED_EVENT_BYTES, Event,
        Framing, Invocation, Meta, ProgressiveCall, Registration, Revocation, Session,
        SessionOptions, Subscription, TestamentScope, WampUrl, from_payload, kwargs, to_args,
        to_payload,
    };
    pub use fahrbahn_rt::{
        CallOptions, InvocationStream, Invoke, RegisterOptions, StreamingCall, TimeoutUnit,
    };

    /// The reconnecting [`Component`](component::Component): transports,
    /// retry policy, error classification, handles that survive reconnects.
    pub mod component {
        pub use fahrbahn_rt::{
            Backoff, Component, ComponentBuilder, ComponentError, ComponentRegistration,
            ComponentSubscription, DEFAULT_CALL_TIMEOUT, DEFAULT_JOIN_WAIT, Disposition,
            RetryPolicy, SubscriptionItem, TransportConfig, WhenDisconnected, classify,
            classify_reason,
        };
    }

    pub use fahrbahn_core::wamp::{
        ApplicationError, AuthDetails, Closed, Codec, CommandError, Dict, Json, List,
        ProtocolViolation, PublicationId, RegistrationId, RequestId, RequestKind, Serializer,
        SessionConfig, SessionError, SessionId, SubscriptionId, TransportClosed, TransportError,
        Value, ValueError, error, from_value, to_value,
    };

    /// Authentication: the client's [`Credential`](auth::Credential)s
    /// (set with [`SessionOptions::credential`](super::wamp::SessionOptions::credential)),
    /// the router's [`StaticAuthenticator`](auth::StaticAuthenticator), and
    /// each method's computations. See `docs/auth.md`.
    pub mod auth {
        pub use fahrbahn_core::wamp::auth::{
            ANONYMOUS, AuthError, CRYPTOSIGN, Credential, CryptosignKey, Kdf, SCRAM,
            ScramCredential, Secret, StaticAuthenticator, TICKET, WAMPCRA, cryptosign, scram,
            ticket, wampcra,
        };
    }

    /// The embedded WAMP router, served on listeners of any runtime.
    pub mod router {
        pub use fahrbahn_rt::{
            ANONYMOUS_ROLE, AUTH_METHODS, AllowConfig, CryptosignConfig, DiscloseConfig,
            InProcessStream, ListenerConfig, ListenerInfo, MatchConfig, PermissionConfig,
            PrincipalConfig, RoleConfig, Router, RouterBuilder, RouterConfig, RouterLimits,
            ScramConfig, TlsFiles, TlsPrincipalConfig, TransportKind, WampCraConfig,
            certificate_fingerprint, resolve_secret,
        };

        pub use fahrbahn_core::wamp::router::{
            Action, AnonymousAuthenticator, AuthDecision, AuthenticateContext, Authenticator,
            Authorization, AuthorizeContext, Authorizer, Grants, HelloContext, Permission, Role,
            StaticAuthorizer, UriMatch,
        };
    }
}

/// What a runtime provides ([`Runtime`](runtime::Runtime),
/// [`Executor`](runtime::Executor)), and the byte-stream traits every
/// transport implements. Needed only to plug in another runtime or
/// transport.
pub mod runtime {
    pub use fahrbahn_rt::{
        AnyListener, AsyncRead, AsyncTimer, AsyncWrite, BoxFuture, BoxTransport, Executor,
        ExecutorHandle, Runtime, TcpListener, Transport,
    };
}

/// Functions bound to one runtime: `connect`, `connect_with`, `bind`,
/// `incoming`, `accept`, `accept_stream` (WebSocket) and `session`,
/// `session_with`, `component` (WAMP).
#[allow(unused_macros)] // unused when no runtime feature is on
macro_rules! runtime_module {
    ($(#[$meta:meta])* $name:ident, $krate:ident, $rt:ident $(, { $($extra:item)* })?) => {
        $(#[$meta])*
        pub mod $name {
            use std::net::SocketAddr;

            use fahrbahn_rt::{
                ClientConfig, Error, Incoming, MaybeTlsStream, Runtime, ServerConfig,
                TcpListener as _, WebSocket,
            };
            use fahrbahn_rt::{ComponentBuilder, Session, SessionOptions};
            pub use $krate::$rt;

            /// The TCP stream type of this runtime.
            pub type TcpStream = <$rt as Runtime>::TcpStream;
            /// The listener type of this runtime.
            pub type TcpListener = <$rt as Runtime>::TcpListener;
            /// A client WebSocket on this runtime.
            pub type ClientWebSocket = WebSocket<MaybeTlsStream<TcpStream>>;

            /// Connects to a `ws://` or `wss://` URL.
            pub async fn connect(url: &str) -> Result<ClientWebSocket, Error> {
                fahrbahn_rt::connect(&$rt, url).await
            }

            /// Connects to a URL with settings (host and path come from the URL).
            pub async fn connect_with(url: &str, config: ClientConfig) -> Result<ClientWebSocket, Error> {
                fahrbahn_rt::connect_with(&$rt, url, config).await
            }

            /// Connects to a URL with settings, through the proxy `proxy`
            /// names (see [`ProxyConfig`](crate::proxy::ProxyConfig)).
            pub async fn connect_via(
                url: &str,
                config: ClientConfig,
                proxy: &fahrbahn_rt::ProxyConfig,
            ) -> Result<ClientWebSocket, Error> {
                fahrbahn_rt::connect_via(&$rt, url, config, proxy).await
            }

            /// Binds a TCP listener.
            pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
                Ok($rt.bind_tcp(addr).await?)
            }

            /// The WebSocket connections arriving on `listener`, each
            /// handshaken in a task of its own (at most
            /// [`DEFAULT_MAX_PENDING_HANDSHAKES`](crate::ws::DEFAULT_MAX_PENDING_HANDSHAKES)
            /// at once, each bounded by `config.timeouts.open`): what a
            /// server loop should use. See [`Incoming`](crate::ws::Incoming).
            pub fn incoming(listener: TcpListener, config: ServerConfig) -> Incoming<TcpListener> {
                Incoming::new(&$rt, listener, config)
            }

            /// Accepts the next connection on `listener` and runs the
            /// server handshake **inline**: until it finishes (or
            /// `config.timeouts.open` passes, 10 s by default) no other
            /// connection is accepted, so a client that connects and says
            /// nothing stalls a loop built on this. Serve a listener with
            /// [`incoming`] instead.
            pub async fn accept(listener: &TcpListener, config: ServerConfig) -> Result<WebSocket<TcpStream>, Error> {
                let (stream, _) = listener.accept().await?;
                WebSocket::accept(&$rt, stream, config).await
            }

            /// Connects to a WAMP router (`ws://`, `wss://`, `rs://`, `rss://`,
            /// `unix:`) and joins `realm` anonymously.
            pub async fn session(url: &str, realm: &str) -> Result<Session, Error> {
                Session::connect(&$rt, url, realm).await
            }

            /// Connects to a WAMP router and joins with `options`.
            pub async fn session_with(
                url: &str,
                options: SessionOptions,
            ) -> Result<Session, Error> {
                Session::connect_with(&$rt, url, options).await
            }

            /// Joins a WAMP router over a byte stream the application
            /// provides, framed as `framing` says (see
            /// [`Session::join_stream`]). Tokio streams: wrap them in
            /// `TokioIo` (or use `session_over_tokio`).
            pub async fn session_over<S>(
                stream: S,
                framing: fahrbahn_rt::Framing,
                options: SessionOptions,
            ) -> Result<Session, Error>
            where
                S: fahrbahn_rt::AsyncRead + fahrbahn_rt::AsyncWrite + Send + Unpin + 'static,
            {
                Session::join_stream(&$rt, stream, framing, options).await
            }

            /// Starts a reconnecting [`Component`](crate::wamp::component::Component)
            /// built by `builder` on this runtime.
            pub fn component(builder: ComponentBuilder) -> fahrbahn_rt::Component {
                builder.start(&$rt)
            }

            /// Runs the server handshake over a stream accepted elsewhere.
            pub async fn accept_stream<S>(stream: S, config: ServerConfig) -> Result<WebSocket<S>, Error>
            where
                S: fahrbahn_rt::AsyncRead + fahrbahn_rt::AsyncWrite + Unpin,
            {
                WebSocket::accept(&$rt, stream, config).await
            }

            $($($extra)*)?
        }
    };
}

#[cfg(feature = "tokio")]
runtime_module!(
    /// WebSocket on tokio.
    tokio, fahrbahn_tokio, TokioRuntime, {
        pub use fahrbahn_tokio::TokioIo;

        /// [`session_over`] for a tokio byte stream (a `tokio::net::TcpStream`,
        /// a `tokio::io::DuplexStream`, a tokio TLS stream…).
        pub async fn session_over_tokio<S>(
            stream: S,
            framing: fahrbahn_rt::Framing,
            options: SessionOptions,
        ) -> Result<Session, Error>
        where
            S: ::tokio::io::AsyncRead + ::tokio::io::AsyncWrite + Send + Unpin + 'static,
        {
            session_over(TokioIo(stream), framing, options).await
        }
    }
);
#[cfg(feature = "smol")]
runtime_module!(
    /// WebSocket on smol.
    smol, fahrbahn_smol, SmolRuntime
);
#[cfg(feature = "async-std")]
runtime_module!(
    /// WebSocket on async-std (discontinued upstream; prefer smol).
    async_std, fahrbahn_async_std, AsyncStdRuntime
);

// The guides' code blocks are doctests too: `cargo test -p fahrbahn --doc`
// compiles (and, unless marked `no_run`, runs) every Rust block of these
// files, so the docs cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDocTests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/architecture.md")]
pub struct ArchitectureDocTests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/wamp.md")]
pub struct WampDocTests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/router.md")]
pub struct RouterDocTests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/auth.md")]
pub struct AuthDocTests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/proxies.md")]
pub struct ProxiesDocTests;

#[doc = include_str!("../../../docs/component.md")]
pub struct ComponentDocTests;

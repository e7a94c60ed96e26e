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
mod runtime;
mod websocket;

#[cfg(feature = "tls")]
pub use connect::tls_connect_with;
pub use connect::{MaybeTlsStream, WsUrl, connect, connect_with};
pub use error::Error;
pub use fahrbahn_core::ws::{
    Accept, ClientConfig, CloseCode, Closed, DeflateConfig, Handshake, HandshakeRequest, Limits,
    Message, ServerConfig, Timeouts,
};
pub use runtime::{AsyncTimer, BoxFuture, Runtime, TcpListener};
pub use websocket::{RequestCallback, WebSocket, WsReader, WsWriter};

/// The byte-stream traits every transport implements.
pub use futures_io::{AsyncRead, AsyncWrite};

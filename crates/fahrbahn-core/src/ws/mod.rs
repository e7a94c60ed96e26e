//! WebSocket (RFC 6455) with permessage-deflate (RFC 7692), sans-IO.
//!
//! The entry point is [`Connection`]: create it with
//! [`Connection::client`] or [`Connection::server`], then drive it as the
//! crate documentation shows.

mod config;
mod connection;
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
mod deflate;
mod error;
mod frame;
mod handshake;
mod mask;
mod message;
mod origin;
mod utf8;

pub use config::{ClientConfig, DeflateConfig, Limits, ServerConfig, Timeouts};
pub use connection::{Accept, Closed, Connection, Event, Handshake, MAX_QUEUED_PONGS, Role};
pub use error::{Error, HandshakeError, ProtocolError, SendError};
pub use handshake::{HandshakeRequest, accept_key};
pub use message::{CloseCode, Message};
pub use origin::AllowedOrigins;

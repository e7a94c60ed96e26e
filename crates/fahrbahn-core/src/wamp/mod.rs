//! WAMP v2 (the Web Application Messaging Protocol) message layer, sans-IO.
//!
//! - [`Value`], [`Dict`], [`List`]: the dynamic values in messages, with
//!   typed access through serde ([`to_value`], [`from_value`]); they
//!   display as JSON, and [`Json`] displays a message's `args`/`kwargs`.
//! - [`Message`]: every basic and advanced profile message, with
//!   validation of the array form ([`Message::from_value`]).
//! - [`Serializer`]: JSON, MessagePack and CBOR codecs, subprotocol names,
//!   RawSocket IDs and batched framing.
//! - [`is_valid_uri`], [`is_valid_uri_pattern`]: URI rules;
//!   [`error`]: the standard error and close URIs.
//! - [`IdGenerator`], [`random_id`]: session- and global-scope IDs.
//!
//! # Example
//!
//! ```
//! use fahrbahn_core::wamp::{Dict, Message, Serializer, Value, from_value, to_value};
//!
//! // A caller packs typed arguments…
//! let call = Message::Call {
//!     request: 1,
//!     options: Dict::new(),
//!     procedure: "com.example.add2".into(),
//!     args: Some(vec![to_value(&2).unwrap(), to_value(&3).unwrap()]),
//!     kwargs: None,
//! };
//! let mut wire = Vec::new();
//! Serializer::Json.encode(&call, &mut wire);
//! assert_eq!(wire, br#"[48,1,{},"com.example.add2",[2,3]]"#);
//!
//! // …and the callee's side reads them back.
//! match Serializer::Json.decode(&wire).unwrap() {
//!     Message::Call { procedure, args: Some(args), .. } => {
//!         assert_eq!(procedure, "com.example.add2");
//!         let (a, b): (i64, i64) = from_value(Value::List(args)).unwrap();
//!         assert_eq!(a + b, 5);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

#[cfg(feature = "auth")]
pub mod auth;
mod client;
mod codec;
pub mod error;
mod framing;
mod id;
mod message;
mod raw;
#[cfg(feature = "router")]
pub mod router;
mod serializer;
mod server;
mod session;
mod transport;
mod uri;
mod value;

pub use client::ClientConnection;
pub use codec::Codec;
pub use error::DecodeError;
pub use id::{
    IdGenerator, MAX_ID, PublicationId, RegistrationId, RequestId, SessionId, SubscriptionId,
    is_valid_id, random_id,
};
pub use message::Message;
pub use raw::{EncodedPayload, RawMessage};
pub use serializer::{MAX_NESTING, Serializer};
pub use server::{ServerConnection, ServerEvent, server_subprotocols};
pub use session::{
    ApplicationError, AuthDetails, CallOptions, Closed, CommandError, Invoke, ProtocolViolation,
    RegisterOptions, RequestKind, Session, SessionConfig, SessionError, SessionEvent, TimeoutUnit,
    client_roles,
};
pub use transport::{SendError, TransportClosed, TransportError};
pub use uri::{is_valid_uri, is_valid_uri_pattern};
pub use value::{Dict, Json, List, Value, ValueError, from_value, to_value};

#[cfg(all(test, feature = "msgpack", feature = "cbor"))]
mod tests;

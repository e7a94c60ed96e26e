//! WAMP RawSocket (the WAMP spec's "RawSocket transport"), sans-IO: the
//! 4-byte handshake and length-prefixed frames over any byte stream.
//!
//! ```
//! use std::time::Instant;
//! use fahrbahn_core::rawsocket::{ClientConfig, Connection, Event, ServerConfig};
//!
//! let now = Instant::now();
//! let mut client = Connection::client(ClientConfig::new(2), now); // 2 = msgpack
//! let mut server = Connection::server(ServerConfig::new(vec![1, 2, 3]), now);
//! let mut buf = Vec::new();
//! let _ = client.poll_transmit(&mut buf);
//! server.handle_bytes(now, &buf);
//! buf.clear();
//! let _ = server.poll_transmit(&mut buf);
//! client.handle_bytes(now, &buf);
//! assert!(matches!(client.poll_event(), Some(Event::Connected { serializer: 2, .. })));
//! client.send(b"hello").unwrap();
//! buf.clear();
//! let _ = client.poll_transmit(&mut buf);
//! server.handle_bytes(now, &buf);
//! assert!(matches!(server.poll_event(), Some(Event::Connected { .. })));
//! assert_eq!(server.poll_event(), Some(Event::Message(b"hello".to_vec())));
//! ```

mod connection;
mod error;

pub use connection::{ClientConfig, Closed, Connection, Event, ServerConfig, max_len_for_exponent};
pub use error::{Error, HandshakeErrorCode};

//! Sans-IO protocol core of Fahrbahn.
//!
//! Every protocol state machine in this crate works over byte buffers: bytes
//! go in through `handle_*` methods, commands (`send`, `ping`, `close`, …)
//! queue work, and bytes, events and timer deadlines come out through
//! `poll_*` methods. Time is passed in explicitly (`now: Instant`); the crate
//! never touches a socket, a clock, a thread or an executor, so it can be
//! driven by any runtime or a custom transport. The async adapters
//! (`fahrbahn-tokio`, `fahrbahn-smol`, `fahrbahn-async-std`) are thin drivers
//! over it.
//!
//! Modules:
//! - [`ws`]: WebSocket (RFC 6455) with permessage-deflate (RFC 7692).
//! - [`rawsocket`]: WAMP's RawSocket framing.
//! - [`retry`]: the reconnection back-off and error classification.
//! - [`wamp`]: WAMP v2 messages, serializers, the client session, the
//!   client and server transports, and the embedded router.
//!
//! Every byte-level machine implements [`Machine`], so one driver loop runs
//! any of them.
//!
//! # Example: a client and a server connected in memory
//!
//! ```
//! use std::time::Instant;
//! use fahrbahn_core::ws::{ClientConfig, Connection, Event, Message, ServerConfig};
//! use fahrbahn_core::Rng;
//!
//! let now = Instant::now();
//! let mut client = Connection::client(ClientConfig::new("localhost", "/"), Rng::from_seed(1), now);
//! let mut server = Connection::server(ServerConfig::default(), Rng::from_seed(2), now);
//! let mut buf = Vec::new();
//! // Move bytes both ways until both sides are quiet.
//! fn pump(a: &mut Connection, b: &mut Connection, buf: &mut Vec<u8>, now: Instant) {
//!     loop {
//!         buf.clear();
//!         a.poll_transmit(buf);
//!         let moved_ab = !buf.is_empty();
//!         b.handle_bytes(now, buf);
//!         buf.clear();
//!         b.poll_transmit(buf);
//!         let moved_ba = !buf.is_empty();
//!         a.handle_bytes(now, buf);
//!         if !moved_ab && !moved_ba { break; }
//!     }
//! }
//! pump(&mut client, &mut server, &mut buf, now);
//! assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
//! assert!(matches!(server.poll_event(), Some(Event::Connected(_))));
//! client.send(Message::text("hello")).unwrap();
//! pump(&mut client, &mut server, &mut buf, now);
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::text("hello"))));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod machine;
pub mod rawsocket;
pub mod retry;
mod rng;
pub mod wamp;
pub mod ws;

pub use machine::{CloseOrder, Machine};
pub use rng::Rng;

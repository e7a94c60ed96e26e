//! The echo matrix: the servers of the `bench` crate, the message kinds
//! and the loads, and the permessage-deflate case. The server names are
//! the `bench` crate's too (it re-exports them for `echo_server`).

use std::time::Duration;

/// How long a benchmark server may take to listen.
pub(crate) const SERVER_START: Duration = Duration::from_secs(20);

/// The echo servers of the `bench` crate's `echo_server`, each on a
/// single-threaded runtime, in report order (the first is the one the
/// ratios are for).
pub const SERVERS: [&str; 7] = [
    "fahrbahn-tokio",
    "fahrbahn-smol",
    "fahrbahn-async-std",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "ceiling",
];

/// The servers Fahrbahn is compared with in the ratio table.
pub(crate) const PEERS: [&str; 4] = [
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "ceiling",
];

pub(crate) const KINDS: [&str; 2] = ["binary", "text"];

/// The kind of the permessage-deflate case: compressed JSON text.
pub(crate) const DEFLATE: &str = "deflate";

/// The permessage-deflate echo servers of `echo_server` (level 1), each on
/// a single-threaded runtime. No deflate-capable peer crate is among them:
/// tokio-tungstenite, fastwebsockets and tokio-websockets do not implement
/// permessage-deflate, and soketto 0.8's inflater fails on every message
/// once the workspace's `flate2` uses the zlib-rs backend (see
/// docs/benchmarks.md).
pub const DEFLATE_SERVERS: [&str; 2] = ["fahrbahn-tokio-deflate", "fahrbahn-smol-deflate"];

/// The load of the permessage-deflate case: connections and message size.
pub const DEFLATE_LOAD: (usize, usize) = (100, 1 << 10);

/// One load of the echo matrix: `connections`, each keeping one message of
/// `size` bytes in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Load {
    pub(crate) connections: usize,
    pub(crate) size: usize,
}

impl Load {
    pub(crate) const fn new(connections: usize, size: usize) -> Self {
        Self { connections, size }
    }

    /// `100 × 20 B`.
    pub(crate) fn name(self) -> String {
        format!("{} × {}", self.connections, size_name(self.size))
    }
}

/// The echo matrix of the issue: small messages over many connections, a
/// few connections with 1 KiB, and 16 KiB over 200 and 500 connections.
pub(crate) const LOADS: [Load; 4] = [
    Load::new(100, 20),
    Load::new(10, 1 << 10),
    Load::new(200, 16 << 10),
    Load::new(500, 16 << 10),
];

pub(crate) fn size_name(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

//! Configuration of WebSocket connections: limits, timeouts, negotiation.

use std::time::Duration;

/// Size limits that bound memory use against a hostile peer.
///
/// ```
/// use fahrbahn_core::ws::Limits;
/// let mut limits = Limits::default();
/// limits.max_message_size = 1 << 20;
/// assert_eq!(limits.max_frame_size, 16 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted frame payload (default 16 MiB); larger: close 1009.
    pub max_frame_size: usize,
    /// Largest accepted message, after decompression (default 64 MiB);
    /// larger: close 1009.
    pub max_message_size: usize,
    /// Largest accepted HTTP head of the opening handshake (default 16 KiB).
    pub max_handshake_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_handshake_size: 16 << 10,
        }
    }
}

/// Timers of a connection. Deadlines are computed from the `now` passed to
/// the state machine; nothing here reads a clock.
///
/// ```
/// use std::time::Duration;
/// use fahrbahn_core::ws::Timeouts;
/// let mut timeouts = Timeouts::default();
/// timeouts.ping_interval = Some(Duration::from_secs(30));
/// assert_eq!(timeouts.pong_timeout, Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// How long the opening handshake may take (default 10 s).
    pub open: Duration,
    /// How long to wait for the peer's close frame after sending ours, and
    /// for the transport to end after the close handshake (default 5 s).
    pub close: Duration,
    /// Send a ping after this much time without one (default: off).
    pub ping_interval: Option<Duration>,
    /// Fail the connection (close 1011) when a ping is not answered within
    /// this time (default 20 s).
    pub pong_timeout: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            open: Duration::from_secs(10),
            close: Duration::from_secs(5),
            ping_interval: None,
            pong_timeout: Duration::from_secs(20),
        }
    }
}

/// permessage-deflate (RFC 7692) parameters for our side of a connection.
///
/// A client offers these; a server accepts the first acceptable offer and
/// answers with the stricter of the offer and these settings. Window sizes
/// are `8..=15` bits.
///
/// ```
/// use fahrbahn_core::ws::DeflateConfig;
/// let mut cfg = DeflateConfig::default();
/// cfg.server_no_context_takeover = true;
/// assert_eq!(cfg.level, 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Ask (client) / require (server) that the client resets its
    /// compression context after each message.
    pub client_no_context_takeover: bool,
    /// Ask (client) / require (server) that the server resets its
    /// compression context after each message.
    pub server_no_context_takeover: bool,
    /// Upper bound for the client's LZ77 window, in bits.
    pub client_max_window_bits: Option<u8>,
    /// Upper bound for the server's LZ77 window, in bits.
    pub server_max_window_bits: Option<u8>,
    /// zlib compression level 0–9 (default 6).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (default 0: all).
    pub min_message_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: None,
            server_max_window_bits: None,
            level: 6,
            min_message_size: 0,
        }
    }
}

/// Configuration of a client connection.
///
/// ```
/// use fahrbahn_core::ws::ClientConfig;
/// let mut cfg = ClientConfig::new("example.com:8080", "/ws?x=1");
/// cfg.subprotocols.push("wamp.2.json".into());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The `Host` header (host, plus `:port` when not the default).
    pub host: String,
    /// The request target (path and query), e.g. `/chat`.
    pub path: String,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// Subprotocols offered, in order of preference.
    pub subprotocols: Vec<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// permessage-deflate offer (`None`: not offered). Needs the `deflate`
    /// feature.
    pub deflate: Option<DeflateConfig>,
    /// Size limits.
    pub limits: Limits,
    /// Timers.
    pub timeouts: Timeouts,
}

impl Default for ClientConfig {
    /// `localhost`, path `/`; the async layer fills both from the URL.
    fn default() -> Self {
        Self::new("localhost", "/")
    }
}

impl ClientConfig {
    /// A configuration for `ws://host/path` with default settings.
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            path: path.into(),
            origin: None,
            subprotocols: Vec::new(),
            headers: Vec::new(),
            deflate: None,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// Configuration of a server connection.
///
/// ```
/// use fahrbahn_core::ws::{DeflateConfig, ServerConfig};
/// let mut cfg = ServerConfig::default();
/// cfg.subprotocols = vec!["wamp.2.json".into()];
/// cfg.deflate = Some(DeflateConfig::default());
/// assert!(!cfg.defer_accept);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Subprotocols supported, in order of preference: the first one the
    /// client also offered is chosen.
    pub subprotocols: Vec<String>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// permessage-deflate settings (`None`: decline every offer).
    pub deflate: Option<DeflateConfig>,
    /// When set, the connection emits [`Event::Request`](super::Event::Request)
    /// and waits for [`accept`](super::Connection::accept) or
    /// [`reject`](super::Connection::reject) instead of accepting by itself.
    pub defer_accept: bool,
    /// The `Origin`s accepted (`None`, the default: every origin). A
    /// request from another origin is refused with HTTP 403 before it is
    /// accepted or announced ([`defer_accept`](Self::defer_accept)).
    pub allowed_origins: Option<super::AllowedOrigins>,
    /// Size limits.
    pub limits: Limits,
    /// Timers.
    pub timeouts: Timeouts,
}

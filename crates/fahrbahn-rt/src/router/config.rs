//! Router configuration: listeners, limits, realms, from a builder or a
//! TOML file.

use std::path::Path;

use serde::Deserialize;

use super::Router;
use crate::error::{ConfigError, Error};
use crate::runtime::Runtime;

/// The transport a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TransportKind {
    /// WAMP over WebSocket (any path; `wamp.2.*` subprotocols).
    WebSocket,
    /// WAMP over RawSocket.
    RawSocket,
}

/// One listener of the router.
///
/// ```
/// use fahrbahn_rt::{ListenerConfig, TlsFiles, TransportKind};
/// let mut listener = ListenerConfig::tcp(TransportKind::WebSocket, "127.0.0.1:8443");
/// listener.tls = Some(TlsFiles::new("cert.pem", "key.pem"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// `websocket` or `rawsocket`.
    pub transport: TransportKind,
    /// A TCP address, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    #[serde(default)]
    pub address: Option<String>,
    /// A Unix socket path instead of a TCP address.
    #[serde(default)]
    pub unix: Option<String>,
    /// Serve TLS (`wss://`, `rss://`) with this certificate and key
    /// (needs the `tls` feature).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

impl ListenerConfig {
    /// A listener on a TCP address, e.g. `127.0.0.1:8080`, without TLS.
    pub fn tcp(transport: TransportKind, address: impl Into<String>) -> Self {
        Self {
            transport,
            address: Some(address.into()),
            unix: None,
            tls: None,
        }
    }

    /// A listener on a Unix socket path, without TLS.
    pub fn unix(transport: TransportKind, path: impl Into<String>) -> Self {
        Self {
            transport,
            address: None,
            unix: Some(path.into()),
            tls: None,
        }
    }
}

/// PEM files for a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The certificate chain (PEM), leaf first.
    pub certificate: String,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

impl TlsFiles {
    /// The certificate chain and private key at these paths (PEM).
    pub fn new(certificate: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            certificate: certificate.into(),
            key: key.into(),
        }
    }
}

/// Limits that protect the router from its clients. Every limit has a
/// default; `docs/router.md` lists them.
///
/// ```
/// use fahrbahn_rt::RouterLimits;
/// let mut limits = RouterLimits::default();
/// limits.outbound_queue_bytes = 1 << 20;
/// assert_eq!(limits.hello_timeout_secs, 10);
/// assert_eq!(limits.max_registrations_per_session, 1000);
/// assert_eq!(limits.max_subscriptions_per_session, 1000);
/// assert_eq!(limits.max_connections, 10_000);
/// assert_eq!((limits.ping_interval_secs, limits.ping_timeout_secs), (30, 15));
/// assert_eq!(limits.max_pending_calls_per_session, 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RouterLimits {
    /// Largest message accepted from a client, in bytes (default 16 MiB).
    pub max_message_size: usize,
    /// Bytes held for one client and not yet written to its socket —
    /// queued in the router core plus buffered by its connection task —
    /// before it is disconnected as a slow consumer (default 16 MiB;
    /// WebSocket close 1008).
    pub outbound_queue_bytes: usize,
    /// Messages queued for one client, and not taken by its socket, before
    /// it is disconnected as too slow (default 4096): a secondary bound,
    /// for many tiny messages.
    pub outbound_queue: usize,
    /// Seconds a client may take from connecting to HELLO, and from each
    /// CHALLENGE to AUTHENTICATE (default 10).
    pub hello_timeout_secs: u64,
    /// Registrations one session may hold (default 1000). One more REGISTER
    /// is answered with ERROR `wamp.error.not_authorized`, the reason in
    /// `args[0]`; the session stays.
    pub max_registrations_per_session: usize,
    /// Subscriptions one session may hold, counted by subscription id
    /// (default 1000). One more SUBSCRIBE is answered with ERROR
    /// `wamp.error.not_authorized`; the session stays.
    pub max_subscriptions_per_session: usize,
    /// Bytes of URIs one session may hold: the summed length of the
    /// procedures it registered and the topics it subscribed (default
    /// 1 MiB). Over it, REGISTER and SUBSCRIBE are refused as above.
    pub max_uri_bytes_per_session: usize,
    /// Transports open at once, over all listeners, at most (default
    /// 10000). While at the bound, the accept loops close each new
    /// connection at once, before any handshake (the client sees the end
    /// of the stream), and log it.
    pub max_connections: usize,
    /// Seconds between the keepalive pings the router sends each client,
    /// WebSocket and RawSocket (default 30; 0 turns keepalive off).
    pub ping_interval_secs: u64,
    /// Seconds a client may take to answer a keepalive ping (default 15).
    /// Then its transport is closed (WebSocket close 1011) and its session
    /// leaves: its registrations and subscriptions are freed.
    pub ping_timeout_secs: u64,
    /// Calls one session may have waiting for their answer (default
    /// 1000); a CALL beyond it gets ERROR `wamp.error.not_authorized`
    /// and the session stays up.
    pub max_pending_calls_per_session: usize,
    /// Read-side high-water mark of each connection, in bytes (default
    /// 1 MiB): the router stops reading from a client while more than this
    /// much of what it answered to that client's input (pongs, automatic
    /// replies) is unsent, and resumes once the client reads.
    pub read_high_water: usize,
}

impl Default for RouterLimits {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            outbound_queue_bytes: 16 << 20,
            outbound_queue: 4096,
            hello_timeout_secs: 10,
            max_registrations_per_session: 1000,
            max_subscriptions_per_session: 1000,
            max_uri_bytes_per_session: 1 << 20,
            max_connections: 10_000,
            ping_interval_secs: 30,
            ping_timeout_secs: 15,
            max_pending_calls_per_session: 1000,
            read_high_water: crate::driver::DEFAULT_HIGH_WATER,
        }
    }
}

/// Router configuration, from a builder or a TOML file.
///
/// ```
/// use fahrbahn_rt::RouterConfig;
/// let config = RouterConfig::from_toml(r#"
///     realms = ["realm1", "realm2"]
///
///     [[listener]]
///     transport = "websocket"
///     address = "127.0.0.1:8080"
///
///     [[listener]]
///     transport = "rawsocket"
///     unix = "/tmp/fahrbahn.sock"
///
///     [limits]
///     outbound_queue = 1000
/// "#).unwrap();
/// assert_eq!(config.listeners.len(), 2);
/// assert_eq!(config.limits.outbound_queue, 1000);
///
/// let mut config = RouterConfig::default();
/// config.realms = vec!["realm2".into()];
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Realms served (default `["realm1"]`).
    #[serde(default = "default_realms")]
    pub realms: Vec<String>,
    /// Listeners (`[[listener]]` tables in TOML).
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Limits.
    #[serde(default)]
    pub limits: RouterLimits,
}

fn default_realms() -> Vec<String> {
    vec!["realm1".to_owned()]
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            realms: default_realms(),
            listeners: Vec::new(),
            limits: RouterLimits::default(),
        }
    }
}

impl RouterConfig {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: RouterConfig = toml::from_str(text).map_err(ConfigError::Toml)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self
            .listeners
            .iter()
            .any(|l| l.address.is_some() == l.unix.is_some())
        {
            return Err(ConfigError::ListenerAddress);
        }
        if self.realms.is_empty() {
            return Err(ConfigError::NoRealm);
        }
        Ok(())
    }
}

/// Builds and starts a router.
///
/// ```no_run
/// # async fn demo<R: fahrbahn_rt::Runtime>(rt: R) -> Result<(), fahrbahn_rt::Error> {
/// let router = fahrbahn_rt::Router::builder()
///     .realm("realm1")
///     .websocket("127.0.0.1:0")
///     .rawsocket("127.0.0.1:0")
///     .start(&rt)
///     .await?;
/// let url = router.websocket_url().unwrap();
/// // … clients connect to `url` …
/// router.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RouterBuilder {
    config: RouterConfig,
    explicit_realms: bool,
}

impl RouterBuilder {
    /// Starts from a configuration (e.g. read from TOML).
    pub fn config(mut self, config: RouterConfig) -> Self {
        self.config = config;
        self.explicit_realms = true;
        self
    }

    /// Adds a realm (the first call replaces the default `realm1`).
    pub fn realm(mut self, name: &str) -> Self {
        if !self.explicit_realms {
            self.config.realms.clear();
            self.explicit_realms = true;
        }
        self.config.realms.push(name.to_owned());
        self
    }

    /// Adds a WebSocket listener on a TCP address.
    pub fn websocket(mut self, address: &str) -> Self {
        self.config
            .listeners
            .push(ListenerConfig::tcp(TransportKind::WebSocket, address));
        self
    }

    /// Adds a RawSocket listener on a TCP address.
    pub fn rawsocket(mut self, address: &str) -> Self {
        self.config
            .listeners
            .push(ListenerConfig::tcp(TransportKind::RawSocket, address));
        self
    }

    /// Adds any listener, e.g. one with TLS.
    pub fn listener(mut self, listener: ListenerConfig) -> Self {
        self.config.listeners.push(listener);
        self
    }

    /// Adds a listener on a Unix socket path.
    pub fn unix(mut self, transport: TransportKind, path: &str) -> Self {
        self.config
            .listeners
            .push(ListenerConfig::unix(transport, path));
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: RouterLimits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Binds every listener and starts serving on `runtime`.
    pub async fn start<R: Runtime>(self, runtime: &R) -> Result<Router, Error> {
        Router::start(runtime, self.config).await
    }

    /// The configuration built so far.
    pub fn build(self) -> RouterConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_limits_parse_from_toml() {
        let config = RouterConfig::from_toml(
            r#"
            [limits]
            max_registrations_per_session = 10
            max_subscriptions_per_session = 20
            max_uri_bytes_per_session = 4096
            max_connections = 3
            ping_interval_secs = 5
            ping_timeout_secs = 2
            "#,
        )
        .unwrap();
        let limits = config.limits;
        assert_eq!(limits.max_registrations_per_session, 10);
        assert_eq!(limits.max_subscriptions_per_session, 20);
        assert_eq!(limits.max_uri_bytes_per_session, 4096);
        assert_eq!(limits.max_connections, 3);
        assert_eq!(limits.ping_interval_secs, 5);
        assert_eq!(limits.ping_timeout_secs, 2);
        // Unset keys keep their defaults.
        let defaults = RouterConfig::from_toml("[limits]\n").unwrap().limits;
        assert_eq!(defaults, RouterLimits::default());
        assert_eq!(defaults.max_registrations_per_session, 1000);
        assert_eq!(defaults.max_subscriptions_per_session, 1000);
        assert_eq!(defaults.max_uri_bytes_per_session, 1 << 20);
        assert_eq!(defaults.max_connections, 10_000);
        assert_eq!(defaults.ping_interval_secs, 30);
        assert_eq!(defaults.ping_timeout_secs, 15);
    }
}

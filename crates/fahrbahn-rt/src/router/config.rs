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
/// limits.outbound_queue = 1000;
/// assert_eq!(limits.hello_timeout_secs, 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RouterLimits {
    /// Largest message accepted from a client, in bytes (default 16 MiB).
    pub max_message_size: usize,
    /// Messages queued for one client, and not taken by its socket, before
    /// it is disconnected as too slow (default 4096).
    pub outbound_queue: usize,
    /// Seconds a client may take from connecting to HELLO, and from each
    /// CHALLENGE to AUTHENTICATE (default 10).
    pub hello_timeout_secs: u64,
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
            outbound_queue: 4096,
            hello_timeout_secs: 10,
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

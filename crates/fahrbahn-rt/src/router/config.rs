//! Router configuration: listeners, limits, realms, from a builder or a
//! TOML file.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use fahrbahn_core::wamp::router::{
    Authenticator, Authorizer, Grants, Permission, Role, StaticAuthorizer, UriMatch,
};
use serde::Deserialize;

use super::Router;
use super::auth::PrincipalConfig;
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
    /// WebSocket only: the `Origin`s accepted (exact, or with `*`
    /// wildcards such as `https://*.example.com` or `http://127.0.0.1:*`;
    /// `null` only if listed). Unset: every origin — any web page the
    /// user visits can then reach the router. A request without `Origin`
    /// (non-browser clients) is always accepted; a refused one gets HTTP
    /// 403.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// Allow a TCP address other than loopback (e.g. `0.0.0.0:8080`).
    /// Without it such a listener is refused at start: a router reachable
    /// from other machines should have roles, authentication and
    /// `allowed_origins` configured deliberately.
    #[serde(default)]
    pub expose: bool,
    /// The authentication methods this listener accepts: `anonymous`,
    /// `ticket`, `wampcra`, `cryptosign`, `scram` (the client's order of
    /// preference decides among them). Unset: every session
    /// joins anonymously (allowed only while no `[[principal]]` is
    /// configured). A client offering none of them gets ABORT
    /// `wamp.error.no_auth_method`.
    #[serde(default)]
    pub auth: Option<Vec<String>>,
}

impl ListenerConfig {
    /// A listener on a TCP address, e.g. `127.0.0.1:8080`, without TLS.
    pub fn tcp(transport: TransportKind, address: impl Into<String>) -> Self {
        Self {
            transport,
            address: Some(address.into()),
            unix: None,
            tls: None,
            allowed_origins: None,
            expose: false,
            auth: None,
        }
    }

    /// A listener on a Unix socket path, without TLS.
    pub fn unix(transport: TransportKind, path: impl Into<String>) -> Self {
        Self::unix_inner(transport, path.into())
    }

    /// The authentication methods it accepts (builder style), e.g.
    /// `["ticket", "scram"]`; list `anonymous` to let sessions without
    /// credentials join (authrole `anonymous`).
    ///
    /// ```
    /// use fahrbahn_rt::{ListenerConfig, TransportKind};
    /// let listener = ListenerConfig::tcp(TransportKind::WebSocket, "127.0.0.1:8080")
    ///     .with_auth(["ticket", "scram"]);
    /// assert_eq!(listener.auth.unwrap(), ["ticket", "scram"]);
    /// ```
    pub fn with_auth(mut self, methods: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.auth = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    fn unix_inner(transport: TransportKind, path: String) -> Self {
        Self {
            transport,
            address: None,
            unix: Some(path),
            tls: None,
            allowed_origins: None,
            expose: false,
            auth: None,
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
/// assert_eq!((limits.auth_timeout_secs, limits.max_auth_rounds), (10, 3));
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
    /// Seconds a client may take from connecting to HELLO (default 10).
    pub hello_timeout_secs: u64,
    /// Seconds authentication may take, from HELLO to WELCOME over every
    /// CHALLENGE (default 10); then ABORT `wamp.error.not_authorized`.
    pub auth_timeout_secs: u64,
    /// CHALLENGEs one HELLO may get (default 3): one more gets ABORT
    /// `wamp.error.not_authorized`, and every ABORT closes the transport,
    /// so this bounds the failed attempts per connection.
    pub max_auth_rounds: usize,
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
            auth_timeout_secs: 10,
            max_auth_rounds: 3,
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
    /// Roles with per-URI permissions (`[[role]]` tables in TOML). A
    /// realm without roles lets every session do everything; a realm with
    /// roles denies what its sessions' roles do not allow, and everything
    /// to a session whose authrole it does not define.
    #[serde(default, rename = "role")]
    pub roles: Vec<RoleConfig>,
    /// Static principals (`[[principal]]` tables in TOML): who may
    /// authenticate, with which credential, and the role each gets. With
    /// principals, every listener must list the methods it accepts
    /// (`auth`).
    #[serde(default, rename = "principal")]
    pub principals: Vec<PrincipalConfig>,
}

/// One role of one realm, as in Crossbar.io's static authorization.
///
/// ```
/// use fahrbahn_rt::RouterConfig;
/// let config = RouterConfig::from_toml(r#"
///     realms = ["realm1"]
///
///     [[role]]
///     realm = "realm1"
///     name = "restricted"
///     permissions = [
///         { uri = "com.example.", match = "prefix", allow = { call = true, subscribe = true } },
///     ]
/// "#).unwrap();
/// assert_eq!(config.roles[0].permissions[0].allow.call, true);
/// assert_eq!(config.roles[0].permissions[0].allow.register, false);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RoleConfig {
    /// The realm (one of `realms`).
    pub realm: String,
    /// The role name: sessions whose authrole is this get its permissions.
    pub name: String,
    /// Its rules (none: the role may do nothing).
    #[serde(default)]
    pub permissions: Vec<PermissionConfig>,
}

impl RoleConfig {
    /// A role without permissions yet.
    pub fn new(realm: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            realm: realm.into(),
            name: name.into(),
            permissions: Vec::new(),
        }
    }

    /// Adds a rule (builder style).
    pub fn permission(mut self, permission: PermissionConfig) -> Self {
        self.permissions.push(permission);
        self
    }

    /// The core role these rules make.
    pub fn to_role(&self) -> Role {
        Role::new(self.permissions.iter().map(PermissionConfig::to_permission))
    }
}

/// How a [`PermissionConfig`]'s URI matches (`match` in TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MatchConfig {
    /// The URI itself (the default).
    #[default]
    Exact,
    /// Every URI starting with it (`""`: every URI).
    Prefix,
    /// Empty components match any one component (`com..update`).
    Wildcard,
}

/// One rule of a role: a URI, how it matches, what it allows and
/// discloses. Which rule decides: an `exact` one, else the most specific
/// `wildcard` one, else the longest `prefix` one, else none (denied).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PermissionConfig {
    /// The URI, prefix or wildcard pattern.
    pub uri: String,
    /// `exact` (default), `prefix` or `wildcard`.
    #[serde(default, rename = "match")]
    pub match_: MatchConfig,
    /// What it allows (each defaults to `false`).
    #[serde(default)]
    pub allow: AllowConfig,
    /// What it discloses (each defaults to `false`).
    #[serde(default)]
    pub disclose: DiscloseConfig,
}

impl PermissionConfig {
    /// A rule that allows nothing yet.
    pub fn new(uri: impl Into<String>, match_: MatchConfig) -> Self {
        Self {
            uri: uri.into(),
            match_,
            allow: AllowConfig::default(),
            disclose: DiscloseConfig::default(),
        }
    }

    /// The core permission.
    pub fn to_permission(&self) -> Permission {
        let policy = match self.match_ {
            MatchConfig::Exact => UriMatch::Exact,
            MatchConfig::Prefix => UriMatch::Prefix,
            MatchConfig::Wildcard => UriMatch::Wildcard,
        };
        let mut grants = Grants::NONE;
        grants.call = self.allow.call;
        grants.register = self.allow.register;
        grants.publish = self.allow.publish;
        grants.subscribe = self.allow.subscribe;
        grants.disclose_caller = self.disclose.caller;
        grants.disclose_publisher = self.disclose.publisher;
        Permission::new(self.uri.clone(), policy, grants)
    }
}

/// The actions a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AllowConfig {
    /// CALL.
    pub call: bool,
    /// REGISTER.
    pub register: bool,
    /// PUBLISH.
    pub publish: bool,
    /// SUBSCRIBE.
    pub subscribe: bool,
}

impl AllowConfig {
    /// Every action.
    pub const ALL: AllowConfig = AllowConfig {
        call: true,
        register: true,
        publish: true,
        subscribe: true,
    };
}

/// What a rule discloses to callees and subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DiscloseConfig {
    /// The caller's session id, authid and authrole in each INVOCATION.
    pub caller: bool,
    /// The publisher's session id, authid and authrole in each EVENT.
    pub publisher: bool,
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
            roles: Vec::new(),
            principals: Vec::new(),
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
        if self
            .listeners
            .iter()
            .any(|l| l.allowed_origins.is_some() && l.transport != TransportKind::WebSocket)
        {
            return Err(ConfigError::OriginsNotWebSocket);
        }
        let mut seen = std::collections::BTreeSet::new();
        for role in &self.roles {
            if !self.realms.contains(&role.realm) {
                return Err(ConfigError::RoleRealm {
                    realm: role.realm.clone(),
                    role: role.name.clone(),
                });
            }
            if !seen.insert((&role.realm, &role.name)) {
                return Err(ConfigError::DuplicateRole {
                    realm: role.realm.clone(),
                    role: role.name.clone(),
                });
            }
        }
        super::auth::validate(self)?;
        for l in &self.listeners {
            if let (Some(address), false) = (&l.address, l.expose) {
                // Unparsable addresses are reported when binding.
                if address
                    .parse::<SocketAddr>()
                    .is_ok_and(|a| !a.ip().is_loopback())
                {
                    return Err(ConfigError::NotLoopback {
                        address: address.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The static authorizer the `roles` make.
    pub(super) fn static_authorizer(&self) -> StaticAuthorizer {
        let mut authorizer = StaticAuthorizer::new();
        for role in &self.roles {
            authorizer.add_role(&role.realm, &role.name, role.to_role());
        }
        authorizer
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
#[derive(Default)]
pub struct RouterBuilder {
    config: RouterConfig,
    explicit_realms: bool,
    plugins: Plugins,
}

/// What the builder plugs into the router core besides the configuration.
#[derive(Default)]
pub(super) struct Plugins {
    pub(super) authenticator: Option<Box<dyn Authenticator + Send>>,
    pub(super) authorizer: Option<Box<dyn Authorizer + Send>>,
}

impl fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterBuilder")
            .field("config", &self.config)
            .field("authenticator", &self.plugins.authenticator.is_some())
            .field("authorizer", &self.plugins.authorizer.is_some())
            .finish()
    }
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

    /// Adds a role to a realm (from then on that realm denies what its
    /// roles do not allow).
    ///
    /// ```
    /// use fahrbahn_rt::{AllowConfig, MatchConfig, PermissionConfig, RoleConfig, Router};
    /// let mut rule = PermissionConfig::new("com.example.", MatchConfig::Prefix);
    /// rule.allow.call = true;
    /// let builder = Router::builder()
    ///     .realm("realm1")
    ///     .role(RoleConfig::new("realm1", "restricted").permission(rule));
    /// ```
    pub fn role(mut self, role: RoleConfig) -> Self {
        self.config.roles.push(role);
        self
    }

    /// Adds a static principal (from then on every listener must list the
    /// methods it accepts: [`ListenerConfig::with_auth`]).
    ///
    /// ```
    /// use fahrbahn_rt::{CryptosignConfig, ListenerConfig, PrincipalConfig, Router, TransportKind};
    /// let mut alice = PrincipalConfig::new("realm1", "alice", "user");
    /// alice.cryptosign = Some(CryptosignConfig::new([
    ///     "3c37a8d113ee420c981303bbc162c899330ba8d6b3fe2f0bf5b1b273ca40662e",
    /// ]));
    /// let builder = Router::builder()
    ///     .listener(ListenerConfig::tcp(TransportKind::WebSocket, "127.0.0.1:0").with_auth(["cryptosign"]))
    ///     .principal(alice);
    /// ```
    pub fn principal(mut self, principal: PrincipalConfig) -> Self {
        self.config.principals.push(principal);
        self
    }

    /// Plugs in an authenticator (default: everyone joins anonymously,
    /// authrole `anonymous`; with principals configured, a
    /// `StaticAuthenticator` made of them).
    pub fn authenticator(mut self, authenticator: Box<dyn Authenticator + Send>) -> Self {
        self.plugins.authenticator = Some(authenticator);
        self
    }

    /// Plugs in an authorizer instead of the configured roles (setting
    /// both is a configuration error).
    pub fn authorizer(mut self, authorizer: Box<dyn Authorizer + Send>) -> Self {
        self.plugins.authorizer = Some(authorizer);
        self
    }

    /// Binds every listener and starts serving on `runtime`.
    pub async fn start<R: Runtime>(self, runtime: &R) -> Result<Router, Error> {
        Router::start(runtime, self.config, self.plugins).await
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

#[cfg(test)]
mod authz_config_tests {
    use fahrbahn_core::wamp::router::Action;

    use super::*;

    const FULL: &str = r#"
        realms = ["realm1", "realm2"]

        [[listener]]
        transport = "websocket"
        address = "0.0.0.0:8080"
        expose = true
        allowed_origins = ["https://*.example.com", "null"]

        [limits]
        auth_timeout_secs = 5
        max_auth_rounds = 1

        [[role]]
        realm = "realm1"
        name = "restricted"
        permissions = [
            { uri = "com.example.", match = "prefix", allow = { call = true, subscribe = true }, disclose = { caller = true } },
            { uri = "com..status", match = "wildcard", allow = { publish = true } },
            { uri = "com.example.admin" },
        ]

        [[role]]
        realm = "realm1"
        name = "user"
        permissions = [{ uri = "", match = "prefix", allow = { call = true, register = true, publish = true, subscribe = true } }]
    "#;

    #[test]
    fn roles_origins_and_auth_limits_parse_from_toml() {
        let config = RouterConfig::from_toml(FULL).unwrap();
        let l = &config.listeners[0];
        assert!(l.expose);
        assert_eq!(
            l.allowed_origins.as_deref(),
            Some(&["https://*.example.com".to_owned(), "null".to_owned()][..])
        );
        assert_eq!(config.limits.auth_timeout_secs, 5);
        assert_eq!(config.limits.max_auth_rounds, 1);
        assert_eq!(config.roles.len(), 2);
        let restricted = &config.roles[0];
        assert_eq!(restricted.permissions[0].match_, MatchConfig::Prefix);
        assert!(restricted.permissions[0].disclose.caller);
        assert!(!restricted.permissions[0].disclose.publisher);
        // `match` defaults to exact and `allow` to nothing.
        assert_eq!(restricted.permissions[2].match_, MatchConfig::Exact);
        assert_eq!(restricted.permissions[2].allow, AllowConfig::default());
        let authorizer = config.static_authorizer();
        assert!(authorizer.has_roles("realm1"));
        assert!(!authorizer.has_roles("realm2"));
        let role = authorizer.role("realm1", "restricted").unwrap();
        assert_eq!(
            role.authorize(Action::Call, "com.example.add2"),
            fahrbahn_core::wamp::router::Authorization::Allow { disclose: true }
        );
        assert!(
            !role
                .authorize(Action::Register, "com.example.add2")
                .is_allowed()
        );
        assert!(role.authorize(Action::Publish, "com.x.status").is_allowed());
        assert!(
            !role
                .authorize(Action::Call, "com.example.admin")
                .is_allowed()
        );
        // Defaults when unset.
        let defaults = RouterConfig::from_toml("").unwrap();
        assert!(defaults.roles.is_empty());
        assert_eq!(defaults.limits.auth_timeout_secs, 10);
        assert_eq!(defaults.limits.max_auth_rounds, 3);
    }

    /// Every TOML example of the guides parses and validates.
    #[test]
    fn the_toml_examples_of_the_docs_are_valid() {
        for (name, text) in [
            ("auth.md", include_str!("../../../../docs/auth.md")),
            ("router.md", include_str!("../../../../docs/router.md")),
            ("cli.md", include_str!("../../../../docs/cli.md")),
            (
                "interop/router.toml",
                concat!(
                    "```toml\n",
                    include_str!("../../../../interop/router.toml"),
                    "```"
                ),
            ),
        ] {
            let blocks: Vec<&str> = text
                .split("```toml\n")
                .skip(1)
                .map(|b| b.split("```").next().unwrap())
                .collect();
            assert!(!blocks.is_empty(), "{name} has TOML examples");
            for block in blocks {
                if let Err(e) = RouterConfig::from_toml(block) {
                    panic!("{name}: {e}\n{block}");
                }
            }
        }
    }

    #[test]
    fn role_mistakes_are_reported() {
        let err = |toml: &str| RouterConfig::from_toml(toml).unwrap_err().to_string();
        let unknown_realm = err(r#"
            [[role]]
            realm = "nope"
            name = "user"
            "#);
        assert!(unknown_realm.contains("\"nope\""), "{unknown_realm}");
        let twice = err(r#"
            [[role]]
            realm = "realm1"
            name = "user"
            [[role]]
            realm = "realm1"
            name = "user"
            "#);
        assert!(twice.contains("twice"), "{twice}");
        let typo = err(r#"
            [[role]]
            realm = "realm1"
            name = "user"
            permissions = [{ uri = "a", allow = { cal = true } }]
            "#);
        assert!(typo.contains("cal"), "{typo}");
        let bad_match = err(r#"
            [[role]]
            realm = "realm1"
            name = "user"
            permissions = [{ uri = "a", match = "regex" }]
            "#);
        assert!(bad_match.contains("regex"), "{bad_match}");
        let exposed = err(r#"
            [[listener]]
            transport = "rawsocket"
            address = "192.0.2.1:8080"
            "#);
        assert!(exposed.contains("expose = true"), "{exposed}");
        // Loopback and IPv6 loopback need nothing.
        for address in ["127.0.0.1:0", "[::1]:0", "127.0.0.2:9"] {
            let toml =
                format!("[[listener]]\ntransport = \"rawsocket\"\naddress = \"{address}\"\n");
            RouterConfig::from_toml(&toml).unwrap();
        }
    }
}

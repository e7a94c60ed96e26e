//! Authentication from the configuration: static principals per realm
//! (`[[principal]]` in TOML), the methods each listener accepts (`auth` on
//! a `[[listener]]`), and the authenticator the router core gets from them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use fahrbahn_core::wamp::auth::{
    ANONYMOUS, CRYPTOSIGN, Kdf, SCRAM, ScramCredential, Secret, StaticAuthenticator, TICKET,
    WAMPCRA, cryptosign, wampcra,
};
use fahrbahn_core::wamp::error::ERROR_NO_AUTH_METHOD;
use fahrbahn_core::wamp::router::{
    AuthDecision, AuthenticateContext, Authenticator, ConnectionId, HelloContext,
};
use fahrbahn_core::wamp::{Dict, Value};
use serde::Deserialize;

use crate::error::ConfigError;

/// The method name `tls`: a TLS client certificate, pinned by its SHA-256
/// fingerprint.
pub(super) const TLS: &str = "tls";

/// The authentication methods a listener can accept (`auth` of a
/// `[[listener]]`).
pub const AUTH_METHODS: [&str; 6] = [ANONYMOUS, TICKET, WAMPCRA, CRYPTOSIGN, SCRAM, TLS];

/// The role of sessions that join anonymously on a listener whose `auth`
/// lists `anonymous` (their authid is their session id).
pub const ANONYMOUS_ROLE: &str = "anonymous";

/// One static principal of one realm (`[[principal]]` in TOML): an authid,
/// the role it gets, and its credential for one or more methods.
///
/// Secret values (`ticket`, `wampcra.secret`, `scram.stored-key`,
/// `scram.server-key`) may be given inline, as `env:NAME` (read from the
/// environment at start) or as `file:PATH` (the file's contents, without a
/// trailing newline). `Debug` shows which methods a principal has, never
/// its secrets.
///
/// ```
/// use fahrbahn_rt::RouterConfig;
/// let config = RouterConfig::from_toml(r#"
///     [[listener]]
///     transport = "websocket"
///     address = "127.0.0.1:8080"
///     auth = ["wampcra"]
///
///     [[principal]]
///     realm = "realm1"
///     authid = "cra-user"
///     role = "user"
///     wampcra = { secret = "env:CRA_SECRET" }
/// "#).unwrap();
/// assert_eq!(config.principals[0].methods(), vec!["wampcra"]);
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrincipalConfig {
    /// The realm (one of `realms`).
    pub realm: String,
    /// The authid clients authenticate as.
    pub authid: String,
    /// The role the principal gets (a client asking for another one is
    /// refused).
    pub role: String,
    /// Ticket: the argon2 PHC hash of the ticket (`fahrbahn hash-secret
    /// ticket`), never the ticket itself.
    #[serde(default)]
    pub ticket: Option<String>,
    /// WAMP-CRA: the secret, optionally salted.
    #[serde(default)]
    pub wampcra: Option<WampCraConfig>,
    /// Cryptosign: the authorized Ed25519 public keys.
    #[serde(default)]
    pub cryptosign: Option<CryptosignConfig>,
    /// SCRAM: the stored keys (`fahrbahn hash-secret scram`).
    #[serde(default)]
    pub scram: Option<ScramConfig>,
    /// TLS client certificates: their SHA-256 fingerprints (on listeners
    /// with `tls` files that list `tls` in `auth`).
    #[serde(default)]
    pub tls: Option<TlsPrincipalConfig>,
}

impl fmt::Debug for PrincipalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrincipalConfig")
            .field("realm", &self.realm)
            .field("authid", &self.authid)
            .field("role", &self.role)
            .field("methods", &self.methods())
            .finish()
    }
}

impl PrincipalConfig {
    /// A principal without credentials yet; set one or more of `ticket`,
    /// `wampcra`, `cryptosign`, `scram`.
    pub fn new(
        realm: impl Into<String>,
        authid: impl Into<String>,
        role: impl Into<String>,
    ) -> Self {
        Self {
            realm: realm.into(),
            authid: authid.into(),
            role: role.into(),
            ticket: None,
            wampcra: None,
            cryptosign: None,
            scram: None,
            tls: None,
        }
    }

    /// The methods it has a credential for.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.ticket.is_some() {
            methods.push(TICKET);
        }
        if self.wampcra.is_some() {
            methods.push(WAMPCRA);
        }
        if self.cryptosign.is_some() {
            methods.push(CRYPTOSIGN);
        }
        if self.scram.is_some() {
            methods.push(SCRAM);
        }
        if self.tls.is_some() {
            methods.push(TLS);
        }
        methods
    }

    fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Principal {
            realm: self.realm.clone(),
            authid: self.authid.clone(),
            problem: problem.into(),
        }
    }
}

/// A WAMP-CRA credential: the secret and, if salted, salt, iterations and
/// key length (sent to the client in the CHALLENGE, as Crossbar.io does).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WampCraConfig {
    /// The secret (inline, `env:NAME` or `file:PATH`).
    pub secret: String,
    /// The salt (text); with it `iterations` and `keylen` are required.
    #[serde(default)]
    pub salt: Option<String>,
    /// PBKDF2 iterations of a salted secret.
    #[serde(default)]
    pub iterations: Option<u32>,
    /// Derived key length of a salted secret, in bytes.
    #[serde(default)]
    pub keylen: Option<u32>,
}

impl fmt::Debug for WampCraConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WampCraConfig")
            .field("salted", &self.salt.is_some())
            .finish_non_exhaustive()
    }
}

impl WampCraConfig {
    /// An unsalted secret (inline, `env:NAME` or `file:PATH`).
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            salt: None,
            iterations: None,
            keylen: None,
        }
    }
}

/// The Ed25519 public keys (64 hex digits each) that authenticate a
/// cryptosign principal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CryptosignConfig {
    /// Public keys in hex (`fahrbahn keygen` prints one).
    pub authorized_keys: Vec<String>,
}

impl CryptosignConfig {
    /// These keys.
    pub fn new(keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            authorized_keys: keys.into_iter().map(Into::into).collect(),
        }
    }
}

/// The TLS client certificates that authenticate a principal, by the
/// SHA-256 fingerprint of their DER encoding: hex, upper or lower case,
/// with or without `:` separators (as `openssl x509 -noout -fingerprint
/// -sha256` prints it, or [`certificate_fingerprint`](crate::certificate_fingerprint)).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsPrincipalConfig {
    /// The fingerprints.
    pub fingerprints: Vec<String>,
}

impl TlsPrincipalConfig {
    /// These fingerprints.
    pub fn new(fingerprints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            fingerprints: fingerprints.into_iter().map(Into::into).collect(),
        }
    }
}

/// A fingerprint as lowercase hex without separators, if it is 32 bytes.
fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// A SCRAM credential as the WAMP spec and Crossbar.io's configuration
/// define it (`fahrbahn hash-secret scram` prints one).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScramConfig {
    /// `argon2id-13` or `pbkdf2`.
    pub kdf: String,
    /// argon2 passes or PBKDF2 rounds.
    pub iterations: u32,
    /// argon2 memory in KiB (argon2id-13 only).
    #[serde(default)]
    pub memory: Option<u32>,
    /// The salt, hex.
    pub salt: String,
    /// StoredKey, hex (inline, `env:NAME` or `file:PATH`).
    #[serde(rename = "stored-key", alias = "stored_key")]
    pub stored_key: String,
    /// ServerKey, hex (inline, `env:NAME` or `file:PATH`).
    #[serde(rename = "server-key", alias = "server_key")]
    pub server_key: String,
}

impl fmt::Debug for ScramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramConfig")
            .field("kdf", &self.kdf)
            .field("iterations", &self.iterations)
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl ScramConfig {
    /// The configuration form of a stored credential (hex keys inline).
    pub fn from_credential(credential: &ScramCredential) -> Self {
        let (kdf, iterations, memory) = match credential.kdf {
            Kdf::Argon2id13 { iterations, memory } => ("argon2id-13", iterations, Some(memory)),
            Kdf::Pbkdf2 { iterations } => ("pbkdf2", iterations, None),
            _ => ("unknown", 0, None),
        };
        Self {
            kdf: kdf.to_owned(),
            iterations,
            memory,
            salt: hex(&credential.salt),
            stored_key: hex(&credential.stored_key),
            server_key: hex(&credential.server_key),
        }
    }

    /// The `scram = { … }` line of a `[[principal]]` table.
    pub fn to_toml(&self) -> String {
        let memory = self
            .memory
            .map(|m| format!(", memory = {m}"))
            .unwrap_or_default();
        format!(
            "scram = {{ kdf = \"{}\", iterations = {}{memory}, salt = \"{}\", stored-key = \"{}\", server-key = \"{}\" }}",
            self.kdf, self.iterations, self.salt, self.stored_key, self.server_key
        )
    }

    fn kdf(&self) -> Result<Kdf, String> {
        match (self.kdf.as_str(), self.memory) {
            ("argon2id-13", Some(memory)) => Ok(Kdf::Argon2id13 {
                iterations: self.iterations,
                memory,
            }),
            ("argon2id-13", None) => Err("scram kdf argon2id-13 needs `memory` (KiB)".into()),
            ("pbkdf2", _) => Ok(Kdf::Pbkdf2 {
                iterations: self.iterations,
            }),
            (other, _) => Err(format!(
                "scram kdf {other:?} is not one of \"argon2id-13\", \"pbkdf2\""
            )),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret value of the configuration: inline, `env:NAME` or `file:PATH`.
///
/// ```
/// use fahrbahn_rt::resolve_secret;
/// assert_eq!(resolve_secret("inline-secret").unwrap().expose(), "inline-secret");
/// assert!(resolve_secret("env:FAHRBAHN_SURELY_NOT_SET").is_err());
/// ```
pub fn resolve_secret(value: &str) -> Result<Secret, String> {
    if let Some(name) = value.strip_prefix("env:") {
        std::env::var(name)
            .map(Secret::new)
            .map_err(|_| format!("the environment variable {name} is not set (or not UTF-8)"))
    } else if let Some(path) = value.strip_prefix("file:") {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Ok(Secret::new(text))
    } else {
        Ok(Secret::new(value))
    }
}

/// Checks what can be checked without reading secrets: method names,
/// realms, cryptosign keys, every listener of an authenticating router
/// saying what it accepts.
pub(super) fn validate(config: &super::RouterConfig) -> Result<(), ConfigError> {
    for l in &config.listeners {
        let name = listener_name(l);
        for method in l.auth.iter().flatten() {
            if !AUTH_METHODS.contains(&method.as_str()) {
                return Err(ConfigError::ListenerAuth {
                    listener: name,
                    problem: format!(
                        "unknown authentication method {method:?} (known: {})",
                        AUTH_METHODS.join(", ")
                    ),
                });
            }
            if method != ANONYMOUS
                && !config
                    .principals
                    .iter()
                    .any(|p| p.methods().contains(&method.as_str()))
            {
                return Err(ConfigError::ListenerAuth {
                    listener: name,
                    problem: format!(
                        "it accepts {method:?}, but no [[principal]] has a {method} credential"
                    ),
                });
            }
        }
        if l.auth.iter().flatten().any(|m| m == TLS) && l.tls.is_none() {
            return Err(ConfigError::ListenerAuth {
                listener: name,
                problem: "it accepts \"tls\" (client certificates), but serves no TLS: add `tls = { certificate = …, key = … }`".into(),
            });
        }
        if l.auth.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::ListenerAuth {
                listener: name,
                problem: "`auth` is empty: list the methods it accepts, e.g. [\"anonymous\"]"
                    .into(),
            });
        }
        if !config.principals.is_empty() && l.auth.is_none() {
            return Err(ConfigError::ListenerAuth {
                listener: name,
                problem: "principals are configured, so every listener must say which methods it accepts: add e.g. auth = [\"ticket\", \"scram\"] (or [\"anonymous\"] to keep it anonymous)".into(),
            });
        }
    }
    for p in &config.principals {
        if !config.realms.contains(&p.realm) {
            return Err(p.error("its realm is not in `realms`"));
        }
        if p.methods().is_empty() {
            return Err(
                p.error("it has no credential: set one of ticket, wampcra, cryptosign, scram")
            );
        }
        if p.authid.is_empty() || p.role.is_empty() {
            return Err(p.error("`authid` and `role` must not be empty"));
        }
        if let Some(cra) = &p.wampcra {
            let salted = [
                cra.salt.is_some(),
                cra.iterations.is_some(),
                cra.keylen.is_some(),
            ];
            if salted.contains(&true) && salted.contains(&false) {
                return Err(p.error(
                    "a salted wampcra secret needs all of `salt`, `iterations` and `keylen`",
                ));
            }
        }
        if let Some(cs) = &p.cryptosign {
            if cs.authorized_keys.is_empty() {
                return Err(p.error("cryptosign.authorized_keys is empty"));
            }
            for key in &cs.authorized_keys {
                if cryptosign::parse_public_key(key).is_none() {
                    return Err(p.error(format!(
                        "cryptosign key {key:?} is not an Ed25519 public key in hex (64 hex digits)"
                    )));
                }
            }
        }
        if let Some(scram) = &p.scram {
            scram.kdf().map_err(|e| p.error(e))?;
        }
        if let Some(tls) = &p.tls {
            if tls.fingerprints.is_empty() {
                return Err(p.error("tls.fingerprints is empty"));
            }
            for f in &tls.fingerprints {
                if normalize_fingerprint(f).is_none() {
                    return Err(p.error(format!(
                        "tls fingerprint {f:?} is not a SHA-256 fingerprint (64 hex digits, `:` allowed)"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn listener_name(l: &super::ListenerConfig) -> String {
    l.address
        .clone()
        .or_else(|| l.unix.clone())
        .unwrap_or_else(|| "?".into())
}

/// The static authenticator the configuration describes, or `None` when
/// it configures no authentication (no principals; listeners anonymous).
/// Reads `env:`/`file:` secrets.
pub(super) fn static_authenticator(
    config: &super::RouterConfig,
) -> Result<Option<StaticAuthenticator>, ConfigError> {
    if config.principals.is_empty() {
        return Ok(None);
    }
    let mut auth = StaticAuthenticator::new();
    let anonymous = config
        .listeners
        .iter()
        .any(|l| l.auth.iter().flatten().any(|m| m == ANONYMOUS));
    if anonymous {
        for realm in &config.realms {
            auth.allow_anonymous(realm, ANONYMOUS_ROLE);
        }
    }
    for p in &config.principals {
        let secret = |value: &str, what: &str| {
            resolve_secret(value).map_err(|e| p.error(format!("{what}: {e}")))
        };
        if let Some(stored) = &p.ticket {
            let stored = secret(stored, "ticket")?;
            auth.add_ticket(&p.realm, &p.authid, stored.expose(), &p.role)
                .map_err(|_| {
                    p.error(
                        "`ticket` must be the argon2 PHC hash of the ticket ($argon2id$v=19$…), never the ticket itself: make it with `fahrbahn hash-secret ticket`",
                    )
                })?;
        }
        if let Some(cra) = &p.wampcra {
            let salt = match (&cra.salt, cra.iterations, cra.keylen) {
                (Some(salt), Some(iterations), Some(keylen)) => Some(wampcra::Salt {
                    salt: salt.clone(),
                    iterations,
                    keylen,
                }),
                _ => None,
            };
            auth.add_wampcra(
                &p.realm,
                &p.authid,
                secret(&cra.secret, "wampcra.secret")?,
                salt,
                &p.role,
            );
        }
        if let Some(cs) = &p.cryptosign {
            for key in &cs.authorized_keys {
                auth.add_cryptosign(&p.realm, &p.authid, key, &p.role)
                    .map_err(|e| p.error(format!("cryptosign key {key:?}: {e}")))?;
            }
        }
        if let Some(scram) = &p.scram {
            let kdf = scram.kdf().map_err(|e| p.error(e))?;
            let stored = secret(&scram.stored_key, "scram.stored-key")?;
            let server = secret(&scram.server_key, "scram.server-key")?;
            let credential =
                ScramCredential::from_hex(kdf, &scram.salt, stored.expose(), server.expose())
                    .map_err(|e| p.error(format!("scram: {e}")))?;
            auth.add_scram(&p.realm, &p.authid, credential, &p.role);
        }
    }
    Ok(Some(auth))
}

/// The `tls` principals: realm → fingerprint → (authid, role).
pub(super) type TlsPrincipals = HashMap<String, HashMap<String, (String, String)>>;

/// The `tls` principals of the configuration.
pub(super) fn tls_principals(config: &super::RouterConfig) -> TlsPrincipals {
    let mut map = TlsPrincipals::new();
    for p in &config.principals {
        for f in p.tls.iter().flat_map(|t| &t.fingerprints) {
            if let Some(f) = normalize_fingerprint(f) {
                map.entry(p.realm.clone())
                    .or_default()
                    .insert(f, (p.authid.clone(), p.role.clone()));
            }
        }
    }
    map
}

/// What the router knows of a connection for authentication.
#[derive(Debug, Clone, Default)]
pub(super) struct ConnAuth {
    /// The methods its listener accepts, if it says.
    pub(super) methods: Option<Arc<[String]>>,
    /// The SHA-256 fingerprint of its TLS client certificate.
    pub(super) fingerprint: Option<String>,
}

/// What each connection's listener accepts and its client certificate
/// (connections with neither are not in it).
pub(super) type ListenerMethods = Arc<Mutex<HashMap<ConnectionId, ConnAuth>>>;

/// Narrows each HELLO's `authmethods` to those its listener accepts,
/// decides `tls` itself, and asks the authenticator behind it for the
/// others.
pub(super) struct ListenerAuthenticator {
    pub(super) inner: Box<dyn Authenticator + Send>,
    pub(super) methods: ListenerMethods,
    pub(super) tls: TlsPrincipals,
}

impl ListenerAuthenticator {
    /// The `tls` decision: the client certificate's principal in this
    /// realm, if its authid and authrole (when asked) match.
    fn tls(&self, hello: &HelloContext<'_>, fingerprint: Option<&str>) -> AuthDecision {
        let principal = fingerprint.and_then(|f| self.tls.get(hello.realm)?.get(f));
        let asked = |key: &str| hello.details.get(key).and_then(Value::as_str);
        match principal {
            Some((authid, role))
                if asked("authid").is_none_or(|a| a == authid)
                    && asked("authrole").is_none_or(|r| r == role) =>
            {
                AuthDecision::welcome(authid.clone(), role.clone(), TLS)
            }
            _ => {
                log::debug!(
                    "router: tls authentication refused for session {} on {:?}",
                    hello.session,
                    hello.realm
                );
                AuthDecision::deny(
                    fahrbahn_core::wamp::error::ERROR_NOT_AUTHORIZED,
                    "authentication failed",
                )
            }
        }
    }
}

impl Authenticator for ListenerAuthenticator {
    fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision {
        let conn = self
            .methods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hello.conn)
            .cloned()
            .unwrap_or_default();
        let Some(accepted) = conn.methods else {
            return self.inner.on_hello(hello);
        };
        let offered: Vec<&str> = match hello.details.get("authmethods").and_then(Value::as_list) {
            Some(list) if !list.is_empty() => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![ANONYMOUS],
        };
        let kept: Vec<Value> = offered
            .into_iter()
            .filter(|m| accepted.iter().any(|a| a == m))
            .map(|m| Value::String(m.to_owned()))
            .collect();
        if kept.is_empty() {
            log::debug!(
                "router: session {} offered no method its listener accepts",
                hello.session
            );
            return AuthDecision::deny(
                ERROR_NO_AUTH_METHOD,
                "none of the offered authentication methods is accepted",
            );
        }
        if kept.first().and_then(Value::as_str) == Some(TLS) {
            return self.tls(hello, conn.fingerprint.as_deref());
        }
        let kept: Vec<Value> = kept
            .into_iter()
            .filter(|m| m.as_str() != Some(TLS))
            .collect();
        let mut details: Dict = hello.details.clone();
        details.insert("authmethods".into(), Value::List(kept));
        self.inner.on_hello(&hello.with_details(&details))
    }

    fn on_authenticate(&mut self, auth: &AuthenticateContext<'_>) -> AuthDecision {
        self.inner.on_authenticate(auth)
    }
}

/// `url: methods` of each listener, for the first log line.
pub(super) fn describe(config: &super::RouterConfig, listeners: &[super::ListenerInfo]) -> String {
    config
        .listeners
        .iter()
        .zip(listeners)
        .map(|(l, info)| {
            let methods = match &l.auth {
                Some(m) => m.join(", "),
                None => "anonymous".into(),
            };
            format!("{}: {methods}", info.url())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

//! Settings of a client session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fahrbahn_core::wamp::auth::Credential;
use fahrbahn_core::wamp::{ApplicationError, Codec, Dict, Serializer, SessionConfig};
use fahrbahn_core::{rawsocket, ws};

/// Answers an authentication challenge: `(authmethod, extra)` in,
/// `(signature, extra)` out.
pub type ChallengeHandler =
    Arc<dyn Fn(&str, &Dict) -> Result<(String, Dict), ApplicationError> + Send + Sync>;

/// The keepalive of a session's transport: a ping this often…
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// …answered within this time.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// The default of [`SessionOptions::max_queued_event_bytes`]: 16 MiB.
pub const DEFAULT_MAX_QUEUED_EVENT_BYTES: usize = 16 << 20;

/// Settings for [`Session::connect_with`](super::Session::connect_with).
///
/// ```
/// use std::time::Duration;
/// use fahrbahn_rt::SessionOptions;
/// let mut options = SessionOptions::new("realm1");
/// assert_eq!(options.websocket.timeouts.ping_interval, Some(Duration::from_secs(30)));
/// assert_eq!(options.rawsocket.ping_interval, Some(Duration::from_secs(30)));
/// options.websocket.timeouts.ping_interval = None; // keepalive off
/// options.rawsocket.max_len_exponent = 10;
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionOptions {
    /// Realm, authentication id and methods, agent.
    pub session: SessionConfig,
    /// Codecs to offer (WebSocket: in order of preference; RawSocket:
    /// the first one's serializer). Default: JSON, MessagePack, CBOR (those
    /// compiled in).
    pub serializers: Vec<Codec>,
    /// WebSocket settings (limits, timeouts, deflate); host and path come
    /// from the URL. Keepalive is on: a ping every 30 s
    /// (`timeouts.ping_interval`), and a router that does not answer one
    /// within 15 s (`timeouts.pong_timeout`) ends the session with a
    /// transport error.
    pub websocket: ws::ClientConfig,
    /// RawSocket settings (maximum message length, handshake timeout,
    /// keepalive: on, 30 s and 15 s as for WebSocket).
    pub rawsocket: rawsocket::ClientConfig,
    /// Answers CHALLENGE messages of methods without a credential in
    /// `session.credentials` (custom methods); without one such a challenge
    /// aborts the join with `wamp.error.cannot_authenticate`.
    pub on_challenge: Option<ChallengeHandler>,
    /// Read-side high-water mark, in bytes (default 1 MiB): the session
    /// stops reading from the router while more than this much of what it
    /// answered on its own to the router's input (pongs, automatic
    /// replies) is unsent, and resumes once the router reads.
    pub read_high_water: usize,
    /// Events received and not yet taken from this session's
    /// [`Subscription`](super::Subscription) streams, at most, in bytes
    /// (estimated from the decoded values; default
    /// [`DEFAULT_MAX_QUEUED_EVENT_BYTES`], 16 MiB). While more wait, the
    /// session stops reading from the router, and reads on once the
    /// application takes events: no event is dropped, and a subscriber
    /// that does not read meets the router's own slow-consumer bound
    /// instead of growing without bound. (Also the keepalive's answers
    /// are not read meanwhile: an application that reads nothing for
    /// longer than the keepalive's interval and timeout ends its session.)
    pub max_queued_event_bytes: usize,
    /// The HTTP proxy to tunnel through (`CONNECT`). Default:
    /// [`ProxyConfig::Env`](crate::ProxyConfig::Env), the environment's `http_proxy` (`ws://`),
    /// `https_proxy` (`wss://`) and `no_proxy`, loopback excepted;
    /// [`ProxyConfig::Off`](crate::ProxyConfig::Off) connects directly.
    pub proxy: crate::ProxyConfig,
    /// TLS settings for `wss://` and `rss://` (custom roots, client
    /// certificates); default: the webpki roots.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
}

impl fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOptions")
            .field("session", &self.session)
            .field("serializers", &self.serializers)
            .finish_non_exhaustive()
    }
}

impl SessionOptions {
    /// Defaults for `realm`.
    pub fn new(realm: impl Into<String>) -> Self {
        let mut websocket = ws::ClientConfig::default();
        websocket.timeouts.ping_interval = Some(KEEPALIVE_INTERVAL);
        websocket.timeouts.pong_timeout = KEEPALIVE_TIMEOUT;
        let mut rawsocket = rawsocket::ClientConfig::new(Serializer::Json.rawsocket_id());
        rawsocket.ping_interval = Some(KEEPALIVE_INTERVAL);
        rawsocket.pong_timeout = KEEPALIVE_TIMEOUT;
        Self {
            session: SessionConfig::new(realm),
            serializers: vec![
                Codec::new(Serializer::Json),
                #[cfg(feature = "msgpack")]
                Codec::new(Serializer::MsgPack),
                #[cfg(feature = "cbor")]
                Codec::new(Serializer::Cbor),
            ],
            websocket,
            rawsocket,
            on_challenge: None,
            read_high_water: crate::driver::DEFAULT_HIGH_WATER,
            max_queued_event_bytes: DEFAULT_MAX_QUEUED_EVENT_BYTES,
            proxy: crate::ProxyConfig::Env,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Authenticates as `authid` (HELLO `authid`).
    pub fn authid(mut self, authid: impl Into<String>) -> Self {
        self.session.authid = Some(authid.into());
        self
    }

    /// Asks for `authrole` (HELLO `authrole`); a router refuses a role the
    /// principal does not have.
    pub fn authrole(mut self, authrole: impl Into<String>) -> Self {
        self.session.authrole = Some(authrole.into());
        self
    }

    /// Sends `authextra` in HELLO (a cryptosign credential adds its
    /// `pubkey`, SCRAM its `nonce`).
    pub fn authextra(mut self, authextra: Dict) -> Self {
        self.session.authextra = authextra;
        self
    }

    /// Adds a credential; credentials are offered in the order added, and
    /// the session answers the router's CHALLENGE for them itself.
    ///
    /// ```
    /// use fahrbahn_rt::SessionOptions;
    /// use fahrbahn_core::wamp::auth::{Credential, CryptosignKey, Secret};
    /// let key = CryptosignKey::from_seed(&[7; 32]);
    /// let options = SessionOptions::new("realm1")
    ///     .authid("alice")
    ///     .credential(Credential::Cryptosign(key))
    ///     .credential(Credential::Ticket(Secret::new("s3cret")));
    /// assert_eq!(options.session.credentials.len(), 2);
    /// ```
    pub fn credential(mut self, credential: Credential) -> Self {
        self.session.credentials.push(credential);
        self
    }

    /// Offers only `codec` (e.g. `Serializer::Json.into()` or
    /// `Codec::batched(Serializer::Json)`).
    pub fn serializer(mut self, codec: impl Into<Codec>) -> Self {
        self.serializers = vec![codec.into()];
        self
    }
}

/// How WAMP messages are framed on a byte stream the caller provides
/// ([`Session::join_stream`](super::Session::join_stream)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// WebSocket with a WAMP subprotocol (the serializers of the
    /// options); the opening handshake asks for `path` on `host`.
    WebSocket {
        /// The `Host` header (`example.com`, `example.com:8080`).
        host: String,
        /// The request path and query (`/ws`).
        path: String,
    },
    /// RawSocket (the first serializer of the options).
    RawSocket,
}

impl Framing {
    /// WebSocket framing with the host and path of a `ws://` or `wss://`
    /// URL (nothing is connected: the URL only names what the handshake
    /// asks for).
    ///
    /// ```
    /// use fahrbahn_rt::Framing;
    /// let framing = Framing::websocket("ws://router.example:8080/ws").unwrap();
    /// assert_eq!(
    ///     framing,
    ///     Framing::WebSocket { host: "router.example:8080".into(), path: "/ws".into() }
    /// );
    /// ```
    pub fn websocket(url: &str) -> Result<Self, crate::Error> {
        Ok(Self::from_ws_url(&crate::WsUrl::parse(url)?))
    }

    pub(crate) fn from_ws_url(url: &crate::WsUrl) -> Self {
        Framing::WebSocket {
            host: url.host_header(),
            path: url.path.clone(),
        }
    }
}

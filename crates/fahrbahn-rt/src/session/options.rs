//! Settings of a client session.

use std::fmt;
use std::sync::Arc;

use fahrbahn_core::wamp::{ApplicationError, Codec, Dict, Serializer, SessionConfig};
use fahrbahn_core::{rawsocket, ws};

/// Answers an authentication challenge: `(authmethod, extra)` in,
/// `(signature, extra)` out.
pub type ChallengeHandler =
    Arc<dyn Fn(&str, &Dict) -> Result<(String, Dict), ApplicationError> + Send + Sync>;

/// Settings for [`Session::connect_with`](super::Session::connect_with).
///
/// ```
/// use std::time::Duration;
/// use fahrbahn_rt::SessionOptions;
/// let mut options = SessionOptions::new("realm1");
/// options.websocket.timeouts.ping_interval = Some(Duration::from_secs(30));
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
    /// from the URL.
    pub websocket: ws::ClientConfig,
    /// RawSocket settings (maximum message length, handshake timeout).
    pub rawsocket: rawsocket::ClientConfig,
    /// Answers CHALLENGE messages (authentication); without one a challenge
    /// aborts the join with `wamp.error.cannot_authenticate`.
    pub on_challenge: Option<ChallengeHandler>,
    /// Read-side high-water mark, in bytes (default 1 MiB): the session
    /// stops reading from the router while more than this much of what it
    /// answered on its own to the router's input (pongs, automatic
    /// replies) is unsent, and resumes once the router reads.
    pub read_high_water: usize,
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
        Self {
            session: SessionConfig::new(realm),
            serializers: vec![
                Codec::new(Serializer::Json),
                #[cfg(feature = "msgpack")]
                Codec::new(Serializer::MsgPack),
                #[cfg(feature = "cbor")]
                Codec::new(Serializer::Cbor),
            ],
            websocket: ws::ClientConfig::default(),
            rawsocket: rawsocket::ClientConfig::new(Serializer::Json.rawsocket_id()),
            on_challenge: None,
            read_high_water: crate::driver::DEFAULT_HIGH_WATER,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Offers only `codec` (e.g. `Serializer::Json.into()` or
    /// `Codec::batched(Serializer::Json)`).
    pub fn serializer(mut self, codec: impl Into<Codec>) -> Self {
        self.serializers = vec![codec.into()];
        self
    }
}

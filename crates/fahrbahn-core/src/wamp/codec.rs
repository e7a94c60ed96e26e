//! [`Codec`]: a serializer and whether messages are batched — what a WAMP
//! WebSocket subprotocol such as `wamp.2.msgpack.batched` names.

use std::fmt;

use super::error::DecodeError;
use super::message::Message;
use super::serializer::Serializer;

/// How WAMP messages become transport payloads: a [`Serializer`] and
/// whether several messages share one payload (batched).
///
/// ```
/// use fahrbahn_core::wamp::{Codec, Serializer};
/// let codec = Codec::batched(Serializer::MsgPack);
/// assert_eq!(codec.subprotocol(), "wamp.2.msgpack.batched");
/// assert_eq!(Codec::from_subprotocol("wamp.2.json"), Some(Codec::new(Serializer::Json)));
/// assert_eq!(Codec::from(Serializer::Cbor).to_string(), "CBOR");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Codec {
    /// The serializer.
    pub serializer: Serializer,
    /// Whether a payload carries several length-delimited messages.
    pub batched: bool,
}

impl Codec {
    /// `serializer`, one message per payload.
    pub const fn new(serializer: Serializer) -> Self {
        Self {
            serializer,
            batched: false,
        }
    }

    /// `serializer`, batched.
    pub const fn batched(serializer: Serializer) -> Self {
        Self {
            serializer,
            batched: true,
        }
    }

    /// The WebSocket subprotocol, e.g. `wamp.2.json.batched`.
    pub fn subprotocol(self) -> &'static str {
        self.serializer.subprotocol(self.batched)
    }

    /// The codec a WebSocket subprotocol names, if it is a WAMP one.
    pub fn from_subprotocol(subprotocol: &str) -> Option<Self> {
        Serializer::from_subprotocol(subprotocol).map(|(serializer, batched)| Self {
            serializer,
            batched,
        })
    }

    /// Appends `message`, encoded, to `out`.
    pub fn encode(self, message: &Message, out: &mut Vec<u8>) {
        if self.batched {
            self.serializer.encode_batched(message, out);
        } else {
            self.serializer.encode(message, out);
        }
    }

    /// Decodes one payload into its messages (several when batched).
    pub fn decode(self, payload: &[u8]) -> Result<Vec<Message>, DecodeError> {
        if self.batched {
            self.serializer.decode_batched(payload)
        } else {
            self.serializer.decode(payload).map(|m| vec![m])
        }
    }
}

impl From<Serializer> for Codec {
    fn from(serializer: Serializer) -> Self {
        Self::new(serializer)
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.serializer.name())?;
        if self.batched {
            f.write_str(" (batched)")?;
        }
        Ok(())
    }
}

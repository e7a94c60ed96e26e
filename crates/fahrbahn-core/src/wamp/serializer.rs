//! The WAMP serializers (JSON, MessagePack, CBOR), their WebSocket
//! subprotocol names and RawSocket IDs, and batched framing.

use std::fmt;

use serde::de::DeserializeSeed;
use serde::ser::{Serialize, SerializeSeq};

use super::error::DecodeError;
use super::message::{Elem, Message};
use super::value::{Json, Value, ValueSeed};

/// The deepest nesting of lists and dictionaries the decoders accept
/// (the message list itself is level 1).
pub const MAX_NESTING: usize = 64;

/// JSON batched mode record separator the spec names (ASCII RS); accepted
/// when decoding.
const JSON_SEPARATOR_SPEC: u8 = 0x1e;
/// The separator AutobahnPython and Crossbar.io actually use (ASCII CAN,
/// from a Python octal escape `'\30'`). Crossbar splits records on it only,
/// so we send it: interoperating with the deployed peers wins over the
/// spec's text here (docs/wamp.md). Both are accepted when decoding.
pub(crate) const JSON_SEPARATOR: u8 = 0x18;

/// A WAMP serializer. JSON is always available; MessagePack and CBOR come
/// with the `msgpack` and `cbor` features (both on by default).
///
/// ```
/// use fahrbahn_core::wamp::{Dict, Message, Serializer};
///
/// let msg = Message::Call {
///     request: 7814135,
///     options: Dict::new(),
///     procedure: "com.myapp.ping".into(),
///     args: None,
///     kwargs: None,
/// };
/// let mut out = Vec::new();
/// Serializer::Json.encode(&msg, &mut out);
/// assert_eq!(out, br#"[48,7814135,{},"com.myapp.ping"]"#);
/// assert_eq!(Serializer::Json.decode(&out).unwrap(), msg);
///
/// assert_eq!(Serializer::from_subprotocol("wamp.2.json.batched"), Some((Serializer::Json, true)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Serializer {
    /// JSON (`wamp.2.json`), sent in text frames; binary values travel as
    /// `"\u0000"` + base64.
    Json,
    /// MessagePack (`wamp.2.msgpack`; feature `msgpack`).
    #[cfg(feature = "msgpack")]
    MsgPack,
    /// CBOR (`wamp.2.cbor`; feature `cbor`).
    #[cfg(feature = "cbor")]
    Cbor,
}

impl fmt::Display for Serializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serializer {
    /// All serializers compiled in, in a router's order of preference
    /// (binary ones first).
    pub const ALL: &'static [Serializer] = &[
        #[cfg(feature = "msgpack")]
        Serializer::MsgPack,
        #[cfg(feature = "cbor")]
        Serializer::Cbor,
        Serializer::Json,
    ];

    /// The serializer's name: "JSON", "MessagePack" or "CBOR".
    pub fn name(self) -> &'static str {
        match self {
            Serializer::Json => "JSON",
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => "MessagePack",
            #[cfg(feature = "cbor")]
            Serializer::Cbor => "CBOR",
        }
    }

    /// The WebSocket subprotocol, e.g. `wamp.2.json` or, batched,
    /// `wamp.2.json.batched`.
    pub fn subprotocol(self, batched: bool) -> &'static str {
        match (self, batched) {
            (Serializer::Json, false) => "wamp.2.json",
            (Serializer::Json, true) => "wamp.2.json.batched",
            #[cfg(feature = "msgpack")]
            (Serializer::MsgPack, false) => "wamp.2.msgpack",
            #[cfg(feature = "msgpack")]
            (Serializer::MsgPack, true) => "wamp.2.msgpack.batched",
            #[cfg(feature = "cbor")]
            (Serializer::Cbor, false) => "wamp.2.cbor",
            #[cfg(feature = "cbor")]
            (Serializer::Cbor, true) => "wamp.2.cbor.batched",
        }
    }

    /// The serializer and batched flag of a WebSocket subprotocol.
    pub fn from_subprotocol(subprotocol: &str) -> Option<(Serializer, bool)> {
        Some(match subprotocol {
            "wamp.2.json" => (Serializer::Json, false),
            "wamp.2.json.batched" => (Serializer::Json, true),
            #[cfg(feature = "msgpack")]
            "wamp.2.msgpack" => (Serializer::MsgPack, false),
            #[cfg(feature = "msgpack")]
            "wamp.2.msgpack.batched" => (Serializer::MsgPack, true),
            #[cfg(feature = "cbor")]
            "wamp.2.cbor" => (Serializer::Cbor, false),
            #[cfg(feature = "cbor")]
            "wamp.2.cbor.batched" => (Serializer::Cbor, true),
            _ => return None,
        })
    }

    /// The RawSocket serializer ID: JSON 1, MessagePack 2, CBOR 3.
    pub fn rawsocket_id(self) -> u8 {
        match self {
            Serializer::Json => 1,
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => 2,
            #[cfg(feature = "cbor")]
            Serializer::Cbor => 3,
        }
    }

    /// The serializer of a RawSocket serializer ID.
    pub fn from_rawsocket_id(id: u8) -> Option<Serializer> {
        match id {
            1 => Some(Serializer::Json),
            #[cfg(feature = "msgpack")]
            2 => Some(Serializer::MsgPack),
            #[cfg(feature = "cbor")]
            3 => Some(Serializer::Cbor),
            _ => None,
        }
    }

    /// Whether messages go in binary WebSocket frames (MessagePack, CBOR);
    /// JSON goes in text frames.
    pub fn is_binary(self) -> bool {
        !matches!(self, Serializer::Json)
    }

    /// Appends `msg`, serialized, to `out`.
    ///
    /// JSON writes non-finite floats as `null`.
    ///
    /// # Panics
    ///
    /// MessagePack and CBOR cannot encode a string, binary, list or
    /// dictionary with more than 2^32 - 1 elements/bytes (MessagePack).
    pub fn encode(self, msg: &Message, out: &mut Vec<u8>) {
        self.encode_wire(&Wire::Message(msg), out);
    }

    /// Decodes one message.
    pub fn decode(self, bytes: &[u8]) -> Result<Message, DecodeError> {
        Message::from_value(self.decode_value(bytes)?)
    }

    /// Appends `msg` as one record of a batched transport: JSON the message
    /// then `0x18` (what Crossbar.io and AutobahnPython use; the spec says
    /// `0x1e`, which is accepted on decode); MessagePack and CBOR a 4-byte big-endian length then the
    /// message.
    pub fn encode_batched(self, msg: &Message, out: &mut Vec<u8>) {
        match self {
            Serializer::Json => {
                self.encode(msg, out);
                out.push(JSON_SEPARATOR);
            }
            #[cfg(any(feature = "msgpack", feature = "cbor"))]
            _ => {
                let start = out.len();
                out.extend_from_slice(&[0; 4]);
                self.encode(msg, out);
                let len = u32::try_from(out.len() - start - 4)
                    .expect("a batched record longer than 4 GiB");
                out[start..start + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
    }

    /// Decodes the messages of a batched transport payload. JSON records are
    /// separated by `0x1e` (or `0x18`, which AutobahnPython sends); a trailing
    /// separator is normal and empty records are skipped.
    ///
    /// ```
    /// use fahrbahn_core::wamp::{Message, Serializer};
    /// let msgs = Serializer::Json.decode_batched(b"[17,1,2]\x18[17,3,4]\x18").unwrap();
    /// assert_eq!(msgs, vec![
    ///     Message::Published { request: 1, publication: 2 },
    ///     Message::Published { request: 3, publication: 4 },
    /// ]);
    /// ```
    pub fn decode_batched(self, bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
        self.batch_records(bytes)?
            .into_iter()
            .map(|record| self.decode(&bytes[record]))
            .collect()
    }

    /// The byte ranges of the records of a batched transport payload
    /// (see [`decode_batched`](Self::decode_batched)).
    pub(crate) fn batch_records(
        self,
        bytes: &[u8],
    ) -> Result<Vec<std::ops::Range<usize>>, DecodeError> {
        match self {
            Serializer::Json => {
                let mut records = Vec::new();
                let mut start = 0;
                for (i, b) in bytes.iter().enumerate() {
                    if *b == JSON_SEPARATOR || *b == JSON_SEPARATOR_SPEC {
                        if i > start {
                            records.push(start..i);
                        }
                        start = i + 1;
                    }
                }
                if bytes.len() > start {
                    records.push(start..bytes.len());
                }
                Ok(records)
            }
            #[cfg(any(feature = "msgpack", feature = "cbor"))]
            _ => {
                let mut records = Vec::new();
                let mut at = 0;
                while at < bytes.len() {
                    let rest = &bytes[at..];
                    let truncated = |needed: usize, available: usize| DecodeError::TruncatedBatch {
                        serializer: self.name(),
                        needed,
                        available,
                    };
                    let (prefix, tail) = rest
                        .split_first_chunk::<4>()
                        .ok_or_else(|| truncated(4, rest.len()))?;
                    let len = u32::from_be_bytes(*prefix) as usize;
                    if tail.len() < len {
                        return Err(truncated(len, tail.len()));
                    }
                    records.push(at + 4..at + 4 + len);
                    at += 4 + len;
                }
                Ok(records)
            }
        }
    }

    /// Appends any [`Value`], serialized, to `out` (with the JSON binary
    /// convention).
    pub fn encode_value(self, value: &Value, out: &mut Vec<u8>) {
        self.encode_wire(&Wire::Value(value), out);
    }

    /// Decodes any [`Value`] (with the JSON binary convention), rejecting
    /// trailing bytes and nesting deeper than [`MAX_NESTING`].
    pub fn decode_value(self, bytes: &[u8]) -> Result<Value, DecodeError> {
        self.decode_value_nested(bytes, 0)
    }

    /// [`decode_value`](Self::decode_value) of a value found `depth`
    /// levels inside a message (an element of the message list is at
    /// depth 1): it may nest [`MAX_NESTING`] - `depth` levels.
    pub(crate) fn decode_value_nested(
        self,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Value, DecodeError> {
        debug_assert!(depth <= 1, "a message or one of its elements");
        let malformed = |detail: String| DecodeError::Malformed {
            serializer: self.name(),
            detail,
        };
        #[cfg(any(feature = "msgpack", feature = "cbor"))]
        let trailing = |n: usize| malformed(format!("{n} bytes of trailing data"));
        let seed = ValueSeed {
            depth,
            max_depth: MAX_NESTING,
            json_bytes: matches!(self, Serializer::Json),
        };
        match self {
            Serializer::Json => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let v = seed
                    .deserialize(&mut de)
                    .map_err(|e| malformed(e.to_string()))?;
                de.end().map_err(|e| malformed(e.to_string()))?;
                Ok(v)
            }
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => {
                let mut rest = bytes;
                let mut de = rmp_serde::Deserializer::new(&mut rest);
                let v = seed
                    .deserialize(&mut de)
                    .map_err(|e| malformed(e.to_string()))?;
                drop(de);
                if !rest.is_empty() {
                    return Err(trailing(rest.len()));
                }
                Ok(v)
            }
            #[cfg(feature = "cbor")]
            Serializer::Cbor => {
                let mut rest = bytes;
                let v = if depth == 0 {
                    ciborium::de::from_reader_with_recursion_limit::<CborValue<0>, _>(
                        &mut rest,
                        2 * MAX_NESTING,
                    )
                    .map(|v| v.0)
                } else {
                    ciborium::de::from_reader_with_recursion_limit::<CborValue<1>, _>(
                        &mut rest,
                        2 * MAX_NESTING,
                    )
                    .map(|v| v.0)
                }
                .map_err(|e| malformed(cbor_error(e)))?;
                if !rest.is_empty() {
                    return Err(trailing(rest.len()));
                }
                Ok(v)
            }
        }
    }

    fn encode_wire(self, wire: &Wire<'_>, out: &mut Vec<u8>) {
        match self {
            Serializer::Json => serde_json::to_writer(&mut *out, &Json(wire))
                .expect("JSON encoding of a WAMP value"),
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => {
                rmp_serde::encode::write(out, wire).expect("MessagePack encoding of a WAMP value")
            }
            #[cfg(feature = "cbor")]
            Serializer::Cbor => {
                ciborium::ser::into_writer(wire, &mut *out).expect("CBOR encoding of a WAMP value")
            }
        }
    }
}

#[cfg(feature = "cbor")]
pub(crate) fn cbor_error(e: ciborium::de::Error<std::io::Error>) -> String {
    match e {
        ciborium::de::Error::Io(io) => format!("{io} (truncated input?)"),
        ciborium::de::Error::Syntax(offset) => format!("syntax error at offset {offset}"),
        ciborium::de::Error::Semantic(offset, msg) => match offset {
            Some(offset) => format!("{msg} at offset {offset}"),
            None => msg,
        },
        ciborium::de::Error::RecursionLimitExceeded => {
            format!("nesting deeper than {MAX_NESTING} levels")
        }
    }
}

/// A depth-limited [`Value`] for ciborium, which only takes
/// `DeserializeOwned`, found `DEPTH` levels inside a message.
#[cfg(feature = "cbor")]
struct CborValue<const DEPTH: usize>(Value);

#[cfg(feature = "cbor")]
impl<'de, const DEPTH: usize> serde::Deserialize<'de> for CborValue<DEPTH> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ValueSeed {
            depth: DEPTH,
            max_depth: MAX_NESTING,
            json_bytes: false,
        }
        .deserialize(d)
        .map(CborValue)
    }
}

/// What gets encoded: a message (without cloning it) or a value.
enum Wire<'a> {
    Message(&'a Message),
    Value(&'a Value),
}

impl Serialize for Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Wire::Value(v) => v.serialize(s),
            Wire::Message(m) => {
                let elems = m.elements();
                let mut seq = s.serialize_seq(Some(elems.len() + 1))?;
                seq.serialize_element(&m.message_type())?;
                for e in elems {
                    match e {
                        Elem::Int(i) => seq.serialize_element(&i)?,
                        Elem::Str(v) => seq.serialize_element(v)?,
                        Elem::Dict(d) => seq.serialize_element(d)?,
                        Elem::List(l) => seq.serialize_element(l)?,
                    }
                }
                seq.end()
            }
        }
    }
}

/// The JSON view of a message: its dictionaries and lists as [`Json`].
impl Serialize for Json<'_, Wire<'_>> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Wire::Value(v) => Json(*v).serialize(s),
            Wire::Message(m) => {
                let elems = m.elements();
                let mut seq = s.serialize_seq(Some(elems.len() + 1))?;
                seq.serialize_element(&m.message_type())?;
                for e in elems {
                    match e {
                        Elem::Int(i) => seq.serialize_element(&i)?,
                        Elem::Str(v) => seq.serialize_element(v)?,
                        Elem::Dict(d) => seq.serialize_element(&Json(d))?,
                        Elem::List(l) => seq.serialize_element(&Json(l))?,
                    }
                }
                seq.end()
            }
        }
    }
}

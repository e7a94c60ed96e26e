//! Messages whose payload (`args`, `kwargs`) stays encoded: what a router
//! that only forwards payloads decodes. The envelope (type, ids,
//! options/details, URI) is decoded as usual; the trailing payload
//! elements are validated without building a [`Value`] tree (well-formed,
//! at most [`MAX_NESTING`] deep, valid UTF-8, string keys, the JSON binary
//! convention) and kept as a byte range of the received buffer.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::codec::Codec;
use super::error::DecodeError;
use super::message::{Message, arity};
use super::serializer::{MAX_NESTING, Serializer};
use super::value::{Dict, List, Shape, ValidateSeed, Value, ValueSeed};

/// The `args` and `kwargs` of a message as they were received: bytes of
/// one serializer, shared (cloning is cheap), already validated.
///
/// [`bytes`](Self::bytes) are the payload elements exactly as they appear
/// inside the message's array: for JSON `[1,2],{"a":1}` (with the comma
/// between), for MessagePack and CBOR the two items back to back.
///
/// ```
/// use fahrbahn_core::wamp::{Message, Serializer, Value};
/// let raw = Serializer::Json
///     .decode_raw(br#"[16,1,{},"com.example.topic",[1,2],{"a":true}]"#.to_vec())
///     .unwrap();
/// let payload = raw.payload().unwrap();
/// assert_eq!(payload.bytes(), br#"[1,2],{"a":true}"#);
/// assert_eq!(payload.count(), 2);
/// let (args, kwargs) = payload.decode().unwrap();
/// assert_eq!(args, Some(vec![Value::from(1), Value::from(2)]));
/// assert_eq!(kwargs.unwrap()["a"], Value::Bool(true));
/// ```
#[derive(Clone)]
pub struct EncodedPayload {
    serializer: Serializer,
    buf: Arc<Vec<u8>>,
    /// The byte range of `args` in `buf`.
    args: Range<usize>,
    /// The byte range of `kwargs` in `buf`, if present.
    kwargs: Option<Range<usize>>,
}

impl fmt::Debug for EncodedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedPayload")
            .field("serializer", &self.serializer)
            .field("bytes", &self.bytes().len())
            .field("count", &self.count())
            .finish()
    }
}

impl PartialEq for EncodedPayload {
    fn eq(&self, other: &Self) -> bool {
        self.serializer == other.serializer
            && self.count() == other.count()
            && self.bytes() == other.bytes()
    }
}

impl EncodedPayload {
    /// The serializer the bytes are in.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// The payload elements as they appear inside the message's array.
    pub fn bytes(&self) -> &[u8] {
        let end = self.kwargs.as_ref().map_or(self.args.end, |k| k.end);
        &self.buf[self.args.start..end]
    }

    /// The number of payload elements: 1 (`args`) or 2 (`args`, `kwargs`).
    pub fn count(&self) -> usize {
        1 + usize::from(self.kwargs.is_some())
    }

    /// The payload as values, the way [`Message`] holds it (empty ones
    /// are `None`).
    pub fn decode(&self) -> Result<(Option<List>, Option<Dict>), DecodeError> {
        let args = match self
            .serializer
            .decode_value_nested(&self.buf[self.args.clone()], 1)?
        {
            Value::List(l) => Some(l).filter(|l| !l.is_empty()),
            other => return Err(element_error("arguments", "a list", other.kind())),
        };
        let kwargs = match &self.kwargs {
            None => None,
            Some(range) => match self
                .serializer
                .decode_value_nested(&self.buf[range.clone()], 1)?
            {
                Value::Dict(d) => Some(d).filter(|d| !d.is_empty()),
                other => return Err(element_error("argumentskw", "a dict", other.kind())),
            },
        };
        Ok((args, kwargs))
    }

    /// The same payload in serializer `to`, or a shared copy when `to` is
    /// this serializer. The values are decoded with this serializer and
    /// encoded with `to` (the JSON binary convention applies both ways)
    /// one item of `args` and `kwargs` at a time: what is alive at once is
    /// one item's values, not the whole payload's.
    pub fn transcode(&self, to: Serializer) -> Result<EncodedPayload, DecodeError> {
        if to == self.serializer {
            return Ok(self.clone());
        }
        let mut out = transcode_items(self.serializer, &self.buf[self.args.clone()], to)?;
        let args = 0..out.len();
        let kwargs = match &self.kwargs {
            None => None,
            Some(range) => {
                if to == Serializer::Json {
                    out.push(b',');
                }
                let start = out.len();
                out.extend_from_slice(&transcode_items(
                    self.serializer,
                    &self.buf[range.clone()],
                    to,
                )?);
                Some(start..out.len())
            }
        };
        Ok(EncodedPayload {
            serializer: to,
            buf: Arc::new(out),
            args,
            kwargs,
        })
    }
}

/// The list or dictionary `bytes` (a payload element, at depth 1 of its
/// message) of serializer `from`, in serializer `to`: decoded and encoded
/// one item at a time ([`ItemWise`]).
fn transcode_items(from: Serializer, bytes: &[u8], to: Serializer) -> Result<Vec<u8>, DecodeError> {
    let malformed = |detail: String| DecodeError::Malformed {
        serializer: from.name(),
        detail,
    };
    let seed = ItemWise {
        to,
        json_bytes: from == Serializer::Json,
    };
    match from {
        Serializer::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let out = seed
                .deserialize(&mut de)
                .map_err(|e| malformed(e.to_string()))?;
            de.end().map_err(|e| malformed(e.to_string()))?;
            Ok(out)
        }
        #[cfg(feature = "msgpack")]
        Serializer::MsgPack => {
            let mut rest = bytes;
            let mut de = rmp_serde::Deserializer::new(&mut rest);
            seed.deserialize(&mut de)
                .map_err(|e| malformed(e.to_string()))
        }
        #[cfg(feature = "cbor")]
        Serializer::Cbor => {
            let mut rest = bytes;
            let limit = 2 * MAX_NESTING;
            let out = match to {
                Serializer::Json => ciborium::de::from_reader_with_recursion_limit::<
                    CborItemWise<1>,
                    _,
                >(&mut rest, limit)
                .map(|v| v.0),
                #[cfg(feature = "msgpack")]
                Serializer::MsgPack => ciborium::de::from_reader_with_recursion_limit::<
                    CborItemWise<2>,
                    _,
                >(&mut rest, limit)
                .map(|v| v.0),
                Serializer::Cbor => unreachable!("not transcoded to itself"),
            };
            out.map_err(|e| malformed(super::serializer::cbor_error(e)))
        }
    }
}

/// Decodes a list or dictionary one item at a time, each into a [`Value`]
/// encoded with `to` at once and dropped; the container's header (its
/// item count, for MessagePack and CBOR) is put in front once counted.
#[derive(Clone, Copy)]
struct ItemWise {
    to: Serializer,
    /// The source is JSON: its binary convention applies.
    json_bytes: bool,
}

impl ItemWise {
    fn item(self) -> ValueSeed {
        ValueSeed {
            depth: 2,
            max_depth: MAX_NESTING,
            json_bytes: self.json_bytes,
        }
    }

    /// `items` (encoded with `to`, JSON ones separated by commas) as a
    /// list (`map` false) or dictionary of `count` items.
    fn finish(self, map: bool, count: usize, mut items: Vec<u8>) -> Vec<u8> {
        match self.to {
            Serializer::Json => {
                debug_assert!(count <= items.len());
                items.insert(0, if map { b'{' } else { b'[' });
                items.push(if map { b'}' } else { b']' });
            }
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => {
                let n = count as u64;
                let header: Vec<u8> = match (map, n) {
                    (false, 0..=15) => vec![0x90 | n as u8],
                    (true, 0..=15) => vec![0x80 | n as u8],
                    (false, 16..=0xffff) => [&[0xdc][..], &(n as u16).to_be_bytes()].concat(),
                    (true, 16..=0xffff) => [&[0xde][..], &(n as u16).to_be_bytes()].concat(),
                    (false, _) => [&[0xdd][..], &(n as u32).to_be_bytes()].concat(),
                    (true, _) => [&[0xdf][..], &(n as u32).to_be_bytes()].concat(),
                };
                items.splice(0..0, header);
            }
            #[cfg(feature = "cbor")]
            Serializer::Cbor => {
                let major: u8 = if map { 5 << 5 } else { 4 << 5 };
                let n = count as u64;
                let header: Vec<u8> = match n {
                    0..=23 => vec![major | n as u8],
                    24..=0xff => vec![major | 24, n as u8],
                    0x100..=0xffff => [&[major | 25][..], &(n as u16).to_be_bytes()].concat(),
                    0x1_0000..=0xffff_ffff => {
                        [&[major | 26][..], &(n as u32).to_be_bytes()].concat()
                    }
                    _ => [&[major | 27][..], &n.to_be_bytes()].concat(),
                };
                items.splice(0..0, header);
            }
        }
        items
    }
}

impl<'de> DeserializeSeed<'de> for ItemWise {
    type Value = Vec<u8>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemWise {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list or dictionary")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::new();
        let mut count = 0;
        while let Some(value) = seq.next_element_seed(self.item())? {
            if count > 0 && self.to == Serializer::Json {
                out.push(b',');
            }
            self.to.encode_value(&value, &mut out);
            count += 1;
        }
        Ok(self.finish(false, count, out))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::new();
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.item())?;
            if count > 0 && self.to == Serializer::Json {
                out.push(b',');
            }
            self.to.encode_value(&Value::String(key), &mut out);
            if self.to == Serializer::Json {
                out.push(b':');
            }
            self.to.encode_value(&value, &mut out);
            count += 1;
        }
        Ok(self.finish(true, count, out))
    }
}

/// [`ItemWise`] for ciborium, which only takes `DeserializeOwned`: into
/// the serializer of RawSocket id `TO`.
#[cfg(feature = "cbor")]
struct CborItemWise<const TO: u8>(Vec<u8>);

#[cfg(feature = "cbor")]
impl<'de, const TO: u8> serde::Deserialize<'de> for CborItemWise<TO> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let to = Serializer::from_rawsocket_id(TO).expect("a compiled-in serializer");
        ItemWise {
            to,
            json_bytes: false,
        }
        .deserialize(d)
        .map(CborItemWise)
    }
}

fn element_error(name: &'static str, expected: &'static str, found: &str) -> DecodeError {
    DecodeError::Element {
        message: "payload",
        index: 0,
        name,
        expected,
        found: found.to_owned(),
    }
}

/// A message whose payload stays encoded: the envelope as a [`Message`]
/// (its `args` and `kwargs` are `None` when [`payload`](Self::payload) is
/// `Some`) and the payload's bytes. What
/// [`Router::handle_raw_message`](crate::wamp::router::Router::handle_raw_message)
/// takes, so that a router forwards payloads without decoding them.
///
/// ```
/// use fahrbahn_core::wamp::{Message, RawMessage, Serializer};
/// let raw = Serializer::Json.decode_raw(br#"[70,5,{},[42]]"#.to_vec()).unwrap();
/// assert!(matches!(raw.message(), Message::Yield { request: 5, args: None, .. }));
/// assert_eq!(raw.payload().unwrap().bytes(), b"[42]");
/// let full = raw.into_message().unwrap();
/// assert!(matches!(full, Message::Yield { args: Some(a), .. } if a == vec![42.into()]));
///
/// // A message without payload, or one built in memory, has none.
/// let raw = RawMessage::from(Message::Published { request: 1, publication: 2 });
/// assert!(raw.payload().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    message: Message,
    payload: Option<EncodedPayload>,
}

impl From<Message> for RawMessage {
    fn from(message: Message) -> Self {
        Self {
            message,
            payload: None,
        }
    }
}

impl RawMessage {
    /// The envelope (the whole message when there is no encoded payload).
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The payload kept encoded, if the message carries one.
    pub fn payload(&self) -> Option<&EncodedPayload> {
        self.payload.as_ref()
    }

    /// The envelope and the encoded payload.
    pub fn into_parts(self) -> (Message, Option<EncodedPayload>) {
        (self.message, self.payload)
    }

    /// The whole message, its payload decoded into values.
    pub fn into_message(self) -> Result<Message, DecodeError> {
        let mut message = self.message;
        if let Some(payload) = self.payload {
            let (args, kwargs) = payload.decode()?;
            set_payload(&mut message, args, kwargs);
        }
        Ok(message)
    }
}

/// Puts `args` and `kwargs` into `message` (nothing for a message type
/// without payload).
pub(crate) fn set_payload(message: &mut Message, args: Option<List>, kwargs: Option<Dict>) {
    match message {
        Message::Error {
            args: a, kwargs: k, ..
        }
        | Message::Publish {
            args: a, kwargs: k, ..
        }
        | Message::Event {
            args: a, kwargs: k, ..
        }
        | Message::Call {
            args: a, kwargs: k, ..
        }
        | Message::Result {
            args: a, kwargs: k, ..
        }
        | Message::Invocation {
            args: a, kwargs: k, ..
        }
        | Message::Yield {
            args: a, kwargs: k, ..
        } => {
            *a = args;
            *k = kwargs;
        }
        _ => {}
    }
}

/// Takes `args` and `kwargs` out of `message`.
#[cfg(any(feature = "router", test))]
pub(crate) fn take_payload(message: &mut Message) -> (Option<List>, Option<Dict>) {
    match message {
        Message::Error {
            args: a, kwargs: k, ..
        }
        | Message::Publish {
            args: a, kwargs: k, ..
        }
        | Message::Event {
            args: a, kwargs: k, ..
        }
        | Message::Call {
            args: a, kwargs: k, ..
        }
        | Message::Result {
            args: a, kwargs: k, ..
        }
        | Message::Invocation {
            args: a, kwargs: k, ..
        }
        | Message::Yield {
            args: a, kwargs: k, ..
        } => (a.take(), k.take()),
        _ => (None, None),
    }
}

/// The number of elements (type code included) before the payload of
/// message type `code`, for the types that carry one.
fn envelope_len(code: u64) -> Option<usize> {
    Some(match code {
        Message::ERROR => 5,
        Message::PUBLISH | Message::EVENT | Message::CALL | Message::INVOCATION => 4,
        Message::RESULT | Message::YIELD => 3,
        _ => return None,
    })
}

/// The most elements a message list has (ERROR's 7); a list with more is
/// decoded the usual way, which reports it.
const MAX_ELEMENTS: usize = 7;

impl Codec {
    /// Decodes one payload into its messages (several when batched),
    /// keeping each message's `args`/`kwargs` encoded
    /// ([`RawMessage`]); the messages share `payload`.
    pub fn decode_raw(self, payload: Vec<u8>) -> Result<Vec<RawMessage>, DecodeError> {
        let serializer = self.serializer;
        let len = payload.len();
        let buf = Arc::new(payload);
        if self.batched {
            serializer
                .batch_records(&buf)?
                .into_iter()
                .map(|record| serializer.decode_raw_at(&buf, record))
                .collect()
        } else {
            Ok(vec![serializer.decode_raw_at(&buf, 0..len)?])
        }
    }
}

impl Serializer {
    /// Decodes one message, keeping its `args`/`kwargs` encoded
    /// ([`RawMessage`]): they are validated as [`decode`](Self::decode)
    /// would (a message it refuses is refused here with the same kind of
    /// error), but not turned into [`Value`]s.
    pub fn decode_raw(self, bytes: Vec<u8>) -> Result<RawMessage, DecodeError> {
        let len = bytes.len();
        self.decode_raw_at(&Arc::new(bytes), 0..len)
    }

    pub(crate) fn decode_raw_at(
        self,
        buf: &Arc<Vec<u8>>,
        range: Range<usize>,
    ) -> Result<RawMessage, DecodeError> {
        let bytes = &buf[range.clone()];
        // Anything but the usual shape of a message with payload is
        // decoded the usual way: same result, same errors.
        let full = || self.decode(bytes).map(RawMessage::from);
        let Some(elements) = element_ranges(self, bytes) else {
            return full();
        };
        let Some(code) = elements
            .first()
            .and_then(|r| self.decode_value_nested(&bytes[r.clone()], 1).ok())
            .and_then(|v| v.as_u64())
        else {
            return full();
        };
        let (Some(envelope), Some((_, _, max))) = (envelope_len(code), arity(code)) else {
            return full();
        };
        if elements.len() <= envelope || elements.len() > max {
            return full();
        }
        let mut list = Vec::with_capacity(envelope);
        for r in &elements[..envelope] {
            list.push(self.decode_value_nested(&bytes[r.clone()], 1)?);
        }
        let mut message = Message::from_value(Value::List(list))?;
        let args = elements[envelope].clone();
        let args_len = match validate(self, &bytes[args.clone()])? {
            Shape::List(n) => n,
            _ => return full(),
        };
        let kwargs = match elements.get(envelope + 1) {
            None => None,
            Some(r) => match validate(self, &bytes[r.clone()])? {
                Shape::Dict(0) => None,
                Shape::Dict(_) => Some(r.clone()),
                _ => return full(),
            },
        };
        if args_len == 0 && kwargs.is_none() {
            // Nothing to carry: the message as if it had no payload.
            set_payload(&mut message, None, None);
            return Ok(RawMessage::from(message));
        }
        let shift = |r: Range<usize>| r.start + range.start..r.end + range.start;
        Ok(RawMessage {
            message,
            payload: Some(EncodedPayload {
                serializer: self,
                buf: buf.clone(),
                args: shift(args),
                kwargs: kwargs.map(shift),
            }),
        })
    }
}

/// Appends `envelope` (whose own `args`/`kwargs` are `None`) with
/// `payload` spliced in as its trailing elements, encoded with `codec`;
/// the payload must be in `codec`'s serializer.
#[cfg(test)]
pub(crate) fn encode_spliced(
    codec: Codec,
    envelope: &Message,
    payload: &EncodedPayload,
    out: &mut Vec<u8>,
) {
    let trailer = splice_head(codec, envelope, payload, out);
    out.extend_from_slice(payload.bytes());
    out.extend_from_slice(trailer);
}

/// The end of a JSON message with payload, batched: the list's end and
/// the record separator.
#[cfg(any(feature = "router", test))]
const JSON_BATCHED_TRAILER: [u8; 2] = [b']', super::serializer::JSON_SEPARATOR];

/// Writes what comes before `payload`'s bytes when `envelope` (whose own
/// `args`/`kwargs` are `None`) carries them as its trailing elements,
/// encoded with `codec` (the payload must be in its serializer), to
/// `head`; returns what comes after them. The message is `head`, then
/// [`payload.bytes()`](EncodedPayload::bytes), then the returned bytes.
#[cfg(any(feature = "router", test))]
pub(crate) fn splice_head(
    codec: Codec,
    envelope: &Message,
    payload: &EncodedPayload,
    head: &mut Vec<u8>,
) -> &'static [u8] {
    let serializer = codec.serializer;
    assert_eq!(
        serializer, payload.serializer,
        "a payload in the codec's serializer"
    );
    let record = head.len();
    if codec.batched && serializer.is_binary() {
        head.extend_from_slice(&[0; 4]);
    }
    let start = head.len();
    serializer.encode(envelope, head);
    let count = payload.count() as u8;
    let trailer: &'static [u8] = match serializer {
        Serializer::Json => {
            debug_assert!(head[start] == b'[' && count <= 2);
            assert_eq!(head.pop(), Some(b']'), "a JSON message ends its list");
            head.push(b',');
            if codec.batched {
                &JSON_BATCHED_TRAILER
            } else {
                b"]"
            }
        }
        #[cfg(feature = "msgpack")]
        Serializer::MsgPack => {
            let header = head[start];
            assert_eq!(header & 0xf0, 0x90, "a short MessagePack list");
            let len = (header & 0x0f) + count;
            assert!(len < 16);
            head[start] = 0x90 | len;
            b""
        }
        #[cfg(feature = "cbor")]
        Serializer::Cbor => {
            let header = head[start];
            assert_eq!(header & 0xe0, 0x80, "a short CBOR list");
            let len = (header & 0x1f) + count;
            assert!(len < 24);
            head[start] = 0x80 | len;
            b""
        }
    };
    if codec.batched && serializer.is_binary() {
        let len = head.len() - record - 4 + payload.bytes().len() + trailer.len();
        let len = u32::try_from(len).expect("a batched record longer than 4 GiB");
        head[record..record + 4].copy_from_slice(&len.to_be_bytes());
    }
    trailer
}

/// Validates one payload element (at depth 1 of its message) without
/// building it; its top-level shape.
fn validate(serializer: Serializer, bytes: &[u8]) -> Result<Shape, DecodeError> {
    let malformed = |detail: String| DecodeError::Malformed {
        serializer: serializer.name(),
        detail,
    };
    let seed = ValidateSeed(ValueSeed {
        depth: 1,
        max_depth: MAX_NESTING,
        json_bytes: serializer == Serializer::Json,
    });
    match serializer {
        Serializer::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let shape = seed
                .deserialize(&mut de)
                .map_err(|e| malformed(e.to_string()))?;
            de.end().map_err(|e| malformed(e.to_string()))?;
            Ok(shape)
        }
        #[cfg(feature = "msgpack")]
        Serializer::MsgPack => {
            let mut rest = bytes;
            let mut de = rmp_serde::Deserializer::new(&mut rest);
            let shape = seed
                .deserialize(&mut de)
                .map_err(|e| malformed(e.to_string()))?;
            drop(de);
            if !rest.is_empty() {
                return Err(malformed(format!("{} bytes of trailing data", rest.len())));
            }
            Ok(shape)
        }
        #[cfg(feature = "cbor")]
        Serializer::Cbor => {
            let mut rest = bytes;
            let shape: CborShape =
                ciborium::de::from_reader_with_recursion_limit(&mut rest, 2 * MAX_NESTING)
                    .map_err(|e| malformed(super::serializer::cbor_error(e)))?;
            if !rest.is_empty() {
                return Err(malformed(format!("{} bytes of trailing data", rest.len())));
            }
            Ok(shape.0)
        }
    }
}

/// [`ValidateSeed`] for ciborium, which only takes `DeserializeOwned`.
#[cfg(feature = "cbor")]
struct CborShape(Shape);

#[cfg(feature = "cbor")]
impl<'de> serde::Deserialize<'de> for CborShape {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ValidateSeed(ValueSeed {
            depth: 1,
            max_depth: MAX_NESTING,
            json_bytes: false,
        })
        .deserialize(d)
        .map(CborShape)
    }
}

/// The byte ranges of the elements of the message list in `bytes` (at
/// most [`MAX_ELEMENTS`]), each one complete item; `None` when `bytes`
/// is not one list of that many well-delimited items (the caller then
/// decodes the usual way, which says what is wrong).
fn element_ranges(serializer: Serializer, bytes: &[u8]) -> Option<Vec<Range<usize>>> {
    match serializer {
        Serializer::Json => json_elements(bytes),
        #[cfg(feature = "msgpack")]
        Serializer::MsgPack => {
            let (count, mut at) = msgpack::array_header(bytes, 0)?;
            if count > MAX_ELEMENTS {
                return None;
            }
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let end = msgpack::skip(bytes, at, 0)?;
                out.push(at..end);
                at = end;
            }
            (at == bytes.len()).then_some(out)
        }
        #[cfg(feature = "cbor")]
        Serializer::Cbor => cbor::elements(bytes, MAX_ELEMENTS),
    }
}

/// JSON: the list's elements as raw values (serde_json's `RawValue`).
fn json_elements(bytes: &[u8]) -> Option<Vec<Range<usize>>> {
    struct Elements<'a>(&'a [u8]);
    impl<'de> Visitor<'de> for Elements<'de> {
        type Value = Vec<Range<usize>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a WAMP message list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let base = self.0.as_ptr() as usize;
            let mut out = Vec::new();
            while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                if out.len() == MAX_ELEMENTS {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Err(de::Error::custom("too many elements"));
                }
                // The raw value borrows from the input: its offset in it.
                let start = raw.get().as_ptr() as usize - base;
                out.push(start..start + raw.get().len());
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let ranges = de::Deserializer::deserialize_seq(&mut de, Elements(bytes)).ok()?;
    de.end().ok()?;
    Some(ranges)
}

/// MessagePack item boundaries, by the format's headers.
#[cfg(feature = "msgpack")]
mod msgpack {
    use crate::wamp::MAX_NESTING;

    fn be(bytes: &[u8], at: usize, n: usize) -> Option<usize> {
        let b = bytes.get(at..at.checked_add(n)?)?;
        Some(b.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x)))
    }

    /// The element count of the array at `at` and where its items start.
    pub(super) fn array_header(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
        let m = *bytes.get(at)?;
        match m {
            0x90..=0x9f => Some((usize::from(m & 0x0f), at + 1)),
            0xdc => Some((be(bytes, at + 1, 2)?, at + 3)),
            0xdd => Some((be(bytes, at + 1, 4)?, at + 5)),
            _ => None,
        }
    }

    /// Where the item at `at` ends (`None` if it is cut short, malformed
    /// or nested too deep).
    pub(super) fn skip(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
        if depth > MAX_NESTING {
            return None;
        }
        let m = *bytes.get(at)?;
        let blob = |len_bytes: usize, extra: usize| -> Option<usize> {
            let len = be(bytes, at + 1, len_bytes)?;
            let end = (at + 1 + len_bytes + extra).checked_add(len)?;
            (end <= bytes.len()).then_some(end)
        };
        let items = |count: usize, from: usize| -> Option<usize> {
            let mut at = from;
            for _ in 0..count {
                at = skip(bytes, at, depth + 1)?;
            }
            Some(at)
        };
        let fixed = |n: usize| -> Option<usize> {
            let end = at + 1 + n;
            (end <= bytes.len()).then_some(end)
        };
        match m {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => fixed(0),
            0x80..=0x8f => items(2 * usize::from(m & 0x0f), at + 1),
            0x90..=0x9f => items(usize::from(m & 0x0f), at + 1),
            0xa0..=0xbf => fixed(usize::from(m & 0x1f)),
            0xc4 | 0xd9 => blob(1, 0),
            0xc5 | 0xda => blob(2, 0),
            0xc6 | 0xdb => blob(4, 0),
            0xc7 => blob(1, 1),
            0xc8 => blob(2, 1),
            0xc9 => blob(4, 1),
            0xca => fixed(4),
            0xcb => fixed(8),
            0xcc | 0xd0 => fixed(1),
            0xcd | 0xd1 => fixed(2),
            0xce | 0xd2 => fixed(4),
            0xcf | 0xd3 => fixed(8),
            0xd4 => fixed(2),
            0xd5 => fixed(3),
            0xd6 => fixed(5),
            0xd7 => fixed(9),
            0xd8 => fixed(17),
            0xdc => items(be(bytes, at + 1, 2)?, at + 3),
            0xdd => items(be(bytes, at + 1, 4)?, at + 5),
            0xde => items(2 * be(bytes, at + 1, 2)?, at + 3),
            0xdf => items(be(bytes, at + 1, 4)?.checked_mul(2)?, at + 5),
            0xc1 => None,
        }
    }
}

/// CBOR item boundaries, by the format's headers.
#[cfg(feature = "cbor")]
mod cbor {
    use std::ops::Range;

    use crate::wamp::MAX_NESTING;

    /// Major type, argument (`None`: indefinite length) and where the
    /// item's content starts.
    fn header(bytes: &[u8], at: usize) -> Option<(u8, Option<u64>, usize)> {
        let b = *bytes.get(at)?;
        let (major, info) = (b >> 5, b & 0x1f);
        let n = match info {
            0..=23 => return Some((major, Some(u64::from(info)), at + 1)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Some((major, None, at + 1)),
            _ => return None,
        };
        let arg = bytes
            .get(at + 1..at + 1 + n)?
            .iter()
            .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
        Some((major, Some(arg), at + 1 + n))
    }

    const BREAK: u8 = 0xff;

    /// The items of the list at the start of `bytes` (definite or
    /// indefinite length, at most `max`), which must fill `bytes`.
    pub(super) fn elements(bytes: &[u8], max: usize) -> Option<Vec<Range<usize>>> {
        let (major, arg, mut at) = header(bytes, 0)?;
        if major != 4 {
            return None;
        }
        let mut out = Vec::new();
        match arg {
            Some(count) => {
                if count > max as u64 {
                    return None;
                }
                for _ in 0..count {
                    let end = skip(bytes, at, 0)?;
                    out.push(at..end);
                    at = end;
                }
            }
            None => loop {
                if *bytes.get(at)? == BREAK {
                    at += 1;
                    break;
                }
                if out.len() == max {
                    return None;
                }
                let end = skip(bytes, at, 0)?;
                out.push(at..end);
                at = end;
            },
        }
        (at == bytes.len()).then_some(out)
    }

    /// Where the item at `at` ends (`None` if it is cut short, malformed
    /// or nested too deep).
    pub(super) fn skip(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
        if depth > 2 * MAX_NESTING {
            return None;
        }
        let (major, arg, from) = header(bytes, at)?;
        let items = |count: u64, mut at: usize| -> Option<usize> {
            for _ in 0..count {
                at = skip(bytes, at, depth + 1)?;
            }
            Some(at)
        };
        let until_break = |mut at: usize, chunks_of: Option<u8>| -> Option<usize> {
            loop {
                if *bytes.get(at)? == BREAK {
                    return Some(at + 1);
                }
                if let Some(major) = chunks_of {
                    // Chunks of an indefinite string: definite strings of
                    // the same major type.
                    if bytes[at] >> 5 != major || bytes[at] & 0x1f == 31 {
                        return None;
                    }
                }
                at = skip(bytes, at, depth + 1)?;
            }
        };
        match (major, arg) {
            (0 | 1, Some(_)) => Some(from),
            (2 | 3, Some(len)) => {
                let end = from.checked_add(usize::try_from(len).ok()?)?;
                (end <= bytes.len()).then_some(end)
            }
            (2 | 3, None) => until_break(from, Some(major)),
            (4, Some(count)) => items(count, from),
            (5, Some(count)) => items(count.checked_mul(2)?, from),
            (4 | 5, None) => until_break(from, None),
            (6, Some(_)) => skip(bytes, from, depth + 1),
            // Simple values and floats: the header holds the argument.
            (7, Some(_)) => Some(from),
            _ => None,
        }
    }
}

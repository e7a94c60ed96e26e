//! `Deserialize` for [`Value`]: a value read from any serde deserializer,
//! with a nesting bound and, for JSON, the binary convention.

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};

use super::{Dict, MAX_PREALLOC, Value};

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ValueSeed {
            depth: 0,
            max_depth: usize::MAX,
            json_bytes: false,
        }
        .deserialize(d)
    }
}

/// Deserializes a [`Value`], bounding nesting depth and optionally decoding
/// the JSON binary convention (`"\u0000"` + base64).
#[derive(Clone, Copy)]
pub(crate) struct ValueSeed {
    pub(crate) depth: usize,
    pub(crate) max_depth: usize,
    pub(crate) json_bytes: bool,
}

impl ValueSeed {
    fn child<E: de::Error>(self) -> Result<ValueSeed, E> {
        if self.depth >= self.max_depth {
            return Err(E::custom(format_args!(
                "nesting deeper than {} levels",
                self.max_depth
            )));
        }
        Ok(ValueSeed {
            depth: self.depth + 1,
            ..self
        })
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Deserializes a dictionary key (a string).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_string(KeySeed)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string dictionary key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a WAMP value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from_u64(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(i) = i64::try_from(v) {
            Ok(Value::Int(i))
        } else if let Ok(u) = u64::try_from(v) {
            Ok(Value::UInt(u))
        } else {
            Err(E::custom("integer does not fit in 64 bits"))
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::from_u64)
            .map_err(|_| E::custom("integer does not fit in 64 bits"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        if self.json_bytes {
            if let Some(b64) = v.strip_prefix('\0') {
                return decode_json_bytes(b64).map(Value::Bytes);
            }
        }
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        if self.json_bytes && v.starts_with('\0') {
            return self.visit_str(&v);
        }
        Ok(Value::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.child()?.deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(v) = seq.next_element_seed(child)? {
            list.push(v);
        }
        Ok(Value::List(list))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut dict = Dict::new();
        while let Some(k) = map.next_key_seed(KeySeed)? {
            let v = map.next_value_seed(child)?;
            dict.insert(k, v);
        }
        Ok(Value::Dict(dict))
    }
}

fn decode_json_bytes<E: de::Error>(b64: &str) -> Result<Vec<u8>, E> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| E::custom(format_args!("invalid base64 in binary string: {e}")))
}

/// What [`ValidateSeed`] found at its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A list of this many items.
    List(usize),
    /// A dictionary of this many entries.
    Dict(usize),
    /// Anything else.
    Other,
}

/// Accepts exactly what [`ValueSeed`] accepts (the same visitor methods,
/// the same depth bound, string keys, valid `"\u0000"` base64 in JSON)
/// without building the [`Value`]: a validating pass over a payload the
/// router forwards as it came.
#[derive(Clone, Copy)]
pub(crate) struct ValidateSeed(pub(crate) ValueSeed);

impl<'de> DeserializeSeed<'de> for ValidateSeed {
    type Value = Shape;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

/// Checks a dictionary key is a string, keeping nothing.
struct KeyCheck;

impl<'de> DeserializeSeed<'de> for KeyCheck {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_string(KeyCheck)
    }
}

impl Visitor<'_> for KeyCheck {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string dictionary key")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_string<E: de::Error>(self, _: String) -> Result<(), E> {
        Ok(())
    }
}

impl<'de> Visitor<'de> for ValidateSeed {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a WAMP value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Shape, E> {
        self.0.visit_i128(v).map(|_| Shape::Other)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Shape, E> {
        self.0.visit_u128(v).map(|_| Shape::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
        if self.0.json_bytes {
            if let Some(b64) = v.strip_prefix('\0') {
                // Decoded into a buffer of this string's size, dropped at once.
                decode_json_bytes::<E>(b64)?;
            }
        }
        Ok(Shape::Other)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Shape, E> {
        self.visit_str(&v)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_byte_buf<E: de::Error>(self, _: Vec<u8>) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        ValidateSeed(self.0.child()?).deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let child = ValidateSeed(self.0.child()?);
        let mut len = 0;
        while seq.next_element_seed(child)?.is_some() {
            len += 1;
        }
        Ok(Shape::List(len))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let child = ValidateSeed(self.0.child()?);
        let mut len = 0;
        while map.next_key_seed(KeyCheck)?.is_some() {
            map.next_value_seed(child)?;
            len += 1;
        }
        Ok(Shape::Dict(len))
    }
}

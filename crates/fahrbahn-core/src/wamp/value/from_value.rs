//! [`from_value`]: a [`Value`] into any `Deserialize` type, through the
//! value's `Deserializer` implementation.

use serde::de::{self, DeserializeSeed, Deserializer as _, IntoDeserializer, Visitor};

use super::key_deserializer::KeyDeserializer;
use super::{Value, ValueError};

/// Converts a [`Value`] into any `Deserialize` type.
///
/// ```
/// use fahrbahn_core::wamp::{Value, from_value};
/// let v = Value::List(vec!["ping".into(), 3.into()]);
/// let (name, n): (String, u32) = from_value(v).unwrap();
/// assert_eq!((name.as_str(), n), ("ping", 3));
/// ```
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(value)
}

impl IntoDeserializer<'_, ValueError> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::UInt(u) => visitor.visit_u64(u),
            Value::Float(f) => visitor.visit_f64(f),
            Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::List(l) => {
                let mut seq = de::value::SeqDeserializer::new(l.into_iter());
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Dict(d) => {
                let mut map = de::value::MapDeserializer::new(
                    d.into_iter().map(|(k, v)| (KeyDeserializer(k), v)),
                );
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            v => visitor.visit_some(v),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            // Lets a plain `Vec<u8>` field read `Value::Bytes`.
            Value::Bytes(b) => {
                let mut seq = de::value::SeqDeserializer::new(b.into_iter());
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            v => v.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::String(variant) => visitor.visit_enum(EnumAccess {
                variant,
                content: None,
            }),
            Value::Dict(d) if d.len() == 1 => {
                let (variant, content) = d.into_iter().next().expect("one entry");
                visitor.visit_enum(EnumAccess {
                    variant,
                    content: Some(content),
                })
            }
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"an enum: a string or a one-entry dict",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map struct identifier
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => de::Unexpected::Signed(*i),
        Value::UInt(u) => de::Unexpected::Unsigned(*u),
        Value::Float(f) => de::Unexpected::Float(*f),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Bytes(b) => de::Unexpected::Bytes(b),
        Value::List(_) => de::Unexpected::Seq,
        Value::Dict(_) => de::Unexpected::Map,
    }
}

/// Enum access over `"Variant"` or `{"Variant": content}`.
struct EnumAccess {
    variant: String,
    content: Option<Value>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ValueError;
    type Variant = VariantAccess;
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantAccess), ValueError> {
        let v = seed.deserialize(self.variant.into_deserializer())?;
        Ok((
            v,
            VariantAccess {
                content: self.content,
            },
        ))
    }
}

/// Variant access of [`EnumAccess`].
struct VariantAccess {
    content: Option<Value>,
}

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.content {
            None | Some(Value::Null) => Ok(()),
            Some(v) => Err(de::Error::invalid_type(unexpected(&v), &"a unit variant")),
        }
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, ValueError> {
        match self.content {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.content {
            Some(v @ Value::List(_)) => v.deserialize_any(visitor),
            Some(v) => Err(de::Error::invalid_type(unexpected(&v), &"a tuple variant")),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.content {
            Some(v @ Value::Dict(_)) => v.deserialize_any(visitor),
            Some(v) => Err(de::Error::invalid_type(unexpected(&v), &"a struct variant")),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::wamp::value::{Dict, to_value};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Blob(#[serde(with = "bytes_as_bytes")] Vec<u8>);

    mod bytes_as_bytes {
        pub(super) fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(b)
        }
        pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<u8>, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                    Ok(v)
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Point,
        Circle(f64),
        Rect { w: u32, h: u32 },
        Pair(i8, i8),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Call {
        procedure: String,
        timeout: Option<u64>,
        big: u64,
        neg: i32,
        tags: Vec<String>,
        payload: Blob,
        raw: Vec<u8>,
        shapes: Vec<Shape>,
        counts: BTreeMap<u32, bool>,
        #[serde(default)]
        missing: Option<String>,
    }

    fn sample() -> Call {
        Call {
            procedure: "com.myapp.ping".into(),
            timeout: None,
            big: u64::MAX,
            neg: -5,
            tags: vec!["a".into(), "b".into()],
            payload: Blob(vec![1, 2, 3]),
            raw: vec![4, 5],
            shapes: vec![
                Shape::Point,
                Shape::Circle(1.5),
                Shape::Rect { w: 2, h: 3 },
                Shape::Pair(-1, 1),
            ],
            counts: [(1, true), (2, false)].into_iter().collect(),
            missing: None,
        }
    }

    #[test]
    fn derived_struct_round_trips() {
        let v = to_value(&sample()).unwrap();
        assert_eq!(
            v.get("procedure").and_then(Value::as_str),
            Some("com.myapp.ping")
        );
        assert_eq!(v.get("timeout"), Some(&Value::Null));
        assert_eq!(v.get("big"), Some(&Value::UInt(u64::MAX)));
        assert_eq!(v.get("payload"), Some(&Value::Bytes(vec![1, 2, 3])));
        assert_eq!(
            v.get("shapes").and_then(|s| s.get_index(0)),
            Some(&Value::from("Point"))
        );
        assert_eq!(
            v.get("counts").and_then(|c| c.get("2")),
            Some(&Value::Bool(false))
        );
        let back: Call = from_value(v).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn plain_vec_u8_reads_bytes() {
        let raw: Vec<u8> = from_value(Value::Bytes(vec![9, 8])).unwrap();
        assert_eq!(raw, vec![9, 8]);
    }

    #[test]
    fn from_value_errors_are_descriptive() {
        let err = from_value::<Call>(Value::Dict(Dict::new())).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let err = from_value::<u8>(Value::Int(300)).unwrap_err();
        assert!(err.to_string().contains("300"), "{err}");
    }
}

//! [`to_value`]: any `Serialize` type into a [`Value`].

use serde::ser::{self, Serialize};

use super::key_serializer::KeySerializer;
use super::{Dict, List, MAX_PREALLOC, Value, ValueError};

/// Converts any `Serialize` type into a [`Value`].
///
/// Structs and maps become [`Value::Dict`], sequences and tuples
/// [`Value::List`], `serialize_bytes` (e.g. `serde_bytes`) [`Value::Bytes`],
/// `None` and `()` [`Value::Null`], unit enum variants their name, other
/// enum variants a one-entry dictionary `{variant: content}`.
///
/// ```
/// use fahrbahn_core::wamp::{Value, to_value};
/// let v = to_value(&("ping", 3u32)).unwrap();
/// assert_eq!(v, Value::List(vec!["ping".into(), 3.into()]));
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

/// The `serde::Serializer` behind [`to_value`].
struct ValueSerializer;

fn i128_value(v: i128) -> Result<Value, ValueError> {
    if let Ok(i) = i64::try_from(v) {
        Ok(Value::Int(i))
    } else if let Ok(u) = u64::try_from(v) {
        Ok(Value::UInt(u))
    } else {
        Err(ValueError::NumberOutOfRange)
    }
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SerializeList;
    type SerializeTuple = SerializeList;
    type SerializeTupleStruct = SerializeList;
    type SerializeTupleVariant = SerializeList;
    type SerializeMap = SerializeDict;
    type SerializeStruct = SerializeDict;
    type SerializeStructVariant = SerializeDict;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        i128_value(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        u64::try_from(v)
            .map(Value::from_u64)
            .map_err(|_| ValueError::NumberOutOfRange)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, ValueError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<Value, ValueError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, ValueError> {
        let mut d = Dict::new();
        d.insert(variant.to_owned(), v.serialize(self)?);
        Ok(Value::Dict(d))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeList, ValueError> {
        Ok(SerializeList {
            variant: None,
            list: Vec::with_capacity(len.unwrap_or(0).min(MAX_PREALLOC)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SerializeList, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeList, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeList, ValueError> {
        let mut s = self.serialize_seq(Some(len))?;
        s.variant = Some(variant);
        Ok(s)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<SerializeDict, ValueError> {
        Ok(SerializeDict {
            variant: None,
            dict: Dict::new(),
            key: None,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeDict, ValueError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeDict, ValueError> {
        let mut s = self.serialize_map(Some(len))?;
        s.variant = Some(variant);
        Ok(s)
    }
}

/// Wraps `v` as `{variant: v}` when serializing an enum variant.
fn wrap_variant(variant: Option<&'static str>, v: Value) -> Value {
    match variant {
        None => v,
        Some(name) => {
            let mut d = Dict::new();
            d.insert(name.to_owned(), v);
            Value::Dict(d)
        }
    }
}

/// Sequence state of [`ValueSerializer`].
struct SerializeList {
    variant: Option<&'static str>,
    list: List,
}

impl ser::SerializeSeq for SerializeList {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        self.list.push(v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(wrap_variant(self.variant, Value::List(self.list)))
    }
}

impl ser::SerializeTuple for SerializeList {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SerializeList {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for SerializeList {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

/// Map/struct state of [`ValueSerializer`].
struct SerializeDict {
    variant: Option<&'static str>,
    dict: Dict,
    key: Option<String>,
}

impl ser::SerializeMap for SerializeDict {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        let key = self.key.take().ok_or_else(|| {
            ValueError::Custom("serialize_value called before serialize_key".into())
        })?;
        self.dict.insert(key, v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(wrap_variant(self.variant, Value::Dict(self.dict)))
    }
}

impl ser::SerializeStruct for SerializeDict {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        self.dict
            .insert(key.to_owned(), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeMap::end(self)
    }
}

impl ser::SerializeStructVariant for SerializeDict {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(self, key, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeMap::end(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    enum Shape {
        Point,
        Circle(f64),
        Rect { w: u32, h: u32 },
        Pair(i8, i8),
    }

    #[derive(Serialize)]
    struct Call {
        procedure: &'static str,
        timeout: Option<u64>,
        big: u64,
        #[serde(with = "as_bytes")]
        payload: Vec<u8>,
        raw: Vec<u8>,
    }

    mod as_bytes {
        pub(super) fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(b)
        }
    }

    #[test]
    fn structs_become_dicts() {
        let v = to_value(&Call {
            procedure: "com.myapp.ping",
            timeout: None,
            big: u64::MAX,
            payload: vec![1, 2, 3],
            raw: vec![4],
        })
        .unwrap();
        assert_eq!(
            v.get("procedure").and_then(Value::as_str),
            Some("com.myapp.ping")
        );
        assert_eq!(v.get("timeout"), Some(&Value::Null));
        assert_eq!(v.get("big"), Some(&Value::UInt(u64::MAX)));
        assert_eq!(v.get("payload"), Some(&Value::Bytes(vec![1, 2, 3])));
        assert_eq!(v.get("raw"), Some(&Value::from_iter([Value::from(4)])));
    }

    #[test]
    fn enum_variants_take_their_documented_shapes() {
        let shapes = [
            Shape::Point,
            Shape::Circle(1.5),
            Shape::Rect { w: 2, h: 3 },
            Shape::Pair(-1, 1),
        ];
        let v = to_value(&shapes).unwrap();
        let rect: Value = [("w", Value::from(2)), ("h", Value::from(3))]
            .into_iter()
            .collect();
        let expected = Value::from_iter([
            Value::from("Point"),
            Value::from_iter([("Circle", Value::from(1.5))]),
            Value::from_iter([("Rect", rect)]),
            Value::from_iter([("Pair", Value::from_iter([Value::from(-1), Value::from(1)]))]),
        ]);
        assert_eq!(v, expected);
    }

    #[test]
    fn integers_normalize_and_128_bit_ones_must_fit() {
        assert_eq!(to_value(&5u64).unwrap(), Value::Int(5));
        assert!(matches!(to_value(&5u64), Ok(Value::Int(5))));
        assert!(matches!(
            to_value(&(u64::MAX as u128)),
            Ok(Value::UInt(u64::MAX))
        ));
        assert!(matches!(to_value(&-1i128), Ok(Value::Int(-1))));
        assert_eq!(to_value(&u128::MAX), Err(ValueError::NumberOutOfRange));
        assert_eq!(to_value(&i128::MIN), Err(ValueError::NumberOutOfRange));
    }

    #[test]
    fn non_string_like_keys_are_refused() {
        let map: BTreeMap<Vec<u8>, u8> = [(vec![1u8], 2u8)].into_iter().collect();
        assert_eq!(to_value(&map), Err(ValueError::KeyMustBeAString));
    }
}

//! Dictionary keys on their way out of a [`Value`](super::Value) into a
//! `Deserialize` type.

use serde::de::{self, IntoDeserializer, Visitor};

use super::{Value, ValueError};

/// A dictionary key on its way into a `Deserialize` type: a string, but
/// integer and bool keys (`BTreeMap<u32, _>`) parse it, as serde_json does.
pub(super) struct KeyDeserializer(pub(super) String);

impl IntoDeserializer<'_, ValueError> for KeyDeserializer {
    type Deserializer = KeyDeserializer;
    fn into_deserializer(self) -> KeyDeserializer {
        self
    }
}

macro_rules! parse_key {
    ($($f:ident => $v:ident: $t:ty),*) => {$(
        fn $f<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.0.parse::<$t>() {
                Ok(n) => visitor.$v(n),
                Err(_) => visitor.visit_string(self.0),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDeserializer {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        Value::String(self.0).deserialize_enum(name, variants, visitor)
    }

    parse_key!(
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128
    );

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::wamp::value::{Value, from_value};

    fn dict_of(keys: &[&str]) -> Value {
        keys.iter().map(|k| (*k, Value::Null)).collect()
    }

    #[test]
    fn number_and_bool_keys_parse() {
        let m: BTreeMap<u32, ()> = from_value(dict_of(&["1", "20"])).unwrap();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [1, 20]);
        let m: BTreeMap<i8, ()> = from_value(dict_of(&["-3"])).unwrap();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [-3]);
        let m: BTreeMap<bool, ()> = from_value(dict_of(&["true"])).unwrap();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [true]);
    }

    #[test]
    fn unparsable_keys_are_reported() {
        let err = from_value::<BTreeMap<u32, ()>>(dict_of(&["one"])).unwrap_err();
        assert!(err.to_string().contains("one"), "{err}");
    }
}

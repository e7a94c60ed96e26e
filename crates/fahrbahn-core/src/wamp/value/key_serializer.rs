//! Dictionary keys on their way into a [`Value`](super::Value): strings, or
//! integers, chars and bools as their text.

use serde::ser::{self, Serialize};

use super::ValueError;

/// Serializes dictionary keys: strings as they are, integers, chars and bools
/// as their text.
pub(super) struct KeySerializer;

macro_rules! key_to_string {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<String, ValueError> {
            Ok(v.to_string())
        }
    )*};
}

macro_rules! key_unsupported {
    ($($f:ident$(($($a:ty),*))?),*) => {$(
        fn $f(self $($(, _: $a)*)?) -> Result<String, ValueError> {
            Err(ValueError::KeyMustBeAString)
        }
    )*};
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = ValueError;
    type SerializeSeq = ser::Impossible<String, ValueError>;
    type SerializeTuple = ser::Impossible<String, ValueError>;
    type SerializeTupleStruct = ser::Impossible<String, ValueError>;
    type SerializeTupleVariant = ser::Impossible<String, ValueError>;
    type SerializeMap = ser::Impossible<String, ValueError>;
    type SerializeStruct = ser::Impossible<String, ValueError>;
    type SerializeStructVariant = ser::Impossible<String, ValueError>;

    key_to_string!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str
    );
    key_unsupported!(
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none,
        serialize_unit,
        serialize_unit_struct(&'static str)
    );

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String, ValueError> {
        v.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, ValueError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<String, ValueError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _v: &T,
    ) -> Result<String, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Err(ValueError::KeyMustBeAString)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_like_keys_become_text() {
        assert_eq!("k".serialize(KeySerializer), Ok("k".to_owned()));
        assert_eq!(7u32.serialize(KeySerializer), Ok("7".to_owned()));
        assert_eq!((-7i64).serialize(KeySerializer), Ok("-7".to_owned()));
        assert_eq!(true.serialize(KeySerializer), Ok("true".to_owned()));
        assert_eq!('c'.serialize(KeySerializer), Ok("c".to_owned()));
        assert_eq!(Some("k").serialize(KeySerializer), Ok("k".to_owned()));
    }

    #[test]
    fn other_keys_are_refused() {
        assert_eq!(
            1.5f64.serialize(KeySerializer),
            Err(ValueError::KeyMustBeAString)
        );
        assert_eq!(
            ().serialize(KeySerializer),
            Err(ValueError::KeyMustBeAString)
        );
        assert_eq!(
            [1u8].serialize(KeySerializer),
            Err(ValueError::KeyMustBeAString)
        );
    }
}

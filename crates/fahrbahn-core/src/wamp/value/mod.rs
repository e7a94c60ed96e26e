//! The dynamic value carried in WAMP messages (`Details`, `Options`,
//! `Arguments`, `ArgumentsKw`) and typed access to it through serde.
//!
//! - this file: [`Value`], [`Dict`], [`List`] and their accessors;
//! - `from`: conversions from Rust values;
//! - `serialize`, `deserialize`: [`Value`] written by / read from any serde
//!   format (the codecs use them);
//! - `to_value`, `from_value`: typed access, with the key (de)serializers
//!   in `key_serializer`, `key_deserializer`;
//! - `json`: the JSON text of a value ([`Json`], `Display`);
//! - `error`: [`ValueError`].

mod deserialize;
mod error;
mod from;
mod from_value;
mod json;
mod key_deserializer;
mod key_serializer;
mod serialize;
mod to_value;

use std::collections::BTreeMap;

pub(crate) use deserialize::{Shape, ValidateSeed, ValueSeed};
pub use error::ValueError;
pub use from_value::from_value;
pub use json::Json;
pub use to_value::to_value;

/// Largest preallocation for lists/dicts from a size hint: the hint may come
/// from untrusted input.
const MAX_PREALLOC: usize = 1024;

/// A WAMP dictionary: string keys, sorted.
pub type Dict = BTreeMap<String, Value>;

/// A WAMP list.
pub type List = Vec<Value>;

/// A dynamically typed value, the common denominator of the JSON,
/// MessagePack and CBOR serializers.
///
/// Integers are lossless: [`Value::Int`] holds every integer that fits an
/// `i64`, [`Value::UInt`] the ones above `i64::MAX` (MessagePack and CBOR can
/// carry them). Decoders and [`to_value`] always pick `Int` when the number
/// fits, and equality compares integers by numeric value, so
/// `Value::UInt(5) == Value::Int(5)`.
///
/// ```
/// use fahrbahn_core::wamp::{Dict, Value};
///
/// let mut details = Dict::new();
/// details.insert("caller".into(), Value::from(7u64));
/// details.insert("procedure".into(), Value::from("com.myapp.ping"));
/// let v = Value::Dict(details);
/// assert_eq!(v.get("caller").and_then(Value::as_u64), Some(7));
/// assert_eq!(v.get("procedure").and_then(Value::as_str), Some("com.myapp.ping"));
/// ```
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// JSON `null`, MessagePack `nil`, CBOR `null`/`undefined`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A floating point number.
    Float(f64),
    /// A UTF-8 string.
    String(String),
    /// Binary data (JSON carries it as `"\u0000"` + base64).
    Bytes(Vec<u8>),
    /// A list.
    List(List),
    /// A dictionary with string keys.
    Dict(Dict),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (UInt(a), UInt(b)) => a == b,
            (Int(a), UInt(b)) | (UInt(b), Int(a)) => u64::try_from(*a) == Ok(*b),
            (Float(a), Float(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Dict(a), Dict(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// A short name of the value's kind ("null", "bool", "integer", "float",
    /// "string", "bytes", "list", "dict"), for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::UInt(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// The integer as `u64`, if it is a non-negative integer.
    ///
    /// ```
    /// use fahrbahn_core::wamp::Value;
    /// assert_eq!(Value::from(u64::MAX).as_u64(), Some(u64::MAX));
    /// assert_eq!(Value::from(-1).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::UInt(u) => Some(*u),
            _ => None,
        }
    }

    /// The number as `f64`, if it is a float or an integer (integers above
    /// 2^53 lose precision).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            _ => None,
        }
    }

    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The list, if this is a [`Value::List`].
    pub fn as_list(&self) -> Option<&List> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is a [`Value::Dict`].
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The mutable dictionary, if this is a [`Value::Dict`].
    pub fn as_dict_mut(&mut self) -> Option<&mut Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The entry `key` of a dictionary; `None` if this is not a dictionary or
    /// has no such key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict().and_then(|d| d.get(key))
    }

    /// Element `index` of a list; `None` if this is not a list or too short.
    pub fn get_index(&self, index: usize) -> Option<&Value> {
        self.as_list().and_then(|l| l.get(index))
    }

    /// A normalized integer: `Int` if it fits, `UInt` otherwise.
    pub(crate) fn from_u64(u: u64) -> Value {
        match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_compare_numerically() {
        assert_eq!(Value::UInt(5), Value::Int(5));
        assert_ne!(Value::Int(-1), Value::UInt(u64::MAX));
        assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
        assert_eq!(Value::from(1u64 << 53), Value::Int(1 << 53));
        assert_eq!(Value::Int(-3).as_u64(), None);
        assert_eq!(Value::UInt(u64::MAX).as_i64(), None);
    }

    #[test]
    fn value_is_its_own_serde_form() {
        let v: Value = [
            ("a", Value::from(1)),
            ("b", Value::Bytes(vec![0])),
            ("c", Value::from_iter([Value::Null, Value::from(2.5)])),
        ]
        .into_iter()
        .collect();
        assert_eq!(to_value(&v).unwrap(), v);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
    }
}

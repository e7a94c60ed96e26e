//! [`ValueError`]: converting between Rust types and [`Value`](super::Value) failed.

use std::fmt;

use serde::{de, ser};

/// Converting between Rust types and [`Value`](super::Value) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// A map key that is not a string, an integer, a char or a bool; WAMP
    /// dictionaries have string keys.
    KeyMustBeAString,
    /// A 128-bit integer outside the `i64`/`u64` range.
    NumberOutOfRange,
    /// An error reported by a `Serialize`/`Deserialize` implementation, e.g.
    /// a missing field or a value of the wrong type.
    Custom(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::KeyMustBeAString => {
                f.write_str("dictionary keys must be strings (or integers, chars, bools)")
            }
            ValueError::NumberOutOfRange => {
                f.write_str("integer does not fit in 64 bits (i64 or u64)")
            }
            ValueError::Custom(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for ValueError {}

impl ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::Custom(msg.to_string())
    }
}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::Custom(msg.to_string())
    }
}

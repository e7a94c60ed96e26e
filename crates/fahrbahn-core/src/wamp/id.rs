//! WAMP IDs: integers in `[1, 2^53]`, so that they survive a trip through a
//! JavaScript number (an IEEE 754 double).

use std::fmt;

use crate::Rng;

/// Declares a WAMP ID newtype over `u64`.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(id: u64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for u64 {
            fn from(id: $name) -> u64 {
                id.0
            }
        }

        impl From<$name> for crate::wamp::Value {
            fn from(id: $name) -> Self {
                crate::wamp::Value::from(id.0)
            }
        }
    };
}

id_type!(
    /// A session's ID (global scope: random, assigned by the router).
    ///
    /// ```
    /// use fahrbahn_core::wamp::SessionId;
    /// let id = SessionId(42);
    /// assert_eq!(id.to_string(), "42");
    /// assert_eq!(u64::from(id), 42);
    /// ```
    SessionId
);
id_type!(
    /// A request's ID (session scope: 1, 2, 3, … per session).
    RequestId
);
id_type!(
    /// A registration's ID (router scope).
    RegistrationId
);
id_type!(
    /// A subscription's ID (router scope).
    SubscriptionId
);
id_type!(
    /// A publication's ID (global scope: random, assigned by the broker).
    PublicationId
);

/// The largest WAMP ID, 2^53.
pub const MAX_ID: u64 = 1 << 53;

/// Whether `id` is in the WAMP ID range `[1, 2^53]`.
///
/// ```
/// use fahrbahn_core::wamp::{MAX_ID, is_valid_id};
/// assert!(is_valid_id(1) && is_valid_id(MAX_ID));
/// assert!(!is_valid_id(0) && !is_valid_id(MAX_ID + 1));
/// ```
pub fn is_valid_id(id: u64) -> bool {
    (1..=MAX_ID).contains(&id)
}

/// Draws a *global scope* ID (session IDs, publication IDs): uniformly
/// random in `[1, 2^53]`, from the caller's randomness.
///
/// ```
/// use fahrbahn_core::Rng;
/// use fahrbahn_core::wamp::{is_valid_id, random_id};
/// let mut rng = Rng::from_seed(1);
/// assert!(is_valid_id(random_id(&mut rng)));
/// ```
pub fn random_id(rng: &mut Rng) -> u64 {
    // 53 random bits give [0, 2^53 - 1]; shifting by one gives [1, 2^53].
    (rng.next_u64() >> 11) + 1
}

/// A *session scope* ID generator (request IDs): 1, 2, 3, …, wrapping back
/// to 1 after 2^53.
///
/// ```
/// use fahrbahn_core::wamp::IdGenerator;
/// let mut ids = IdGenerator::new();
/// assert_eq!((ids.next(), ids.next(), ids.next()), (1, 2, 3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct IdGenerator {
    last: u64,
}

impl IdGenerator {
    /// A generator whose first ID is 1.
    pub fn new() -> Self {
        Self { last: 0 }
    }

    /// A generator whose first ID follows `last` (1 after 2^53): a
    /// sequence that starts anywhere, e.g. at a random point so that its
    /// IDs do not look like small counts.
    ///
    /// ```
    /// use fahrbahn_core::wamp::IdGenerator;
    /// let mut ids = IdGenerator::starting_after(41);
    /// assert_eq!(ids.next(), 42);
    /// ```
    pub fn starting_after(last: u64) -> Self {
        Self { last }
    }

    /// The next ID.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.last = if self.last >= MAX_ID {
            1
        } else {
            self.last + 1
        };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_wraps_after_max() {
        let mut ids = IdGenerator { last: MAX_ID - 1 };
        assert_eq!(ids.next(), MAX_ID);
        assert_eq!(ids.next(), 1);
        assert_eq!(ids.next(), 2);
    }

    #[test]
    fn random_ids_in_range() {
        let mut rng = Rng::from_seed(42);
        for _ in 0..10_000 {
            assert!(is_valid_id(random_id(&mut rng)));
        }
        assert_eq!((u64::MAX >> 11) + 1, MAX_ID);
    }
}

//! WAMP authentication methods, client and router side, sans-IO.
//!
//! One module per method, each with the computation both peers do:
//!
//! - [`ticket`]: a shared ticket sent as is; the router keeps an argon2
//!   hash of it ([`ticket::hash_ticket`]).
//! - [`wampcra`]: challenge-response with HMAC-SHA256, plain or salted
//!   (PBKDF2 key derivation as AutobahnPython's `derive_key`).
//! - [`cryptosign`]: Ed25519 signatures over a router nonce
//!   ([`CryptosignKey`] from a hex seed, a raw key file or an OpenSSH
//!   private key). Channel binding: `none` only.
//! - [`scram`]: WAMP-SCRAM with the `argon2id-13` and `pbkdf2` KDFs and
//!   mutual authentication (the client checks the router's signature).
//!
//! A client lists its [`Credential`]s in
//! [`SessionConfig::credentials`](crate::wamp::SessionConfig::credentials);
//! the [`Session`](crate::wamp::Session) offers them in HELLO and answers
//! the CHALLENGE itself. A router uses
//! [`StaticAuthenticator`]
//! (feature `router`).
//!
//! Randomness (nonces, salts) comes from the injected [`Rng`](crate::Rng);
//! secrets are held in [`Secret`], compared in constant time, never logged
//! and never shown by `Debug`.

mod credential;
pub mod cryptosign;
pub mod scram;
mod secret;
#[cfg(feature = "router")]
mod static_authenticator;
pub mod ticket;
pub mod wampcra;

pub(crate) use credential::ClientAuth;
pub use credential::Credential;
pub use cryptosign::CryptosignKey;
pub use scram::{Kdf, ScramCredential};
pub use secret::Secret;
#[cfg(feature = "router")]
pub use static_authenticator::StaticAuthenticator;

use std::fmt;

/// The method name `anonymous`.
pub const ANONYMOUS: &str = "anonymous";
/// The method name `ticket`.
pub const TICKET: &str = "ticket";
/// The method name `wampcra`.
pub const WAMPCRA: &str = "wampcra";
/// The method name `cryptosign`.
pub const CRYPTOSIGN: &str = "cryptosign";
/// The method name `scram`.
pub const SCRAM: &str = "scram";

/// Why an authentication computation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The peer's CHALLENGE (or WELCOME) lacks a field or has a malformed
    /// one: a peer's mistake.
    BadChallenge(String),
    /// A key, key file or credential given by the user is malformed.
    BadKey(String),
    /// Parameters out of range (e.g. argon2 memory, PBKDF2 iterations).
    BadParameters(String),
    /// The router's proof of knowing the credential (SCRAM server
    /// signature) is wrong: it may be an impostor.
    RouterNotAuthenticated,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::BadChallenge(why) => write!(f, "malformed authentication challenge: {why}"),
            AuthError::BadKey(why) => write!(f, "unusable key or credential: {why}"),
            AuthError::BadParameters(why) => write!(f, "bad key derivation parameters: {why}"),
            AuthError::RouterNotAuthenticated => f.write_str(
                "the router's SCRAM signature is wrong: it does not know the credential",
            ),
        }
    }
}

impl std::error::Error for AuthError {}

/// Lower-case hex of `bytes`.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The bytes of a hex string (either case), `None` if it is not hex.
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// Standard base64 with padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 (padded).
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// A string field of a CHALLENGE's extra.
pub(crate) fn str_field<'a>(extra: &'a crate::wamp::Dict, key: &str) -> Result<&'a str, AuthError> {
    extra
        .get(key)
        .and_then(crate::wamp::Value::as_str)
        .ok_or_else(|| AuthError::BadChallenge(format!("`{key}` (a string) is missing")))
}

/// An unsigned integer field of a CHALLENGE's extra.
pub(crate) fn u32_field(extra: &crate::wamp::Dict, key: &str) -> Result<u32, AuthError> {
    extra
        .get(key)
        .and_then(crate::wamp::Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| AuthError::BadChallenge(format!("`{key}` (an integer) is missing")))
}

#[cfg(test)]
mod tests;

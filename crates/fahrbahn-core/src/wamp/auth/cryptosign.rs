//! WAMP-cryptosign: Ed25519 signatures. The client announces its public key
//! in HELLO `authextra.pubkey` (hex); the router answers with CHALLENGE
//! extra `{challenge: hex(32 random bytes), channel_binding: null}`; the
//! client signs the 32 challenge bytes and answers
//! `hex(signature64 || challenge32)` (the format of Crossbar.io and
//! AutobahnPython). Only channel binding `none` is supported.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::{AuthError, hex_decode, hex_encode, str_field};
use crate::wamp::{Dict, Value};

/// An Ed25519 private key for cryptosign. `Debug` shows only the public
/// key; the private half is zeroed when dropped.
///
/// ```
/// use fahrbahn_core::wamp::auth::CryptosignKey;
/// let key = CryptosignKey::from_seed_hex(
///     "c997d2deeccd7445918409bd47a68b11b0a5203c633b5aa8646539fbda14ddc7").unwrap();
/// assert_eq!(key.public_key_hex(),
///     "3c37a8d113ee420c981303bbc162c899330ba8d6b3fe2f0bf5b1b273ca40662e");
/// ```
#[derive(Clone)]
pub struct CryptosignKey(SigningKey);

impl fmt::Debug for CryptosignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptosignKey")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl CryptosignKey {
    /// The key of a 32-byte seed (RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The key of a 32-byte seed in hex (64 hex digits).
    pub fn from_seed_hex(hex: &str) -> Result<Self, AuthError> {
        let bytes = zeroize::Zeroizing::new(
            hex_decode(hex.trim())
                .ok_or_else(|| AuthError::BadKey("the seed is not hex".into()))?,
        );
        let seed: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            AuthError::BadKey(format!("the seed has {} bytes, not 32", bytes.len()))
        })?;
        Ok(Self::from_seed(seed))
    }

    /// The key in a raw key file: a 32-byte seed, or a 64-byte key pair
    /// (seed then public key, as libsodium/PyNaCl write it; the public half
    /// must match the seed).
    pub fn from_raw_bytes(bytes: &[u8]) -> Result<Self, AuthError> {
        match bytes.len() {
            32 => Ok(Self::from_seed(bytes.try_into().expect("32 bytes"))),
            64 => {
                let pair: &[u8; 64] = bytes.try_into().expect("64 bytes");
                SigningKey::from_keypair_bytes(pair).map(Self).map_err(|_| {
                    AuthError::BadKey(
                        "the public half of the key pair does not match its seed".into(),
                    )
                })
            }
            n => Err(AuthError::BadKey(format!(
                "a raw key file has 32 (seed) or 64 (key pair) bytes, not {n}"
            ))),
        }
    }

    /// The key in an OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE
    /// KEY-----`, type `ssh-ed25519`, not encrypted: decrypt it first with
    /// `ssh-keygen -p`).
    pub fn from_openssh(text: &str) -> Result<Self, AuthError> {
        let key = ssh_key::PrivateKey::from_openssh(rewrap(text))
            .map_err(|e| AuthError::BadKey(format!("not an OpenSSH private key: {e}")))?;
        if key.is_encrypted() {
            return Err(AuthError::BadKey(
                "the OpenSSH key is encrypted; decrypt it first (ssh-keygen -p)".into(),
            ));
        }
        match key.key_data() {
            ssh_key::private::KeypairData::Ed25519(pair) => {
                Ok(Self::from_seed(&pair.private.to_bytes()))
            }
            other => Err(AuthError::BadKey(format!(
                "the OpenSSH key is {:?}, not ssh-ed25519",
                other.algorithm().map(|a| a.to_string()).unwrap_or_default()
            ))),
        }
    }

    /// The key in a file's contents: an OpenSSH private key, a 64-digit hex
    /// seed (with optional whitespace), or a raw 32/64-byte key.
    pub fn from_file_contents(bytes: &[u8]) -> Result<Self, AuthError> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let t = text.trim();
            if t.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
                return Self::from_openssh(t);
            }
            if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Self::from_seed_hex(t);
            }
        }
        Self::from_raw_bytes(bytes)
    }

    /// The key as an unencrypted OpenSSH private key file (`ssh-ed25519`,
    /// comment `comment`), readable by [`from_openssh`](Self::from_openssh)
    /// and `ssh-keygen`.
    pub fn to_openssh(&self, comment: &str) -> Result<super::Secret, AuthError> {
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&self.0.to_bytes());
        let key = ssh_key::PrivateKey::new(ssh_key::private::KeypairData::Ed25519(pair), comment)
            .map_err(|e| AuthError::BadKey(e.to_string()))?;
        let text = key
            .to_openssh(ssh_key::LineEnding::LF)
            .map_err(|e| AuthError::BadKey(e.to_string()))?;
        Ok(super::Secret::new(text.as_str()))
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The public key in hex, as sent in HELLO `authextra.pubkey`.
    pub fn public_key_hex(&self) -> String {
        hex_encode(&self.public_key())
    }

    /// The AUTHENTICATE signature for the CHALLENGE `extra`:
    /// `hex(signature || challenge)`.
    pub fn sign_challenge(&self, extra: &Dict) -> Result<String, AuthError> {
        let challenge = challenge_bytes(extra)?;
        if let Some(cb) = extra.get("channel_binding") {
            if !cb.is_null() {
                return Err(AuthError::BadChallenge(format!(
                    "channel binding {cb} is not supported (only none)"
                )));
            }
        }
        let signature = self.0.sign(&challenge);
        let mut out = signature.to_bytes().to_vec();
        out.extend_from_slice(&challenge);
        Ok(hex_encode(&out))
    }
}

/// The PEM `text` with its base64 body re-wrapped at 70 columns, as
/// OpenSSH writes it (the `ssh-key` crate insists on that, but other tools,
/// e.g. Python's `cryptography`, wrap at 64).
fn rewrap(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != BEGIN && *l != END)
        .collect();
    let mut out = String::with_capacity(body.len() + 100);
    out.push_str(BEGIN);
    out.push('\n');
    for chunk in body.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// The 32 challenge bytes of a CHALLENGE extra.
fn challenge_bytes(extra: &Dict) -> Result<[u8; 32], AuthError> {
    let hex = str_field(extra, "challenge")?;
    hex_decode(hex)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| AuthError::BadChallenge("`challenge` is not 32 bytes in hex".into()))
}

/// A public key in hex (as in HELLO `authextra.pubkey` or a router's
/// authorized keys), normalised to lower case; `None` if malformed.
pub fn parse_public_key(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex_decode(hex.trim())?;
    let key: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&key).ok()?;
    Some(key)
}

/// The router's CHALLENGE extra for 32 random bytes.
pub fn make_challenge(random: &[u8; 32]) -> Dict {
    let mut extra = Dict::new();
    extra.insert("challenge".into(), Value::String(hex_encode(random)));
    extra.insert("channel_binding".into(), Value::Null);
    extra
}

/// Router side: whether `signature` (hex of signature64, optionally
/// followed by the 32 challenge bytes) is `public_key`'s signature of the
/// challenge in `extra`.
pub fn verify(public_key: &[u8; 32], extra: &Dict, signature: &str) -> bool {
    let Ok(challenge) = challenge_bytes(extra) else {
        return false;
    };
    let Some(bytes) = hex_decode(signature) else {
        return false;
    };
    let sig = match bytes.len() {
        64 => &bytes[..],
        96 if bytes[64..] == challenge => &bytes[..64],
        _ => return false,
    };
    let Ok(sig) = Signature::from_slice(sig) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify_strict(&challenge, &sig).is_ok()
}

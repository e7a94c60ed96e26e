//! WAMP-CRA: the router sends a challenge string, the client answers
//! `base64(HMAC-SHA256(key, challenge))`. The key is the secret itself,
//! or, when the CHALLENGE carries `salt`, `iterations` and `keylen`, the
//! *base64 text* of PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen)
//! (AutobahnPython's `derive_key`).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{AuthError, Secret, b64, b64_decode, str_field, u32_field};
use crate::Rng;
use crate::wamp::{Dict, Value};

type HmacSha256 = Hmac<Sha256>;

/// Most PBKDF2 iterations a client computes for a router (a hostile router
/// must not make a client spin for minutes).
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Longest derived key a client computes for a router, in bytes.
pub const MAX_KEYLEN: u32 = 256;

/// AutobahnPython's `derive_key`: the base64 text of
/// PBKDF2-HMAC-SHA256(`secret`, `salt`, `iterations`, `keylen`).
pub fn derive_key(secret: &[u8], salt: &[u8], iterations: u32, keylen: usize) -> Secret {
    let mut key = Zeroizing::new(vec![0u8; keylen]);
    pbkdf2::pbkdf2_hmac::<Sha256>(secret, salt, iterations, &mut key);
    Secret::new(b64(&key))
}

/// AutobahnPython's `compute_wcs`: base64(HMAC-SHA256(`key`, `challenge`)).
pub fn compute_signature(key: &[u8], challenge: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(challenge.as_bytes());
    b64(&mac.finalize().into_bytes())
}

/// The HMAC key for `secret` under the CHALLENGE `extra`: derived when the
/// router sent salt parameters.
fn key_for(secret: &Secret, extra: &Dict) -> Result<Secret, AuthError> {
    let Some(salt) = extra.get("salt") else {
        return Ok(secret.clone());
    };
    let salt = salt
        .as_str()
        .ok_or_else(|| AuthError::BadChallenge("`salt` is not a string".into()))?;
    let iterations = u32_field(extra, "iterations")?;
    let keylen = u32_field(extra, "keylen")?;
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(AuthError::BadChallenge(format!(
            "`iterations` {iterations} is not in 1..={MAX_ITERATIONS}"
        )));
    }
    if keylen == 0 || keylen > MAX_KEYLEN {
        return Err(AuthError::BadChallenge(format!(
            "`keylen` {keylen} is not in 1..={MAX_KEYLEN}"
        )));
    }
    Ok(derive_key(
        secret.expose().as_bytes(),
        salt.as_bytes(),
        iterations,
        keylen as usize,
    ))
}

/// The client's AUTHENTICATE signature for the CHALLENGE `extra`
/// (`challenge`, and `salt`/`iterations`/`keylen` when salted).
pub fn sign_challenge(secret: &Secret, extra: &Dict) -> Result<String, AuthError> {
    let challenge = str_field(extra, "challenge")?;
    let key = key_for(secret, extra)?;
    Ok(compute_signature(key.expose().as_bytes(), challenge))
}

/// Salt parameters of a salted WAMP-CRA secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salt {
    /// The salt, as text (sent to the client in the CHALLENGE).
    pub salt: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Derived key length in bytes.
    pub keylen: u32,
}

/// The router's CHALLENGE extra: a challenge string with a fresh nonce
/// (from `rng`, so a signature from an earlier session never fits) and the
/// identity it is for, plus the salt parameters if the secret is salted.
pub fn make_challenge(
    random: &[u8],
    session: u64,
    authid: &str,
    authrole: &str,
    salt: Option<&Salt>,
) -> Dict {
    let mut c = Dict::new();
    c.insert("authid".into(), Value::String(authid.to_owned()));
    c.insert("authrole".into(), Value::String(authrole.to_owned()));
    c.insert("authmethod".into(), Value::String(super::WAMPCRA.into()));
    c.insert("authprovider".into(), Value::String("static".into()));
    c.insert("nonce".into(), Value::String(b64(random)));
    c.insert("session".into(), Value::from(session));
    let mut extra = Dict::new();
    extra.insert(
        "challenge".into(),
        Value::String(Value::Dict(c).to_string()),
    );
    if let Some(salt) = salt {
        extra.insert("salt".into(), Value::String(salt.salt.clone()));
        extra.insert("iterations".into(), Value::from(u64::from(salt.iterations)));
        extra.insert("keylen".into(), Value::from(u64::from(salt.keylen)));
    }
    extra
}

/// Router side: whether `signature` answers the CHALLENGE `extra` sent for
/// `secret` (compared in constant time).
pub fn verify(secret: &Secret, extra: &Dict, signature: &str) -> bool {
    let Ok(challenge) = str_field(extra, "challenge") else {
        return false;
    };
    let Ok(key) = key_for(secret, extra) else {
        return false;
    };
    let Some(presented) = b64_decode(signature) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes()).expect("any key length");
    mac.update(challenge.as_bytes());
    mac.verify_slice(&presented).is_ok()
}

/// A random WAMP-CRA secret of `len` characters from `[A-Za-z0-9]`
/// (AutobahnPython's `generate_wcs`).
pub fn generate_secret(rng: &mut Rng, len: usize) -> Secret {
    const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let s: String = (0..len)
        .map(|_| CHARSET[(rng.next_u64() % CHARSET.len() as u64) as usize] as char)
        .collect();
    Secret::new(s)
}

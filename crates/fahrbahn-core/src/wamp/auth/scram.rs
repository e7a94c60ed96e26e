//! WAMP-SCRAM (RFC 5802 over WAMP, as Crossbar.io and AutobahnPython do
//! it):
//!
//! 1. HELLO `authid` and `authextra.nonce` = base64(16 random bytes).
//! 2. CHALLENGE extra `{nonce, kdf, salt, iterations, memory}`: the
//!    router's nonce (base64 of the client's nonce bytes and 16 more), the
//!    KDF (`argon2id-13` or `pbkdf2`), the salt (base64).
//! 3. The client derives SaltedPassword with the KDF, then
//!    ClientKey = HMAC(SaltedPassword, "Client Key"),
//!    StoredKey = SHA256(ClientKey),
//!    AuthMessage = `n=<authid>,r=<client nonce>,r=<router nonce>,s=<salt>,i=<iterations>,c=,r=<router nonce>`,
//!    and answers AUTHENTICATE with
//!    base64(ClientKey XOR HMAC(StoredKey, AuthMessage)).
//! 4. The router recovers ClientKey, checks SHA256(ClientKey) = StoredKey,
//!    and sends WELCOME `authextra.scram_server_signature` =
//!    base64(HMAC(ServerKey, AuthMessage)) with
//!    ServerKey = HMAC(SaltedPassword, "Server Key"), which the client
//!    checks: the router proves it knows the credential too.
//!
//! SaltedPassword, as AutobahnPython computes it: for `argon2id-13` (one
//! lane, 32 bytes, version 0x13, `memory` in KiB, `iterations` passes) the
//! *unpadded base64 text* of the hash; for `pbkdf2` (HMAC-SHA256,
//! 32 bytes) the raw bytes. The salt is the base64-decoded CHALLENGE salt
//! for both KDFs. The authid is used as is (no SASLprep).

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{AuthError, Secret, b64, b64_decode, str_field, u32_field};
use crate::Rng;
use crate::wamp::{Dict, Value};

type HmacSha256 = Hmac<Sha256>;

/// Most argon2 memory a client spends for a router, in KiB (256 MiB).
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
/// Most KDF iterations (argon2 passes or PBKDF2 rounds) a client computes
/// for a router.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Most argon2 work a client does for a router: passes × memory in KiB
/// (e.g. 16 passes over 256 MiB; a few seconds), so that a hostile router
/// cannot keep a client computing for hours.
pub const MAX_ARGON2_WORK: u64 = 4 * 1024 * 1024;
/// Longest salt a client accepts, in bytes.
pub const MAX_SALT: usize = 1024;

/// A SCRAM key derivation function and its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kdf {
    /// `argon2id-13`: `iterations` passes over `memory` KiB, one lane.
    Argon2id13 {
        /// Passes (t).
        iterations: u32,
        /// Memory in KiB (m).
        memory: u32,
    },
    /// `pbkdf2`: PBKDF2-HMAC-SHA256 with `iterations` rounds.
    Pbkdf2 {
        /// Rounds.
        iterations: u32,
    },
}

impl Kdf {
    /// The name in CHALLENGE `kdf`.
    pub fn name(&self) -> &'static str {
        match self {
            Kdf::Argon2id13 { .. } => "argon2id-13",
            Kdf::Pbkdf2 { .. } => "pbkdf2",
        }
    }

    fn iterations(&self) -> u32 {
        match *self {
            Kdf::Argon2id13 { iterations, .. } | Kdf::Pbkdf2 { iterations } => iterations,
        }
    }

    /// SaltedPassword for `password` and `salt` (raw bytes).
    pub fn salted_password(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AuthError> {
        match *self {
            Kdf::Argon2id13 { iterations, memory } => {
                let params = Params::new(memory, iterations, 1, Some(32))
                    .map_err(|e| AuthError::BadParameters(e.to_string()))?;
                let mut out = Zeroizing::new([0u8; 32]);
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                    .hash_password_into(password, salt, out.as_mut())
                    .map_err(|e| AuthError::BadParameters(e.to_string()))?;
                use base64::Engine as _;
                let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(out.as_ref());
                Ok(Zeroizing::new(text.into_bytes()))
            }
            Kdf::Pbkdf2 { iterations } => {
                if iterations == 0 {
                    return Err(AuthError::BadParameters("zero PBKDF2 iterations".into()));
                }
                let mut out = Zeroizing::new(vec![0u8; 32]);
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                Ok(out)
            }
        }
    }

    /// The KDF of a CHALLENGE extra, bounded so a hostile router cannot
    /// make the client spend unbounded time or memory.
    fn from_challenge(extra: &Dict) -> Result<Self, AuthError> {
        let iterations = u32_field(extra, "iterations")?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(AuthError::BadChallenge(format!(
                "`iterations` {iterations} is not in 1..={MAX_ITERATIONS}"
            )));
        }
        match str_field(extra, "kdf")? {
            "argon2id-13" => {
                let memory = u32_field(extra, "memory")?;
                if memory > MAX_MEMORY_KIB {
                    return Err(AuthError::BadChallenge(format!(
                        "`memory` {memory} KiB is more than {MAX_MEMORY_KIB}"
                    )));
                }
                if u64::from(iterations) * u64::from(memory) > MAX_ARGON2_WORK {
                    return Err(AuthError::BadChallenge(format!(
                        "{iterations} argon2 passes over {memory} KiB is more work than {MAX_ARGON2_WORK} KiB·passes"
                    )));
                }
                Ok(Kdf::Argon2id13 { iterations, memory })
            }
            "pbkdf2" => Ok(Kdf::Pbkdf2 { iterations }),
            other => Err(AuthError::BadChallenge(format!("unknown kdf {other:?}"))),
        }
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn auth_message(
    authid: &str,
    client_nonce: &str,
    server_nonce: &str,
    salt: &str,
    i: u32,
) -> String {
    format!("n={authid},r={client_nonce},r={server_nonce},s={salt},i={i},c=,r={server_nonce}")
}

/// What a router stores for a SCRAM principal (as the spec and Crossbar.io
/// define it): the KDF, the salt, StoredKey and ServerKey; never the
/// password. `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The KDF and its cost.
    pub kdf: Kdf,
    /// The salt (raw bytes).
    pub salt: Vec<u8>,
    /// SHA256(ClientKey).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Derives the stored form of `password` with `kdf` and `salt`.
    pub fn derive(password: &Secret, salt: &[u8], kdf: Kdf) -> Result<Self, AuthError> {
        let salted = kdf.salted_password(password.expose().as_bytes(), salt)?;
        let client_key = hmac(&salted, b"Client Key");
        Ok(Self {
            kdf,
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        })
    }

    /// [`derive`](Self::derive) with a fresh 16-byte salt from `rng`.
    pub fn generate(password: &Secret, kdf: Kdf, rng: &mut Rng) -> Result<Self, AuthError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        Self::derive(password, &salt, kdf)
    }

    /// From Crossbar.io's config fields: salt, stored-key and server-key in
    /// hex.
    pub fn from_hex(
        kdf: Kdf,
        salt_hex: &str,
        stored_key_hex: &str,
        server_key_hex: &str,
    ) -> Result<Self, AuthError> {
        let key = |hex: &str, what: &str| {
            super::hex_decode(hex)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| AuthError::BadKey(format!("{what} is not 32 bytes in hex")))
        };
        Ok(Self {
            kdf,
            salt: super::hex_decode(salt_hex)
                .ok_or_else(|| AuthError::BadKey("salt is not hex".into()))?,
            stored_key: key(stored_key_hex, "stored-key")?,
            server_key: key(server_key_hex, "server-key")?,
        })
    }

    /// The router's CHALLENGE extra: its nonce is the client's nonce bytes
    /// and 16 bytes of `random`.
    pub fn make_challenge(&self, client_nonce: &str, random: &[u8; 16]) -> Option<Dict> {
        let mut nonce = b64_decode(client_nonce)?;
        nonce.extend_from_slice(random);
        let mut extra = Dict::new();
        extra.insert("nonce".into(), Value::String(b64(&nonce)));
        extra.insert("kdf".into(), Value::String(self.kdf.name().into()));
        extra.insert("salt".into(), Value::String(b64(&self.salt)));
        extra.insert(
            "iterations".into(),
            Value::from(u64::from(self.kdf.iterations())),
        );
        if let Kdf::Argon2id13 { memory, .. } = self.kdf {
            extra.insert("memory".into(), Value::from(u64::from(memory)));
        }
        Some(extra)
    }

    /// Router side: checks the client's proof for the CHALLENGE `extra` it
    /// was sent (after HELLO with `authid` and `client_nonce`); on success
    /// the server signature to send in WELCOME `authextra`.
    pub fn verify(
        &self,
        authid: &str,
        client_nonce: &str,
        extra: &Dict,
        proof: &str,
    ) -> Option<String> {
        let server_nonce = str_field(extra, "nonce").ok()?;
        let salt = str_field(extra, "salt").ok()?;
        let message = auth_message(
            authid,
            client_nonce,
            server_nonce,
            salt,
            self.kdf.iterations(),
        );
        let proof = b64_decode(proof)?;
        if proof.len() != 32 {
            return None;
        }
        let signature = hmac(&self.stored_key, message.as_bytes());
        let mut client_key = Zeroizing::new([0u8; 32]);
        for (k, (p, s)) in client_key.iter_mut().zip(proof.iter().zip(&signature)) {
            *k = p ^ s;
        }
        let recovered: [u8; 32] = Sha256::digest(client_key.as_ref()).into();
        if bool::from(recovered.ct_eq(&self.stored_key)) {
            Some(b64(&hmac(&self.server_key, message.as_bytes())))
        } else {
            None
        }
    }
}

/// The client's side of one SCRAM exchange.
#[derive(Clone)]
pub struct ScramClient {
    authid: String,
    password: Secret,
    client_nonce: String,
    /// After the CHALLENGE: ServerKey and AuthMessage, to check WELCOME.
    expect: Option<([u8; 32], String)>,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("authid", &self.authid)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client for `authid` with a 16-byte nonce from `rng`.
    pub fn new(authid: impl Into<String>, password: Secret, rng: &mut Rng) -> Self {
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce);
        Self::with_nonce(authid, password, &nonce)
    }

    /// A client with a given nonce (known-answer tests).
    pub fn with_nonce(authid: impl Into<String>, password: Secret, nonce: &[u8]) -> Self {
        Self {
            authid: authid.into(),
            password,
            client_nonce: b64(nonce),
            expect: None,
        }
    }

    /// The nonce to send in HELLO `authextra.nonce`.
    pub fn nonce(&self) -> &str {
        &self.client_nonce
    }

    /// The AUTHENTICATE signature (ClientProof) for the CHALLENGE `extra`.
    pub fn answer(&mut self, extra: &Dict) -> Result<String, AuthError> {
        let server_nonce = str_field(extra, "nonce")?;
        let salt_text = str_field(extra, "salt")?;
        let kdf = Kdf::from_challenge(extra)?;
        let ours = b64_decode(&self.client_nonce).unwrap_or_default();
        let theirs = b64_decode(server_nonce)
            .ok_or_else(|| AuthError::BadChallenge("`nonce` is not base64".into()))?;
        if theirs.len() <= ours.len() || !theirs.starts_with(&ours) {
            return Err(AuthError::BadChallenge(
                "the router's nonce does not extend ours".into(),
            ));
        }
        let salt = b64_decode(salt_text)
            .filter(|s| s.len() <= MAX_SALT)
            .ok_or_else(|| AuthError::BadChallenge("`salt` is not base64 (or too long)".into()))?;
        let salted = kdf.salted_password(self.password.expose().as_bytes(), &salt)?;
        let client_key = Zeroizing::new(hmac(&salted, b"Client Key"));
        let stored_key: [u8; 32] = Sha256::digest(client_key.as_ref()).into();
        let message = auth_message(
            &self.authid,
            &self.client_nonce,
            server_nonce,
            salt_text,
            kdf.iterations(),
        );
        let signature = hmac(&stored_key, message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.expect = Some((hmac(&salted, b"Server Key"), message));
        Ok(b64(&proof))
    }

    /// Checks WELCOME `authextra.scram_server_signature` (mutual
    /// authentication).
    pub fn check_welcome(&self, authextra: Option<&Dict>) -> Result<(), AuthError> {
        let Some((server_key, message)) = &self.expect else {
            return Err(AuthError::RouterNotAuthenticated);
        };
        let presented = authextra
            .and_then(|e| e.get("scram_server_signature"))
            .and_then(Value::as_str)
            .and_then(b64_decode)
            .ok_or(AuthError::RouterNotAuthenticated)?;
        let expected = hmac(server_key, message.as_bytes());
        if bool::from(expected.as_slice().ct_eq(&presented)) {
            Ok(())
        } else {
            Err(AuthError::RouterNotAuthenticated)
        }
    }
}

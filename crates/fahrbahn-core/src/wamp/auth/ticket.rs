//! Ticket authentication: the client sends a shared ticket as the
//! AUTHENTICATE signature (use it only over TLS); the router keeps an
//! argon2id hash of it in PHC format and checks the ticket against it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};

/// argon2 parameters (memory in KiB, passes, lanes, output length).
pub use argon2::Params;

use super::{AuthError, Secret};
use crate::Rng;

/// The argon2id parameters [`hash_ticket`] uses: 19 MiB, 2 passes, one
/// lane (the OWASP recommendation, argon2's default).
pub fn default_params() -> Params {
    Params::default()
}

/// The stored form of a ticket: an argon2id PHC string such as
/// `$argon2id$v=19$m=19456,t=2,p=1$…$…`, with a 16-byte salt from `rng`.
/// This is what a router's configuration holds (the future
/// `fahrbahn hash-secret` command prints it).
pub fn hash_ticket(ticket: &Secret, rng: &mut Rng) -> Result<String, AuthError> {
    hash_ticket_with(ticket, rng, default_params())
}

/// [`hash_ticket`] with other argon2id parameters.
pub fn hash_ticket_with(
    ticket: &Secret,
    rng: &mut Rng,
    params: Params,
) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| AuthError::BadParameters(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(ticket.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::BadParameters(e.to_string()))
}

/// Checks that `stored` is a PHC string argon2 can verify with (done when
/// a principal is configured, so that a typo fails early).
pub fn check_stored(stored: &str) -> Result<(), AuthError> {
    PasswordHash::new(stored)
        .map(|_| ())
        .map_err(|e| AuthError::BadKey(format!("not an argon2 PHC string: {e}")))
}

/// Whether `presented` is the ticket hashed in `stored` (argon2 compares
/// in constant time). A malformed `stored` never matches.
pub fn verify_ticket(stored: &str, presented: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(presented.as_bytes(), &hash)
        .is_ok()
}

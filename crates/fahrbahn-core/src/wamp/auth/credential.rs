//! The client's credentials and the part of the session that uses them.

use super::scram::ScramClient;
use super::{AuthError, CRYPTOSIGN, CryptosignKey, SCRAM, Secret, TICKET, WAMPCRA, wampcra};
use crate::Rng;
use crate::wamp::{Dict, Value};

/// A credential a client authenticates with. A session offers the methods
/// of its credentials in HELLO `authmethods`, in order, and answers the
/// router's CHALLENGE for any of them itself. `Debug` never shows secrets.
///
/// ```
/// use fahrbahn_core::wamp::SessionConfig;
/// use fahrbahn_core::wamp::auth::{Credential, Secret};
/// let mut config = SessionConfig::new("realm1");
/// config.authid = Some("cra-user".into());
/// config.credentials = vec![
///     Credential::WampCra { secret: Secret::new("cra-secret") },
///     Credential::Ticket(Secret::new("ticket-secret")),
/// ];
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("cra-secret") && !shown.contains("ticket-secret"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credential {
    /// `ticket`: the ticket itself is the answer (use TLS).
    Ticket(Secret),
    /// `wampcra`: the shared secret; salt, iterations and key length, if
    /// any, come from the router's CHALLENGE.
    WampCra {
        /// The shared secret.
        secret: Secret,
    },
    /// `cryptosign`: an Ed25519 key; its public key goes in HELLO
    /// `authextra.pubkey`.
    Cryptosign(CryptosignKey),
    /// `scram`: the password (needs an `authid`); the router's signature
    /// in WELCOME is checked.
    Scram {
        /// The password.
        password: Secret,
    },
}

impl Credential {
    /// The method name offered in HELLO, e.g. `wampcra`.
    pub fn method(&self) -> &'static str {
        match self {
            Credential::Ticket(_) => TICKET,
            Credential::WampCra { .. } => WAMPCRA,
            Credential::Cryptosign(_) => CRYPTOSIGN,
            Credential::Scram { .. } => SCRAM,
        }
    }
}

/// The session's authentication state: answers CHALLENGEs with the
/// configured credentials and checks WELCOME (SCRAM).
#[derive(Debug, Default)]
pub(crate) struct ClientAuth {
    credentials: Vec<Credential>,
    scram: Option<ScramClient>,
    /// The method of the CHALLENGE answered, if any.
    answered: Option<&'static str>,
}

impl ClientAuth {
    /// The state for `credentials`; adds what HELLO `authextra` needs
    /// (`pubkey` for cryptosign, `nonce` for SCRAM) to `authextra`. Without
    /// `rng` a SCRAM credential cannot make its nonce and is dropped.
    pub(crate) fn new(
        credentials: Vec<Credential>,
        authid: Option<&str>,
        authextra: &mut Dict,
        rng: Option<&mut Rng>,
    ) -> Self {
        let mut scram = None;
        let mut kept = Vec::with_capacity(credentials.len());
        let mut rng = rng;
        for credential in credentials {
            match &credential {
                Credential::Cryptosign(key) => {
                    authextra
                        .entry("pubkey".to_owned())
                        .or_insert_with(|| Value::String(key.public_key_hex()));
                }
                Credential::Scram { password } => {
                    let Some(rng) = rng.as_deref_mut() else {
                        log::warn!(
                            "a SCRAM credential needs a random nonce: create the session with an Rng (Session::with_rng); not offering scram"
                        );
                        continue;
                    };
                    if scram.is_some() {
                        continue;
                    }
                    let client = ScramClient::new(authid.unwrap_or(""), password.clone(), rng);
                    authextra.insert("nonce".into(), Value::String(client.nonce().to_owned()));
                    scram = Some(client);
                }
                Credential::Ticket(_) | Credential::WampCra { .. } => {}
            }
            kept.push(credential);
        }
        Self {
            credentials: kept,
            scram,
            answered: None,
        }
    }

    /// The methods to offer, in order (each once).
    pub(crate) fn methods(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.credentials {
            if !out.iter().any(|m| m == c.method()) {
                out.push(c.method().to_owned());
            }
        }
        out
    }

    /// The AUTHENTICATE signature for a CHALLENGE of `authmethod`, or
    /// `None` if no credential is for that method (the application
    /// answers).
    pub(crate) fn answer(
        &mut self,
        authmethod: &str,
        extra: &Dict,
    ) -> Option<Result<String, AuthError>> {
        let credential = self.credentials.iter().find(|c| c.method() == authmethod)?;
        let answer = match credential {
            Credential::Ticket(ticket) => Ok(ticket.expose().to_owned()),
            Credential::WampCra { secret } => wampcra::sign_challenge(secret, extra),
            Credential::Cryptosign(key) => key.sign_challenge(extra),
            Credential::Scram { .. } => self.scram.as_mut()?.answer(extra),
        };
        self.answered = Some(credential.method());
        Some(answer)
    }

    /// Checks WELCOME: with SCRAM, the router's signature.
    pub(crate) fn check_welcome(&self, details: &Dict) -> Result<(), AuthError> {
        let method = details.get("authmethod").and_then(Value::as_str);
        if self.answered == Some(SCRAM) || (method == Some(SCRAM) && self.scram.is_some()) {
            let scram = self
                .scram
                .as_ref()
                .ok_or(AuthError::RouterNotAuthenticated)?;
            return scram.check_welcome(details.get("authextra").and_then(Value::as_dict));
        }
        Ok(())
    }
}

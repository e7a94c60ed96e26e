//! [`StaticAuthenticator`]: principals configured per realm.

use std::collections::HashMap;

use super::scram::ScramCredential;
use super::wampcra::{self, Salt};
use super::{
    ANONYMOUS, AuthError, CRYPTOSIGN, SCRAM, Secret, TICKET, WAMPCRA, b64_decode, cryptosign,
    ticket,
};
use crate::wamp::error::{ERROR_NO_AUTH_METHOD, ERROR_NOT_AUTHORIZED};
use crate::wamp::router::{AuthDecision, AuthenticateContext, Authenticator, HelloContext};
use crate::wamp::{Dict, Value};

/// What every failed authentication says: as little as Crossbar.io (which
/// of authid, secret or role was wrong is not told).
const DENIED: &str = "authentication failed";

#[derive(Debug, Clone)]
struct Ticket {
    stored: String,
    role: String,
}

#[derive(Debug, Clone)]
struct Cra {
    secret: Secret,
    salt: Option<Salt>,
    role: String,
}

#[derive(Debug, Clone)]
struct Signer {
    authid: String,
    role: String,
}

#[derive(Debug, Clone)]
struct Scram {
    credential: ScramCredential,
    role: String,
}

#[derive(Debug, Clone, Default)]
struct Realm {
    anonymous: Option<String>,
    tickets: HashMap<String, Ticket>,
    cra: HashMap<String, Cra>,
    keys: HashMap<[u8; 32], Signer>,
    scram: HashMap<String, Scram>,
}

impl Realm {
    fn has(&self, method: &str) -> bool {
        match method {
            ANONYMOUS => self.anonymous.is_some(),
            TICKET => !self.tickets.is_empty(),
            WAMPCRA => !self.cra.is_empty(),
            CRYPTOSIGN => !self.keys.is_empty(),
            SCRAM => !self.scram.is_empty(),
            _ => false,
        }
    }
}

/// An [`Authenticator`] with principals configured per realm: tickets
/// (stored as argon2 hashes), WAMP-CRA secrets (optionally salted),
/// cryptosign public keys and SCRAM stored keys, each with the role it
/// gets; optionally anonymous access with a role.
///
/// On HELLO it takes the first of the client's `authmethods` (in the
/// client's order; none means `anonymous`) that the realm has principals
/// for, and challenges with a fresh nonce. Wrong secrets, unknown authids,
/// keys not authorized and a HELLO `authrole` other than the principal's
/// are refused with `wamp.error.not_authorized`; no usable method with
/// `wamp.error.no_auth_method`.
///
/// ```
/// use fahrbahn_core::Rng;
/// use fahrbahn_core::wamp::auth::{Secret, StaticAuthenticator, ticket};
/// let mut rng = Rng::from_seed(1);
/// let stored = ticket::hash_ticket(&Secret::new("s3cret"), &mut rng).unwrap();
/// let mut auth = StaticAuthenticator::new();
/// auth.add_ticket("realm1", "alice", &stored, "user").unwrap();
/// auth.add_wampcra("realm1", "bob", Secret::new("cra-secret"), None, "user");
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticAuthenticator {
    realms: HashMap<String, Realm>,
}

impl StaticAuthenticator {
    /// No principals: every HELLO is refused with `no_auth_method`.
    pub fn new() -> Self {
        Self::default()
    }

    fn realm(&mut self, realm: &str) -> &mut Realm {
        self.realms.entry(realm.to_owned()).or_default()
    }

    /// Lets sessions without credentials join `realm` as `role` (method
    /// `anonymous`, authid the session id).
    pub fn allow_anonymous(&mut self, realm: &str, role: &str) -> &mut Self {
        self.realm(realm).anonymous = Some(role.to_owned());
        self
    }

    /// A ticket principal; `stored` is the argon2 PHC string of the
    /// ticket ([`ticket::hash_ticket`]).
    pub fn add_ticket(
        &mut self,
        realm: &str,
        authid: &str,
        stored: &str,
        role: &str,
    ) -> Result<&mut Self, AuthError> {
        ticket::check_stored(stored)?;
        self.realm(realm).tickets.insert(
            authid.to_owned(),
            Ticket {
                stored: stored.to_owned(),
                role: role.to_owned(),
            },
        );
        Ok(self)
    }

    /// A WAMP-CRA principal with its secret and, if salted, the salt
    /// parameters (sent to the client in the CHALLENGE).
    pub fn add_wampcra(
        &mut self,
        realm: &str,
        authid: &str,
        secret: Secret,
        salt: Option<Salt>,
        role: &str,
    ) -> &mut Self {
        self.realm(realm).cra.insert(
            authid.to_owned(),
            Cra {
                secret,
                salt,
                role: role.to_owned(),
            },
        );
        self
    }

    /// A cryptosign principal: `public_key` (hex) authenticates as
    /// `authid` with `role`. Call once per authorized key.
    pub fn add_cryptosign(
        &mut self,
        realm: &str,
        authid: &str,
        public_key: &str,
        role: &str,
    ) -> Result<&mut Self, AuthError> {
        let key = cryptosign::parse_public_key(public_key)
            .ok_or_else(|| AuthError::BadKey("not an Ed25519 public key in hex".into()))?;
        self.realm(realm).keys.insert(
            key,
            Signer {
                authid: authid.to_owned(),
                role: role.to_owned(),
            },
        );
        Ok(self)
    }

    /// A SCRAM principal with its stored keys.
    pub fn add_scram(
        &mut self,
        realm: &str,
        authid: &str,
        credential: ScramCredential,
        role: &str,
    ) -> &mut Self {
        self.realm(realm).scram.insert(
            authid.to_owned(),
            Scram {
                credential,
                role: role.to_owned(),
            },
        );
        self
    }
}

fn denied() -> AuthDecision {
    AuthDecision::deny(ERROR_NOT_AUTHORIZED, DENIED)
}

fn challenge(authmethod: &str, extra: Dict) -> AuthDecision {
    AuthDecision::Challenge {
        authmethod: authmethod.to_owned(),
        extra,
    }
}

fn authextra(details: &Dict) -> Option<&Dict> {
    details.get("authextra").and_then(Value::as_dict)
}

fn extra_str<'a>(details: &'a Dict, key: &str) -> Option<&'a str> {
    authextra(details)?.get(key).and_then(Value::as_str)
}

/// The role of the principal if the client may have it: no `authrole`
/// asked, or the principal's own.
fn role_ok<'a>(details: &Dict, role: &'a str) -> Option<&'a str> {
    match details.get("authrole") {
        None | Some(Value::Null) => Some(role),
        Some(Value::String(asked)) if asked == role => Some(role),
        Some(_) => None,
    }
}

impl StaticAuthenticator {
    /// The decision for `method` on HELLO, or `None` if the realm has no
    /// principals for it.
    fn hello_method(
        &self,
        realm: &Realm,
        method: &str,
        hello: &HelloContext<'_>,
    ) -> Option<AuthDecision> {
        if !realm.has(method) {
            return None;
        }
        let details = hello.details;
        let authid = details.get("authid").and_then(Value::as_str);
        let decision = match method {
            ANONYMOUS => {
                let role = realm.anonymous.as_deref()?;
                match role_ok(details, role) {
                    Some(role) => AuthDecision::welcome(hello.session.to_string(), role, ANONYMOUS),
                    None => denied(),
                }
            }
            TICKET => match authid.and_then(|a| realm.tickets.get(a)) {
                Some(p) if role_ok(details, &p.role).is_some() => challenge(TICKET, Dict::new()),
                _ => denied(),
            },
            WAMPCRA => match authid.and_then(|a| Some((a, realm.cra.get(a)?))) {
                Some((authid, p)) if role_ok(details, &p.role).is_some() => challenge(
                    WAMPCRA,
                    wampcra::make_challenge(
                        &hello.random[..16],
                        hello.session.0,
                        authid,
                        &p.role,
                        p.salt.as_ref(),
                    ),
                ),
                _ => denied(),
            },
            CRYPTOSIGN => {
                let binding = authextra(details).and_then(|e| e.get("channel_binding"));
                if binding.is_some_and(|b| !b.is_null()) {
                    return Some(denied());
                }
                let signer = extra_str(details, "pubkey")
                    .and_then(cryptosign::parse_public_key)
                    .and_then(|k| realm.keys.get(&k));
                match signer {
                    Some(s)
                        if authid.is_none_or(|a| a == s.authid)
                            && role_ok(details, &s.role).is_some() =>
                    {
                        challenge(CRYPTOSIGN, cryptosign::make_challenge(&hello.random))
                    }
                    _ => denied(),
                }
            }
            SCRAM => {
                let principal = authid.and_then(|a| realm.scram.get(a));
                let nonce = extra_str(details, "nonce")
                    .filter(|n| b64_decode(n).is_some_and(|b| (16..=64).contains(&b.len())));
                let random: [u8; 16] = hello.random[..16].try_into().expect("16 bytes");
                match (principal, nonce) {
                    (Some(p), Some(nonce)) if role_ok(details, &p.role).is_some() => {
                        match p.credential.make_challenge(nonce, &random) {
                            Some(extra) => challenge(SCRAM, extra),
                            None => denied(),
                        }
                    }
                    _ => denied(),
                }
            }
            _ => return None,
        };
        Some(decision)
    }
}

impl Authenticator for StaticAuthenticator {
    fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision {
        let Some(realm) = self.realms.get(hello.realm) else {
            return AuthDecision::deny(
                ERROR_NO_AUTH_METHOD,
                "no authentication method is accepted on this realm",
            );
        };
        let offered: Vec<&str> = match hello.details.get("authmethods").and_then(Value::as_list) {
            Some(list) if !list.is_empty() => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![ANONYMOUS],
        };
        for method in offered {
            if let Some(decision) = self.hello_method(realm, method, hello) {
                if let AuthDecision::Deny { .. } = decision {
                    log::debug!(
                        "router: {method} authentication refused for session {} on {:?}",
                        hello.session,
                        hello.realm
                    );
                }
                return decision;
            }
        }
        AuthDecision::deny(
            ERROR_NO_AUTH_METHOD,
            "none of the offered authentication methods is accepted",
        )
    }

    fn on_authenticate(&mut self, auth: &AuthenticateContext<'_>) -> AuthDecision {
        let Some(realm) = self.realms.get(auth.realm) else {
            return denied();
        };
        let authid = auth.hello.get("authid").and_then(Value::as_str);
        let welcome = |authid: &str, role: &str, extra: Dict| AuthDecision::Welcome {
            authid: authid.to_owned(),
            authrole: role.to_owned(),
            authmethod: auth.authmethod.to_owned(),
            authprovider: "static".into(),
            extra,
        };
        let decision = match auth.authmethod {
            TICKET => match authid.and_then(|a| Some((a, realm.tickets.get(a)?))) {
                Some((authid, p)) if ticket::verify_ticket(&p.stored, auth.signature) => {
                    welcome(authid, &p.role, Dict::new())
                }
                _ => denied(),
            },
            WAMPCRA => match authid.and_then(|a| Some((a, realm.cra.get(a)?))) {
                Some((authid, p)) if wampcra::verify(&p.secret, auth.challenge, auth.signature) => {
                    welcome(authid, &p.role, Dict::new())
                }
                _ => denied(),
            },
            CRYPTOSIGN => {
                let key = extra_str(auth.hello, "pubkey").and_then(cryptosign::parse_public_key);
                match key.and_then(|k| Some((k, realm.keys.get(&k)?))) {
                    Some((key, s)) if cryptosign::verify(&key, auth.challenge, auth.signature) => {
                        let mut extra = Dict::new();
                        extra.insert("pubkey".into(), Value::String(super::hex_encode(&key)));
                        welcome(&s.authid, &s.role, extra)
                    }
                    _ => denied(),
                }
            }
            SCRAM => {
                let nonce = extra_str(auth.hello, "nonce");
                match (authid.and_then(|a| Some((a, realm.scram.get(a)?))), nonce) {
                    (Some((authid, p)), Some(nonce)) => {
                        match p
                            .credential
                            .verify(authid, nonce, auth.challenge, auth.signature)
                        {
                            Some(signature) => {
                                let mut extra = Dict::new();
                                extra.insert(
                                    "scram_server_signature".into(),
                                    Value::String(signature),
                                );
                                welcome(authid, &p.role, extra)
                            }
                            None => denied(),
                        }
                    }
                    _ => denied(),
                }
            }
            _ => denied(),
        };
        if let AuthDecision::Deny { .. } = decision {
            log::debug!(
                "router: {} authentication failed for session {} on {:?}",
                auth.authmethod,
                auth.session,
                auth.realm
            );
        }
        decision
    }
}

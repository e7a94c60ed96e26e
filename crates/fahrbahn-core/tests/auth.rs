//! Every authentication method through the core: a client `Session` with
//! credentials against the `Router` with a `StaticAuthenticator`, message by
//! message, with seeded RNGs (deterministic).
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

use std::time::Instant;

use fahrbahn_core::Rng;
use fahrbahn_core::wamp::auth::{
    Credential, CryptosignKey, Kdf, ScramCredential, Secret, StaticAuthenticator, ticket,
    wampcra::Salt,
};
use fahrbahn_core::wamp::error::{
    ERROR_CANNOT_AUTHENTICATE, ERROR_NO_AUTH_METHOD, ERROR_NOT_AUTHORIZED,
};
use fahrbahn_core::wamp::router::{
    AuthDecision, AuthenticateContext, Authenticator, HelloContext, Router, RouterConfig,
};
use fahrbahn_core::wamp::{
    AuthDetails, Dict, Message, Session, SessionConfig, SessionError, SessionEvent, Value,
    client_roles,
};

const REALM: &str = "realm1";
const SEED: [u8; 32] = [7; 32];
const OTHER_SEED: [u8; 32] = [8; 32];

fn cheap_ticket(ticket: &str) -> String {
    // small argon2 parameters: the tests check the logic, not the cost
    let params = argon2_params();
    ticket::hash_ticket_with(&Secret::new(ticket), &mut Rng::from_seed(1), params).unwrap()
}

fn argon2_params() -> fahrbahn_core::wamp::auth::ticket::Params {
    fahrbahn_core::wamp::auth::ticket::Params::new(256, 1, 1, None).unwrap()
}

/// Every kind of principal in `realm1`.
fn authenticator() -> StaticAuthenticator {
    let mut auth = StaticAuthenticator::new();
    auth.add_ticket(REALM, "ticket-user", &cheap_ticket("ticket-secret"), "user")
        .unwrap();
    auth.add_wampcra(REALM, "cra-user", Secret::new("cra-secret"), None, "user");
    auth.add_wampcra(
        REALM,
        "cra-salted",
        Secret::new("cra-salted-secret"),
        Some(Salt {
            salt: "salt123".into(),
            iterations: 100,
            keylen: 32,
        }),
        "user",
    );
    let key = CryptosignKey::from_seed(&SEED);
    auth.add_cryptosign(REALM, "cs-user", &key.public_key_hex(), "user")
        .unwrap();
    let scram = ScramCredential::generate(
        &Secret::new("scram-secret"),
        Kdf::Argon2id13 {
            iterations: 2,
            memory: 512,
        },
        &mut Rng::from_seed(2),
    )
    .unwrap();
    auth.add_scram(REALM, "scram-user", scram, "user");
    let pbkdf2 = ScramCredential::generate(
        &Secret::new("pbkdf2-secret"),
        Kdf::Pbkdf2 { iterations: 100 },
        &mut Rng::from_seed(3),
    )
    .unwrap();
    auth.add_scram(REALM, "pbkdf2-user", pbkdf2, "admin");
    auth
}

fn router(auth: impl Authenticator + Send + 'static) -> Router {
    Router::new(RouterConfig::with_realm(REALM), Rng::from_seed(9))
        .with_authenticator(Box::new(auth))
}

fn config(authid: Option<&str>, credentials: Vec<Credential>) -> SessionConfig {
    let mut config = SessionConfig::new(REALM);
    config.authid = authid.map(str::to_owned);
    config.credentials = credentials;
    config
}

/// How a join ended, and what the client sent.
struct Outcome {
    result: Result<AuthDetails, (String, Option<SessionError>)>,
    sent: Vec<Message>,
}

/// Runs a session with `config` against `router` until it joins or ends.
fn join(router: &mut Router, config: SessionConfig, seed: u64) -> Outcome {
    let now = Instant::now();
    let conn = router.attach(now);
    let mut session = Session::with_rng(config, now, &mut Rng::from_seed(seed));
    let mut sent = Vec::new();
    for _ in 0..20 {
        while let Some(msg) = session.poll_message() {
            sent.push(msg.clone());
            router.handle_message(now, conn, msg);
        }
        while let Some((to, msg)) = router.poll_outgoing() {
            if to == conn {
                session.handle_message(now, msg);
            }
        }
        if let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Joined { .. } => {
                    return Outcome {
                        result: Ok(session.auth_details().cloned().expect("details")),
                        sent,
                    };
                }
                SessionEvent::Closed(closed) => {
                    return Outcome {
                        result: Err((closed.reason, closed.error)),
                        sent,
                    };
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    panic!("the join did not finish")
}

fn joined(outcome: Outcome) -> AuthDetails {
    match outcome.result {
        Ok(details) => details,
        Err(e) => panic!("not joined: {e:?}"),
    }
}

fn refused(outcome: Outcome) -> String {
    match outcome.result {
        Ok(details) => panic!("joined as {details:?}"),
        Err((reason, _)) => reason,
    }
}

fn ticket(secret: &str) -> Credential {
    Credential::Ticket(Secret::new(secret))
}

fn cra(secret: &str) -> Credential {
    Credential::WampCra {
        secret: Secret::new(secret),
    }
}

fn scram(password: &str) -> Credential {
    Credential::Scram {
        password: Secret::new(password),
    }
}

fn cs(seed: &[u8; 32]) -> Credential {
    Credential::Cryptosign(CryptosignKey::from_seed(seed))
}

fn check(details: &AuthDetails, authid: &str, role: &str, method: &str) {
    assert_eq!(details.authid.as_deref(), Some(authid));
    assert_eq!(details.authrole.as_deref(), Some(role));
    assert_eq!(details.authmethod.as_deref(), Some(method));
    assert_eq!(details.authprovider.as_deref(), Some("static"));
}

#[test]
fn ticket_round_trip() {
    let mut r = router(authenticator());
    let d = joined(join(
        &mut r,
        config(Some("ticket-user"), vec![ticket("ticket-secret")]),
        1,
    ));
    check(&d, "ticket-user", "user", "ticket");
    let wrong = join(
        &mut r,
        config(Some("ticket-user"), vec![ticket("ticket-secreT")]),
        1,
    );
    assert_eq!(refused(wrong), ERROR_NOT_AUTHORIZED);
    let unknown = join(
        &mut r,
        config(Some("nobody"), vec![ticket("ticket-secret")]),
        1,
    );
    assert_eq!(refused(unknown), ERROR_NOT_AUTHORIZED);
    let anonymous_id = join(&mut r, config(None, vec![ticket("ticket-secret")]), 1);
    assert_eq!(refused(anonymous_id), ERROR_NOT_AUTHORIZED);
}

#[test]
fn wampcra_round_trip_plain_and_salted() {
    let mut r = router(authenticator());
    let d = joined(join(
        &mut r,
        config(Some("cra-user"), vec![cra("cra-secret")]),
        1,
    ));
    check(&d, "cra-user", "user", "wampcra");
    let d = joined(join(
        &mut r,
        config(Some("cra-salted"), vec![cra("cra-salted-secret")]),
        1,
    ));
    check(&d, "cra-salted", "user", "wampcra");
    let wrong = join(&mut r, config(Some("cra-user"), vec![cra("cra-secreT")]), 1);
    assert_eq!(refused(wrong), ERROR_NOT_AUTHORIZED);
    // the salted principal's plain secret is not its key
    let unsalted = join(
        &mut r,
        config(Some("cra-salted"), vec![cra("cra-secret")]),
        1,
    );
    assert_eq!(refused(unsalted), ERROR_NOT_AUTHORIZED);
    let unknown = join(&mut r, config(Some("nobody"), vec![cra("cra-secret")]), 1);
    assert_eq!(refused(unknown), ERROR_NOT_AUTHORIZED);
}

#[test]
fn cryptosign_round_trip() {
    let mut r = router(authenticator());
    // authid may be left out: the key names the principal
    let d = joined(join(&mut r, config(None, vec![cs(&SEED)]), 1));
    check(&d, "cs-user", "user", "cryptosign");
    let d = joined(join(&mut r, config(Some("cs-user"), vec![cs(&SEED)]), 1));
    check(&d, "cs-user", "user", "cryptosign");
    let other = join(&mut r, config(None, vec![cs(&OTHER_SEED)]), 1);
    assert_eq!(refused(other), ERROR_NOT_AUTHORIZED);
    let wrong_id = join(&mut r, config(Some("someone-else"), vec![cs(&SEED)]), 1);
    assert_eq!(refused(wrong_id), ERROR_NOT_AUTHORIZED);
}

#[test]
fn cryptosign_signature_replayed_from_an_earlier_session_is_refused() {
    let mut r = router(authenticator());
    let first = join(&mut r, config(None, vec![cs(&SEED)]), 1);
    let hello = first.sent[0].clone();
    let old = first
        .sent
        .iter()
        .find_map(|m| match m {
            Message::Authenticate { signature, .. } => Some(signature.clone()),
            _ => None,
        })
        .expect("an AUTHENTICATE");
    joined(first);
    // an attacker replays HELLO and the recorded signature
    let now = Instant::now();
    let conn = r.attach(now);
    r.handle_message(now, conn, hello);
    let challenge = match r.poll_outgoing() {
        Some((_, Message::Challenge { extra, .. })) => extra,
        other => panic!("expected CHALLENGE, got {other:?}"),
    };
    assert!(
        !old.ends_with(challenge["challenge"].as_str().unwrap()),
        "a fresh challenge"
    );
    r.handle_message(
        now,
        conn,
        Message::Authenticate {
            signature: old,
            extra: Dict::new(),
        },
    );
    match r.poll_outgoing() {
        Some((_, Message::Abort { reason, .. })) => assert_eq!(reason, ERROR_NOT_AUTHORIZED),
        other => panic!("expected ABORT, got {other:?}"),
    }
}

#[test]
fn wampcra_signature_replayed_from_an_earlier_session_is_refused() {
    let mut r = router(authenticator());
    let first = join(&mut r, config(Some("cra-user"), vec![cra("cra-secret")]), 1);
    let hello = first.sent[0].clone();
    let old = first
        .sent
        .iter()
        .find_map(|m| match m {
            Message::Authenticate { signature, .. } => Some(signature.clone()),
            _ => None,
        })
        .expect("an AUTHENTICATE");
    joined(first);
    let now = Instant::now();
    let conn = r.attach(now);
    r.handle_message(now, conn, hello);
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Challenge { .. }))
    ));
    r.handle_message(
        now,
        conn,
        Message::Authenticate {
            signature: old,
            extra: Dict::new(),
        },
    );
    match r.poll_outgoing() {
        Some((_, Message::Abort { reason, .. })) => assert_eq!(reason, ERROR_NOT_AUTHORIZED),
        other => panic!("expected ABORT, got {other:?}"),
    }
}

#[test]
fn scram_round_trip_both_kdfs() {
    let mut r = router(authenticator());
    let outcome = join(
        &mut r,
        config(Some("scram-user"), vec![scram("scram-secret")]),
        1,
    );
    let hello_nonce = match &outcome.sent[0] {
        Message::Hello { details, .. } => details["authextra"]
            .get("nonce")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned(),
        other => panic!("{other:?}"),
    };
    let d = joined(outcome);
    check(&d, "scram-user", "user", "scram");
    assert!(d.authextra.contains_key("scram_server_signature"));
    // the client nonce comes from the session's RNG: another seed, another nonce
    let other = join(
        &mut r,
        config(Some("scram-user"), vec![scram("scram-secret")]),
        2,
    );
    match &other.sent[0] {
        Message::Hello { details, .. } => {
            assert_ne!(
                details["authextra"].get("nonce").unwrap().as_str(),
                Some(hello_nonce.as_str())
            );
        }
        m => panic!("{m:?}"),
    }
    joined(other);
    let d = joined(join(
        &mut r,
        config(Some("pbkdf2-user"), vec![scram("pbkdf2-secret")]),
        1,
    ));
    check(&d, "pbkdf2-user", "admin", "scram");
    let wrong = join(
        &mut r,
        config(Some("scram-user"), vec![scram("scram-secreT")]),
        1,
    );
    assert_eq!(refused(wrong), ERROR_NOT_AUTHORIZED);
    let unknown = join(
        &mut r,
        config(Some("nobody"), vec![scram("scram-secret")]),
        1,
    );
    assert_eq!(refused(unknown), ERROR_NOT_AUTHORIZED);
}

/// A router that welcomes with a forged SCRAM server signature.
struct Impostor(StaticAuthenticator);

impl Authenticator for Impostor {
    fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision {
        self.0.on_hello(hello)
    }

    fn on_authenticate(&mut self, auth: &AuthenticateContext<'_>) -> AuthDecision {
        match self.0.on_authenticate(auth) {
            AuthDecision::Welcome {
                authid,
                authrole,
                authmethod,
                authprovider,
                mut extra,
            } => {
                extra.insert(
                    "scram_server_signature".into(),
                    Value::from("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                );
                AuthDecision::Welcome {
                    authid,
                    authrole,
                    authmethod,
                    authprovider,
                    extra,
                }
            }
            other => other,
        }
    }
}

#[test]
fn scram_client_refuses_a_router_that_does_not_know_the_credential() {
    let mut r = router(Impostor(authenticator()));
    let outcome = join(
        &mut r,
        config(Some("scram-user"), vec![scram("scram-secret")]),
        1,
    );
    match outcome.result {
        Err((reason, Some(SessionError::CannotAuthenticate { authmethod, .. }))) => {
            assert_eq!(reason, ERROR_CANNOT_AUTHENTICATE);
            assert_eq!(authmethod, "scram");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_role_other_than_the_principals_is_refused() {
    let mut r = router(authenticator());
    let mut c = config(Some("ticket-user"), vec![ticket("ticket-secret")]);
    c.authrole = Some("admin".into());
    assert_eq!(refused(join(&mut r, c, 1)), ERROR_NOT_AUTHORIZED);
    let mut c = config(Some("ticket-user"), vec![ticket("ticket-secret")]);
    c.authrole = Some("user".into());
    check(&joined(join(&mut r, c, 1)), "ticket-user", "user", "ticket");
    for (authid, credential) in [
        ("cra-user", cra("cra-secret")),
        ("cs-user", cs(&SEED)),
        ("scram-user", scram("scram-secret")),
    ] {
        let mut c = config(Some(authid), vec![credential]);
        c.authrole = Some("admin".into());
        assert_eq!(
            refused(join(&mut r, c, 1)),
            ERROR_NOT_AUTHORIZED,
            "{authid}"
        );
    }
}

#[test]
fn methods_are_taken_in_the_clients_order() {
    // both configured: the client's first choice wins
    let mut r = router(authenticator());
    let d = joined(join(
        &mut r,
        config(Some("cs-user"), vec![cs(&SEED), ticket("x")]),
        1,
    ));
    assert_eq!(d.authmethod.as_deref(), Some("cryptosign"));
    // only ticket configured: the client's second choice is used
    let mut only_ticket = StaticAuthenticator::new();
    only_ticket
        .add_ticket(REALM, "ticket-user", &cheap_ticket("ticket-secret"), "user")
        .unwrap();
    let mut r = router(only_ticket);
    let d = joined(join(
        &mut r,
        config(
            Some("ticket-user"),
            vec![cs(&SEED), ticket("ticket-secret")],
        ),
        1,
    ));
    check(&d, "ticket-user", "user", "ticket");
    // nothing acceptable
    let none = join(&mut r, config(Some("x"), vec![scram("p")]), 1);
    assert_eq!(refused(none), ERROR_NO_AUTH_METHOD);
    let anonymous = join(&mut r, config(None, vec![]), 1);
    assert_eq!(refused(anonymous), ERROR_NO_AUTH_METHOD);
}

#[test]
fn anonymous_only_where_allowed() {
    let mut auth = authenticator();
    auth.allow_anonymous(REALM, "guest");
    let mut r = router(auth);
    let d = joined(join(&mut r, config(None, vec![]), 1));
    assert_eq!(d.authrole.as_deref(), Some("guest"));
    assert_eq!(d.authmethod.as_deref(), Some("anonymous"));
}

#[test]
fn hello_carries_the_credentials_and_authextra() {
    let mut c = config(Some("alice"), vec![cs(&SEED), scram("p"), cra("s")]);
    c.authrole = Some("user".into());
    c.authmethods = vec!["custom".into(), "wampcra".into()];
    let mut session = Session::with_rng(c, Instant::now(), &mut Rng::from_seed(5));
    let Some(Message::Hello { details, .. }) = session.poll_message() else {
        panic!("no HELLO")
    };
    let methods: Vec<&str> = details["authmethods"]
        .as_list()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(methods, ["cryptosign", "scram", "wampcra", "custom"]);
    assert_eq!(details["authid"], Value::from("alice"));
    assert_eq!(details["authrole"], Value::from("user"));
    let extra = details["authextra"].as_dict().unwrap();
    assert_eq!(
        extra["pubkey"],
        Value::from(CryptosignKey::from_seed(&SEED).public_key_hex())
    );
    assert!(extra.contains_key("nonce"));
    assert!(details.contains_key("roles"));
    let _ = client_roles();
}

#[test]
fn a_challenge_without_credential_goes_to_the_application() {
    let now = Instant::now();
    let mut c = config(Some("alice"), vec![ticket("t")]);
    c.authmethods = vec!["custom".into()];
    let mut session = Session::new(c, now);
    let _ = session.poll_message();
    session.handle_message(
        now,
        Message::Challenge {
            authmethod: "custom".into(),
            extra: Dict::new(),
        },
    );
    assert!(session.poll_message().is_none());
    assert!(matches!(
        session.poll_event(),
        Some(SessionEvent::Challenge { authmethod, .. }) if authmethod == "custom"
    ));
    // a ticket challenge is answered by the session itself
    let mut session = Session::new(config(Some("alice"), vec![ticket("t")]), now);
    let _ = session.poll_message();
    session.handle_message(
        now,
        Message::Challenge {
            authmethod: "ticket".into(),
            extra: Dict::new(),
        },
    );
    assert!(matches!(
        session.poll_message(),
        Some(Message::Authenticate { signature, .. }) if signature == "t"
    ));
    assert!(session.poll_event().is_none());
}

#[test]
fn a_malformed_challenge_aborts_the_join() {
    let now = Instant::now();
    let mut session = Session::new(config(Some("alice"), vec![cra("s")]), now);
    let _ = session.poll_message();
    session.handle_message(
        now,
        Message::Challenge {
            authmethod: "wampcra".into(),
            extra: Dict::new(),
        },
    );
    assert!(matches!(
        session.poll_message(),
        Some(Message::Abort { reason, .. }) if reason == ERROR_CANNOT_AUTHENTICATE
    ));
}

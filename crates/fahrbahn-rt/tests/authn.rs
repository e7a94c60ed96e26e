//! The served router authenticating from its configuration: static
//! principals per realm (`[[principal]]`), the methods each listener
//! accepts (`auth`), secrets from files, and the configuration checks; end
//! to end with our client on the simulated network.

#[allow(dead_code)]
mod sim;

use fahrbahn_core::Rng;
use fahrbahn_core::wamp::auth::{Credential, CryptosignKey, Kdf, ScramCredential, Secret, ticket};
use fahrbahn_rt::{
    ConfigError, CryptosignConfig, Error, ListenerConfig, PrincipalConfig, Router, RouterConfig,
    ScramConfig, Session, SessionOptions, TransportKind, WampCraConfig,
};
use sim::SimNet;

const CS_SEED: &str = "c997d2deeccd7445918409bd47a68b11b0a5203c633b5aa8646539fbda14ddc7";
const CS_PUBKEY: &str = "3c37a8d113ee420c981303bbc162c899330ba8d6b3fe2f0bf5b1b273ca40662e";
const OTHER_SEED: &str = "bf12e47cf299df3aecfd8fcde731f44ef48da11f1aae3e765821be4b334ae0f6";

/// A cheap argon2id hash of `ticket` (tests only; real ones use the
/// defaults of `fahrbahn hash-secret`).
fn ticket_hash(ticket: &str) -> String {
    let params = ticket::Params::new(64, 1, 1, None).unwrap();
    ticket::hash_ticket_with(&Secret::new(ticket), &mut Rng::from_seed(7), params).unwrap()
}

fn scram_line(password: &str) -> String {
    let kdf = Kdf::Argon2id13 {
        iterations: 2,
        memory: 64,
    };
    let credential =
        ScramCredential::generate(&Secret::new(password), kdf, &mut Rng::from_seed(8)).unwrap();
    ScramConfig::from_credential(&credential).to_toml()
}

/// A unique file in the temp dir holding `contents`.
fn secret_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("fahrbahn-authn-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

/// realm1: every method on the WebSocket listener (port 7); only
/// anonymous on the RawSocket listener (port 8).
fn config() -> RouterConfig {
    let ticket_file = secret_file("ticket", &format!("{}\n", ticket_hash("ticket-secret")));
    let toml = format!(
        r#"
        realms = ["realm1"]

        [[listener]]
        transport = "websocket"
        address = "127.0.0.1:7"
        auth = ["ticket", "wampcra", "cryptosign", "scram"]

        [[listener]]
        transport = "rawsocket"
        address = "127.0.0.1:8"
        auth = ["anonymous"]

        [[principal]]
        realm = "realm1"
        authid = "ticket-user"
        role = "user"
        ticket = "file:{ticket}"

        [[principal]]
        realm = "realm1"
        authid = "cra-user"
        role = "user"
        wampcra = {{ secret = "cra-secret" }}

        [[principal]]
        realm = "realm1"
        authid = "cra-salted"
        role = "user"
        wampcra = {{ secret = "cra-salted-secret", salt = "salt123", iterations = 100, keylen = 32 }}

        [[principal]]
        realm = "realm1"
        authid = "cs-user"
        role = "user"
        cryptosign = {{ authorized_keys = ["{CS_PUBKEY}"] }}

        [[principal]]
        realm = "realm1"
        authid = "scram-user"
        role = "user"
        {scram}
        "#,
        ticket = ticket_file.display(),
        scram = scram_line("scram-secret"),
    );
    RouterConfig::from_toml(&toml).unwrap()
}

async fn join(
    net: &SimNet,
    url: &str,
    options: SessionOptions,
) -> Result<(String, String, String), String> {
    match Session::connect_with(net, url, options).await {
        Ok(s) => {
            let who = s.auth_details();
            let triple = (
                who.authid.unwrap_or_default(),
                who.authrole.unwrap_or_default(),
                who.authmethod.unwrap_or_default(),
            );
            s.leave().await.unwrap();
            Ok(triple)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn with(authid: &str, credential: Credential) -> SessionOptions {
    SessionOptions::new("realm1")
        .authid(authid)
        .credential(credential)
}

fn user(authid: &str, method: &str) -> Result<(String, String, String), String> {
    Ok((authid.to_owned(), "user".to_owned(), method.to_owned()))
}

fn refused(result: Result<(String, String, String), String>, uri: &str) {
    match result {
        Err(e) => assert!(e.contains(uri), "want {uri}, got {e}"),
        Ok(who) => panic!("joined as {who:?} instead of being refused with {uri}"),
    }
}

#[tokio::test(start_paused = true)]
async fn principals_from_toml_authenticate_every_method_on_their_listener() {
    let net = SimNet::default();
    let router = Router::builder()
        .config(config())
        .start(&net)
        .await
        .unwrap();
    assert_eq!(
        router.access(),
        "authentication (ws://127.0.0.1:7/ws: ticket, wampcra, cryptosign, scram; rs://127.0.0.1:8: anonymous) with 5 principal(s), no roles: every session that joins has full rights"
    );
    let ws = "ws://sim:7/ws";
    let cs = || Credential::Cryptosign(CryptosignKey::from_seed_hex(CS_SEED).unwrap());
    assert_eq!(
        join(
            &net,
            ws,
            with("ticket-user", Credential::Ticket("ticket-secret".into()))
        )
        .await,
        user("ticket-user", "ticket")
    );
    let cra = |s: &str| Credential::WampCra { secret: s.into() };
    assert_eq!(
        join(&net, ws, with("cra-user", cra("cra-secret"))).await,
        user("cra-user", "wampcra")
    );
    assert_eq!(
        join(&net, ws, with("cra-salted", cra("cra-salted-secret"))).await,
        user("cra-salted", "wampcra")
    );
    assert_eq!(
        join(&net, ws, SessionOptions::new("realm1").credential(cs())).await,
        user("cs-user", "cryptosign")
    );
    let scram = |p: &str| Credential::Scram { password: p.into() };
    assert_eq!(
        join(&net, ws, with("scram-user", scram("scram-secret"))).await,
        user("scram-user", "scram")
    );

    // The negative cases: wrong secret, unknown authid, a role the
    // principal does not have, an unauthorized key, the wrong realm.
    let denied = "wamp.error.not_authorized";
    refused(
        join(
            &net,
            ws,
            with("ticket-user", Credential::Ticket("wrong".into())),
        )
        .await,
        denied,
    );
    refused(join(&net, ws, with("cra-user", cra("wrong"))).await, denied);
    refused(
        join(&net, ws, with("scram-user", scram("wrong"))).await,
        denied,
    );
    refused(
        join(
            &net,
            ws,
            with("nobody", Credential::Ticket("ticket-secret".into())),
        )
        .await,
        denied,
    );
    refused(
        join(
            &net,
            ws,
            with("ticket-user", Credential::Ticket("ticket-secret".into())).authrole("admin"),
        )
        .await,
        denied,
    );
    let other = Credential::Cryptosign(CryptosignKey::from_seed_hex(OTHER_SEED).unwrap());
    refused(
        join(&net, ws, SessionOptions::new("realm1").credential(other)).await,
        denied,
    );
    refused(
        join(
            &net,
            ws,
            SessionOptions::new("realm2")
                .authid("ticket-user")
                .credential(Credential::Ticket("ticket-secret".into())),
        )
        .await,
        "wamp.error.no_such_realm",
    );

    // Listener scoping: no anonymous on 7, only anonymous on 8.
    refused(
        join(&net, ws, SessionOptions::new("realm1")).await,
        "wamp.error.no_auth_method",
    );
    let rs = "rs://sim:8";
    let (_, role, method) = join(&net, rs, SessionOptions::new("realm1")).await.unwrap();
    assert_eq!((role.as_str(), method.as_str()), ("anonymous", "anonymous"));
    refused(
        join(
            &net,
            rs,
            with("ticket-user", Credential::Ticket("ticket-secret".into())),
        )
        .await,
        "wamp.error.no_auth_method",
    );
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn principals_from_the_builder() {
    let net = SimNet::default();
    let mut cs = PrincipalConfig::new("realm1", "cs-user", "user");
    cs.cryptosign = Some(CryptosignConfig::new([CS_PUBKEY]));
    let mut cra = PrincipalConfig::new("realm1", "cra-user", "user");
    cra.wampcra = Some(WampCraConfig::new("cra-secret"));
    let router = Router::builder()
        .listener(
            ListenerConfig::tcp(TransportKind::RawSocket, "127.0.0.1:7").with_auth([
                "cryptosign",
                "wampcra",
                "anonymous",
            ]),
        )
        .principal(cs)
        .principal(cra)
        .start(&net)
        .await
        .unwrap();
    let key = Credential::Cryptosign(CryptosignKey::from_seed_hex(CS_SEED).unwrap());
    assert_eq!(
        join(
            &net,
            "rs://sim:7",
            SessionOptions::new("realm1").credential(key)
        )
        .await,
        user("cs-user", "cryptosign")
    );
    let (_, role, _) = join(&net, "rs://sim:7", SessionOptions::new("realm1"))
        .await
        .unwrap();
    assert_eq!(role, "anonymous");
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn authentication_mistakes_in_the_configuration_are_reported() {
    let net = SimNet::default();
    let base = r#"
        [[listener]]
        transport = "rawsocket"
        address = "127.0.0.1:7"
    "#;
    let parse = |rest: &str| RouterConfig::from_toml(&format!("{base}{rest}"));
    let message = |rest: &str| parse(rest).unwrap_err().to_string();

    // A listener that does not say what it accepts, once principals exist.
    let m = message(
        "[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\nwampcra = { secret = \"s\" }\n",
    );
    assert!(m.contains("auth = ["), "{m}");
    // An unknown method; a method no principal has.
    let m = message("auth = [\"password\"]\n");
    assert!(
        m.contains("unknown authentication method \"password\""),
        "{m}"
    );
    let m = message("auth = [\"ticket\"]\n");
    assert!(
        m.contains("no [[principal]] has a ticket credential"),
        "{m}"
    );
    // A principal without credential, in a realm not served, with a bad key.
    let m = message(
        "auth = [\"anonymous\"]\n[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\n",
    );
    assert!(
        m.contains("principal \"a\" of realm \"realm1\": it has no credential"),
        "{m}"
    );
    let m = message(
        "auth = [\"anonymous\"]\n[[principal]]\nrealm = \"nope\"\nauthid = \"a\"\nrole = \"user\"\nwampcra = { secret = \"s\" }\n",
    );
    assert!(m.contains("not in `realms`"), "{m}");
    let m = message(
        "auth = [\"cryptosign\"]\n[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\ncryptosign = { authorized_keys = [\"abcd\"] }\n",
    );
    assert!(m.contains("64 hex digits"), "{m}");
    let m = message(
        "auth = [\"wampcra\"]\n[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\nwampcra = { secret = \"s\", salt = \"x\" }\n",
    );
    assert!(m.contains("`salt`, `iterations` and `keylen`"), "{m}");

    // tls: only on a TLS listener; fingerprints of 32 bytes.
    let tls_principal = "[[principal]]\nrealm = \"realm1\"\nauthid = \"d\"\nrole = \"user\"\n";
    let m = message(&format!(
        "auth = [\"tls\"]\n{tls_principal}tls = {{ fingerprints = [\"{}\"] }}\n",
        "ab".repeat(32)
    ));
    assert!(m.contains("serves no TLS"), "{m}");
    let m = message(&format!(
        "auth = [\"anonymous\"]\n{tls_principal}tls = {{ fingerprints = [\"AB:CD\"] }}\n"
    ));
    assert!(m.contains("not a SHA-256 fingerprint"), "{m}");

    // Found at start: a plain ticket, a missing environment variable.
    let start = |rest: &str| {
        let config = parse(rest).unwrap();
        let net = net.clone();
        async move {
            Router::builder()
                .config(config)
                .start(&net)
                .await
                .unwrap_err()
        }
    };
    let err = start(
        "auth = [\"ticket\"]\n[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\nticket = \"plain-ticket\"\n",
    )
    .await;
    assert!(
        matches!(err, Error::Config(ConfigError::Principal { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("fahrbahn hash-secret ticket"),
        "{err}"
    );
    assert!(!err.to_string().contains("plain-ticket"), "{err}");
    let err = start(
        "auth = [\"wampcra\"]\n[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\nwampcra = { secret = \"env:FAHRBAHN_TEST_SURELY_UNSET\" }\n",
    )
    .await;
    assert!(
        err.to_string()
            .contains("FAHRBAHN_TEST_SURELY_UNSET is not set"),
        "{err}"
    );

    // Principals and a custom authenticator at once.
    let config = parse(
        "auth = [\"wampcra\"]\n[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\nwampcra = { secret = \"s\" }\n",
    )
    .unwrap();
    let err = Router::builder()
        .config(config.clone())
        .authenticator(Box::new(
            fahrbahn_core::wamp::router::AnonymousAuthenticator,
        ))
        .start(&net)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::PrincipalsAndAuthenticator)),
        "{err:?}"
    );
    // Debug output never shows a secret.
    let debug = format!("{config:?}");
    assert!(debug.contains("wampcra"), "{debug}");
    assert!(!debug.contains("secret: \"s\""), "{debug}");
}

//! Known-answer tests against AutobahnPython 26.10.2 (the Crossbar venv of
//! `/work/shared/crossbar`, `~/.cache/crossbar-venv/bin/python`), and
//! round trips of each method's two sides.
//!
//! The vectors were produced with:
//!
//! ```python
//! from autobahn.wamp import auth
//! auth.derive_key(b"cra-salted-secret", b"salt123", 100, 32)
//! auth.compute_wcs(b"cra-secret", b'{"authid":"cra-user","nonce":"abc"}')
//! auth.compute_wcs(auth.derive_key(...), b'{"authid":"cra-user","nonce":"abc"}')
//! nacl.signing.SigningKey(bytes.fromhex(SEED)).sign(bytes(16*[0]) + bytes(16*[0xff])).hex()
//! a = auth.AuthScram(authid="scram-user", password="scram-secret")
//! a._client_nonce = base64.b64encode(bytes(range(16))).decode()
//! a.on_challenge(None, Challenge("scram", {"nonce": b64(bytes(range(16)) + bytes(range(100, 116))),
//!     "kdf": "argon2id-13", "salt": b64(bytes.fromhex("5ff8f9fad4f6c5ca86341dacf4ca3eae")),
//!     "iterations": 64, "memory": 512}))
//! # server signature: HMAC(HMAC(a._salted_password, b"Server Key"), a._auth_message)
//! ```
//!
//! AutobahnPython's own `pbkdf2` SCRAM path fails on a text salt, so the
//! `pbkdf2` vectors follow its formula in plain Python (hashlib's
//! `pbkdf2_hmac("sha256", password, base64-decoded salt, 1000, 32)`). The
//! OpenSSH key is `cryptography`'s `Ed25519PrivateKey.from_private_bytes(SEED)`
//! written with `PrivateFormat.OpenSSH` and no encryption.

use super::scram::ScramClient;
use super::*;
use crate::wamp::{Dict, Value};

const SEED: &str = "c997d2deeccd7445918409bd47a68b11b0a5203c633b5aa8646539fbda14ddc7";
const PUBKEY: &str = "3c37a8d113ee420c981303bbc162c899330ba8d6b3fe2f0bf5b1b273ca40662e";
const OPENSSH: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz
c2gtZWQyNTUxOQAAACA8N6jRE+5CDJgTA7vBYsiZMwuo1rP+Lwv1sbJzykBmLgAA
AIggiWusIIlrrAAAAAtzc2gtZWQyNTUxOQAAACA8N6jRE+5CDJgTA7vBYsiZMwuo
1rP+Lwv1sbJzykBmLgAAAEDJl9Le7M10RZGECb1HposRsKUgPGM7WqhkZTn72hTd
xzw3qNET7kIMmBMDu8FiyJkzC6jWs/4vC/WxsnPKQGYuAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
";

fn dict(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[test]
fn wampcra_matches_autobahn() {
    let key = wampcra::derive_key(b"cra-salted-secret", b"salt123", 100, 32);
    assert_eq!(key.expose(), "mneDFB0aPCSG7wsFfIil4MafBe4e4efUjzJV24w/ncs=");
    let challenge = r#"{"authid":"cra-user","nonce":"abc"}"#;
    let plain = dict(&[("challenge", challenge.into())]);
    let signature = wampcra::sign_challenge(&Secret::new("cra-secret"), &plain).unwrap();
    assert_eq!(signature, "VdjHTNGR6hGkZRGGIfKjJHX+HY7E9uUOTtDGaCtiG94=");
    assert!(wampcra::verify(
        &Secret::new("cra-secret"),
        &plain,
        &signature
    ));
    assert!(!wampcra::verify(
        &Secret::new("cra-secreT"),
        &plain,
        &signature
    ));
    let salted = dict(&[
        ("challenge", challenge.into()),
        ("salt", "salt123".into()),
        ("iterations", 100u64.into()),
        ("keylen", 32u64.into()),
    ]);
    let secret = Secret::new("cra-salted-secret");
    let signature = wampcra::sign_challenge(&secret, &salted).unwrap();
    assert_eq!(signature, "UalIabaapvUPQeUvkk3q4m4s4LeJ/R6haVGLsnp1gyI=");
    assert!(wampcra::verify(&secret, &salted, &signature));
}

#[test]
fn wampcra_refuses_hostile_parameters() {
    let extra = dict(&[
        ("challenge", "x".into()),
        ("salt", "s".into()),
        ("iterations", 1_000_000_000u64.into()),
        ("keylen", 32u64.into()),
    ]);
    let e = wampcra::sign_challenge(&Secret::new("s"), &extra).unwrap_err();
    assert!(matches!(e, AuthError::BadChallenge(_)), "{e}");
    let e = wampcra::sign_challenge(&Secret::new("s"), &Dict::new()).unwrap_err();
    assert!(matches!(e, AuthError::BadChallenge(_)), "{e}");
}

#[test]
fn cryptosign_matches_autobahn() {
    let key = CryptosignKey::from_seed_hex(SEED).unwrap();
    assert_eq!(key.public_key_hex(), PUBKEY);
    let mut challenge = [0u8; 32];
    challenge[16..].fill(0xff);
    let extra = cryptosign::make_challenge(&challenge);
    let signature = key.sign_challenge(&extra).unwrap();
    assert_eq!(
        signature,
        "036bc8424207cd17c7d50b1d6d1ed4ac4236c1c996e453214dc6b86b35713939626756802ae2099de01288d82e47c640c7e016ba2a151c57b59ce05ee051020b00000000000000000000000000000000ffffffffffffffffffffffffffffffff"
    );
    let public = cryptosign::parse_public_key(PUBKEY).unwrap();
    assert!(cryptosign::verify(&public, &extra, &signature));
    // the bare 64-byte signature is accepted too
    assert!(cryptosign::verify(&public, &extra, &signature[..128]));
    // another challenge: the signature does not fit
    let other = cryptosign::make_challenge(&[1; 32]);
    assert!(!cryptosign::verify(&public, &other, &signature));
    // channel binding other than none is refused by the client
    let mut bound = extra.clone();
    bound.insert("channel_binding".into(), "tls-unique".into());
    assert!(key.sign_challenge(&bound).is_err());
}

#[test]
fn cryptosign_key_files() {
    let from_ssh = CryptosignKey::from_openssh(OPENSSH).unwrap();
    assert_eq!(from_ssh.public_key_hex(), PUBKEY);
    let from_file = CryptosignKey::from_file_contents(OPENSSH.as_bytes()).unwrap();
    assert_eq!(from_file.public_key_hex(), PUBKEY);
    let seed = hex_decode(SEED).unwrap();
    assert_eq!(
        CryptosignKey::from_raw_bytes(&seed)
            .unwrap()
            .public_key_hex(),
        PUBKEY
    );
    let mut pair = seed.clone();
    pair.extend(hex_decode(PUBKEY).unwrap());
    assert_eq!(
        CryptosignKey::from_file_contents(&pair)
            .unwrap()
            .public_key_hex(),
        PUBKEY
    );
    pair[40] ^= 1;
    assert!(CryptosignKey::from_raw_bytes(&pair).is_err());
    assert_eq!(
        CryptosignKey::from_file_contents(format!("{SEED}\n").as_bytes())
            .unwrap()
            .public_key_hex(),
        PUBKEY
    );
    assert!(CryptosignKey::from_raw_bytes(&[0; 31]).is_err());
    assert!(
        CryptosignKey::from_openssh(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
        )
        .is_err()
    );
    // written and read back
    let written = from_ssh.to_openssh("test").unwrap();
    assert_eq!(
        CryptosignKey::from_openssh(written.expose())
            .unwrap()
            .public_key_hex(),
        PUBKEY
    );
    // Debug shows the public key only
    let shown = format!("{from_ssh:?}");
    assert!(shown.contains(PUBKEY) && !shown.contains(SEED), "{shown}");
}

fn scram_challenge(kdf: &str, salt: &[u8], iterations: u64, memory: Option<u64>) -> Dict {
    let mut nonce: Vec<u8> = (0..16).collect();
    nonce.extend(100..116);
    let mut extra = dict(&[
        ("nonce", b64(&nonce).into()),
        ("kdf", kdf.into()),
        ("salt", b64(salt).into()),
        ("iterations", iterations.into()),
    ]);
    if let Some(m) = memory {
        extra.insert("memory".into(), m.into());
    }
    extra
}

#[test]
fn scram_argon2_matches_autobahn_and_crossbar() {
    let salt = hex_decode("5ff8f9fad4f6c5ca86341dacf4ca3eae").unwrap();
    let nonce: Vec<u8> = (0..16).collect();
    let mut client = ScramClient::with_nonce("scram-user", Secret::new("scram-secret"), &nonce);
    assert_eq!(client.nonce(), "AAECAwQFBgcICQoLDA0ODw==");
    let extra = scram_challenge("argon2id-13", &salt, 64, Some(512));
    let proof = client.answer(&extra).unwrap();
    assert_eq!(proof, "oAz0FJPzH7oC4XAOtVv3/mh5KXb4x0PEwehPPF6OmQA=");
    // the stored keys of the Crossbar.io kit's config for this password
    let kdf = Kdf::Argon2id13 {
        iterations: 64,
        memory: 512,
    };
    let stored = ScramCredential::derive(&Secret::new("scram-secret"), &salt, kdf).unwrap();
    let crossbar = ScramCredential::from_hex(
        kdf,
        "5ff8f9fad4f6c5ca86341dacf4ca3eae",
        "5fda9f7908864307d457fed0c1b3ccff1d86080b6dfb6eb0cf7ea99c3b24c037",
        "54025ff0841c7e275d21cb64d0252ff9191f946134cdfe3c7c7645a8f0c89c63",
    )
    .unwrap();
    assert!(stored == crossbar);
    let server = stored
        .verify("scram-user", client.nonce(), &extra, &proof)
        .expect("proof accepted");
    assert_eq!(server, "RDoAaJKbvOobCLAYzmy9i64cBxq0EiMMkO7fxQGutiM=");
    let welcome = dict(&[("scram_server_signature", server.as_str().into())]);
    client.check_welcome(Some(&welcome)).unwrap();
    let forged = dict(&[("scram_server_signature", b64(&[0; 32]).into())]);
    assert_eq!(
        client.check_welcome(Some(&forged)),
        Err(AuthError::RouterNotAuthenticated)
    );
    assert!(client.check_welcome(None).is_err());
    // a wrong password's proof is refused
    let mut wrong = ScramClient::with_nonce("scram-user", Secret::new("scram-secreT"), &nonce);
    let proof = wrong.answer(&extra).unwrap();
    assert!(
        stored
            .verify("scram-user", client.nonce(), &extra, &proof)
            .is_none()
    );
}

#[test]
fn scram_pbkdf2_vectors() {
    let salt: Vec<u8> = (0..16).collect();
    let nonce: Vec<u8> = (0..16).collect();
    let mut client = ScramClient::with_nonce("scram-user", Secret::new("scram-secret"), &nonce);
    let extra = scram_challenge("pbkdf2", &salt, 1000, None);
    let proof = client.answer(&extra).unwrap();
    assert_eq!(proof, "2Sep3XKZJGaV76afoX1cZkxqGL1lIuO2xoPX0VUYVLo=");
    let stored = ScramCredential::derive(
        &Secret::new("scram-secret"),
        &salt,
        Kdf::Pbkdf2 { iterations: 1000 },
    )
    .unwrap();
    assert_eq!(
        hex_encode(&stored.stored_key),
        "2f867e753fe568d263f7294fe85dfde5495d59ad9c3c1b55c1e4a7da380bca39"
    );
    assert_eq!(
        hex_encode(&stored.server_key),
        "39ac574e5316122e26f0faa5051ff35a2a9a426a96c96a623b86b948e11bd3e7"
    );
    let server = stored
        .verify("scram-user", client.nonce(), &extra, &proof)
        .unwrap();
    assert_eq!(server, "tdC3HRsj1WWCNuedgme2CZ0TXNUYkTv/Ann0yZjJWiM=");
}

#[test]
fn scram_refuses_hostile_challenges() {
    let nonce: Vec<u8> = (0..16).collect();
    let mut client = ScramClient::with_nonce("u", Secret::new("p"), &nonce);
    // a memory cost beyond the bound
    let extra = scram_challenge("argon2id-13", &[1; 16], 1, Some(u64::from(u32::MAX)));
    assert!(matches!(
        client.answer(&extra),
        Err(AuthError::BadChallenge(_))
    ));
    // too much work in total
    let extra = scram_challenge("argon2id-13", &[1; 16], 1_000_000, Some(1024));
    assert!(matches!(
        client.answer(&extra),
        Err(AuthError::BadChallenge(_))
    ));
    // an unknown KDF
    let extra = scram_challenge("md5", &[1; 16], 1, None);
    assert!(matches!(
        client.answer(&extra),
        Err(AuthError::BadChallenge(_))
    ));
    // a router nonce that does not extend ours
    let mut extra = scram_challenge("pbkdf2", &[1; 16], 1, None);
    extra.insert("nonce".into(), b64(&[9; 32]).into());
    assert!(matches!(
        client.answer(&extra),
        Err(AuthError::BadChallenge(_))
    ));
}

#[test]
fn tickets_are_stored_hashed() {
    let mut rng = crate::Rng::from_seed(3);
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let stored = ticket::hash_ticket_with(&Secret::new("ticket-secret"), &mut rng, params).unwrap();
    assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
    assert!(!stored.contains("ticket-secret"));
    assert!(ticket::verify_ticket(&stored, "ticket-secret"));
    assert!(!ticket::verify_ticket(&stored, "ticket-secreT"));
    assert!(!ticket::verify_ticket("not a hash", "ticket-secret"));
    assert!(ticket::check_stored("plain").is_err());
}

#[test]
fn secrets_stay_out_of_debug() {
    let credential = Credential::Scram {
        password: Secret::new("hunter2"),
    };
    assert!(!format!("{credential:?}").contains("hunter2"));
    let stored = ScramCredential::derive(
        &Secret::new("hunter2"),
        &[0; 16],
        Kdf::Pbkdf2 { iterations: 1 },
    )
    .unwrap();
    let shown = format!("{stored:?}");
    assert!(
        !shown.contains(&hex_encode(&stored.stored_key)[..8]),
        "{shown}"
    );
}

#[test]
fn hex_round_trip() {
    assert_eq!(hex_encode(&[0, 0xab, 0xff]), "00abff");
    assert_eq!(hex_decode("00ABff"), Some(vec![0, 0xab, 0xff]));
    assert_eq!(hex_decode("0"), None);
    assert_eq!(hex_decode("zz"), None);
}

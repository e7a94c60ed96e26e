//! TLS end to end: the router serving `wss://` and `rss://` with a
//! self-signed certificate, a client trusting exactly that certificate,
//! and a plain WebSocket over TLS with `tls_connect_with`.
#![cfg(all(feature = "tls", feature = "tokio"))]

use std::sync::Arc;
use std::time::Duration;

use fahrbahn::wamp::router::{ListenerConfig, Router, TlsFiles, TransportKind};
use fahrbahn::wamp::{CallResult, Serializer, SessionOptions};
use futures_rustls::rustls;

mod harness;

struct Certificate {
    dir: harness::TempDir,
    roots: Arc<rustls::ClientConfig>,
}

fn certificate() -> Certificate {
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = harness::TempDir::new("fahrbahn-tls");
    std::fs::write(dir.path().join("cert.pem"), key.cert.pem()).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), key.signing_key.serialize_pem()).expect("write key");
    let mut store = rustls::RootCertStore::empty();
    store.add(key.cert.der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    Certificate {
        dir,
        roots: Arc::new(roots),
    }
}

fn tls_listener(transport: TransportKind, cert: &Certificate) -> ListenerConfig {
    let mut listener = ListenerConfig::tcp(transport, "127.0.0.1:0");
    listener.tls = Some(TlsFiles::new(
        cert.dir.path().join("cert.pem").display().to_string(),
        cert.dir.path().join("key.pem").display().to_string(),
    ));
    listener
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wamp_over_wss_and_rss() {
    let cert = certificate();
    let rt = fahrbahn::tokio::TokioRuntime;
    let router = Router::builder()
        .listener(tls_listener(TransportKind::WebSocket, &cert))
        .listener(tls_listener(TransportKind::RawSocket, &cert))
        .start(&rt)
        .await
        .expect("router starts");
    // The certificate is for "localhost", so connect by that name.
    let wss = router
        .websocket_url()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let rss = router
        .rawsocket_url()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    assert!(
        wss.starts_with("wss://") && rss.starts_with("rss://"),
        "{wss} {rss}"
    );

    let mut options = SessionOptions::new("realm1").serializer(Serializer::MsgPack);
    options.tls = Some(cert.roots.clone());
    let callee = tokio::time::timeout(
        Duration::from_secs(10),
        fahrbahn::tokio::session_with(&wss, options.clone()),
    )
    .await
    .expect("no timeout")
    .expect("joins over wss");
    callee
        .register("com.example.tls.add2", |inv| async move {
            let (a, b): (i64, i64) = inv.decode()?;
            Ok(CallResult::args(vec![(a + b).into()]))
        })
        .await
        .expect("registers");
    let caller = fahrbahn::tokio::session_with(&rss, options)
        .await
        .expect("joins over rss");
    let sum: i64 = caller
        .call_typed("com.example.tls.add2", &(20, 22))
        .await
        .expect("call");
    assert_eq!(sum, 42);

    // Without the custom root the certificate is rejected.
    let err = fahrbahn::tokio::session(&wss, "realm1")
        .await
        .expect_err("untrusted certificate");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    caller.leave().await.expect("leave");
    callee.leave().await.expect("leave");
    router.shutdown().await;
}

/// A client configuration trusting `cert` and presenting `client` (a
/// self-signed certificate and its key), if given.
fn client_config(
    cert: &Certificate,
    client: Option<&rcgen::CertifiedKey<rcgen::KeyPair>>,
) -> Arc<rustls::ClientConfig> {
    let Some(client) = client else {
        return cert.roots.clone();
    };
    let mut store = rustls::RootCertStore::empty();
    // The server's certificate, from the PEM the router serves.
    let pem = std::fs::read(cert.dir.path().join("cert.pem")).unwrap();
    for der in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
        store.add(der.unwrap()).unwrap();
    }
    let key =
        rustls_pki_types::PrivateKeyDer::try_from(client.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_client_auth_cert(vec![client.cert.der().clone()], key)
        .unwrap();
    Arc::new(config)
}

/// `tls` authentication: a client certificate pinned by its SHA-256
/// fingerprint authenticates its principal; another certificate, or none,
/// does not; the listener's other methods still work without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_authenticate_pinned_principals() {
    use fahrbahn::wamp::router::{PrincipalConfig, TlsPrincipalConfig, certificate_fingerprint};
    let cert = certificate();
    let device = rcgen::generate_simple_self_signed(vec!["device-1".to_owned()]).unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger".to_owned()]).unwrap();
    // As `openssl x509 -noout -fingerprint -sha256` prints it: upper case with colons.
    let fingerprint = certificate_fingerprint(device.cert.der())
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let mut principal = PrincipalConfig::new("realm1", "device-1", "user");
    principal.tls = Some(TlsPrincipalConfig::new([fingerprint]));
    let rt = fahrbahn::tokio::TokioRuntime;
    let router = Router::builder()
        .listener(tls_listener(TransportKind::WebSocket, &cert).with_auth(["tls", "anonymous"]))
        .principal(principal)
        .start(&rt)
        .await
        .expect("router starts");
    assert!(
        router.access().contains("tls, anonymous"),
        "{}",
        router.access()
    );
    let wss = router
        .websocket_url()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let join = |client: Option<&rcgen::CertifiedKey<rcgen::KeyPair>>, methods: &[&str]| {
        let mut options = SessionOptions::new("realm1");
        options.tls = Some(client_config(&cert, client));
        options.session.authmethods = methods.iter().map(|m| m.to_string()).collect();
        let wss = wss.clone();
        async move {
            let session = tokio::time::timeout(
                Duration::from_secs(10),
                fahrbahn::tokio::session_with(&wss, options),
            )
            .await
            .expect("no timeout")?;
            let who = session.auth_details();
            session.leave().await?;
            Ok::<_, fahrbahn::Error>((
                who.authid.unwrap_or_default(),
                who.authrole.unwrap_or_default(),
                who.authmethod.unwrap_or_default(),
            ))
        }
    };
    assert_eq!(
        join(Some(&device), &["tls"]).await.unwrap(),
        ("device-1".into(), "user".into(), "tls".into())
    );
    for (client, what) in [
        (Some(&stranger), "another certificate"),
        (None, "no certificate"),
    ] {
        let err = join(client, &["tls"]).await.unwrap_err().to_string();
        assert!(err.contains("wamp.error.not_authorized"), "{what}: {err}");
    }
    // Without offering tls the certificate is not used: anonymous.
    let (_, role, method) = join(Some(&device), &[]).await.unwrap();
    assert_eq!((role.as_str(), method.as_str()), ("anonymous", "anonymous"));
    router.shutdown().await;
}

//! HTTP proxies: a small `CONNECT` proxy of the test suite (with and
//! without basic authentication) in front of the router, reached over
//! `ws://`, `wss://` and `rss://`; the environment's rules (`http_proxy`,
//! `no_proxy`) injected as settings, never read from the host.

#[allow(dead_code)]
mod sim;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fahrbahn_rt::{
    ClientConfig, Error, Message, Proxy, ProxyConfig, ProxyEnv, ProxyError, Router, ServerConfig,
    Session, SessionOptions, WebSocket,
};
use fahrbahn_tokio::{TokioIo, TokioRuntime};
use sim::SimNet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the test proxy saw: the `CONNECT` targets it tunnelled to.
type Log = Arc<Mutex<Vec<String>>>;

/// Serves one client of the test proxy: reads `CONNECT host:port`, checks
/// `Proxy-Authorization` when `auth` is set (else answers 407), dials
/// the target with `dial` and relays bytes both ways.
async fn serve_connect<C, U, F, Fut>(mut client: C, auth: Option<String>, log: Log, dial: F)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(String, u16) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<U>>,
{
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if client.read_exact(&mut byte).await.is_err() || head.len() > 8192 {
            return;
        }
        head.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    assert!(request.parse(&head).unwrap().is_complete());
    assert_eq!(request.method, Some("CONNECT"));
    let target = request.path.unwrap().to_owned();
    let host_header = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    assert_eq!(host_header.as_deref(), Some(target.as_str()));
    if let Some(expected) = auth {
        let given = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
            .map(|h| String::from_utf8_lossy(h.value).into_owned());
        if given.as_deref() != Some(expected.as_str()) {
            let _ = client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            return;
        }
    }
    log.lock().unwrap().push(target.clone());
    let (host, port) = target.rsplit_once(':').unwrap();
    let Ok(mut upstream) = dial(host.to_owned(), port.parse().unwrap()).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The test proxy on a real loopback port. It resolves every target
/// name to 127.0.0.1 (so `router.test` only works through it).
async fn tcp_proxy(auth: Option<(&str, &str)>) -> (u16, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let auth = auth.map(|(user, password)| {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    });
    let log = Log::default();
    let log2 = log.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(serve_connect(
                client,
                auth.clone(),
                log2.clone(),
                |_host, port| tokio::net::TcpStream::connect(("127.0.0.1", port)),
            ));
        }
    });
    (port, log)
}

/// The test proxy on the simulated network, at `port`.
fn sim_proxy(net: &SimNet, port: u16) -> Log {
    let mut listener = net.listen(port);
    let log = Log::default();
    let log2 = log.clone();
    let net = net.clone();
    tokio::spawn(async move {
        while let Some(client) = listener.recv().await {
            let net = net.clone();
            tokio::spawn(serve_connect(
                client.0,
                None,
                log2.clone(),
                move |_host, port| std::future::ready(net.dial(port)),
            ));
        }
    });
    log
}

fn with_proxy(proxy: ProxyConfig) -> SessionOptions {
    let mut options = SessionOptions::new("realm1");
    options.proxy = proxy;
    options
}

#[tokio::test]
async fn wamp_over_ws_through_a_connect_proxy_with_basic_auth() {
    let router = Router::builder()
        .realm("realm1")
        .websocket("127.0.0.1:0")
        .start(&TokioRuntime)
        .await
        .unwrap();
    let port = router.listeners()[0]
        .address
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let (proxy_port, log) = tcp_proxy(Some(("alice", "s3cret:!"))).await;
    // The password is percent-encoded in the URL.
    let proxy = Proxy::parse(&format!("http://alice:s3cret%3A!@127.0.0.1:{proxy_port}")).unwrap();
    // `router.test` resolves only at the proxy: joining proves the tunnel.
    let url = format!("ws://router.test:{port}/ws");
    let session =
        Session::connect_with(&TokioRuntime, &url, with_proxy(ProxyConfig::Always(proxy)))
            .await
            .expect("joins through the proxy");
    assert_eq!(*log.lock().unwrap(), vec![format!("router.test:{port}")]);
    let echo: String = {
        session
            .register("com.example.echo", |inv| async move {
                let s: String = inv.decode()?;
                fahrbahn_rt::CallResult::typed(&s)
            })
            .await
            .unwrap();
        session.call_typed("com.example.echo", &"hi").await.unwrap()
    };
    assert_eq!(echo, "hi");
    session.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test]
async fn a_plain_websocket_through_the_proxy() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = WebSocket::accept(&TokioRuntime, TokioIo(stream), ServerConfig::default())
            .await
            .unwrap();
        while let Some(Ok(msg)) = ws.recv().await {
            if ws.send(msg).await.is_err() {
                break;
            }
        }
    });
    let (proxy_port, log) = tcp_proxy(None).await;
    let proxy = ProxyConfig::Always(Proxy::new("127.0.0.1", proxy_port));
    let url = format!("ws://echo.test:{port}/");
    let mut ws = fahrbahn_rt::connect_via(&TokioRuntime, &url, ClientConfig::default(), &proxy)
        .await
        .expect("connects through the proxy");
    ws.send("hello").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::from("hello"));
    assert_eq!(*log.lock().unwrap(), vec![format!("echo.test:{port}")]);
    ws.close(fahrbahn_rt::CloseCode::NORMAL, "").await.unwrap();
}

#[tokio::test]
async fn a_proxy_that_wants_other_credentials_is_a_typed_407() {
    let (proxy_port, log) = tcp_proxy(Some(("alice", "right"))).await;
    let url = "ws://router.test:9/ws";
    let without = ProxyConfig::Always(Proxy::new("127.0.0.1", proxy_port));
    match Session::connect_with(&TokioRuntime, url, with_proxy(without)).await {
        Err(Error::Proxy(ProxyError::AuthenticationRequired {
            sent_credentials: false,
            ..
        })) => {}
        other => panic!("expected a 407, got {other:?}"),
    }
    let wrong =
        ProxyConfig::Always(Proxy::new("127.0.0.1", proxy_port).with_basic_auth("alice", "wrong"));
    match Session::connect_with(&TokioRuntime, url, with_proxy(wrong)).await {
        Err(
            e @ Error::Proxy(ProxyError::AuthenticationRequired {
                sent_credentials: true,
                ..
            }),
        ) => {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("wrong"), "the password leaked: {shown}");
        }
        other => panic!("expected a 407, got {other:?}"),
    }
    assert!(log.lock().unwrap().is_empty(), "no tunnel was opened");
}

#[tokio::test(start_paused = true)]
async fn the_proxy_settings_pick_http_proxy_for_ws_and_honour_no_proxy() {
    let net = SimNet::default();
    let router = Router::builder()
        .realm("realm1")
        .websocket("127.0.0.1:7")
        .start(&net)
        .await
        .unwrap();
    let log = sim_proxy(&net, 3128);
    let url = "ws://router.test:7/ws";
    let settings = |http: Option<&str>, https: Option<&str>, no: Option<&str>| {
        with_proxy(ProxyConfig::Settings(ProxyEnv::new(
            http.map(str::to_owned),
            https.map(str::to_owned),
            no.map(str::to_owned),
        )))
    };
    // http_proxy for ws://.
    let s = Session::connect_with(
        &net,
        url,
        settings(Some("http://proxy.test:3128"), None, None),
    )
    .await
    .unwrap();
    s.leave().await.unwrap();
    assert_eq!(*log.lock().unwrap(), vec!["router.test:7".to_owned()]);
    // no_proxy names the router: direct, although http_proxy is set (to a
    // port where nobody listens, so a proxied attempt would fail).
    for no_proxy in ["router.test", "example.org, .test", "*", "router.test:7"] {
        let s = Session::connect_with(
            &net,
            url,
            settings(Some("http://proxy.test:1"), None, Some(no_proxy)),
        )
        .await
        .unwrap_or_else(|e| panic!("no_proxy={no_proxy}: {e}"));
        s.leave().await.unwrap();
    }
    // A no_proxy entry for another port does not apply.
    let other_port = Session::connect_with(
        &net,
        url,
        settings(Some("http://proxy.test:1"), None, Some("router.test:8")),
    )
    .await;
    assert!(
        matches!(
            other_port,
            Err(Error::Proxy(ProxyError::Unreachable { .. }))
        ),
        "{other_port:?}"
    );
    // https_proxy is for wss:// only; Off ignores everything.
    let s = Session::connect_with(&net, url, settings(None, Some("http://proxy.test:1"), None))
        .await
        .unwrap();
    s.leave().await.unwrap();
    let s = Session::connect_with(&net, url, with_proxy(ProxyConfig::Off))
        .await
        .unwrap();
    s.leave().await.unwrap();
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "only the first went through the proxy"
    );
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_tunnel_opened_by_hand_carries_a_session_over_join_stream() {
    let net = SimNet::default();
    let router = Router::builder()
        .realm("realm1")
        .rawsocket("127.0.0.1:8")
        .start(&net)
        .await
        .unwrap();
    let log = sim_proxy(&net, 3128);
    let tunnel = Proxy::new("proxy.test", 3128)
        .connect(&net, "router.test", 8)
        .await
        .expect("the proxy opens the tunnel");
    let session = Session::join_stream(
        &net,
        tunnel,
        fahrbahn_rt::Framing::RawSocket,
        SessionOptions::new("realm1"),
    )
    .await
    .expect("joins through the tunnel");
    assert_eq!(*log.lock().unwrap(), vec!["router.test:8".to_owned()]);
    session.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_proxy_that_never_answers_connect_times_out() {
    let net = SimNet::default();
    let mut silent = net.listen(3128);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(client) = silent.recv().await {
            held.push(client); // accepted, never answered
        }
    });
    let options = with_proxy(ProxyConfig::Always(Proxy::new("proxy.test", 3128)));
    let started = tokio::time::Instant::now();
    let result = Session::connect_with(&net, "ws://router.test:7/ws", options).await;
    assert!(
        matches!(result, Err(Error::Proxy(ProxyError::Timeout { .. }))),
        "{result:?}"
    );
    // Simulated time: the proxy's deadline, not the join's.
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use fahrbahn_rt::{ListenerConfig, TlsFiles, TransportKind};
    use futures_rustls::rustls;

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new() -> Self {
            use std::hash::{BuildHasher, Hasher};
            loop {
                let random = std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish();
                let path = std::env::temp_dir().join(format!("fahrbahn-proxy-{random:016x}"));
                match std::fs::create_dir(&path) {
                    Ok(()) => return Self(path),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => panic!("cannot create {}: {e}", path.display()),
                }
            }
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn wamp_over_wss_and_rss_through_the_proxy_with_basic_auth() {
        let key = rcgen::generate_simple_self_signed(vec!["router.test".to_owned()]).unwrap();
        let dir = TempDir::new();
        let cert = dir.0.join("cert.pem");
        let key_file = dir.0.join("key.pem");
        std::fs::write(&cert, key.cert.pem()).unwrap();
        std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
        let listener = |kind| {
            let mut l = ListenerConfig::tcp(kind, "127.0.0.1:0");
            l.tls = Some(TlsFiles::new(
                cert.display().to_string(),
                key_file.display().to_string(),
            ));
            l
        };
        let router = Router::builder()
            .realm("realm1")
            .listener(listener(TransportKind::WebSocket))
            .listener(listener(TransportKind::RawSocket))
            .start(&TokioRuntime)
            .await
            .unwrap();
        let mut store = rustls::RootCertStore::empty();
        store.add(key.cert.der().clone()).unwrap();
        let roots = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
        let (proxy_port, log) = tcp_proxy(Some(("bob", "pw"))).await;
        let proxy = Proxy::parse(&format!("http://bob:pw@127.0.0.1:{proxy_port}")).unwrap();
        let mut expected = Vec::new();
        for info in router.listeners() {
            let port = info.address.rsplit_once(':').unwrap().1;
            let url = info.url().replace("127.0.0.1", "router.test");
            let mut options = with_proxy(ProxyConfig::Always(proxy.clone()));
            options.tls = Some(Arc::new(roots.clone()));
            let session = Session::connect_with(&TokioRuntime, &url, options)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            session.leave().await.unwrap();
            expected.push(format!("router.test:{port}"));
        }
        assert!(router.listeners().iter().all(|l| l.tls));
        assert_eq!(*log.lock().unwrap(), expected);
        router.shutdown().await;
    }
}

//! The served router's authorization and exposure settings, end to end on
//! the simulated network: `allowed_origins` with real WebSocket
//! handshakes, roles from the builder and from TOML refusing actions with
//! `wamp.error.not_authorized`, and the configuration checks.

#[allow(dead_code)]
mod sim;

use fahrbahn_core::wamp::router::{Action, Authorization, AuthorizeContext, Authorizer};
use fahrbahn_rt::{
    CallResult, ConfigError, Dict, Error, ListenerConfig, MatchConfig, PermissionConfig,
    RoleConfig, Router, RouterConfig, Session, SessionOptions, TransportKind,
};
use sim::SimNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A WebSocket listener on simulated port 7 accepting these origins.
async fn ws_router(net: &SimNet, origins: &[&str]) -> Router {
    let mut listener = ListenerConfig::tcp(TransportKind::WebSocket, "127.0.0.1:7");
    listener.allowed_origins = Some(origins.iter().map(|s| s.to_string()).collect());
    Router::builder()
        .listener(listener)
        .start(net)
        .await
        .expect("router starts")
}

/// Sends a WebSocket upgrade for WAMP with this `Origin` (none: no
/// header) and returns the response's status code.
async fn handshake_status(net: &SimNet, origin: Option<&str>) -> u16 {
    let mut io = net.dial(7).unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:7\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: wamp.2.json\r\n{origin}\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        if io.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
}

#[tokio::test(start_paused = true)]
async fn allowed_origins_refuse_other_origins_with_403() {
    let net = SimNet::default();
    let router = ws_router(&net, &["https://*.example.com", "http://127.0.0.1:*"]).await;
    assert_eq!(
        handshake_status(&net, Some("https://app.example.com")).await,
        101
    );
    assert_eq!(
        handshake_status(&net, Some("http://127.0.0.1:5173")).await,
        101
    );
    // Non-browser clients send no Origin: accepted.
    assert_eq!(handshake_status(&net, None).await, 101);
    assert_eq!(handshake_status(&net, Some("https://evil.org")).await, 403);
    assert_eq!(
        handshake_status(&net, Some("https://example.com.evil.org")).await,
        403
    );
    // `null` only when listed.
    assert_eq!(handshake_status(&net, Some("null")).await, 403);
    router.shutdown().await;

    let net = SimNet::default();
    let router = ws_router(&net, &["null"]).await;
    assert_eq!(handshake_status(&net, Some("null")).await, 101);
    assert_eq!(
        handshake_status(&net, Some("http://127.0.0.1:8080")).await,
        403
    );
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn without_allowed_origins_every_origin_is_accepted() {
    let net = SimNet::default();
    let router = Router::builder()
        .websocket("127.0.0.1:7")
        .start(&net)
        .await
        .unwrap();
    assert_eq!(handshake_status(&net, Some("https://evil.org")).await, 101);
    assert_eq!(handshake_status(&net, Some("null")).await, 101);
    router.shutdown().await;
}

fn not_authorized(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.not_authorized", "{e:?}"),
        other => panic!("expected wamp.error.not_authorized, got {other:?}"),
    }
}

fn error_uri(result: Result<CallResult, Error>) -> String {
    match result {
        Err(Error::Wamp(e)) => e.error,
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

/// A router whose anonymous sessions have Crossbar's `restricted` role:
/// only call and subscribe under `com.example.`.
const RESTRICTED: &str = r#"
    realms = ["realm1"]

    [[listener]]
    transport = "rawsocket"
    address = "127.0.0.1:7"

    [[role]]
    realm = "realm1"
    name = "anonymous"
    permissions = [
        { uri = "com.example.", match = "prefix", allow = { call = true, subscribe = true } },
    ]
"#;

#[tokio::test(start_paused = true)]
async fn roles_from_toml_refuse_each_action_outside_the_role() {
    let net = SimNet::default();
    let config = RouterConfig::from_toml(RESTRICTED).unwrap();
    let router = Router::builder().config(config).start(&net).await.unwrap();
    assert_eq!(
        router.access(),
        "anonymous access (authrole \"anonymous\"), limited by roles, on 127.0.0.1:7"
    );
    let s = Session::connect_with(&net, "rs://sim:7", SessionOptions::new("realm1"))
        .await
        .unwrap();
    not_authorized(
        s.register("com.example.add2", |_| async { Ok(CallResult::default()) })
            .await,
    );
    let mut ack = Dict::new();
    ack.insert("acknowledge".into(), true.into());
    not_authorized(
        s.publish_with("com.example.topic", vec![], Dict::new(), ack)
            .await,
    );
    not_authorized(s.subscribe("com.other.topic").await);
    assert_eq!(
        error_uri(s.call("com.other.add2", vec![], Dict::new()).await),
        "wamp.error.not_authorized"
    );
    // Inside the role: allowed (nobody registered the procedure).
    assert_eq!(
        error_uri(s.call("com.example.add2", vec![], Dict::new()).await),
        "wamp.error.no_such_procedure"
    );
    s.subscribe("com.example.topic").await.unwrap();
    s.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn roles_from_the_builder_deny_an_undefined_authrole() {
    let net = SimNet::default();
    let mut rule = PermissionConfig::new("", MatchConfig::Prefix);
    rule.allow = fahrbahn_rt::AllowConfig::ALL;
    // Only `user` is defined: anonymous sessions may do nothing.
    let router = Router::builder()
        .rawsocket("127.0.0.1:7")
        .role(RoleConfig::new("realm1", "user").permission(rule))
        .start(&net)
        .await
        .unwrap();
    let s = Session::connect_with(&net, "rs://sim:7", SessionOptions::new("realm1"))
        .await
        .unwrap();
    not_authorized(s.subscribe("com.example.topic").await);
    assert_eq!(
        error_uri(s.call("com.example.add2", vec![], Dict::new()).await),
        "wamp.error.not_authorized"
    );
    s.leave().await.unwrap();
    router.shutdown().await;
}

/// Lets nobody register.
struct NoRegister;

impl Authorizer for NoRegister {
    fn authorize(&mut self, ctx: &AuthorizeContext<'_>) -> Authorization {
        if ctx.action == Action::Register {
            Authorization::Deny
        } else {
            Authorization::ALLOW
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_plugged_authorizer_decides() {
    let net = SimNet::default();
    let router = Router::builder()
        .rawsocket("127.0.0.1:7")
        .authorizer(Box::new(NoRegister))
        .start(&net)
        .await
        .unwrap();
    let s = Session::connect_with(&net, "rs://sim:7", SessionOptions::new("realm1"))
        .await
        .unwrap();
    not_authorized(
        s.register("com.example.add2", |_| async { Ok(CallResult::default()) })
            .await,
    );
    s.subscribe("com.example.topic").await.unwrap();
    s.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn configuration_mistakes_are_refused_at_start() {
    let net = SimNet::default();
    // Beyond loopback without `expose`.
    let err = Router::builder()
        .websocket("0.0.0.0:7")
        .start(&net)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::NotLoopback { ref address }) if address == "0.0.0.0:7"),
        "{err:?}"
    );
    assert!(err.to_string().contains("expose = true"), "{err}");
    // With it, the listener starts (and the access line says so).
    let mut exposed = ListenerConfig::tcp(TransportKind::WebSocket, "0.0.0.0:7");
    exposed.expose = true;
    let router = Router::builder()
        .listener(exposed)
        .start(&net)
        .await
        .unwrap();
    assert!(
        router.access().contains("exposed beyond loopback"),
        "{}",
        router.access()
    );
    router.shutdown().await;
    // Roles and a custom authorizer at once.
    let err = Router::builder()
        .config(RouterConfig::from_toml(RESTRICTED).unwrap())
        .authorizer(Box::new(NoRegister))
        .start(&net)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::RolesAndAuthorizer)),
        "{err:?}"
    );
    // Origins on RawSocket.
    let mut raw = ListenerConfig::tcp(TransportKind::RawSocket, "127.0.0.1:8");
    raw.allowed_origins = Some(vec!["https://example.com".into()]);
    let err = Router::builder()
        .listener(raw)
        .start(&net)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::OriginsNotWebSocket)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_access_line_names_realms_left_open() {
    let net = SimNet::default();
    let mut config = RouterConfig::from_toml(RESTRICTED).unwrap();
    config.realms.push("open".into());
    let router = Router::builder().config(config).start(&net).await.unwrap();
    assert!(
        router
            .access()
            .contains("except in realm(s) open without roles, where anyone who can reach 127.0.0.1:7 has full rights"),
        "{}",
        router.access()
    );
    router.shutdown().await;
}

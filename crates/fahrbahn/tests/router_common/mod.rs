//! Embedded-router scenarios shared by `router_tokio.rs`, `router_smol.rs`
//! and `router_async_std.rs`. Every scenario is generic over
//! [`fahrbahn::runtime::Runtime`]; the files supply the runtime, a `run` function
//! and the transports to cover, through [`router_tests!`].
//!
//! Besides [`fahrbahn::wamp::Session`]s, some scenarios use [`RawClient`]: a
//! client that speaks RawSocket + JSON by hand over the runtime's TCP
//! stream, to misbehave (vanish mid-call, send garbage, oversize frames) or
//! to observe exactly what the router sends.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{Counter, OnDrop, TempDir, poll_until, spawn, timeout};
use fahrbahn::Error;
use fahrbahn::core::wamp::Message as Wamp;
use fahrbahn::runtime::Runtime;
use fahrbahn::wamp::router::{Router, RouterConfig, RouterLimits, TransportKind};
use fahrbahn::wamp::{
    ApplicationError, CallResult, Dict, Serializer, Session, SessionError, SessionOptions, Value,
    kwargs,
};
use fahrbahn::ws::{ClientConfig, Message};
use futures_util::future::{Either, join_all, select};
use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long one awaited step (an answer, an event, a close) may take.
const STEP: Duration = Duration::from_secs(5);

/// Defines the tests: one module per transport (each with every
/// per-transport scenario) plus the transport-independent scenarios.
/// `$run` is a function
/// `fn run<F: Future<Output = ()>>(scenario: impl FnOnce(Rt) -> F)`.
macro_rules! router_tests {
    ($run:ident; $($module:ident => $transport:expr),+ $(,)?) => {
        $(
            mod $module {
                router_tests!(@per_transport $run, $transport;
                    rpc_args_kwargs,
                    many_calls_in_flight,
                    invocations_run_concurrently,
                    error_forwarding,
                    registration_errors,
                    shared_subscription,
                    exclude_me,
                    acknowledge,
                    unsubscribe,
                    callee_killed_mid_call,
                    garbage_is_isolated,
                    oversize_closes_only_that_client,
                    graceful_shutdown,
                    dropped_call_cancels,
                    dropped_call_interrupts_callee,
                    canceled_result_is_not_delivered,
                    dropping_handles_leaves,
                );
            }
        )+
        router_tests!(@plain $run:
            raw_unsubscribe_stops_delivery,
            mixed_serializers_get_the_payload_intact,
            websocket_garbage_is_isolated,
            raw_oversize_frame,
            router_from_toml,
            in_process_sessions,
        );
    };
    (@per_transport $run:ident, $transport:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                super::$run(|rt| crate::router_common::$name(rt, $transport));
            }
        )*
    };
    (@plain $run:ident: $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $run(crate::router_common::$name);
            }
        )*
    };
}

/// [`timeout`] with the default [`STEP`].
async fn step<R: Runtime, F: Future>(rt: &R, what: &str, future: F) -> F::Output {
    timeout(rt, STEP, what, future).await
}

/// Waits until `cond` holds, for router state that is only observable by
/// polling (its connection count: a transport's task ends some time after
/// the peer saw the connection close, with no event a client could await).
/// [`STEP`] is the failure bound, not a synchronisation: see
/// [`poll_until`].
async fn wait_until<R: Runtime>(rt: &R, what: &str, cond: impl FnMut() -> bool) {
    poll_until(rt, STEP, what, cond).await
}

/// A future that completes exactly when `session` closes: it awaits the
/// end of a subscription's stream, which ends when its session ends and not
/// before (the session records its close info, then drops the streams).
async fn closed_probe<R: Runtime>(
    rt: &R,
    session: &Session,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let mut probe = step(
        rt,
        "probe subscription",
        session.subscribe("com.test.closed_probe"),
    )
    .await
    .unwrap();
    Box::pin(async move { while probe.next().await.is_some() {} })
}

// ----- router fixture --------------------------------------------------------

/// How a [`Session`] reaches the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each runtime file covers a subset
pub(crate) enum Transport {
    /// WebSocket, `wamp.2.json`.
    WsJson,
    /// WebSocket, `wamp.2.msgpack.batched`.
    WsMsgPackBatched,
    /// RawSocket over TCP, CBOR.
    RsCbor,
    /// RawSocket over TCP, MessagePack.
    RsMsgPack,
    /// RawSocket over a Unix socket, JSON.
    UnixJson,
    /// RawSocket over a Unix socket, CBOR.
    UnixCbor,
}

impl Transport {
    fn serializer(self) -> (Serializer, bool) {
        match self {
            Transport::WsJson | Transport::UnixJson => (Serializer::Json, false),
            Transport::WsMsgPackBatched => (Serializer::MsgPack, true),
            Transport::RsCbor | Transport::UnixCbor => (Serializer::Cbor, false),
            Transport::RsMsgPack => (Serializer::MsgPack, false),
        }
    }
}

/// A running router with a WebSocket, a RawSocket and a Unix RawSocket
/// listener.
struct Fixture {
    router: Option<Router>,
    ws: String,
    rs: String,
    unix: String,
    /// Holds the Unix socket; removed with the fixture.
    _dir: TempDir,
}

impl Fixture {
    async fn start<R: Runtime>(rt: &R) -> Self {
        Self::start_with(rt, RouterLimits::default()).await
    }

    async fn start_with<R: Runtime>(rt: &R, limits: RouterLimits) -> Self {
        let dir = TempDir::new("fahrbahn-rtest");
        let path = dir.path().join("router.sock");
        let router = Router::builder()
            .realm("realm1")
            .websocket("127.0.0.1:0")
            .rawsocket("127.0.0.1:0")
            .unix(TransportKind::RawSocket, path.to_str().unwrap())
            .limits(limits)
            .start(rt)
            .await
            .expect("router starts");
        let ws = router.websocket_url().expect("a WebSocket listener");
        let rs = router.rawsocket_url().expect("a RawSocket listener");
        let unix = router
            .listeners()
            .iter()
            .find(|l| l.unix)
            .expect("a Unix listener")
            .url();
        assert!(
            ws.starts_with("ws://127.0.0.1:") && ws.ends_with("/ws"),
            "{ws}"
        );
        assert!(rs.starts_with("rs://127.0.0.1:"), "{rs}");
        assert_eq!(unix, format!("unix:{}", path.display()));
        assert_eq!(router.listeners().len(), 3);
        Self {
            router: Some(router),
            ws,
            rs,
            unix,
            _dir: dir,
        }
    }

    fn router(&self) -> &Router {
        self.router.as_ref().expect("router running")
    }

    fn url(&self, transport: Transport) -> &str {
        match transport {
            Transport::WsJson | Transport::WsMsgPackBatched => &self.ws,
            Transport::RsCbor | Transport::RsMsgPack => &self.rs,
            Transport::UnixJson | Transport::UnixCbor => &self.unix,
        }
    }

    /// Connects a session over `transport` and checks the negotiated
    /// serializer.
    async fn session<R: Runtime>(&self, rt: &R, transport: Transport) -> Session {
        let (serializer, batched) = transport.serializer();
        let codec = fahrbahn::wamp::Codec {
            serializer,
            batched,
        };
        let options = SessionOptions::new("realm1").serializer(codec);
        let session = step(
            rt,
            "session joins",
            Session::connect_with(rt, self.url(transport), options),
        )
        .await
        .unwrap_or_else(|e| panic!("{transport:?}: cannot join: {e}"));
        assert_eq!(session.codec(), Some(codec));
        assert!(session.id().0 > 0);
        assert!(!session.is_closed());
        session
    }

    /// A RawSocket + JSON client by hand, joined to `realm1`.
    async fn raw<R: Runtime>(&self, rt: &R, call_canceling: bool) -> RawClient<R::TcpStream> {
        let mut raw = RawClient::connect(rt, &self.rs).await;
        raw.join(rt, call_canceling).await;
        raw
    }
}

/// A callee handler that holds every invocation until the test opens its
/// gate, and reports what happened: invocations `started`, `finished`,
/// and `dropped` before they finished (interrupted).
#[derive(Clone, Default)]
struct Gated {
    started: Counter,
    gate: Counter,
    finished: Counter,
    dropped: Counter,
}

impl Gated {
    /// One invocation: echoes `args` once the gate is open.
    fn invoke(
        &self,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<CallResult, ApplicationError>> + Send + use<> {
        let this = self.clone();
        let guard = OnDrop::new(&self.dropped);
        async move {
            this.started.add();
            this.gate.reached(1).await;
            this.finished.add();
            guard.defuse();
            Ok(CallResult::args(args))
        }
    }
}

fn wamp_error(result: Result<CallResult, Error>) -> ApplicationError {
    match result {
        Err(Error::Wamp(e)) => e,
        other => panic!("expected a WAMP error, got {other:?}"),
    }
}

fn int(v: i64) -> Value {
    Value::from(v)
}

fn string(s: &str) -> Value {
    Value::from(s)
}

// ----- a RawSocket + JSON client by hand ---------------------------------------

/// A RawSocket client over the runtime's TCP stream: handshake
/// `[0x7F, 0xF1, 0, 0]` (JSON, 16 MiB), frames `[type, len24be…] + payload`.
pub(crate) struct RawClient<S> {
    io: S,
    /// The router's maximum message length exponent (from its handshake).
    server_exponent: u8,
}

impl<S> RawClient<S>
where
    S: fahrbahn::runtime::AsyncRead + fahrbahn::runtime::AsyncWrite + Unpin,
{
    async fn connect<R: Runtime<TcpStream = S>>(rt: &R, rs_url: &str) -> Self {
        let hostport = rs_url.strip_prefix("rs://").expect("an rs:// URL");
        let (host, port) = hostport.rsplit_once(':').unwrap();
        let mut io = step(
            rt,
            "raw TCP connect",
            rt.connect_tcp(host, port.parse().unwrap()),
        )
        .await
        .unwrap();
        io.write_all(&[0x7F, 0xF1, 0, 0]).await.unwrap();
        io.flush().await.unwrap();
        let mut reply = [0u8; 4];
        step(rt, "RawSocket handshake reply", io.read_exact(&mut reply))
            .await
            .unwrap();
        assert_eq!(reply[0], 0x7F, "handshake reply {reply:?}");
        assert_eq!(reply[1] & 0x0F, 1, "router picked JSON: {reply:?}");
        Self {
            io,
            server_exponent: reply[1] >> 4,
        }
    }

    async fn send_frame(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len() as u32;
        let header = [kind, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        self.io.write_all(&header).await?;
        self.io.write_all(payload).await?;
        self.io.flush().await
    }

    /// Sends one JSON message.
    async fn send(&mut self, json: &str) {
        self.send_frame(0, json.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("raw send of {json} failed: {e}"));
    }

    /// The next message, `None` at EOF (or a reset connection); answers
    /// pings.
    async fn recv(&mut self) -> Option<Wamp> {
        loop {
            let mut header = [0u8; 4];
            if self.io.read_exact(&mut header).await.is_err() {
                return None;
            }
            let len = (usize::from(header[1]) << 16)
                | (usize::from(header[2]) << 8)
                | usize::from(header[3]);
            let mut payload = vec![0u8; len];
            if self.io.read_exact(&mut payload).await.is_err() {
                return None;
            }
            match header[0] {
                0 => {
                    return Some(
                        Serializer::Json
                            .decode(&payload)
                            .unwrap_or_else(|e| panic!("undecodable frame from the router: {e}")),
                    );
                }
                1 => {
                    let _ = self.send_frame(2, &payload).await;
                }
                2 => {}
                other => panic!("unknown RawSocket frame type {other}"),
            }
        }
    }

    /// The next message, which must arrive within [`STEP`].
    async fn expect<R: Runtime>(&mut self, rt: &R, what: &str) -> Wamp {
        step(rt, what, self.recv())
            .await
            .unwrap_or_else(|| panic!("connection ended while waiting for {what}"))
    }

    /// Reads until EOF (within [`STEP`]) and returns what came before.
    async fn until_closed<R: Runtime>(&mut self, rt: &R) -> Vec<Wamp> {
        step(rt, "the router closes the connection", async {
            let mut seen = Vec::new();
            while let Some(m) = self.recv().await {
                seen.push(m);
            }
            seen
        })
        .await
    }

    async fn join<R: Runtime>(&mut self, rt: &R, call_canceling: bool) -> u64 {
        let callee = if call_canceling {
            r#"{"features":{"call_canceling":true}}"#
        } else {
            "{}"
        };
        self.send(&format!(
            r#"[1,"realm1",{{"roles":{{"caller":{{}},"callee":{callee},"publisher":{{}},"subscriber":{{}}}}}}]"#
        ))
        .await;
        match self.expect(rt, "WELCOME").await {
            Wamp::Welcome { session, .. } => session,
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    /// Registers `procedure` with request id `request`.
    async fn register<R: Runtime>(&mut self, rt: &R, request: u64, procedure: &str) -> u64 {
        self.send(&format!(r#"[64,{request},{{}},"{procedure}"]"#))
            .await;
        match self.expect(rt, "REGISTERED").await {
            Wamp::Registered {
                request: r,
                registration,
            } if r == request => registration,
            other => panic!("expected REGISTERED, got {other:?}"),
        }
    }

    /// Waits for an INVOCATION; returns its request id and args.
    async fn invocation<R: Runtime>(&mut self, rt: &R) -> (u64, Vec<Value>) {
        match self.expect(rt, "INVOCATION").await {
            Wamp::Invocation { request, args, .. } => (request, args.unwrap_or_default()),
            other => panic!("expected INVOCATION, got {other:?}"),
        }
    }
}

// ----- per-transport scenarios -------------------------------------------------

/// RPC with positional and keyword arguments, in both directions between
/// two sessions; WELCOME announces the router roles.
pub(crate) async fn rpc_args_kwargs<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let a = fx.session(&rt, transport).await;
    let b = fx.session(&rt, transport).await;
    assert_ne!(a.id(), b.id());
    let roles = a
        .welcome_details()
        .get("roles")
        .and_then(Value::as_dict)
        .expect("WELCOME roles");
    assert!(
        roles.contains_key("broker") && roles.contains_key("dealer"),
        "{roles:?}"
    );

    // Every registered procedure echoes its arguments back, reversed, and
    // adds who answered.
    for (session, name) in [(&a, "a"), (&b, "b")] {
        session
            .register(&format!("com.test.{name}.echo"), move |inv| async move {
                let mut args = inv.args.clone();
                args.reverse();
                let mut kw = inv.kwargs.clone();
                kw.insert("answered_by".into(), name.into());
                kw.insert("arg_count".into(), int(inv.args.len() as i64));
                Ok(CallResult::new(args, kw))
            })
            .await
            .unwrap();
    }

    let mut nested = Dict::new();
    nested.insert(
        "list".into(),
        Value::List(vec![int(1), string("zwei"), Value::Null]),
    );
    nested.insert("pi".into(), Value::from(3.25));
    let args = vec![
        int(-7),
        string("grüße, 世界 🚗"),
        Value::Bool(true),
        Value::Null,
        Value::from(u64::from(u32::MAX) * 4),
        Value::Dict(nested.clone()),
        Value::List(vec![]),
    ];
    let kw = kwargs([("x", int(1)), ("nested", Value::Dict(nested))]);

    for (caller, callee_name) in [(&a, "b"), (&b, "a")] {
        let result = step(
            &rt,
            "call answered",
            caller.call(
                &format!("com.test.{callee_name}.echo"),
                args.clone(),
                kw.clone(),
            ),
        )
        .await
        .unwrap();
        let mut expected_args = args.clone();
        expected_args.reverse();
        assert_eq!(result.args, expected_args);
        let mut expected_kw = kw.clone();
        expected_kw.insert("answered_by".into(), callee_name.into());
        expected_kw.insert("arg_count".into(), int(args.len() as i64));
        assert_eq!(result.kwargs, expected_kw);
    }

    // No arguments at all, and typed calls.
    let empty = step(
        &rt,
        "call answered",
        a.call("com.test.b.echo", vec![], Dict::new()),
    )
    .await
    .unwrap();
    assert!(empty.args.is_empty());
    assert_eq!(empty.kwargs.get("arg_count"), Some(&int(0)));
    // Two results decode into a pair (the typed-payload mapping).
    let (first, second): (String, String) = step(
        &rt,
        "typed call",
        b.call_typed("com.test.a.echo", &("x", "last")),
    )
    .await
    .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("last", "x"));

    // The callee is disclosed when asked for.
    b.register("com.test.b.who", |inv| async move {
        let caller = inv.details.get("caller").cloned().unwrap_or(Value::Null);
        Ok(CallResult::args(vec![caller]))
    })
    .await
    .unwrap();
    let who = step(
        &rt,
        "disclosed call",
        a.call_with(
            "com.test.b.who",
            vec![],
            Dict::new(),
            kwargs([("disclose_me", true.into())]),
        ),
    )
    .await
    .unwrap();
    assert_eq!(who.args, vec![Value::from(a.id())]);

    a.leave().await.unwrap();
    b.leave().await.unwrap();
}

/// 200 calls in flight at once on one session: the callee holds every
/// invocation until all 200 have arrived (a barrier, so all are in flight
/// at the same time), then answers them in a scrambled order: every
/// answer matches its call.
pub(crate) async fn many_calls_in_flight<R: Runtime>(rt: R, transport: Transport) {
    const N: usize = 200;
    /// Call `n` is answered as the `rank(n)`-th: a permutation of 0..N
    /// (77 is coprime to 200), far from call order.
    fn rank(n: i64) -> usize {
        (n as usize * 77) % N
    }
    let fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, transport).await;
    let caller = fx.session(&rt, transport).await;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (arrived, answered) = (Counter::new(), Counter::new());
    let (in_flight2, peak2) = (in_flight.clone(), peak.clone());
    let (arrived2, answered2) = (arrived.clone(), answered.clone());
    callee
        .register("com.test.double", move |inv| {
            let (in_flight, peak) = (in_flight2.clone(), peak2.clone());
            let (arrived, answered) = (arrived2.clone(), answered2.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let (n,): (i64,) = inv.decode()?;
                // The barrier: invocations that were not all in flight at
                // once would never get past it (and the step times out).
                arrived.add();
                arrived.reached(N).await;
                // Answer in rank order.
                answered.reached(rank(n)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                answered.add();
                Ok(CallResult::new(
                    vec![int(n * 2)],
                    kwargs([
                        ("n", int(n)),
                        ("tag", inv.kwargs.get("tag").cloned().unwrap_or(Value::Null)),
                    ]),
                ))
            }
        })
        .await
        .unwrap();

    let calls = (0..N as i64).map(|n| {
        let caller = &caller;
        async move {
            let tag = format!("call-{n}");
            let r = caller
                .call(
                    "com.test.double",
                    vec![int(n)],
                    kwargs([("tag", tag.as_str().into())]),
                )
                .await
                .unwrap_or_else(|e| panic!("call {n} failed: {e}"));
            (n, tag, r)
        }
    });
    let results = step(&rt, "200 concurrent calls", join_all(calls)).await;
    for (n, tag, r) in results {
        assert_eq!(r.args, vec![int(n * 2)], "call {n}");
        assert_eq!(r.kwargs.get("n"), Some(&int(n)), "call {n}");
        assert_eq!(r.kwargs.get("tag"), Some(&Value::from(tag)), "call {n}");
    }
    assert_eq!(peak.load(Ordering::SeqCst), N, "all invocations overlapped");
    assert_eq!(arrived.get(), N);
    assert_eq!(answered.get(), N);
    assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
}

/// Two invocations of one callee run at the same time: each handler waits
/// until both have started (a barrier of two). Run one after the other,
/// the first would wait forever and the step would time out.
pub(crate) async fn invocations_run_concurrently<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, transport).await;
    let caller = fx.session(&rt, transport).await;
    let started = Counter::new();
    let started2 = started.clone();
    callee
        .register("com.test.slow", move |inv| {
            let started = started2.clone();
            async move {
                started.add();
                started.reached(2).await;
                Ok(CallResult::args(inv.args))
            }
        })
        .await
        .unwrap();
    let (one, two) = step(
        &rt,
        "two calls whose handlers wait for each other",
        futures_util::future::join(
            caller.call("com.test.slow", vec![int(1)], Dict::new()),
            caller.call("com.test.slow", vec![int(2)], Dict::new()),
        ),
    )
    .await;
    assert_eq!(one.unwrap().args, vec![int(1)]);
    assert_eq!(two.unwrap().args, vec![int(2)]);
    assert_eq!(started.get(), 2);
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
}

/// A callee's error URI, args and kwargs reach the caller unchanged.
pub(crate) async fn error_forwarding<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, transport).await;
    let caller = fx.session(&rt, transport).await;
    callee
        .register("com.test.divide", |inv| async move {
            let (a, b): (f64, f64) = inv.decode()?;
            if b == 0.0 {
                return Err(ApplicationError::new("com.test.error.division_by_zero")
                    .with_args(vec![string("cannot divide by zero"), int(42)])
                    .with_kwargs(kwargs([
                        ("dividend", a.into()),
                        ("hint", "use b != 0".into()),
                    ])));
            }
            Ok(CallResult::args(vec![(a / b).into()]))
        })
        .await
        .unwrap();
    let ok = step(
        &rt,
        "call",
        caller.call("com.test.divide", vec![int(9), int(2)], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(ok.args, vec![Value::from(4.5)]);

    let e = wamp_error(
        step(
            &rt,
            "failing call",
            caller.call("com.test.divide", vec![int(1), int(0)], Dict::new()),
        )
        .await,
    );
    assert_eq!(e.error, "com.test.error.division_by_zero");
    assert_eq!(e.args, vec![string("cannot divide by zero"), int(42)]);
    assert_eq!(e.kwargs.get("dividend"), Some(&Value::from(1.0)));
    assert_eq!(e.kwargs.get("hint"), Some(&string("use b != 0")));
    assert_eq!(e.kwargs.len(), 2);

    // Arguments the handler cannot decode: the session's own error URI.
    let e = wamp_error(
        step(
            &rt,
            "bad args call",
            caller.call("com.test.divide", vec![string("x")], Dict::new()),
        )
        .await,
    );
    assert_eq!(e.error, "wamp.error.invalid_argument");

    // Both sessions still work.
    let ok = step(
        &rt,
        "call",
        caller.call("com.test.divide", vec![int(1), int(4)], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(ok.args, vec![Value::from(0.25)]);
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
}

/// no_such_procedure, procedure_already_exists, and unregister → call →
/// no_such_procedure.
pub(crate) async fn registration_errors<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let a = fx.session(&rt, transport).await;
    let b = fx.session(&rt, transport).await;

    let e = wamp_error(step(&rt, "call", b.call("com.test.nobody", vec![], Dict::new())).await);
    assert_eq!(e.error, "wamp.error.no_such_procedure");

    let reg = a
        .register("com.test.proc", |_| async {
            Ok(CallResult::args(vec![string("a")]))
        })
        .await
        .unwrap();
    match step(
        &rt,
        "second register",
        b.register("com.test.proc", |_| async {
            Ok(CallResult::args(vec![string("b")]))
        }),
    )
    .await
    {
        Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.procedure_already_exists"),
        other => panic!("expected procedure_already_exists, got {other:?}"),
    }
    // The same session cannot register it twice either.
    match step(
        &rt,
        "register again",
        a.register("com.test.proc", |_| async { Ok(CallResult::default()) }),
    )
    .await
    {
        Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.procedure_already_exists"),
        other => panic!("expected procedure_already_exists, got {other:?}"),
    }
    let r = step(&rt, "call", b.call("com.test.proc", vec![], Dict::new()))
        .await
        .unwrap();
    assert_eq!(r.args, vec![string("a")]);

    step(&rt, "unregister", a.unregister(reg.clone()))
        .await
        .unwrap();
    let e = wamp_error(step(&rt, "call", b.call("com.test.proc", vec![], Dict::new())).await);
    assert_eq!(e.error, "wamp.error.no_such_procedure");
    // Unregistering twice fails at the router.
    match step(&rt, "unregister again", a.unregister(reg)).await {
        Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.no_such_registration"),
        other => panic!("expected no_such_registration, got {other:?}"),
    }

    // Now b may take the procedure over.
    b.register("com.test.proc", |_| async {
        Ok(CallResult::args(vec![string("b")]))
    })
    .await
    .unwrap();
    let r = step(&rt, "call", a.call("com.test.proc", vec![], Dict::new()))
        .await
        .unwrap();
    assert_eq!(r.args, vec![string("b")]);
    a.leave().await.unwrap();
    b.leave().await.unwrap();
}

/// Two subscribers on one topic share one subscription id and both get
/// every event, with its payload and publication id.
pub(crate) async fn shared_subscription<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let s1 = fx.session(&rt, transport).await;
    let s2 = fx.session(&rt, transport).await;
    let publisher = fx.session(&rt, transport).await;
    let mut e1 = s1.subscribe("com.test.topic").await.unwrap();
    let mut e2 = s2.subscribe("com.test.topic").await.unwrap();
    let other = s2.subscribe("com.test.other").await.unwrap();
    assert_eq!(e1.id, e2.id, "one subscription id per topic");
    assert_ne!(e1.id, other.id);

    for n in 0..5i64 {
        publisher
            .publish_with(
                "com.test.topic",
                vec![int(n), string("payload")],
                kwargs([("n", int(n))]),
                kwargs([("acknowledge", true.into())]),
            )
            .await
            .unwrap();
    }
    for n in 0..5i64 {
        let a = step(&rt, "event at s1", e1.next())
            .await
            .expect("subscription open");
        let b = step(&rt, "event at s2", e2.next())
            .await
            .expect("subscription open");
        assert_eq!(a.args, vec![int(n), string("payload")]);
        assert_eq!(a.kwargs.get("n"), Some(&int(n)));
        assert_eq!(a.publication, b.publication);
        assert_eq!(a.args, b.args);
        assert_eq!(a.kwargs, b.kwargs);
    }
    other.unsubscribe().await.unwrap();
    for s in [s1, s2, publisher] {
        s.leave().await.unwrap();
    }
}

/// `exclude_me` defaults to true; `exclude_me: false` delivers to the
/// publisher's own subscription.
pub(crate) async fn exclude_me<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let me = fx.session(&rt, transport).await;
    let other = fx.session(&rt, transport).await;
    let mut mine = me.subscribe("com.test.topic").await.unwrap();
    let mut theirs = other.subscribe("com.test.topic").await.unwrap();

    let ack = kwargs([("acknowledge", true.into())]);
    me.publish_with(
        "com.test.topic",
        vec![string("default")],
        Dict::new(),
        ack.clone(),
    )
    .await
    .unwrap();
    let mut opts = ack.clone();
    opts.insert("exclude_me".into(), false.into());
    me.publish_with(
        "com.test.topic",
        vec![string("include me")],
        Dict::new(),
        opts,
    )
    .await
    .unwrap();
    let mut opts = ack;
    opts.insert("exclude_me".into(), true.into());
    me.publish_with(
        "com.test.topic",
        vec![string("exclude me")],
        Dict::new(),
        opts,
    )
    .await
    .unwrap();

    // The other subscriber gets all three, in order.
    for expected in ["default", "include me", "exclude me"] {
        let e = step(&rt, "event at the other subscriber", theirs.next())
            .await
            .unwrap();
        assert_eq!(e.args, vec![string(expected)]);
    }
    // The publisher only the one with exclude_me false (events from one
    // publisher arrive in order, so anything else would come first).
    let e = step(&rt, "own event", mine.next()).await.unwrap();
    assert_eq!(e.args, vec![string("include me")]);
    // A marker from the other session proves nothing else is queued.
    other
        .publish_with(
            "com.test.topic",
            vec![string("marker")],
            Dict::new(),
            kwargs([("acknowledge", true.into())]),
        )
        .await
        .unwrap();
    let e = step(&rt, "marker", mine.next()).await.unwrap();
    assert_eq!(e.args, vec![string("marker")]);
    me.leave().await.unwrap();
    other.leave().await.unwrap();
}

/// `acknowledge: true` waits for PUBLISHED (also without subscribers);
/// refused publications fail with the router's error.
pub(crate) async fn acknowledge<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let publisher = fx.session(&rt, transport).await;
    let subscriber = fx.session(&rt, transport).await;
    let ack = kwargs([("acknowledge", true.into())]);
    step(
        &rt,
        "acknowledged publish without subscribers",
        publisher.publish_with("com.test.nobody", vec![], Dict::new(), ack.clone()),
    )
    .await
    .unwrap();
    let mut events = subscriber.subscribe("com.test.topic").await.unwrap();
    step(
        &rt,
        "acknowledged publish",
        publisher.publish_with("com.test.topic", vec![int(1)], Dict::new(), ack.clone()),
    )
    .await
    .unwrap();
    // Fire-and-forget publishes arrive too, in order.
    publisher
        .publish("com.test.topic", vec![int(2)], Dict::new())
        .await
        .unwrap();
    for n in [1, 2] {
        let e = step(&rt, "event", events.next()).await.unwrap();
        assert_eq!(e.args, vec![int(n)]);
    }
    // A refused publication (bad option type) fails only when acknowledged.
    let mut bad = ack.clone();
    bad.insert("exclude_me".into(), string("not a bool"));
    match step(
        &rt,
        "refused publish",
        publisher.publish_with("com.test.topic", vec![], Dict::new(), bad),
    )
    .await
    {
        Err(Error::Wamp(e)) => assert!(e.error.starts_with("wamp.error."), "{e:?}"),
        Ok(()) => {
            // Tolerated: then the event must have been delivered.
            let e = step(&rt, "event", events.next()).await.unwrap();
            assert!(e.args.is_empty());
        }
        Err(other) => panic!("expected a WAMP error, got {other:?}"),
    }
    publisher.leave().await.unwrap();
    subscriber.leave().await.unwrap();
}

/// Unsubscribing: with two handles on one topic the other keeps receiving;
/// after the last one the router stops delivering to this session.
pub(crate) async fn unsubscribe<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let sub = fx.session(&rt, transport).await;
    let publisher = fx.session(&rt, transport).await;
    let watcher = fx.session(&rt, transport).await;
    let ack = || kwargs([("acknowledge", true.into())]);
    let h1 = sub.subscribe("com.test.topic").await.unwrap();
    let mut h2 = sub.subscribe("com.test.topic").await.unwrap();
    let mut marker = sub.subscribe("com.test.marker").await.unwrap();
    let mut watched = watcher.subscribe("com.test.topic").await.unwrap();
    assert_eq!(h1.id, h2.id);
    step(&rt, "unsubscribe first handle", h1.unsubscribe())
        .await
        .unwrap();
    publisher
        .publish_with("com.test.topic", vec![int(1)], Dict::new(), ack())
        .await
        .unwrap();
    assert_eq!(
        step(&rt, "event at h2", h2.next()).await.unwrap().args,
        vec![int(1)]
    );
    assert_eq!(
        step(&rt, "event at watcher", watched.next())
            .await
            .unwrap()
            .args,
        vec![int(1)]
    );

    step(&rt, "unsubscribe last handle", h2.unsubscribe())
        .await
        .unwrap();
    publisher
        .publish_with("com.test.topic", vec![int(2)], Dict::new(), ack())
        .await
        .unwrap();
    publisher
        .publish_with("com.test.marker", vec![int(3)], Dict::new(), ack())
        .await
        .unwrap();
    assert_eq!(
        step(&rt, "event at watcher", watched.next())
            .await
            .unwrap()
            .args,
        vec![int(2)]
    );
    assert_eq!(
        step(&rt, "marker", marker.next()).await.unwrap().args,
        vec![int(3)]
    );

    // Subscribing again works and receives new events only.
    let mut again = sub.subscribe("com.test.topic").await.unwrap();
    publisher
        .publish_with("com.test.topic", vec![int(4)], Dict::new(), ack())
        .await
        .unwrap();
    assert_eq!(
        step(&rt, "event after resubscribe", again.next())
            .await
            .unwrap()
            .args,
        vec![int(4)]
    );
    for s in [sub, publisher, watcher] {
        s.leave().await.unwrap();
    }
}

/// A raw callee registers, receives an INVOCATION and drops its socket:
/// the pending call fails with `wamp.error.canceled`, the caller keeps
/// working.
pub(crate) async fn callee_killed_mid_call<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let mut raw = fx.raw(&rt, false).await;
    raw.register(&rt, 1, "com.test.raw").await;
    let caller = fx.session(&rt, transport).await;
    let c = caller.clone();
    let call = spawn(&rt, async move {
        c.call("com.test.raw", vec![int(7)], kwargs([("k", string("v"))]))
            .await
    });
    let (_, args) = raw.invocation(&rt).await;
    assert_eq!(args, vec![int(7)]);
    drop(raw); // the callee vanishes without a word
    let e = wamp_error(step(&rt, "the pending call fails", call).await);
    assert_eq!(e.error, "wamp.error.canceled");

    // The caller keeps working; the procedure is gone with its callee.
    let e = wamp_error(
        step(
            &rt,
            "call",
            caller.call("com.test.raw", vec![], Dict::new()),
        )
        .await,
    );
    assert_eq!(e.error, "wamp.error.no_such_procedure");
    caller
        .register("com.test.raw", |_| async {
            Ok(CallResult::args(vec![string("back")]))
        })
        .await
        .unwrap();
    let r = step(
        &rt,
        "call",
        caller.call("com.test.raw", vec![], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![string("back")]);
    wait_until(&rt, "the raw connection is gone", || {
        fx.router().connection_count() == 1
    })
    .await;
    caller.leave().await.unwrap();
}

/// A client sending an undecodable frame gets ABORT
/// (`wamp.error.protocol_violation`) and is closed; other sessions keep
/// working, before, during and after.
pub(crate) async fn garbage_is_isolated<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, transport).await;
    let caller = fx.session(&rt, transport).await;
    let mut events = callee.subscribe("com.test.topic").await.unwrap();
    callee
        .register("com.test.add", |inv| async move {
            let (a, b): (i64, i64) = inv.decode()?;
            Ok(CallResult::args(vec![int(a + b)]))
        })
        .await
        .unwrap();
    let mut raw = fx.raw(&rt, false).await;
    // The raw session sees the others: it may call their procedures.
    raw.send(r#"[48,1,{},"com.test.add",[1,2]]"#).await;
    match raw.expect(&rt, "RESULT").await {
        Wamp::Result {
            request: 1, args, ..
        } => assert_eq!(args, Some(vec![int(3)])),
        other => panic!("expected RESULT, got {other:?}"),
    }
    raw.send_frame(0, b"\x00\xffnot json at all{")
        .await
        .unwrap();
    let seen = raw.until_closed(&rt).await;
    match seen.as_slice() {
        [Wamp::Abort { reason, .. }] => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT then close, got {other:?}"),
    }
    // A second one, with a well-formed frame that is no WAMP message.
    let mut raw = fx.raw(&rt, false).await;
    raw.send(r#"{"not": "a message"}"#).await;
    let seen = raw.until_closed(&rt).await;
    assert!(
        matches!(seen.as_slice(), [Wamp::Abort { reason, .. }] if reason == "wamp.error.protocol_violation"),
        "{seen:?}"
    );

    for n in 0..3 {
        let r = step(
            &rt,
            "call",
            caller.call("com.test.add", vec![int(n), int(1)], Dict::new()),
        )
        .await
        .unwrap();
        assert_eq!(r.args, vec![int(n + 1)]);
    }
    caller
        .publish_with(
            "com.test.topic",
            vec![string("still here")],
            Dict::new(),
            kwargs([("acknowledge", true.into())]),
        )
        .await
        .unwrap();
    assert_eq!(
        step(&rt, "event", events.next()).await.unwrap().args,
        vec![string("still here")]
    );
    assert!(!callee.is_closed() && !caller.is_closed());
    wait_until(&rt, "raw connections are gone", || {
        fx.router().connection_count() == 2
    })
    .await;
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
}

/// A message over `max_message_size` ends only the session that sent it
/// (WebSocket); over RawSocket, where the router announces its maximum,
/// our session refuses such a CALL at once and goes on.
pub(crate) async fn oversize_closes_only_that_client<R: Runtime>(rt: R, transport: Transport) {
    const MAX: usize = 64 * 1024;
    let mut limits = RouterLimits::default();
    limits.max_message_size = MAX;
    let fx = Fixture::start_with(&rt, limits).await;
    let callee = fx.session(&rt, transport).await;
    let offender = fx.session(&rt, transport).await;
    let bystander = fx.session(&rt, transport).await;
    callee
        .register("com.test.len", |inv| async move {
            let s = inv.args.first().and_then(Value::as_str).unwrap_or("").len();
            Ok(CallResult::args(vec![int(s as i64)]))
        })
        .await
        .unwrap();
    // Within the limit: fine.
    let r = step(
        &rt,
        "call within the limit",
        offender.call(
            "com.test.len",
            vec!["x".repeat(MAX / 2).into()],
            Dict::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![int((MAX / 2) as i64)]);
    if !matches!(transport, Transport::WsJson | Transport::WsMsgPackBatched) {
        // RawSocket: the router announced its maximum, so our session
        // refuses the call at once, sends nothing, and goes on.
        let result = offender
            .call(
                "com.test.len",
                vec!["y".repeat(MAX + 1000).into()],
                Dict::new(),
            )
            .await;
        assert!(
            matches!(
                result,
                Err(Error::Command(fahrbahn::wamp::CommandError::PayloadTooLarge { size, max }))
                    if size > MAX && max == MAX
            ),
            "{result:?}"
        );
        let r = step(
            &rt,
            "the offender goes on",
            offender.call("com.test.len", vec!["abc".into()], Dict::new()),
        )
        .await
        .unwrap();
        assert_eq!(r.args, vec![int(3)]);
        for s in [offender, bystander, callee] {
            s.leave().await.unwrap();
        }
        return;
    }
    // Over it: that session ends.
    let offender_closed = closed_probe(&rt, &offender).await;
    let result = step(
        &rt,
        "oversize call ends",
        offender.call(
            "com.test.len",
            vec!["y".repeat(MAX + 1000).into()],
            Dict::new(),
        ),
    )
    .await;
    assert!(
        matches!(
            result,
            Err(Error::SessionClosed(_)) | Err(Error::Session(_))
        ),
        "{result:?}"
    );
    step(&rt, "the offender is closed", offender_closed).await;
    assert!(offender.is_closed());
    let info = offender.close_info().unwrap();
    assert!(info.error.is_some(), "an abnormal end: {info:?}");
    // Errors are sticky: later commands fail with the same reason.
    assert!(matches!(
        offender.call("com.test.len", vec![], Dict::new()).await,
        Err(Error::Session(_))
    ));
    wait_until(&rt, "the router dropped the offender", || {
        fx.router().connection_count() == 2
    })
    .await;
    // The others are unaffected.
    let r = step(
        &rt,
        "bystander call",
        bystander.call("com.test.len", vec!["abc".into()], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![int(3)]);
    assert!(!callee.is_closed() && !bystander.is_closed());
    bystander.leave().await.unwrap();
    callee.leave().await.unwrap();
}

/// `Router::shutdown` says GOODBYE (`wamp.close.system_shutdown`) to every
/// session: they close, their streams end, pending calls fail, and the
/// listeners are gone.
pub(crate) async fn graceful_shutdown<R: Runtime>(rt: R, transport: Transport) {
    let mut fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, transport).await;
    let caller = fx.session(&rt, transport).await;
    let subscriber = fx.session(&rt, transport).await;
    let mut events = subscriber.subscribe("com.test.topic").await.unwrap();
    // The handler never finishes on its own: it waits on a gate nobody
    // opens, until the session's end drops it.
    let forever = Gated::default();
    let f2 = forever.clone();
    callee
        .register("com.test.forever", move |inv| f2.invoke(inv.args))
        .await
        .unwrap();
    let mut probes = Vec::new();
    for s in [&callee, &caller] {
        probes.push(closed_probe(&rt, s).await);
    }
    let c = caller.clone();
    let pending = spawn(&rt, async move {
        c.call("com.test.forever", vec![], Dict::new()).await
    });
    step(
        &rt,
        "the call reaches the callee",
        forever.started.reached(1),
    )
    .await;
    assert_eq!(fx.router().connection_count(), 3);

    let router = fx.router.take().unwrap();
    step(&rt, "shutdown", router.shutdown()).await;

    let result = step(&rt, "the pending call fails", pending).await;
    assert!(
        matches!(result, Err(Error::SessionClosed(_)) | Err(Error::Wamp(_))),
        "{result:?}"
    );
    assert_eq!(
        step(&rt, "the subscription ends", events.next()).await,
        None
    );
    for probe in probes {
        step(&rt, "the session is closed", probe).await;
    }
    // The callee's end dropped the handler that was still running.
    step(
        &rt,
        "the running handler is dropped",
        forever.dropped.reached(1),
    )
    .await;
    assert_eq!(forever.finished.get(), 0);
    for s in [&callee, &caller, &subscriber] {
        assert!(s.is_closed());
        let info = s.close_info().expect("close info");
        assert_eq!(info.reason, "wamp.close.system_shutdown", "{info:?}");
        assert!(info.by_router, "{info:?}");
        assert_eq!(info.error, None, "a clean GOODBYE exchange: {info:?}");
        assert!(matches!(
            s.call("com.test.forever", vec![], Dict::new()).await,
            Err(Error::SessionClosed(_))
        ));
        // leave() on an ended session returns at once.
        step(&rt, "leave after shutdown", s.leave()).await.unwrap();
    }
    // Nobody listens any more.
    let again = step(
        &rt,
        "connect after shutdown",
        Session::connect(&rt, fx.url(transport), "realm1"),
    )
    .await;
    assert!(again.is_err(), "{again:?}");
}

/// Dropping a call future cancels the call: the callee's handler is
/// interrupted (dropped, it never finishes), the caller keeps working and
/// the canceled call's answer does not confuse it.
pub(crate) async fn dropped_call_cancels<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, transport).await;
    let caller = fx.session(&rt, transport).await;
    // Every invocation waits on the gate before it answers; the test opens
    // it only after the first call was canceled.
    let slow = Gated::default();
    let s2 = slow.clone();
    callee
        .register("com.test.slow", move |inv| s2.invoke(inv.args))
        .await
        .unwrap();
    let Gated {
        started,
        gate,
        finished,
        dropped,
    } = slow;
    {
        let call = pin!(caller.call("com.test.slow", vec![string("dropped")], Dict::new()));
        let arrived = pin!(step(&rt, "the call reaches the callee", started.reached(1)));
        match select(call, arrived).await {
            Either::Left((r, _)) => panic!("the slow call answered early: {r:?}"),
            Either::Right(((), _)) => {}
        }
    } // the call future is dropped here: CANCEL
    // The canceled invocation's handler is interrupted: dropped before it
    // finished.
    step(
        &rt,
        "the interrupted handler is dropped",
        dropped.reached(1),
    )
    .await;
    assert_eq!(started.get(), 1);
    assert_eq!(finished.get(), 0, "the interrupted handler was stopped");
    gate.add();
    // A new call works and gets its own answer, not the canceled one's.
    let r = step(
        &rt,
        "next call",
        caller.call("com.test.slow", vec![string("kept")], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![string("kept")]);
    let r = step(
        &rt,
        "another call",
        caller.call("com.test.slow", vec![int(3)], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![int(3)]);
    // Only the two kept calls' handlers ever finished.
    assert_eq!((started.get(), finished.get(), dropped.get()), (3, 2, 1));
    assert!(!caller.is_closed() && !callee.is_closed());
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
}

/// Dropping a call future sends CANCEL: a (raw) callee that announced
/// call canceling gets INTERRUPT for exactly that invocation; its late
/// YIELD is dropped by the router.
pub(crate) async fn dropped_call_interrupts_callee<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let mut raw = fx.raw(&rt, true).await;
    raw.register(&rt, 1, "com.test.raw").await;
    let caller = fx.session(&rt, transport).await;
    let invocation = {
        let call = pin!(caller.call("com.test.raw", vec![int(1)], Dict::new()));
        let inv = pin!(raw.invocation(&rt));
        match select(call, inv).await {
            Either::Left((r, _)) => panic!("the call answered without its callee: {r:?}"),
            Either::Right(((request, args), _)) => {
                assert_eq!(args, vec![int(1)]);
                request
            }
        }
    }; // the call future is dropped here
    match raw.expect(&rt, "INTERRUPT").await {
        Wamp::Interrupt { request, options } => {
            assert_eq!(request, invocation);
            assert_eq!(
                options.get("mode"),
                Some(&string("killnowait")),
                "{options:?}"
            );
        }
        other => panic!("expected INTERRUPT, got {other:?}"),
    }
    // A late answer is dropped; the next call gets its own.
    raw.send(&format!(r#"[70,{invocation},{{}},["late"]]"#))
        .await;
    let c = caller.clone();
    let next = spawn(&rt, async move {
        c.call("com.test.raw", vec![int(2)], Dict::new()).await
    });
    let (request, args) = raw.invocation(&rt).await;
    assert_ne!(request, invocation);
    assert_eq!(args, vec![int(2)]);
    raw.send(&format!(r#"[70,{request},{{}},["on time"]]"#))
        .await;
    let r = step(&rt, "next call", next).await.unwrap();
    assert_eq!(r.args, vec![string("on time")]);
    caller.leave().await.unwrap();
}

/// A (raw) caller cancels: it gets `wamp.error.canceled` at once, and the
/// callee's later result is never delivered to it.
pub(crate) async fn canceled_result_is_not_delivered<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, transport).await;
    // The slow handler waits on a gate nobody opens: it can only end by
    // being interrupted (dropped).
    let slow = Gated::default();
    let s2 = slow.clone();
    callee
        .register("com.test.slow", move |inv| s2.invoke(inv.args))
        .await
        .unwrap();
    callee
        .register("com.test.fast", |inv| async move {
            Ok(CallResult::args(inv.args))
        })
        .await
        .unwrap();
    let mut raw = fx.raw(&rt, false).await;
    raw.send(r#"[48,1,{},"com.test.slow",["slow"]]"#).await;
    step(&rt, "the call reaches the callee", slow.started.reached(1)).await;
    raw.send(r#"[49,1,{}]"#).await;
    match raw.expect(&rt, "ERROR for the canceled call").await {
        Wamp::Error {
            request_type: 48,
            request: 1,
            error,
            ..
        } => assert_eq!(error, "wamp.error.canceled"),
        other => panic!("expected ERROR canceled, got {other:?}"),
    }
    // The callee's handler was interrupted: dropped before it finished,
    // and no late RESULT reaches the caller.
    step(
        &rt,
        "the interrupted handler is dropped",
        slow.dropped.reached(1),
    )
    .await;
    assert_eq!(
        (slow.started.get(), slow.finished.get()),
        (1, 0),
        "the interrupted handler was stopped"
    );
    raw.send(r#"[48,2,{},"com.test.fast",["fast"]]"#).await;
    match raw.expect(&rt, "RESULT of the second call").await {
        Wamp::Result {
            request: 2, args, ..
        } => assert_eq!(args, Some(vec![string("fast")])),
        other => panic!("expected RESULT for request 2 only, got {other:?}"),
    }
    // Canceling an answered call is a no-op.
    raw.send(r#"[49,2,{}]"#).await;
    raw.send(r#"[48,3,{},"com.test.fast",[3]]"#).await;
    match raw.expect(&rt, "RESULT of the third call").await {
        Wamp::Result {
            request: 3, args, ..
        } => assert_eq!(args, Some(vec![int(3)])),
        other => panic!("expected RESULT for request 3, got {other:?}"),
    }
    assert!(!callee.is_closed());
    callee.leave().await.unwrap();
}

/// Dropping every handle of a session (clones, subscriptions) leaves it:
/// the router's connection count goes back to zero.
pub(crate) async fn dropping_handles_leaves<R: Runtime>(rt: R, transport: Transport) {
    let fx = Fixture::start(&rt).await;
    let a = fx.session(&rt, transport).await;
    let b = fx.session(&rt, transport).await;
    assert_eq!(fx.router().connection_count(), 2);
    let a2 = a.clone();
    let sub = a.subscribe("com.test.topic").await.unwrap();
    a.register("com.test.a", |_| async { Ok(CallResult::default()) })
        .await
        .unwrap();
    drop(a);
    // Still alive through the clone and the subscription.
    step(&rt, "call", b.call("com.test.a", vec![], Dict::new()))
        .await
        .unwrap();
    drop(a2);
    step(&rt, "call", b.call("com.test.a", vec![], Dict::new()))
        .await
        .unwrap();
    drop(sub);
    // Now a leaves: its procedure is gone. a's leaving is not observable
    // from b but through the router, so b calls until the router says
    // so; each round is a full call, answered by the router (no timer
    // between rounds). STEP bounds the whole wait as a failure bound.
    step(&rt, "a leaves: its procedure is gone", async {
        loop {
            match step(&rt, "call", b.call("com.test.a", vec![], Dict::new())).await {
                Err(Error::Wamp(e)) if e.error == "wamp.error.no_such_procedure" => break,
                // Answered before a left, or canceled because it left meanwhile.
                Ok(_) => {}
                Err(Error::Wamp(e)) if e.error == "wamp.error.canceled" => {}
                other => panic!("a did not leave: {other:?}"),
            }
        }
    })
    .await;
    wait_until(&rt, "a's transport is closed", || {
        fx.router().connection_count() == 1
    })
    .await;
    drop(b);
    wait_until(&rt, "no connections left", || {
        fx.router().connection_count() == 0
    })
    .await;
}

// ----- transport-independent scenarios ----------------------------------------

/// At the router: after UNSUBSCRIBED no EVENT for that subscription is
/// sent (observed by a raw client).
pub(crate) async fn raw_unsubscribe_stops_delivery<R: Runtime>(rt: R) {
    let fx = Fixture::start(&rt).await;
    let publisher = fx.session(&rt, Transport::WsJson).await;
    let mut raw = fx.raw(&rt, false).await;
    raw.send(r#"[32,1,{},"com.test.topic"]"#).await;
    let topic = match raw.expect(&rt, "SUBSCRIBED").await {
        Wamp::Subscribed {
            request: 1,
            subscription,
        } => subscription,
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    };
    raw.send(r#"[32,2,{},"com.test.marker"]"#).await;
    let marker = match raw.expect(&rt, "SUBSCRIBED").await {
        Wamp::Subscribed {
            request: 2,
            subscription,
        } => subscription,
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    };
    let ack = || kwargs([("acknowledge", true.into())]);
    publisher
        .publish_with("com.test.topic", vec![int(1)], Dict::new(), ack())
        .await
        .unwrap();
    match raw.expect(&rt, "EVENT").await {
        Wamp::Event {
            subscription, args, ..
        } => {
            assert_eq!(subscription, topic);
            assert_eq!(args, Some(vec![int(1)]));
        }
        other => panic!("expected EVENT, got {other:?}"),
    }
    raw.send(&format!("[34,3,{topic}]")).await;
    assert!(matches!(
        raw.expect(&rt, "UNSUBSCRIBED").await,
        Wamp::Unsubscribed { request: 3, .. }
    ));
    publisher
        .publish_with("com.test.topic", vec![int(2)], Dict::new(), ack())
        .await
        .unwrap();
    publisher
        .publish_with("com.test.marker", vec![int(3)], Dict::new(), ack())
        .await
        .unwrap();
    match raw.expect(&rt, "the marker EVENT only").await {
        Wamp::Event {
            subscription, args, ..
        } => {
            assert_eq!(subscription, marker, "an EVENT after UNSUBSCRIBED");
            assert_eq!(args, Some(vec![int(3)]));
        }
        other => panic!("expected EVENT, got {other:?}"),
    }
    // Unsubscribing again: no_such_subscription.
    raw.send(&format!("[34,4,{topic}]")).await;
    match raw.expect(&rt, "ERROR").await {
        Wamp::Error {
            request: 4, error, ..
        } => assert_eq!(error, "wamp.error.no_such_subscription"),
        other => panic!("expected ERROR, got {other:?}"),
    }
    // A clean GOODBYE from the raw client.
    raw.send(r#"[6,{},"wamp.close.close_realm"]"#).await;
    match raw.expect(&rt, "GOODBYE").await {
        Wamp::Goodbye { reason, .. } => assert_eq!(reason, "wamp.close.goodbye_and_out"),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    publisher.leave().await.unwrap();
}

/// Over WebSocket (spoken by hand with the WebSocket client): a text frame
/// that is no JSON gets ABORT and a close; other sessions keep working.
pub(crate) async fn websocket_garbage_is_isolated<R: Runtime>(rt: R) {
    let fx = Fixture::start(&rt).await;
    let callee = fx.session(&rt, Transport::WsJson).await;
    let caller = fx.session(&rt, Transport::RsMsgPack).await;
    callee
        .register("com.test.ping", |_| async {
            Ok(CallResult::args(vec![string("pong")]))
        })
        .await
        .unwrap();
    let mut config = ClientConfig::default();
    config.subprotocols.push("wamp.2.json".into());
    let mut ws = step(
        &rt,
        "WebSocket connect",
        fahrbahn::ws::connect_with(&rt, &fx.ws, config),
    )
    .await
    .unwrap();
    assert_eq!(ws.subprotocol(), Some("wamp.2.json"));
    ws.send(Message::text(r#"[1,"realm1",{"roles":{"caller":{}}}]"#))
        .await
        .unwrap();
    let welcome = step(&rt, "WELCOME", ws.recv()).await.unwrap().unwrap();
    let welcome = Serializer::Json.decode(welcome.as_bytes()).unwrap();
    assert!(matches!(welcome, Wamp::Welcome { .. }), "{welcome:?}");
    ws.send(Message::text("}{ garbage")).await.unwrap();
    let mut seen = Vec::new();
    step(&rt, "the router closes the WebSocket", async {
        while let Some(Ok(m)) = ws.recv().await {
            seen.push(m);
        }
    })
    .await;
    let abort = seen.first().expect("an ABORT before the close");
    let abort = Serializer::Json.decode(abort.as_bytes()).unwrap();
    assert!(
        matches!(&abort, Wamp::Abort { reason, .. } if reason == "wamp.error.protocol_violation"),
        "{abort:?}"
    );
    assert!(ws.close_info().is_some(), "closed");
    let r = step(
        &rt,
        "call",
        caller.call("com.test.ping", vec![], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![string("pong")]);
    wait_until(&rt, "the WebSocket is gone", || {
        fx.router().connection_count() == 2
    })
    .await;
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
}

/// A RawSocket frame header over the router's announced maximum closes
/// that connection only; the handshake announces the limit.
pub(crate) async fn raw_oversize_frame<R: Runtime>(rt: R) {
    let mut limits = RouterLimits::default();
    limits.max_message_size = 64 * 1024;
    let fx = Fixture::start_with(&rt, limits).await;
    let other = fx.session(&rt, Transport::RsMsgPack).await;
    let mut raw = fx.raw(&rt, false).await;
    // 2^(9 + 7) = 64 KiB.
    assert_eq!(raw.server_exponent, 7);
    let big = vec![b' '; 100_000];
    // The router may close before it read everything; that is fine.
    let _ = raw.send_frame(0, &big).await;
    let seen = raw.until_closed(&rt).await;
    assert!(
        seen.iter().all(|m| matches!(m, Wamp::Abort { .. })),
        "only an ABORT may precede the close: {seen:?}"
    );
    other
        .register("com.test.alive", |_| async {
            Ok(CallResult::args(vec![Value::Bool(true)]))
        })
        .await
        .unwrap();
    let r = step(
        &rt,
        "call",
        other.call("com.test.alive", vec![], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![Value::Bool(true)]);
    wait_until(&rt, "the raw connection is gone", || {
        fx.router().connection_count() == 1
    })
    .await;
    other.leave().await.unwrap();
}

/// A router from TOML: its realms and listeners; an unknown realm is
/// refused.
pub(crate) async fn router_from_toml<R: Runtime>(rt: R) {
    let dir = TempDir::new("fahrbahn-rtest-toml");
    let path = dir.path().join("router.sock");
    let config = RouterConfig::from_toml(&format!(
        r#"
        realms = ["realm2", "realm3"]

        [[listener]]
        transport = "websocket"
        address = "127.0.0.1:0"

        [[listener]]
        transport = "rawsocket"
        unix = "{}"

        [limits]
        max_message_size = 100000
        outbound_queue = 100
        "#,
        path.display()
    ))
    .unwrap();
    assert_eq!(config.limits.outbound_queue, 100);
    assert!(RouterConfig::from_toml("[[listener]]\ntransport = \"websocket\"\n").is_err());
    let router = Router::builder().config(config).start(&rt).await.unwrap();
    assert_eq!(
        router.rawsocket_url(),
        Some(format!("unix:{}", path.display()))
    );
    let ws = router.websocket_url().unwrap();
    let unix = router.rawsocket_url().unwrap();
    let a = step(&rt, "join realm2", Session::connect(&rt, &ws, "realm2"))
        .await
        .unwrap();
    let b = step(&rt, "join realm3", Session::connect(&rt, &unix, "realm3"))
        .await
        .unwrap();
    let c = step(&rt, "join realm2", Session::connect(&rt, &unix, "realm2"))
        .await
        .unwrap();
    // Realms are separate.
    a.register("com.test.p", |_| async {
        Ok(CallResult::args(vec![string("realm2")]))
    })
    .await
    .unwrap();
    let e = wamp_error(
        step(
            &rt,
            "call in realm3",
            b.call("com.test.p", vec![], Dict::new()),
        )
        .await,
    );
    assert_eq!(e.error, "wamp.error.no_such_procedure");
    let r = step(
        &rt,
        "call in realm2",
        c.call("com.test.p", vec![], Dict::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.args, vec![string("realm2")]);
    match step(&rt, "join realm1", Session::connect(&rt, &ws, "realm1")).await {
        Err(Error::Session(SessionError::Aborted { reason, .. })) => {
            assert_eq!(reason, "wamp.error.no_such_realm")
        }
        other => panic!("expected ABORT no_such_realm, got {other:?}"),
    }
    for s in [a, b, c] {
        s.leave().await.unwrap();
    }
    step(&rt, "shutdown", router.shutdown()).await;
}

/// Sessions of three serializers (JSON, MessagePack batched, CBOR) on one
/// served router, which forwards payloads as the bytes they came in and
/// transcodes them between serializers: every EVENT, INVOCATION, RESULT
/// and application ERROR carries exactly what was sent.
pub(crate) async fn mixed_serializers_get_the_payload_intact<R: Runtime>(rt: R) {
    let fx = Fixture::start(&rt).await;
    let transports = [
        Transport::WsJson,
        Transport::WsMsgPackBatched,
        Transport::RsCbor,
    ];
    let mut sessions = Vec::new();
    for t in transports {
        sessions.push(fx.session(&rt, t).await);
    }
    let args = |n: i64| {
        vec![
            int(n),
            string("grüße, 世界 🚗"),
            Value::Bytes(vec![0, 1, 254, 255]),
            Value::from(u64::MAX),
            Value::from(-1.5),
            Value::Null,
            Value::List(vec![Value::Bool(false), Value::Dict(Dict::new())]),
        ]
    };
    let kw = |n: i64| kwargs([("n", int(n)), ("nested", Value::List(vec![int(n); 3]))]);
    // Each session's procedure echoes the payload; the next one fails
    // with it.
    for (i, s) in sessions.iter().enumerate() {
        s.register(&format!("com.test.echo.{i}"), |inv| async move {
            Ok(CallResult::new(inv.args.clone(), inv.kwargs.clone()))
        })
        .await
        .unwrap();
        s.register(&format!("com.test.fail.{i}"), |inv| async move {
            Err(ApplicationError::new("com.test.error.failed")
                .with_args(inv.args.clone())
                .with_kwargs(inv.kwargs.clone()))
        })
        .await
        .unwrap();
    }
    let mut subscriptions = Vec::new();
    for s in &sessions {
        subscriptions.push(s.subscribe("com.test.mixed").await.unwrap());
    }
    for (from, publisher) in sessions.iter().enumerate() {
        let n = from as i64;
        publisher
            .publish_with(
                "com.test.mixed",
                args(n),
                kw(n),
                kwargs([("acknowledge", true.into()), ("exclude_me", false.into())]),
            )
            .await
            .unwrap();
        for (to, events) in subscriptions.iter_mut().enumerate() {
            let event = step(&rt, "event", events.next())
                .await
                .expect("subscription open");
            assert_eq!(event.args, args(n), "{from} -> {to}");
            assert_eq!(event.kwargs, kw(n), "{from} -> {to}");
        }
        for to in 0..sessions.len() {
            let result = step(
                &rt,
                "echo",
                publisher.call_with(&format!("com.test.echo.{to}"), args(n), kw(n), Dict::new()),
            )
            .await
            .unwrap();
            assert_eq!(result.args, args(n), "{from} -> {to}");
            assert_eq!(result.kwargs, kw(n), "{from} -> {to}");
            let error = wamp_error(
                step(
                    &rt,
                    "failing call",
                    publisher.call_with(
                        &format!("com.test.fail.{to}"),
                        args(n),
                        kw(n),
                        Dict::new(),
                    ),
                )
                .await,
            );
            assert_eq!(error.error, "com.test.error.failed");
            assert_eq!(error.args, args(n), "{from} -> {to}");
            assert_eq!(error.kwargs, kw(n), "{from} -> {to}");
        }
    }
    for s in sessions {
        s.leave().await.unwrap();
    }
}

/// In-process sessions on this runtime: a router without listeners, RPC
/// with progressive results, typed events, and a session over the raw
/// in-process stream with `join_stream`.
pub(crate) async fn in_process_sessions<R: Runtime>(rt: R) {
    use fahrbahn::wamp::{CallProgress, Framing};
    let router = Router::builder().realm("realm1").start(&rt).await.unwrap();
    let callee = step(
        &rt,
        "join in-process",
        Session::join_in_process(&router, SessionOptions::new("realm1")),
    )
    .await
    .unwrap();
    let stream = router.connect_in_process().unwrap();
    let caller = step(
        &rt,
        "join over the raw in-process stream",
        Session::join_stream(
            &rt,
            stream,
            Framing::RawSocket,
            SessionOptions::new("realm1"),
        ),
    )
    .await
    .unwrap();
    callee
        .register("com.test.count", |inv| async move {
            let n: i64 = inv.decode()?;
            for i in 0..n {
                inv.send_progress(CallResult::args(vec![int(i)]))
                    .map_err(|e| {
                        ApplicationError::new("com.test.gone")
                            .with_args(vec![string(&e.to_string())])
                    })?;
            }
            Ok(CallResult::args(vec![int(n)]))
        })
        .await
        .unwrap();
    let mut results = caller
        .call_progressive("com.test.count", vec![int(2)], Dict::new(), Dict::new())
        .unwrap();
    let mut seen = Vec::new();
    while let Some(item) = step(&rt, "a progressive result", results.next()).await {
        seen.push(item.unwrap());
    }
    assert_eq!(
        seen.iter().map(CallProgress::is_final).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    assert_eq!(seen[2].result().args, vec![int(2)]);

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Tick {
        n: i64,
    }
    let mut events = callee.subscribe("com.test.ticks").await.unwrap();
    caller
        .publish_typed_with(
            "com.test.ticks",
            &Tick { n: 7 },
            kwargs([("acknowledge", true.into())]),
        )
        .await
        .unwrap();
    let event = step(&rt, "the event", events.next()).await.unwrap();
    assert_eq!(event.decode::<Tick>().unwrap(), Tick { n: 7 });
    assert_eq!(router.connection_count(), 2);
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
    router.shutdown().await;
}

//! Sessions over streams the application provides, and in-process
//! sessions with an embedded router: on the simulated network and clock.

#[allow(dead_code)]
mod sim;

use std::time::Duration;

use fahrbahn_core::wamp::Value;
use fahrbahn_rt::{
    CallResult, Dict, Error, Framing, Router, RouterLimits, Session, SessionOptions, kwargs,
};
use fahrbahn_tokio::{TokioIo, TokioRuntime};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use sim::SimNet;

/// A router on the simulated network: WebSocket on port 7, RawSocket on 8.
async fn sim_router(net: &SimNet) -> Router {
    Router::builder()
        .realm("realm1")
        .websocket("127.0.0.1:7")
        .rawsocket("127.0.0.1:8")
        .start(net)
        .await
        .expect("router starts")
}

/// RPC round trip between two sessions.
async fn add2_works(callee: &Session, caller: &Session) {
    callee
        .register("com.example.add2", |inv| async move {
            let (a, b): (i64, i64) = inv.decode()?;
            Ok(CallResult::args(vec![(a + b).into()]))
        })
        .await
        .unwrap();
    let sum: i64 = caller
        .call_typed("com.example.add2", &(2, 3))
        .await
        .unwrap();
    assert_eq!(sum, 5);
}

#[tokio::test(start_paused = true)]
async fn a_session_joins_over_a_stream_the_application_provides_websocket_and_rawsocket() {
    let net = SimNet::default();
    let router = sim_router(&net).await;
    // The application's own byte streams (in-memory pipes), framed as it
    // chooses; nothing is dialled by the session.
    let ws_stream = TokioIo(net.dial(7).unwrap());
    let framing = Framing::websocket("ws://router.internal/ws").unwrap();
    let over_ws = Session::join_stream(&net, ws_stream, framing, SessionOptions::new("realm1"))
        .await
        .expect("joins over WebSocket framing");
    let rs_stream = TokioIo(net.dial(8).unwrap());
    let over_rs = Session::join_stream(
        &net,
        rs_stream,
        Framing::RawSocket,
        SessionOptions::new("realm1"),
    )
    .await
    .expect("joins over RawSocket framing");
    assert!(over_ws.codec().is_some() && over_rs.codec().is_some());
    add2_works(&over_ws, &over_rs).await;
    let mut events = over_ws.subscribe("com.example.news").await.unwrap();
    over_rs
        .publish("com.example.news", vec!["hi".into()], Dict::new())
        .await
        .unwrap();
    assert_eq!(events.next().await.unwrap().args, vec![Value::from("hi")]);
    over_ws.leave().await.unwrap();
    over_rs.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn websocket_framing_on_a_stream_to_a_rawsocket_listener_fails_within_the_join_timeout() {
    let net = SimNet::default();
    let router = sim_router(&net).await;
    let wrong = TokioIo(net.dial(8).unwrap());
    let result = Session::join_stream(
        &net,
        wrong,
        Framing::websocket("ws://router.internal/ws").unwrap(),
        SessionOptions::new("realm1"),
    )
    .await;
    assert!(result.is_err(), "{result:?}");
    router.shutdown().await;
}

/// An embedded router without listeners: in-process clients only.
async fn embedded(limits: RouterLimits) -> Router {
    Router::builder()
        .realm("realm1")
        .limits(limits)
        .start(&TokioRuntime)
        .await
        .expect("router starts")
}

#[tokio::test(start_paused = true)]
async fn in_process_sessions_do_rpc_and_pubsub_without_a_listener() {
    let router = embedded(RouterLimits::default()).await;
    assert!(router.listeners().is_empty());
    let callee = Session::join_in_process(&router, SessionOptions::new("realm1"))
        .await
        .unwrap();
    let caller = Session::join_in_process(&router, SessionOptions::new("realm1"))
        .await
        .unwrap();
    assert_eq!(router.connection_count(), 2);
    add2_works(&callee, &caller).await;

    let mut events = callee.subscribe("com.example.news").await.unwrap();
    caller
        .publish_with(
            "com.example.news",
            vec!["hello".into()],
            Dict::new(),
            kwargs([("acknowledge", true.into())]),
        )
        .await
        .unwrap();
    let event = events.next().await.expect("the event arrives");
    assert_eq!(event.args, vec![Value::from("hello")]);

    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn in_process_clients_count_against_max_connections() {
    let mut limits = RouterLimits::default();
    limits.max_connections = 1;
    let router = embedded(limits).await;
    let first = Session::join_in_process(&router, SessionOptions::new("realm1"))
        .await
        .unwrap();
    match Session::join_in_process(&router, SessionOptions::new("realm1")).await {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a refusal, got {other:?}"),
    }
    first.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn in_process_calls_larger_than_the_routers_message_limit_fail_at_once() {
    let mut limits = RouterLimits::default();
    limits.max_message_size = 64 * 1024;
    let router = embedded(limits).await;
    let caller = Session::join_in_process(&router, SessionOptions::new("realm1"))
        .await
        .unwrap();
    let big = Value::from("x".repeat(256 * 1024));
    let result = caller
        .call("com.example.anything", vec![big], Dict::new())
        .await;
    assert!(
        matches!(result, Err(Error::Command(_))),
        "the router's RawSocket limit applies: {result:?}"
    );
    caller.leave().await.unwrap();
    router.shutdown().await;
}

/// Writes one RawSocket message frame.
async fn send_frame(io: &mut fahrbahn_rt::InProcessStream, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    io.write_all(&[0, len[1], len[2], len[3]]).await.unwrap();
    io.write_all(payload).await.unwrap();
}

/// Reads one RawSocket frame's payload.
async fn read_frame(io: &mut fahrbahn_rt::InProcessStream) -> Vec<u8> {
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await.unwrap();
    let len = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
    let mut payload = vec![0; len];
    io.read_exact(&mut payload).await.unwrap();
    payload
}

#[tokio::test(start_paused = true)]
async fn an_in_process_subscriber_that_stops_reading_is_cut_off_by_the_outbound_bound() {
    const BOUND: usize = 256 * 1024;
    const EVENT: usize = 16 * 1024;
    const EVENTS: i64 = 100;
    let mut limits = RouterLimits::default();
    limits.outbound_queue_bytes = BOUND;
    let router = embedded(limits).await;
    // A client on the raw in-process stream that subscribes, then never
    // reads again.
    let mut slow = router.connect_in_process().unwrap();
    slow.write_all(&sim::RAWSOCKET_JSON_HELLO).await.unwrap();
    let mut reply = [0u8; 4];
    slow.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[0], 0x7F);
    send_frame(&mut slow, br#"[1,"realm1",{"roles":{"subscriber":{}}}]"#).await;
    assert!(read_frame(&mut slow).await.starts_with(b"[2,"));
    send_frame(&mut slow, br#"[32,1,{},"com.example.topic"]"#).await;
    assert!(read_frame(&mut slow).await.starts_with(b"[33,1,"));

    let publisher = Session::join_in_process(&router, SessionOptions::new("realm1"))
        .await
        .unwrap();
    let payload = Value::from("x".repeat(EVENT));
    let mut max_held = 0;
    for n in 0..EVENTS {
        publisher
            .publish_with(
                "com.example.topic",
                vec![payload.clone(), n.into()],
                Dict::new(),
                kwargs([("acknowledge", true.into())]),
            )
            .await
            .expect("the publisher is not held up");
        max_held = max_held.max(router.queued_bytes());
    }
    assert!(max_held <= 2 * BOUND, "the router held {max_held} bytes");
    // Simulated time: lets the router's close of the slow client finish.
    tokio::time::advance(Duration::from_secs(60)).await;
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest).await;
    let received = String::from_utf8_lossy(&rest).matches("[36,").count();
    assert!(
        (received as i64) < EVENTS,
        "the slow subscriber was cut off, after {received} events"
    );
    assert!(!publisher.is_closed());
    publisher.leave().await.unwrap();
    router.shutdown().await;
}

/// Two in-process sessions on one embedded router.
async fn pair() -> (Router, Session, Session) {
    let router = embedded(RouterLimits::default()).await;
    let a = Session::join_in_process(&router, SessionOptions::new("realm1"))
        .await
        .unwrap();
    let b = Session::join_in_process(&router, SessionOptions::new("realm1"))
        .await
        .unwrap();
    (router, a, b)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Receipt {
    item: String,
    total_cents: u64,
}

#[tokio::test(start_paused = true)]
async fn a_struct_travels_as_kwargs_in_calls_results_and_events() {
    let (router, callee, caller) = pair().await;
    callee
        .register("com.example.order", |inv| async move {
            let order: Order = inv.decode()?;
            CallResult::typed(&Receipt {
                item: order.item,
                total_cents: 250 * u64::from(order.qty),
            })
        })
        .await
        .unwrap();
    let order = Order {
        item: "tea".into(),
        qty: 2,
    };
    let receipt: Receipt = caller
        .call_typed("com.example.order", &order)
        .await
        .unwrap();
    assert_eq!(
        receipt,
        Receipt {
            item: "tea".into(),
            total_cents: 500
        }
    );
    // The untyped view of the same result: kwargs, no args.
    let raw = caller
        .call(
            "com.example.order",
            vec![],
            kwargs([("item", "cake".into()), ("qty", 1.into())]),
        )
        .await
        .unwrap();
    assert!(raw.args.is_empty());
    assert_eq!(raw.kwargs.get("total_cents"), Some(&Value::from(250)));
    // Arguments that do not fit are the caller's mistake.
    let wrong = caller
        .call("com.example.order", vec!["tea".into()], Dict::new())
        .await;
    match wrong {
        Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.invalid_argument"),
        other => panic!("expected invalid_argument, got {other:?}"),
    }

    let mut events = callee.subscribe("com.example.orders").await.unwrap();
    caller
        .publish_typed_with(
            "com.example.orders",
            &order,
            kwargs([("acknowledge", true.into())]),
        )
        .await
        .unwrap();
    caller
        .publish_typed("com.example.orders", &("tea", 3))
        .await
        .unwrap();
    let event = events.next().await.unwrap();
    assert!(event.args.is_empty());
    assert_eq!(event.decode::<Order>().unwrap(), order);
    let event = events.next().await.unwrap();
    assert_eq!(event.args.len(), 2);
    // A struct also decodes from positional arguments, in field order.
    assert_eq!(
        event.decode::<Order>().unwrap(),
        Order {
            item: "tea".into(),
            qty: 3
        }
    );
    assert!(matches!(
        event.decode::<(u32, u32)>(),
        Err(Error::Decode(_))
    ));
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
    router.shutdown().await;
}

/// Registers `com.example.count`: `n` progressive results 0..n, then `n`.
async fn register_counter(callee: &Session) {
    callee
        .register("com.example.count", |inv| async move {
            let n: i64 = inv.decode()?;
            let mut sent = 0;
            for i in 0..n {
                if inv
                    .send_progress(CallResult::args(vec![i.into()]))
                    .expect("the call is running")
                {
                    sent += 1;
                }
            }
            Ok(CallResult::new(
                vec![n.into()],
                kwargs([("progressive_sent", sent.into())]),
            ))
        })
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn progressive_results_arrive_as_a_stream_then_the_final_one() {
    let (router, callee, caller) = pair().await;
    register_counter(&callee).await;
    let mut results = caller
        .call_progressive(
            "com.example.count",
            vec![3.into()],
            Dict::new(),
            Dict::new(),
        )
        .unwrap();
    let mut seen = Vec::new();
    while let Some(item) = results.next().await {
        seen.push(item.unwrap());
    }
    let progress: Vec<_> = seen
        .iter()
        .filter(|p| !p.is_final())
        .map(|p| p.result().args.clone())
        .collect();
    assert_eq!(
        progress,
        vec![vec![Value::from(0)], vec![1.into()], vec![2.into()]]
    );
    let last = seen.last().unwrap();
    assert!(last.is_final());
    assert_eq!(last.result().args, vec![Value::from(3)]);
    assert_eq!(seen.len(), 4);

    // A plain call to the same procedure: the callee sends no progressive
    // results and the caller gets only the final one.
    let plain = caller
        .call("com.example.count", vec![3.into()], Dict::new())
        .await
        .unwrap();
    assert_eq!(plain.args, vec![Value::from(3)]);
    assert_eq!(plain.kwargs.get("progressive_sent"), Some(&Value::from(0)));
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_a_progressive_call_cancels_it_at_the_callee() {
    let (router, callee, caller) = pair().await;
    let (dropped_tx, dropped_rx) = futures_channel::oneshot::channel::<()>();
    let dropped_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    /// Tells when the handler's future is dropped.
    struct OnDrop(Option<futures_channel::oneshot::Sender<()>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    callee
        .register_with("com.example.forever", Dict::new(), move |inv| {
            let guard = OnDrop(dropped_tx.lock().unwrap().take());
            async move {
                let _guard = guard;
                inv.send_progress(CallResult::args(vec!["started".into()]))
                    .unwrap();
                std::future::pending::<()>().await;
                Ok(CallResult::default())
            }
        })
        .await
        .unwrap();
    let mut results = caller
        .call_progressive("com.example.forever", vec![], Dict::new(), Dict::new())
        .unwrap();
    let first = results.next().await.unwrap().unwrap();
    assert_eq!(
        first,
        fahrbahn_rt::CallProgress::Progress(CallResult {
            args: vec!["started".into()],
            ..first.result().clone()
        })
    );
    drop(results);
    // The router passes the cancel on (INTERRUPT) and the handler is
    // dropped.
    dropped_rx.await.expect("the handler was dropped");
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
    router.shutdown().await;
}

//! `fahrbahn-rt` on a simulated network and a simulated clock: the driver,
//! the WAMP session and the served router, with their deadlines taken
//! through `Executor::now` and the runtime's timers only. Seconds of
//! deadlines pass in no wall time, and the results do not depend on the
//! machine's speed or load.

mod sim;

use std::time::Duration;

use fahrbahn_core::wamp::Value;
use fahrbahn_rt::{
    CallResult, Dict, Error, Executor, Router, RouterLimits, Session, SessionError, SessionOptions,
    kwargs,
};
use sim::{RAWSOCKET_JSON_HELLO, SimNet, read_frame, read_to_end, send_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A router on simulated port 7 speaking RawSocket.
async fn router(net: &SimNet, limits: RouterLimits) -> Router {
    Router::builder()
        .rawsocket("127.0.0.1:7")
        .limits(limits)
        .start(net)
        .await
        .expect("router starts")
}

/// Joins `realm1` by hand over a RawSocket JSON connection that announced
/// `max_len_exponent` (the largest message it accepts is 2^(9+exp)).
async fn raw_client(net: &SimNet, exp: u8, roles: &str) -> tokio::io::DuplexStream {
    let mut io = net.dial(7).unwrap();
    io.write_all(&[0x7F, (exp << 4) | 1, 0, 0]).await.unwrap();
    let mut reply = [0u8; 4];
    io.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[0], 0x7F, "the RawSocket handshake is answered");
    let hello = format!(r#"[1,"realm1",{{"roles":{roles}}}]"#);
    send_frame(&mut io, hello.as_bytes()).await;
    let welcome = read_frame(&mut io).await.expect("WELCOME");
    assert!(welcome.starts_with(b"[2,"), "{welcome:?}");
    io
}

/// A router played by hand on a simulated listener: it accepts the next
/// client's RawSocket handshake (JSON) and reads its HELLO, which it
/// returns with the connection.
async fn router_by_hand(
    listener: &mut tokio::sync::mpsc::UnboundedReceiver<sim::Pipe>,
) -> (tokio::io::DuplexStream, Vec<u8>) {
    let mut pipe = listener.recv().await.expect("the client connects").0;
    let mut handshake = [0u8; 4];
    pipe.read_exact(&mut handshake).await.unwrap();
    pipe.write_all(&RAWSOCKET_JSON_HELLO).await.unwrap();
    let hello = read_frame(&mut pipe).await.expect("HELLO");
    (pipe, hello)
}

/// Steps the simulated clock until the router holds `n` connections
/// (closing ones finish on their own timers), for a simulated minute at
/// most; fails with `why` after that.
async fn until_connections(router: &Router, n: usize, why: &str) {
    for _ in 0..600 {
        if router.connection_count() == n {
            return;
        }
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    panic!("{why}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_router_times_the_join_out() {
    let net = SimNet::default();
    let mut listener = net.listen(9);
    // A peer that accepts the RawSocket handshake, reads HELLO, and then
    // says nothing.
    let peer = tokio::spawn(async move {
        let (mut pipe, hello) = router_by_hand(&mut listener).await;
        let rest = read_to_end(&mut pipe).await;
        (hello, rest)
    });
    let start = net.now();
    let mut options = SessionOptions::new("realm1");
    options.session.join_timeout = Duration::from_secs(7);
    let err = Session::connect_with(&net, "rs://sim:9", options)
        .await
        .expect_err("no WELCOME ever comes");
    assert!(
        matches!(err, Error::Session(SessionError::JoinTimeout(d)) if d == Duration::from_secs(7)),
        "{err:?}"
    );
    let waited = net.now() - start;
    assert!(
        waited >= Duration::from_secs(7) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    let (hello, rest) = peer.await.unwrap();
    assert!(
        String::from_utf8_lossy(&hello).starts_with(r#"[1,"realm1""#),
        "{hello:?}"
    );
    // The client aborted the join before closing.
    assert!(
        String::from_utf8_lossy(&rest).contains("wamp.error.timeout"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test(start_paused = true)]
async fn the_router_closes_a_client_that_never_says_hello() {
    let net = SimNet::default();
    let mut limits = RouterLimits::default();
    limits.hello_timeout_secs = 3;
    let router = router(&net, limits).await;
    let mut client = net.dial(7).unwrap();
    let start = net.now();
    client.write_all(&RAWSOCKET_JSON_HELLO).await.unwrap();
    let mut reply = [0u8; 4];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[0], 0x7F, "the RawSocket handshake is answered");
    assert_eq!(router.connection_count(), 1);
    // Silence: the router gives up after the HELLO timeout.
    let rest = read_to_end(&mut client).await;
    let waited = net.now() - start;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // Our end of stream lets the router finish the close.
    drop(client);
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_stops_reading_is_disconnected_and_nobody_else_notices() {
    const EVENTS: i64 = 500;
    let net = SimNet::default();
    let mut limits = RouterLimits::default();
    limits.outbound_queue = 32;
    let router = router(&net, limits).await;
    // A subscriber by hand, which stops reading once subscribed.
    let mut slow = raw_client(&net, 15, r#"{"subscriber":{}}"#).await;
    send_frame(&mut slow, br#"[32,1,{},"com.example.topic"]"#).await;
    let subscribed = read_frame(&mut slow).await.expect("SUBSCRIBED");
    assert!(subscribed.starts_with(b"[33,1,"), "{subscribed:?}");

    let good = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let mut events = good.subscribe("com.example.topic").await.unwrap();
    let publisher = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let payload = Value::from("x".repeat(1024));
    for n in 0..EVENTS {
        publisher
            .publish_with(
                "com.example.topic",
                vec![payload.clone(), n.into()],
                Dict::new(),
                kwargs([("acknowledge", true.into())]),
            )
            .await
            .expect("the publisher is not slowed down or refused");
    }
    // The reading subscriber got every event, in order.
    for n in 0..EVENTS {
        let event = events.next().await.expect("the subscription is open");
        assert_eq!(event.args[1], Value::from(n));
    }
    // The slow one was disconnected: the router gives up on the bytes it
    // never read after the linger time (moved past on the simulated clock),
    // forgets the connection and drops it; the client reads what was
    // buffered, then the end of the stream.
    tokio::time::advance(Duration::from_secs(60)).await;
    let rest = read_to_end(&mut slow).await;
    // The router forgets it once its side of the close is done: stepped on
    // the simulated clock, bounded by a simulated minute.
    until_connections(&router, 2, "the router never forgot the slow subscriber").await;
    let received = String::from_utf8_lossy(&rest).matches("[36,").count();
    assert!(
        (received as i64) < EVENTS,
        "the slow subscriber got {received} events"
    );
    assert!(!good.is_closed() && !publisher.is_closed());
    publisher.leave().await.unwrap();
    good.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn closed_resolves_when_the_router_ends_the_session() {
    let net = SimNet::default();
    let router = router(&net, RouterLimits::default()).await;
    let session = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let waiting = {
        let session = session.clone();
        tokio::spawn(async move { session.closed().await })
    };
    assert!(!session.is_closed());
    router.shutdown().await;
    let closed = waiting.await.unwrap();
    assert_eq!(closed.reason, "wamp.close.system_shutdown");
    assert!(closed.by_router && closed.error.is_none(), "{closed:?}");
    assert_eq!(session.close_info().as_ref(), Some(&closed));
    // Once ended, it answers at once, the same.
    assert_eq!(session.closed().await, closed);
}

#[tokio::test(start_paused = true)]
async fn closed_after_leave_is_a_clean_end() {
    let net = SimNet::default();
    let router = router(&net, RouterLimits::default()).await;
    let session = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    session.leave().await.unwrap();
    let closed = session.closed().await;
    assert!(!closed.by_router && closed.error.is_none(), "{closed:?}");
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_answers_runtime_error_and_the_session_goes_on() {
    let net = SimNet::default();
    let router = router(&net, RouterLimits::default()).await;
    let callee = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    callee
        .register(
            "com.example.panics_at_once",
            |_inv| -> std::future::Ready<_> { panic!("a bug in the handler") },
        )
        .await
        .unwrap();
    callee
        .register("com.example.panics_later", |inv| async move {
            if inv.args.is_empty() {
                panic!("a bug in the future");
            }
            Ok(CallResult::args(inv.args))
        })
        .await
        .unwrap();
    let caller = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    for procedure in [
        "com.example.panics_at_once",
        "com.example.panics_later",
        "com.example.panics_at_once",
    ] {
        match caller.call(procedure, vec![], Dict::new()).await {
            Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.runtime_error", "{e:?}"),
            other => panic!("{procedure}: {other:?}"),
        }
    }
    // The callee's session and registrations are intact.
    let echoed = caller
        .call("com.example.panics_later", vec![1.into()], Dict::new())
        .await
        .unwrap();
    assert_eq!(echoed.args, vec![Value::from(1)]);
    assert!(!callee.is_closed());
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
    router.shutdown().await;
}

/// Does the RawSocket handshake on a fresh connection to port 7; `false` if
/// the router closed the connection instead.
async fn rawsocket_handshake(net: &SimNet) -> (bool, tokio::io::DuplexStream) {
    let mut client = net.dial(7).unwrap();
    client.write_all(&RAWSOCKET_JSON_HELLO).await.unwrap();
    let mut reply = [0u8; 4];
    let answered = client.read_exact(&mut reply).await.is_ok();
    (answered && reply[0] == 0x7F, client)
}

#[tokio::test(start_paused = true)]
async fn connections_over_max_connections_are_closed_at_once() {
    let net = SimNet::default();
    let mut limits = RouterLimits::default();
    limits.max_connections = 2;
    let router = router(&net, limits).await;
    let (ok1, first) = rawsocket_handshake(&net).await;
    let (ok2, _second) = rawsocket_handshake(&net).await;
    assert!(ok1 && ok2);
    // At the bound: the third gets the end of the stream, no handshake.
    let (ok3, mut third) = rawsocket_handshake(&net).await;
    assert!(!ok3);
    assert!(read_to_end(&mut third).await.is_empty());
    assert_eq!(router.connection_count(), 2);
    // Once one ends, there is room again.
    drop(first);
    until_connections(&router, 1, "the router never forgot the first connection").await;
    let (ok4, _fourth) = rawsocket_handshake(&net).await;
    assert!(ok4, "a place was freed");
    let (ok5, _fifth) = rawsocket_handshake(&net).await;
    assert!(!ok5);
}

#[tokio::test(start_paused = true)]
async fn a_callee_that_stops_answering_pings_is_dropped_and_its_registration_freed() {
    let net = SimNet::default();
    let mut limits = RouterLimits::default();
    limits.ping_interval_secs = 30;
    limits.ping_timeout_secs = 15;
    let router = router(&net, limits).await;
    // A callee by hand: it registers, then reads but never writes again
    // (it does not answer PINGs), like a peer that vanished.
    let mut callee = raw_client(&net, 15, r#"{"callee":{}}"#).await;
    send_frame(&mut callee, br#"[64,1,{},"com.example.silent"]"#).await;
    let registered = read_frame(&mut callee).await.expect("REGISTERED");
    assert!(registered.starts_with(b"[65,1,"), "{registered:?}");
    let silent_since = net.now();
    let rest = read_to_end(&mut callee).await;
    let dropped_after = net.now() - silent_since;
    // The router pinged (frame type 1) at 30 s and gave up 15 s later.
    assert!(rest.starts_with(&[1, 0, 0, 8]), "{rest:?}");
    assert!(
        dropped_after >= Duration::from_secs(45) && dropped_after < Duration::from_secs(46),
        "{dropped_after:?}"
    );
    // Its registration is gone.
    let caller = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    match caller.call("com.example.silent", vec![], Dict::new()).await {
        Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.no_such_procedure", "{e:?}"),
        other => panic!("{other:?}"),
    }
    caller.leave().await.unwrap();
    drop(callee);
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_session_that_answers_pings_stays() {
    let net = SimNet::default();
    let router = router(&net, RouterLimits::default()).await;
    let callee = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    callee
        .register("com.example.echo", |inv| async move {
            Ok(CallResult::args(inv.args))
        })
        .await
        .unwrap();
    // Ten minutes without messages, every timer firing in order on the
    // simulated clock (paused: it moves to the next timer only when every
    // task is idle): the client answers each of the router's pings, so its
    // session does not end.
    let ended = tokio::time::timeout(Duration::from_secs(600), callee.closed()).await;
    assert!(ended.is_err(), "the session ended: {ended:?}");
    let caller = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let echoed = caller
        .call("com.example.echo", vec![1.into()], Dict::new())
        .await
        .unwrap();
    assert_eq!(echoed.args, vec![Value::from(1)]);
    assert!(!callee.is_closed());
    caller.leave().await.unwrap();
    callee.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_session_leaves_a_router_that_stops_answering_pings() {
    use fahrbahn_core::rawsocket;
    use fahrbahn_core::wamp::TransportError;
    let net = SimNet::default();
    let mut listener = net.listen(9);
    // A router by hand: it welcomes the session, then reads but never
    // writes again (it does not answer PINGs).
    let peer = tokio::spawn(async move {
        let (mut pipe, _hello) = router_by_hand(&mut listener).await;
        send_frame(&mut pipe, br#"[2,5,{"roles":{"dealer":{}}}]"#).await;
        read_to_end(&mut pipe).await
    });
    // Keepalive is on by default.
    let session = Session::connect(&net, "rs://sim:9", "realm1")
        .await
        .unwrap();
    let joined = net.now();
    let closed = session.closed().await;
    let after = net.now() - joined;
    assert!(
        after >= Duration::from_secs(45) && after < Duration::from_secs(46),
        "{after:?}"
    );
    match &closed.error {
        Some(SessionError::TransportClosed(t)) => assert_eq!(
            t.error,
            Some(TransportError::RawSocket(rawsocket::Error::PingTimeout)),
            "{t:?}"
        ),
        other => panic!("{other:?}"),
    }
    let rest = peer.await.unwrap();
    assert!(
        rest.starts_with(&[1, 0, 0, 8]),
        "the client pinged: {rest:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_outbound_bound_counts_bytes_and_cuts_off_a_subscriber_that_stops_reading() {
    // The attack: 64 KiB events to a subscriber that never reads. The
    // message count is no bound here; the bytes are.
    const EVENTS: i64 = 200;
    const BOUND: usize = 1 << 20;
    let net = SimNet::default();
    let mut limits = RouterLimits::default();
    limits.outbound_queue = 1_000_000;
    limits.outbound_queue_bytes = BOUND;
    let router = router(&net, limits).await;
    let mut slow = raw_client(&net, 15, r#"{"subscriber":{}}"#).await;
    send_frame(&mut slow, br#"[32,1,{},"com.example.topic"]"#).await;
    let subscribed = read_frame(&mut slow).await.expect("SUBSCRIBED");
    assert!(subscribed.starts_with(b"[33,1,"), "{subscribed:?}");

    let good = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let mut events = good.subscribe("com.example.topic").await.unwrap();
    let publisher = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let payload = Value::from("x".repeat(64 * 1024));
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
            .expect("the publisher is not slowed down or refused");
        max_held = max_held.max(router.queued_bytes());
    }
    // Three connections, each bounded (the publisher's and the reading
    // subscriber's share stay small).
    assert!(
        max_held <= 3 * BOUND,
        "the router held {max_held} bytes for its clients"
    );
    for n in 0..EVENTS {
        let event = events.next().await.expect("the subscription is open");
        assert_eq!(event.args[1], Value::from(n));
    }
    tokio::time::advance(Duration::from_secs(60)).await;
    let rest = read_to_end(&mut slow).await;
    until_connections(&router, 2, "the router never forgot the slow subscriber").await;
    let received = String::from_utf8_lossy(&rest).matches("[36,").count();
    // It got at most what the bound and the pipe hold.
    assert!(
        received * 64 * 1024 <= BOUND + 2 * sim::PIPE_BUFFER + 64 * 1024,
        "the slow subscriber got {received} events"
    );
    assert_eq!(router.queued_bytes(), 0);
    assert!(!good.is_closed() && !publisher.is_closed());
    publisher.leave().await.unwrap();
    good.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_result_larger_than_the_rawsocket_client_accepts_becomes_an_error() {
    let net = SimNet::default();
    let router = router(&net, RouterLimits::default()).await;
    let callee = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let _reg = callee
        .register("com.example.echo_len", |inv| async move {
            let n = inv.args[0].as_u64().unwrap_or(0) as usize;
            Ok(CallResult::args(vec![Value::from("x".repeat(n))]))
        })
        .await
        .unwrap();
    // A caller that announced max_len_exponent 1: 1024 bytes (the
    // WELCOME, with every feature the router announces, takes more than
    // 512).
    let mut caller = raw_client(&net, 1, r#"{"caller":{}}"#).await;
    send_frame(&mut caller, br#"[48,1,{},"com.example.echo_len",[2000]]"#).await;
    let error = read_frame(&mut caller).await.expect("an answer");
    let error = String::from_utf8(error).unwrap();
    assert!(
        error.starts_with(r#"[8,48,1,{},"wamp.error.payload_size_exceeded""#),
        "{error}"
    );
    // The session stays usable.
    send_frame(&mut caller, br#"[48,2,{},"com.example.echo_len",[10]]"#).await;
    let result = read_frame(&mut caller).await.expect("an answer");
    assert_eq!(
        String::from_utf8(result).unwrap(),
        r#"[50,2,{},["xxxxxxxxxx"]]"#
    );
    drop(caller);
    callee.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_subscription_not_read_holds_a_bounded_queue_and_loses_no_event() {
    const MAX: usize = 8 << 10;
    const N: u64 = 200;
    let net = SimNet::default();
    let router = router(&net, RouterLimits::default()).await;
    let mut options = SessionOptions::new("realm1");
    options.max_queued_event_bytes = MAX;
    let subscriber = Session::connect_with(&net, "rs://sim:7", options)
        .await
        .unwrap();
    let mut events = subscriber.subscribe("com.example.topic").await.unwrap();
    let publisher = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    for i in 0..N {
        let args = vec![i.into(), "x".repeat(1000).into()];
        publisher
            .publish("com.example.topic", args, Dict::new())
            .await
            .unwrap();
    }
    let mut acknowledge = Dict::new();
    acknowledge.insert("acknowledge".into(), true.into());
    publisher
        .publish_with(
            "com.example.topic",
            vec![N.into()],
            Dict::new(),
            acknowledge,
        )
        .await
        .unwrap();
    // The clock is paused: step simulated time until the session holds
    // more than MAX, then a while longer, so that it has read all it would.
    let mut steps = 0;
    while subscriber.queued_event_bytes() <= MAX {
        assert!(steps < 600, "the events never filled the session's queue");
        tokio::time::advance(Duration::from_millis(100)).await;
        steps += 1;
    }
    for _ in 0..20 {
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    // ~240 KiB of events were published; the session stopped reading once
    // more than MAX waited, past it by at most what one read (64 KiB of
    // input) decoded.
    let queued = subscriber.queued_event_bytes();
    assert!(queued > MAX && queued <= MAX + (96 << 10), "{queued}");
    // Nothing was dropped: reading, every event arrives, in order.
    for i in 0..=N {
        let event = events.next().await.expect("an event");
        assert_eq!(event.args[0], Value::from(i));
    }
    assert_eq!(subscriber.queued_event_bytes(), 0);
    // Dropping a subscription with events waiting releases them too.
    let unread = subscriber.subscribe("com.example.other").await.unwrap();
    publisher
        .publish(
            "com.example.other",
            vec!["x".repeat(1000).into()],
            Dict::new(),
        )
        .await
        .unwrap();
    let mut steps = 0;
    while subscriber.queued_event_bytes() == 0 {
        assert!(steps < 600, "the event never reached the session's queue");
        tokio::time::advance(Duration::from_millis(100)).await;
        steps += 1;
    }
    drop(unread);
    assert_eq!(subscriber.queued_event_bytes(), 0);
    publisher.leave().await.unwrap();
    subscriber.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_publish_or_result_larger_than_the_router_accepts_fails_that_operation_only() {
    let net = SimNet::default();
    let mut limits = RouterLimits::default();
    // The router announces max_len_exponent 1: 1024 bytes.
    limits.max_message_size = 1024;
    let router = router(&net, limits).await;
    let session = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let big = || vec![Value::from("x".repeat(2000))];
    let too_large = |err: Error| {
        matches!(
            err,
            Error::Command(fahrbahn_core::wamp::CommandError::PayloadTooLarge { size, max: 1024 })
                if size > 2000
        )
    };
    let start = net.now();
    // A PUBLISH, plain and acknowledged, fails at once.
    let err = session
        .publish("com.example.topic", big(), Dict::new())
        .await
        .expect_err("too large for the router");
    assert!(too_large(err));
    let mut acknowledge = Dict::new();
    acknowledge.insert("acknowledge".into(), true.into());
    let err = session
        .publish_with("com.example.topic", big(), Dict::new(), acknowledge.clone())
        .await
        .expect_err("too large for the router");
    assert!(too_large(err));
    assert_eq!(net.now(), start, "it fails at once");
    // A result too large for the router answers the call with
    // wamp.error.payload_size_exceeded (here the callee calls itself).
    let _reg = session
        .register("com.example.repeat", |inv| async move {
            let n = inv.args[0].as_u64().unwrap_or(0) as usize;
            Ok(CallResult::args(vec!["x".repeat(n).into()]))
        })
        .await
        .unwrap();
    match session
        .call("com.example.repeat", vec![2000u64.into()], Dict::new())
        .await
    {
        Err(Error::Wamp(e)) => assert_eq!(e.error, "wamp.error.payload_size_exceeded", "{e:?}"),
        other => panic!("{other:?}"),
    }
    // The session goes on: publishing, calling, the same registration.
    session
        .publish_with(
            "com.example.topic",
            vec![1.into()],
            Dict::new(),
            acknowledge,
        )
        .await
        .unwrap();
    let result = session
        .call("com.example.repeat", vec![10u64.into()], Dict::new())
        .await
        .unwrap();
    assert_eq!(result.args[0], Value::from("x".repeat(10)));
    session.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_larger_than_the_router_accepts_fails_at_once() {
    let net = SimNet::default();
    let mut limits = RouterLimits::default();
    // The router announces max_len_exponent 1: 1024 bytes.
    limits.max_message_size = 1024;
    let router = router(&net, limits).await;
    let session = Session::connect(&net, "rs://sim:7", "realm1")
        .await
        .unwrap();
    let _reg = session
        .register("com.example.len", |inv| async move {
            let n = inv.args[0].as_str().map_or(0, str::len);
            Ok(CallResult::args(vec![n.into()]))
        })
        .await
        .unwrap();
    let start = net.now();
    let err = session
        .call(
            "com.example.len",
            vec!["x".repeat(2000).into()],
            Dict::new(),
        )
        .await
        .expect_err("too large for the router");
    assert!(
        matches!(
            err,
            Error::Command(fahrbahn_core::wamp::CommandError::PayloadTooLarge { size, max: 1024 })
                if size > 2000
        ),
        "{err:?}"
    );
    assert_eq!(net.now(), start, "it fails at once");
    // The session goes on.
    let result = session
        .call("com.example.len", vec!["x".repeat(100).into()], Dict::new())
        .await
        .unwrap();
    assert_eq!(result.args[0], Value::from(100u64));
    session.leave().await.unwrap();
    router.shutdown().await;
}

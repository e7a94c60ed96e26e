//! The reconnecting `Component` on the simulated network and clock: the
//! served router goes away and comes back, and the component rejoins on
//! the back-off schedule with its registrations and subscriptions
//! restored. Seconds of back-off pass in no wall time.

#[allow(dead_code)]
mod sim;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fahrbahn_core::Rng;
use fahrbahn_rt::{
    Backoff, CallResult, Component, ComponentError, Dict, Disposition, Error, Executor,
    RetryPolicy, Router, SubscriptionItem, WhenDisconnected, kwargs,
};
use sim::SimNet;

const URL: &str = "rs://sim:7";

async fn router(net: &SimNet) -> Router {
    Router::builder()
        .rawsocket("127.0.0.1:7")
        .start(net)
        .await
        .expect("router starts")
}

fn ack() -> Dict {
    kwargs([("acknowledge", true.into())])
}

async fn add(inv: fahrbahn_rt::Invocation) -> Result<CallResult, fahrbahn_rt::ApplicationError> {
    let (a, b): (i64, i64) = inv.decode()?;
    Ok(CallResult::args(vec![(a + b).into()]))
}

/// Steps the simulated clock until the router holds `n` connections.
async fn until_connections(router: &Router, n: usize) {
    for _ in 0..600 {
        if router.connection_count() == n {
            return;
        }
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    panic!(
        "the router still holds {} connections",
        router.connection_count()
    );
}

#[tokio::test(start_paused = true)]
async fn a_component_rejoins_a_restarted_router_with_everything_restored() {
    let net = SimNet::default();
    let r1 = router(&net).await;
    let declared_events = Arc::new(Mutex::new(Vec::new()));
    let seen = declared_events.clone();
    let joins = Arc::new(AtomicUsize::new(0));
    let (j, leaves) = (joins.clone(), Arc::new(AtomicUsize::new(0)));
    let l = leaves.clone();
    let callee = Component::builder("realm1")
        .transport(URL)
        .seed(1)
        .register("com.example.add2", add)
        .subscribe("com.example.declared", move |item| {
            seen.lock().unwrap().push(item)
        })
        .on_join(move |_| {
            j.fetch_add(1, Ordering::SeqCst);
        })
        .on_leave(move |_| {
            l.fetch_add(1, Ordering::SeqCst);
        })
        .start(&net);
    let other = Component::builder("realm1")
        .transport(URL)
        .seed(2)
        .start(&net);
    callee.joined().await.unwrap();
    other.joined().await.unwrap();
    // Imperative ones, made while joined.
    let mul = callee
        .register("com.example.mul2", |inv| async move {
            let (a, b): (i64, i64) = inv.decode()?;
            Ok(CallResult::args(vec![(a * b).into()]))
        })
        .await
        .unwrap();
    let mut events = callee.subscribe("com.example.topic").await.unwrap();
    let first_id = mul.id().expect("registered");
    assert_eq!(
        other
            .call_typed::<_, i64>("com.example.add2", &(2, 3))
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        other
            .call_typed::<_, i64>("com.example.mul2", &(2, 3))
            .await
            .unwrap(),
        6
    );
    other
        .publish_with("com.example.topic", vec![1.into()], Dict::new(), ack())
        .await
        .unwrap();
    other
        .publish_with("com.example.declared", vec![1.into()], Dict::new(), ack())
        .await
        .unwrap();
    match events.next().await.unwrap() {
        SubscriptionItem::Event(e) => assert_eq!(e.args, vec![1.into()]),
        SubscriptionItem::Gap => panic!("no gap yet"),
    }

    // The router goes away (GOODBYE wamp.close.system_shutdown) and a new
    // one comes up on the same port.
    let (callee_joins, other_joins) = (callee.join_count(), other.join_count());
    assert_eq!((callee_joins, other_joins), (1, 1));
    r1.shutdown().await;
    let lost = net.now();
    let r2 = router(&net).await;
    callee.rejoined(callee_joins).await.unwrap();
    other.rejoined(other_joins).await.unwrap();
    // The first retry is after the first back-off delay (1.5 s ± 10 %).
    let (_, hi) = RetryPolicy::default().delay_bounds(0);
    let took = net.now() - lost;
    assert!(
        took <= hi + Duration::from_millis(10),
        "rejoined after {took:?}"
    );
    assert_eq!(joins.load(Ordering::SeqCst), 2);
    assert_eq!(leaves.load(Ordering::SeqCst), 1);

    // Declared and imperative registrations are back, the handle valid.
    assert_eq!(
        other
            .call_typed::<_, i64>("com.example.add2", &(4, 5))
            .await
            .unwrap(),
        9
    );
    assert_eq!(
        other
            .call_typed::<_, i64>("com.example.mul2", &(4, 5))
            .await
            .unwrap(),
        20
    );
    assert!(mul.id().is_some());
    let _ = first_id;
    // The subscription stream goes on, with a gap marker first.
    other
        .publish_with("com.example.topic", vec![2.into()], Dict::new(), ack())
        .await
        .unwrap();
    other
        .publish_with("com.example.declared", vec![2.into()], Dict::new(), ack())
        .await
        .unwrap();
    assert_eq!(events.next().await, Some(SubscriptionItem::Gap));
    match events.next().await.unwrap() {
        SubscriptionItem::Event(e) => assert_eq!(e.args, vec![2.into()]),
        SubscriptionItem::Gap => panic!("one gap only"),
    }
    assert_eq!(events.gaps(), 1);
    // The declared handler saw event 1, the gap, event 2.
    for _ in 0..100 {
        if declared_events.lock().unwrap().len() == 3 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let declared = declared_events.lock().unwrap().clone();
    assert_eq!(declared.len(), 3, "{declared:?}");
    assert_eq!(declared[1], SubscriptionItem::Gap);

    // Unregistering on the component removes it for good.
    callee.unregister(mul).await.unwrap();
    let err = other
        .call("com.example.mul2", vec![1.into(), 2.into()], Dict::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Wamp(e) if e.error == "wamp.error.no_such_procedure"),
        "{err:?}"
    );

    // Stopping leaves cleanly: no connection left at the router.
    drop(events);
    callee.stop().await;
    other.stop().await;
    until_connections(&r2, 0).await;
    assert!(matches!(
        callee.joined().await,
        Err(Error::Component(ComponentError::Stopped))
    ));
}

#[tokio::test(start_paused = true)]
async fn the_back_off_schedule_is_followed_and_seeded() {
    let net = SimNet::default();
    // A listener that hangs up on every connection: each attempt fails
    // at once, in its transport handshake.
    let mut listener = net.listen(9);
    // Each attempt's instant, as the listener sees it; the paused clock
    // auto-advances to the component's next timer while the test waits.
    let (record, mut seen) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let clock = net.clone();
    tokio::spawn(async move {
        while let Some(pipe) = listener.recv().await {
            let _ = record.send(clock.now());
            drop(pipe);
        }
    });
    let policy = RetryPolicy::default();
    let component = Component::builder("realm1")
        .transport("rs://sim:9")
        .retry(policy.clone())
        .seed(42)
        .start(&net);
    let mut attempts = Vec::new();
    while attempts.len() < 8 {
        attempts.push(seen.recv().await.expect("the listener runs"));
    }
    component.stop().await;
    let mut replay = Backoff::new(policy.clone());
    let mut rng = Rng::from_seed(42);
    for (retry, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let (lo, hi) = policy.delay_bounds(u32::try_from(retry).unwrap());
        assert!(
            lo <= gap && gap <= hi + Duration::from_millis(2),
            "retry {retry}: {gap:?}"
        );
        let expected = replay.next_delay(&mut rng).unwrap();
        let diff = gap.abs_diff(expected);
        assert!(
            diff <= Duration::from_millis(2),
            "retry {retry}: {gap:?} vs {expected:?}"
        );
    }
    // 1.5 s, then growing: the 7th delay is about 1.5 × 1.5^6 ≈ 17 s.
    assert!(attempts[7] - attempts[6] > Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_stops_the_component_and_the_classification_can_be_overridden() {
    let net = SimNet::default();
    let _router = router(&net).await;
    let fatal = Arc::new(Mutex::new(None));
    let f = fatal.clone();
    let component = Component::builder("no.such.realm")
        .transport(URL)
        .on_fatal(move |e| *f.lock().unwrap() = Some(e.to_string()))
        .start(&net);
    let err = component.joined().await.unwrap_err();
    match &err {
        Error::Component(ComponentError::Failed(e)) => {
            assert!(e.to_string().contains("wamp.error.no_such_realm"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        fatal
            .lock()
            .unwrap()
            .as_deref()
            .unwrap()
            .contains("no_such_realm")
    );
    assert!(component.stopped().unwrap().is_some());
    // Requests fail with a typed error instead of waiting.
    let err = component
        .call("com.x", vec![], Dict::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Component(ComponentError::Failed(_))),
        "{err:?}"
    );

    // Taken as transient, the component retries, here twice, then gives up.
    let component = Component::builder("no.such.realm")
        .transport(URL)
        .retry(RetryPolicy {
            max_retries: Some(2),
            ..RetryPolicy::default()
        })
        .classify(|_| Some(Disposition::Transient))
        .start(&net);
    let start = net.now();
    let err = component.joined().await.unwrap_err();
    assert!(
        matches!(&err, Error::Component(ComponentError::Failed(e))
            if matches!(**e, Error::Component(ComponentError::GaveUp { retries: 2 }))),
        "{err:?}"
    );
    assert!(net.now() - start >= Duration::from_millis(1350 + 2025));
}

#[tokio::test(start_paused = true)]
async fn calls_while_disconnected_wait_or_fail_fast_and_never_hang() {
    let net = SimNet::default();
    // No router yet: connections are refused.
    let component = Component::builder("realm1")
        .transport(URL)
        .seed(7)
        .call_timeout(Some(Duration::from_secs(5)))
        .start(&net);
    let err = component
        .when_disconnected(WhenDisconnected::FailFast)
        .call("com.example.add2", vec![], Dict::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Component(ComponentError::NotJoined)),
        "{err:?}"
    );
    let err = component
        .when_disconnected(WhenDisconnected::FailFast)
        .publish("com.example.topic", vec![], Dict::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Component(ComponentError::NotJoined)),
        "{err:?}"
    );

    let start = net.now();
    let err = component
        .when_disconnected(WhenDisconnected::Wait(Duration::from_secs(3)))
        .call("com.example.add2", vec![], Dict::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Component(ComponentError::JoinTimeout(d)) if d == Duration::from_secs(3)),
        "{err:?}"
    );
    let waited = net.now() - start;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_millis(3100),
        "{waited:?}"
    );

    // A router comes up while a call waits (the default: up to 10 s): the
    // call goes through after the join.
    let _router = router(&net).await;
    let callee = Component::builder("realm1")
        .transport(URL)
        .register("com.example.add2", add)
        .register("com.example.never", |_inv| std::future::pending())
        .start(&net);
    callee.joined().await.unwrap();
    let sum: i64 = component
        .call_typed("com.example.add2", &(1, 2))
        .await
        .unwrap();
    assert_eq!(sum, 3);

    // A callee that never answers: the call times out (and is cancelled).
    let start = net.now();
    let err = component
        .call("com.example.never", vec![], Dict::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Component(ComponentError::CallTimeout(d)) if d == Duration::from_secs(5)),
        "{err:?}"
    );
    assert!(net.now() - start >= Duration::from_secs(5));

    // A call in flight when the callee's component stops gets an error.
    let caller = component.clone();
    let pending =
        tokio::spawn(async move { caller.call("com.example.never", vec![], Dict::new()).await });
    tokio::task::yield_now().await;
    callee.stop().await;
    let result = pending.await.unwrap();
    assert!(result.is_err(), "{result:?}");
    component.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_imperative_subscription_made_while_disconnected_is_made_on_the_join() {
    let net = SimNet::default();
    let component = Component::builder("realm1")
        .transport(URL)
        .seed(3)
        .start(&net);
    let mut events = component.subscribe("com.example.later").await.unwrap();
    let reg = component.register("com.example.later", add).await.unwrap();
    assert!(events.id().is_none() && reg.id().is_none());
    let _router = router(&net).await;
    component.joined().await.unwrap();
    assert!(events.id().is_some() && reg.id().is_some());
    let publisher = Component::builder("realm1").transport(URL).start(&net);
    assert_eq!(
        publisher
            .call_typed::<_, i64>("com.example.later", &(1, 1))
            .await
            .unwrap(),
        2
    );
    publisher
        .publish_with("com.example.later", vec![], Dict::new(), ack())
        .await
        .unwrap();
    // No gap: the first subscription is not a restored one.
    assert!(matches!(
        events.next().await,
        Some(SubscriptionItem::Event(_))
    ));
    assert_eq!(events.gaps(), 0);
    component.stop().await;
    publisher.stop().await;
    assert_eq!(
        events.next().await,
        None,
        "the stream ends with the component"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_restore_is_retried_on_a_new_session() {
    let net = SimNet::default();
    let router = router(&net).await;
    // Another session holds the procedure: the component's restore is
    // refused (wamp.error.procedure_already_exists, transient).
    let holder = fahrbahn_rt::Session::connect(&net, URL, "realm1")
        .await
        .unwrap();
    holder.register("com.example.add2", add).await.unwrap();
    let connects = Arc::new(AtomicUsize::new(0));
    let c = connects.clone();
    let component = Component::builder("realm1")
        .transport(URL)
        .seed(5)
        .register("com.example.add2", add)
        .on_connect(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .start(&net);
    while connects.load(Ordering::SeqCst) < 3 {
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    assert_eq!(component.join_count(), 0, "not joined while refused");
    holder.leave().await.unwrap();
    component.joined().await.unwrap();
    let caller = Component::builder("realm1").transport(URL).start(&net);
    assert_eq!(
        caller
            .call_typed::<_, i64>("com.example.add2", &(1, 2))
            .await
            .unwrap(),
        3
    );
    component.stop().await;
    caller.stop().await;
    until_connections(&router, 0).await;
}

#[tokio::test(start_paused = true)]
async fn transports_are_tried_in_turn() {
    let net = SimNet::default();
    let _router = router(&net).await;
    let urls = Arc::new(Mutex::new(Vec::new()));
    let seen = urls.clone();
    // Port 9 refuses; the second transport reaches the router.
    let component = Component::builder("realm1")
        .transport("rs://sim:9")
        .transport(fahrbahn_rt::TransportConfig::new(URL))
        .seed(11)
        .on_connect(move |url| seen.lock().unwrap().push(url.to_owned()))
        .start(&net);
    let start = net.now();
    component.joined().await.unwrap();
    assert_eq!(*urls.lock().unwrap(), vec![URL.to_owned()]);
    // One failed attempt, then the first back-off delay.
    let (lo, hi) = RetryPolicy::default().delay_bounds(0);
    let took = net.now() - start;
    assert!(
        lo <= took && took <= hi + Duration::from_millis(10),
        "{took:?}"
    );
    component.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_subscription_not_read_holds_the_sessions_bounded_queue_and_loses_nothing() {
    const BOUND: usize = 4096;
    let net = SimNet::default();
    let _router = router(&net).await;
    let mut options = fahrbahn_rt::SessionOptions::new("realm1");
    options.max_queued_event_bytes = BOUND;
    let component = Component::builder("realm1")
        .transport(URL)
        .options(options)
        .seed(4)
        .start(&net);
    let mut events = component.subscribe("com.example.flood").await.unwrap();
    component.joined().await.unwrap();
    let publisher = Component::builder("realm1").transport(URL).start(&net);
    publisher.joined().await.unwrap();
    const EVENTS: i64 = 200;
    for n in 0..EVENTS {
        publisher
            .publish_with(
                "com.example.flood",
                vec![n.into(), "x".repeat(200).into()],
                Dict::new(),
                ack(),
            )
            .await
            .unwrap();
    }
    // The application reads nothing: the component's stream fills up and
    // the events wait in the session's bounded queue (simulated time
    // passes until they are there), never beyond its bound plus one event.
    let session = component.session().expect("joined");
    let mut waited = 0;
    while session.queued_event_bytes() == 0 {
        assert!(waited < 600, "events never reached the session's queue");
        tokio::time::advance(Duration::from_millis(100)).await;
        waited += 1;
    }
    for _ in 0..50 {
        assert!(session.queued_event_bytes() <= BOUND + 1024);
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    // Read now: every event arrives, in order.
    for n in 0..EVENTS {
        match events.next().await {
            Some(SubscriptionItem::Event(event)) => assert_eq!(event.args[0], n.into()),
            other => panic!("event {n}: {other:?}"),
        }
    }
    component.stop().await;
    publisher.stop().await;
}

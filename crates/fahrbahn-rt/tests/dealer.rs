//! The client options of the Advanced Profile dealer against the served
//! router, on the simulated network with tokio's paused clock: shared
//! registrations, `concurrency`, `force_reregister` (the old callee's
//! `Registration` ends with the router's reason) and call timeouts.

#[allow(dead_code)]
mod sim;

use std::time::Duration;

use fahrbahn_rt::{
    CallOptions, CallResult, Error, Invoke, RegisterOptions, Router, Session, SessionOptions, Value,
};
use sim::SimNet;

async fn setup() -> (SimNet, Router) {
    let net = SimNet::default();
    let router = Router::builder()
        .rawsocket("127.0.0.1:7")
        .start(&net)
        .await
        .expect("router starts");
    (net, router)
}

async fn session(net: &SimNet) -> Session {
    Session::connect_with(net, "rs://sim:7", SessionOptions::new("realm1"))
        .await
        .unwrap()
}

fn wamp_error(result: Result<CallResult, Error>) -> (String, Vec<Value>) {
    match result {
        Err(Error::Wamp(e)) => (e.error, e.args),
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

/// A callee that answers with `name`.
fn answers(
    name: &'static str,
) -> impl Fn(
    fahrbahn_rt::Invocation,
) -> std::future::Ready<Result<CallResult, fahrbahn_rt::ApplicationError>>
+ Send
+ Sync
+ 'static {
    move |_| std::future::ready(Ok(CallResult::args(vec![name.into()])))
}

#[tokio::test(start_paused = true)]
async fn shared_roundrobin_registration_alternates_callees() {
    let (net, router) = setup().await;
    let a = session(&net).await;
    let b = session(&net).await;
    let caller = session(&net).await;
    let shared = RegisterOptions::new().invoke(Invoke::RoundRobin);
    let ra = a
        .register_with_options("com.example.work", &shared, answers("a"))
        .await
        .unwrap();
    let rb = b
        .register_with_options("com.example.work", &shared, answers("b"))
        .await
        .unwrap();
    assert_eq!(ra.id, rb.id, "one shared registration");
    let mut got = Vec::new();
    for _ in 0..4 {
        let r = caller
            .call("com.example.work", vec![], Default::default())
            .await
            .unwrap();
        got.push(r.first::<String>().unwrap());
    }
    assert_eq!(got, ["a", "b", "a", "b"]);
    // Another policy for the same procedure is refused as Crossbar does.
    let err = caller
        .register_with_options(
            "com.example.work",
            &RegisterOptions::new().invoke(Invoke::Random),
            answers("c"),
        )
        .await
        .unwrap_err();
    match err {
        Error::Wamp(e) => assert_eq!(
            e.error,
            "wamp.error.procedure_exists_with_different_invocation_policy"
        ),
        other => panic!("{other:?}"),
    }
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn force_reregister_ends_the_old_registration_with_a_reason() {
    let (net, router) = setup().await;
    let old = session(&net).await;
    let new = session(&net).await;
    let before = old
        .register("com.example.proc", answers("old"))
        .await
        .unwrap();
    new.register_with_options(
        "com.example.proc",
        &RegisterOptions::new().force_reregister(true),
        answers("new"),
    )
    .await
    .unwrap();
    assert_eq!(
        before.revoked().await.as_deref(),
        Some("wamp.error.unregistered")
    );
    let r = old
        .call("com.example.proc", vec![], Default::default())
        .await
        .unwrap();
    assert_eq!(r.first::<String>().unwrap(), "new");
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn concurrency_refuses_calls_beyond_the_limit() {
    let (net, router) = setup().await;
    let callee = session(&net).await;
    let caller = session(&net).await;
    let (release, wait) = futures_channel::oneshot::channel::<()>();
    let wait = std::sync::Mutex::new(Some(wait));
    callee
        .register_with_options(
            "com.example.slow",
            &RegisterOptions::new().concurrency(1),
            move |_| {
                let wait = wait.lock().unwrap().take();
                async move {
                    if let Some(w) = wait {
                        let _ = w.await;
                    }
                    Ok(CallResult::default())
                }
            },
        )
        .await
        .unwrap();
    let first = caller.call("com.example.slow", vec![], Default::default());
    let second = async {
        // The first call's INVOCATION is out before this CALL: the
        // session sends its messages in order.
        let r = caller
            .call("com.example.slow", vec![], Default::default())
            .await;
        let _ = release.send(());
        r
    };
    let (first, second) = tokio::join!(first, second);
    first.unwrap();
    assert_eq!(
        wamp_error(second).0,
        "crossbar.error.max_concurrency_reached"
    );
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_timeout_cancels_the_call() {
    let (net, router) = setup().await;
    let callee = session(&net).await;
    let caller = session(&net).await;
    callee
        .register("com.example.never", |_| std::future::pending())
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let result = caller
        .call_with_options(
            "com.example.never",
            vec![],
            Default::default(),
            &CallOptions::new().timeout(Duration::from_millis(1500)),
        )
        .await;
    let (uri, args) = wamp_error(result);
    assert_eq!(uri, "wamp.error.canceled");
    assert_eq!(args, [Value::from("timeout reached")]);
    // Simulated time: the router's deadline, 1.5 s after the CALL.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_caller_streams_its_input_to_a_streaming_callee() {
    let (net, router) = setup().await;
    let callee = session(&net).await;
    let caller = session(&net).await;
    callee
        .register_streaming(
            "com.example.sum",
            Default::default(),
            |mut parts| async move {
                let mut sum = 0;
                let mut count = 0u64;
                while let Some(part) = parts.next().await {
                    sum += part.args[0].as_i64().unwrap_or(0);
                    count += 1;
                }
                Ok(CallResult::args(vec![sum.into(), count.into()]))
            },
        )
        .await
        .unwrap();
    let call = caller
        .call_streaming(
            "com.example.sum",
            vec![1.into()],
            Default::default(),
            Default::default(),
        )
        .unwrap();
    call.send(vec![2.into()], Default::default()).unwrap();
    call.send(vec![3.into()], Default::default()).unwrap();
    let result = call
        .finish(vec![4.into()], Default::default())
        .await
        .unwrap();
    assert_eq!(result.args, [Value::from(10), Value::from(4u64)]);
    // A plain call to a streaming handler is a stream of one part.
    let result = caller
        .call("com.example.sum", vec![5.into()], Default::default())
        .await
        .unwrap();
    assert_eq!(result.args, [Value::from(5), Value::from(1u64)]);
    router.shutdown().await;
}

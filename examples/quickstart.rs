//! Fahrbahn in one process: an embedded WAMP router, clients joined to it
//! in-process (no socket) doing RPC — typed, failing, progressive — and a
//! subscriber receiving typed events from a publisher that connects over a
//! WebSocket listener on a free loopback port. Exits 0 when everything
//! worked.
//!
//! `cargo run --example quickstart`

#![allow(clippy::print_stdout)] // an example that talks to its user

use std::time::Duration;

use fahrbahn::Error;
use fahrbahn::wamp::{
    ApplicationError, CallProgress, CallResult, Dict, Session, SessionOptions, Value, kwargs,
};

/// An event payload: a struct travels as WAMP keyword arguments.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Headline {
    title: String,
    n: i64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let rt = fahrbahn::tokio::TokioRuntime;
    let router = fahrbahn::wamp::router::Router::builder()
        .realm("realm1")
        .websocket("127.0.0.1:0")
        .start(&rt)
        .await?;
    let ws_url = router.websocket_url().expect("a WebSocket listener");
    println!("router: {}", router.access());
    println!("router: listening on {ws_url}, and in-process");

    // RPC: a callee and a caller, in-process (no socket; the router
    // applies the same limits as to its network clients).
    let callee = Session::join_in_process(&router, SessionOptions::new("realm1")).await?;
    callee
        .register("com.example.add2", |inv| async move {
            let (a, b): (i64, i64) = inv.decode()?;
            Ok(CallResult::args(vec![(a + b).into()]))
        })
        .await?;
    callee
        .register("com.example.divide", |inv| async move {
            let (a, b): (f64, f64) = inv.decode()?;
            if b == 0.0 {
                return Err(ApplicationError::new("com.example.error.division_by_zero")
                    .with_args(vec![Value::from("cannot divide by zero")])
                    .with_kwargs(kwargs([("dividend", a.into())])));
            }
            Ok(CallResult::args(vec![(a / b).into()]))
        })
        .await?;
    callee
        .register("com.example.countdown", |inv| async move {
            let from: i64 = inv.decode()?;
            for n in (1..=from).rev() {
                // Progressive results, sent only if the caller asked.
                inv.send_progress(CallResult::args(vec![n.into()]))
                    .map_err(|e| {
                        ApplicationError::new("com.example.error.gone")
                            .with_args(vec![e.to_string().into()])
                    })?;
            }
            Ok(CallResult::args(vec!["liftoff".into()]))
        })
        .await?;
    println!(
        "callee: session {} (in-process) registered com.example.add2, com.example.divide and com.example.countdown",
        callee.id()
    );

    let caller = Session::join_in_process(&router, SessionOptions::new("realm1")).await?;
    let sum: i64 = caller.call_typed("com.example.add2", &(2, 3)).await?;
    println!("caller: com.example.add2(2, 3) = {sum}");
    assert_eq!(sum, 5);
    match caller
        .call("com.example.divide", vec![1.into(), 0.into()], Dict::new())
        .await
    {
        Err(Error::Wamp(e)) => {
            println!(
                "caller: com.example.divide(1, 0) failed as expected: {e} {}",
                fahrbahn::wamp::Json(&e.kwargs)
            );
            assert_eq!(e.error, "com.example.error.division_by_zero");
        }
        other => panic!("expected an application error, got {other:?}"),
    }
    let mut countdown = caller.call_progressive(
        "com.example.countdown",
        vec![3.into()],
        Dict::new(),
        Dict::new(),
    )?;
    let mut progress = Vec::new();
    while let Some(item) = countdown.next().await {
        match item? {
            CallProgress::Progress(r) => {
                println!(
                    "caller: com.example.countdown(3) progress {}",
                    fahrbahn::wamp::Json(&r.args)
                );
                progress.push(r.first::<i64>()?);
            }
            CallProgress::Final(r) => {
                println!(
                    "caller: com.example.countdown(3) = {}",
                    fahrbahn::wamp::Json(&r.args)
                );
                assert_eq!(r.first::<String>()?, "liftoff");
            }
        }
    }
    assert_eq!(progress, vec![3, 2, 1]);

    // PubSub: a subscriber in-process, a publisher over WebSocket, typed
    // payloads both ways.
    let subscriber = Session::join_in_process(&router, SessionOptions::new("realm1")).await?;
    let mut events = subscriber.subscribe("com.example.news").await?;
    let publisher = fahrbahn::tokio::session(&ws_url, "realm1").await?;
    for n in 1..=3 {
        let headline = Headline {
            title: format!("headline #{n}"),
            n,
        };
        publisher
            .publish_typed_with(
                "com.example.news",
                &headline,
                kwargs([("acknowledge", true.into())]),
            )
            .await?;
        println!("publisher: published {headline:?} over {ws_url}");
    }
    for n in 1..=3i64 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("the event arrives")
            .expect("the subscription is open");
        let headline: Headline = event.decode()?;
        println!(
            "subscriber: received {headline:?} (as kwargs {})",
            fahrbahn::wamp::Json(&event.kwargs)
        );
        assert_eq!(headline.n, n);
    }

    for session in [caller, callee, publisher, subscriber] {
        session.leave().await?;
    }
    router.shutdown().await;
    println!("done: RPC and PubSub worked through the embedded router");
    Ok(())
}

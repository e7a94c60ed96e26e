//! Fahrbahn in one process: an embedded WAMP router on free loopback ports,
//! a callee and a caller doing RPC over WebSocket, a subscriber and a
//! publisher doing PubSub over RawSocket. Exits 0 when everything worked.
//!
//! `cargo run --example quickstart`

#![allow(clippy::print_stdout)] // an example that talks to its user

use std::time::Duration;

use fahrbahn::Error;
use fahrbahn::wamp::{ApplicationError, CallResult, Dict, Value, kwargs};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let rt = fahrbahn::tokio::TokioRuntime;
    let router = fahrbahn::wamp::router::Router::builder()
        .realm("realm1")
        .websocket("127.0.0.1:0")
        .rawsocket("127.0.0.1:0")
        .start(&rt)
        .await?;
    let ws_url = router.websocket_url().expect("a WebSocket listener");
    let rs_url = router.rawsocket_url().expect("a RawSocket listener");
    println!("router: {}", router.access());
    println!("router: listening on {ws_url} and {rs_url}");

    // RPC: a callee and a caller, over WebSocket.
    let callee = fahrbahn::tokio::session(&ws_url, "realm1").await?;
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
    println!(
        "callee: session {} registered com.example.add2 and com.example.divide",
        callee.id()
    );

    let caller = fahrbahn::tokio::session(&ws_url, "realm1").await?;
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

    // PubSub: a subscriber and a publisher, over RawSocket.
    let subscriber = fahrbahn::tokio::session(&rs_url, "realm1").await?;
    let mut events = subscriber.subscribe("com.example.news").await?;
    let publisher = fahrbahn::tokio::session(&rs_url, "realm1").await?;
    for n in 1..=3 {
        publisher
            .publish_with(
                "com.example.news",
                vec![format!("headline #{n}").into()],
                kwargs([("n", n.into())]),
                kwargs([("acknowledge", true.into())]),
            )
            .await?;
        println!("publisher: published headline #{n}");
    }
    for n in 1..=3i64 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("the event arrives")
            .expect("the subscription is open");
        println!(
            "subscriber: received {} {}",
            fahrbahn::wamp::Json(&event.args),
            fahrbahn::wamp::Json(&event.kwargs)
        );
        assert_eq!(event.kwargs.get("n"), Some(&Value::from(n)));
    }

    for session in [caller, callee, publisher, subscriber] {
        session.leave().await?;
    }
    router.shutdown().await;
    println!("done: RPC and PubSub worked through the embedded router");
    Ok(())
}

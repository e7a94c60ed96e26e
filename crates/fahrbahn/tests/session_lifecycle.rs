//! Session lifetime edge cases: a handler that holds its own session.
#![cfg(feature = "tokio")]

use std::time::Duration;

use fahrbahn::wamp::router::Router;
use fahrbahn::wamp::{CallResult, Dict};

/// A handler that captures a clone of its own session keeps the session
/// alive; when the session then ends (here: the router shuts down), the
/// registration's handler — holding the last handle — is dropped while the
/// session's state is locked. That must neither deadlock nor leak the
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_holding_its_session_does_not_deadlock_on_close() {
    let rt = fahrbahn::tokio::TokioRuntime;
    let router = Router::builder()
        .websocket("127.0.0.1:0")
        .start(&rt)
        .await
        .expect("router");
    let url = router.websocket_url().unwrap();
    let session = fahrbahn::tokio::session(&url, "realm1")
        .await
        .expect("join");
    let inner = session.clone();
    session
        .register("com.example.self", move |_inv| {
            let inner = inner.clone();
            async move {
                // Uses its own session from inside the handler.
                let r = inner
                    .call("com.example.echo", vec![1.into()], Dict::new())
                    .await
                    .map_err(|e| fahrbahn::wamp::ApplicationError::new(e.to_string()))?;
                Ok(CallResult::args(r.args))
            }
        })
        .await
        .expect("register");
    session
        .register("com.example.echo", |inv| async move {
            Ok(CallResult::args(inv.args))
        })
        .await
        .expect("register");
    let caller = fahrbahn::tokio::session(&url, "realm1")
        .await
        .expect("join");
    let r = caller
        .call("com.example.self", vec![], Dict::new())
        .await
        .expect("nested call");
    assert_eq!(r.args, vec![1.into()]);
    // The caller's subscription stream ends exactly when the caller's
    // session has closed: the event the end of the test waits for.
    let mut caller_probe = caller
        .subscribe("com.example.probe")
        .await
        .expect("subscribe");
    // Only the handler's clone is left after this.
    drop(session);
    tokio::time::timeout(Duration::from_secs(10), router.shutdown())
        .await
        .expect("shutdown completes: no deadlock");
    tokio::time::timeout(Duration::from_secs(10), async {
        while caller_probe.next().await.is_some() {}
    })
    .await
    .expect("the caller's session closes");
    assert!(caller.is_closed());
}

/// Dropping every handle of a session without a handler cycle leaves the
/// realm: the router sees the connection go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_leaves() {
    let rt = fahrbahn::tokio::TokioRuntime;
    let router = Router::builder()
        .websocket("127.0.0.1:0")
        .start(&rt)
        .await
        .expect("router");
    let url = router.websocket_url().unwrap();
    let session = fahrbahn::tokio::session(&url, "realm1")
        .await
        .expect("join");
    assert_eq!(router.connection_count(), 1);
    drop(session);
    // The connection count is router state observable only by polling: it
    // is checked again each time the executor comes back to this task (no
    // fixed sleep). The timeout is a failure bound, not a synchronisation:
    // the wait ends as soon as the count is 0.
    tokio::time::timeout(Duration::from_secs(10), async {
        while router.connection_count() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the session leaves");
    router.shutdown().await;
}

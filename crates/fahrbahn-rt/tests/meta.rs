//! The meta API, testaments, event retention and subscription revocation
//! from the async client, end to end through the served router on the
//! simulated network.

#[allow(dead_code)]
mod sim;

use fahrbahn_rt::{Dict, Router, Session, SessionOptions, TestamentScope, Value};
use sim::SimNet;

async fn start(net: &SimNet) -> Router {
    Router::builder()
        .rawsocket("127.0.0.1:7")
        .start(net)
        .await
        .expect("router starts")
}

async fn join(net: &SimNet) -> Session {
    Session::connect_with(net, "rs://sim:7", SessionOptions::new("realm1"))
        .await
        .expect("joins")
}

fn options(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn revoked_subscription_ends_with_its_reason() {
    let net = SimNet::default();
    let router = start(&net).await;
    let admin = join(&net).await;
    let user = join(&net).await;
    let mut sub = user.subscribe("com.example.news").await.unwrap();
    let meta = admin.meta();
    assert_eq!(
        meta.subscription_lookup("com.example.news", "exact")
            .await
            .unwrap(),
        Some(sub.id)
    );
    assert_eq!(
        meta.subscription_subscribers(sub.id).await.unwrap(),
        [user.id()]
    );
    assert_eq!(meta.subscription_subscriber_count(sub.id).await.unwrap(), 1);
    assert_eq!(
        meta.subscription_match("com.example.news").await.unwrap(),
        [sub.id]
    );
    assert_eq!(meta.subscription_list().await.unwrap().exact, [sub.id.0]);
    assert!(sub.revocation().is_none());
    meta.subscription_remove_subscriber(sub.id, user.id(), Some("com.example.kicked"))
        .await
        .unwrap();
    assert!(sub.next().await.is_none());
    assert_eq!(
        sub.revocation().and_then(|r| r.reason.as_deref()),
        Some("com.example.kicked")
    );
    assert!(
        meta.subscription_match("com.example.news")
            .await
            .unwrap()
            .is_empty()
    );
    admin.leave().await.unwrap();
    user.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn session_meta_and_testaments() {
    let net = SimNet::default();
    let router = start(&net).await;
    let a = join(&net).await;
    let b = join(&net).await;
    let meta = a.meta();
    assert_eq!(meta.session_count(&[]).await.unwrap(), 2);
    assert_eq!(meta.session_count(&["nobody"]).await.unwrap(), 0);
    let mut ids = meta.session_list(&[]).await.unwrap();
    ids.sort_by_key(|id| id.0);
    let mut want = vec![a.id(), b.id()];
    want.sort_by_key(|id| id.0);
    assert_eq!(ids, want);
    let info = meta.session_get(b.id()).await.unwrap();
    assert_eq!(info.get("session").and_then(Value::as_u64), Some(b.id().0));

    let mut wills = a.subscribe("com.example.will").await.unwrap();
    b.add_testament(
        "com.example.will",
        vec!["flushed".into()],
        Dict::new(),
        Dict::new(),
        TestamentScope::Destroyed,
    )
    .await
    .unwrap();
    assert_eq!(
        b.flush_testaments(TestamentScope::Destroyed).await.unwrap(),
        1
    );
    b.add_testament(
        "com.example.will",
        vec!["gone".into(), b.id().0.into()],
        Dict::new(),
        Dict::new(),
        TestamentScope::Destroyed,
    )
    .await
    .unwrap();
    b.leave().await.unwrap();
    let event = wills.next().await.unwrap();
    assert_eq!(event.args, [Value::from("gone"), b.id().0.into()]);
    a.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn retained_event_reaches_a_late_subscriber() {
    let net = SimNet::default();
    let router = start(&net).await;
    let a = join(&net).await;
    a.publish_with(
        "com.example.state",
        vec!["on".into()],
        Dict::new(),
        options(&[("retain", true.into()), ("acknowledge", true.into())]),
    )
    .await
    .unwrap();
    let b = join(&net).await;
    let mut sub = b
        .subscribe_with(
            "com.example.state",
            options(&[("get_retained", true.into())]),
        )
        .await
        .unwrap();
    let event = sub.next().await.unwrap();
    assert_eq!(event.args, [Value::from("on")]);
    assert_eq!(
        event.details.get("retained").and_then(Value::as_bool),
        Some(true)
    );
    a.leave().await.unwrap();
    b.leave().await.unwrap();
    router.shutdown().await;
}

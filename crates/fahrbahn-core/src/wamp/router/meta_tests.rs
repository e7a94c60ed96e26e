//! Tests of the broker's advanced features and the meta API: event
//! retention, subscription revocation, payload passthru, session,
//! registration and subscription meta procedures and events, testaments.

use super::*;
use crate::wamp::error::{
    ERROR_INVALID_ARGUMENT, ERROR_NO_SUCH_SESSION, ERROR_NO_SUCH_SUBSCRIPTION,
    ERROR_NOT_AUTHORIZED, ERROR_PAYLOAD_SIZE_EXCEEDED,
};

/// `value["key"]` in these tests: the entry, or `Null`.
impl std::ops::Index<&str> for Value {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

fn now() -> Instant {
    Instant::now()
}

fn router_with(config: RouterConfig) -> Router {
    Router::new(config, Rng::from_seed(7))
}

fn router() -> Router {
    router_with(RouterConfig::with_realm("r"))
}

fn join(r: &mut Router) -> (ConnectionId, u64) {
    let conn = r.attach(now());
    let mut details = Dict::new();
    let mut roles = crate::wamp::client_roles();
    roles.insert(
        "callee".into(),
        crate::wamp::session::feature_set(&["registration_revocation"]),
    );
    details.insert("roles".into(), Value::Dict(roles));
    r.handle_message(
        now(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    let out = drain(r);
    let session = out
        .iter()
        .find_map(|(c, m)| match m {
            Message::Welcome { session, .. } if *c == conn => Some(*session),
            _ => None,
        })
        .expect("welcome");
    (conn, session)
}

fn drain(r: &mut Router) -> Vec<(ConnectionId, Message)> {
    std::iter::from_fn(|| r.poll_outgoing()).collect()
}

fn dict(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn subscribe(
    r: &mut Router,
    conn: ConnectionId,
    topic: &str,
    options: Dict,
) -> (u64, Vec<Message>) {
    r.handle_message(
        now(),
        conn,
        Message::Subscribe {
            request: 1,
            options,
            topic: topic.into(),
        },
    );
    let out: Vec<Message> = drain(r)
        .into_iter()
        .filter(|(c, _)| *c == conn)
        .map(|(_, m)| m)
        .collect();
    let Some(Message::Subscribed { subscription, .. }) = out.first() else {
        panic!("{out:?}")
    };
    (*subscription, out[1..].to_vec())
}

fn publish(r: &mut Router, conn: ConnectionId, topic: &str, options: Dict, args: List) {
    r.handle_message(
        now(),
        conn,
        Message::Publish {
            request: 1,
            options,
            topic: topic.into(),
            args: Some(args),
            kwargs: None,
        },
    );
}

/// What a CALL got: RESULT's args, or ERROR's URI.
type Answer = Result<Option<List>, String>;

/// Calls `procedure`; the caller's answer (RESULT args or ERROR URI), and
/// everything else sent meanwhile.
fn call(
    r: &mut Router,
    conn: ConnectionId,
    procedure: &str,
    args: List,
) -> (Answer, Vec<(ConnectionId, Message)>) {
    r.handle_message(
        now(),
        conn,
        Message::Call {
            request: 9,
            options: Dict::new(),
            procedure: procedure.into(),
            args: Some(args),
            kwargs: None,
        },
    );
    let mut answer = None;
    let mut rest = Vec::new();
    for (c, m) in drain(r) {
        match m {
            Message::Result {
                request: 9, args, ..
            } if c == conn => {
                // `[null]` (what a meta procedure answers for nothing) is
                // `None` here.
                answer = Some(Ok(args.filter(|a| a.as_slice() != [Value::Null])));
            }
            Message::Error {
                request: 9, error, ..
            } if c == conn => answer = Some(Err(error)),
            m => rest.push((c, m)),
        }
    }
    (answer.expect("an answer"), rest)
}

fn result(r: &mut Router, conn: ConnectionId, procedure: &str, args: List) -> Value {
    match call(r, conn, procedure, args).0 {
        Ok(Some(mut a)) if a.len() == 1 => a.remove(0),
        other => panic!("{procedure}: {other:?}"),
    }
}

fn events(out: &[(ConnectionId, Message)], to: ConnectionId) -> Vec<(u64, Dict, List)> {
    out.iter()
        .filter_map(|(c, m)| match m {
            Message::Event {
                subscription,
                details,
                args,
                ..
            } if *c == to => Some((
                *subscription,
                details.clone(),
                args.clone().unwrap_or_default(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn welcome_announces_the_advanced_features() {
    let roles = router_roles();
    for (role, feature) in [
        ("broker", "event_retention"),
        ("broker", "subscription_revocation"),
        ("broker", "payload_passthru_mode"),
        ("broker", "session_meta_api"),
        ("broker", "subscription_meta_api"),
        ("broker", "registration_meta_api"),
        ("broker", "testament_meta_api"),
        ("dealer", "session_meta_api"),
        ("dealer", "registration_meta_api"),
        ("dealer", "testament_meta_api"),
        ("dealer", "payload_passthru_mode"),
    ] {
        assert_eq!(
            roles[role]["features"][feature].as_bool(),
            Some(true),
            "{role} {feature}"
        );
    }
}

#[test]
fn retained_event_goes_to_a_later_subscriber_that_asks() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let (b, _) = join(&mut r);
    let (c, _) = join(&mut r);
    publish(
        &mut r,
        a,
        "t.x",
        dict(&[("retain", true.into())]),
        vec!["kept".into()],
    );
    publish(&mut r, a, "t.y", Dict::new(), vec!["not kept".into()]);
    drain(&mut r);
    let (sub, late) = subscribe(&mut r, b, "t.x", dict(&[("get_retained", true.into())]));
    assert_eq!(late.len(), 1, "{late:?}");
    match &late[0] {
        Message::Event {
            subscription,
            details,
            args,
            ..
        } => {
            assert_eq!(*subscription, sub);
            assert_eq!(details.get("retained"), Some(&Value::Bool(true)));
            assert_eq!(args.as_deref(), Some(&["kept".into()][..]));
        }
        other => panic!("{other:?}"),
    }
    // Without get_retained: nothing. For an unretained topic: nothing.
    assert!(subscribe(&mut r, c, "t.x", Dict::new()).1.is_empty());
    assert!(
        subscribe(&mut r, c, "t.y", dict(&[("get_retained", true.into())]))
            .1
            .is_empty()
    );
    // A newer retained event replaces the older one; a prefix
    // subscription gets every matching retained topic, with its topic.
    publish(
        &mut r,
        a,
        "t.x",
        dict(&[("retain", true.into())]),
        vec!["newer".into()],
    );
    publish(
        &mut r,
        a,
        "t.z",
        dict(&[("retain", true.into())]),
        vec!["z".into()],
    );
    drain(&mut r);
    let (_, late) = subscribe(
        &mut r,
        c,
        "t.",
        dict(&[("get_retained", true.into()), ("match", "prefix".into())]),
    );
    let got: Vec<(String, Value)> = late
        .iter()
        .map(|m| match m {
            Message::Event { details, args, .. } => (
                details["topic"].as_str().unwrap().to_owned(),
                args.as_ref().unwrap()[0].clone(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("t.x".to_owned(), Value::from("newer")),
            ("t.z".to_owned(), Value::from("z"))
        ]
    );
}

#[test]
fn retained_events_obey_the_publish_filters_and_the_byte_limit() {
    let mut config = RouterConfig::with_realm("r");
    config.max_retained_bytes = 600;
    let mut r = router_with(config);
    let (a, _) = join(&mut r);
    let (b, b_id) = join(&mut r);
    publish(
        &mut r,
        a,
        "t.f",
        dict(&[
            ("retain", true.into()),
            ("exclude", Value::List(vec![b_id.into()])),
        ]),
        vec![1.into()],
    );
    drain(&mut r);
    assert!(
        subscribe(&mut r, b, "t.f", dict(&[("get_retained", true.into())]))
            .1
            .is_empty()
    );
    // 3 events of ~250 bytes: the oldest is dropped to keep the newest.
    for t in ["t.1", "t.2", "t.3"] {
        publish(
            &mut r,
            a,
            t,
            dict(&[("retain", true.into())]),
            vec!["x".repeat(100).into()],
        );
    }
    let store = &r.realms["r"].retained;
    assert!(store.bytes() <= 600, "{}", store.bytes());
    drain(&mut r);
    let retained: Vec<bool> = ["t.1", "t.2", "t.3"]
        .iter()
        .map(|t| {
            !subscribe(&mut r, b, t, dict(&[("get_retained", true.into())]))
                .1
                .is_empty()
        })
        .collect();
    assert_eq!(retained, [false, true, true]);
    // One larger than the limit is delivered but not retained.
    let (_, _) = subscribe(&mut r, a, "t.big", Dict::new());
    publish(
        &mut r,
        b,
        "t.big",
        dict(&[("retain", true.into())]),
        vec!["x".repeat(1000).into()],
    );
    assert_eq!(events(&drain(&mut r), a).len(), 1);
    assert!(r.realms["r"].retained.bytes() <= 600);
    assert!(
        subscribe(&mut r, b, "t.big", dict(&[("get_retained", true.into())]))
            .1
            .is_empty()
    );
}

#[test]
fn ppt_and_custom_options_are_forwarded_payload_untouched() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let (b, _) = join(&mut r);
    subscribe(&mut r, b, "t.p", Dict::new());
    let options = dict(&[
        ("ppt_scheme", "x_custom".into()),
        ("ppt_serializer", "cbor".into()),
        ("ppt_cipher", "xsalsa20poly1305".into()),
        ("ppt_keyid", "k1".into()),
        ("x_trace", 42u64.into()),
        ("not_forwarded", true.into()),
    ]);
    publish(&mut r, a, "t.p", options, vec![Value::Bytes(vec![1, 2, 3])]);
    let ev = events(&drain(&mut r), b);
    assert_eq!(ev.len(), 1);
    let (_, details, args) = &ev[0];
    assert_eq!(details["ppt_scheme"].as_str(), Some("x_custom"));
    assert_eq!(details["ppt_serializer"].as_str(), Some("cbor"));
    assert_eq!(details["ppt_cipher"].as_str(), Some("xsalsa20poly1305"));
    assert_eq!(details["ppt_keyid"].as_str(), Some("k1"));
    assert_eq!(details["x_trace"].as_u64(), Some(42));
    assert!(!details.contains_key("not_forwarded"));
    assert_eq!(args, &[Value::Bytes(vec![1, 2, 3])]);
    // A ppt option that is not a string, or one without ppt_scheme, is
    // refused.
    for bad in [
        dict(&[("acknowledge", true.into()), ("ppt_scheme", 1u64.into())]),
        dict(&[("acknowledge", true.into()), ("ppt_keyid", "k".into())]),
    ] {
        publish(&mut r, a, "t.p", bad, vec![]);
        let out = drain(&mut r);
        assert!(
            matches!(&out[..], [(c, Message::Error { error, .. })] if *c == a && error == ERROR_INVALID_ARGUMENT),
            "{out:?}"
        );
    }
    // CALL → INVOCATION too.
    r.handle_message(
        now(),
        b,
        Message::Register {
            request: 2,
            options: Dict::new(),
            procedure: "p.p".into(),
        },
    );
    drain(&mut r);
    r.handle_message(
        now(),
        a,
        Message::Call {
            request: 3,
            options: dict(&[("ppt_scheme", "mqtt".into()), ("x_y", "z".into())]),
            procedure: "p.p".into(),
            args: None,
            kwargs: None,
        },
    );
    match &drain(&mut r)[..] {
        [(c, Message::Invocation { details, .. })] if *c == b => {
            assert_eq!(details["ppt_scheme"].as_str(), Some("mqtt"));
            assert_eq!(details["x_y"].as_str(), Some("z"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn session_meta_procedures() {
    let mut r = router();
    let (a, a_id) = join(&mut r);
    let (_b, b_id) = join(&mut r);
    assert_eq!(
        result(&mut r, a, "wamp.session.count", vec![]),
        Value::from(2u64)
    );
    let list = result(&mut r, a, "wamp.session.list", vec![]);
    let mut ids: Vec<u64> = list
        .as_list()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    ids.sort_unstable();
    let mut want = vec![a_id, b_id];
    want.sort_unstable();
    assert_eq!(ids, want);
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.session.count",
            vec![Value::List(vec!["nobody".into()])]
        ),
        Value::from(0u64)
    );
    let info = result(&mut r, a, "wamp.session.get", vec![b_id.into()]);
    assert_eq!(info["session"].as_u64(), Some(b_id));
    assert_eq!(info["authrole"].as_str(), Some("anonymous"));
    assert_eq!(info["authmethod"].as_str(), Some("anonymous"));
    assert_eq!(
        call(&mut r, a, "wamp.session.get", vec![12345u64.into()]).0,
        Err(ERROR_NO_SUCH_SESSION.to_owned())
    );
    assert_eq!(
        call(&mut r, a, "wamp.session.get", vec!["x".into()]).0,
        Err(ERROR_INVALID_ARGUMENT.to_owned())
    );
}

#[test]
fn kill_ends_the_other_session_with_goodbye() {
    let mut r = router();
    let (a, a_id) = join(&mut r);
    let (b, b_id) = join(&mut r);
    let (c, c_id) = join(&mut r);
    subscribe(&mut r, c, "wamp.session.on_leave", Dict::new());
    assert_eq!(
        call(&mut r, a, "wamp.session.kill", vec![a_id.into()]).0,
        Err(ERROR_INVALID_ARGUMENT.to_owned())
    );
    let (answer, out) = call(
        &mut r,
        a,
        "wamp.session.kill",
        vec![b_id.into(), Value::Null, "bye".into()],
    );
    assert_eq!(answer, Ok(None));
    assert!(out.iter().any(|(to, m)| *to == b
        && matches!(m, Message::Goodbye { reason, details } if reason == "wamp.close.killed" && details["message"].as_str() == Some("bye"))));
    let leaves = events(&out, c);
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].2[0].as_u64(), Some(b_id));
    assert_eq!(r.session_count(), 2);
    // kill_by_authrole spares the caller: everyone else goes.
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.session.kill_by_authrole",
            vec!["anonymous".into()]
        ),
        Value::List(vec![c_id.into()])
    );
    assert_eq!(r.session_count(), 1);
    assert!(r.session_of(c).is_none());
}

#[test]
fn subscription_meta_procedures_and_events() {
    let mut r = router();
    let (a, a_id) = join(&mut r);
    let (b, b_id) = join(&mut r);
    let (on_create, _) = subscribe(&mut r, a, "wamp.subscription.on_create", Dict::new());
    let (on_sub, _) = subscribe(&mut r, a, "wamp.subscription.on_subscribe", Dict::new());
    let (on_unsub, _) = subscribe(&mut r, a, "wamp.subscription.on_unsubscribe", Dict::new());
    let (on_delete, _) = subscribe(&mut r, a, "wamp.subscription.on_delete", Dict::new());
    r.handle_message(
        now(),
        b,
        Message::Subscribe {
            request: 1,
            options: dict(&[("match", "prefix".into())]),
            topic: "t.".into(),
        },
    );
    let out = drain(&mut r);
    let sub = out
        .iter()
        .find_map(|(_, m)| match m {
            Message::Subscribed { subscription, .. } => Some(*subscription),
            _ => None,
        })
        .unwrap();
    let ev = events(&out, a);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0].0, on_create);
    assert_eq!(ev[0].2[0].as_u64(), Some(b_id));
    assert_eq!(ev[0].2[1]["uri"].as_str(), Some("t."));
    assert_eq!(ev[0].2[1]["match"].as_str(), Some("prefix"));
    assert_eq!(ev[1].0, on_sub);
    assert_eq!(ev[1].2, [b_id.into(), sub.into()]);

    let list = result(&mut r, a, "wamp.subscription.list", vec![]);
    assert_eq!(list["prefix"], Value::List(vec![sub.into()]));
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.subscription.lookup",
            vec![
                "t.".into(),
                Value::Dict(dict(&[("match", "prefix".into())]))
            ]
        ),
        Value::from(sub)
    );
    assert_eq!(
        call(&mut r, a, "wamp.subscription.lookup", vec!["t.".into()]).0,
        Ok(None)
    );
    assert_eq!(
        result(&mut r, a, "wamp.subscription.match", vec!["t.q".into()]),
        Value::List(vec![sub.into()])
    );
    assert_eq!(
        call(&mut r, a, "wamp.subscription.match", vec!["u".into()]).0,
        Ok(None)
    );
    assert_eq!(
        result(&mut r, a, "wamp.subscription.get", vec![sub.into()])["uri"].as_str(),
        Some("t.")
    );
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.subscription.list_subscribers",
            vec![sub.into()]
        ),
        Value::List(vec![b_id.into()])
    );
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.subscription.count_subscribers",
            vec![sub.into()]
        ),
        Value::from(1u64)
    );
    assert_eq!(
        call(&mut r, a, "wamp.subscription.get", vec![999_999u64.into()]).0,
        Err(ERROR_NO_SUCH_SUBSCRIPTION.to_owned())
    );

    // Revocation: b gets UNSUBSCRIBED with the reason; a sees the meta
    // events; b no longer gets events.
    let (answer, out) = call(
        &mut r,
        a,
        "wamp.subscription.remove_subscriber",
        vec![sub.into(), b_id.into(), "wamp.reason.test".into()],
    );
    assert_eq!(answer, Ok(None));
    assert!(out.iter().any(|(to, m)| *to == b
        && matches!(m, Message::Unsubscribed { request: 0, details: Some(d) }
            if d["subscription"].as_u64() == Some(sub) && d["reason"].as_str() == Some("wamp.reason.test"))));
    let ev = events(&out, a);
    assert_eq!(
        ev.iter().map(|e| e.0).collect::<Vec<_>>(),
        [on_unsub, on_delete]
    );
    assert_eq!(ev[0].2, [b_id.into(), sub.into()]);
    publish(&mut r, a, "t.q", Dict::new(), vec![]);
    assert!(events(&drain(&mut r), b).is_empty());
    // b's own UNSUBSCRIBE now fails: the subscription was revoked.
    r.handle_message(
        now(),
        b,
        Message::Unsubscribe {
            request: 5,
            subscription: sub,
        },
    );
    assert!(
        matches!(&drain(&mut r)[..], [(_, Message::Error { error, .. })] if error == ERROR_NO_SUCH_SUBSCRIPTION)
    );
    let _ = a_id;
}

#[test]
fn registration_meta_procedures_and_events() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let (b, b_id) = join(&mut r);
    let (on_create, _) = subscribe(
        &mut r,
        a,
        "wamp.registration.",
        dict(&[("match", "prefix".into())]),
    );
    r.handle_message(
        now(),
        b,
        Message::Register {
            request: 1,
            options: Dict::new(),
            procedure: "p.one".into(),
        },
    );
    let out = drain(&mut r);
    let reg = out
        .iter()
        .find_map(|(_, m)| match m {
            Message::Registered { registration, .. } => Some(*registration),
            _ => None,
        })
        .unwrap();
    let ev = events(&out, a);
    let topics: Vec<&str> = ev.iter().map(|e| e.1["topic"].as_str().unwrap()).collect();
    assert_eq!(
        topics,
        [
            "wamp.registration.on_create",
            "wamp.registration.on_register"
        ]
    );
    assert!(ev.iter().all(|e| e.0 == on_create));
    assert_eq!(ev[0].2[1]["uri"].as_str(), Some("p.one"));
    assert_eq!(ev[1].2, [b_id.into(), reg.into()]);

    assert_eq!(
        result(&mut r, a, "wamp.registration.list", vec![])["exact"],
        Value::List(vec![reg.into()])
    );
    assert_eq!(
        result(&mut r, a, "wamp.registration.lookup", vec!["p.one".into()]),
        Value::from(reg)
    );
    assert_eq!(
        result(&mut r, a, "wamp.registration.match", vec!["p.one".into()]),
        Value::from(reg)
    );
    assert_eq!(
        call(&mut r, a, "wamp.registration.match", vec!["p.two".into()]).0,
        Ok(None)
    );
    assert_eq!(
        result(&mut r, a, "wamp.registration.get", vec![reg.into()])["invoke"].as_str(),
        Some("single")
    );
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.registration.list_callees",
            vec![reg.into()]
        ),
        Value::List(vec![b_id.into()])
    );
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.registration.count_callees",
            vec![reg.into()]
        ),
        Value::from(1u64)
    );
    let (answer, out) = call(
        &mut r,
        a,
        "wamp.registration.remove_callee",
        vec![reg.into(), b_id.into(), "wamp.reason.gone".into()],
    );
    assert_eq!(answer, Ok(None));
    assert!(out.iter().any(|(to, m)| *to == b
        && matches!(m, Message::Unregistered { request: 0, details: Some(d) }
            if d["registration"].as_u64() == Some(reg) && d["reason"].as_str() == Some("wamp.reason.gone"))));
    let topics: Vec<String> = events(&out, a)
        .iter()
        .map(|e| e.1["topic"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        topics,
        [
            "wamp.registration.on_unregister",
            "wamp.registration.on_delete"
        ]
    );
    assert_eq!(
        call(&mut r, a, "p.one", vec![]).0,
        Err(crate::wamp::error::ERROR_NO_SUCH_PROCEDURE.to_owned())
    );
}

#[test]
fn join_and_leave_meta_events() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let (on_join, _) = subscribe(&mut r, a, "wamp.session.on_join", Dict::new());
    let (on_leave, _) = subscribe(&mut r, a, "wamp.session.on_leave", Dict::new());
    let conn = r.attach(now());
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(crate::wamp::client_roles()));
    r.handle_message(
        now(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    let out = drain(&mut r);
    let ev = events(&out, a);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, on_join);
    let b_id = r.session_of(conn).unwrap().0;
    assert_eq!(ev[0].2[0]["session"].as_u64(), Some(b_id));
    assert_eq!(ev[0].2[0]["authrole"].as_str(), Some("anonymous"));
    r.detach(conn);
    let ev = events(&drain(&mut r), a);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, on_leave);
    assert_eq!(ev[0].2, [b_id.into()]);
}

#[test]
fn testaments_are_published_when_the_session_goes() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let (t, t_id) = join(&mut r);
    subscribe(&mut r, a, "t.will", Dict::new());
    let add = |r: &mut Router, what: &str, scope: &str| {
        result(
            r,
            t,
            "wamp.session.add_testament",
            vec![
                "t.will".into(),
                Value::List(vec![what.into()]),
                Value::Dict(dict(&[("k", 1u64.into())])),
                Value::Dict(dict(&[("scope", scope.into())])),
            ],
        )
    };
    assert!(add(&mut r, "flushed", "destroyed").as_u64().is_some());
    assert_eq!(
        result(&mut r, t, "wamp.session.flush_testaments", vec![]),
        Value::from(1u64)
    );
    add(&mut r, "destroyed", "destroyed");
    add(&mut r, "detached", "detached");
    assert_eq!(
        call(
            &mut r,
            t,
            "wamp.session.add_testament",
            vec![
                "t.will".into(),
                Value::List(vec![]),
                Value::Dict(Dict::new()),
                Value::Dict(dict(&[("scope", "never".into())])),
            ]
        )
        .0,
        Err("wamp.error.testament_error".to_owned())
    );
    assert_eq!(
        call(
            &mut r,
            t,
            "wamp.session.add_testament",
            vec!["wamp.x".into()]
        )
        .0,
        Err(crate::wamp::error::ERROR_INVALID_URI.to_owned())
    );
    assert!(drain(&mut r).is_empty());
    r.detach(t);
    let ev = events(&drain(&mut r), a);
    let got: Vec<(Value, Option<u64>)> = ev
        .iter()
        .map(|e| (e.2[0].clone(), e.1.get("publisher").and_then(Value::as_u64)))
        .collect();
    assert_eq!(got, [("detached".into(), None), ("destroyed".into(), None)]);
    let _ = t_id;
}

#[test]
fn testaments_are_bounded_in_bytes() {
    let mut config = RouterConfig::with_realm("r");
    config.max_testament_bytes_per_session = 1000;
    let mut r = router_with(config);
    let (t, _) = join(&mut r);
    let big = || vec!["t.w".into(), Value::List(vec!["x".repeat(400).into()])];
    assert!(
        call(&mut r, t, "wamp.session.add_testament", big())
            .0
            .is_ok()
    );
    assert!(
        call(&mut r, t, "wamp.session.add_testament", big())
            .0
            .is_ok()
    );
    assert_eq!(
        call(&mut r, t, "wamp.session.add_testament", big()).0,
        Err(ERROR_PAYLOAD_SIZE_EXCEEDED.to_owned())
    );
    // Flushing frees the budget.
    result(
        &mut r,
        t,
        "wamp.session.flush_testaments",
        vec!["destroyed".into()],
    );
    assert!(
        call(&mut r, t, "wamp.session.add_testament", big())
            .0
            .is_ok()
    );
}

#[test]
fn meta_procedures_obey_authorization() {
    let mut roles = StaticAuthorizer::new();
    roles.add_role(
        "r",
        "anonymous",
        Role::new([Permission::new("com.", UriMatch::Prefix, Grants::ALL)]),
    );
    let mut r = router().with_authorizer(Box::new(roles));
    let (a, _) = join(&mut r);
    for procedure in [
        "wamp.session.count",
        "wamp.subscription.list",
        "wamp.session.add_testament",
    ] {
        assert_eq!(
            call(&mut r, a, procedure, vec![]).0,
            Err(ERROR_NOT_AUTHORIZED.to_owned()),
            "{procedure}"
        );
    }
}

#[test]
fn revocation_is_silent_for_subscribers_that_do_not_announce_it() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let conn = r.attach(now());
    let mut details = Dict::new();
    let mut roles = Dict::new();
    roles.insert("subscriber".into(), crate::wamp::session::feature_set(&[]));
    details.insert("roles".into(), Value::Dict(roles));
    r.handle_message(
        now(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    drain(&mut r);
    let plain = r.session_of(conn).unwrap().0;
    let (sub, _) = subscribe(&mut r, conn, "t.s", Dict::new());
    let (answer, out) = call(
        &mut r,
        a,
        "wamp.subscription.remove_subscriber",
        vec![sub.into(), plain.into()],
    );
    assert_eq!(answer, Ok(None));
    assert!(out.iter().all(|(to, _)| *to != conn), "{out:?}");
    assert_eq!(
        call(&mut r, a, "wamp.subscription.match", vec!["t.s".into()]).0,
        Ok(None)
    );
}

/// REGISTERs `procedure` for `conn` with `options`; the registration id
/// and everything sent meanwhile.
fn register(
    r: &mut Router,
    conn: ConnectionId,
    procedure: &str,
    options: Dict,
) -> (u64, Vec<(ConnectionId, Message)>) {
    r.handle_message(
        now(),
        conn,
        Message::Register {
            request: 1,
            options,
            procedure: procedure.into(),
        },
    );
    let out = drain(r);
    let reg = out
        .iter()
        .find_map(|(c, m)| match m {
            Message::Registered { registration, .. } if *c == conn => Some(*registration),
            _ => None,
        })
        .expect("registered");
    (reg, out)
}

fn topics(out: &[(ConnectionId, Message)], to: ConnectionId) -> Vec<(String, List)> {
    events(out, to)
        .into_iter()
        .map(|(_, d, args)| (d["topic"].as_str().unwrap().to_owned(), args))
        .collect()
}

#[test]
fn registration_meta_api_on_a_shared_registration_with_two_callees() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let (b, b_id) = join(&mut r);
    let (c, c_id) = join(&mut r);
    subscribe(
        &mut r,
        a,
        "wamp.registration.",
        dict(&[("match", "prefix".into())]),
    );
    let shared = || dict(&[("invoke", "roundrobin".into())]);
    let (reg, out) = register(&mut r, b, "p.shared", shared());
    let ev = topics(&out, a);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0].0, "wamp.registration.on_create");
    assert_eq!(ev[0].1[1]["invoke"].as_str(), Some("roundrobin"));
    assert_eq!(
        ev[1],
        (
            "wamp.registration.on_register".into(),
            vec![b_id.into(), reg.into()]
        )
    );
    // The second callee: the same id, on_register only.
    let (reg2, out) = register(&mut r, c, "p.shared", shared());
    assert_eq!(reg2, reg);
    assert_eq!(
        topics(&out, a),
        [(
            "wamp.registration.on_register".to_owned(),
            vec![c_id.into(), reg.into()]
        )]
    );

    let got = result(&mut r, a, "wamp.registration.get", vec![reg.into()]);
    assert_eq!(got["invoke"].as_str(), Some("roundrobin"));
    assert_eq!(got["uri"].as_str(), Some("p.shared"));
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.registration.list_callees",
            vec![reg.into()]
        ),
        Value::List(vec![b_id.into(), c_id.into()])
    );
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.registration.count_callees",
            vec![reg.into()]
        ),
        Value::from(2u64)
    );

    // A call in flight at b (roundrobin starts with the first callee).
    r.handle_message(
        now(),
        a,
        Message::Call {
            request: 20,
            options: Dict::new(),
            procedure: "p.shared".into(),
            args: None,
            kwargs: None,
        },
    );
    let invocation = drain(&mut r)
        .into_iter()
        .find_map(|(to, m)| match m {
            Message::Invocation { request, .. } if to == b => Some(request),
            _ => None,
        })
        .expect("invocation at b");

    // remove_callee takes b off (as Router::revoke_registration does): b
    // is told, the registration stays with c, no on_delete.
    let (answer, out) = call(
        &mut r,
        a,
        "wamp.registration.remove_callee",
        vec![reg.into(), b_id.into(), "com.example.bye".into()],
    );
    assert_eq!(answer, Ok(None));
    assert!(out.iter().any(|(to, m)| *to == b
        && matches!(m, Message::Unregistered { request: 0, details: Some(d) }
            if d["registration"].as_u64() == Some(reg)
                && d["reason"].as_str() == Some("com.example.bye"))));
    assert_eq!(
        topics(&out, a),
        [(
            "wamp.registration.on_unregister".to_owned(),
            vec![b_id.into(), reg.into()]
        )]
    );
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.registration.list_callees",
            vec![reg.into()]
        ),
        Value::List(vec![c_id.into()])
    );
    assert_eq!(
        call(
            &mut r,
            a,
            "wamp.registration.remove_callee",
            vec![reg.into(), b_id.into()]
        )
        .0,
        Err(crate::wamp::error::ERROR_NO_SUCH_REGISTRATION.to_owned())
    );
    // b's pending invocation is still answered.
    r.handle_message(
        now(),
        b,
        Message::Yield {
            request: invocation,
            options: Dict::new(),
            args: Some(vec!["late".into()]),
            kwargs: None,
        },
    );
    assert!(drain(&mut r).iter().any(|(to, m)| *to == a
        && matches!(m, Message::Result { request: 20, args: Some(args), .. }
            if args.as_slice() == [Value::from("late")])));
    // Further calls go to c.
    r.handle_message(
        now(),
        a,
        Message::Call {
            request: 21,
            options: Dict::new(),
            procedure: "p.shared".into(),
            args: None,
            kwargs: None,
        },
    );
    assert!(
        drain(&mut r)
            .iter()
            .any(|(to, m)| *to == c && matches!(m, Message::Invocation { .. }))
    );

    // The last callee leaves: on_unregister, then on_delete.
    r.handle_message(
        now(),
        c,
        Message::Goodbye {
            details: Dict::new(),
            reason: "wamp.close.normal".into(),
        },
    );
    let ev: Vec<String> = topics(&drain(&mut r), a)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        ev,
        [
            "wamp.registration.on_unregister",
            "wamp.registration.on_delete"
        ]
    );
    assert_eq!(
        call(&mut r, a, "wamp.registration.get", vec![reg.into()]).0,
        Err(crate::wamp::error::ERROR_NO_SUCH_REGISTRATION.to_owned())
    );
}

#[test]
fn force_reregister_reports_every_dropped_callee() {
    let mut r = router();
    let (a, _) = join(&mut r);
    let (b, b_id) = join(&mut r);
    let (c, c_id) = join(&mut r);
    let (d, d_id) = join(&mut r);
    subscribe(
        &mut r,
        a,
        "wamp.registration.",
        dict(&[("match", "prefix".into())]),
    );
    let shared = || dict(&[("invoke", "random".into())]);
    let (old, _) = register(&mut r, b, "p.f", shared());
    register(&mut r, c, "p.f", shared());
    let (new, out) = register(
        &mut r,
        d,
        "p.f",
        dict(&[
            ("invoke", "single".into()),
            ("force_reregister", true.into()),
        ]),
    );
    assert_ne!(new, old);
    let ev = topics(&out, a);
    assert_eq!(
        ev,
        [
            (
                "wamp.registration.on_unregister".to_owned(),
                vec![b_id.into(), old.into()]
            ),
            (
                "wamp.registration.on_unregister".to_owned(),
                vec![c_id.into(), old.into()]
            ),
            (
                "wamp.registration.on_delete".to_owned(),
                vec![c_id.into(), old.into()]
            ),
            (
                "wamp.registration.on_create".to_owned(),
                vec![d_id.into(), ev[3].1[1].clone()]
            ),
            (
                "wamp.registration.on_register".to_owned(),
                vec![d_id.into(), new.into()]
            ),
        ]
    );
    assert_eq!(ev[3].1[1]["invoke"].as_str(), Some("single"));
    assert_eq!(
        result(
            &mut r,
            a,
            "wamp.registration.list_callees",
            vec![new.into()]
        ),
        Value::List(vec![d_id.into()])
    );
}

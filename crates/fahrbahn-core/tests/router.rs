//! The embedded WAMP router driven through its public API.
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

use std::collections::{BTreeMap, VecDeque};

use std::time::Instant;

use fahrbahn_core::Rng;
use fahrbahn_core::wamp::error::{
    CLOSE_GOODBYE_AND_OUT, CLOSE_SYSTEM_SHUTDOWN, ERROR_CANCELED, ERROR_INVALID_URI,
    ERROR_NO_SUCH_PROCEDURE, ERROR_NO_SUCH_REALM, ERROR_NO_SUCH_REGISTRATION,
    ERROR_NO_SUCH_SUBSCRIPTION, ERROR_NOT_AUTHORIZED, ERROR_PROCEDURE_ALREADY_EXISTS,
    ERROR_PROTOCOL_VIOLATION,
};
use fahrbahn_core::wamp::router::{
    AuthDecision, AuthenticateContext, Authenticator, CloseReason, ConnectionId, HelloContext,
    Router, RouterConfig, RouterEvent, router_roles,
};
use fahrbahn_core::wamp::{
    Dict, List, Message, Session, SessionConfig, SessionEvent, SessionId, Value, client_roles,
    is_valid_id,
};

fn now() -> Instant {
    Instant::now()
}

fn d(entries: &[(&str, Value)]) -> Dict {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn hello(realm: &str) -> Message {
    Message::Hello {
        realm: realm.into(),
        details: d(&[("roles", Value::Dict(client_roles()))]),
    }
}

/// A router plus per-connection inboxes.
struct Net {
    router: Router,
    inbox: BTreeMap<ConnectionId, VecDeque<Message>>,
    events: Vec<RouterEvent>,
}

impl Net {
    fn new() -> Self {
        Self::with(Router::new(
            RouterConfig::with_realm("realm1"),
            Rng::from_seed(7),
        ))
    }

    fn with(router: Router) -> Self {
        Self {
            router,
            inbox: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn pump(&mut self) {
        while let Some((conn, msg)) = self.router.poll_outgoing() {
            self.inbox.entry(conn).or_default().push_back(msg);
        }
        while let Some(e) = self.router.poll_event() {
            self.events.push(e);
        }
    }

    fn send(&mut self, conn: ConnectionId, msg: Message) {
        self.router.handle_message(now(), conn, msg);
        self.pump();
    }

    fn recv(&mut self, conn: ConnectionId) -> Message {
        self.inbox
            .get_mut(&conn)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("nothing for {conn}"))
    }

    fn quiet(&mut self, conn: ConnectionId) {
        let left = self.inbox.get(&conn).map(|q| q.len()).unwrap_or(0);
        assert_eq!(
            left, 0,
            "unexpected messages for {conn}: {:?}",
            self.inbox[&conn]
        );
    }

    fn take_events(&mut self) -> Vec<RouterEvent> {
        std::mem::take(&mut self.events)
    }

    fn join(&mut self) -> (ConnectionId, u64) {
        let conn = self.router.attach(now());
        self.send(conn, hello("realm1"));
        match self.recv(conn) {
            Message::Welcome { session, .. } => (conn, session),
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    fn register(&mut self, conn: ConnectionId, request: u64, procedure: &str) -> u64 {
        self.send(
            conn,
            Message::Register {
                request,
                options: Dict::new(),
                procedure: procedure.into(),
            },
        );
        match self.recv(conn) {
            Message::Registered {
                request: r,
                registration,
            } if r == request => registration,
            other => panic!("expected REGISTERED, got {other:?}"),
        }
    }

    fn subscribe(&mut self, conn: ConnectionId, request: u64, topic: &str, options: Dict) -> u64 {
        self.send(
            conn,
            Message::Subscribe {
                request,
                options,
                topic: topic.into(),
            },
        );
        match self.recv(conn) {
            Message::Subscribed {
                request: r,
                subscription,
            } if r == request => subscription,
            other => panic!("expected SUBSCRIBED, got {other:?}"),
        }
    }

    /// Calls and returns the callee's INVOCATION request id.
    fn call(
        &mut self,
        caller: ConnectionId,
        callee: ConnectionId,
        request: u64,
        procedure: &str,
        options: Dict,
    ) -> u64 {
        self.send(
            caller,
            Message::Call {
                request,
                options,
                procedure: procedure.into(),
                args: None,
                kwargs: None,
            },
        );
        match self.recv(callee) {
            Message::Invocation { request, .. } => request,
            other => panic!("expected INVOCATION, got {other:?}"),
        }
    }
}

fn publish(request: u64, topic: &str, options: Dict, args: Option<List>) -> Message {
    Message::Publish {
        request,
        options,
        topic: topic.into(),
        args,
        kwargs: None,
    }
}

fn error_uri(msg: &Message) -> &str {
    match msg {
        Message::Error { error, .. } => error,
        Message::Abort { reason, .. } => reason,
        other => panic!("expected ERROR or ABORT, got {other:?}"),
    }
}

#[test]
fn join_welcome_details_and_events() {
    let mut net = Net::new();
    let conn = net.router.attach(now());
    net.send(conn, hello("realm1"));
    let Message::Welcome { session, details } = net.recv(conn) else {
        panic!("no WELCOME")
    };
    assert!(is_valid_id(session));
    assert_eq!(details["roles"], Value::Dict(router_roles()));
    assert_eq!(details["authid"], Value::from(session.to_string()));
    assert_eq!(details["authrole"], Value::from("anonymous"));
    assert_eq!(details["authmethod"], Value::from("anonymous"));
    assert!(details.contains_key("authprovider"));
    assert_eq!(details["realm"], Value::from("realm1"));
    assert!(details["agent"].as_str().unwrap().starts_with("Fahrbahn/"));
    assert_eq!(
        net.take_events(),
        [RouterEvent::Joined {
            conn,
            session: SessionId(session),
            realm: "realm1".into(),
            authid: session.to_string(),
            authrole: "anonymous".into()
        }]
    );
    assert_eq!(net.router.session_count(), 1);
    assert_eq!(net.router.session_of(conn), Some(SessionId(session)));
    assert_eq!(net.router.realms().collect::<Vec<_>>(), ["realm1"]);
}

#[test]
fn unknown_realm_is_aborted_and_closed() {
    let mut net = Net::new();
    let conn = net.router.attach(now());
    net.send(conn, hello("nope"));
    assert_eq!(error_uri(&net.recv(conn)), ERROR_NO_SUCH_REALM);
    assert_eq!(
        net.take_events(),
        [RouterEvent::CloseTransport {
            conn,
            reason: CloseReason::Aborted
        }]
    );
    // Later input is ignored.
    net.send(conn, hello("realm1"));
    net.quiet(conn);
    assert_eq!(net.router.session_count(), 0);
}

#[test]
fn auto_created_realms() {
    let mut config = RouterConfig::default();
    config.realms = vec![];
    config.auto_create_realms = true;
    let mut net = Net::with(Router::new(config, Rng::from_seed(1)));
    let conn = net.router.attach(now());
    net.send(conn, hello("com.example.new"));
    assert!(matches!(net.recv(conn), Message::Welcome { .. }));
    assert_eq!(
        net.router.realm_stats("com.example.new").unwrap().sessions,
        1
    );
    let bad = net.router.attach(now());
    net.send(bad, hello("not a uri"));
    assert_eq!(error_uri(&net.recv(bad)), ERROR_INVALID_URI);
}

#[test]
fn session_ids_are_unique() {
    let mut net = Net::new();
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let (_, session) = net.join();
        assert!(is_valid_id(session));
        assert!(ids.insert(session), "duplicate session id {session}");
    }
    assert_eq!(net.router.session_count(), 200);
}

#[test]
fn goodbye_from_client_then_rejoin() {
    let mut net = Net::new();
    let (conn, session) = net.join();
    net.register(conn, 1, "com.example.p");
    net.subscribe(conn, 2, "com.example.t", Dict::new());
    net.take_events();
    net.send(
        conn,
        Message::Goodbye {
            details: Dict::new(),
            reason: "wamp.close.close_realm".into(),
        },
    );
    assert_eq!(
        net.recv(conn),
        Message::Goodbye {
            details: Dict::new(),
            reason: CLOSE_GOODBYE_AND_OUT.into()
        }
    );
    assert_eq!(
        net.take_events(),
        [RouterEvent::Left {
            conn,
            session: SessionId(session)
        }]
    );
    let stats = net.router.realm_stats("realm1").unwrap();
    assert_eq!(
        (stats.sessions, stats.registrations, stats.subscriptions),
        (0, 0, 0)
    );
    // Join again on the same connection.
    net.send(conn, hello("realm1"));
    let Message::Welcome { session: again, .. } = net.recv(conn) else {
        panic!("no WELCOME")
    };
    assert_ne!(again, session);
}

#[test]
fn pubsub_exclude_me_and_shared_subscription() {
    let mut net = Net::new();
    let (a, _) = net.join();
    let (b, _) = net.join();
    let sa = net.subscribe(a, 1, "com.example.t", Dict::new());
    let sb = net.subscribe(b, 1, "com.example.t", Dict::new());
    assert_eq!(sa, sb, "one subscription per topic");
    assert_eq!(net.subscribe(a, 2, "com.example.t", Dict::new()), sa);
    assert_eq!(net.router.realm_stats("realm1").unwrap().subscriptions, 1);

    net.send(
        a,
        publish(3, "com.example.t", Dict::new(), Some(vec![1.into()])),
    );
    match net.recv(b) {
        Message::Event {
            subscription,
            args,
            details,
            ..
        } => {
            assert_eq!(subscription, sa);
            assert_eq!(args, Some(vec![1.into()]));
            assert!(!details.contains_key("publisher"));
        }
        other => panic!("{other:?}"),
    }
    net.quiet(a);

    net.send(
        a,
        publish(4, "com.example.t", d(&[("exclude_me", false.into())]), None),
    );
    assert!(matches!(net.recv(a), Message::Event { .. }));
    assert!(matches!(net.recv(b), Message::Event { .. }));
}

#[test]
fn acknowledge_and_publication_ids() {
    let mut net = Net::new();
    let (a, _) = net.join();
    let (b, _) = net.join();
    net.subscribe(b, 1, "com.example.t", Dict::new());
    net.send(
        a,
        publish(9, "com.example.t", d(&[("acknowledge", true.into())]), None),
    );
    let Message::Published {
        request: 9,
        publication,
    } = net.recv(a)
    else {
        panic!("no PUBLISHED")
    };
    assert!(is_valid_id(publication));
    match net.recv(b) {
        Message::Event { publication: p, .. } => assert_eq!(p, publication),
        other => panic!("{other:?}"),
    }
    // Without acknowledge: no PUBLISHED, errors are silent.
    net.send(a, publish(10, "com.example.t", Dict::new(), None));
    net.quiet(a);
    assert!(matches!(net.recv(b), Message::Event { .. }));
    net.send(a, publish(11, "bad uri", Dict::new(), None));
    net.quiet(a);
    net.send(
        a,
        publish(12, "bad uri", d(&[("acknowledge", true.into())]), None),
    );
    assert_eq!(error_uri(&net.recv(a)), ERROR_INVALID_URI);
}

#[test]
fn unsubscribe_and_errors() {
    let mut net = Net::new();
    let (a, _) = net.join();
    let (b, _) = net.join();
    let s = net.subscribe(a, 1, "com.example.t", Dict::new());
    net.subscribe(b, 1, "com.example.t", Dict::new());
    net.send(
        a,
        Message::Unsubscribe {
            request: 2,
            subscription: s,
        },
    );
    assert_eq!(
        net.recv(a),
        Message::Unsubscribed {
            request: 2,
            details: None
        }
    );
    assert_eq!(net.router.realm_stats("realm1").unwrap().subscriptions, 1);
    net.send(
        a,
        Message::Unsubscribe {
            request: 3,
            subscription: s,
        },
    );
    assert_eq!(error_uri(&net.recv(a)), ERROR_NO_SUCH_SUBSCRIPTION);
    net.send(
        b,
        Message::Unsubscribe {
            request: 2,
            subscription: s,
        },
    );
    assert!(matches!(net.recv(b), Message::Unsubscribed { .. }));
    assert_eq!(net.router.realm_stats("realm1").unwrap().subscriptions, 0);
    net.send(
        a,
        Message::Subscribe {
            request: 4,
            options: Dict::new(),
            topic: "bad..uri".into(),
        },
    );
    assert_eq!(error_uri(&net.recv(a)), ERROR_INVALID_URI);
}

#[test]
fn blackwhite_listing_and_publisher_disclosure() {
    let mut net = Net::new();
    let (p, ps) = net.join();
    let (a, sa) = net.join();
    let (b, sb) = net.join();
    for c in [a, b] {
        net.subscribe(c, 1, "com.example.t", Dict::new());
    }
    net.send(
        p,
        publish(
            1,
            "com.example.t",
            d(&[("exclude", vec![Value::from(sa)].into())]),
            None,
        ),
    );
    assert!(matches!(net.recv(b), Message::Event { .. }));
    net.quiet(a);
    net.send(
        p,
        publish(
            2,
            "com.example.t",
            d(&[("eligible", vec![Value::from(sa)].into())]),
            None,
        ),
    );
    assert!(matches!(net.recv(a), Message::Event { .. }));
    net.quiet(b);
    net.send(
        p,
        publish(
            3,
            "com.example.t",
            d(&[("exclude_authid", vec![Value::from(sb.to_string())].into())]),
            None,
        ),
    );
    assert!(matches!(net.recv(a), Message::Event { .. }));
    net.quiet(b);
    net.send(
        p,
        publish(4, "com.example.t", d(&[("disclose_me", true.into())]), None),
    );
    for c in [a, b] {
        match net.recv(c) {
            Message::Event { details, .. } => {
                assert_eq!(details["publisher"], Value::from(ps));
                assert_eq!(details["publisher_authrole"], Value::from("anonymous"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn pattern_subscriptions() {
    let mut net = Net::new();
    let (p, _) = net.join();
    let (a, _) = net.join();
    let prefix = net.subscribe(a, 1, "com.example", d(&[("match", "prefix".into())]));
    let wild = net.subscribe(a, 2, "com..t", d(&[("match", "wildcard".into())]));
    net.send(p, publish(1, "com.example.t", Dict::new(), None));
    let mut got = Vec::new();
    for _ in 0..2 {
        match net.recv(a) {
            Message::Event {
                subscription,
                details,
                ..
            } => {
                assert_eq!(details["topic"], Value::from("com.example.t"));
                got.push(subscription);
            }
            other => panic!("{other:?}"),
        }
    }
    got.sort();
    let mut want = vec![prefix, wild];
    want.sort();
    assert_eq!(got, want);
    net.send(p, publish(2, "com.other.x", Dict::new(), None));
    net.quiet(a);
}

#[test]
fn rpc_with_args_kwargs_and_caller_disclosure() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, caller_session) = net.join();
    let reg = net.register(callee, 1, "com.example.add2");
    net.send(
        caller,
        Message::Call {
            request: 5,
            options: d(&[("disclose_me", true.into())]),
            procedure: "com.example.add2".into(),
            args: Some(vec![2.into(), 3.into()]),
            kwargs: Some(d(&[("k", "v".into())])),
        },
    );
    let Message::Invocation {
        request: inv,
        registration,
        details,
        args,
        kwargs,
    } = net.recv(callee)
    else {
        panic!("no INVOCATION")
    };
    assert_eq!(registration, reg);
    assert_eq!(details["caller"], Value::from(caller_session));
    assert!(!details.contains_key("procedure"));
    assert_eq!(args, Some(vec![2.into(), 3.into()]));
    assert_eq!(kwargs, Some(d(&[("k", "v".into())])));
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: Some(vec![5.into()]),
            kwargs: Some(d(&[("sum", true.into())])),
        },
    );
    assert_eq!(
        net.recv(caller),
        Message::Result {
            request: 5,
            details: Dict::new(),
            args: Some(vec![5.into()]),
            kwargs: Some(d(&[("sum", true.into())])),
        }
    );
    assert_eq!(net.router.realm_stats("realm1").unwrap().pending_calls, 0);
    // A second YIELD for the same invocation goes nowhere.
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    net.quiet(caller);
    net.quiet(callee);
}

#[test]
fn errors_are_forwarded_intact() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.fail");
    let inv = net.call(caller, callee, 7, "com.example.fail", Dict::new());
    net.send(
        callee,
        Message::Error {
            request_type: Message::INVOCATION,
            request: inv,
            details: Dict::new(),
            error: "com.example.error.oops".into(),
            args: Some(vec!["why".into()]),
            kwargs: Some(d(&[("code", 42.into())])),
        },
    );
    assert_eq!(
        net.recv(caller),
        Message::Error {
            request_type: Message::CALL,
            request: 7,
            details: Dict::new(),
            error: "com.example.error.oops".into(),
            args: Some(vec!["why".into()]),
            kwargs: Some(d(&[("code", 42.into())])),
        }
    );
}

#[test]
fn registration_errors() {
    let mut net = Net::new();
    let (a, _) = net.join();
    let (b, _) = net.join();
    net.send(
        a,
        Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "com.example.none".into(),
            args: None,
            kwargs: None,
        },
    );
    assert_eq!(error_uri(&net.recv(a)), ERROR_NO_SUCH_PROCEDURE);
    let reg = net.register(a, 2, "com.example.p");
    net.send(
        b,
        Message::Register {
            request: 3,
            options: Dict::new(),
            procedure: "com.example.p".into(),
        },
    );
    assert_eq!(error_uri(&net.recv(b)), ERROR_PROCEDURE_ALREADY_EXISTS);
    // Only the owner may unregister.
    net.send(
        b,
        Message::Unregister {
            request: 4,
            registration: reg,
        },
    );
    assert_eq!(error_uri(&net.recv(b)), ERROR_NO_SUCH_REGISTRATION);
    net.send(
        a,
        Message::Unregister {
            request: 5,
            registration: reg,
        },
    );
    assert_eq!(
        net.recv(a),
        Message::Unregistered {
            request: 5,
            details: None
        }
    );
    assert_eq!(net.router.realm_stats("realm1").unwrap().registrations, 0);
    net.register(b, 6, "com.example.p");
    net.send(
        a,
        Message::Register {
            request: 7,
            options: Dict::new(),
            procedure: "wamp.session.count".into(),
        },
    );
    assert_eq!(error_uri(&net.recv(a)), ERROR_INVALID_URI);
}

#[test]
fn pattern_registration_sets_procedure() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.send(
        callee,
        Message::Register {
            request: 1,
            options: d(&[("match", "prefix".into())]),
            procedure: "com.example.".into(),
        },
    );
    assert!(matches!(net.recv(callee), Message::Registered { .. }));
    net.send(
        caller,
        Message::Call {
            request: 2,
            options: Dict::new(),
            procedure: "com.example.x".into(),
            args: None,
            kwargs: None,
        },
    );
    match net.recv(callee) {
        Message::Invocation { details, .. } => {
            assert_eq!(details["procedure"], Value::from("com.example.x"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn callee_detaching_mid_call_cancels_the_call() {
    let mut net = Net::new();
    let (callee, callee_session) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.slow");
    net.call(caller, callee, 3, "com.example.slow", Dict::new());
    net.take_events();
    net.router.detach(callee);
    net.pump();
    let msg = net.recv(caller);
    assert!(matches!(
        msg,
        Message::Error {
            request_type: Message::CALL,
            request: 3,
            ..
        }
    ));
    assert_eq!(error_uri(&msg), ERROR_CANCELED);
    assert_eq!(
        net.take_events(),
        [RouterEvent::Left {
            conn: callee,
            session: SessionId(callee_session)
        }]
    );
    let stats = net.router.realm_stats("realm1").unwrap();
    assert_eq!((stats.registrations, stats.pending_calls), (0, 0));
}

#[test]
fn callee_goodbye_mid_call_cancels_the_call() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.slow");
    net.call(caller, callee, 3, "com.example.slow", Dict::new());
    net.send(
        callee,
        Message::Goodbye {
            details: Dict::new(),
            reason: "wamp.close.normal".into(),
        },
    );
    assert_eq!(error_uri(&net.recv(caller)), ERROR_CANCELED);
}

#[test]
fn caller_detaching_interrupts_the_callee() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.slow");
    let inv = net.call(caller, callee, 3, "com.example.slow", Dict::new());
    net.router.detach(caller);
    net.pump();
    assert_eq!(
        net.recv(callee),
        Message::Interrupt {
            request: inv,
            options: d(&[("mode", "killnowait".into())])
        }
    );
    // A late YIELD is dropped.
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    net.quiet(callee);
    assert_eq!(net.router.realm_stats("realm1").unwrap().pending_calls, 0);
}

fn cancel(request: u64, mode: Option<&str>) -> Message {
    let mut options = Dict::new();
    if let Some(m) = mode {
        options.insert("mode".into(), m.into());
    }
    Message::Cancel { request, options }
}

#[test]
fn cancel_skip() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.slow");
    let inv = net.call(caller, callee, 3, "com.example.slow", Dict::new());
    net.send(caller, cancel(3, Some("skip")));
    assert_eq!(error_uri(&net.recv(caller)), ERROR_CANCELED);
    net.quiet(callee);
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    net.quiet(caller);
}

#[test]
fn cancel_kill_waits_for_the_callee() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.slow");
    let inv = net.call(caller, callee, 3, "com.example.slow", Dict::new());
    net.send(caller, cancel(3, Some("kill")));
    assert_eq!(
        net.recv(callee),
        Message::Interrupt {
            request: inv,
            options: d(&[("mode", "kill".into())])
        }
    );
    net.quiet(caller);
    // A second CANCEL changes nothing.
    net.send(caller, cancel(3, Some("killnowait")));
    net.quiet(caller);
    net.quiet(callee);
    net.send(
        callee,
        Message::Error {
            request_type: Message::INVOCATION,
            request: inv,
            details: Dict::new(),
            error: ERROR_CANCELED.into(),
            args: None,
            kwargs: None,
        },
    );
    assert_eq!(error_uri(&net.recv(caller)), ERROR_CANCELED);
    net.quiet(caller);
}

#[test]
fn cancel_killnowait_is_the_default() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.slow");
    let inv = net.call(caller, callee, 3, "com.example.slow", Dict::new());
    net.send(caller, cancel(3, None));
    assert_eq!(
        net.recv(callee),
        Message::Interrupt {
            request: inv,
            options: d(&[("mode", "killnowait".into())])
        }
    );
    assert_eq!(error_uri(&net.recv(caller)), ERROR_CANCELED);
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    net.quiet(caller);
    // CANCEL of an answered call: nothing.
    net.send(caller, cancel(3, None));
    net.quiet(caller);
    net.quiet(callee);
}

#[test]
fn progressive_results() {
    let mut net = Net::new();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "com.example.stream");
    let inv = net.call(
        caller,
        callee,
        3,
        "com.example.stream",
        d(&[("receive_progress", true.into())]),
    );
    let progress = |n: i64| Message::Yield {
        request: inv,
        options: d(&[("progress", true.into())]),
        args: Some(vec![n.into()]),
        kwargs: None,
    };
    for n in 0..3 {
        net.send(callee, progress(n));
        assert_eq!(
            net.recv(caller),
            Message::Result {
                request: 3,
                details: d(&[("progress", true.into())]),
                args: Some(vec![n.into()]),
                kwargs: None
            }
        );
    }
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    assert!(matches!(net.recv(caller), Message::Result { details, .. } if details.is_empty()));
    // Without receive_progress, progressive YIELDs are dropped.
    let inv = net.call(caller, callee, 4, "com.example.stream", Dict::new());
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: d(&[("progress", true.into())]),
            args: None,
            kwargs: None,
        },
    );
    net.quiet(caller);
}

#[test]
fn protocol_violations_are_isolated() {
    let mut net = Net::new();
    let (bad, bad_session) = net.join();
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(bad, 1, "com.example.bad");
    net.register(callee, 1, "com.example.good");
    net.subscribe(caller, 2, "com.example.t", Dict::new());
    net.take_events();

    net.send(
        bad,
        Message::Event {
            subscription: 1,
            publication: 1,
            details: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    match net.recv(bad) {
        Message::Abort { details, reason } => {
            assert_eq!(reason, ERROR_PROTOCOL_VIOLATION);
            assert!(details["message"].as_str().unwrap().contains("EVENT"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        net.take_events(),
        [
            RouterEvent::Left {
                conn: bad,
                session: SessionId(bad_session)
            },
            RouterEvent::CloseTransport {
                conn: bad,
                reason: CloseReason::Aborted
            }
        ]
    );
    net.send(bad, hello("realm1"));
    net.quiet(bad);

    // Everyone else still works.
    net.send(
        caller,
        Message::Call {
            request: 3,
            options: Dict::new(),
            procedure: "com.example.bad".into(),
            args: None,
            kwargs: None,
        },
    );
    assert_eq!(error_uri(&net.recv(caller)), ERROR_NO_SUCH_PROCEDURE);
    let inv = net.call(caller, callee, 4, "com.example.good", Dict::new());
    net.send(
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    assert!(matches!(
        net.recv(caller),
        Message::Result { request: 4, .. }
    ));
    net.send(callee, publish(5, "com.example.t", Dict::new(), None));
    assert!(matches!(net.recv(caller), Message::Event { .. }));
}

#[test]
fn other_violations() {
    let mut net = Net::new();
    // Before HELLO.
    let c = net.router.attach(now());
    net.send(
        c,
        Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "a".into(),
            args: None,
            kwargs: None,
        },
    );
    assert_eq!(error_uri(&net.recv(c)), ERROR_PROTOCOL_VIOLATION);
    // A second HELLO.
    let (c, _) = net.join();
    net.send(c, hello("realm1"));
    assert_eq!(error_uri(&net.recv(c)), ERROR_PROTOCOL_VIOLATION);
    // HELLO without roles.
    let c = net.router.attach(now());
    net.send(
        c,
        Message::Hello {
            realm: "realm1".into(),
            details: Dict::new(),
        },
    );
    assert_eq!(error_uri(&net.recv(c)), ERROR_PROTOCOL_VIOLATION);
    // ERROR for something other than an INVOCATION; a reused CALL id.
    let (c, _) = net.join();
    net.send(
        c,
        Message::Error {
            request_type: Message::CALL,
            request: 1,
            details: Dict::new(),
            error: "x.y".into(),
            args: None,
            kwargs: None,
        },
    );
    assert_eq!(error_uri(&net.recv(c)), ERROR_PROTOCOL_VIOLATION);
    let (callee, _) = net.join();
    let (caller, _) = net.join();
    net.register(callee, 1, "p.q");
    net.call(caller, callee, 1, "p.q", Dict::new());
    net.send(
        caller,
        Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "p.q".into(),
            args: None,
            kwargs: None,
        },
    );
    assert_eq!(error_uri(&net.recv(caller)), ERROR_PROTOCOL_VIOLATION);
    // ABORT from a client: just closed.
    let (c, s) = net.join();
    net.take_events();
    net.send(
        c,
        Message::Abort {
            details: Dict::new(),
            reason: "wamp.close.normal".into(),
        },
    );
    net.quiet(c);
    assert_eq!(
        net.take_events(),
        [
            RouterEvent::Left {
                conn: c,
                session: SessionId(s)
            },
            RouterEvent::CloseTransport {
                conn: c,
                reason: CloseReason::Aborted
            }
        ]
    );
}

#[test]
fn shutdown_says_goodbye_to_everyone() {
    let mut net = Net::new();
    let (a, sa) = net.join();
    let (b, sb) = net.join();
    let idle = net.router.attach(now());
    net.take_events();
    net.router.shutdown(now(), "maintenance");
    net.pump();
    for c in [a, b] {
        match net.recv(c) {
            Message::Goodbye { details, reason } => {
                assert_eq!(reason, CLOSE_SYSTEM_SHUTDOWN);
                assert_eq!(details["message"], Value::from("maintenance"));
            }
            other => panic!("{other:?}"),
        }
    }
    let events = net.take_events();
    assert!(events.contains(&RouterEvent::Left {
        conn: a,
        session: SessionId(sa)
    }));
    assert!(events.contains(&RouterEvent::Left {
        conn: b,
        session: SessionId(sb)
    }));
    assert!(events.contains(&RouterEvent::CloseTransport {
        conn: idle,
        reason: CloseReason::Shutdown
    }));
    assert_eq!(net.router.session_count(), 0);
    // Input other than GOODBYE is ignored until the reply.
    net.send(a, publish(1, "x.y", Dict::new(), None));
    net.quiet(a);
    net.send(
        a,
        Message::Goodbye {
            details: Dict::new(),
            reason: CLOSE_GOODBYE_AND_OUT.into(),
        },
    );
    net.quiet(a);
    assert_eq!(
        net.take_events(),
        [RouterEvent::CloseTransport {
            conn: a,
            reason: CloseReason::Goodbye
        }]
    );
    let late = net.router.attach(now());
    net.send(late, hello("realm1"));
    assert_eq!(error_uri(&net.recv(late)), CLOSE_SYSTEM_SHUTDOWN);
    assert!(net.router.is_shut_down());
}

#[test]
fn detach_discards_queued_messages() {
    let mut router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(3));
    let conn = router.attach(now());
    router.handle_message(now(), conn, hello("realm1"));
    router.detach(conn);
    assert!(router.poll_outgoing().is_none());
    assert!(matches!(
        router.poll_event(),
        Some(RouterEvent::Joined { .. })
    ));
    assert!(matches!(
        router.poll_event(),
        Some(RouterEvent::Left { .. })
    ));
    assert_eq!(router.connection_count(), 0);
    // Input for a detached connection is ignored.
    router.handle_message(now(), conn, hello("realm1"));
    assert!(router.poll_outgoing().is_none());
}

/// Ticket authentication with a fixed ticket.
struct Ticket;

impl Authenticator for Ticket {
    fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision {
        match hello.details.get("authid").and_then(Value::as_str) {
            Some(_) => AuthDecision::Challenge {
                authmethod: "ticket".into(),
                extra: Dict::new(),
            },
            None => AuthDecision::deny("wamp.error.not_authorized", "say who you are"),
        }
    }

    fn on_authenticate(&mut self, auth: &AuthenticateContext<'_>) -> AuthDecision {
        let authid = auth
            .hello
            .get("authid")
            .and_then(Value::as_str)
            .unwrap_or("");
        if auth.authmethod == "ticket" && auth.signature == "secret" {
            AuthDecision::welcome(authid, "user", "ticket")
        } else {
            AuthDecision::deny("wamp.error.authentication_failed", "wrong ticket")
        }
    }
}

#[test]
fn challenge_response_authentication() {
    let router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(5))
        .with_authenticator(Box::new(Ticket));
    let mut net = Net::with(router);
    let mut config = SessionConfig::new("realm1");
    config.authid = Some("alice".into());
    config.authmethods = vec!["ticket".into()];
    let conn = net.router.attach(now());
    let Message::Hello { realm, details } =
        Session::new(config.clone(), now()).poll_message().unwrap()
    else {
        panic!()
    };
    net.send(conn, Message::Hello { realm, details });
    assert!(
        matches!(net.recv(conn), Message::Challenge { authmethod, .. } if authmethod == "ticket")
    );
    net.send(
        conn,
        Message::Authenticate {
            signature: "secret".into(),
            extra: Dict::new(),
        },
    );
    let Message::Welcome { details, .. } = net.recv(conn) else {
        panic!("no WELCOME")
    };
    assert_eq!(details["authid"], Value::from("alice"));
    assert_eq!(details["authrole"], Value::from("user"));
    assert_eq!(details["authmethod"], Value::from("ticket"));

    let conn = net.router.attach(now());
    net.send(conn, hello("realm1"));
    assert_eq!(error_uri(&net.recv(conn)), "wamp.error.not_authorized");

    let conn = net.router.attach(now());
    let Message::Hello { realm, details } = Session::new(config, now()).poll_message().unwrap()
    else {
        panic!()
    };
    net.send(conn, Message::Hello { realm, details });
    net.recv(conn);
    net.send(
        conn,
        Message::Authenticate {
            signature: "guess".into(),
            extra: Dict::new(),
        },
    );
    assert_eq!(
        error_uri(&net.recv(conn)),
        "wamp.error.authentication_failed"
    );
    assert_eq!(net.router.session_count(), 1);
}

/// Moves messages between client sessions and the router until quiet.
fn run(router: &mut Router, clients: &mut [(ConnectionId, Session)]) {
    loop {
        let mut moved = false;
        for (conn, s) in clients.iter_mut() {
            while let Some(m) = s.poll_message() {
                router.handle_message(now(), *conn, m);
                moved = true;
            }
        }
        while let Some((conn, m)) = router.poll_outgoing() {
            if let Some((_, s)) = clients.iter_mut().find(|(c, _)| *c == conn) {
                s.handle_message(now(), m);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
}

#[test]
fn works_with_the_client_session() {
    let mut router = Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(9));
    let mut clients: Vec<(ConnectionId, Session)> = (0..2)
        .map(|_| {
            (
                router.attach(now()),
                Session::new(SessionConfig::new("realm1"), now()),
            )
        })
        .collect();
    run(&mut router, &mut clients);
    for (_, s) in &mut clients {
        assert!(matches!(s.poll_event(), Some(SessionEvent::Joined { .. })));
    }
    clients[0]
        .1
        .register("com.example.add2", Dict::new())
        .unwrap();
    clients[1]
        .1
        .subscribe("com.example.t", Dict::new())
        .unwrap();
    run(&mut router, &mut clients);
    assert!(matches!(
        clients[0].1.poll_event(),
        Some(SessionEvent::Registered { .. })
    ));
    assert!(matches!(
        clients[1].1.poll_event(),
        Some(SessionEvent::Subscribed { .. })
    ));
    let call = clients[1]
        .1
        .call(
            "com.example.add2",
            vec![2.into(), 3.into()],
            Dict::new(),
            Dict::new(),
        )
        .unwrap();
    run(&mut router, &mut clients);
    let Some(SessionEvent::Invocation { request, args, .. }) = clients[0].1.poll_event() else {
        panic!("no invocation")
    };
    let sum = args[0].as_i64().unwrap() + args[1].as_i64().unwrap();
    clients[0]
        .1
        .yield_result(request, vec![sum.into()], Dict::new(), Dict::new())
        .unwrap();
    clients[0]
        .1
        .publish("com.example.t", vec!["hi".into()], Dict::new(), Dict::new())
        .unwrap();
    run(&mut router, &mut clients);
    match clients[1].1.poll_event() {
        Some(SessionEvent::Result { request, args, .. }) => {
            assert_eq!(request, call);
            assert_eq!(args, vec![5.into()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        clients[1].1.poll_event(),
        Some(SessionEvent::Event { .. })
    ));
    clients[1].1.leave_normal(now()).unwrap();
    run(&mut router, &mut clients);
    assert!(
        matches!(clients[1].1.poll_event(), Some(SessionEvent::Closed(c)) if c.error.is_none())
    );
    assert_eq!(router.session_count(), 1);
}

/// The URI and `args[0]` of an ERROR answer.
fn refusal(msg: &Message) -> (&str, &str) {
    match msg {
        Message::Error {
            error,
            args: Some(args),
            ..
        } => (error, args[0].as_str().unwrap_or("")),
        other => panic!("expected ERROR with args, got {other:?}"),
    }
}

fn register_msg(request: u64, procedure: &str) -> Message {
    Message::Register {
        request,
        options: Dict::new(),
        procedure: procedure.into(),
    }
}

fn subscribe_msg(request: u64, topic: &str, options: Dict) -> Message {
    Message::Subscribe {
        request,
        options,
        topic: topic.into(),
    }
}

#[test]
fn registrations_per_session_are_bounded_by_default() {
    let max = RouterConfig::default().max_registrations_per_session;
    assert_eq!(max, 1000);
    let mut net = Net::new();
    let (a, _) = net.join();
    let (b, _) = net.join();
    let mut regs = Vec::new();
    for i in 0..max as u64 {
        regs.push(net.register(a, i + 1, &format!("com.example.p{i}")));
    }
    net.send(a, register_msg(5000, "com.example.over"));
    let answer = net.recv(a);
    assert!(matches!(
        answer,
        Message::Error {
            request_type: Message::REGISTER,
            request: 5000,
            ..
        }
    ));
    assert_eq!(
        refusal(&answer),
        (
            ERROR_NOT_AUTHORIZED,
            "this session may hold at most 1000 registrations"
        )
    );
    assert!(
        !net.take_events().iter().any(|e| matches!(
            e,
            RouterEvent::Left { .. } | RouterEvent::CloseTransport { .. }
        )),
        "the session stays"
    );
    assert_eq!(net.router.realm_stats("realm1").unwrap().registrations, max);
    // The session still works: it is called, and other sessions have their
    // own budget.
    let invocation = net.call(b, a, 6000, "com.example.p7", Dict::new());
    net.send(
        a,
        Message::Yield {
            request: invocation,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    assert!(matches!(net.recv(b), Message::Result { request: 6000, .. }));
    net.register(b, 6001, "com.example.over");
    // After an UNREGISTER there is room for one more, and no more.
    net.send(
        a,
        Message::Unregister {
            request: 6002,
            registration: regs[0],
        },
    );
    assert!(matches!(net.recv(a), Message::Unregistered { .. }));
    net.register(a, 6003, "com.example.again");
    net.send(a, register_msg(6004, "com.example.again2"));
    assert_eq!(refusal(&net.recv(a)).0, ERROR_NOT_AUTHORIZED);
    net.quiet(a);
}

#[test]
fn subscriptions_per_session_are_bounded_by_default() {
    let max = RouterConfig::default().max_subscriptions_per_session;
    assert_eq!(max, 1000);
    let mut net = Net::new();
    let (a, _) = net.join();
    let (b, _) = net.join();
    let mut subs = Vec::new();
    for i in 0..max as u64 {
        subs.push(net.subscribe(a, i + 1, &format!("com.example.t{i}"), Dict::new()));
    }
    // What counts is subscription ids: subscribing again to a topic the
    // session holds returns the same id, also at the limit.
    assert_eq!(
        net.subscribe(a, 5000, "com.example.t3", Dict::new()),
        subs[3]
    );
    net.send(a, subscribe_msg(5001, "com.example.over", Dict::new()));
    let answer = net.recv(a);
    assert!(matches!(
        answer,
        Message::Error {
            request_type: Message::SUBSCRIBE,
            request: 5001,
            ..
        }
    ));
    assert_eq!(
        refusal(&answer),
        (
            ERROR_NOT_AUTHORIZED,
            "this session may hold at most 1000 subscriptions"
        )
    );
    // A prefix subscription on a held topic is another subscription.
    let prefix = d(&[("match", "prefix".into())]);
    net.send(a, subscribe_msg(5002, "com.example.t3", prefix.clone()));
    assert_eq!(refusal(&net.recv(a)).0, ERROR_NOT_AUTHORIZED);
    // Joining a subscription another session created counts too.
    net.subscribe(b, 5003, "com.example.shared", Dict::new());
    net.send(a, subscribe_msg(5004, "com.example.shared", Dict::new()));
    assert_eq!(refusal(&net.recv(a)).0, ERROR_NOT_AUTHORIZED);
    assert!(
        !net.take_events().iter().any(|e| matches!(
            e,
            RouterEvent::Left { .. } | RouterEvent::CloseTransport { .. }
        )),
        "the session stays"
    );
    // The session still receives events.
    net.send(b, publish(5005, "com.example.t9", Dict::new(), None));
    assert!(matches!(net.recv(a), Message::Event { subscription, .. } if subscription == subs[9]));
    // After an UNSUBSCRIBE there is room for one more, and no more.
    net.send(
        a,
        Message::Unsubscribe {
            request: 5006,
            subscription: subs[0],
        },
    );
    assert!(matches!(net.recv(a), Message::Unsubscribed { .. }));
    net.subscribe(a, 5007, "com.example.t3", prefix);
    net.send(a, subscribe_msg(5008, "com.example.over", Dict::new()));
    assert_eq!(refusal(&net.recv(a)).0, ERROR_NOT_AUTHORIZED);
    net.quiet(a);
}

#[test]
fn uri_bytes_per_session_are_bounded() {
    assert_eq!(RouterConfig::default().max_uri_bytes_per_session, 1 << 20);
    let mut config = RouterConfig::with_realm("realm1");
    config.max_uri_bytes_per_session = 30;
    let mut net = Net::with(Router::new(config, Rng::from_seed(7)));
    let (a, _) = net.join();
    let reg = net.register(a, 1, "com.ex.p1"); // 9 bytes
    let sub = net.subscribe(a, 2, "com.ex.topic", Dict::new()); // 12 bytes
    // Held again: no new bytes.
    assert_eq!(net.subscribe(a, 3, "com.ex.topic", Dict::new()), sub);
    net.send(a, register_msg(4, "com.ex.p2.x")); // 9 + 12 + 11 > 30
    assert_eq!(
        refusal(&net.recv(a)),
        (
            ERROR_NOT_AUTHORIZED,
            "the procedures and topics this session registered and subscribed may total at most 30 bytes"
        )
    );
    net.send(a, subscribe_msg(5, "com.ex.t2.xx", Dict::new()));
    assert_eq!(refusal(&net.recv(a)).0, ERROR_NOT_AUTHORIZED);
    net.register(a, 6, "com.ex.p2"); // exactly 30
    // Freed bytes can be used again.
    net.send(
        a,
        Message::Unregister {
            request: 7,
            registration: reg,
        },
    );
    assert!(matches!(net.recv(a), Message::Unregistered { .. }));
    net.subscribe(a, 8, "com.ex.t2", Dict::new());
    net.send(
        a,
        Message::Unsubscribe {
            request: 9,
            subscription: sub,
        },
    );
    assert!(matches!(net.recv(a), Message::Unsubscribed { .. }));
    net.register(a, 10, "com.ex.p3.lo"); // 9 + 9 + 12 = 30
    net.quiet(a);
    assert_eq!(net.router.session_count(), 1);
}

//! Unit tests of the router's internals and corner cases.

use super::*;
use crate::wamp::error::{
    ERROR_AUTHENTICATION_FAILED, ERROR_CANCELED, ERROR_NOT_AUTHORIZED, ERROR_PROTOCOL_VIOLATION,
};

fn now() -> Instant {
    Instant::now()
}

fn roles(callee_features: &[&str]) -> Dict {
    let mut roles = Dict::new();
    roles.insert("caller".into(), feature_set(&[]));
    roles.insert("callee".into(), feature_set(callee_features));
    roles
}

fn router() -> Router {
    Router::new(RouterConfig::with_realm("r"), Rng::from_seed(11))
}

fn join(router: &mut Router, roles: Dict) -> (ConnectionId, u64) {
    let conn = router.attach(now());
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles));
    router.handle_message(
        now(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    match router.poll_outgoing() {
        Some((c, Message::Welcome { session, .. })) if c == conn => (conn, session),
        other => panic!("{other:?}"),
    }
}

fn drain(router: &mut Router) -> Vec<(ConnectionId, Message)> {
    std::iter::from_fn(|| router.poll_outgoing()).collect()
}

fn register(router: &mut Router, conn: ConnectionId, procedure: &str) {
    router.handle_message(
        now(),
        conn,
        Message::Register {
            request: 1,
            options: Dict::new(),
            procedure: procedure.into(),
        },
    );
    assert!(matches!(
        router.poll_outgoing(),
        Some((_, Message::Registered { .. }))
    ));
}

fn call(router: &mut Router, conn: ConnectionId, request: u64, procedure: &str, options: Dict) {
    router.handle_message(
        now(),
        conn,
        Message::Call {
            request,
            options,
            procedure: procedure.into(),
            args: None,
            kwargs: None,
        },
    );
}

#[test]
fn kill_without_callee_call_canceling_answers_at_once() {
    let mut r = router();
    let (callee, _) = join(&mut r, roles(&[]));
    let (caller, _) = join(&mut r, roles(&[]));
    register(&mut r, callee, "a.b");
    call(&mut r, caller, 1, "a.b", Dict::new());
    drain(&mut r);
    let mut options = Dict::new();
    options.insert("mode".into(), "kill".into());
    r.handle_message(
        now(),
        caller,
        Message::Cancel {
            request: 1,
            options,
        },
    );
    let out = drain(&mut r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        matches!(&out[0], (c, Message::Error { error, .. }) if *c == caller && error == ERROR_CANCELED)
    );
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 0);
}

#[test]
fn receive_progress_is_forwarded_to_every_callee() {
    let mut r = router();
    let (plain, _) = join(&mut r, roles(&[]));
    let (fancy, _) = join(&mut r, roles(&["progressive_call_results"]));
    register(&mut r, plain, "a.plain");
    register(&mut r, fancy, "a.fancy");
    let mut options = Dict::new();
    options.insert("receive_progress".into(), true.into());
    for procedure in ["a.plain", "a.fancy"] {
        call(&mut r, plain, 7, procedure, options.clone());
        match r.poll_outgoing() {
            // As Crossbar.io: callees that do not announce
            // progressive_call_results get it too.
            Some((_, Message::Invocation { details, .. })) => {
                assert!(details.contains_key("receive_progress"), "{procedure}")
            }
            other => panic!("{other:?}"),
        }
        // Cancel (killnowait) so request id 7 is free again.
        r.handle_message(
            now(),
            plain,
            Message::Cancel {
                request: 7,
                options: Dict::new(),
            },
        );
        drain(&mut r);
    }
}

#[test]
fn invalid_cancel_mode_is_ignored() {
    let mut r = router();
    let (callee, _) = join(&mut r, roles(&["call_canceling"]));
    register(&mut r, callee, "a.b");
    call(&mut r, callee, 1, "a.b", Dict::new());
    drain(&mut r);
    let mut options = Dict::new();
    options.insert("mode".into(), "explode".into());
    r.handle_message(
        now(),
        callee,
        Message::Cancel {
            request: 1,
            options,
        },
    );
    assert!(r.poll_outgoing().is_none());
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 1);
}

/// Challenges once, then denies.
struct Strict;

impl Authenticator for Strict {
    fn on_hello(&mut self, _: &HelloContext<'_>) -> AuthDecision {
        AuthDecision::Challenge {
            authmethod: "ticket".into(),
            extra: Dict::new(),
        }
    }
    fn on_authenticate(&mut self, _: &AuthenticateContext<'_>) -> AuthDecision {
        AuthDecision::deny("", "no")
    }
}

#[test]
fn authentication_releases_reserved_ids() {
    let mut r = router().with_authenticator(Box::new(Strict));
    let a = r.attach(now());
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles(&[])));
    let hello = Message::Hello {
        realm: "r".into(),
        details,
    };
    r.handle_message(now(), a, hello.clone());
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Challenge { .. }))
    ));
    assert_eq!(r.reserved.len(), 1);
    // Anything but AUTHENTICATE now is a violation.
    r.handle_message(now(), a, hello.clone());
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Abort { reason, .. })) if reason == ERROR_PROTOCOL_VIOLATION
    ));
    assert!(r.reserved.is_empty());
    let b = r.attach(now());
    r.handle_message(now(), b, hello.clone());
    r.poll_outgoing();
    r.handle_message(
        now(),
        b,
        Message::Authenticate {
            signature: "x".into(),
            extra: Dict::new(),
        },
    );
    // An empty Deny reason becomes authentication_failed.
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Abort { reason, .. })) if reason == ERROR_AUTHENTICATION_FAILED
    ));
    let c = r.attach(now());
    r.handle_message(now(), c, hello);
    r.poll_outgoing();
    r.detach(c);
    assert!(r.reserved.is_empty());
    assert_eq!(r.session_count(), 0);
}

#[test]
fn anonymous_router_refuses_authenticate() {
    let mut r = router();
    let (c, _) = join(&mut r, roles(&[]));
    r.handle_message(
        now(),
        c,
        Message::Authenticate {
            signature: String::new(),
            extra: Dict::new(),
        },
    );
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Abort { reason, .. })) if reason == ERROR_PROTOCOL_VIOLATION
    ));
    assert_eq!(r.session_count(), 0);
}

#[test]
fn self_calls_and_leaving() {
    let mut r = router();
    let (c, _) = join(&mut r, roles(&["call_canceling"]));
    register(&mut r, c, "a.b");
    call(&mut r, c, 1, "a.b", Dict::new());
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Invocation { .. }))
    ));
    r.detach(c);
    assert!(r.poll_outgoing().is_none());
    assert_eq!(r.realm_stats("r"), Some(RealmStats::default()));
    assert!(format!("{r:?}").contains("Router"));
}

// ----- deadlines and the slow-consumer decision, on simulated time ---------

fn events(router: &mut Router) -> Vec<RouterEvent> {
    std::iter::from_fn(|| router.poll_event()).collect()
}

fn hello(router: &mut Router, at: Instant, conn: ConnectionId) {
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles(&[])));
    router.handle_message(
        at,
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
}

#[test]
fn a_connection_without_hello_is_closed_at_the_hello_deadline() {
    let t0 = now();
    let mut r = router();
    let silent = r.attach(t0);
    let prompt = r.attach(t0 + Duration::from_secs(3));
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    hello(&mut r, t0 + Duration::from_secs(4), prompt);
    drain(&mut r);
    events(&mut r);
    // Nothing is due before the deadline.
    r.handle_timeout(t0 + Duration::from_secs(9));
    assert!(events(&mut r).is_empty());
    r.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(
        events(&mut r),
        [RouterEvent::CloseTransport {
            conn: silent,
            reason: CloseReason::Timeout
        }]
    );
    // The joined connection has no deadline left.
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.session_count(), 1);
}

/// Challenges every HELLO with `ticket`.
struct Challenging;

impl Authenticator for Challenging {
    fn on_hello(&mut self, _: &HelloContext<'_>) -> AuthDecision {
        AuthDecision::Challenge {
            authmethod: "ticket".into(),
            extra: Dict::new(),
        }
    }
}

#[test]
fn an_unanswered_challenge_is_aborted_at_the_deadline() {
    let t0 = now();
    let mut r = router().with_authenticator(Box::new(Challenging));
    let conn = r.attach(t0);
    hello(&mut r, t0 + Duration::from_secs(5), conn);
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Challenge { .. }))
    ));
    // The deadline runs from HELLO.
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(15)));
    r.handle_timeout(t0 + Duration::from_secs(15));
    match r.poll_outgoing() {
        Some((c, Message::Abort { reason, .. })) => {
            assert_eq!(c, conn);
            assert_eq!(reason, ERROR_NOT_AUTHORIZED);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events(&mut r),
        [RouterEvent::CloseTransport {
            conn,
            reason: CloseReason::Timeout
        }]
    );
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn shutdown_closes_clients_that_do_not_answer_goodbye() {
    let t0 = now();
    let mut r = router();
    let (quiet, _) = join(&mut r, roles(&[]));
    let (polite, _) = join(&mut r, roles(&[]));
    events(&mut r);
    r.shutdown(t0, "maintenance");
    assert_eq!(drain(&mut r).len(), 2, "a GOODBYE each");
    events(&mut r);
    r.handle_message(
        t0 + Duration::from_millis(500),
        polite,
        Message::Goodbye {
            details: Dict::new(),
            reason: crate::wamp::error::CLOSE_GOODBYE_AND_OUT.into(),
        },
    );
    assert_eq!(
        events(&mut r),
        [RouterEvent::CloseTransport {
            conn: polite,
            reason: CloseReason::Goodbye
        }]
    );
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    r.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(
        events(&mut r),
        [RouterEvent::CloseTransport {
            conn: quiet,
            reason: CloseReason::Timeout
        }]
    );
}

#[test]
fn a_slow_consumer_is_disconnected_and_the_others_go_on() {
    let config = RouterConfig {
        outbound_queue: 8,
        ..RouterConfig::with_realm("r")
    };
    let mut r = Router::new(config, Rng::from_seed(3));
    let mut sub_roles = roles(&[]);
    sub_roles.insert("subscriber".into(), feature_set(&[]));
    sub_roles.insert("publisher".into(), feature_set(&[]));
    let (slow, slow_session) = join(&mut r, sub_roles.clone());
    let (fast, _) = join(&mut r, sub_roles.clone());
    let (publisher, _) = join(&mut r, sub_roles);
    for conn in [slow, fast] {
        r.handle_message(
            now(),
            conn,
            Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: "t".into(),
            },
        );
    }
    drain(&mut r);
    events(&mut r);
    let mut fast_events = 0;
    for n in 0..20u64 {
        r.handle_message(
            now(),
            publisher,
            Message::Publish {
                request: n + 1,
                options: Dict::new(),
                topic: "t".into(),
                args: None,
                kwargs: None,
            },
        );
        // The fast subscriber takes its messages; the slow one never does.
        while let Some(msg) = r.poll_transmit_to(fast) {
            assert!(matches!(msg, Message::Event { .. }));
            fast_events += 1;
        }
    }
    assert_eq!(fast_events, 20, "the fast subscriber got every event");
    assert_eq!(r.queued(slow), 0, "the slow one's queue was dropped");
    assert_eq!(
        events(&mut r),
        [
            RouterEvent::Left {
                conn: slow,
                session: SessionId(slow_session)
            },
            RouterEvent::CloseTransport {
                conn: slow,
                reason: CloseReason::SlowConsumer
            }
        ]
    );
    assert_eq!(r.realm_stats("r").unwrap().sessions, 2);
}

// ----- answers to a client's own calls ------------------------------------

#[test]
fn a_caller_gets_every_error_when_its_callee_leaves() {
    // The caller has far more pending calls than its queue bound; it reads
    // nothing while its callee leaves, and still gets every ERROR.
    let config = RouterConfig {
        outbound_queue: 8,
        outbound_queue_bytes: 1000,
        ..RouterConfig::with_realm("r")
    };
    let mut r = Router::new(config, Rng::from_seed(5));
    let (callee, _) = join(&mut r, roles(&[]));
    let (caller, _) = join(&mut r, roles(&[]));
    register(&mut r, callee, "a.b");
    let calls = 500u64;
    for request in 1..=calls {
        call(&mut r, caller, request, "a.b", Dict::new());
        // The callee takes its invocations (and never answers).
        while let Some(msg) = r.poll_transmit_to(callee) {
            assert!(matches!(msg, Message::Invocation { .. }), "{msg:?}");
        }
    }
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, calls as usize);
    assert_eq!(r.queued(caller), 0);
    events(&mut r);
    r.detach(callee);
    assert_eq!(r.queued(caller), calls as usize, "every ERROR is queued");
    assert!(r.queued_bytes(caller) > 1000, "over both bounds");
    let mut answered = BTreeSet::new();
    while let Some(msg) = r.poll_transmit_to(caller) {
        match msg {
            Message::Error {
                request_type: Message::CALL,
                request,
                error,
                ..
            } => {
                assert_eq!(error, ERROR_CANCELED);
                answered.insert(request);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answered, (1..=calls).collect::<BTreeSet<_>>());
    assert!(
        !events(&mut r)
            .iter()
            .any(|e| matches!(e, RouterEvent::CloseTransport { conn, .. } if *conn == caller)),
        "the caller stays connected"
    );
    assert!(r.session_of(caller).is_some());
}

#[test]
fn pending_calls_per_session_are_bounded() {
    let config = RouterConfig {
        max_pending_calls_per_session: 3,
        ..RouterConfig::with_realm("r")
    };
    let mut r = Router::new(config, Rng::from_seed(6));
    let (callee, _) = join(&mut r, roles(&[]));
    let (caller, _) = join(&mut r, roles(&[]));
    let (other, _) = join(&mut r, roles(&[]));
    register(&mut r, callee, "a.b");
    let mut invocations = Vec::new();
    for request in 1..=3 {
        call(&mut r, caller, request, "a.b", Dict::new());
        match r.poll_outgoing() {
            Some((c, Message::Invocation { request, .. })) if c == callee => {
                invocations.push(request);
            }
            other => panic!("{other:?}"),
        }
    }
    // The fourth is refused; the session stays up.
    call(&mut r, caller, 4, "a.b", Dict::new());
    match r.poll_outgoing() {
        Some((
            c,
            Message::Error {
                request_type: Message::CALL,
                request: 4,
                error,
                args,
                ..
            },
        )) if c == caller => {
            assert_eq!(error, crate::wamp::error::ERROR_NOT_AUTHORIZED);
            let why = args.unwrap()[0].as_str().unwrap().to_owned();
            assert!(why.contains("too many pending calls"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 3);
    // The bound is per session: another caller goes through.
    call(&mut r, other, 1, "a.b", Dict::new());
    assert!(matches!(r.poll_outgoing(), Some((c, Message::Invocation { .. })) if c == callee));
    // Once one is answered, the caller may call again.
    r.handle_message(
        now(),
        callee,
        Message::Yield {
            request: invocations[0],
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    assert!(
        matches!(r.poll_outgoing(), Some((c, Message::Result { request: 1, .. })) if c == caller)
    );
    call(&mut r, caller, 5, "a.b", Dict::new());
    assert!(matches!(r.poll_outgoing(), Some((c, Message::Invocation { .. })) if c == callee));
    assert!(!events(&mut r).iter().any(|e| matches!(
        e,
        RouterEvent::CloseTransport { .. } | RouterEvent::Left { .. }
    )));
    assert_eq!(r.session_count(), 3);
}

// ----- messages larger than the client accepts ----------------------------

fn big(n: usize) -> Option<crate::wamp::List> {
    Some(vec![Value::String("x".repeat(n))])
}

fn small_client(r: &mut Router, features: &[&str]) -> (ConnectionId, u64) {
    let mut client_roles = roles(features);
    client_roles.insert("subscriber".into(), feature_set(&[]));
    client_roles.insert("publisher".into(), feature_set(&[]));
    let (conn, session) = join(r, client_roles);
    // A RawSocket client that announced max_len_exponent 0: 512 bytes.
    r.handle_connected(
        now(),
        conn,
        Codec::new(Serializer::Json),
        Some(crate::rawsocket::max_len_for_exponent(0)),
    );
    (conn, session)
}

fn assert_payload_error(msg: Option<Message>, request: u64) {
    match msg {
        Some(Message::Error {
            request_type: Message::CALL,
            request: r,
            error,
            args,
            ..
        }) => {
            assert_eq!(r, request);
            assert_eq!(error, crate::wamp::error::ERROR_PAYLOAD_SIZE_EXCEEDED);
            let why = args.unwrap()[0].as_str().unwrap().to_owned();
            assert!(why.contains("at most 512"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_result_too_large_for_the_caller_becomes_an_error() {
    let mut r = router();
    let (callee, _) = join(&mut r, roles(&[]));
    let (caller, _) = small_client(&mut r, &[]);
    register(&mut r, callee, "a.b");
    for (request, size) in [(1u64, 2000usize), (2, 10)] {
        call(&mut r, caller, request, "a.b", Dict::new());
        let Some(Message::Invocation { request: inv, .. }) = r.poll_transmit_to(callee) else {
            panic!()
        };
        r.handle_message(
            now(),
            callee,
            Message::Yield {
                request: inv,
                options: Dict::new(),
                args: big(size),
                kwargs: None,
            },
        );
        if size > 512 {
            assert_payload_error(r.poll_transmit_to(caller), request);
        } else {
            // The session stays usable: a small result comes through.
            assert!(matches!(
                r.poll_transmit_to(caller),
                Some(Message::Result { request: 2, .. })
            ));
        }
        assert_eq!(r.realm_stats("r").unwrap().pending_calls, 0);
        assert_eq!(r.poll_transmit_to(callee), None, "the YIELD is not retried");
    }
    assert!(r.session_of(caller).is_some());
}

#[test]
fn a_progressive_result_too_large_ends_the_call() {
    let mut r = router();
    let (callee, _) = join(
        &mut r,
        roles(&["progressive_call_results", "call_canceling"]),
    );
    let (caller, _) = small_client(&mut r, &[]);
    register(&mut r, callee, "a.b");
    let mut options = Dict::new();
    options.insert("receive_progress".into(), true.into());
    call(&mut r, caller, 1, "a.b", options);
    let Some(Message::Invocation { request: inv, .. }) = r.poll_transmit_to(callee) else {
        panic!()
    };
    let mut progress = Dict::new();
    progress.insert("progress".into(), true.into());
    r.handle_message(
        now(),
        callee,
        Message::Yield {
            request: inv,
            options: progress,
            args: big(1000),
            kwargs: None,
        },
    );
    assert_payload_error(r.poll_transmit_to(caller), 1);
    assert!(
        matches!(r.poll_transmit_to(callee), Some(Message::Interrupt { request, .. }) if request == inv)
    );
    // The callee's final answer comes too late and is dropped.
    r.handle_message(
        now(),
        callee,
        Message::Yield {
            request: inv,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    assert_eq!(r.poll_transmit_to(caller), None);
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 0);
}

#[test]
fn an_invocation_too_large_for_the_callee_fails_the_call() {
    let mut r = router();
    let (callee, _) = small_client(&mut r, &[]);
    let (caller, _) = join(&mut r, roles(&[]));
    register(&mut r, callee, "a.b");
    r.handle_message(
        now(),
        caller,
        Message::Call {
            request: 9,
            options: Dict::new(),
            procedure: "a.b".into(),
            args: big(600),
            kwargs: None,
        },
    );
    assert_payload_error(r.poll_transmit_to(caller), 9);
    assert_eq!(r.poll_transmit_to(callee), None);
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 0);
    // A small call still goes through.
    call(&mut r, caller, 10, "a.b", Dict::new());
    assert!(matches!(
        r.poll_transmit_to(callee),
        Some(Message::Invocation { .. })
    ));
}

#[test]
fn an_event_too_large_for_a_subscriber_is_skipped_for_it_alone() {
    let mut r = router();
    let (small, _) = small_client(&mut r, &[]);
    let (large, _) = small_client(&mut r, &[]);
    r.handle_connected(now(), large, Codec::new(Serializer::Json), None);
    let (publisher, _) = small_client(&mut r, &[]);
    for conn in [small, large] {
        r.handle_message(
            now(),
            conn,
            Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: "t".into(),
            },
        );
        assert!(matches!(
            r.poll_transmit_to(conn),
            Some(Message::Subscribed { .. })
        ));
    }
    let mut ack = Dict::new();
    ack.insert("acknowledge".into(), true.into());
    for (request, size) in [(1u64, 1000usize), (2, 10)] {
        r.handle_message(
            now(),
            publisher,
            Message::Publish {
                request,
                options: ack.clone(),
                topic: "t".into(),
                args: big(size),
                kwargs: None,
            },
        );
        // The publisher notices nothing.
        assert!(matches!(
            r.poll_transmit_to(publisher),
            Some(Message::Published { .. })
        ));
    }
    let sizes = |r: &mut Router, conn| {
        std::iter::from_fn(|| r.poll_transmit_to(conn))
            .map(|m| match m {
                Message::Event { args, .. } => args.unwrap()[0].as_str().unwrap().len(),
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(&mut r, small), [10], "the large event is skipped");
    assert_eq!(sizes(&mut r, large), [1000, 10]);
    assert_eq!(r.session_count(), 3);
    assert!(
        !events(&mut r)
            .iter()
            .any(|e| matches!(e, RouterEvent::CloseTransport { .. }))
    );
}

// ----- the outbound bound in bytes ----------------------------------------

/// Publishes `count` events of `size` bytes of payload on topic "t" (the
/// publisher asks for acknowledgement and takes its PUBLISHED), and lets
/// `take` deliver after each one.
fn publish_events(
    r: &mut Router,
    publisher: ConnectionId,
    count: u64,
    size: usize,
    mut take: impl FnMut(&mut Router),
) {
    let mut ack = Dict::new();
    ack.insert("acknowledge".into(), true.into());
    for n in 1..=count {
        r.handle_message(
            now(),
            publisher,
            Message::Publish {
                request: n,
                options: ack.clone(),
                topic: "t".into(),
                args: big(size),
                kwargs: None,
            },
        );
        assert!(
            matches!(r.poll_transmit_to(publisher), Some(Message::Published { request, .. }) if request == n),
            "the publisher gets no error"
        );
        take(r);
    }
}

fn pubsub(config: RouterConfig) -> (Router, [(ConnectionId, u64); 3]) {
    let mut r = Router::new(config, Rng::from_seed(9));
    let mut client = roles(&[]);
    client.insert("subscriber".into(), feature_set(&[]));
    client.insert("publisher".into(), feature_set(&[]));
    let slow = join(&mut r, client.clone());
    let fast = join(&mut r, client.clone());
    let publisher = join(&mut r, client);
    for (conn, _) in [slow, fast] {
        r.handle_message(
            now(),
            conn,
            Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: "t".into(),
            },
        );
        assert!(matches!(
            r.poll_transmit_to(conn),
            Some(Message::Subscribed { .. })
        ));
    }
    events(&mut r);
    (r, [slow, fast, publisher])
}

#[test]
fn the_outbound_bound_counts_bytes_queued_and_buffered() {
    const BOUND: usize = 64 * 1024;
    const EVENT: usize = 10_000;
    let config = RouterConfig {
        outbound_queue_bytes: BOUND,
        ..RouterConfig::with_realm("r")
    };
    let (mut r, [(slow, slow_session), (fast, _), (publisher, _)]) = pubsub(config);
    let mut fast_events = 0;
    let mut slow_buffered = 0;
    let mut max_held = 0;
    let mut disconnected_after = None;
    publish_events(&mut r, publisher, 20, EVENT, |r| {
        // The fast subscriber's serving layer writes everything out.
        while let Some(msg) = r.poll_transmit_to(fast) {
            assert!(matches!(msg, Message::Event { .. }));
            fast_events += 1;
        }
        r.handle_buffered(now(), fast, 0);
        // The slow one's serving layer takes its messages but its socket
        // accepts nothing: it reports them as buffered.
        let before = r.queued_bytes(slow);
        let mut taken = 0;
        while r.poll_transmit_to(slow).is_some() {
            taken += 1;
        }
        if taken > 0 {
            slow_buffered += before - r.queued_bytes(slow);
            r.handle_buffered(now(), slow, slow_buffered);
        }
        max_held = max_held.max(r.queued_bytes(slow));
        if disconnected_after.is_none() && r.session_of(slow).is_none() {
            disconnected_after = Some(fast_events);
        }
    });
    assert_eq!(fast_events, 20, "the fast subscriber got every event");
    assert!(max_held <= BOUND, "held {max_held} bytes, bound {BOUND}");
    assert!(max_held > BOUND - EVENT - 200, "held {max_held} bytes");
    // Six events of ~10 KB fit in 64 KiB, the seventh does not.
    assert_eq!(disconnected_after, Some(7));
    assert_eq!(r.queued_bytes(slow), 0, "its queue was dropped");
    assert_eq!(
        events(&mut r),
        [
            RouterEvent::Left {
                conn: slow,
                session: SessionId(slow_session)
            },
            RouterEvent::CloseTransport {
                conn: slow,
                reason: CloseReason::SlowConsumer
            }
        ]
    );
    assert_eq!(CloseReason::SlowConsumer.close_code().0, 1008);
}

#[test]
fn bytes_are_measured_with_the_connections_codec() {
    let (mut r, [(slow, _), _, (publisher, _)]) = pubsub(RouterConfig::with_realm("r"));
    r.handle_connected(now(), slow, Codec::new(Serializer::MsgPack), None);
    publish_events(&mut r, publisher, 1, 1000, |_| {});
    let queued = r.queued_bytes(slow);
    let Some(event) = r.poll_transmit_to(slow) else {
        panic!()
    };
    let mut encoded = Vec::new();
    Codec::new(Serializer::MsgPack).encode(&event, &mut encoded);
    assert_eq!(queued, encoded.len());
    assert_eq!(r.queued_bytes(slow), 0);
    r.handle_buffered(now(), slow, queued);
    assert_eq!(r.queued_bytes(slow), queued);
}

#[test]
fn one_message_over_the_byte_bound_reaches_an_idle_client() {
    let config = RouterConfig {
        outbound_queue_bytes: 1000,
        ..RouterConfig::with_realm("r")
    };
    let (mut r, [(slow, _), (fast, _), (publisher, _)]) = pubsub(config);
    let mut got = 0;
    publish_events(&mut r, publisher, 3, 5000, |r| {
        while r.poll_transmit_to(fast).is_some() {
            got += 1;
        }
    });
    assert_eq!(
        got, 3,
        "an idle client gets a message larger than the bound"
    );
    assert!(
        r.session_of(slow).is_none(),
        "a second one makes the slow one go"
    );
}

/// Challenges with more than a small client accepts.
struct Verbose;

impl Authenticator for Verbose {
    fn on_hello(&mut self, _: &HelloContext<'_>) -> AuthDecision {
        let mut extra = Dict::new();
        extra.insert("challenge".into(), "c".repeat(1000).into());
        AuthDecision::Challenge {
            authmethod: "ticket".into(),
            extra,
        }
    }
    fn on_authenticate(&mut self, _: &AuthenticateContext<'_>) -> AuthDecision {
        AuthDecision::deny("", "no")
    }
}

#[test]
fn any_other_message_too_large_aborts_with_payload_size_exceeded() {
    let mut r = router().with_authenticator(Box::new(Verbose));
    let conn = r.attach(now());
    r.handle_connected(now(), conn, Codec::new(Serializer::Json), Some(512));
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles(&[])));
    r.handle_message(
        now(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    match r.poll_transmit_to(conn) {
        Some(Message::Abort { reason, .. }) => {
            assert_eq!(reason, crate::wamp::error::ERROR_PAYLOAD_SIZE_EXCEEDED);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.poll_transmit_to(conn), None);
    assert_eq!(
        events(&mut r),
        [RouterEvent::CloseTransport {
            conn,
            reason: CloseReason::Aborted
        }]
    );
    assert!(r.reserved.is_empty());
}

/// A client on a connection whose messages are queued encoded with
/// `codec`, subscribed to `topic`.
fn encoded_subscriber(router: &mut Router, codec: Codec, topic: &str) -> ConnectionId {
    let conn = router.attach(now());
    router.handle_connected(now(), conn, codec, None);
    let mut details = Dict::new();
    let mut roles = Dict::new();
    roles.insert("subscriber".into(), feature_set(&[]));
    roles.insert("publisher".into(), feature_set(&[]));
    details.insert("roles".into(), Value::Dict(roles));
    router.handle_message(
        now(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    router.handle_message(
        now(),
        conn,
        Message::Subscribe {
            request: 1,
            options: Dict::new(),
            topic: topic.into(),
        },
    );
    for expected in ["WELCOME", "SUBSCRIBED"] {
        let payload = router.poll_transmit_payload(conn).expect(expected);
        let message = codec.decode(&payload).unwrap().remove(0);
        assert_eq!(message.name(), expected);
    }
    conn
}

#[test]
fn a_publish_is_encoded_once_per_codec_and_the_bytes_are_shared() {
    let mut r = router();
    let json: Vec<_> = (0..3)
        .map(|_| encoded_subscriber(&mut r, Codec::new(Serializer::Json), "t.x"))
        .collect();
    let msgpack: Vec<_> = (0..2)
        .map(|_| encoded_subscriber(&mut r, Codec::new(Serializer::MsgPack), "t.x"))
        .collect();
    let publisher = encoded_subscriber(&mut r, Codec::new(Serializer::Cbor), "other");
    let big = Value::String("x".repeat(64 * 1024));
    r.handle_message(
        now(),
        publisher,
        Message::Publish {
            request: 2,
            options: Dict::new(),
            topic: "t.x".into(),
            args: Some(vec![big.clone()]),
            kwargs: None,
        },
    );
    let mut take = |conns: &[ConnectionId]| -> Vec<Payload> {
        conns
            .iter()
            .map(|c| r.poll_transmit_payload(*c).expect("an EVENT"))
            .collect()
    };
    let json_events = take(&json);
    let msgpack_events = take(&msgpack);
    // One encoding per codec, its bytes shared by every subscriber of it.
    assert!(json_events.iter().all(|p| Arc::ptr_eq(p, &json_events[0])));
    assert!(
        msgpack_events
            .iter()
            .all(|p| Arc::ptr_eq(p, &msgpack_events[0]))
    );
    assert!(!Arc::ptr_eq(&json_events[0], &msgpack_events[0]));
    for (payload, codec) in [
        (&json_events[0], Codec::new(Serializer::Json)),
        (&msgpack_events[0], Codec::new(Serializer::MsgPack)),
    ] {
        match codec.decode(payload).unwrap().remove(0) {
            Message::Event { args, .. } => assert_eq!(args, Some(vec![big.clone()])),
            other => panic!("{other:?}"),
        }
    }
    // Each subscriber is charged the full size against its own bound.
    assert_eq!(r.queued_bytes(json[0]), 0);
    assert!(r.poll_transmit_payload(publisher).is_none());
}

#[test]
fn messages_queued_before_the_codec_is_known_are_encoded_when_taken() {
    let mut r = router();
    let (conn, _) = join(&mut r, roles(&[]));
    // Queued as built (no `handle_connected`): taken as a payload, it is
    // encoded with the connection's codec then.
    call(&mut r, conn, 5, "no.such", Dict::new());
    r.handle_connected(now(), conn, Codec::new(Serializer::Cbor), None);
    let payload = r.poll_transmit_payload(conn).expect("the ERROR");
    match Codec::new(Serializer::Cbor)
        .decode(&payload)
        .unwrap()
        .remove(0)
    {
        Message::Error { request, error, .. } => {
            assert_eq!(request, 5);
            assert_eq!(error, "wamp.error.no_such_procedure");
        }
        other => panic!("{other:?}"),
    }
}

/// Fan-out amplification: one session whose 1000 overlapping prefix
/// subscriptions all match one 64 KiB PUBLISH gets 1000 EVENTs, but the
/// router never holds more than its byte bound for it (it is cut off as a
/// slow consumer instead), and the publisher is untouched.
#[test]
fn overlapping_subscriptions_cannot_amplify_a_publish_past_the_bound() {
    let mut config = RouterConfig::with_realm("r");
    config.outbound_queue = 1_000_000; // only the bytes bound
    let bound = config.outbound_queue_bytes;
    let mut r = Router::new(config, Rng::from_seed(3));
    let victim = encoded_subscriber(&mut r, Codec::new(Serializer::MsgPack), "a");
    // "a", "aa", "aaa", …: every one a prefix of the topic published.
    let topic = "a".repeat(1000);
    for n in 1..1000 {
        let mut options = Dict::new();
        options.insert("match".into(), "prefix".into());
        r.handle_message(
            now(),
            victim,
            Message::Subscribe {
                request: 1 + n as u64,
                options,
                topic: topic[..n].to_owned(),
            },
        );
        let answer = r.poll_transmit_payload(victim).expect("SUBSCRIBED");
        let answer = Codec::new(Serializer::MsgPack).decode(&answer).unwrap();
        assert_eq!(answer[0].name(), "SUBSCRIBED");
    }
    let publisher = encoded_subscriber(&mut r, Codec::new(Serializer::MsgPack), "other");
    r.handle_message(
        now(),
        publisher,
        Message::Publish {
            request: 9,
            options: kwargs_of(&[("acknowledge", true.into())]),
            topic: topic.clone(),
            args: Some(vec![Value::String("y".repeat(64 * 1024))]),
            kwargs: None,
        },
    );
    assert!(
        r.queued_bytes(victim) <= bound,
        "{} bytes held for one client",
        r.queued_bytes(victim)
    );
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            RouterEvent::CloseTransport {
                conn,
                reason: CloseReason::SlowConsumer
            } if *conn == victim
        )),
        "{events:?}"
    );
    // The publisher got its PUBLISHED and nothing else happened to it.
    let published = r.poll_transmit_payload(publisher).expect("PUBLISHED");
    let message = Codec::new(Serializer::MsgPack).decode(&published).unwrap();
    assert_eq!(message[0].name(), "PUBLISHED");
}

fn kwargs_of(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

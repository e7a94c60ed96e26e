//! The Advanced Profile dealer: shared registrations, concurrency,
//! force_reregister, call timeouts (simulated time), progressive call
//! invocations, registration revocation, liberal `receive_progress`.

use std::time::Duration;

use super::*;
use crate::wamp::error::{
    ERROR_CANCELED, ERROR_FEATURE_NOT_SUPPORTED, ERROR_INVALID_ARGUMENT,
    ERROR_MAX_CONCURRENCY_REACHED, ERROR_PROCEDURE_ALREADY_EXISTS,
    ERROR_PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
};

/// One base instant; every test moves simulated time from it.
fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn router() -> Router {
    Router::new(RouterConfig::with_realm("r"), Rng::from_seed(7))
}

fn roles(callee: &[&str]) -> Dict {
    let mut roles = Dict::new();
    roles.insert(
        "caller".into(),
        feature_set(&["progressive_call_invocations", "progressive_call_results"]),
    );
    roles.insert("callee".into(), feature_set(callee));
    roles
}

fn join(r: &mut Router, callee_features: &[&str]) -> (ConnectionId, u64) {
    let conn = r.attach(t0());
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles(callee_features)));
    r.handle_message(
        t0(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    match r.poll_outgoing() {
        Some((c, Message::Welcome { session, .. })) if c == conn => (conn, session),
        other => panic!("{other:?}"),
    }
}

fn drain(r: &mut Router) -> Vec<(ConnectionId, Message)> {
    std::iter::from_fn(|| r.poll_outgoing()).collect()
}

fn opts(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// REGISTER; the answer.
fn register(r: &mut Router, conn: ConnectionId, procedure: &str, options: Dict) -> Message {
    r.handle_message(
        t0(),
        conn,
        Message::Register {
            request: 1,
            options,
            procedure: procedure.into(),
        },
    );
    let out = drain(r);
    assert_eq!(out.len(), 1, "{out:?}");
    out.into_iter().next().unwrap().1
}

fn registered(msg: Message) -> u64 {
    match msg {
        Message::Registered { registration, .. } => registration,
        other => panic!("{other:?}"),
    }
}

fn shared(invoke: &str) -> Dict {
    opts(&[("invoke", invoke.into())])
}

fn call_at(
    r: &mut Router,
    at: Instant,
    conn: ConnectionId,
    request: u64,
    options: Dict,
    args: Option<crate::wamp::List>,
) {
    r.handle_message(
        at,
        conn,
        Message::Call {
            request,
            options,
            procedure: "p".into(),
            args,
            kwargs: None,
        },
    );
}

/// CALLs `p` and returns (connection that got the INVOCATION, its id).
fn call_routed(r: &mut Router, caller: ConnectionId, request: u64) -> (ConnectionId, u64) {
    call_at(r, t0(), caller, request, Dict::new(), None);
    match drain(r).as_slice() {
        [(c, Message::Invocation { request, .. })] => (*c, *request),
        other => panic!("{other:?}"),
    }
}

fn yield_(r: &mut Router, conn: ConnectionId, invocation: u64) {
    r.handle_message(
        t0(),
        conn,
        Message::Yield {
            request: invocation,
            options: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
}

fn error_uri(msg: &Message) -> &str {
    match msg {
        Message::Error { error, .. } => error,
        other => panic!("{other:?}"),
    }
}

/// Three callees sharing `p` with `invoke`, and a caller.
fn three(invoke: &str) -> (Router, [ConnectionId; 3], ConnectionId, u64) {
    let mut r = router();
    let mut conns = Vec::new();
    let mut id = None;
    for _ in 0..3 {
        let (c, _) = join(&mut r, &["call_canceling"]);
        let reg = registered(register(&mut r, c, "p", shared(invoke)));
        assert_eq!(*id.get_or_insert(reg), reg, "one registration id");
        conns.push(c);
    }
    let (caller, _) = join(&mut r, &[]);
    (r, [conns[0], conns[1], conns[2]], caller, id.unwrap())
}

#[test]
fn welcome_announces_the_dealer_features() {
    let dealer = router_roles();
    let features = dealer["dealer"].get("features").unwrap();
    for f in [
        "shared_registration",
        "call_timeout",
        "progressive_call_invocations",
        "registration_revocation",
    ] {
        assert_eq!(features.get(f), Some(&Value::Bool(true)), "{f}");
    }
}

#[test]
fn roundrobin_takes_the_callees_in_turn() {
    let (mut r, c, caller, _) = three("roundrobin");
    let got: Vec<ConnectionId> = (1..=6).map(|i| call_routed(&mut r, caller, i).0).collect();
    assert_eq!(got, [c[0], c[1], c[2], c[0], c[1], c[2]]);
    assert_eq!(r.realm_stats("r").unwrap().registrations, 1);
}

#[test]
fn first_and_last_follow_the_registration_order() {
    let (mut r, c, caller, reg) = three("first");
    assert_eq!(call_routed(&mut r, caller, 1).0, c[0]);
    assert_eq!(call_routed(&mut r, caller, 2).0, c[0]);
    r.handle_message(
        t0(),
        c[0],
        Message::Unregister {
            request: 2,
            registration: reg,
        },
    );
    assert!(matches!(
        drain(&mut r).as_slice(),
        [(_, Message::Unregistered { .. })]
    ));
    assert_eq!(call_routed(&mut r, caller, 3).0, c[1]);

    let (mut r, c, caller, _) = three("last");
    assert_eq!(call_routed(&mut r, caller, 1).0, c[2]);
    assert_eq!(call_routed(&mut r, caller, 2).0, c[2]);
}

#[test]
fn random_draws_from_the_injected_rng() {
    let run = || {
        let (mut r, c, caller, _) = three("random");
        let picks: Vec<usize> = (1..=30)
            .map(|i| {
                let to = call_routed(&mut r, caller, i).0;
                c.iter().position(|x| *x == to).unwrap()
            })
            .collect();
        picks
    };
    let picks = run();
    assert_eq!(picks, run(), "same seed, same draws");
    for k in 0..3 {
        assert!(picks.contains(&k), "callee {k} never drawn: {picks:?}");
    }
}

#[test]
fn leastbusy_picks_the_callee_with_the_fewest_pending_invocations() {
    let (mut r, c, caller, _) = three("leastbusy");
    // Ties go to the callee that registered first.
    let (a, inv_a) = call_routed(&mut r, caller, 1);
    assert_eq!(a, c[0]);
    assert_eq!(call_routed(&mut r, caller, 2).0, c[1]);
    assert_eq!(call_routed(&mut r, caller, 3).0, c[2]);
    assert_eq!(call_routed(&mut r, caller, 4).0, c[0]);
    // c[0] has 2 pending; answering one makes it tie with the others.
    yield_(&mut r, c[0], inv_a);
    drain(&mut r);
    assert_eq!(call_routed(&mut r, caller, 5).0, c[0]);
    assert_eq!(call_routed(&mut r, caller, 6).0, c[1]);
}

#[test]
fn single_and_conflicting_policies_are_refused_as_crossbar_does() {
    let mut r = router();
    let (a, _) = join(&mut r, &[]);
    let (b, _) = join(&mut r, &[]);
    registered(register(&mut r, a, "p", Dict::new()));
    let refused = register(&mut r, b, "p", shared("roundrobin"));
    assert_eq!(error_uri(&refused), ERROR_PROCEDURE_ALREADY_EXISTS);
    registered(register(&mut r, a, "q", shared("roundrobin")));
    let refused = register(&mut r, b, "q", shared("random"));
    assert_eq!(
        error_uri(&refused),
        ERROR_PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY
    );
    let refused = register(&mut r, b, "q", Dict::new());
    assert_eq!(
        error_uri(&refused),
        ERROR_PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY
    );
    for bad in [
        shared("fastest"),
        opts(&[("concurrency", "two".into())]),
        opts(&[("force_reregister", 1u64.into())]),
    ] {
        let refused = register(&mut r, b, "z", bad);
        assert_eq!(error_uri(&refused), ERROR_INVALID_ARGUMENT);
    }
}

#[test]
fn the_same_callee_registering_again_keeps_one_entry() {
    let mut r = router();
    let (a, _) = join(&mut r, &[]);
    let first = registered(register(&mut r, a, "p", shared("roundrobin")));
    let again = registered(register(&mut r, a, "p", shared("roundrobin")));
    assert_eq!(first, again);
    r.handle_message(
        t0(),
        a,
        Message::Unregister {
            request: 3,
            registration: first,
        },
    );
    drain(&mut r);
    assert_eq!(r.realm_stats("r").unwrap().registrations, 0);
}

#[test]
fn concurrency_limits_the_pending_invocations_of_a_callee() {
    let mut r = router();
    let (a, _) = join(&mut r, &[]);
    let (caller, _) = join(&mut r, &[]);
    registered(register(
        &mut r,
        a,
        "p",
        opts(&[("concurrency", 1u64.into())]),
    ));
    let (_, inv) = call_routed(&mut r, caller, 1);
    call_at(&mut r, t0(), caller, 2, Dict::new(), None);
    let out = drain(&mut r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, caller);
    assert_eq!(error_uri(&out[0].1), ERROR_MAX_CONCURRENCY_REACHED);
    yield_(&mut r, a, inv);
    drain(&mut r);
    assert_eq!(call_routed(&mut r, caller, 3).0, a);
}

#[test]
fn roundrobin_skips_callees_at_their_concurrency() {
    let mut r = router();
    let (a, _) = join(&mut r, &[]);
    let (b, _) = join(&mut r, &[]);
    let (caller, _) = join(&mut r, &[]);
    let limited = opts(&[
        ("invoke", "roundrobin".into()),
        ("concurrency", 1u64.into()),
    ]);
    registered(register(&mut r, a, "p", limited.clone()));
    registered(register(&mut r, b, "p", limited));
    assert_eq!(call_routed(&mut r, caller, 1).0, a);
    let (to, inv_b) = call_routed(&mut r, caller, 2);
    assert_eq!(to, b);
    call_at(&mut r, t0(), caller, 3, Dict::new(), None);
    let out = drain(&mut r);
    assert_eq!(error_uri(&out[0].1), ERROR_MAX_CONCURRENCY_REACHED);
    yield_(&mut r, b, inv_b);
    drain(&mut r);
    assert_eq!(call_routed(&mut r, caller, 4).0, b, "a is still busy");
}

#[test]
fn force_reregister_kicks_the_existing_callees() {
    let mut r = router();
    let (old, _) = join(&mut r, &["registration_revocation"]);
    let (deaf, _) = join(&mut r, &[]);
    let (new, _) = join(&mut r, &[]);
    let (caller, _) = join(&mut r, &[]);
    let before = registered(register(&mut r, old, "p", shared("roundrobin")));
    registered(register(&mut r, deaf, "p", shared("roundrobin")));
    r.handle_message(
        t0(),
        new,
        Message::Register {
            request: 9,
            options: opts(&[("force_reregister", true.into())]),
            procedure: "p".into(),
        },
    );
    let out = drain(&mut r);
    assert_eq!(out.len(), 2, "{out:?}");
    match &out[0] {
        (
            c,
            Message::Unregistered {
                request: 0,
                details,
            },
        ) if *c == old => {
            let d = details.as_ref().unwrap();
            assert_eq!(d["registration"], Value::from(before));
            assert_eq!(d["reason"], Value::from("wamp.error.unregistered"));
        }
        other => panic!("{other:?}"),
    }
    let after = match &out[1] {
        (c, Message::Registered { registration, .. }) if *c == new => *registration,
        other => panic!("{other:?}"),
    };
    assert_ne!(after, before);
    assert_eq!(call_routed(&mut r, caller, 1).0, new);
    // The kicked callees hold nothing: their UNREGISTER fails.
    r.handle_message(
        t0(),
        old,
        Message::Unregister {
            request: 2,
            registration: before,
        },
    );
    assert!(matches!(
        drain(&mut r).as_slice(),
        [(_, Message::Error { .. })]
    ));
}

#[test]
fn a_call_times_out_on_simulated_time() {
    let mut r = router();
    let (callee, _) = join(&mut r, &["call_canceling"]);
    let (caller, _) = join(&mut r, &[]);
    registered(register(&mut r, callee, "p", Dict::new()));
    let at = t0() + Duration::from_secs(1);
    call_at(
        &mut r,
        at,
        caller,
        5,
        opts(&[("timeout", 1500u64.into())]),
        None,
    );
    let inv = match drain(&mut r).as_slice() {
        [(_, Message::Invocation { request, .. })] => *request,
        other => panic!("{other:?}"),
    };
    let deadline = at + Duration::from_millis(1500);
    assert_eq!(r.poll_timeout(), Some(deadline));
    r.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(deadline);
    let out = drain(&mut r);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        matches!(&out[0], (c, Message::Interrupt { request, options })
            if *c == callee && *request == inv && options["mode"] == Value::from("killnowait")),
        "{out:?}"
    );
    match &out[1] {
        (
            c,
            Message::Error {
                request: 5,
                error,
                args,
                ..
            },
        ) if *c == caller => {
            assert_eq!(error, ERROR_CANCELED);
            assert_eq!(args.as_deref(), Some(&[Value::from("timeout reached")][..]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 0);
    // The late answer is dropped.
    yield_(&mut r, callee, inv);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn an_answered_call_clears_its_timeout() {
    let mut r = router();
    let (callee, _) = join(&mut r, &[]);
    let (caller, _) = join(&mut r, &[]);
    registered(register(&mut r, callee, "p", Dict::new()));
    call_at(
        &mut r,
        t0(),
        caller,
        1,
        opts(&[("timeout", 100u64.into())]),
        None,
    );
    let inv = match drain(&mut r).as_slice() {
        [(_, Message::Invocation { request, .. })] => *request,
        other => panic!("{other:?}"),
    };
    yield_(&mut r, callee, inv);
    assert!(matches!(
        drain(&mut r).as_slice(),
        [(_, Message::Result { .. })]
    ));
    assert_eq!(r.poll_timeout(), None);
    call_at(
        &mut r,
        t0(),
        caller,
        2,
        opts(&[("timeout", Value::from("soon"))]),
        None,
    );
    let out = drain(&mut r);
    assert_eq!(error_uri(&out[0].1), ERROR_INVALID_ARGUMENT);
}

#[test]
fn progressive_call_invocations_stream_into_one_invocation() {
    let mut r = router();
    let (callee, _) = join(&mut r, &["progressive_call_invocations"]);
    let (caller, _) = join(&mut r, &[]);
    let reg = registered(register(&mut r, callee, "p", Dict::new()));
    let progress = || opts(&[("progress", true.into())]);
    let mut invocations = Vec::new();
    for (i, options) in [progress(), progress(), Dict::new()]
        .into_iter()
        .enumerate()
    {
        let last = options.is_empty();
        call_at(
            &mut r,
            t0(),
            caller,
            4,
            options,
            Some(vec![Value::from(i as u64)]),
        );
        match drain(&mut r).as_slice() {
            [
                (
                    c,
                    Message::Invocation {
                        request,
                        registration,
                        details,
                        args,
                        ..
                    },
                ),
            ] if *c == callee => {
                assert_eq!(*registration, reg);
                assert_eq!(details.get("progress") == Some(&Value::Bool(true)), !last);
                assert_eq!(args.as_deref(), Some(&[Value::from(i as u64)][..]));
                invocations.push(*request);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        invocations.windows(2).all(|w| w[0] == w[1]),
        "{invocations:?}"
    );
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 1);
    // The input is done: the same request id again is a protocol error.
    call_at(&mut r, t0(), caller, 4, Dict::new(), None);
    assert!(matches!(
        drain(&mut r).as_slice(),
        [(_, Message::Abort { .. })]
    ));
}

#[test]
fn progress_to_a_callee_without_the_feature_is_refused() {
    let mut r = router();
    let (callee, _) = join(&mut r, &[]);
    let (caller, _) = join(&mut r, &[]);
    registered(register(&mut r, callee, "p", Dict::new()));
    call_at(
        &mut r,
        t0(),
        caller,
        1,
        opts(&[("progress", true.into())]),
        None,
    );
    let out = drain(&mut r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(error_uri(&out[0].1), ERROR_FEATURE_NOT_SUPPORTED);
}

#[test]
fn receive_progress_reaches_callees_that_do_not_announce_it() {
    let mut r = router();
    let (callee, _) = join(&mut r, &[]);
    let (caller, _) = join(&mut r, &[]);
    registered(register(&mut r, callee, "p", Dict::new()));
    call_at(
        &mut r,
        t0(),
        caller,
        1,
        opts(&[("receive_progress", true.into())]),
        None,
    );
    let inv = match drain(&mut r).as_slice() {
        [
            (
                _,
                Message::Invocation {
                    request, details, ..
                },
            ),
        ] => {
            assert_eq!(details["receive_progress"], Value::Bool(true));
            *request
        }
        other => panic!("{other:?}"),
    };
    r.handle_message(
        t0(),
        callee,
        Message::Yield {
            request: inv,
            options: opts(&[("progress", true.into())]),
            args: None,
            kwargs: None,
        },
    );
    match drain(&mut r).as_slice() {
        [(c, Message::Result { details, .. })] if *c == caller => {
            assert_eq!(details["progress"], Value::Bool(true));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn revoke_registration_removes_one_callee_and_tells_it() {
    let (mut r, c, caller, reg) = three("roundrobin");
    let mut r2 = router();
    let (x, sx) = join(&mut r2, &["registration_revocation"]);
    let solo = registered(register(&mut r2, x, "p", Dict::new()));
    assert!(r2.revoke_registration(t0(), SessionId(sx), solo, "wamp.error.unregistered"));
    match drain(&mut r2).as_slice() {
        [
            (
                to,
                Message::Unregistered {
                    request: 0,
                    details: Some(d),
                },
            ),
        ] if *to == x => {
            assert_eq!(d["registration"], Value::from(solo));
            assert_eq!(d["reason"], Value::from("wamp.error.unregistered"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r2.realm_stats("r").unwrap().registrations, 0);
    assert!(!r2.revoke_registration(t0(), SessionId(sx), solo, "again"));

    // A shared registration keeps its other callees; c[1] did not
    // announce registration_revocation, so it is not told.
    let s1 = r.session_of(c[1]).unwrap();
    assert!(r.revoke_registration(t0(), s1, reg, "wamp.error.unregistered"));
    assert!(drain(&mut r).is_empty());
    let got: Vec<ConnectionId> = (1..=4).map(|i| call_routed(&mut r, caller, i).0).collect();
    assert!(!got.contains(&c[1]), "{got:?}");
    assert_eq!(r.realm_stats("r").unwrap().registrations, 1);
}

/// Allows everything but a CALL carrying the custom option `x_deny`;
/// counts the CALLs it is asked about.
struct DenyMarked(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Authorizer for DenyMarked {
    fn authorize(&mut self, ctx: &AuthorizeContext<'_>) -> Authorization {
        if ctx.action != Action::Call {
            return Authorization::Allow { disclose: false };
        }
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if ctx.options.contains_key("x_deny") {
            Authorization::Deny
        } else {
            Authorization::Allow { disclose: false }
        }
    }
}

#[test]
fn every_part_of_a_progressive_call_is_authorized() {
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut r = router().with_authorizer(Box::new(DenyMarked(asked.clone())));
    let (callee, _) = join(&mut r, &["progressive_call_invocations", "call_canceling"]);
    let (caller, _) = join(&mut r, &[]);
    registered(register(&mut r, callee, "p", Dict::new()));
    let progress = opts(&[("progress", true.into())]);
    call_at(&mut r, t0(), caller, 3, progress.clone(), None);
    call_at(&mut r, t0(), caller, 3, progress, None);
    let out = drain(&mut r);
    assert_eq!(out.len(), 2, "{out:?}");
    let inv = match &out[0] {
        (_, Message::Invocation { request, .. }) => *request,
        other => panic!("{other:?}"),
    };
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A refused part ends the call: ERROR to the caller, INTERRUPT to the
    // callee.
    call_at(
        &mut r,
        t0(),
        caller,
        3,
        opts(&[("progress", true.into()), ("x_deny", true.into())]),
        None,
    );
    let out = drain(&mut r);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        matches!(&out[0], (c, Message::Interrupt { request, .. }) if *c == callee && *request == inv),
        "{out:?}"
    );
    assert_eq!(out[1].0, caller);
    assert_eq!(
        error_uri(&out[1].1),
        crate::wamp::error::ERROR_NOT_AUTHORIZED
    );
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 0);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn late_parts_of_an_answered_streaming_call_are_dropped() {
    let mut r = router();
    let (callee, _) = join(&mut r, &["progressive_call_invocations"]);
    let (caller, _) = join(&mut r, &[]);
    registered(register(&mut r, callee, "p", Dict::new()));
    let progress = || opts(&[("progress", true.into())]);
    call_at(&mut r, t0(), caller, 8, progress(), None);
    let inv = match drain(&mut r).as_slice() {
        [(_, Message::Invocation { request, .. })] => *request,
        other => panic!("{other:?}"),
    };
    // The callee answers before the input is complete.
    yield_(&mut r, callee, inv);
    assert!(matches!(
        drain(&mut r).as_slice(),
        [(c, Message::Result { request: 8, .. })] if *c == caller
    ));
    // The parts still coming are dropped, the last one included; then
    // the request id is free again.
    call_at(&mut r, t0(), caller, 8, progress(), None);
    call_at(&mut r, t0(), caller, 8, Dict::new(), None);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.realm_stats("r").unwrap().pending_calls, 0);
    let (to, _) = call_routed(&mut r, caller, 8);
    assert_eq!(to, callee);
}

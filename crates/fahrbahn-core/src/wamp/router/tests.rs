//! Unit tests of the router's internals and corner cases.

use super::*;

fn now() -> Instant {
    Instant::now()
}
use crate::wamp::error::{ERROR_CANCELED, ERROR_OPTION_NOT_ALLOWED, ERROR_PROTOCOL_VIOLATION};

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
fn receive_progress_needs_callee_support() {
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
            Some((_, Message::Invocation { details, .. })) => assert_eq!(
                details.contains_key("receive_progress"),
                procedure == "a.fancy"
            ),
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

#[test]
fn shared_registrations_are_refused() {
    let mut r = router();
    let (c, _) = join(&mut r, roles(&[]));
    let mut options = Dict::new();
    options.insert("invoke".into(), "roundrobin".into());
    r.handle_message(
        now(),
        c,
        Message::Register {
            request: 1,
            options,
            procedure: "a.b".into(),
        },
    );
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Error { error, .. })) if error == ERROR_OPTION_NOT_ALLOWED
    ));
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
        Some((_, Message::Abort { reason, .. })) if reason == crate::wamp::error::ERROR_AUTHENTICATION_FAILED
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

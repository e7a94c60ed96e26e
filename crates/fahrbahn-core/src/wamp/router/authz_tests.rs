//! Authorization (roles with per-URI permissions, disclosure, the
//! authorizer cache) and the authentication deadline and round bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::wamp::error::{ERROR_NO_SUCH_PROCEDURE, ERROR_NOT_AUTHORIZED};

fn now() -> Instant {
    Instant::now()
}

fn client_roles() -> Dict {
    let mut roles = Dict::new();
    for role in ["caller", "callee", "publisher", "subscriber"] {
        roles.insert(role.into(), feature_set(&[]));
    }
    roles
}

/// Welcomes every HELLO with the authrole it asks for (`details.authrole`,
/// default `anonymous`): the tests pick roles directly.
struct AsRequested;

impl Authenticator for AsRequested {
    fn on_hello(&mut self, hello: &HelloContext<'_>) -> AuthDecision {
        let role = hello
            .details
            .get("authrole")
            .and_then(Value::as_str)
            .unwrap_or("anonymous");
        AuthDecision::welcome(format!("id-{role}"), role, "test")
    }
}

fn grants(call: bool, register: bool, publish: bool, subscribe: bool) -> Grants {
    let mut g = Grants::NONE;
    g.call = call;
    g.register = register;
    g.publish = publish;
    g.subscribe = subscribe;
    g
}

/// Realm `r` with Crossbar's example roles: `user` may do everything
/// (and discloses callers and publishers), `restricted` may only call and
/// subscribe under `com.example.`.
fn restricted_router() -> Router {
    let mut everything = Grants::ALL;
    everything.disclose_caller = true;
    everything.disclose_publisher = true;
    let mut roles = StaticAuthorizer::new();
    roles.add_role(
        "r",
        "user",
        Role::new([Permission::new("", UriMatch::Prefix, everything)]),
    );
    roles.add_role(
        "r",
        "restricted",
        Role::new([Permission::new(
            "com.example.",
            UriMatch::Prefix,
            grants(true, false, false, true),
        )]),
    );
    Router::new(RouterConfig::with_realm("r"), Rng::from_seed(5))
        .with_authenticator(Box::new(AsRequested))
        .with_authorizer(Box::new(roles))
}

fn join_as(router: &mut Router, authrole: &str) -> (ConnectionId, u64) {
    let conn = router.attach(now());
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(client_roles()));
    details.insert("authrole".into(), authrole.into());
    router.handle_message(
        now(),
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
    match router.poll_outgoing() {
        Some((c, Message::Welcome { session, details })) if c == conn => {
            assert_eq!(
                details.get("authrole").and_then(Value::as_str),
                Some(authrole)
            );
            (conn, session)
        }
        other => panic!("{other:?}"),
    }
}

/// Sends one request and returns the router's answer to it.
fn ask(router: &mut Router, conn: ConnectionId, msg: Message) -> Message {
    router.handle_message(now(), conn, msg);
    match router.poll_outgoing() {
        Some((c, answer)) if c == conn => answer,
        other => panic!("{other:?}"),
    }
}

fn call(request: u64, procedure: &str) -> Message {
    Message::Call {
        request,
        options: Dict::new(),
        procedure: procedure.into(),
        args: None,
        kwargs: None,
    }
}

fn register(request: u64, procedure: &str, policy: &str) -> Message {
    let mut options = Dict::new();
    options.insert("match".into(), policy.into());
    Message::Register {
        request,
        options,
        procedure: procedure.into(),
    }
}

fn subscribe(request: u64, topic: &str, policy: &str) -> Message {
    let mut options = Dict::new();
    options.insert("match".into(), policy.into());
    Message::Subscribe {
        request,
        options,
        topic: topic.into(),
    }
}

fn publish(request: u64, topic: &str) -> Message {
    let mut options = Dict::new();
    options.insert("acknowledge".into(), true.into());
    Message::Publish {
        request,
        options,
        topic: topic.into(),
        args: None,
        kwargs: None,
    }
}

#[track_caller]
fn assert_error(answer: Message, request_type: u64, request: u64, uri: &str) {
    match answer {
        Message::Error {
            request_type: t,
            request: r,
            error,
            ..
        } => {
            assert_eq!((t, r), (request_type, request));
            assert_eq!(error, uri);
        }
        other => panic!("expected ERROR {uri}, got {other:?}"),
    }
}

#[test]
fn a_role_refuses_each_action_it_does_not_allow_and_the_session_stays() {
    let mut r = restricted_router();
    let (c, _) = join_as(&mut r, "restricted");
    // register and publish are not allowed, even inside com.example.
    assert_error(
        ask(&mut r, c, register(1, "com.example.add2", "exact")),
        Message::REGISTER,
        1,
        ERROR_NOT_AUTHORIZED,
    );
    assert_error(
        ask(&mut r, c, publish(2, "com.example.topic")),
        Message::PUBLISH,
        2,
        ERROR_NOT_AUTHORIZED,
    );
    // call and subscribe are, inside the prefix only.
    assert_error(
        ask(&mut r, c, call(3, "com.other.add2")),
        Message::CALL,
        3,
        ERROR_NOT_AUTHORIZED,
    );
    assert_error(
        ask(&mut r, c, subscribe(4, "com.other.topic", "exact")),
        Message::SUBSCRIBE,
        4,
        ERROR_NOT_AUTHORIZED,
    );
    // Allowed: the call reaches the dealer (nobody registered it) …
    assert_error(
        ask(&mut r, c, call(5, "com.example.add2")),
        Message::CALL,
        5,
        ERROR_NO_SUCH_PROCEDURE,
    );
    // … and the subscription is made, the session still up.
    assert!(matches!(
        ask(&mut r, c, subscribe(6, "com.example.topic", "exact")),
        Message::Subscribed { request: 6, .. }
    ));
    // A pattern subscription is authorized by its pattern: a prefix
    // under com.example. is allowed, a broader one is not.
    assert!(matches!(
        ask(&mut r, c, subscribe(7, "com.example.", "prefix")),
        Message::Subscribed { request: 7, .. }
    ));
    assert_error(
        ask(&mut r, c, subscribe(8, "com.", "prefix")),
        Message::SUBSCRIBE,
        8,
        ERROR_NOT_AUTHORIZED,
    );
    assert_eq!(r.session_count(), 1);
    assert!(r.poll_event().is_some()); // Joined, and nothing else
    assert!(r.poll_event().is_none());
}

#[test]
fn a_refused_publish_without_acknowledge_is_dropped_silently() {
    let mut r = restricted_router();
    let (user, _) = join_as(&mut r, "user");
    let (restricted, _) = join_as(&mut r, "restricted");
    assert!(matches!(
        ask(&mut r, user, subscribe(1, "com.example.topic", "exact")),
        Message::Subscribed { .. }
    ));
    r.handle_message(
        now(),
        restricted,
        Message::Publish {
            request: 1,
            options: Dict::new(),
            topic: "com.example.topic".into(),
            args: None,
            kwargs: None,
        },
    );
    assert!(r.poll_outgoing().is_none());
}

#[test]
fn an_undefined_authrole_may_do_nothing_once_roles_exist() {
    let mut r = restricted_router();
    let (c, _) = join_as(&mut r, "anonymous");
    assert_error(
        ask(&mut r, c, call(1, "com.example.add2")),
        Message::CALL,
        1,
        ERROR_NOT_AUTHORIZED,
    );
    assert_error(
        ask(&mut r, c, register(2, "com.example.add2", "exact")),
        Message::REGISTER,
        2,
        ERROR_NOT_AUTHORIZED,
    );
    assert_error(
        ask(&mut r, c, subscribe(3, "com.example.topic", "exact")),
        Message::SUBSCRIBE,
        3,
        ERROR_NOT_AUTHORIZED,
    );
    assert_error(
        ask(&mut r, c, publish(4, "com.example.topic")),
        Message::PUBLISH,
        4,
        ERROR_NOT_AUTHORIZED,
    );
}

#[test]
fn a_realm_without_roles_allows_everything() {
    let mut r = Router::new(RouterConfig::with_realm("r"), Rng::from_seed(5))
        .with_authenticator(Box::new(AsRequested));
    let (c, _) = join_as(&mut r, "whoever");
    assert!(matches!(
        ask(&mut r, c, register(1, "com.any.proc", "exact")),
        Message::Registered { .. }
    ));
    assert!(matches!(
        ask(&mut r, c, subscribe(2, "com.any.", "prefix")),
        Message::Subscribed { .. }
    ));
    assert!(matches!(
        ask(&mut r, c, publish(3, "org.any.topic")),
        Message::Published { .. }
    ));
    // The call goes to the session itself, as callee: an INVOCATION.
    assert!(matches!(
        ask(&mut r, c, call(4, "com.any.proc")),
        Message::Invocation { .. }
    ));
}

#[test]
fn exact_prefix_and_wildcard_rules() {
    let mut roles = StaticAuthorizer::new();
    roles.add_role(
        "r",
        "app",
        Role::new([
            Permission::new(
                "com.app.",
                UriMatch::Prefix,
                grants(false, true, false, false),
            ),
            Permission::new(
                "com..status",
                UriMatch::Wildcard,
                grants(false, false, true, false),
            ),
            Permission::new("com.app.admin", UriMatch::Exact, Grants::NONE),
        ]),
    );
    let mut r = Router::new(RouterConfig::with_realm("r"), Rng::from_seed(5))
        .with_authenticator(Box::new(AsRequested))
        .with_authorizer(Box::new(roles));
    let (c, _) = join_as(&mut r, "app");
    // prefix
    assert!(matches!(
        ask(&mut r, c, register(1, "com.app.add2", "exact")),
        Message::Registered { .. }
    ));
    // exact beats the prefix
    assert_error(
        ask(&mut r, c, register(2, "com.app.admin", "exact")),
        Message::REGISTER,
        2,
        ERROR_NOT_AUTHORIZED,
    );
    // wildcard: any one component
    assert!(matches!(
        ask(&mut r, c, publish(3, "com.sensor.status")),
        Message::Published { .. }
    ));
    assert_error(
        ask(&mut r, c, publish(4, "com.sensor.x.status")),
        Message::PUBLISH,
        4,
        ERROR_NOT_AUTHORIZED,
    );
    // and the wildcard beats the prefix for com.app.status
    assert_error(
        ask(&mut r, c, register(5, "com.app.status", "exact")),
        Message::REGISTER,
        5,
        ERROR_NOT_AUTHORIZED,
    );
}

#[test]
fn the_role_discloses_callers_and_publishers() {
    let mut r = restricted_router();
    let (callee, _) = join_as(&mut r, "user");
    let (caller, caller_session) = join_as(&mut r, "restricted");
    assert!(matches!(
        ask(&mut r, callee, register(1, "com.example.add2", "exact")),
        Message::Registered { .. }
    ));
    assert!(matches!(
        ask(&mut r, caller, subscribe(1, "com.example.topic", "exact")),
        Message::Subscribed { .. }
    ));
    // `user` discloses publishers: its EVENT carries them without
    // disclose_me.
    r.handle_message(
        now(),
        callee,
        Message::Publish {
            request: 2,
            options: Dict::new(),
            topic: "com.example.topic".into(),
            args: None,
            kwargs: None,
        },
    );
    match r.poll_outgoing() {
        Some((to, Message::Event { details, .. })) => {
            assert_eq!(to, caller);
            assert_eq!(
                details.get("publisher_authrole").and_then(Value::as_str),
                Some("user")
            );
            assert_eq!(
                details.get("publisher_authid").and_then(Value::as_str),
                Some("id-user")
            );
            assert!(details.contains_key("publisher"));
        }
        other => panic!("{other:?}"),
    }
    // `restricted` does not disclose callers …
    r.handle_message(now(), caller, call(2, "com.example.add2"));
    match r.poll_outgoing() {
        Some((to, Message::Invocation { details, .. })) => {
            assert_eq!(to, callee);
            assert!(!details.contains_key("caller"));
        }
        other => panic!("{other:?}"),
    }
    // … unless the caller asks for it.
    let mut options = Dict::new();
    options.insert("disclose_me".into(), true.into());
    r.handle_message(
        now(),
        caller,
        Message::Call {
            request: 3,
            options,
            procedure: "com.example.add2".into(),
            args: None,
            kwargs: None,
        },
    );
    match r.poll_outgoing() {
        Some((_, Message::Invocation { details, .. })) => {
            assert_eq!(
                details.get("caller").and_then(Value::as_u64),
                Some(caller_session)
            );
            assert_eq!(
                details.get("caller_authrole").and_then(Value::as_str),
                Some("restricted")
            );
        }
        other => panic!("{other:?}"),
    }
    // A caller whose role discloses: `user` calling its own procedure.
    r.handle_message(now(), callee, call(4, "com.example.add2"));
    match r.poll_outgoing() {
        Some((_, Message::Invocation { details, .. })) => {
            assert_eq!(
                details.get("caller_authid").and_then(Value::as_str),
                Some("id-user")
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Allows everything, counting how often it is asked.
struct Counting(Arc<AtomicUsize>, bool);

impl Authorizer for Counting {
    fn authorize(&mut self, ctx: &AuthorizeContext<'_>) -> Authorization {
        self.0.fetch_add(1, Ordering::SeqCst);
        if ctx.uri.starts_with("no.") {
            Authorization::Deny
        } else {
            Authorization::ALLOW
        }
    }
    fn cacheable(&self) -> bool {
        self.1
    }
}

#[test]
fn a_cacheable_authorizer_is_asked_once_per_session_action_and_uri() {
    for cacheable in [false, true] {
        let asked = Arc::new(AtomicUsize::new(0));
        let mut r = Router::new(RouterConfig::with_realm("r"), Rng::from_seed(5))
            .with_authenticator(Box::new(AsRequested))
            .with_authorizer(Box::new(Counting(asked.clone(), cacheable)));
        let (a, _) = join_as(&mut r, "x");
        let (b, _) = join_as(&mut r, "x");
        for request in 1..=3 {
            assert_error(
                ask(&mut r, a, call(request, "no.such")),
                Message::CALL,
                request,
                ERROR_NOT_AUTHORIZED,
            );
            assert_error(
                ask(&mut r, a, call(10 + request, "com.x")),
                Message::CALL,
                10 + request,
                ERROR_NO_SUCH_PROCEDURE,
            );
        }
        // The other session has its own cache; another action is another
        // question.
        ask(&mut r, b, call(1, "no.such"));
        ask(&mut r, a, subscribe(20, "no.such", "exact"));
        let expected = if cacheable { 4 } else { 8 };
        assert_eq!(
            asked.load(Ordering::SeqCst),
            expected,
            "cacheable {cacheable}"
        );
    }
}

#[test]
fn the_authorizer_cache_is_bounded_in_bytes() {
    let asked = Arc::new(AtomicUsize::new(0));
    let mut r = Router::new(RouterConfig::with_realm("r"), Rng::from_seed(5))
        .with_authenticator(Box::new(AsRequested))
        .with_authorizer(Box::new(Counting(asked.clone(), true)));
    let (a, session) = join_as(&mut r, "x");
    let long = "com.".to_owned() + &"x".repeat(1000);
    for i in 0..100u64 {
        ask(&mut r, a, call(i + 1, &format!("{long}{i}")));
        let record = &r.sessions[&session];
        assert!(record.authz_cache_bytes <= AUTHZ_CACHE_BYTES);
    }
    assert_eq!(asked.load(Ordering::SeqCst), 100);
    // Tiny URIs are counted with their entry's overhead: the number of
    // entries is bounded too.
    for i in 0..1000u64 {
        ask(&mut r, a, call(1000 + i, &format!("c.{i}")));
        let record = &r.sessions[&session];
        assert!(record.authz_cache_bytes <= AUTHZ_CACHE_BYTES);
        assert!(record.authz_cache.len() <= AUTHZ_CACHE_BYTES / AUTHZ_CACHE_ENTRY_OVERHEAD);
    }
}

// ----- authentication deadline and rounds, on simulated time ---------------

/// Challenges again after every AUTHENTICATE, forever (a wrong answer
/// followed by "try again").
struct Insistent;

impl Authenticator for Insistent {
    fn on_hello(&mut self, _: &HelloContext<'_>) -> AuthDecision {
        AuthDecision::Challenge {
            authmethod: "ticket".into(),
            extra: Dict::new(),
        }
    }
    fn on_authenticate(&mut self, _: &AuthenticateContext<'_>) -> AuthDecision {
        AuthDecision::Challenge {
            authmethod: "ticket".into(),
            extra: Dict::new(),
        }
    }
}

fn hello_at(r: &mut Router, at: Instant, conn: ConnectionId) {
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(client_roles()));
    r.handle_message(
        at,
        conn,
        Message::Hello {
            realm: "r".into(),
            details,
        },
    );
}

fn authenticate_at(r: &mut Router, at: Instant, conn: ConnectionId) {
    r.handle_message(
        at,
        conn,
        Message::Authenticate {
            signature: "wrong".into(),
            extra: Dict::new(),
        },
    );
}

#[test]
fn the_authentication_deadline_runs_from_hello_over_every_round() {
    let t0 = now();
    let mut config = RouterConfig::with_realm("r");
    config.auth_timeout = Duration::from_secs(8);
    config.max_auth_rounds = 10;
    let mut r = Router::new(config, Rng::from_seed(5)).with_authenticator(Box::new(Insistent));
    let conn = r.attach(t0);
    hello_at(&mut r, t0 + Duration::from_secs(1), conn);
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Challenge { .. }))
    ));
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(9)));
    // Answering (wrongly) and being challenged again does not extend it.
    authenticate_at(&mut r, t0 + Duration::from_secs(5), conn);
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Challenge { .. }))
    ));
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(9)));
    r.handle_timeout(t0 + Duration::from_millis(8999));
    assert!(r.poll_outgoing().is_none());
    r.handle_timeout(t0 + Duration::from_secs(9));
    match r.poll_outgoing() {
        Some((c, Message::Abort { reason, .. })) => {
            assert_eq!(c, conn);
            assert_eq!(reason, ERROR_NOT_AUTHORIZED);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.poll_event(),
        Some(RouterEvent::CloseTransport {
            conn,
            reason: CloseReason::Timeout
        })
    );
    assert!(r.reserved.is_empty());
    // A late AUTHENTICATE is ignored.
    authenticate_at(&mut r, t0 + Duration::from_secs(10), conn);
    assert!(r.poll_outgoing().is_none());
    assert_eq!(r.session_count(), 0);
}

#[test]
fn failed_authentication_rounds_per_connection_are_bounded() {
    let t0 = now();
    let mut config = RouterConfig::with_realm("r");
    config.max_auth_rounds = 3;
    let mut r = Router::new(config, Rng::from_seed(5)).with_authenticator(Box::new(Insistent));
    let conn = r.attach(t0);
    hello_at(&mut r, t0, conn);
    let mut challenges = 1;
    assert!(matches!(
        r.poll_outgoing(),
        Some((_, Message::Challenge { .. }))
    ));
    loop {
        authenticate_at(&mut r, t0, conn);
        match r.poll_outgoing() {
            Some((_, Message::Challenge { .. })) => challenges += 1,
            Some((_, Message::Abort { reason, .. })) => {
                assert_eq!(reason, ERROR_NOT_AUTHORIZED);
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(challenges <= 3, "more CHALLENGEs than the bound");
    }
    assert_eq!(challenges, 3);
    assert_eq!(
        r.poll_event(),
        Some(RouterEvent::CloseTransport {
            conn,
            reason: CloseReason::Aborted
        })
    );
    assert!(r.reserved.is_empty());
    assert_eq!(r.poll_timeout(), None);
}

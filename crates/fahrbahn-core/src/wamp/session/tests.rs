//! Unit tests of the client session machine.

use super::*;

fn now() -> Instant {
    Instant::now()
}

fn joined() -> Session {
    let mut s = Session::new(SessionConfig::new("realm1"), now());
    let _ = s.poll_message();
    s.handle_message(
        now(),
        Message::Welcome {
            session: 7,
            details: Dict::new(),
        },
    );
    let _ = s.poll_event();
    s
}

#[test]
fn hello_announces_roles() {
    let mut s = Session::new(SessionConfig::new("realm1"), now());
    match s.poll_message() {
        Some(Message::Hello { realm, details }) => {
            assert_eq!(realm, "realm1");
            let roles = details.get("roles").and_then(Value::as_dict).unwrap();
            for role in ["caller", "callee", "publisher", "subscriber"] {
                assert!(roles.contains_key(role), "{role}");
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn register_invoke_yield() {
    let mut s = joined();
    let req = s.register("com.example.f", Dict::new()).unwrap();
    assert!(matches!(s.poll_message(), Some(Message::Register { .. })));
    s.handle_message(
        now(),
        Message::Registered {
            request: req.0,
            registration: 99,
        },
    );
    assert_eq!(
        s.poll_event(),
        Some(SessionEvent::Registered {
            request: req,
            registration: RegistrationId(99)
        })
    );
    s.handle_message(
        now(),
        Message::Invocation {
            request: 5,
            registration: 99,
            details: Dict::new(),
            args: Some(vec![1.into()]),
            kwargs: None,
        },
    );
    assert!(matches!(
        s.poll_event(),
        Some(SessionEvent::Invocation {
            request: RequestId(5),
            ..
        })
    ));
    s.yield_result(RequestId(5), vec![2.into()], Dict::new(), Dict::new())
        .unwrap();
    assert!(matches!(
        s.poll_message(),
        Some(Message::Yield { request: 5, .. })
    ));
    assert_eq!(
        s.yield_result(RequestId(5), vec![], Dict::new(), Dict::new()),
        Err(CommandError::UnknownInvocation(RequestId(5)))
    );
}

#[test]
fn call_error_carries_payload() {
    let mut s = joined();
    let req = s
        .call("com.example.f", vec![], Dict::new(), Dict::new())
        .unwrap();
    let _ = s.poll_message();
    let mut kw = Dict::new();
    kw.insert("a".into(), 1.into());
    s.handle_message(
        now(),
        Message::Error {
            request_type: Message::CALL,
            request: req.0,
            details: Dict::new(),
            error: "com.example.oops".into(),
            args: Some(vec!["bad".into()]),
            kwargs: Some(kw.clone()),
        },
    );
    match s.poll_event() {
        Some(SessionEvent::Failed { error, kind, .. }) => {
            assert_eq!(kind, RequestKind::Call);
            assert_eq!(error.error, "com.example.oops");
            assert_eq!(error.args, vec![Value::from("bad")]);
            assert_eq!(error.kwargs, kw);
            assert_eq!(error.to_string(), "com.example.oops: bad");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unexpected_messages_are_protocol_violations() {
    let mut s = joined();
    s.handle_message(
        now(),
        Message::Result {
            request: 1234,
            details: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    assert!(matches!(
        s.poll_message(),
        Some(Message::Abort { ref reason, .. }) if reason == ERROR_PROTOCOL_VIOLATION
    ));
    match s.poll_event() {
        Some(SessionEvent::Closed(c)) => {
            let Some(SessionError::ProtocolViolation(violation)) = c.error else {
                panic!("{:?}", c.error);
            };
            assert_eq!(
                violation,
                ProtocolViolation::UnknownRequest {
                    kind: RequestKind::Call,
                    request: RequestId(1234),
                }
            );
            assert_eq!(violation.to_string(), "answer to unknown CALL request 1234");
            assert_eq!(
                c.details.get("message").and_then(Value::as_str),
                Some("answer to unknown CALL request 1234")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(s.is_closed());
    assert_eq!(
        s.call("a.b", vec![], Dict::new(), Dict::new()),
        Err(CommandError::Closed)
    );

    let mut s = Session::new(SessionConfig::new("realm1"), now());
    let _ = s.poll_message();
    s.handle_message(
        now(),
        Message::Event {
            subscription: 1,
            publication: 2,
            details: Dict::new(),
            args: None,
            kwargs: None,
        },
    );
    assert!(s.is_closed());
}

#[test]
fn goodbye_both_ways() {
    let mut s = joined();
    s.leave_normal(now()).unwrap();
    assert!(matches!(s.poll_message(), Some(Message::Goodbye { .. })));
    s.handle_message(
        now(),
        Message::Goodbye {
            details: Dict::new(),
            reason: CLOSE_GOODBYE_AND_OUT.into(),
        },
    );
    assert!(matches!(
        s.poll_event(),
        Some(SessionEvent::Closed(Closed {
            by_router: false,
            error: None,
            ..
        }))
    ));
    let mut s = joined();
    s.handle_message(
        now(),
        Message::Goodbye {
            details: Dict::new(),
            reason: "wamp.close.system_shutdown".into(),
        },
    );
    assert!(matches!(
        s.poll_message(),
        Some(Message::Goodbye { ref reason, .. }) if reason == CLOSE_GOODBYE_AND_OUT
    ));
    assert!(matches!(
        s.poll_event(),
        Some(SessionEvent::Closed(Closed {
            by_router: true,
            error: None,
            ..
        }))
    ));
}

#[test]
fn abort_on_join_and_invalid_uris() {
    let mut s = Session::new(SessionConfig::new("nope"), now());
    let _ = s.poll_message();
    let mut details = Dict::new();
    details.insert("message".into(), "no realm".into());
    s.handle_message(
        now(),
        Message::Abort {
            details,
            reason: "wamp.error.no_such_realm".into(),
        },
    );
    match s.poll_event() {
        Some(SessionEvent::Closed(c)) => assert_eq!(
            c.error,
            Some(SessionError::Aborted {
                reason: "wamp.error.no_such_realm".into(),
                message: Some("no realm".into())
            })
        ),
        other => panic!("{other:?}"),
    }
    let mut s = joined();
    assert!(matches!(
        s.call("bad uri", vec![], Dict::new(), Dict::new()),
        Err(CommandError::InvalidUri(_))
    ));
}

#[test]
fn progressive_results_keep_the_call_pending() {
    let mut s = joined();
    let req = s.call("a.b", vec![], Dict::new(), Dict::new()).unwrap();
    let mut progress = Dict::new();
    progress.insert("progress".into(), true.into());
    s.handle_message(
        now(),
        Message::Result {
            request: req.0,
            details: progress,
            args: Some(vec![1.into()]),
            kwargs: None,
        },
    );
    s.handle_message(
        now(),
        Message::Result {
            request: req.0,
            details: Dict::new(),
            args: Some(vec![2.into()]),
            kwargs: None,
        },
    );
    assert!(matches!(
        s.poll_event(),
        Some(SessionEvent::Result { progress: true, .. })
    ));
    assert!(matches!(
        s.poll_event(),
        Some(SessionEvent::Result {
            progress: false,
            ..
        })
    ));
    assert!(!s.is_closed());
}

#[test]
fn protocol_violations_name_what_went_wrong() {
    let cases = [
        (
            Message::Event {
                subscription: 1,
                publication: 2,
                details: Dict::new(),
                args: None,
                kwargs: None,
            },
            false,
            ProtocolViolation::UnexpectedMessage {
                message: "EVENT",
                joined: false,
            },
            "EVENT before WELCOME",
        ),
        (
            Message::Hello {
                realm: "realm1".into(),
                details: Dict::new(),
            },
            true,
            ProtocolViolation::UnexpectedMessage {
                message: "HELLO",
                joined: true,
            },
            "unexpected HELLO in an established session",
        ),
        (
            Message::Error {
                request_type: Message::YIELD,
                request: 1,
                details: Dict::new(),
                error: "x.y".into(),
                args: None,
                kwargs: None,
            },
            true,
            ProtocolViolation::ErrorForRequestType(Message::YIELD),
            "ERROR for request type 70, which a client does not send",
        ),
        (
            Message::Invocation {
                request: 1,
                registration: 99,
                details: Dict::new(),
                args: None,
                kwargs: None,
            },
            true,
            ProtocolViolation::UnknownRegistration(RegistrationId(99)),
            "INVOCATION for unknown registration 99",
        ),
    ];
    for (message, join, expected, text) in cases {
        let mut s = if join {
            joined()
        } else {
            let mut s = Session::new(SessionConfig::new("realm1"), now());
            let _ = s.poll_message();
            s
        };
        s.handle_message(now(), message);
        match s.poll_event() {
            Some(SessionEvent::Closed(Closed {
                error: Some(SessionError::ProtocolViolation(violation)),
                ..
            })) => {
                assert_eq!(violation, expected);
                assert_eq!(violation.to_string(), text);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_revoked_registration_is_reported_with_its_reason() {
    let mut s = joined();
    let req = s.register("com.x", Dict::new()).unwrap();
    assert!(matches!(s.poll_message(), Some(Message::Register { .. })));
    s.handle_message(
        now(),
        Message::Registered {
            request: req.0,
            registration: 42,
        },
    );
    assert!(matches!(
        s.poll_event(),
        Some(SessionEvent::Registered { .. })
    ));
    let mut details = Dict::new();
    details.insert("registration".into(), 42u64.into());
    details.insert("reason".into(), "wamp.error.unregistered".into());
    s.handle_message(
        now(),
        Message::Unregistered {
            request: 0,
            details: Some(details.clone()),
        },
    );
    assert_eq!(
        s.poll_event(),
        Some(SessionEvent::RegistrationRevoked {
            registration: RegistrationId(42),
            reason: "wamp.error.unregistered".into(),
        })
    );
    // Once only; an INVOCATION for it now is a protocol violation.
    s.handle_message(
        now(),
        Message::Unregistered {
            request: 0,
            details: Some(details),
        },
    );
    assert_eq!(s.poll_event(), None);
}

#[test]
fn a_streaming_call_sends_its_parts_with_the_same_request_id() {
    let mut s = joined();
    let mut options = Dict::new();
    options.insert("progress".into(), true.into());
    let req = s
        .call("com.x", vec![1.into()], Dict::new(), options)
        .unwrap();
    assert!(matches!(s.poll_message(), Some(Message::Call { .. })));
    s.call_part(req, vec![2.into()], Dict::new(), false)
        .unwrap();
    s.call_part(req, vec![3.into()], Dict::new(), true).unwrap();
    for last in [false, true] {
        match s.poll_message() {
            Some(Message::Call {
                request,
                options,
                procedure,
                ..
            }) => {
                assert_eq!(request, req.0);
                assert_eq!(procedure, "com.x");
                assert_eq!(options.contains_key("progress"), !last);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        s.call_part(req, vec![], Dict::new(), true),
        Err(CommandError::NotStreaming(req))
    );
    let plain = s.call("com.x", vec![], Dict::new(), Dict::new()).unwrap();
    assert_eq!(
        s.call_part(plain, vec![], Dict::new(), false),
        Err(CommandError::NotStreaming(plain))
    );
}

#[test]
fn subscription_revocation_is_an_event_with_the_reason() {
    let mut s = joined();
    let req = s.subscribe("com.example.t", Dict::new()).unwrap();
    let _ = s.poll_message();
    s.handle_message(
        now(),
        Message::Subscribed {
            request: req.0,
            subscription: 42,
        },
    );
    let _ = s.poll_event();
    let mut details = Dict::new();
    details.insert("subscription".into(), 42u64.into());
    details.insert("reason".into(), "com.example.kicked".into());
    s.handle_message(
        now(),
        Message::Unsubscribed {
            request: 0,
            details: Some(details.clone()),
        },
    );
    assert_eq!(
        s.poll_event(),
        Some(SessionEvent::SubscriptionRevoked {
            subscription: SubscriptionId(42),
            reason: Some("com.example.kicked".into()),
        })
    );
    // A revocation of a subscription the session does not hold (any
    // more) is ignored.
    s.handle_message(
        now(),
        Message::Unsubscribed {
            request: 0,
            details: Some(details),
        },
    );
    assert_eq!(s.poll_event(), None);
    // The client announces the feature.
    let roles = client_roles();
    assert_eq!(
        roles["subscriber"]
            .get("features")
            .and_then(|f| f.get("subscription_revocation"))
            .and_then(Value::as_bool),
        Some(true)
    );
}

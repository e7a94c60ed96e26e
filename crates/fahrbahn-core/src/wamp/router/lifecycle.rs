//! Session lifecycle: HELLO, authentication, WELCOME, GOODBYE, ABORT,
//! protocol violations, cleanup and shutdown.

use std::collections::{BTreeSet, HashMap};
use std::mem;

use super::{
    AGENT, AuthDecision, AuthenticateContext, CloseReason, ConnState, ConnectionId, HelloContext,
    PendingJoin, Router, RouterEvent, SessionRecord, router_roles,
};
use crate::wamp::error::{
    CLOSE_GOODBYE_AND_OUT, CLOSE_SYSTEM_SHUTDOWN, ERROR_AUTHENTICATION_FAILED, ERROR_CANCELED,
    ERROR_INVALID_URI, ERROR_NO_SUCH_REALM, ERROR_NOT_AUTHORIZED, ERROR_PROTOCOL_VIOLATION,
};
use crate::wamp::{Dict, Message, SessionId, Value, is_valid_uri, random_id};

fn message_details(message: &str) -> Dict {
    let mut details = Dict::new();
    details.insert("message".into(), Value::String(message.to_owned()));
    details
}

impl Router {
    /// A message on a connection without an established session.
    pub(super) fn handle_unjoined_message(&mut self, conn: ConnectionId, msg: Message) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        match state {
            ConnState::Closed => {
                log::debug!("router: {} on closed {conn} ignored", msg.name());
            }
            ConnState::Closing => match msg {
                Message::Goodbye { .. } | Message::Abort { .. } => {
                    *state = ConnState::Closed;
                    self.close_transport(conn, CloseReason::Goodbye);
                }
                other => log::debug!(
                    "router: {} on {conn} ignored while waiting for GOODBYE",
                    other.name()
                ),
            },
            ConnState::Idle => match msg {
                Message::Hello { realm, details } => self.on_hello(conn, realm, details),
                Message::Abort { .. } => {
                    *state = ConnState::Closed;
                    self.close_transport(conn, CloseReason::Aborted);
                }
                other => {
                    self.protocol_violation(conn, format!("{} received before HELLO", other.name()))
                }
            },
            ConnState::Authenticating(_) => match msg {
                Message::Authenticate { signature, extra } => {
                    let ConnState::Authenticating(pending) = mem::replace(state, ConnState::Closed)
                    else {
                        return;
                    };
                    self.on_authenticate(conn, *pending, &signature, &extra);
                }
                Message::Abort { .. } => {
                    if let ConnState::Authenticating(pending) =
                        mem::replace(state, ConnState::Closed)
                    {
                        self.reserved.remove(&pending.session);
                    }
                    self.close_transport(conn, CloseReason::Aborted);
                }
                other => self.protocol_violation(
                    conn,
                    format!(
                        "{} received while authenticating (expected AUTHENTICATE)",
                        other.name()
                    ),
                ),
            },
            ConnState::Joined(_) => {}
        }
    }

    fn on_hello(&mut self, conn: ConnectionId, realm: String, details: Dict) {
        if self.shut_down {
            return self.abort(conn, CLOSE_SYSTEM_SHUTDOWN, "the router is shutting down");
        }
        let has_roles = details
            .get("roles")
            .and_then(Value::as_dict)
            .is_some_and(|r| !r.is_empty());
        if !has_roles {
            return self.abort(
                conn,
                ERROR_PROTOCOL_VIOLATION,
                "HELLO must announce at least one role in details.roles",
            );
        }
        if !self.realms.contains_key(&realm) {
            if !self.auto_create_realms {
                return self.abort(
                    conn,
                    ERROR_NO_SUCH_REALM,
                    &format!("no realm {realm:?} on this router"),
                );
            }
            if !is_valid_uri(&realm, false) {
                return self.abort(
                    conn,
                    ERROR_INVALID_URI,
                    &format!("realm {realm:?} is not a valid URI"),
                );
            }
            self.add_realm(&realm);
        }
        let session = loop {
            let id = random_id(&mut self.rng);
            if !self.sessions.contains_key(&id) && !self.reserved.contains(&id) {
                break id;
            }
        };
        self.reserved.insert(session);
        let mut random = [0; 32];
        self.rng.fill(&mut random);
        let decision = self.authenticator.on_hello(&HelloContext {
            conn,
            session: SessionId(session),
            realm: &realm,
            details: &details,
            random,
        });
        let pending = PendingJoin {
            session,
            realm,
            hello: details,
            authmethod: String::new(),
            challenge: Dict::new(),
            deadline: self.now.map(|now| now + self.auth_timeout),
            rounds: 0,
        };
        self.apply_decision(conn, pending, decision);
    }

    fn on_authenticate(
        &mut self,
        conn: ConnectionId,
        pending: PendingJoin,
        signature: &str,
        extra: &Dict,
    ) {
        let mut random = [0; 32];
        self.rng.fill(&mut random);
        let decision = self.authenticator.on_authenticate(&AuthenticateContext {
            conn,
            session: SessionId(pending.session),
            realm: &pending.realm,
            hello: &pending.hello,
            authmethod: &pending.authmethod,
            challenge: &pending.challenge,
            signature,
            extra,
            random,
        });
        self.apply_decision(conn, pending, decision);
    }

    fn apply_decision(
        &mut self,
        conn: ConnectionId,
        mut pending: PendingJoin,
        decision: AuthDecision,
    ) {
        match decision {
            AuthDecision::Welcome {
                authid,
                authrole,
                authmethod,
                authprovider,
                extra,
            } => {
                self.reserved.remove(&pending.session);
                let session = pending.session;
                let mut details = Dict::new();
                details.insert("roles".into(), Value::Dict(router_roles()));
                details.insert("realm".into(), Value::String(pending.realm.clone()));
                details.insert("authid".into(), Value::String(authid.clone()));
                details.insert("authrole".into(), Value::String(authrole.clone()));
                details.insert("authmethod".into(), Value::String(authmethod.clone()));
                details.insert("authprovider".into(), Value::String(authprovider.clone()));
                if !extra.is_empty() {
                    details.insert("authextra".into(), Value::Dict(extra));
                }
                details.insert("agent".into(), Value::String(AGENT.to_owned()));
                let roles = match pending.hello.remove("roles") {
                    Some(Value::Dict(roles)) => roles,
                    _ => Dict::new(),
                };
                let realm = pending.realm;
                self.realms
                    .entry(realm.clone())
                    .or_default()
                    .sessions
                    .insert(session);
                self.sessions.insert(
                    session,
                    SessionRecord {
                        conn,
                        realm: realm.clone(),
                        authid: authid.clone(),
                        authrole: authrole.clone(),
                        authmethod: authmethod.clone(),
                        authprovider,
                        testaments: Vec::new(),
                        testament_bytes: 0,
                        roles,
                        authz_cache: HashMap::new(),
                        authz_cache_bytes: 0,
                        subscriptions: BTreeSet::new(),
                        registrations: BTreeSet::new(),
                        uri_bytes: 0,
                    },
                );
                self.conns.insert(conn, ConnState::Joined(session));
                self.set_deadline(conn, None);
                log::debug!("router: session {session} joined realm {realm:?} on {conn}");
                self.send(conn, Message::Welcome { session, details });
                if let Some(details) = self.session_details(session) {
                    self.publish_meta(&realm, "wamp.session.on_join", vec![details]);
                }
                self.events.push_back(RouterEvent::Joined {
                    conn,
                    session: SessionId(session),
                    realm,
                    authid,
                    authrole,
                });
            }
            AuthDecision::Challenge { authmethod, extra } => {
                if pending.rounds >= self.max_auth_rounds {
                    self.reserved.remove(&pending.session);
                    log::debug!(
                        "router: {conn} not welcomed after {} CHALLENGEs: aborting",
                        pending.rounds
                    );
                    return self.abort(
                        conn,
                        ERROR_NOT_AUTHORIZED,
                        "too many authentication attempts",
                    );
                }
                pending.rounds += 1;
                pending.authmethod = authmethod.clone();
                pending.challenge = extra.clone();
                // The deadline runs from HELLO: more rounds do not extend it.
                let deadline = pending.deadline;
                self.conns
                    .insert(conn, ConnState::Authenticating(Box::new(pending)));
                self.set_deadline_at(conn, deadline);
                self.send(conn, Message::Challenge { authmethod, extra });
            }
            AuthDecision::Deny { reason, message } => {
                self.reserved.remove(&pending.session);
                let reason = if reason.is_empty() {
                    ERROR_AUTHENTICATION_FAILED.to_owned()
                } else {
                    reason
                };
                self.abort(conn, &reason, &message);
            }
        }
    }

    /// Sends ABORT on a connection without a session and closes it.
    fn abort(&mut self, conn: ConnectionId, reason: &str, message: &str) {
        log::debug!("router: ABORT {reason} to {conn}: {message}");
        self.conns.insert(conn, ConnState::Closed);
        self.send(
            conn,
            Message::Abort {
                details: message_details(message),
                reason: reason.to_owned(),
            },
        );
        self.close_transport(conn, CloseReason::Aborted);
    }

    /// The client on `conn` broke the protocol: its session (if any) ends,
    /// it gets ABORT `wamp.error.protocol_violation`, and its transport is
    /// to be closed.
    pub(super) fn protocol_violation(&mut self, conn: ConnectionId, why: String) {
        log::warn!("router: protocol violation on {conn}: {why}");
        match self.conns.insert(conn, ConnState::Closed) {
            Some(ConnState::Joined(session)) => self.end_session(session),
            Some(ConnState::Authenticating(pending)) => {
                self.reserved.remove(&pending.session);
            }
            Some(_) => {}
            None => {
                self.conns.remove(&conn);
                return;
            }
        }
        self.abort(conn, ERROR_PROTOCOL_VIOLATION, &why);
    }

    /// The client said GOODBYE: reply, end the session, and let the
    /// connection join again.
    pub(super) fn on_goodbye(&mut self, conn: ConnectionId, session: u64) {
        self.end_session(session);
        self.conns.insert(conn, ConnState::Idle);
        self.set_deadline(conn, Some(self.hello_timeout));
        self.send(
            conn,
            Message::Goodbye {
                details: Dict::new(),
                reason: CLOSE_GOODBYE_AND_OUT.to_owned(),
            },
        );
    }

    /// The client sent ABORT on an established session.
    pub(super) fn on_abort(&mut self, conn: ConnectionId, session: u64) {
        self.end_session(session);
        self.conns.insert(conn, ConnState::Closed);
        self.close_transport(conn, CloseReason::Aborted);
    }

    /// Removes a session with everything it owns: subscriptions,
    /// registrations and pending calls. Calls it was the callee of fail
    /// with `wamp.error.canceled` to their callers; calls it made are
    /// interrupted (`killnowait`) at callees that support call canceling.
    /// Emits [`RouterEvent::Left`]. The connection state is the caller's
    /// business.
    pub(super) fn end_session(&mut self, session: u64) {
        let Some(record) = self.sessions.remove(&session) else {
            return;
        };
        let Some(realm) = self.realms.get_mut(&record.realm) else {
            return;
        };
        realm.sessions.remove(&session);
        // Its subscriptions and registrations go in `session_gone` below,
        // with their meta events.
        realm.dealer.forget_caller(session);
        // (to session, message, whether it answers that session's own call)
        let mut to_send = Vec::new();
        for id in realm.dealer.invocations_of(session) {
            let Some(call) = realm.dealer.finish(id) else {
                continue;
            };
            if call.callee == session && call.caller != session {
                to_send.push((
                    call.caller,
                    true,
                    Message::Error {
                        request_type: Message::CALL,
                        request: call.call_request,
                        details: Dict::new(),
                        error: ERROR_CANCELED.to_owned(),
                        args: Some(vec![Value::String(
                            "the callee left before answering".into(),
                        )]),
                        kwargs: None,
                    },
                ));
            } else if call.caller == session && call.callee != session && !call.interrupted {
                let supports = self
                    .sessions
                    .get(&call.callee)
                    .is_some_and(|s| s.has_feature("callee", "call_canceling"));
                if supports {
                    let mut options = Dict::new();
                    options.insert("mode".into(), "killnowait".into());
                    to_send.push((
                        call.callee,
                        false,
                        Message::Interrupt {
                            request: id,
                            options,
                        },
                    ));
                }
            }
        }
        for (to, answer, msg) in to_send {
            let Some(conn) = self.sessions.get(&to).map(|s| s.conn) else {
                continue;
            };
            if answer {
                self.send_call_answer(conn, msg.into());
            } else {
                self.send(conn, msg);
            }
        }
        self.session_gone(session, &record);
        log::debug!("router: session {session} left realm {:?}", record.realm);
        self.events.push_back(RouterEvent::Left {
            conn: record.conn,
            session: SessionId(session),
        });
    }

    /// Part of [`Router::shutdown`] for one connection.
    pub(super) fn shutdown_conn(&mut self, conn: ConnectionId, message: &str) {
        match self.conns.get(&conn) {
            Some(ConnState::Joined(session)) => {
                let session = *session;
                self.end_session(session);
                self.conns.insert(conn, ConnState::Closing);
                self.set_deadline(conn, Some(self.goodbye_timeout));
                self.send(
                    conn,
                    Message::Goodbye {
                        details: message_details(message),
                        reason: CLOSE_SYSTEM_SHUTDOWN.to_owned(),
                    },
                );
            }
            Some(ConnState::Authenticating(pending)) => {
                let session = pending.session;
                self.reserved.remove(&session);
                self.abort(conn, CLOSE_SYSTEM_SHUTDOWN, message);
            }
            Some(ConnState::Idle) => {
                self.conns.insert(conn, ConnState::Closed);
                self.close_transport(conn, CloseReason::Shutdown);
            }
            Some(ConnState::Closing | ConnState::Closed) | None => {}
        }
    }

    /// The deadline of `conn` passed: whatever it was waiting for did not
    /// come.
    pub(super) fn expire(&mut self, conn: ConnectionId) {
        match self.conns.get(&conn) {
            Some(ConnState::Idle) => {
                log::debug!("router: no HELLO on {conn} in time: closing it");
                self.conns.insert(conn, ConnState::Closed);
                self.close_transport(conn, CloseReason::Timeout);
            }
            Some(ConnState::Authenticating(_)) => {
                if let Some(ConnState::Authenticating(pending)) =
                    self.conns.insert(conn, ConnState::Closed)
                {
                    self.reserved.remove(&pending.session);
                }
                log::debug!("router: authentication on {conn} did not finish in time: aborting");
                self.send(
                    conn,
                    Message::Abort {
                        details: message_details("authentication did not finish in time"),
                        reason: ERROR_NOT_AUTHORIZED.to_owned(),
                    },
                );
                self.close_transport(conn, CloseReason::Timeout);
            }
            Some(ConnState::Closing) => {
                log::debug!("router: no GOODBYE reply on {conn} in time: closing it");
                self.conns.insert(conn, ConnState::Closed);
                self.close_transport(conn, CloseReason::Timeout);
            }
            Some(ConnState::Joined(_) | ConnState::Closed) | None => {}
        }
    }
}

//! The client side of a WAMP session (caller, callee, publisher,
//! subscriber) as a sans-IO state machine over [`Message`]s.
//!
//! ```
//! use std::time::Instant;
//! use fahrbahn_core::wamp::{Message, Session, SessionConfig, SessionEvent, SessionId, Dict};
//!
//! let now = Instant::now();
//! let mut session = Session::new(SessionConfig::new("realm1"), now);
//! assert!(matches!(session.poll_message(), Some(Message::Hello { .. })));
//! session.handle_message(now, Message::Welcome { session: 42, details: Dict::new() });
//! assert!(matches!(session.poll_event(), Some(SessionEvent::Joined { session: SessionId(42), .. })));
//! let request = session.call("com.example.add2", vec![1.into(), 2.into()], Dict::new(), Dict::new()).unwrap();
//! assert!(matches!(session.poll_message(), Some(Message::Call { .. })));
//! session.handle_message(now, Message::Result { request: request.0, details: Dict::new(), args: Some(vec![3.into()]), kwargs: None });
//! match session.poll_event() {
//!     Some(SessionEvent::Result { args, .. }) => assert_eq!(args, vec![3.into()]),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod config;
mod error;
mod event;
mod options;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

#[cfg(feature = "router")]
pub(crate) use config::feature_set;
pub use config::{AuthDetails, SessionConfig, client_roles};
pub use error::{ApplicationError, CommandError, ProtocolViolation, SessionError};
pub use event::{Closed, RequestKind, SessionEvent};
pub use options::{CallOptions, Invoke, RegisterOptions, TimeoutUnit};

use super::error::{
    CLOSE_GOODBYE_AND_OUT, CLOSE_NORMAL, DecodeError, ERROR_CANNOT_AUTHENTICATE,
    ERROR_NETWORK_FAILURE, ERROR_PROTOCOL_VIOLATION, ERROR_TIMEOUT,
};
use super::id::{IdGenerator, PublicationId, RegistrationId, RequestId, SessionId, SubscriptionId};
use super::message::Message;
use super::transport::TransportClosed;
use super::uri::{is_valid_uri, is_valid_uri_pattern};
use super::value::{Dict, List, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Joining,
    Authenticating,
    Established,
    Leaving,
    Closed,
}

/// A client session as a sans-IO state machine over WAMP messages.
///
/// Feed router messages to [`handle_message`](Self::handle_message), give
/// commands ([`call`](Self::call), [`register`](Self::register), …), and
/// drain [`poll_message`](Self::poll_message) (messages to send) and
/// [`poll_event`](Self::poll_event).
#[derive(Debug)]
pub struct Session {
    state: State,
    /// Methods offered in HELLO (a CHALLENGE for another is refused).
    authmethods: Vec<String>,
    join_timeout: Duration,
    leave_timeout: Duration,
    /// When joining or leaving must be done.
    deadline: Option<Instant>,
    /// The latest time passed in.
    now: Instant,
    requests: IdGenerator,
    pending: HashMap<u64, RequestKind>,
    /// Our calls still streaming their input (progressive call
    /// invocations), with their procedure.
    streaming: HashMap<u64, String>,
    registrations: HashSet<u64>,
    subscriptions: HashSet<u64>,
    invocations: HashSet<u64>,
    out: VecDeque<Message>,
    events: VecDeque<SessionEvent>,
    session_id: Option<SessionId>,
    /// The authentication fields of WELCOME, once joined.
    auth_details: Option<AuthDetails>,
    /// Answers CHALLENGEs with the configured credentials.
    #[cfg(feature = "auth")]
    auth: crate::wamp::auth::ClientAuth,
}

fn uri_ok(uri: &str, options: &Dict) -> Result<(), CommandError> {
    let pattern = matches!(
        options.get("match").and_then(Value::as_str),
        Some("prefix" | "wildcard")
    );
    let ok = if pattern {
        is_valid_uri_pattern(uri, false)
    } else {
        is_valid_uri(uri, false)
    };
    if ok {
        Ok(())
    } else {
        Err(CommandError::InvalidUri(uri.to_owned()))
    }
}

/// The id a router-side revocation (UNREGISTERED or UNSUBSCRIBED with
/// request 0) names in its details under `key`.
fn revoked(details: Option<&Dict>, key: &str) -> Option<u64> {
    details?.get(key).and_then(Value::as_u64)
}

fn payload(args: List, kwargs: Dict) -> (Option<List>, Option<Dict>) {
    match (args.is_empty(), kwargs.is_empty()) {
        (true, true) => (None, None),
        (_, true) => (Some(args), None),
        _ => (Some(args), Some(kwargs)),
    }
}

impl Session {
    /// A session that starts by sending HELLO at `now`; it must be
    /// welcomed within [`SessionConfig::join_timeout`].
    ///
    /// A SCRAM credential needs random bytes for its nonce: use
    /// [`with_rng`](Self::with_rng) for it (without, it is not offered).
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        Self::build(config, now, None)
    }

    /// [`new`](Self::new) with the RNG that makes authentication nonces
    /// (SCRAM's client nonce).
    pub fn with_rng(config: SessionConfig, now: Instant, rng: &mut crate::Rng) -> Self {
        Self::build(config, now, Some(rng))
    }

    /// Whether the configuration needs random bytes (a SCRAM credential).
    pub(crate) fn needs_rng(config: &SessionConfig) -> bool {
        #[cfg(feature = "auth")]
        return config
            .credentials
            .iter()
            .any(|c| matches!(c, crate::wamp::auth::Credential::Scram { .. }));
        #[cfg(not(feature = "auth"))]
        {
            let _ = config;
            false
        }
    }

    fn build(mut config: SessionConfig, now: Instant, rng: Option<&mut crate::Rng>) -> Self {
        #[cfg(feature = "auth")]
        let auth = crate::wamp::auth::ClientAuth::new(
            std::mem::take(&mut config.credentials),
            config.authid.as_deref(),
            &mut config.authextra,
            rng,
        );
        #[cfg(not(feature = "auth"))]
        let _ = rng;
        #[cfg(feature = "auth")]
        let mut offered = auth.methods();
        #[cfg(not(feature = "auth"))]
        let mut offered: Vec<String> = Vec::new();
        for method in std::mem::take(&mut config.authmethods) {
            if !offered.contains(&method) {
                offered.push(method);
            }
        }
        let mut details = Dict::new();
        details.insert("roles".into(), Value::Dict(client_roles()));
        details.insert("agent".into(), Value::String(config.agent));
        if !offered.is_empty() {
            details.insert(
                "authmethods".into(),
                Value::List(offered.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(authid) = config.authid {
            details.insert("authid".into(), Value::String(authid));
        }
        if let Some(authrole) = config.authrole {
            details.insert("authrole".into(), Value::String(authrole));
        }
        if !config.authextra.is_empty() {
            details.insert("authextra".into(), Value::Dict(config.authextra));
        }
        let mut out = VecDeque::new();
        out.push_back(Message::Hello {
            realm: config.realm,
            details,
        });
        Self {
            state: State::Joining,
            authmethods: offered,
            join_timeout: config.join_timeout,
            leave_timeout: config.leave_timeout,
            deadline: Some(now + config.join_timeout),
            now,
            requests: IdGenerator::new(),
            pending: HashMap::new(),
            streaming: HashMap::new(),
            registrations: HashSet::new(),
            subscriptions: HashSet::new(),
            invocations: HashSet::new(),
            out,
            events: VecDeque::new(),
            session_id: None,
            auth_details: None,
            #[cfg(feature = "auth")]
            auth,
        }
    }

    /// Who the router says this session is (WELCOME's `authid`,
    /// `authrole`, `authmethod`, `authprovider`, `authextra`), once joined.
    pub fn auth_details(&self) -> Option<&AuthDetails> {
        self.auth_details.as_ref()
    }

    /// The session id once joined.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }

    /// Whether the session has joined and is not leaving.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_message(&mut self) -> Option<Message> {
        self.out.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the
    /// join deadline while joining, the GOODBYE deadline while leaving.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The latest time passed to an input or command.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    // ----- commands -----------------------------------------------------

    fn check_established(&self) -> Result<(), CommandError> {
        match self.state {
            State::Established => Ok(()),
            State::Joining | State::Authenticating => Err(CommandError::NotJoined),
            State::Leaving | State::Closed => Err(CommandError::Closed),
        }
    }

    fn request(&mut self, kind: RequestKind) -> u64 {
        let id = self.requests.next();
        self.pending.insert(id, kind);
        id
    }

    fn request_id(&mut self, kind: RequestKind) -> RequestId {
        RequestId(self.request(kind))
    }

    /// Refuses a [`SessionEvent::Challenge`] the application cannot answer:
    /// the session aborts with `wamp.error.cannot_authenticate` and ends
    /// with [`SessionError::CannotAuthenticate`].
    pub fn decline_challenge(
        &mut self,
        now: Instant,
        authmethod: &str,
        message: impl Into<String>,
    ) -> Result<(), CommandError> {
        self.now = now;
        if self.state != State::Authenticating {
            return Err(CommandError::NoChallenge);
        }
        self.cannot_authenticate(authmethod, message.into());
        Ok(())
    }

    fn cannot_authenticate(&mut self, authmethod: &str, message: String) {
        log::debug!("cannot answer the {authmethod} challenge: {message}");
        let mut details = Dict::new();
        details.insert("message".into(), Value::String(message.clone()));
        self.out.push_back(Message::Abort {
            details: details.clone(),
            reason: ERROR_CANNOT_AUTHENTICATE.to_owned(),
        });
        self.close(
            ERROR_CANNOT_AUTHENTICATE.to_owned(),
            details,
            false,
            Some(SessionError::CannotAuthenticate {
                authmethod: authmethod.to_owned(),
                message,
            }),
        );
    }

    /// Answers a [`SessionEvent::Challenge`].
    pub fn authenticate(
        &mut self,
        signature: impl Into<String>,
        extra: Dict,
    ) -> Result<(), CommandError> {
        if self.state != State::Authenticating {
            return Err(CommandError::NoChallenge);
        }
        self.out.push_back(Message::Authenticate {
            signature: signature.into(),
            extra,
        });
        Ok(())
    }

    /// Calls `procedure`; the answer is a [`SessionEvent::Result`] or
    /// [`SessionEvent::Failed`] with the returned request id.
    pub fn call(
        &mut self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<RequestId, CommandError> {
        self.check_established()?;
        uri_ok(procedure, &Dict::new())?;
        let request = self.request(RequestKind::Call);
        if options.get("progress").and_then(Value::as_bool) == Some(true) {
            self.streaming.insert(request, procedure.to_owned());
        }
        let (args, kwargs) = payload(args, kwargs);
        self.out.push_back(Message::Call {
            request,
            options,
            procedure: procedure.to_owned(),
            args,
            kwargs,
        });
        Ok(RequestId(request))
    }

    /// Forgets a call whose CALL was never sent (it did not fit what the
    /// router accepts): no answer is expected for it.
    pub(crate) fn forget_call(&mut self, request: RequestId) {
        self.pending.remove(&request.0);
        self.streaming.remove(&request.0);
    }

    /// Sends one more part of the input of call `request`, started with
    /// option `progress: true` (progressive call invocations): a CALL
    /// with the same request id, `progress: true` unless `last`. After
    /// the last part the call waits for its answer as any other.
    pub fn call_part(
        &mut self,
        request: RequestId,
        args: List,
        kwargs: Dict,
        last: bool,
    ) -> Result<(), CommandError> {
        let msg = self.part_message(request, args, kwargs, last)?;
        self.commit_part(request, last);
        self.out.push_back(msg);
        Ok(())
    }

    /// The CALL of [`call_part`](Self::call_part), not yet sent.
    pub(crate) fn part_message(
        &self,
        request: RequestId,
        args: List,
        kwargs: Dict,
        last: bool,
    ) -> Result<Message, CommandError> {
        self.check_established()?;
        let Some(procedure) = self.streaming.get(&request.0) else {
            return Err(CommandError::NotStreaming(request));
        };
        let mut options = Dict::new();
        if !last {
            options.insert("progress".into(), true.into());
        }
        let (args, kwargs) = payload(args, kwargs);
        Ok(Message::Call {
            request: request.0,
            options,
            procedure: procedure.clone(),
            args,
            kwargs,
        })
    }

    /// Records that a part was sent (the last one ends the streaming).
    pub(crate) fn commit_part(&mut self, request: RequestId, last: bool) {
        if last {
            self.streaming.remove(&request.0);
        }
    }

    /// Forgets an acknowledged publication whose PUBLISH was never sent
    /// (it did not fit what the router accepts).
    pub(crate) fn forget_publish(&mut self, request: RequestId) {
        self.pending.remove(&request.0);
    }

    /// Answers invocation `request` with ERROR
    /// `wamp.error.payload_size_exceeded` because its YIELD (already taken
    /// from the output, never sent) was `size` bytes and the router
    /// accepts at most `max`; a progressive invocation ends with it.
    pub(crate) fn yield_too_large(&mut self, request: RequestId, size: usize, max: usize) {
        self.invocations.remove(&request.0);
        self.out.push_back(Message::Error {
            request_type: Message::INVOCATION,
            request: request.0,
            details: Dict::new(),
            error: super::error::ERROR_PAYLOAD_SIZE_EXCEEDED.to_owned(),
            args: Some(vec![Value::from(format!(
                "the result was {size} bytes; the router accepts at most {max}"
            ))]),
            kwargs: None,
        });
    }

    /// Cancels a pending call (`mode`: `skip`, `kill` or `killnowait`;
    /// `None` lets the router choose).
    pub fn cancel(
        &mut self,
        call_request: RequestId,
        mode: Option<&str>,
    ) -> Result<(), CommandError> {
        let call_request = call_request.0;
        self.check_established()?;
        if self.pending.get(&call_request) != Some(&RequestKind::Call) {
            return Ok(()); // already answered: nothing to cancel
        }
        let mut options = Dict::new();
        if let Some(mode) = mode {
            options.insert("mode".into(), Value::String(mode.to_owned()));
        }
        self.out.push_back(Message::Cancel {
            request: call_request,
            options,
        });
        Ok(())
    }

    /// Registers `procedure` (options e.g. `match`, `invoke`).
    pub fn register(&mut self, procedure: &str, options: Dict) -> Result<RequestId, CommandError> {
        self.check_established()?;
        uri_ok(procedure, &options)?;
        let request = self.request(RequestKind::Register);
        self.out.push_back(Message::Register {
            request,
            options,
            procedure: procedure.to_owned(),
        });
        Ok(RequestId(request))
    }

    /// Unregisters a registration.
    pub fn unregister(&mut self, registration: RegistrationId) -> Result<RequestId, CommandError> {
        self.check_established()?;
        let request = self.request_id(RequestKind::Unregister);
        self.out.push_back(Message::Unregister {
            request: request.0,
            registration: registration.0,
        });
        Ok(request)
    }

    /// Subscribes to `topic` (options e.g. `match`).
    pub fn subscribe(&mut self, topic: &str, options: Dict) -> Result<RequestId, CommandError> {
        self.check_established()?;
        uri_ok(topic, &options)?;
        let request = self.request(RequestKind::Subscribe);
        self.out.push_back(Message::Subscribe {
            request,
            options,
            topic: topic.to_owned(),
        });
        Ok(RequestId(request))
    }

    /// Ends a subscription.
    pub fn unsubscribe(&mut self, subscription: SubscriptionId) -> Result<RequestId, CommandError> {
        self.check_established()?;
        let request = self.request_id(RequestKind::Unsubscribe);
        self.out.push_back(Message::Unsubscribe {
            request: request.0,
            subscription: subscription.0,
        });
        Ok(request)
    }

    /// Publishes to `topic`. With `acknowledge: true` in `options` a
    /// [`SessionEvent::Published`] or [`SessionEvent::Failed`] follows.
    pub fn publish(
        &mut self,
        topic: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<RequestId, CommandError> {
        self.check_established()?;
        uri_ok(topic, &Dict::new())?;
        let acknowledge = options.get("acknowledge").and_then(Value::as_bool) == Some(true);
        let request = if acknowledge {
            self.request(RequestKind::Publish)
        } else {
            self.requests.next()
        };
        let (args, kwargs) = payload(args, kwargs);
        self.out.push_back(Message::Publish {
            request,
            options,
            topic: topic.to_owned(),
            args,
            kwargs,
        });
        Ok(RequestId(request))
    }

    fn take_invocation(&mut self, request: u64, progress: bool) -> Result<(), CommandError> {
        if !self.invocations.contains(&request) {
            return Err(CommandError::UnknownInvocation(RequestId(request)));
        }
        if !progress {
            self.invocations.remove(&request);
        }
        if self.state == State::Closed {
            return Err(CommandError::Closed);
        }
        Ok(())
    }

    /// Answers an invocation with a result (`progress: true` in `options`
    /// for a progressive result).
    pub fn yield_result(
        &mut self,
        request: RequestId,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<(), CommandError> {
        let request = request.0;
        let progress = options.get("progress").and_then(Value::as_bool) == Some(true);
        self.take_invocation(request, progress)?;
        let (args, kwargs) = payload(args, kwargs);
        self.out.push_back(Message::Yield {
            request,
            options,
            args,
            kwargs,
        });
        Ok(())
    }

    /// Answers an invocation with an error.
    pub fn yield_error(
        &mut self,
        request: RequestId,
        error: ApplicationError,
    ) -> Result<(), CommandError> {
        let request = request.0;
        self.take_invocation(request, false)?;
        let (args, kwargs) = payload(error.args, error.kwargs);
        self.out.push_back(Message::Error {
            request_type: Message::INVOCATION,
            request,
            details: error.details,
            error: error.error,
            args,
            kwargs,
        });
        Ok(())
    }

    /// Leaves the realm with GOODBYE (`reason` e.g. `wamp.close.normal`);
    /// [`SessionEvent::Closed`] follows the router's reply, or
    /// [`SessionConfig::leave_timeout`] without one. Before WELCOME, the
    /// join is aborted instead.
    pub fn leave(&mut self, now: Instant, reason: &str) -> Result<(), CommandError> {
        self.now = now;
        match self.state {
            State::Established => {}
            State::Leaving | State::Closed => return Err(CommandError::Closed),
            State::Joining | State::Authenticating => {
                // Not joined yet: abort instead.
                self.out.push_back(Message::Abort {
                    details: Dict::new(),
                    reason: reason.to_owned(),
                });
                self.close(reason.to_owned(), Dict::new(), false, None);
                return Ok(());
            }
        }
        self.out.push_back(Message::Goodbye {
            details: Dict::new(),
            reason: reason.to_owned(),
        });
        self.state = State::Leaving;
        self.deadline = Some(now + self.leave_timeout);
        Ok(())
    }

    /// Leaves with `wamp.close.normal`.
    pub fn leave_normal(&mut self, now: Instant) -> Result<(), CommandError> {
        self.leave(now, CLOSE_NORMAL)
    }

    // ----- inputs -------------------------------------------------------

    /// The transport ended (or failed) under the session.
    pub fn handle_transport_closed(&mut self, now: Instant, closed: TransportClosed) {
        self.now = now;
        if self.state != State::Closed {
            let error = Some(SessionError::TransportClosed(closed));
            self.close(ERROR_NETWORK_FAILURE.to_owned(), Dict::new(), true, error);
        }
    }

    /// A payload from the router did not decode: the session aborts with
    /// `wamp.error.protocol_violation` and ends with
    /// [`SessionError::Decode`].
    pub fn handle_decode_error(&mut self, now: Instant, error: DecodeError) {
        self.now = now;
        let why = format!("undecodable message: {error}");
        self.abort_violation(why, SessionError::Decode(error));
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed: a join
    /// without WELCOME is aborted, a leave without GOODBYE reply ends.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        match self.state {
            State::Joining | State::Authenticating => {
                let mut details = Dict::new();
                details.insert("message".into(), "no WELCOME in time".into());
                self.out.push_back(Message::Abort {
                    details: details.clone(),
                    reason: ERROR_TIMEOUT.to_owned(),
                });
                let error = SessionError::JoinTimeout(self.join_timeout);
                self.close(ERROR_TIMEOUT.to_owned(), details, false, Some(error));
            }
            State::Leaving => {
                let error = SessionError::LeaveTimeout(self.leave_timeout);
                self.close(CLOSE_NORMAL.to_owned(), Dict::new(), false, Some(error));
            }
            State::Established | State::Closed => self.deadline = None,
        }
    }

    /// Ends the session because the router broke the protocol: sends
    /// ABORT `wamp.error.protocol_violation` with `why`.
    fn protocol_violation(&mut self, violation: ProtocolViolation) {
        self.abort_violation(
            violation.to_string(),
            SessionError::ProtocolViolation(violation),
        );
    }

    fn abort_violation(&mut self, why: String, error: SessionError) {
        if self.state == State::Closed {
            return;
        }
        log::warn!("WAMP protocol violation: {why}");
        let mut details = Dict::new();
        details.insert("message".into(), Value::String(why));
        self.out.push_back(Message::Abort {
            details: details.clone(),
            reason: ERROR_PROTOCOL_VIOLATION.to_owned(),
        });
        self.close(
            ERROR_PROTOCOL_VIOLATION.to_owned(),
            details,
            false,
            Some(error),
        );
    }

    fn close(
        &mut self,
        reason: String,
        details: Dict,
        by_router: bool,
        error: Option<SessionError>,
    ) {
        self.state = State::Closed;
        self.deadline = None;
        self.pending.clear();
        self.invocations.clear();
        self.events.push_back(SessionEvent::Closed(Closed {
            reason,
            details,
            by_router,
            error,
        }));
    }

    /// Handles a message from the router.
    pub fn handle_message(&mut self, now: Instant, message: Message) {
        self.now = now;
        match self.state {
            State::Closed => {}
            State::Joining | State::Authenticating => self.handle_joining(message),
            State::Established | State::Leaving => self.handle_established(message),
        }
    }

    fn handle_joining(&mut self, message: Message) {
        match message {
            Message::Welcome { session, details } => {
                #[cfg(feature = "auth")]
                if let Err(e) = self.auth.check_welcome(&details) {
                    let method = details
                        .get("authmethod")
                        .and_then(Value::as_str)
                        .unwrap_or("scram")
                        .to_owned();
                    return self.cannot_authenticate(&method, e.to_string());
                }
                self.auth_details = Some(AuthDetails::from_welcome(&details));
                self.state = State::Established;
                self.deadline = None;
                self.session_id = Some(SessionId(session));
                self.events.push_back(SessionEvent::Joined {
                    session: SessionId(session),
                    details,
                });
            }
            Message::Challenge { authmethod, .. }
                if self.state == State::Joining && !self.authmethods.contains(&authmethod) =>
            {
                let message = format!(
                    "the router challenged {authmethod:?}, which this session did not offer ({:?})",
                    self.authmethods
                );
                self.cannot_authenticate(&authmethod, message);
            }
            Message::Challenge { authmethod, extra } if self.state == State::Joining => {
                self.state = State::Authenticating;
                #[cfg(feature = "auth")]
                if let Some(answer) = self.auth.answer(&authmethod, &extra) {
                    match answer {
                        Ok(signature) => self.out.push_back(Message::Authenticate {
                            signature,
                            extra: Dict::new(),
                        }),
                        Err(e) => self.cannot_authenticate(&authmethod, e.to_string()),
                    }
                    return;
                }
                self.events
                    .push_back(SessionEvent::Challenge { authmethod, extra });
            }
            Message::Abort { details, reason } => {
                let message = details
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let error = SessionError::Aborted {
                    reason: reason.clone(),
                    message,
                };
                self.close(reason, details, true, Some(error));
            }
            other => self.protocol_violation(ProtocolViolation::UnexpectedMessage {
                message: other.name(),
                joined: false,
            }),
        }
    }

    fn answer(&mut self, request: u64, kind: RequestKind, keep: bool) -> bool {
        match self.pending.get(&request) {
            Some(k) if *k == kind => {
                if !keep {
                    self.pending.remove(&request);
                    self.streaming.remove(&request);
                }
                true
            }
            _ => {
                self.protocol_violation(ProtocolViolation::UnknownRequest {
                    kind,
                    request: RequestId(request),
                });
                false
            }
        }
    }

    fn handle_established(&mut self, message: Message) {
        match message {
            Message::Result {
                request,
                details,
                args,
                kwargs,
            } => {
                let progress = details.get("progress").and_then(Value::as_bool) == Some(true);
                if self.answer(request, RequestKind::Call, progress) {
                    self.events.push_back(SessionEvent::Result {
                        request: RequestId(request),
                        args: args.unwrap_or_default(),
                        kwargs: kwargs.unwrap_or_default(),
                        details,
                        progress,
                    });
                }
            }
            Message::Error {
                request_type,
                request,
                details,
                error,
                args,
                kwargs,
            } => {
                let Some(kind) = RequestKind::from_message_type(request_type) else {
                    return self
                        .protocol_violation(ProtocolViolation::ErrorForRequestType(request_type));
                };
                if self.answer(request, kind, false) {
                    self.events.push_back(SessionEvent::Failed {
                        request: RequestId(request),
                        kind,
                        error: ApplicationError {
                            error,
                            args: args.unwrap_or_default(),
                            kwargs: kwargs.unwrap_or_default(),
                            details,
                        },
                    });
                }
            }
            Message::Registered {
                request,
                registration,
            } => {
                if self.answer(request, RequestKind::Register, false) {
                    self.registrations.insert(registration);
                    self.events.push_back(SessionEvent::Registered {
                        request: RequestId(request),
                        registration: RegistrationId(registration),
                    });
                }
            }
            Message::Unregistered { request, details } => {
                if request == 0 {
                    // Router-side revocation (registration_revocation).
                    if let Some(id) = revoked(details.as_ref(), "registration") {
                        if self.registrations.remove(&id) {
                            let reason = details
                                .as_ref()
                                .and_then(|d| d.get("reason"))
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned();
                            self.events.push_back(SessionEvent::RegistrationRevoked {
                                registration: RegistrationId(id),
                                reason,
                            });
                        }
                    }
                } else if self.answer(request, RequestKind::Unregister, false) {
                    self.events.push_back(SessionEvent::Unregistered {
                        request: RequestId(request),
                    });
                }
            }
            Message::Subscribed {
                request,
                subscription,
            } => {
                if self.answer(request, RequestKind::Subscribe, false) {
                    self.subscriptions.insert(subscription);
                    self.events.push_back(SessionEvent::Subscribed {
                        request: RequestId(request),
                        subscription: SubscriptionId(subscription),
                    });
                }
            }
            Message::Unsubscribed { request, details } => {
                if request == 0 {
                    // Router-side revocation (subscription_revocation).
                    if let Some(id) = revoked(details.as_ref(), "subscription") {
                        if self.subscriptions.remove(&id) {
                            let reason = details
                                .as_ref()
                                .and_then(|d| d.get("reason"))
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            self.events.push_back(SessionEvent::SubscriptionRevoked {
                                subscription: SubscriptionId(id),
                                reason,
                            });
                        }
                    }
                } else if self.answer(request, RequestKind::Unsubscribe, false) {
                    self.events.push_back(SessionEvent::Unsubscribed {
                        request: RequestId(request),
                    });
                }
            }
            Message::Published {
                request,
                publication,
            } => {
                if self.answer(request, RequestKind::Publish, false) {
                    self.events.push_back(SessionEvent::Published {
                        request: RequestId(request),
                        publication: PublicationId(publication),
                    });
                }
            }
            Message::Invocation {
                request,
                registration,
                details,
                args,
                kwargs,
            } => {
                if !self.registrations.contains(&registration) {
                    return self.protocol_violation(ProtocolViolation::UnknownRegistration(
                        RegistrationId(registration),
                    ));
                }
                if self.state == State::Leaving {
                    return; // we are leaving: the router fails it for us
                }
                self.invocations.insert(request);
                self.events.push_back(SessionEvent::Invocation {
                    request: RequestId(request),
                    registration: RegistrationId(registration),
                    args: args.unwrap_or_default(),
                    kwargs: kwargs.unwrap_or_default(),
                    details,
                });
            }
            Message::Interrupt { request, options } => {
                if self.invocations.contains(&request) {
                    self.events.push_back(SessionEvent::Interrupt {
                        request: RequestId(request),
                        options,
                    });
                }
            }
            Message::Event {
                subscription,
                publication,
                details,
                args,
                kwargs,
            } => {
                if !self.subscriptions.contains(&subscription) {
                    // Events may still arrive right after UNSUBSCRIBE.
                    log::debug!("EVENT for unknown subscription {subscription} dropped");
                    return;
                }
                self.events.push_back(SessionEvent::Event {
                    subscription: SubscriptionId(subscription),
                    publication: PublicationId(publication),
                    args: args.unwrap_or_default(),
                    kwargs: kwargs.unwrap_or_default(),
                    details,
                });
            }
            Message::Goodbye { details, reason } => {
                let by_router = self.state != State::Leaving;
                if by_router {
                    self.out.push_back(Message::Goodbye {
                        details: Dict::new(),
                        reason: CLOSE_GOODBYE_AND_OUT.to_owned(),
                    });
                }
                self.close(reason, details, by_router, None);
            }
            Message::Abort { details, reason } => {
                let message = details
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let error = SessionError::Aborted {
                    reason: reason.clone(),
                    message,
                };
                self.close(reason, details, true, Some(error));
            }
            other => self.protocol_violation(ProtocolViolation::UnexpectedMessage {
                message: other.name(),
                joined: true,
            }),
        }
    }
}

//! The async WAMP client session, on any runtime.
//!
//! One background task per session ([`task`]) runs the driver loop over the
//! sans-IO [`ClientConnection`]; [`Session`] handles (cheap to clone) issue
//! commands under a lock and wake it. Results, events and invocations are
//! routed back by request id.

mod meta;
mod options;
mod payload;
mod task;

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use fahrbahn_core::wamp::error::ERROR_NETWORK_FAILURE;
use fahrbahn_core::wamp::{
    ApplicationError, AuthDetails, CallOptions, ClientConnection, Closed, Codec, Dict, List,
    RegisterOptions, RegistrationId, RequestId, Serializer, SessionId, SubscriptionId, TimeoutUnit,
    Value,
};
use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use meta::{ByMatch, Meta, TestamentScope};
pub use options::{ChallengeHandler, DEFAULT_MAX_QUEUED_EVENT_BYTES, Framing, SessionOptions};
pub use payload::{
    CallProgress, CallResult, Event, Invocation, InvocationStream, from_payload, kwargs, to_args,
    to_payload,
};

use crate::connect::MaybeTlsStream;
use crate::driver::Driver;
use crate::error::Error;
use crate::runtime::{BoxTransport, ExecutorHandle, Runtime};
use crate::wamp_url::WampUrl;
use task::{Ending, Handler, Inner, LeaveOnDrop, Shared, Sink, StreamHandler, Waiter, run};

/// A WAMP session joined to a realm: caller, callee, publisher and
/// subscriber. Cheap to clone; the session leaves when the last clone is
/// dropped (or on [`leave`](Self::leave)).
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    _guard: Arc<LeaveOnDrop>,
    id: SessionId,
    welcome: Arc<Dict>,
    /// How the router reads CALL `timeout` ([`SessionConfig::call_timeout_unit`](fahrbahn_core::wamp::SessionConfig::call_timeout_unit)).
    timeout_unit: TimeoutUnit,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A registered procedure (cheap to clone). It ends when it is
/// unregistered, when the session ends, or when the router revokes it
/// ([`revoked`](Self::revoked) says why).
#[derive(Clone)]
pub struct Registration {
    /// The router's registration id.
    pub id: RegistrationId,
    ending: Arc<Ending>,
}

impl Registration {
    /// A handle for the registration `id` of this crate's own bookkeeping
    /// (the component's), which no revocation reaches.
    pub(crate) fn from_id(id: RegistrationId) -> Self {
        Self {
            id,
            ending: Arc::default(),
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Registration {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Registration {}

impl Registration {
    /// Waits until the registration ends: `Some(reason)` when the router
    /// revoked it (registration revocation: `wamp.registration.remove_callee`,
    /// or another callee registered with `force_reregister`; the reason
    /// is the router's, e.g. `wamp.error.unregistered`), `None` when it
    /// ended otherwise (unregistered, the session closed). After a
    /// revocation no more invocations come for it.
    pub async fn revoked(&self) -> Option<String> {
        poll_fn(|cx| self.ending.poll(cx)).await
    }
}

/// A call whose input the caller streams (progressive call invocations),
/// from [`Session::call_streaming`]: [`send`](Self::send) more parts,
/// then [`finish`](Self::finish) with the last one and wait for the
/// result. Dropped before it is finished, the call is canceled.
pub struct StreamingCall {
    session: Session,
    request: RequestId,
    answer: Option<oneshot::Receiver<Result<CallResult, Error>>>,
}

impl fmt::Debug for StreamingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingCall")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl StreamingCall {
    /// Sends one more part of the input (not the last).
    pub fn send(&self, args: List, kwargs: Dict) -> Result<(), Error> {
        self.part(args, kwargs, false)
    }

    fn part(&self, args: List, kwargs: Dict, last: bool) -> Result<(), Error> {
        let request = self.request;
        self.session
            .shared
            .command(|inner| inner.driver.conn.call_part(request, args, kwargs, last))
    }

    /// Sends the last part of the input and waits for the call's result.
    pub async fn finish(mut self, args: List, kwargs: Dict) -> Result<CallResult, Error> {
        self.part(args, kwargs, true)?;
        let Some(rx) = self.answer.take() else {
            return Err(Error::Io(std::io::Error::other(
                "the call was already answered",
            )));
        };
        let result = answer(&self.session.shared, rx).await;
        result?
    }
}

impl Drop for StreamingCall {
    fn drop(&mut self) {
        if self.answer.is_some() {
            let request = self.request;
            let _ = self.session.shared.command(|inner| {
                inner.waiters.remove(&request);
                inner.driver.conn.session_mut().cancel(request, None)
            });
        }
    }
}

/// A subscription: a [`Stream`] of [`Event`]s.
pub struct Subscription {
    /// The router's subscription id.
    pub id: SubscriptionId,
    /// Each event with its estimated size, counted by the session until
    /// taken (see `SessionOptions::max_queued_event_bytes`).
    events: mpsc::UnboundedReceiver<(Event, usize)>,
    /// Set when the router revoked the subscription.
    revoked: Arc<OnceLock<Revocation>>,
    session: Session,
}

/// Why the router ended a subscription on its own initiative
/// (subscription revocation, e.g. `wamp.subscription.remove_subscriber`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// The reason the router gave (`details.reason`), if any.
    pub reason: Option<String>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Events never taken no longer count against the session's bound.
        self.events.close();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut freed = 0;
        while let Poll::Ready(Some((_, size))) = Pin::new(&mut self.events).poll_next(&mut cx) {
            freed += size;
        }
        self.session.shared.release_events(freed);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next event; `None` once the session or subscription ended
    /// (see [`revocation`](Self::revocation) for why).
    pub async fn next(&mut self) -> Option<Event> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Why the router ended this subscription, once it did (the stream
    /// then ends after the events received before): `None` while it runs,
    /// or when it ended otherwise (unsubscribed, session closed).
    pub fn revocation(&self) -> Option<&Revocation> {
        self.revoked.get()
    }

    /// Ends the subscription (at the router too, once no other
    /// subscription of this session is on the same topic).
    pub async fn unsubscribe(self) -> Result<(), Error> {
        let id = self.id;
        let session = self.session.clone();
        drop(self);
        let (tx, rx) = oneshot::channel();
        let sent = session.shared.command(|inner| {
            let sinks = inner.subscriptions.entry(id).or_default();
            sinks.retain(|s| !s.events.is_closed());
            if !sinks.is_empty() {
                return Ok(false);
            }
            inner.subscriptions.remove(&id);
            let request = inner.driver.conn.session_mut().unsubscribe(id)?;
            inner.waiters.insert(request, Waiter::Done(tx));
            Ok(true)
        })?;
        if sent {
            answer(&session.shared, rx).await??;
        }
        Ok(())
    }
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        Pin::new(&mut this.events).poll_next(cx).map(|next| {
            next.map(|(event, size)| {
                this.session.shared.release_events(size);
                event
            })
        })
    }
}

/// The results of a call that asked for progressive results
/// ([`Session::call_progressive`]): a [`Stream`] of
/// [`CallProgress::Progress`] items, then one [`CallProgress::Final`] (or
/// an error), then the end. Dropping it before the final result cancels
/// the call.
pub struct ProgressiveCall {
    results: mpsc::UnboundedReceiver<Result<CallProgress, Error>>,
    session: Session,
    request: RequestId,
    done: bool,
}

impl fmt::Debug for ProgressiveCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressiveCall")
            .field("request", &self.request)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ProgressiveCall {
    /// The next result; `None` after the final one (or an error).
    pub async fn next(&mut self) -> Option<Result<CallProgress, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ProgressiveCall {
    type Item = Result<CallProgress, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.results).poll_next(cx) {
            Poll::Ready(Some(item)) => {
                if !matches!(item, Ok(CallProgress::Progress(_))) {
                    this.done = true;
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                // The waiter went away without an answer: the session
                // ended.
                this.done = true;
                Poll::Ready(Some(Err(this.session.shared.lock().session_error())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ProgressiveCall {
    fn drop(&mut self) {
        if !self.done {
            let request = self.request;
            let _ = self.session.shared.command(|inner| {
                inner.waiters.remove(&request);
                inner.driver.conn.session_mut().cancel(request, None)
            });
        }
    }
}

/// Waits for an answer; when the session ends first, the reason it ended.
async fn answer<T>(shared: &Shared, rx: oneshot::Receiver<T>) -> Result<T, Error> {
    match rx.await {
        Ok(answer) => Ok(answer),
        Err(_) => Err(shared.lock().session_error()),
    }
}

/// Cancels a call whose future is dropped before the answer came.
struct CallGuard<'a> {
    session: &'a Session,
    request: RequestId,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let request = self.request;
            let _ = self.session.shared.command(|inner| {
                inner.waiters.remove(&request);
                inner.driver.conn.session_mut().cancel(request, None)
            });
        }
    }
}

impl Session {
    /// Connects to `url` (`ws://`, `wss://`, `rs://`, `rss://`, `unix:`)
    /// and joins `realm` anonymously.
    pub async fn connect<R: Runtime>(runtime: &R, url: &str, realm: &str) -> Result<Self, Error> {
        Self::connect_with(runtime, url, SessionOptions::new(realm)).await
    }

    /// Connects and joins with `options`.
    pub async fn connect_with<R: Runtime>(
        runtime: &R,
        url: &str,
        options: SessionOptions,
    ) -> Result<Self, Error> {
        // Boxed: the dial, TLS and join states together are large, and a
        // caller's future holding them inline can overflow a small stack
        // (e.g. a test thread's, in debug builds).
        Box::pin(Self::connect_boxed(runtime, url, options)).await
    }

    async fn connect_boxed<R: Runtime>(
        runtime: &R,
        url: &str,
        options: SessionOptions,
    ) -> Result<Self, Error> {
        let (io, framing): (BoxTransport, Framing) = match WampUrl::parse(url)? {
            WampUrl::WebSocket(u) => {
                let proxy = options.proxy.proxy_for(true, u.secure, &u.host, u.port)?;
                let tcp = crate::proxy::dial(runtime, proxy.as_ref(), &u.host, u.port).await?;
                let io: BoxTransport = if u.secure {
                    Self::tls(&options, &u.host, tcp).await?
                } else {
                    Box::new(MaybeTlsStream::Plain(tcp))
                };
                (io, Framing::from_ws_url(&u))
            }
            WampUrl::RawSocket { secure, host, port } => {
                let proxy = options.proxy.proxy_for(false, secure, &host, port)?;
                let tcp = crate::proxy::dial(runtime, proxy.as_ref(), &host, port).await?;
                let io: BoxTransport = if secure {
                    Self::tls(&options, &host, tcp).await?
                } else {
                    Box::new(tcp)
                };
                (io, Framing::RawSocket)
            }
            WampUrl::Unix { path } => {
                let io = runtime.connect_unix(&path).await?;
                (io, Framing::RawSocket)
            }
        };
        Self::start(runtime.handle(), io, framing, options).await
    }

    /// Joins over a byte stream the caller provides — any `futures-io`
    /// `AsyncRead + AsyncWrite` (an in-memory pipe, a serial line, a
    /// stream tunnelled through something else; tokio streams wrapped in
    /// `TokioIo`) — framed as `framing` says. The stream is taken as it
    /// is: no TLS, no proxy; the session's options (limits, keepalive,
    /// join timeout, serializers, authentication) apply as for
    /// [`connect_with`](Self::connect_with).
    ///
    /// ```no_run
    /// # async fn demo<R: fahrbahn_rt::Runtime, S>(rt: &R, stream: S) -> Result<(), fahrbahn_rt::Error>
    /// # where S: fahrbahn_rt::AsyncRead + fahrbahn_rt::AsyncWrite + Send + Unpin + 'static {
    /// use fahrbahn_rt::{Framing, Session, SessionOptions};
    /// let framing = Framing::websocket("ws://router.example/ws")?;
    /// let session = Session::join_stream(rt, stream, framing, SessionOptions::new("realm1")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn join_stream<R, S>(
        runtime: &R,
        io: S,
        framing: Framing,
        options: SessionOptions,
    ) -> Result<Self, Error>
    where
        R: Runtime,
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static,
    {
        Self::start(runtime.handle(), Box::new(io), framing, options).await
    }

    /// Joins `router`, embedded in this process, over an in-process
    /// stream ([`Router::connect_in_process`](crate::Router::connect_in_process)):
    /// no socket and no listener needed. The messages are serialized and
    /// framed as on a RawSocket connection (with the first serializer of
    /// `options`), so the router applies the same limits as to any other
    /// client; the session's tasks run on the router's runtime.
    pub async fn join_in_process(
        router: &crate::Router,
        options: SessionOptions,
    ) -> Result<Self, Error> {
        let io = router.connect_in_process()?;
        Self::start(router.executor(), Box::new(io), Framing::RawSocket, options).await
    }

    /// Starts the session's task over `io` and waits for the join.
    pub(crate) async fn start(
        exec: ExecutorHandle,
        io: BoxTransport,
        framing: Framing,
        options: SessionOptions,
    ) -> Result<Self, Error> {
        let now = exec.now();
        let conn = match framing {
            Framing::WebSocket { host, path } => {
                let mut config = options.websocket.clone();
                config.host = host;
                config.path = path;
                ClientConnection::websocket(
                    config,
                    &options.serializers,
                    options.session.clone(),
                    crate::websocket::os_rng(),
                    now,
                )
            }
            Framing::RawSocket => Self::rawsocket_conn(&options, now),
        };
        let (joined_tx, joined_rx) = oneshot::channel();
        let mut driver = Driver::new(io, conn, exec.clone());
        driver.set_high_water(options.read_high_water);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                driver,
                running: HashMap::new(),
                waiters: HashMap::new(),
                handlers: HashMap::new(),
                revocations: HashMap::new(),
                stream_handlers: HashMap::new(),
                inputs: HashMap::new(),
                subscriptions: HashMap::new(),
                joined: Some(joined_tx),
                closed: None,
                close_waiters: Vec::new(),
                on_challenge: options.on_challenge.clone(),
                finished: false,
                driver_done: false,
            }),
            leave_requested: AtomicBool::new(false),
            driver_waker: Mutex::new(None),
            event_bytes: AtomicUsize::new(0),
            max_event_bytes: options.max_queued_event_bytes,
        });
        exec.spawn(Box::pin(run(shared.clone())));
        // The join (transport handshake, HELLO, authentication, WELCOME)
        // is bounded by the session's join timeout (a core deadline), so a
        // silent router cannot hang us.
        let (id, welcome) = answer(&shared, joined_rx).await??;
        Ok(Session {
            _guard: Arc::new(LeaveOnDrop(shared.clone())),
            shared,
            id,
            welcome: Arc::new(welcome),
            timeout_unit: options.session.call_timeout_unit,
        })
    }

    async fn tls<S: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static>(
        options: &SessionOptions,
        host: &str,
        tcp: S,
    ) -> Result<BoxTransport, Error> {
        #[cfg(feature = "tls")]
        if let Some(config) = &options.tls {
            let stream = crate::connect::tls_connect_with(config.clone(), host, tcp).await?;
            return Ok(Box::new(stream));
        }
        let _ = options;
        Ok(Box::new(crate::connect::tls_stream(host, tcp).await?))
    }

    fn rawsocket_conn(options: &SessionOptions, now: Instant) -> ClientConnection {
        let serializer = options
            .serializers
            .first()
            .map_or(Serializer::Json, |c| c.serializer);
        ClientConnection::rawsocket_with_rng(
            options.rawsocket.clone(),
            serializer,
            options.session.clone(),
            crate::websocket::os_rng(),
            now,
        )
    }

    /// The session id the router assigned.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Bytes of events (estimated) received and not yet taken from this
    /// session's [`Subscription`] streams; while above
    /// [`SessionOptions::max_queued_event_bytes`] the session does not
    /// read from the router.
    pub fn queued_event_bytes(&self) -> usize {
        self.shared.event_bytes.load(Ordering::SeqCst)
    }

    /// The WELCOME details (router roles and features, authid, authrole…).
    pub fn welcome_details(&self) -> &Dict {
        &self.welcome
    }

    /// Who the router says this session is: WELCOME's `authid`,
    /// `authrole`, `authmethod`, `authprovider` and `authextra`.
    pub fn auth_details(&self) -> AuthDetails {
        AuthDetails::from_welcome(&self.welcome)
    }

    /// The negotiated codec (serializer, and whether batched).
    pub fn codec(&self) -> Option<Codec> {
        self.shared.lock().driver.conn.codec()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// How the session ended, once it has.
    pub fn close_info(&self) -> Option<Closed> {
        self.shared.lock().closed.clone()
    }

    /// Waits until the session has ended — left, aborted by the router, or
    /// lost with its transport — and its transport is closed, then tells
    /// how it ended. Returns at once when it already has.
    ///
    /// ```no_run
    /// # async fn serve(session: fahrbahn_rt::Session) {
    /// let closed = session.closed().await;
    /// match &closed.error {
    ///     None => log::info!("left the realm ({})", closed.reason),
    ///     Some(e) => log::warn!("session lost: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn closed(&self) -> Closed {
        let done = self.shared.lock().transport_closed();
        let _ = done.await;
        self.close_info().unwrap_or_else(|| Closed {
            // The driver task ended without a session end (it cannot
            // today: every way out of the loop passes a `Closed` event).
            reason: ERROR_NETWORK_FAILURE.to_owned(),
            details: Dict::new(),
            by_router: false,
            error: None,
        })
    }

    /// Calls `procedure` with positional and keyword arguments. Dropping
    /// the future before it completes cancels the call.
    pub async fn call(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
    ) -> Result<CallResult, Error> {
        self.call_with(procedure, args, kwargs, Dict::new()).await
    }

    /// Calls `procedure` with typed options; a `timeout` is sent in the
    /// unit of [`SessionConfig::call_timeout_unit`](fahrbahn_core::wamp::SessionConfig::call_timeout_unit)
    /// (milliseconds, or seconds for Crossbar.io).
    pub async fn call_with_options(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        options: &CallOptions,
    ) -> Result<CallResult, Error> {
        let options = options.to_dict(self.timeout_unit);
        self.call_with(procedure, args, kwargs, options).await
    }

    /// Calls `procedure` with options as a dictionary, sent as given
    /// (e.g. `timeout` in the router's unit, `disclose_me`).
    pub async fn call_with(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<CallResult, Error> {
        let (tx, rx) = oneshot::channel();
        // A CALL larger than the router accepts fails here, at once
        // (`CommandError::PayloadTooLarge`): it could never be sent.
        let request = self.shared.request_on_connection(
            |conn| conn.call(procedure, args, kwargs, options),
            Waiter::Call(tx),
        )?;
        let mut guard = CallGuard {
            session: self,
            request,
            done: false,
        };
        let result = answer(&self.shared, rx).await;
        guard.done = true;
        result?
    }

    /// Starts a call whose input is streamed (progressive call
    /// invocations): sends the first part (a CALL with `progress: true`
    /// and `options`); the returned [`StreamingCall`] sends the others.
    /// The router must support it (ours does; Crossbar.io does not) and
    /// the callee must announce `progressive_call_invocations`, else the
    /// call fails with `wamp.error.feature_not_supported`.
    pub fn call_streaming(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        mut options: Dict,
    ) -> Result<StreamingCall, Error> {
        options.insert("progress".into(), true.into());
        let (tx, rx) = oneshot::channel();
        let request = self.shared.request_on_connection(
            |conn| conn.call(procedure, args, kwargs, options),
            Waiter::Call(tx),
        )?;
        Ok(StreamingCall {
            session: self.clone(),
            request,
            answer: Some(rx),
        })
    }

    /// Calls `procedure` asking for progressive results
    /// (`receive_progress: true` is added to `options`): the results come
    /// as a [`Stream`] of [`CallProgress`] items, the progressive ones and
    /// then the final one. A callee that does not send progressive results
    /// just sends the final one. Dropping the stream before the final
    /// result cancels the call.
    ///
    /// ```no_run
    /// # async fn demo(session: fahrbahn_rt::Session) -> Result<(), fahrbahn_rt::Error> {
    /// use fahrbahn_rt::{CallProgress, Dict};
    /// let mut results = session.call_progressive("com.example.count", vec![3.into()], Dict::new(), Dict::new())?;
    /// while let Some(item) = results.next().await {
    ///     match item? {
    ///         CallProgress::Progress(r) => log::info!("so far: {:?}", r.args),
    ///         CallProgress::Final(r) => log::info!("done: {:?}", r.args),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn call_progressive(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        mut options: Dict,
    ) -> Result<ProgressiveCall, Error> {
        options.insert("receive_progress".into(), true.into());
        let (tx, rx) = mpsc::unbounded();
        let request = self.shared.request_on_connection(
            |conn| conn.call(procedure, args, kwargs, options),
            Waiter::Progressive(tx),
        )?;
        Ok(ProgressiveCall {
            results: rx,
            session: self.clone(),
            request,
            done: false,
        })
    }

    /// Calls with typed arguments and decodes the result, both mapped as
    /// [`to_payload`] and [`from_payload`] say: a tuple travels as `args`,
    /// a struct with named fields as `kwargs`, one plain value as a
    /// one-element `args`; the result decodes likewise.
    ///
    pub async fn call_typed<A: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        procedure: &str,
        args: &A,
    ) -> Result<T, Error> {
        let (args, kwargs) = to_payload(args)?;
        let result = self.call(procedure, args, kwargs).await?;
        result.decode()
    }

    /// Registers `procedure` with an async handler; invocations run
    /// concurrently, each in its own task.
    pub async fn register<F, Fut>(&self, procedure: &str, handler: F) -> Result<Registration, Error>
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        self.register_with(procedure, Dict::new(), handler).await
    }

    /// Registers with typed options (match policy, shared registration
    /// `invoke` policy, `concurrency`, `force_reregister`).
    pub async fn register_with_options<F, Fut>(
        &self,
        procedure: &str,
        options: &RegisterOptions,
        handler: F,
    ) -> Result<Registration, Error>
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        self.register_with(procedure, options.to_dict(), handler)
            .await
    }

    /// Registers with options as a dictionary (e.g. `match`, `invoke`).
    pub async fn register_with<F, Fut>(
        &self,
        procedure: &str,
        options: Dict,
        handler: F,
    ) -> Result<Registration, Error>
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |inv| Box::pin(handler(inv)));
        let (tx, rx) = oneshot::channel();
        let ending = Arc::new(Ending::default());
        self.shared.request(
            |session| session.register(procedure, options),
            Waiter::Register(tx, handler, ending.clone()),
        )?;
        let id = answer(&self.shared, rx).await??;
        Ok(Registration { id, ending })
    }

    /// Registers `procedure` with a handler that takes its input as a
    /// stream of parts ([`InvocationStream`]): callers may stream their
    /// input ([`call_streaming`](Self::call_streaming), progressive
    /// call invocations); a plain call is a stream of one part.
    pub async fn register_streaming<F, Fut>(
        &self,
        procedure: &str,
        options: Dict,
        handler: F,
    ) -> Result<Registration, Error>
    where
        F: Fn(InvocationStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        let handler: StreamHandler = Arc::new(move |parts| Box::pin(handler(parts)));
        let (tx, rx) = oneshot::channel();
        let ending = Arc::new(Ending::default());
        self.shared.request(
            |session| session.register(procedure, options),
            Waiter::RegisterStream(tx, handler, ending.clone()),
        )?;
        let id = answer(&self.shared, rx).await??;
        Ok(Registration { id, ending })
    }

    /// Unregisters a procedure.
    pub async fn unregister(&self, registration: Registration) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.shared.command(|inner| {
            inner.handlers.remove(&registration.id);
            inner.stream_handlers.remove(&registration.id);
            if let Some(ending) = inner.revocations.remove(&registration.id) {
                ending.end(None);
            }
            let request = inner
                .driver
                .conn
                .session_mut()
                .unregister(registration.id)?;
            inner.waiters.insert(request, Waiter::Done(tx));
            Ok(())
        })?;
        answer(&self.shared, rx).await?
    }

    /// Subscribes to `topic`.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, Error> {
        self.subscribe_with(topic, Dict::new()).await
    }

    /// Subscribes with options (e.g. `match`).
    pub async fn subscribe_with(&self, topic: &str, options: Dict) -> Result<Subscription, Error> {
        let (tx, rx) = oneshot::channel();
        let (sink, events) = mpsc::unbounded();
        let revoked = Arc::new(OnceLock::new());
        self.shared.request(
            |session| session.subscribe(topic, options),
            Waiter::Subscribe(
                tx,
                Sink {
                    events: sink,
                    revoked: revoked.clone(),
                },
            ),
        )?;
        let id = answer(&self.shared, rx).await??;
        Ok(Subscription {
            id,
            events,
            revoked,
            session: self.clone(),
        })
    }

    /// Publishes an event (fire and forget: returns once queued). An
    /// event larger than the router accepts (RawSocket) fails at once with
    /// [`CommandError::PayloadTooLarge`](fahrbahn_core::wamp::CommandError)
    /// and the session goes on.
    pub async fn publish(&self, topic: &str, args: List, kwargs: Dict) -> Result<(), Error> {
        self.shared.command(|inner| {
            inner
                .driver
                .conn
                .publish(topic, args, kwargs, Dict::new())
                .map(drop)
        })
    }

    /// Publishes a typed payload, mapped to `args`/`kwargs` as
    /// [`to_payload`] says (a struct with named fields as `kwargs`);
    /// subscribers read it back with [`Event::decode`].
    pub async fn publish_typed<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        payload: &T,
    ) -> Result<(), Error> {
        let (args, kwargs) = to_payload(payload)?;
        self.publish(topic, args, kwargs).await
    }

    /// [`publish_typed`](Self::publish_typed) with options (e.g.
    /// `acknowledge: true` to wait until the router accepted it).
    pub async fn publish_typed_with<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        payload: &T,
        options: Dict,
    ) -> Result<(), Error> {
        let (args, kwargs) = to_payload(payload)?;
        self.publish_with(topic, args, kwargs, options).await
    }

    /// Publishes with options; with `acknowledge: true` waits until the
    /// router accepted the publication.
    pub async fn publish_with(
        &self,
        topic: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<(), Error> {
        let acknowledge = options.get("acknowledge").and_then(Value::as_bool) == Some(true);
        let (tx, rx) = oneshot::channel();
        self.shared.command(|inner| {
            let request = inner.driver.conn.publish(topic, args, kwargs, options)?;
            if acknowledge {
                inner.waiters.insert(request, Waiter::Done(tx));
            }
            Ok(())
        })?;
        if acknowledge {
            answer(&self.shared, rx).await??;
        }
        Ok(())
    }

    /// Leaves the realm (GOODBYE) and waits until the transport is closed.
    pub async fn leave(&self) -> Result<(), Error> {
        let done = {
            let mut inner = self.shared.lock();
            let done = inner.transport_closed();
            let now = inner.driver.now();
            let _ = inner.driver.conn.session_mut().leave_normal(now);
            self.shared.wake_driver();
            done
        };
        let _ = done.await;
        match self.close_info().and_then(|c| c.error) {
            None => Ok(()),
            Some(e) => Err(Error::Session(e)),
        }
    }
}

//! The async WAMP client session, on any runtime.
//!
//! One background task per session runs the driver loop over the sans-IO
//! [`ClientConnection`]; [`Session`] handles (cheap to clone) issue
//! commands under a lock and wake it. Results, events and invocations are
//! routed back by request id.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use fahrbahn_core::wamp::{
    ApplicationError, ClientConnection, Closed, CommandError, Dict, List, Serializer,
    SessionConfig, SessionError, SessionEvent, Value, from_value, to_value,
};
use fahrbahn_core::{Machine, rawsocket, ws};
use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connect::MaybeTlsStream;
use crate::driver::{Driver, Side};
use crate::error::Error;
use crate::runtime::{BoxFuture, BoxTransport, Runtime};
use crate::wamp_url::WampUrl;

type BoxIo = BoxTransport;

/// Answers an authentication challenge: `(authmethod, extra)` in,
/// `(signature, extra)` out.
pub type ChallengeHandler =
    Arc<dyn Fn(&str, &Dict) -> Result<(String, Dict), ApplicationError> + Send + Sync>;

/// Settings for [`Session::connect_with`].
#[derive(Clone)]
pub struct SessionOptions {
    /// Realm, authentication id and methods, agent.
    pub session: SessionConfig,
    /// Serializers to offer (WebSocket: in order of preference; RawSocket:
    /// the first one). Default: JSON, MessagePack, CBOR.
    pub serializers: Vec<(Serializer, bool)>,
    /// WebSocket settings (limits, timeouts, deflate); host and path come
    /// from the URL.
    pub websocket: ws::ClientConfig,
    /// RawSocket settings (maximum message length, handshake timeout).
    pub rawsocket: rawsocket::ClientConfig,
    /// Answers CHALLENGE messages (authentication); without one a challenge
    /// aborts the join.
    pub on_challenge: Option<ChallengeHandler>,
    /// TLS settings for `wss://` and `rss://` (custom roots, client
    /// certificates); default: the webpki roots.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
}

impl fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOptions")
            .field("session", &self.session)
            .field("serializers", &self.serializers)
            .finish_non_exhaustive()
    }
}

impl SessionOptions {
    /// Defaults for `realm`.
    pub fn new(realm: impl Into<String>) -> Self {
        Self {
            session: SessionConfig::new(realm),
            serializers: vec![
                (Serializer::Json, false),
                (Serializer::MsgPack, false),
                (Serializer::Cbor, false),
            ],
            websocket: ws::ClientConfig::default(),
            rawsocket: rawsocket::ClientConfig::new(Serializer::Json.rawsocket_id()),
            on_challenge: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Offers only `serializer` (batched or not).
    pub fn serializer(mut self, serializer: Serializer, batched: bool) -> Self {
        self.serializers = vec![(serializer, batched)];
        self
    }
}

/// The result of a call: positional and keyword results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResult {
    /// Positional results.
    pub args: List,
    /// Keyword results.
    pub kwargs: Dict,
    /// RESULT details.
    pub details: Dict,
}

impl CallResult {
    /// A result with positional values.
    pub fn args(args: List) -> Self {
        Self {
            args,
            ..Self::default()
        }
    }

    /// A result from positional and keyword values.
    pub fn new(args: List, kwargs: Dict) -> Self {
        Self {
            args,
            kwargs,
            details: Dict::new(),
        }
    }

    /// The first positional result, decoded.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let v = self.args.first().cloned().unwrap_or(Value::Null);
        from_value(v).map_err(|e| Error::Decode(e.to_string()))
    }

    /// All positional results, decoded (e.g. into a tuple or a `Vec`).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_value(Value::List(self.args.clone())).map_err(|e| Error::Decode(e.to_string()))
    }
}

/// A call to one of our procedures.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Positional arguments.
    pub args: List,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// INVOCATION details (caller, procedure for pattern registrations…).
    pub details: Dict,
}

impl Invocation {
    /// The positional arguments decoded (e.g. into a tuple).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ApplicationError> {
        from_value(Value::List(self.args.clone())).map_err(|e| {
            ApplicationError::new(fahrbahn_core::wamp::error::ERROR_INVALID_ARGUMENT)
                .with_args(vec![Value::String(e.to_string())])
        })
    }
}

/// An event received on a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The publication id.
    pub publication: u64,
    /// Positional payload.
    pub args: List,
    /// Keyword payload.
    pub kwargs: Dict,
    /// EVENT details (publisher, topic for pattern subscriptions…).
    pub details: Dict,
}

type Handler = Arc<
    dyn Fn(Invocation) -> BoxFuture<'static, Result<CallResult, ApplicationError>> + Send + Sync,
>;

type Spawner = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;

enum Waiter {
    Call(oneshot::Sender<Result<CallResult, Error>>),
    Register(oneshot::Sender<Result<u64, Error>>, Handler),
    Subscribe(
        oneshot::Sender<Result<u64, Error>>,
        mpsc::UnboundedSender<Event>,
    ),
    Done(oneshot::Sender<Result<(), Error>>),
}

/// Set when the caller cancels an invocation that is running.
#[derive(Default)]
struct Interrupt {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Interrupt {
    fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.wake();
        }
    }

    fn is_set(&self, cx: &Context<'_>) -> bool {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        self.set.load(Ordering::SeqCst)
    }
}

struct Inner {
    driver: Driver<BoxIo, ClientConnection>,
    /// Invocations whose handlers are running, by request id.
    running: HashMap<u64, Arc<Interrupt>>,
    waiters: HashMap<u64, Waiter>,
    handlers: HashMap<u64, Handler>,
    subscriptions: HashMap<u64, Vec<mpsc::UnboundedSender<Event>>>,
    joined: Option<oneshot::Sender<Result<(u64, Dict), Error>>>,
    closed: Option<Closed>,
    close_waiters: Vec<oneshot::Sender<()>>,
    on_challenge: Option<ChallengeHandler>,
    /// The session ended; the driver is ending the transport.
    finished: bool,
    /// The driver task has returned.
    driver_done: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    spawn: Spawner,
    /// Set when the last user handle is dropped. A flag rather than a
    /// command under the lock: the last handle may be dropped while the
    /// lock is held (e.g. a handler closure holding a `Session` clone,
    /// dropped when its registration goes away).
    leave_requested: AtomicBool,
    /// The driver task's waker, outside the main lock for the same reason
    /// (see [`Shared::wake_driver`]).
    driver_waker: Mutex<Option<Waker>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the driver task. Takes only the waker's own lock, so it may be
    /// called with or without the main lock held.
    fn wake_driver(&self) {
        let waker = self
            .driver_waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Runs a command on the session, flushes it and wakes the driver.
    fn command<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, CommandError>,
    ) -> Result<T, Error> {
        let mut inner = self.lock();
        if let Some(closed) = &inner.closed {
            return Err(Error::SessionClosed(closed.reason.clone()));
        }
        let result = f(&mut inner).map_err(Error::Command);
        inner.driver.conn.flush(Instant::now());
        self.wake_driver();
        result
    }
}

impl Inner {
    fn session_error(&self) -> Error {
        match &self.closed {
            Some(c) => match &c.error {
                Some(e) => Error::Session(e.clone()),
                None => Error::SessionClosed(c.reason.clone()),
            },
            None => Error::SessionClosed("session ended".into()),
        }
    }

    fn dispatch(&mut self, event: SessionEvent, shared: &Arc<Shared>) {
        match event {
            SessionEvent::Joined { session, details } => {
                if let Some(tx) = self.joined.take() {
                    let _ = tx.send(Ok((session, details)));
                }
            }
            SessionEvent::Challenge { authmethod, extra } => {
                let answer = match &self.on_challenge {
                    Some(h) => h(&authmethod, &extra),
                    None => Err(ApplicationError::new("wamp.error.cannot_authenticate")),
                };
                let session = self.driver.conn.session_mut();
                match answer {
                    Ok((signature, extra)) => {
                        let _ = session.authenticate(signature, extra);
                    }
                    Err(e) => {
                        let _ = session.leave(&e.error);
                    }
                }
            }
            SessionEvent::Result {
                request,
                args,
                kwargs,
                details,
                progress,
            } => {
                if progress {
                    return; // progressive results: only the final one is delivered
                }
                if let Some(Waiter::Call(tx)) = self.waiters.remove(&request) {
                    let _ = tx.send(Ok(CallResult {
                        args,
                        kwargs,
                        details,
                    }));
                }
            }
            SessionEvent::Failed { request, error, .. } => {
                let err = Error::Wamp(error);
                match self.waiters.remove(&request) {
                    Some(Waiter::Call(tx)) => {
                        let _ = tx.send(Err(err));
                    }
                    Some(Waiter::Register(tx, _)) | Some(Waiter::Subscribe(tx, _)) => {
                        let _ = tx.send(Err(err));
                    }
                    Some(Waiter::Done(tx)) => {
                        let _ = tx.send(Err(err));
                    }
                    None => {}
                }
            }
            SessionEvent::Registered {
                request,
                registration,
            } => {
                if let Some(Waiter::Register(tx, handler)) = self.waiters.remove(&request) {
                    self.handlers.insert(registration, handler);
                    let _ = tx.send(Ok(registration));
                }
            }
            SessionEvent::Subscribed {
                request,
                subscription,
            } => {
                if let Some(Waiter::Subscribe(tx, sink)) = self.waiters.remove(&request) {
                    self.subscriptions
                        .entry(subscription)
                        .or_default()
                        .push(sink);
                    let _ = tx.send(Ok(subscription));
                }
            }
            SessionEvent::Unregistered { request }
            | SessionEvent::Unsubscribed { request }
            | SessionEvent::Published { request, .. } => {
                if let Some(Waiter::Done(tx)) = self.waiters.remove(&request) {
                    let _ = tx.send(Ok(()));
                }
            }
            SessionEvent::Invocation {
                request,
                registration,
                args,
                kwargs,
                details,
            } => {
                let Some(handler) = self.handlers.get(&registration).cloned() else {
                    let error = ApplicationError::new(
                        fahrbahn_core::wamp::error::ERROR_NO_SUCH_REGISTRATION,
                    );
                    let _ = self.driver.conn.session_mut().yield_error(request, error);
                    return;
                };
                let mut future = handler(Invocation {
                    args,
                    kwargs,
                    details,
                });
                let interrupt = Arc::new(Interrupt::default());
                self.running.insert(request, interrupt.clone());
                let shared2 = shared.clone();
                (shared.spawn)(Box::pin(async move {
                    // The handler runs until it finishes or its caller
                    // cancels the call (INTERRUPT): then it is dropped and
                    // the call answered with wamp.error.canceled.
                    let outcome = poll_fn(|cx| {
                        if interrupt.is_set(cx) {
                            return Poll::Ready(Err(ApplicationError::new(
                                fahrbahn_core::wamp::error::ERROR_CANCELED,
                            )));
                        }
                        future.as_mut().poll(cx)
                    })
                    .await;
                    drop(future);
                    let _ = shared2.command(|inner| {
                        inner.running.remove(&request);
                        let session = inner.driver.conn.session_mut();
                        match outcome {
                            Ok(r) => session.yield_result(request, r.args, r.kwargs, Dict::new()),
                            Err(e) => session.yield_error(request, e),
                        }
                    });
                }));
            }
            SessionEvent::Interrupt { request, .. } => {
                log::debug!("invocation {request} interrupted by its caller");
                if let Some(interrupt) = self.running.get(&request) {
                    interrupt.set();
                }
            }
            SessionEvent::Event {
                subscription,
                publication,
                args,
                kwargs,
                details,
            } => {
                if let Some(sinks) = self.subscriptions.get_mut(&subscription) {
                    let event = Event {
                        publication,
                        args,
                        kwargs,
                        details,
                    };
                    sinks.retain(|s| s.unbounded_send(event.clone()).is_ok());
                }
            }
            SessionEvent::Closed(closed) => {
                self.closed = Some(closed);
                let err = self.session_error();
                if let Some(tx) = self.joined.take() {
                    let _ = tx.send(Err(err));
                }
                for (_, waiter) in self.waiters.drain() {
                    let e = Error::SessionClosed("session ended before the answer".into());
                    match waiter {
                        Waiter::Call(tx) => drop(tx.send(Err(e))),
                        Waiter::Register(tx, _) | Waiter::Subscribe(tx, _) => drop(tx.send(Err(e))),
                        Waiter::Done(tx) => drop(tx.send(Err(e))),
                    }
                }
                self.subscriptions.clear();
                self.handlers.clear();
                for interrupt in self.running.values() {
                    interrupt.set();
                }
            }
            _ => {}
        }
    }
}

/// The driver task of one session.
async fn run(shared: Arc<Shared>) {
    poll_fn(|cx| {
        {
            let mut waker = shared
                .driver_waker
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        let mut inner = shared.lock();
        loop {
            if shared.leave_requested.swap(false, Ordering::SeqCst) {
                let _ = inner.driver.conn.session_mut().leave_normal();
                inner.driver.conn.flush(Instant::now());
            }
            if inner.finished {
                if inner.driver.poll_finish(cx).is_pending() {
                    return Poll::Pending;
                }
                inner.driver_done = true;
                for tx in inner.close_waiters.drain(..) {
                    let _ = tx.send(());
                }
                return Poll::Ready(());
            }
            match inner.driver.poll_event(cx) {
                Poll::Ready(Ok(event)) => {
                    let last = matches!(event, SessionEvent::Closed(_));
                    inner.dispatch(event, &shared);
                    inner.driver.conn.flush(Instant::now());
                    if last {
                        inner.finished = true;
                    }
                }
                Poll::Ready(Err(e)) => {
                    log::debug!("WAMP transport failed: {e}");
                    // Let the machine see the end; its events follow.
                    inner.driver.conn.handle_eof(Instant::now());
                    inner.driver.conn.flush(Instant::now());
                    if inner.driver.conn.is_closed() && inner.closed.is_none() {
                        while let Some(event) = inner.driver.conn.poll_event() {
                            inner.dispatch(event, &shared);
                        }
                        inner.finished = true;
                    }
                }
                Poll::Pending => {
                    if let Poll::Ready(Err(e)) = inner.driver.poll_write_out(cx, Side::Reader) {
                        log::debug!("WAMP transport write failed: {e}");
                        inner.driver.conn.handle_eof(Instant::now());
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    })
    .await;
}

/// Leaves the session when the last user handle is dropped.
struct LeaveOnDrop(Arc<Shared>);

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        self.0.leave_requested.store(true, Ordering::SeqCst);
        self.0.wake_driver();
    }
}

/// A WAMP session joined to a realm: caller, callee, publisher and
/// subscriber. Cheap to clone; the session leaves when the last clone is
/// dropped (or on [`leave`](Self::leave)).
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    _guard: Arc<LeaveOnDrop>,
    id: u64,
    welcome: Arc<Dict>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A registered procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The router's registration id.
    pub id: u64,
}

/// A subscription: a [`Stream`] of [`Event`]s.
pub struct Subscription {
    /// The router's subscription id.
    pub id: u64,
    events: mpsc::UnboundedReceiver<Event>,
    session: Session,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next event; `None` once the session or subscription ended.
    pub async fn next(&mut self) -> Option<Event> {
        poll_fn(|cx| Pin::new(&mut self.events).poll_next(cx)).await
    }

    /// Ends the subscription (at the router too, once no other
    /// subscription of this session is on the same topic).
    pub async fn unsubscribe(self) -> Result<(), Error> {
        let Subscription {
            id,
            events,
            session,
        } = self;
        drop(events);
        let (tx, rx) = oneshot::channel();
        let sent = session.shared.command(|inner| {
            let sinks = inner.subscriptions.entry(id).or_default();
            sinks.retain(|s| !s.is_closed());
            if !sinks.is_empty() {
                return Ok(false);
            }
            inner.subscriptions.remove(&id);
            let request = inner.driver.conn.session_mut().unsubscribe(id)?;
            inner.waiters.insert(request, Waiter::Done(tx));
            Ok(true)
        })?;
        if sent {
            answer(rx).await??;
        }
        Ok(())
    }
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.get_mut().events).poll_next(cx)
    }
}

async fn answer<T>(rx: oneshot::Receiver<T>) -> Result<T, Error> {
    rx.await
        .map_err(|_| Error::SessionClosed("session ended before the answer".into()))
}

/// Cancels a call whose future is dropped before the answer came.
struct CallGuard<'a> {
    session: &'a Session,
    request: u64,
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

/// Converts serializable arguments into a WAMP positional list: a tuple or
/// sequence becomes the list, any other value a one-element list.
pub fn to_args<T: Serialize + ?Sized>(args: &T) -> Result<List, Error> {
    match to_value(args).map_err(|e| Error::Decode(e.to_string()))? {
        Value::List(l) => Ok(l),
        Value::Null => Ok(List::new()),
        other => Ok(vec![other]),
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
        let now = Instant::now();
        let (io, conn): (BoxIo, ClientConnection) = match WampUrl::parse(url)? {
            WampUrl::WebSocket(u) => {
                let tcp = runtime.connect_tcp(&u.host, u.port).await?;
                let io: BoxIo = if u.secure {
                    Self::tls(&options, &u.host, tcp).await?
                } else {
                    Box::new(MaybeTlsStream::Plain(tcp))
                };
                let mut config = options.websocket.clone();
                config.host = u.host_header();
                config.path = u.path.clone();
                let conn = ClientConnection::websocket(
                    config,
                    &options.serializers,
                    options.session.clone(),
                    crate::websocket::os_rng(),
                    now,
                );
                (io, conn)
            }
            WampUrl::RawSocket { secure, host, port } => {
                let tcp = runtime.connect_tcp(&host, port).await?;
                let io: BoxIo = if secure {
                    Self::tls(&options, &host, tcp).await?
                } else {
                    Box::new(tcp)
                };
                (io, Self::rawsocket_conn(&options, now))
            }
            WampUrl::Unix { path } => {
                let io = runtime.connect_unix(&path).await?;
                (io, Self::rawsocket_conn(&options, now))
            }
        };
        let timer = runtime.new_timer(now + options.websocket.timeouts.open);
        let (joined_tx, joined_rx) = oneshot::channel();
        let rt = runtime.clone();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                driver: Driver::new(io, conn, timer),
                running: HashMap::new(),
                waiters: HashMap::new(),
                handlers: HashMap::new(),
                subscriptions: HashMap::new(),
                joined: Some(joined_tx),
                closed: None,
                close_waiters: Vec::new(),
                on_challenge: options.on_challenge.clone(),
                finished: false,
                driver_done: false,
            }),
            spawn: Arc::new(move |f| rt.spawn(f)),
            leave_requested: AtomicBool::new(false),
            driver_waker: Mutex::new(None),
        });
        runtime.spawn(Box::pin(run(shared.clone())));
        // The join (transport handshake, HELLO, authentication, WELCOME)
        // is bounded by the open timeout, so a silent router cannot hang us.
        let join_timeout = options.websocket.timeouts.open;
        let mut deadline = runtime.new_timer(Instant::now() + join_timeout);
        let mut joined = joined_rx;
        let joined = poll_fn(|cx| {
            if let Poll::Ready(r) = Pin::new(&mut joined).poll(cx) {
                return Poll::Ready(Some(r));
            }
            deadline.as_mut().poll(cx).map(|()| None)
        })
        .await;
        let Some(joined) = joined else {
            let _ = shared.command(|inner| inner.driver.conn.session_mut().leave_normal());
            return Err(Error::Session(SessionError::TransportClosed(format!(
                "no WELCOME within {join_timeout:?}"
            ))));
        };
        let (id, welcome) = joined
            .map_err(|_| Error::SessionClosed("session ended before the answer".into()))??;
        Ok(Session {
            _guard: Arc::new(LeaveOnDrop(shared.clone())),
            shared,
            id,
            welcome: Arc::new(welcome),
        })
    }

    async fn tls<S: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static>(
        options: &SessionOptions,
        host: &str,
        tcp: S,
    ) -> Result<BoxIo, Error> {
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
            .map(|(s, _)| *s)
            .unwrap_or(Serializer::Json);
        ClientConnection::rawsocket(
            options.rawsocket.clone(),
            serializer,
            options.session.clone(),
            now,
        )
    }

    /// The session id the router assigned.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The WELCOME details (router roles and features, authid, authrole…).
    pub fn welcome_details(&self) -> &Dict {
        &self.welcome
    }

    /// The negotiated serializer and whether it is batched.
    pub fn serializer(&self) -> Option<(Serializer, bool)> {
        self.shared.lock().driver.conn.serializer()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// How the session ended, once it has.
    pub fn close_info(&self) -> Option<Closed> {
        self.shared.lock().closed.clone()
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

    /// Calls `procedure` with options (e.g. `timeout`, `disclose_me`).
    pub async fn call_with(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<CallResult, Error> {
        let (tx, rx) = oneshot::channel();
        let request = self.shared.command(|inner| {
            let request = inner
                .driver
                .conn
                .session_mut()
                .call(procedure, args, kwargs, options)?;
            inner.waiters.insert(request, Waiter::Call(tx));
            Ok(request)
        })?;
        let mut guard = CallGuard {
            session: self,
            request,
            done: false,
        };
        let result = answer(rx).await;
        guard.done = true;
        result?
    }

    /// Calls with typed arguments (a tuple, a sequence or one value) and
    /// decodes the first result.
    pub async fn call_typed<A: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        procedure: &str,
        args: &A,
    ) -> Result<T, Error> {
        let result = self.call(procedure, to_args(args)?, Dict::new()).await?;
        result.first()
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

    /// Registers with options (e.g. `match`, `invoke`).
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
        self.shared.command(|inner| {
            let request = inner
                .driver
                .conn
                .session_mut()
                .register(procedure, options)?;
            inner.waiters.insert(request, Waiter::Register(tx, handler));
            Ok(())
        })?;
        let id = answer(rx).await??;
        Ok(Registration { id })
    }

    /// Unregisters a procedure.
    pub async fn unregister(&self, registration: Registration) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.shared.command(|inner| {
            inner.handlers.remove(&registration.id);
            let request = inner
                .driver
                .conn
                .session_mut()
                .unregister(registration.id)?;
            inner.waiters.insert(request, Waiter::Done(tx));
            Ok(())
        })?;
        answer(rx).await?
    }

    /// Subscribes to `topic`.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, Error> {
        self.subscribe_with(topic, Dict::new()).await
    }

    /// Subscribes with options (e.g. `match`).
    pub async fn subscribe_with(&self, topic: &str, options: Dict) -> Result<Subscription, Error> {
        let (tx, rx) = oneshot::channel();
        let (sink, events) = mpsc::unbounded();
        self.shared.command(|inner| {
            let request = inner.driver.conn.session_mut().subscribe(topic, options)?;
            inner.waiters.insert(request, Waiter::Subscribe(tx, sink));
            Ok(())
        })?;
        let id = answer(rx).await??;
        Ok(Subscription {
            id,
            events,
            session: self.clone(),
        })
    }

    /// Publishes an event (fire and forget: returns once queued).
    pub async fn publish(&self, topic: &str, args: List, kwargs: Dict) -> Result<(), Error> {
        self.shared.command(|inner| {
            inner
                .driver
                .conn
                .session_mut()
                .publish(topic, args, kwargs, Dict::new())
                .map(drop)
        })
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
            let request = inner
                .driver
                .conn
                .session_mut()
                .publish(topic, args, kwargs, options)?;
            if acknowledge {
                inner.waiters.insert(request, Waiter::Done(tx));
            }
            Ok(())
        })?;
        if acknowledge {
            answer(rx).await??;
        }
        Ok(())
    }

    /// Leaves the realm (GOODBYE) and waits until the transport is closed.
    pub async fn leave(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            if inner.driver_done {
                drop(tx);
            } else {
                inner.close_waiters.push(tx);
            }
            let _ = inner.driver.conn.session_mut().leave_normal();
            inner.driver.conn.flush(Instant::now());
            self.shared.wake_driver();
        }
        let _ = rx.await;
        match self.close_info().and_then(|c| c.error) {
            None => Ok(()),
            Some(e) => Err(Error::Session(e)),
        }
    }
}

/// Shortcut: a one-element kwargs dictionary builder.
///
/// ```
/// use fahrbahn_rt::kwargs;
/// let kw = kwargs([("a", 1.into()), ("b", "x".into())]);
/// assert_eq!(kw.len(), 2);
/// ```
pub fn kwargs<const N: usize>(pairs: [(&str, Value); N]) -> Dict {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

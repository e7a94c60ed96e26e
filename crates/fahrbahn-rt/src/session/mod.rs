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
    ApplicationError, AuthDetails, ClientConnection, Closed, Codec, Dict, List, RegistrationId,
    RequestId, Serializer, SessionId, SubscriptionId, Value,
};
use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use meta::{ByMatch, Meta, TestamentScope};
pub use options::{ChallengeHandler, DEFAULT_MAX_QUEUED_EVENT_BYTES, SessionOptions};
pub use payload::{CallResult, Event, Invocation, kwargs, to_args};

use crate::connect::MaybeTlsStream;
use crate::driver::Driver;
use crate::error::Error;
use crate::runtime::{BoxTransport, Runtime};
use crate::wamp_url::WampUrl;
use task::{Handler, Inner, LeaveOnDrop, Shared, Sink, Waiter, run};

/// A WAMP session joined to a realm: caller, callee, publisher and
/// subscriber. Cheap to clone; the session leaves when the last clone is
/// dropped (or on [`leave`](Self::leave)).
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    _guard: Arc<LeaveOnDrop>,
    id: SessionId,
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
    pub id: RegistrationId,
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
        let now = runtime.now();
        let (io, conn): (BoxTransport, ClientConnection) = match WampUrl::parse(url)? {
            WampUrl::WebSocket(u) => {
                let tcp = runtime.connect_tcp(&u.host, u.port).await?;
                let io: BoxTransport = if u.secure {
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
                let io: BoxTransport = if secure {
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
        let (joined_tx, joined_rx) = oneshot::channel();
        let mut driver = Driver::new(io, conn, runtime.handle());
        driver.set_high_water(options.read_high_water);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                driver,
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
            leave_requested: AtomicBool::new(false),
            driver_waker: Mutex::new(None),
            event_bytes: AtomicUsize::new(0),
            max_event_bytes: options.max_queued_event_bytes,
        });
        runtime.spawn(Box::pin(run(shared.clone())));
        // The join (transport handshake, HELLO, authentication, WELCOME)
        // is bounded by the session's join timeout (a core deadline), so a
        // silent router cannot hang us.
        let (id, welcome) = answer(&shared, joined_rx).await??;
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

    /// Calls `procedure` with options (e.g. `timeout`, `disclose_me`).
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
        self.shared.request(
            |session| session.register(procedure, options),
            Waiter::Register(tx, handler),
        )?;
        let id = answer(&self.shared, rx).await??;
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

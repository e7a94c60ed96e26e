//! A long-lived WAMP client that reconnects and restores itself.
//!
//! A [`Component`] connects to one of its transports, joins, registers and
//! subscribes everything declared on it, and when the session is lost it
//! tries again after the back-off of its [`RetryPolicy`] (computed by the
//! sans-IO core from the runtime's clock and an injected RNG). Fatal
//! failures (authentication refused, no such realm) stop it.
//!
//! Handles survive reconnects: a [`ComponentSubscription`] keeps yielding
//! events from one session to the next, with a [`SubscriptionItem::Gap`]
//! where events may have been missed; a [`ComponentRegistration`] stays
//! valid and its procedure is registered again on every join.

mod error;
mod race;

use std::collections::BTreeMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use fahrbahn_core::Rng;
use fahrbahn_core::retry::{Backoff, Disposition, RetryPolicy, classify_reason};
use fahrbahn_core::wamp::{
    ApplicationError, Closed, Codec, Dict, List, RegistrationId, SessionError, SubscriptionId,
};
use fahrbahn_core::{rawsocket, ws};
use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ComponentError;

use crate::error::Error;
use crate::runtime::{BoxFuture, ExecutorHandle, Runtime};
use crate::session::{
    CallResult, Event, Invocation, Registration, Session, SessionOptions, to_args,
};
use race::{Either, race, within};

/// How long a call or publish waits for a join by default while the
/// component is disconnected.
pub const DEFAULT_JOIN_WAIT: Duration = Duration::from_secs(10);
/// How long a call waits for its result by default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One way to reach the router: a URL and, optionally, settings that
/// replace the component's [`SessionOptions`] ones for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportConfig {
    /// `ws://`, `wss://`, `rs://`, `rss://` or `unix:` URL.
    pub url: String,
    /// Codecs to offer on this transport (default: the session options').
    pub serializers: Option<Vec<Codec>>,
    /// WebSocket settings for this transport.
    pub websocket: Option<ws::ClientConfig>,
    /// RawSocket settings for this transport.
    pub rawsocket: Option<rawsocket::ClientConfig>,
}

impl TransportConfig {
    /// A transport to `url` with the component's settings.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            serializers: None,
            websocket: None,
            rawsocket: None,
        }
    }

    /// Offers only these codecs on this transport.
    pub fn serializers(mut self, codecs: Vec<Codec>) -> Self {
        self.serializers = Some(codecs);
        self
    }

    fn apply(&self, base: &SessionOptions) -> SessionOptions {
        let mut options = base.clone();
        if let Some(s) = &self.serializers {
            options.serializers = s.clone();
        }
        if let Some(w) = &self.websocket {
            options.websocket = w.clone();
        }
        if let Some(r) = &self.rawsocket {
            options.rawsocket = r.clone();
        }
        options
    }
}

impl From<&str> for TransportConfig {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for TransportConfig {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

/// What a call or publish does while the component is not joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenDisconnected {
    /// Wait for the next join, at most this long, then fail with
    /// [`ComponentError::JoinTimeout`]. The default, with
    /// [`DEFAULT_JOIN_WAIT`] (10 s).
    Wait(Duration),
    /// Fail at once with [`ComponentError::NotJoined`].
    FailFast,
}

impl Default for WhenDisconnected {
    fn default() -> Self {
        WhenDisconnected::Wait(DEFAULT_JOIN_WAIT)
    }
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionItem {
    /// An event.
    Event(Event),
    /// The subscription was lost with its session and is back on a new
    /// one: events published in between may be missing.
    Gap,
}

/// An invocation handler kept by the component, registered on every join.
type Handler = Arc<
    dyn Fn(Invocation) -> BoxFuture<'static, Result<CallResult, ApplicationError>> + Send + Sync,
>;
/// Where a subscription's items go.
enum Sink {
    /// A declared subscription's handler.
    Handler(Arc<dyn Fn(SubscriptionItem) + Send + Sync>),
    /// An imperative subscription's stream (`None` once the component
    /// stopped), and its gap counter.
    Channel(
        Mutex<Option<mpsc::Sender<SubscriptionItem>>>,
        Arc<AtomicU64>,
    ),
}

/// Events an imperative subscription's stream holds before the component
/// stops taking events from the session: then the session's own bound
/// (`SessionOptions::max_queued_event_bytes`) applies, and after it the
/// router's.
const SUBSCRIPTION_BUFFER: usize = 16;

impl Sink {
    /// Where one forwarding task delivers events: the handler, or its own
    /// clone of the stream's sender (one per task, not one per event:
    /// every sender has a slot of its own beyond the channel's bound).
    fn outlet(&self) -> Outlet {
        match self {
            Sink::Handler(f) => Outlet::Handler(f.clone()),
            Sink::Channel(tx, _) => Outlet::Channel(lock(tx).clone()),
        }
    }

    /// Marks a gap: counted always, and put in the stream if it has room
    /// (it never waits: restoring the other subscriptions goes on).
    fn gap(&self) {
        match self {
            Sink::Handler(f) => f(SubscriptionItem::Gap),
            Sink::Channel(tx, gaps) => {
                gaps.fetch_add(1, Ordering::SeqCst);
                if let Some(tx) = &mut *lock(tx) {
                    let _ = tx.try_send(SubscriptionItem::Gap);
                }
            }
        }
    }

    /// Ends an imperative subscription's stream.
    fn close(&self) {
        if let Sink::Channel(tx, _) = self {
            lock(tx).take();
        }
    }
}
/// A forwarding task's end of a [`Sink`].
enum Outlet {
    Handler(Arc<dyn Fn(SubscriptionItem) + Send + Sync>),
    Channel(Option<mpsc::Sender<SubscriptionItem>>),
}

impl Outlet {
    /// Delivers an event, waiting while the stream is full (so that an
    /// application that does not read holds the session's bounded queue,
    /// not an unbounded one here).
    async fn deliver(&mut self, item: SubscriptionItem) {
        match self {
            Outlet::Handler(f) => f(item),
            Outlet::Channel(Some(tx)) => {
                if poll_fn(|cx| tx.poll_ready(cx)).await.is_ok() {
                    let _ = tx.start_send(item);
                }
            }
            Outlet::Channel(None) => {}
        }
    }
}

/// Decides whether an error is fatal; `None`: the default classification.
type Classifier = Arc<dyn Fn(&Error) -> Option<Disposition> + Send + Sync>;

/// A hook taking a `&T`.
type Hook<T> = Option<Arc<dyn Fn(&T) + Send + Sync>>;

#[derive(Default)]
struct Hooks {
    on_connect: Hook<str>,
    on_join: Hook<Session>,
    on_leave: Hook<Closed>,
    on_disconnect: Hook<str>,
    on_fatal: Hook<Error>,
}

struct RegEntry {
    procedure: String,
    options: Dict,
    handler: Handler,
    /// The router's id in the current session, and that session's
    /// generation.
    current: Mutex<Option<(u64, RegistrationId)>>,
}

struct SubEntry {
    topic: String,
    options: Dict,
    sink: Sink,
    /// The session (generation) the subscription was last made on, its router id, and
    /// the stop signal of the task forwarding its events.
    current: Mutex<Option<(u64, SubscriptionId, oneshot::Sender<()>)>>,
    /// Sessions the subscription was made on so far.
    made: AtomicU64,
}

/// The component's lifecycle.
#[derive(Clone)]
enum Phase {
    /// Connecting, joining, restoring, or waiting to retry.
    Connecting,
    /// Joined, everything restored.
    Joined(Session),
    /// Stopped by [`Component::stop`].
    Stopped,
    /// Stopped on a fatal error or after `max_retries`.
    Failed(Arc<Error>),
}

struct State {
    phase: Phase,
    /// Joins so far (the current one's number while joined).
    joins: u64,
    /// Sessions so far, joined or not (what registrations and
    /// subscriptions are marked with when made on one).
    generation: u64,
    watchers: Vec<oneshot::Sender<()>>,
    registrations: BTreeMap<u64, Arc<RegEntry>>,
    subscriptions: BTreeMap<u64, Arc<SubEntry>>,
    next_key: u64,
    stop: Option<oneshot::Sender<()>>,
    done: Vec<oneshot::Sender<()>>,
    finished: bool,
}

struct Shared {
    state: Mutex<State>,
    executor: ExecutorHandle,
    hooks: Hooks,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_phase(&self, phase: Phase) {
        let mut state = self.lock();
        if let Phase::Joined(_) = phase {
            state.joins += 1;
        }
        state.phase = phase;
        for w in state.watchers.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Builds a [`Component`]: transports, session options (realm,
/// authentication), retry policy, hooks, declared registrations and
/// subscriptions.
pub struct ComponentBuilder {
    transports: Vec<TransportConfig>,
    options: SessionOptions,
    retry: RetryPolicy,
    classify: Option<Classifier>,
    when_disconnected: WhenDisconnected,
    call_timeout: Option<Duration>,
    seed: Option<u64>,
    hooks: Hooks,
    registrations: Vec<RegEntry>,
    subscriptions: Vec<SubEntry>,
}

impl fmt::Debug for ComponentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentBuilder")
            .field("transports", &self.transports)
            .field("options", &self.options)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ComponentBuilder {
    /// Adds a transport; transports are tried in turn, one per attempt.
    pub fn transport(mut self, transport: impl Into<TransportConfig>) -> Self {
        self.transports.push(transport.into());
        self
    }

    /// Replaces the session options (realm, authentication, limits).
    pub fn options(mut self, options: SessionOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces the retry policy (default: [`RetryPolicy::default`],
    /// AutobahnPython's).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Overrides the classification of errors: return `Some` to decide,
    /// `None` for the default ([`classify`]).
    pub fn classify(
        mut self,
        f: impl Fn(&Error) -> Option<Disposition> + Send + Sync + 'static,
    ) -> Self {
        self.classify = Some(Arc::new(f));
        self
    }

    /// What calls and publishes do while disconnected (default: wait up to
    /// [`DEFAULT_JOIN_WAIT`]).
    pub fn when_disconnected(mut self, policy: WhenDisconnected) -> Self {
        self.when_disconnected = policy;
        self
    }

    /// How long a call waits for its result (default
    /// [`DEFAULT_CALL_TIMEOUT`]; `None`: for ever).
    pub fn call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Seeds the back-off jitter (default: from the OS), for reproducible
    /// schedules.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Called with the transport URL when a connection is up (and its
    /// session joined, before the registrations are restored).
    pub fn on_connect(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.hooks.on_connect = Some(Arc::new(f));
        self
    }

    /// Called on every join, once everything declared is restored; the
    /// session carries the WELCOME details
    /// ([`Session::welcome_details`]).
    pub fn on_join(mut self, f: impl Fn(&Session) + Send + Sync + 'static) -> Self {
        self.hooks.on_join = Some(Arc::new(f));
        self
    }

    /// Called when a joined session ends, with how it ended.
    pub fn on_leave(mut self, f: impl Fn(&Closed) + Send + Sync + 'static) -> Self {
        self.hooks.on_leave = Some(Arc::new(f));
        self
    }

    /// Called with the transport URL when a connection that was up is
    /// gone.
    pub fn on_disconnect(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.hooks.on_disconnect = Some(Arc::new(f));
        self
    }

    /// Called once when the component gives up: a fatal error, or
    /// `max_retries` reached.
    pub fn on_fatal(mut self, f: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.hooks.on_fatal = Some(Arc::new(f));
        self
    }

    /// Declares a procedure, registered on every join.
    pub fn register<F, Fut>(self, procedure: &str, handler: F) -> Self
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        self.register_with(procedure, Dict::new(), handler)
    }

    /// Declares a procedure with REGISTER options.
    pub fn register_with<F, Fut>(mut self, procedure: &str, options: Dict, handler: F) -> Self
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        self.registrations
            .push(reg_entry(procedure, options, boxed(handler)));
        self
    }

    /// Declares a subscription, made on every join; `handler` gets every
    /// event and a [`SubscriptionItem::Gap`] after each rejoin.
    pub fn subscribe(
        self,
        topic: &str,
        handler: impl Fn(SubscriptionItem) + Send + Sync + 'static,
    ) -> Self {
        self.subscribe_with(topic, Dict::new(), handler)
    }

    /// Declares a subscription with SUBSCRIBE options.
    pub fn subscribe_with(
        mut self,
        topic: &str,
        options: Dict,
        handler: impl Fn(SubscriptionItem) + Send + Sync + 'static,
    ) -> Self {
        self.subscriptions
            .push(sub_entry(topic, options, Sink::Handler(Arc::new(handler))));
        self
    }

    /// Starts the component on `runtime`: it connects in the background;
    /// await [`Component::joined`] for the first join.
    pub fn start<R: Runtime>(self, runtime: &R) -> Component {
        let (stop_tx, stop_rx) = oneshot::channel();
        let mut state = State {
            phase: Phase::Connecting,
            joins: 0,
            generation: 0,
            watchers: Vec::new(),
            registrations: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            next_key: 0,
            stop: Some(stop_tx),
            done: Vec::new(),
            finished: false,
        };
        for r in self.registrations {
            state.next_key += 1;
            state.registrations.insert(state.next_key, Arc::new(r));
        }
        for s in self.subscriptions {
            state.next_key += 1;
            state.subscriptions.insert(state.next_key, Arc::new(s));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            executor: runtime.handle(),
            hooks: self.hooks,
        });
        let rng = match self.seed {
            Some(seed) => Rng::from_seed(seed),
            None => crate::websocket::os_rng(),
        };
        let supervisor = Supervisor {
            shared: shared.clone(),
            transports: self.transports,
            options: self.options,
            backoff: Backoff::new(self.retry),
            classify: self.classify,
            rng,
        };
        let runtime = runtime.clone();
        runtime
            .handle()
            .spawn(Box::pin(supervisor.run(runtime.clone(), stop_rx)));
        Component {
            shared: shared.clone(),
            _guard: Arc::new(StopOnDrop(shared)),
            when_disconnected: self.when_disconnected,
            call_timeout: self.call_timeout,
        }
    }
}

fn boxed<F, Fut>(handler: F) -> Handler
where
    F: Fn(Invocation) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
{
    Arc::new(move |inv| Box::pin(handler(inv)))
}

fn reg_entry(procedure: &str, options: Dict, handler: Handler) -> RegEntry {
    RegEntry {
        procedure: procedure.to_owned(),
        options,
        handler,
        current: Mutex::new(None),
    }
}

fn sub_entry(topic: &str, options: Dict, sink: Sink) -> SubEntry {
    SubEntry {
        topic: topic.to_owned(),
        options,
        sink,
        current: Mutex::new(None),
        made: AtomicU64::new(0),
    }
}

/// The default classification of an error: fatal are the router's
/// refusals by URI ([`classify_reason`]: authentication refused, no such
/// realm or role) and our own mistakes (a bad URL, TLS or configuration,
/// an invalid command); the rest — connection refused, reset, timeouts,
/// protocol errors, router shutdown — is transient.
pub fn classify(error: &Error) -> Disposition {
    match error {
        Error::Session(SessionError::Aborted { reason, .. }) => classify_reason(reason),
        Error::Session(SessionError::CannotAuthenticate { .. }) => Disposition::Fatal,
        Error::Session(_) => Disposition::Transient,
        Error::SessionClosed(closed) => classify_reason(&closed.reason),
        Error::Wamp(e) => classify_reason(&e.error),
        Error::Io(_) | Error::WebSocket(_) | Error::Send(_) => Disposition::Transient,
        Error::Component(ComponentError::Failed(e)) => classify(e),
        Error::Component(_) => Disposition::Transient,
        // A bad proxy URL or refused proxy credentials do not heal; an
        // unreachable, refusing or slow proxy may.
        Error::Proxy(
            crate::ProxyError::Url { .. } | crate::ProxyError::AuthenticationRequired { .. },
        ) => Disposition::Fatal,
        Error::Proxy(_) => Disposition::Transient,
        Error::Tls(_) | Error::Command(_) | Error::Decode(_) | Error::Url(_) | Error::Config(_) => {
            Disposition::Fatal
        }
    }
}

/// Stops the component when the last handle is dropped.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.lock().stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A long-lived WAMP client: reconnects with back-off and restores its
/// registrations and subscriptions on every join. Cheap to clone; stops
/// when the last clone is dropped or on [`stop`](Self::stop).
///
/// ```no_run
/// # async fn demo() -> Result<(), fahrbahn_rt::Error> {
/// use fahrbahn_rt::{CallResult, Component};
/// let component = Component::builder("realm1")
///     .transport("ws://127.0.0.1:8080/ws")
///     .register("com.example.add2", |inv| async move {
///         let (a, b): (i64, i64) = inv.decode()?;
///         Ok(CallResult::args(vec![(a + b).into()]))
///     })
///     .start(&fahrbahn_tokio::TokioRuntime);
/// component.joined().await?;
/// let sum: i64 = component.call_typed("com.example.add2", &(2, 3)).await?;
/// component.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Component {
    shared: Arc<Shared>,
    _guard: Arc<StopOnDrop>,
    when_disconnected: WhenDisconnected,
    call_timeout: Option<Duration>,
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("joins", &self.join_count())
            .field("joined", &self.session().is_some())
            .finish_non_exhaustive()
    }
}

/// A procedure registered through a component: registered again on every
/// join, valid across reconnects.
#[derive(Clone)]
pub struct ComponentRegistration {
    key: u64,
    entry: Arc<RegEntry>,
}

impl fmt::Debug for ComponentRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentRegistration")
            .field("procedure", &self.entry.procedure)
            .field("id", &self.id())
            .finish()
    }
}

impl ComponentRegistration {
    /// The procedure.
    pub fn procedure(&self) -> &str {
        &self.entry.procedure
    }

    /// The router's registration id in the current session, if registered
    /// there.
    pub fn id(&self) -> Option<RegistrationId> {
        lock(&self.entry.current).map(|(_, id)| id)
    }
}

/// A subscription made through a component: a [`Stream`] of
/// [`SubscriptionItem`]s that goes on across reconnects. Dropping it
/// unsubscribes.
pub struct ComponentSubscription {
    key: u64,
    entry: Arc<SubEntry>,
    items: mpsc::Receiver<SubscriptionItem>,
    shared: Arc<Shared>,
    gaps: Arc<AtomicU64>,
}

impl fmt::Debug for ComponentSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentSubscription")
            .field("topic", &self.entry.topic)
            .field("gaps", &self.gaps())
            .finish_non_exhaustive()
    }
}

impl ComponentSubscription {
    /// The next event or gap; `None` once the component stopped.
    pub async fn next(&mut self) -> Option<SubscriptionItem> {
        poll_fn(|cx| Pin::new(&mut self.items).poll_next(cx)).await
    }

    /// The next event, skipping gaps; `None` once the component stopped.
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let SubscriptionItem::Event(e) = self.next().await? {
                return Some(e);
            }
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.entry.topic
    }

    /// The router's subscription id in the current session, if subscribed
    /// there.
    pub fn id(&self) -> Option<SubscriptionId> {
        lock(&self.entry.current).as_ref().map(|(_, id, _)| *id)
    }

    /// How many gaps (lost and restored subscriptions) there were so far.
    pub fn gaps(&self) -> u64 {
        self.gaps.load(Ordering::SeqCst)
    }

    /// Ends the subscription (the router is told in the background).
    pub fn unsubscribe(self) {}
}

impl Drop for ComponentSubscription {
    fn drop(&mut self) {
        self.shared.lock().subscriptions.remove(&self.key);
        if let Some((_, _, stop)) = lock(&self.entry.current).take() {
            let _ = stop.send(());
        }
    }
}

impl Stream for ComponentSubscription {
    type Item = SubscriptionItem;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionItem>> {
        Pin::new(&mut self.get_mut().items).poll_next(cx)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Component {
    /// A builder for `realm`, with default [`SessionOptions`] (anonymous;
    /// replace them with [`ComponentBuilder::options`] for
    /// authentication).
    pub fn builder(realm: &str) -> ComponentBuilder {
        ComponentBuilder {
            transports: Vec::new(),
            options: SessionOptions::new(realm),
            retry: RetryPolicy::default(),
            classify: None,
            when_disconnected: WhenDisconnected::default(),
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            seed: None,
            hooks: Hooks::default(),
            registrations: Vec::new(),
            subscriptions: Vec::new(),
        }
    }

    /// This component with another policy for calls and publishes made
    /// while disconnected (e.g. `component.when_disconnected(WhenDisconnected::FailFast).call(…)`).
    pub fn when_disconnected(&self, policy: WhenDisconnected) -> Component {
        Component {
            when_disconnected: policy,
            ..self.clone()
        }
    }

    /// The current session, while joined (and everything restored).
    pub fn session(&self) -> Option<Session> {
        match &self.shared.lock().phase {
            Phase::Joined(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// How many times the component joined so far.
    pub fn join_count(&self) -> u64 {
        self.shared.lock().joins
    }

    /// Waits until the component is joined (at once if it is) and returns
    /// the session; fails once the component stopped or gave up.
    pub async fn joined(&self) -> Result<Session, Error> {
        loop {
            let rx = match self.current()? {
                Ok(session) => return Ok(session),
                Err(rx) => rx,
            };
            let _ = rx.await;
        }
    }

    /// Waits until the join after `join` (a [`join_count`](Self::join_count)
    /// seen before), e.g. to wait for a rejoin.
    pub async fn rejoined(&self, join: u64) -> Result<Session, Error> {
        loop {
            let rx = {
                let mut state = self.shared.lock();
                match &state.phase {
                    Phase::Joined(s) if state.joins > join => return Ok(s.clone()),
                    Phase::Stopped => return Err(ComponentError::Stopped.into()),
                    Phase::Failed(e) => return Err(ComponentError::Failed(e.clone()).into()),
                    _ => {}
                }
                let (tx, rx) = oneshot::channel();
                state.watchers.push(tx);
                rx
            };
            let _ = rx.await;
        }
    }

    /// The session if joined, else a receiver of the next change; an
    /// error once stopped.
    #[allow(clippy::type_complexity)]
    fn current(&self) -> Result<Result<Session, oneshot::Receiver<()>>, Error> {
        let mut state = self.shared.lock();
        match &state.phase {
            Phase::Joined(s) => Ok(Ok(s.clone())),
            Phase::Stopped => Err(ComponentError::Stopped.into()),
            Phase::Failed(e) => Err(ComponentError::Failed(e.clone()).into()),
            Phase::Connecting => {
                let (tx, rx) = oneshot::channel();
                state.watchers.push(tx);
                Ok(Err(rx))
            }
        }
    }

    /// The session to send a request on, by the disconnected policy.
    async fn session_for_request(&self) -> Result<Session, Error> {
        match self.when_disconnected {
            WhenDisconnected::FailFast => match self.current()? {
                Ok(session) => Ok(session),
                Err(_) => Err(ComponentError::NotJoined.into()),
            },
            WhenDisconnected::Wait(wait) => {
                let deadline = self.shared.executor.now() + wait;
                match within(&self.shared.executor, deadline, self.joined()).await {
                    Some(result) => result,
                    None => Err(ComponentError::JoinTimeout(wait).into()),
                }
            }
        }
    }

    /// Calls `procedure`; see [`call_with`](Self::call_with).
    pub async fn call(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
    ) -> Result<CallResult, Error> {
        self.call_with(procedure, args, kwargs, Dict::new()).await
    }

    /// Calls `procedure` with CALL options. While disconnected it waits for
    /// a join or fails at once (the [`WhenDisconnected`] policy); the call
    /// is bounded by the call timeout; a session lost during the call
    /// fails it (it is not repeated: it may have run).
    pub async fn call_with(
        &self,
        procedure: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<CallResult, Error> {
        let session = self.session_for_request().await?;
        let call = session.call_with(procedure, args, kwargs, options);
        match self.call_timeout {
            None => call.await,
            Some(timeout) => {
                let deadline = self.shared.executor.now() + timeout;
                // Dropping the call future on the timeout cancels it.
                match within(&self.shared.executor, deadline, call).await {
                    Some(result) => result,
                    None => Err(ComponentError::CallTimeout(timeout).into()),
                }
            }
        }
    }

    /// Calls with typed arguments and decodes the first result.
    pub async fn call_typed<A: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        procedure: &str,
        args: &A,
    ) -> Result<T, Error> {
        let result = self.call(procedure, to_args(args)?, Dict::new()).await?;
        result.first()
    }

    /// Publishes an event (fire and forget once joined).
    pub async fn publish(&self, topic: &str, args: List, kwargs: Dict) -> Result<(), Error> {
        self.publish_with(topic, args, kwargs, Dict::new()).await
    }

    /// Publishes with options; with `acknowledge: true` returns once the
    /// router accepted it (bounded by the call timeout).
    pub async fn publish_with(
        &self,
        topic: &str,
        args: List,
        kwargs: Dict,
        options: Dict,
    ) -> Result<(), Error> {
        let session = self.session_for_request().await?;
        let publish = session.publish_with(topic, args, kwargs, options);
        match self.call_timeout {
            None => publish.await,
            Some(timeout) => {
                let deadline = self.shared.executor.now() + timeout;
                match within(&self.shared.executor, deadline, publish).await {
                    Some(result) => result,
                    None => Err(ComponentError::CallTimeout(timeout).into()),
                }
            }
        }
    }

    /// Registers `procedure`, now if joined and again on every join. A
    /// refusal by the router on the current session is returned (and the
    /// registration dropped); while disconnected it returns at once and
    /// the procedure is registered on the next join.
    pub async fn register<F, Fut>(
        &self,
        procedure: &str,
        handler: F,
    ) -> Result<ComponentRegistration, Error>
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        self.register_with(procedure, Dict::new(), handler).await
    }

    /// Registers with REGISTER options; see [`register`](Self::register).
    pub async fn register_with<F, Fut>(
        &self,
        procedure: &str,
        options: Dict,
        handler: F,
    ) -> Result<ComponentRegistration, Error>
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallResult, ApplicationError>> + Send + 'static,
    {
        let entry = Arc::new(reg_entry(procedure, options, boxed(handler)));
        let (key, joined) = {
            let mut state = self.shared.lock();
            usable(&state.phase)?;
            state.next_key += 1;
            let key = state.next_key;
            state.registrations.insert(key, entry.clone());
            let joined = match &state.phase {
                Phase::Joined(s) => Some((s.clone(), state.generation)),
                _ => None,
            };
            (key, joined)
        };
        if let Some((session, join)) = joined {
            match register_on(&session, join, &entry).await {
                Ok(()) => {}
                Err(e @ Error::Wamp(_)) | Err(e @ Error::Command(_)) => {
                    self.shared.lock().registrations.remove(&key);
                    return Err(e);
                }
                // The session was lost: the next join registers it.
                Err(_) => {}
            }
        }
        Ok(ComponentRegistration { key, entry })
    }

    /// Unregisters (on the current session too, if joined).
    pub async fn unregister(&self, registration: ComponentRegistration) -> Result<(), Error> {
        let removed = self
            .shared
            .lock()
            .registrations
            .remove(&registration.key)
            .is_some();
        let current = lock(&registration.entry.current).take();
        if let (true, Some((join, id)), Some(session)) = (removed, current, self.session()) {
            if self.shared.lock().generation == join {
                return session.unregister(Registration::from_id(id)).await;
            }
        }
        Ok(())
    }

    /// Subscribes to `topic`, now if joined and again on every join.
    pub async fn subscribe(&self, topic: &str) -> Result<ComponentSubscription, Error> {
        self.subscribe_with(topic, Dict::new()).await
    }

    /// Subscribes with SUBSCRIBE options; like
    /// [`register`](Self::register), a refusal on the current session is
    /// returned, and while disconnected it returns at once.
    pub async fn subscribe_with(
        &self,
        topic: &str,
        options: Dict,
    ) -> Result<ComponentSubscription, Error> {
        let (tx, items) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let gaps = Arc::new(AtomicU64::new(0));
        let sink = Sink::Channel(Mutex::new(Some(tx)), gaps.clone());
        let entry = Arc::new(sub_entry(topic, options, sink));
        let (key, joined) = {
            let mut state = self.shared.lock();
            usable(&state.phase)?;
            state.next_key += 1;
            let key = state.next_key;
            state.subscriptions.insert(key, entry.clone());
            let joined = match &state.phase {
                Phase::Joined(s) => Some((s.clone(), state.generation)),
                _ => None,
            };
            (key, joined)
        };
        let handle = ComponentSubscription {
            key,
            entry: entry.clone(),
            items,
            shared: self.shared.clone(),
            gaps,
        };
        if let Some((session, join)) = joined {
            match subscribe_on(&self.shared.executor, &session, join, &entry).await {
                Ok(()) => {}
                Err(e @ Error::Wamp(_)) | Err(e @ Error::Command(_)) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(handle)
    }

    /// Stops the component: no more retries, the session (if any) leaves;
    /// returns once the component's task has ended. Subscriptions end.
    pub async fn stop(&self) {
        let done = {
            let mut state = self.shared.lock();
            if let Some(stop) = state.stop.take() {
                let _ = stop.send(());
            }
            if state.finished {
                return;
            }
            let (tx, rx) = oneshot::channel();
            state.done.push(tx);
            rx
        };
        let _ = done.await;
    }

    /// Whether the component has stopped (by [`stop`](Self::stop), a fatal
    /// error or `max_retries`); the error if it failed.
    pub fn stopped(&self) -> Option<Option<Arc<Error>>> {
        match &self.shared.lock().phase {
            Phase::Stopped => Some(None),
            Phase::Failed(e) => Some(Some(e.clone())),
            _ => None,
        }
    }
}

fn usable(phase: &Phase) -> Result<(), Error> {
    match phase {
        Phase::Stopped => Err(ComponentError::Stopped.into()),
        Phase::Failed(e) => Err(ComponentError::Failed(e.clone()).into()),
        _ => Ok(()),
    }
}

/// Registers `entry` on `session` (join number `join`).
async fn register_on(session: &Session, join: u64, entry: &RegEntry) -> Result<(), Error> {
    let handler = entry.handler.clone();
    let registration = session
        .register_with(&entry.procedure, entry.options.clone(), move |inv| {
            handler(inv)
        })
        .await?;
    *lock(&entry.current) = Some((join, registration.id));
    Ok(())
}

/// Subscribes `entry` on `session` and forwards its events until the
/// session ends or the subscription is dropped.
async fn subscribe_on(
    executor: &ExecutorHandle,
    session: &Session,
    join: u64,
    entry: &Arc<SubEntry>,
) -> Result<(), Error> {
    let mut subscription = session
        .subscribe_with(&entry.topic, entry.options.clone())
        .await?;
    let (stop_tx, mut stop_rx) = oneshot::channel();
    *lock(&entry.current) = Some((join, subscription.id, stop_tx));
    if entry.made.fetch_add(1, Ordering::SeqCst) > 0 {
        entry.sink.gap();
    }
    let entry = entry.clone();
    let mut outlet = entry.sink.outlet();
    executor.spawn(Box::pin(async move {
        loop {
            match race(subscription.next(), &mut stop_rx).await {
                Either::Left(Some(event)) => {
                    // Waits while the application's stream is full, unless
                    // the subscription is stopped meanwhile.
                    let delivery = outlet.deliver(SubscriptionItem::Event(event));
                    if let Either::Right(_) = race(delivery, &mut stop_rx).await {
                        let _ = subscription.unsubscribe().await;
                        return;
                    }
                }
                Either::Left(None) => return,
                Either::Right(_) => {
                    let _ = subscription.unsubscribe().await;
                    return;
                }
            }
        }
    }));
    Ok(())
}

/// The task that connects, restores and reconnects.
struct Supervisor {
    shared: Arc<Shared>,
    transports: Vec<TransportConfig>,
    options: SessionOptions,
    backoff: Backoff,
    classify: Option<Classifier>,
    rng: Rng,
}

/// How one connection ended.
enum Outcome {
    /// Stop was requested.
    Stop,
    /// Retry after the back-off; the error, if there was one.
    Retry(Option<Error>),
}

impl Supervisor {
    fn disposition(&self, error: &Error) -> Disposition {
        self.classify
            .as_ref()
            .and_then(|f| f(error))
            .unwrap_or_else(|| classify(error))
    }

    async fn run<R: Runtime>(mut self, runtime: R, mut stop: oneshot::Receiver<()>) {
        let end = self.serve(&runtime, &mut stop).await;
        let phase = match end {
            None => Phase::Stopped,
            Some(error) => {
                log::warn!("component stopped: {error}");
                if let Some(f) = &self.shared.hooks.on_fatal {
                    f(&error);
                }
                Phase::Failed(Arc::new(error))
            }
        };
        // Stop the event forwarders (their subscriptions end with the
        // session, which has left).
        self.shared.set_phase(phase);
        let mut state = self.shared.lock();
        state.finished = true;
        for entry in std::mem::take(&mut state.subscriptions).into_values() {
            entry.sink.close();
            if let Some((_, _, stop)) = lock(&entry.current).take() {
                let _ = stop.send(());
            }
        }
        for tx in state.done.drain(..) {
            let _ = tx.send(());
        }
    }

    /// Runs until stopped (`None`) or failed (`Some`).
    async fn serve<R: Runtime>(
        &mut self,
        runtime: &R,
        stop: &mut oneshot::Receiver<()>,
    ) -> Option<Error> {
        if self.transports.is_empty() {
            return Some(ComponentError::NoTransport.into());
        }
        let mut attempt = 0usize;
        loop {
            let transport = self.transports[attempt % self.transports.len()].clone();
            attempt = attempt.wrapping_add(1);
            match self.connection(runtime, &transport, stop).await {
                Outcome::Stop => return None,
                Outcome::Retry(error) => {
                    if let Some(error) = error {
                        if self.disposition(&error) == Disposition::Fatal {
                            return Some(error);
                        }
                        log::info!("{}: {error}; retrying", transport.url);
                    }
                }
            }
            let retries = self.backoff.retries();
            let Some(delay) = self.backoff.next_delay(&mut self.rng) else {
                return Some(ComponentError::GaveUp { retries }.into());
            };
            log::debug!("retry {} in {delay:?}", retries + 1);
            let deadline = self.shared.executor.now() + delay;
            if within(&self.shared.executor, deadline, &mut *stop)
                .await
                .is_some()
            {
                return None;
            }
        }
    }

    /// One connection: connect, join, restore, serve until lost.
    async fn connection<R: Runtime>(
        &mut self,
        runtime: &R,
        transport: &TransportConfig,
        stop: &mut oneshot::Receiver<()>,
    ) -> Outcome {
        let options = transport.apply(&self.options);
        let connect = Session::connect_with(runtime, &transport.url, options);
        let session = match race(connect, &mut *stop).await {
            Either::Right(_) => return Outcome::Stop,
            Either::Left(Err(e)) => return Outcome::Retry(Some(e)),
            Either::Left(Ok(session)) => session,
        };
        let url = transport.url.as_str();
        if let Some(f) = &self.shared.hooks.on_connect {
            f(url);
        }
        let join = {
            let mut state = self.shared.lock();
            state.generation += 1;
            state.generation
        };
        match race(self.restore(&session, join), &mut *stop).await {
            Either::Right(_) => {
                let _ = session.leave().await;
                return Outcome::Stop;
            }
            Either::Left(Err(e)) => {
                let _ = session.leave().await;
                self.disconnected(url);
                return Outcome::Retry(Some(e));
            }
            Either::Left(Ok(())) => {}
        }
        self.backoff.reset();
        if let Some(f) = &self.shared.hooks.on_join {
            f(&session);
        }
        let closed = match race(session.closed(), &mut *stop).await {
            Either::Right(_) => {
                self.shared.set_phase(Phase::Connecting);
                let _ = session.leave().await;
                return Outcome::Stop;
            }
            Either::Left(closed) => closed,
        };
        self.shared.set_phase(Phase::Connecting);
        if let Some(f) = &self.shared.hooks.on_leave {
            f(&closed);
        }
        self.disconnected(url);
        let error = match closed.error {
            Some(e) => Error::Session(e),
            None => Error::SessionClosed(Box::new(closed)),
        };
        Outcome::Retry(Some(error))
    }

    fn disconnected(&self, url: &str) {
        if let Some(f) = &self.shared.hooks.on_disconnect {
            f(url);
        }
    }

    /// Registers and subscribes every entry on the new session, then
    /// publishes the join (atomically with the check that nothing is left,
    /// so entries added meanwhile are not missed).
    async fn restore(&self, session: &Session, join: u64) -> Result<(), Error> {
        loop {
            let (reg, sub) = {
                let state = self.shared.lock();
                let reg = state
                    .registrations
                    .values()
                    .find(|e| lock(&e.current).is_none_or(|(j, _)| j != join))
                    .cloned();
                let sub = state
                    .subscriptions
                    .values()
                    .find(|e| lock(&e.current).as_ref().is_none_or(|(j, _, _)| *j != join))
                    .cloned();
                if reg.is_none() && sub.is_none() {
                    drop(state);
                    self.shared.set_phase(Phase::Joined(session.clone()));
                    return Ok(());
                }
                (reg, sub)
            };
            if let Some(entry) = reg {
                register_on(session, join, &entry).await?;
            }
            if let Some(entry) = sub {
                subscribe_on(&self.shared.executor, session, join, &entry).await?;
            }
        }
    }
}

//! The session's background task: the driver loop over the sans-IO
//! [`ClientConnection`], and the routing of results, events and
//! invocations back to their waiters.

use std::any::Any;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};

use fahrbahn_core::Machine;
use fahrbahn_core::wamp::error::ERROR_RUNTIME_ERROR;
use fahrbahn_core::wamp::{
    ApplicationError, ClientConnection, Closed, CommandError, Dict, RegistrationId, RequestId,
    SessionEvent, SessionId, SubscriptionId, Value,
};
use futures_channel::{mpsc, oneshot};

use super::Revocation;
use super::options::ChallengeHandler;
use super::payload::{CallProgress, CallResult, Event, Invocation, InvocationStream};
use crate::driver::{Driver, Side};
use crate::error::Error;
use crate::runtime::{BoxFuture, BoxTransport};

pub(super) type Handler = Arc<
    dyn Fn(Invocation) -> BoxFuture<'static, Result<CallResult, ApplicationError>> + Send + Sync,
>;

/// A handler of a procedure whose callers stream their input
/// (progressive call invocations): it gets the parts as a stream.
pub(super) type StreamHandler = Arc<
    dyn Fn(InvocationStream) -> BoxFuture<'static, Result<CallResult, ApplicationError>>
        + Send
        + Sync,
>;

/// Where a subscription's events go: its stream, and the slot that says
/// why the router ended it.
pub(super) struct Sink {
    pub(super) events: mpsc::UnboundedSender<(Event, usize)>,
    pub(super) revoked: Arc<OnceLock<Revocation>>,
}

pub(super) enum Waiter {
    Call(oneshot::Sender<Result<CallResult, Error>>),
    /// A call that asked for progressive results.
    Progressive(mpsc::UnboundedSender<Result<CallProgress, Error>>),
    Register(
        oneshot::Sender<Result<RegistrationId, Error>>,
        Handler,
        Arc<Ending>,
    ),
    RegisterStream(
        oneshot::Sender<Result<RegistrationId, Error>>,
        StreamHandler,
        Arc<Ending>,
    ),
    Subscribe(oneshot::Sender<Result<SubscriptionId, Error>>, Sink),
    Done(oneshot::Sender<Result<(), Error>>),
}

impl Waiter {
    /// Answers the waiting request with `error`.
    fn fail(self, error: Error) {
        let _ = match self {
            Waiter::Call(tx) => tx.send(Err(error)).is_ok(),
            Waiter::Progressive(tx) => tx.unbounded_send(Err(error)).is_ok(),
            Waiter::Register(tx, _, _) | Waiter::RegisterStream(tx, _, _) => {
                tx.send(Err(error)).is_ok()
            }
            Waiter::Subscribe(tx, _) => tx.send(Err(error)).is_ok(),
            Waiter::Done(tx) => tx.send(Err(error)).is_ok(),
        };
    }
}

/// How a registration ended (`Some(reason)`: revoked by the router), and
/// who waits for it.
#[derive(Default)]
pub(super) struct Ending {
    state: Mutex<(Option<Option<String>>, Vec<Waker>)>,
}

impl Ending {
    /// Ends the registration (the first end counts) and wakes the waiters.
    pub(super) fn end(&self, reason: Option<String>) {
        let wakers = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.0.is_none() {
                state.0 = Some(reason);
            }
            std::mem::take(&mut state.1)
        };
        for w in wakers {
            w.wake();
        }
    }

    pub(super) fn poll(&self, cx: &Context<'_>) -> Poll<Option<String>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = &state.0 {
            return Poll::Ready(reason.clone());
        }
        if !state.1.iter().any(|w| w.will_wake(cx.waker())) {
            state.1.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Sends progressive results of one invocation (held by its
/// [`Invocation`]; weak, so a stored invocation does not keep the session).
#[derive(Clone)]
pub(super) struct ProgressSink {
    shared: Weak<Shared>,
    request: RequestId,
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressSink")
            .field("request", &self.request)
            .finish()
    }
}

impl ProgressSink {
    pub(super) fn send(&self, result: CallResult) -> Result<(), Error> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the session has ended",
            )));
        };
        let mut options = Dict::new();
        options.insert("progress".into(), true.into());
        // Once the invocation is answered the core refuses
        // (`CommandError::UnknownInvocation`).
        shared.command(|inner| {
            inner.driver.conn.session_mut().yield_result(
                self.request,
                result.args,
                result.kwargs,
                options,
            )
        })
    }
}

/// Set when the caller cancels an invocation that is running.
#[derive(Default)]
pub(super) struct Interrupt {
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

pub(super) struct Inner {
    pub(super) driver: Driver<BoxTransport, ClientConnection>,
    /// Invocations whose handlers are running, by request id.
    pub(super) running: HashMap<RequestId, Arc<Interrupt>>,
    pub(super) waiters: HashMap<RequestId, Waiter>,
    pub(super) handlers: HashMap<RegistrationId, Handler>,
    /// Per registration, where its revocation reason goes
    /// ([`Registration::revoked`](super::Registration::revoked)).
    pub(super) revocations: HashMap<RegistrationId, Arc<Ending>>,
    /// The handlers of streaming registrations
    /// ([`register_streaming`](super::Session::register_streaming)).
    pub(super) stream_handlers: HashMap<RegistrationId, StreamHandler>,
    /// Where the further parts of a streamed invocation go, by its
    /// request id, until its last part.
    pub(super) inputs: HashMap<RequestId, mpsc::UnboundedSender<Invocation>>,
    /// The subscriptions' streams: each event with its estimated size
    /// (counted in [`Shared::event_bytes`] until taken).
    pub(super) subscriptions: HashMap<SubscriptionId, Vec<Sink>>,
    pub(super) joined: Option<oneshot::Sender<Result<(SessionId, Dict), Error>>>,
    pub(super) closed: Option<Closed>,
    pub(super) close_waiters: Vec<oneshot::Sender<()>>,
    pub(super) on_challenge: Option<ChallengeHandler>,
    /// The session ended; the driver is ending the transport.
    pub(super) finished: bool,
    /// The driver task has returned.
    pub(super) driver_done: bool,
}

pub(super) struct Shared {
    pub(super) inner: Mutex<Inner>,
    /// Set when the last user handle is dropped. A flag rather than a
    /// command under the lock: the last handle may be dropped while the
    /// lock is held (e.g. a handler closure holding a `Session` clone,
    /// dropped when its registration goes away).
    pub(super) leave_requested: AtomicBool,
    /// The driver task's waker, outside the main lock for the same reason
    /// (see [`Shared::wake_driver`]).
    pub(super) driver_waker: Mutex<Option<Waker>>,
    /// Bytes of events waiting in the subscriptions' streams (estimated).
    pub(super) event_bytes: AtomicUsize,
    /// While `event_bytes` is above this, the driver does not read.
    pub(super) max_event_bytes: usize,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `bytes` of events as taken from a subscription's stream (or
    /// dropped with it), waking the driver if that may lift its hold on
    /// reading.
    pub(super) fn release_events(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let before = self.event_bytes.fetch_sub(bytes, Ordering::SeqCst);
        if before > self.max_event_bytes {
            self.wake_driver();
        }
    }

    /// Wakes the driver task. Takes only the waker's own lock, so it may be
    /// called with or without the main lock held.
    pub(super) fn wake_driver(&self) {
        let waker = self
            .driver_waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Issues a request on the session and registers `waiter` for its
    /// answer.
    pub(super) fn request(
        &self,
        issue: impl FnOnce(&mut fahrbahn_core::wamp::Session) -> Result<RequestId, CommandError>,
        waiter: Waiter,
    ) -> Result<RequestId, Error> {
        self.command(|inner| {
            let request = issue(inner.driver.conn.session_mut())?;
            inner.waiters.insert(request, waiter);
            Ok(request)
        })
    }

    /// [`request`](Self::request) through the connection, for commands
    /// that check what the transport accepts (`ClientConnection::call`).
    pub(super) fn request_on_connection(
        &self,
        issue: impl FnOnce(
            &mut fahrbahn_core::wamp::ClientConnection,
        ) -> Result<RequestId, CommandError>,
        waiter: Waiter,
    ) -> Result<RequestId, Error> {
        self.command(|inner| {
            let request = issue(&mut inner.driver.conn)?;
            inner.waiters.insert(request, waiter);
            Ok(request)
        })
    }

    /// Runs a command on the session and wakes the driver, whose next
    /// output poll transmits what the command queued.
    pub(super) fn command<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, CommandError>,
    ) -> Result<T, Error> {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return Err(inner.session_error());
        }
        let result = f(&mut inner).map_err(Error::Command);
        self.wake_driver();
        result
    }
}

impl Inner {
    /// Resolves once the driver task has closed the transport (at once
    /// when it already has).
    pub(super) fn transport_closed(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if !self.driver_done {
            self.close_waiters.push(tx);
        }
        rx
    }

    /// Why requests fail once the session has ended.
    pub(super) fn session_error(&self) -> Error {
        match &self.closed {
            Some(c) => match &c.error {
                Some(e) => Error::Session(e.clone()),
                None => Error::SessionClosed(Box::new(c.clone())),
            },
            None => Error::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the session's driver task has ended",
            )),
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
                    Some(h) => h(&authmethod, &extra).map_err(|e| e.to_string()),
                    None => {
                        Err("no challenge handler is set (SessionOptions::on_challenge)".into())
                    }
                };
                let now = self.driver.now();
                let session = self.driver.conn.session_mut();
                let _ = match answer {
                    Ok((signature, extra)) => session.authenticate(signature, extra),
                    Err(message) => session.decline_challenge(now, &authmethod, message),
                };
            }
            SessionEvent::Result {
                request,
                args,
                kwargs,
                details,
                progress,
            } => {
                let result = CallResult {
                    args,
                    kwargs,
                    details,
                };
                if progress {
                    // Only a call that asked for them gets progressive
                    // results; a plain call waits for the final one.
                    if let Some(Waiter::Progressive(tx)) = self.waiters.get(&request) {
                        let _ = tx.unbounded_send(Ok(CallProgress::Progress(result)));
                    }
                    return;
                }
                match self.waiters.remove(&request) {
                    Some(Waiter::Call(tx)) => {
                        let _ = tx.send(Ok(result));
                    }
                    Some(Waiter::Progressive(tx)) => {
                        let _ = tx.unbounded_send(Ok(CallProgress::Final(result)));
                    }
                    Some(other) => {
                        self.waiters.insert(request, other);
                    }
                    None => {}
                }
            }
            SessionEvent::Failed { request, error, .. } => {
                if let Some(waiter) = self.waiters.remove(&request) {
                    waiter.fail(Error::Wamp(error));
                }
            }
            SessionEvent::Registered {
                request,
                registration,
            } => {
                let (tx, revoke) = match self.waiters.remove(&request) {
                    Some(Waiter::Register(tx, handler, revoke)) => {
                        self.handlers.insert(registration, handler);
                        (tx, revoke)
                    }
                    Some(Waiter::RegisterStream(tx, handler, revoke)) => {
                        self.stream_handlers.insert(registration, handler);
                        (tx, revoke)
                    }
                    _ => return,
                };
                {
                    // The same session registering a shared procedure
                    // again gets the same id: the older handle ends.
                    if let Some(old) = self.revocations.insert(registration, revoke) {
                        old.end(None);
                    }
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
                let more = details.get("progress").and_then(Value::as_bool) == Some(true);
                let invocation = Invocation {
                    args,
                    kwargs,
                    details,
                    progress: Some(ProgressSink {
                        shared: Arc::downgrade(shared),
                        request,
                    }),
                };
                // A further part of a streamed invocation.
                if let Some(tx) = self.inputs.get(&request) {
                    let _ = tx.unbounded_send(invocation);
                    if !more {
                        self.inputs.remove(&request);
                    }
                    return;
                }
                if self.running.contains_key(&request) {
                    log::warn!(
                        "invocation {request}: a further part for a handler that does not stream its input is dropped"
                    );
                    return;
                }
                // A handler that panics, creating its future or polling
                // it, answers the call with wamp.error.runtime_error; the
                // session and the registration go on.
                let created =
                    if let Some(handler) = self.stream_handlers.get(&registration).cloned() {
                        let (tx, rx) = mpsc::unbounded();
                        let _ = tx.unbounded_send(invocation);
                        if more {
                            self.inputs.insert(request, tx);
                        }
                        catch_unwind(AssertUnwindSafe(|| handler(InvocationStream { parts: rx })))
                    } else if let Some(handler) = self.handlers.get(&registration).cloned() {
                        catch_unwind(AssertUnwindSafe(|| handler(invocation)))
                    } else {
                        let error = ApplicationError::new(
                            fahrbahn_core::wamp::error::ERROR_NO_SUCH_REGISTRATION,
                        );
                        let _ = self.driver.conn.session_mut().yield_error(request, error);
                        return;
                    };
                let mut future = match created {
                    Ok(future) => future,
                    Err(panic) => {
                        let error = handler_panicked(request, &*panic);
                        let _ = self.driver.conn.session_mut().yield_error(request, error);
                        return;
                    }
                };
                let interrupt = Arc::new(Interrupt::default());
                self.running.insert(request, interrupt.clone());
                let shared2 = shared.clone();
                self.driver.exec.spawn(Box::pin(async move {
                    // The handler runs until it finishes or its caller
                    // cancels the call (INTERRUPT): then it is dropped and
                    // the call answered with wamp.error.canceled.
                    let outcome = poll_fn(|cx| {
                        if interrupt.is_set(cx) {
                            return Poll::Ready(Err(ApplicationError::new(
                                fahrbahn_core::wamp::error::ERROR_CANCELED,
                            )));
                        }
                        catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))).unwrap_or_else(
                            |panic| Poll::Ready(Err(handler_panicked(request, &*panic))),
                        )
                    })
                    .await;
                    drop(future);
                    let _ = shared2.command(|inner| {
                        inner.running.remove(&request);
                        inner.inputs.remove(&request);
                        let conn = &mut inner.driver.conn;
                        match outcome {
                            // A result larger than the router accepts is
                            // answered with wamp.error.payload_size_exceeded.
                            Ok(r) => conn.yield_result(request, r.args, r.kwargs, Dict::new()),
                            Err(e) => conn.session_mut().yield_error(request, e),
                        }
                    });
                }));
            }
            SessionEvent::RegistrationRevoked {
                registration,
                reason,
            } => {
                log::info!("registration {registration} revoked by the router ({reason})");
                self.handlers.remove(&registration);
                self.stream_handlers.remove(&registration);
                if let Some(ending) = self.revocations.remove(&registration) {
                    ending.end(Some(reason));
                }
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
                    let size = event.estimated_size();
                    sinks.retain(|s| {
                        // Counted before it can be taken (and released).
                        shared.event_bytes.fetch_add(size, Ordering::SeqCst);
                        let sent = s.events.unbounded_send((event.clone(), size)).is_ok();
                        if !sent {
                            shared.release_events(size);
                        }
                        sent
                    });
                }
            }
            SessionEvent::SubscriptionRevoked {
                subscription,
                reason,
            } => {
                // Dropping the senders ends the streams; each tells why.
                for sink in self.subscriptions.remove(&subscription).unwrap_or_default() {
                    let _ = sink.revoked.set(Revocation {
                        reason: reason.clone(),
                    });
                }
            }
            SessionEvent::Closed(closed) => {
                self.closed = Some(closed);
                if let Some(tx) = self.joined.take() {
                    let _ = tx.send(Err(self.session_error()));
                }
                for (_, waiter) in std::mem::take(&mut self.waiters) {
                    waiter.fail(self.session_error());
                }
                self.subscriptions.clear();
                self.handlers.clear();
                self.stream_handlers.clear();
                self.inputs.clear();
                for (_, ending) in self.revocations.drain() {
                    ending.end(None);
                }
                for interrupt in self.running.values() {
                    interrupt.set();
                }
            }
            _ => {}
        }
    }
}

/// The answer to an invocation whose handler panicked: logged here with
/// the panic's message, answered to the caller as
/// `wamp.error.runtime_error` without it (a panic message may show the
/// callee's internals).
fn handler_panicked(request: RequestId, panic: &(dyn Any + Send)) -> ApplicationError {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    log::error!("the handler of invocation {request} panicked: {message}");
    ApplicationError::new(ERROR_RUNTIME_ERROR)
        .with_args(vec!["the procedure's handler failed unexpectedly".into()])
}

/// The driver task of one session.
pub(super) async fn run(shared: Arc<Shared>) {
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
                let now = inner.driver.now();
                let _ = inner.driver.conn.session_mut().leave_normal(now);
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
            // Backpressure from the subscriptions' streams: no reading
            // while the application has too many events to take; it wakes
            // us as it takes them (`Shared::release_events`).
            let held = shared.event_bytes.load(Ordering::SeqCst) > shared.max_event_bytes;
            inner.driver.hold_reading(held);
            match inner.driver.poll_event(cx) {
                Poll::Ready(Ok(event)) => {
                    let last = matches!(event, SessionEvent::Closed(_));
                    inner.dispatch(event, &shared);
                    if last {
                        inner.finished = true;
                    }
                }
                Poll::Ready(Err(e)) => {
                    log::debug!("WAMP transport failed: {e}");
                    // Let the machine see the end; its events follow.
                    let now = inner.driver.now();
                    inner.driver.conn.handle_eof(now);
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
                        let now = inner.driver.now();
                        inner.driver.conn.handle_eof(now);
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
pub(super) struct LeaveOnDrop(pub(super) Arc<Shared>);

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        self.0.leave_requested.store(true, Ordering::SeqCst);
        self.0.wake_driver();
    }
}

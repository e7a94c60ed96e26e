//! The session's background task: the driver loop over the sans-IO
//! [`ClientConnection`], and the routing of results, events and
//! invocations back to their waiters.

use std::any::Any;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use fahrbahn_core::Machine;
use fahrbahn_core::wamp::error::ERROR_RUNTIME_ERROR;
use fahrbahn_core::wamp::{
    ApplicationError, ClientConnection, Closed, CommandError, Dict, RegistrationId, RequestId,
    SessionEvent, SessionId, SubscriptionId,
};
use futures_channel::{mpsc, oneshot};

use super::Revocation;
use super::options::ChallengeHandler;
use super::payload::{CallResult, Event, Invocation};
use crate::driver::{Driver, Side};
use crate::error::Error;
use crate::runtime::{BoxFuture, BoxTransport};

pub(super) type Handler = Arc<
    dyn Fn(Invocation) -> BoxFuture<'static, Result<CallResult, ApplicationError>> + Send + Sync,
>;

/// Where a subscription's events go: its stream, and the slot that says
/// why the router ended it.
pub(super) struct Sink {
    pub(super) events: mpsc::UnboundedSender<(Event, usize)>,
    pub(super) revoked: Arc<OnceLock<Revocation>>,
}

pub(super) enum Waiter {
    Call(oneshot::Sender<Result<CallResult, Error>>),
    Register(oneshot::Sender<Result<RegistrationId, Error>>, Handler),
    Subscribe(oneshot::Sender<Result<SubscriptionId, Error>>, Sink),
    Done(oneshot::Sender<Result<(), Error>>),
}

impl Waiter {
    /// Answers the waiting request with `error`.
    fn fail(self, error: Error) {
        let _ = match self {
            Waiter::Call(tx) => tx.send(Err(error)).is_ok(),
            Waiter::Register(tx, _) => tx.send(Err(error)).is_ok(),
            Waiter::Subscribe(tx, _) => tx.send(Err(error)).is_ok(),
            Waiter::Done(tx) => tx.send(Err(error)).is_ok(),
        };
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
                if let Some(waiter) = self.waiters.remove(&request) {
                    waiter.fail(Error::Wamp(error));
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
                // A handler that panics, creating its future or polling
                // it, answers the call with wamp.error.runtime_error; the
                // session and the registration go on.
                let created = catch_unwind(AssertUnwindSafe(|| {
                    handler(Invocation {
                        args,
                        kwargs,
                        details,
                    })
                }));
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

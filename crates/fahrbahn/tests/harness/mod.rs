//! The runtime-generic test harness shared by the WebSocket
//! (`common/`) and router (`router_common/`) scenario suites: timers as
//! futures, timeouts, a watchdog, and `spawn` with a join handle.
#![allow(dead_code)] // each test crate uses a subset

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use fahrbahn::runtime::{AsyncTimer, Runtime};
use futures_util::future::{Either, select};

/// How long one scenario may run before it fails.
pub(crate) const SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long before the watchdog aborts the whole test process (for hangs
/// that a timer cannot interrupt, e.g. a blocked executor thread).
const WATCHDOG_TIMEOUT: Duration = Duration::from_secs(60);

/// Aborts the process if it is still alive after [`WATCHDOG_TIMEOUT`];
/// dropping it disarms it.
pub(crate) struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

impl Watchdog {
    /// Arms the watchdog for the current test (named after its thread).
    pub(crate) fn start() -> Self {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG_TIMEOUT) {
                eprintln!("watchdog: test {name} hung for {WATCHDOG_TIMEOUT:?}; aborting");
                std::process::abort();
            }
        });
        Self { _disarm: tx }
    }
}

/// A runtime timer as a future.
pub(crate) struct Sleep(pub(crate) Pin<Box<dyn AsyncTimer>>);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// Sleeps on the runtime's timer.
pub(crate) async fn sleep<R: Runtime>(rt: &R, d: Duration) {
    Sleep(rt.new_timer(Instant::now() + d)).await
}

/// Runs `future`, panicking (with `what`) if it takes longer than `limit`
/// (measured with the runtime's own timer).
pub(crate) async fn timeout<R: Runtime, F: Future>(
    rt: &R,
    limit: Duration,
    what: &str,
    future: F,
) -> F::Output {
    let timer = Sleep(rt.new_timer(Instant::now() + limit));
    match select(pin!(future), timer).await {
        Either::Left((out, _)) => out,
        Either::Right(((), _)) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Runs a whole scenario under the per-scenario timeout (the test files
/// call this inside their `block_on`, with a [`Watchdog`] armed).
pub(crate) async fn guarded<R: Runtime, F: Future<Output = ()>>(
    rt: R,
    scenario: impl FnOnce(R) -> F,
) {
    let fut = scenario(rt.clone());
    timeout(&rt, SCENARIO_TIMEOUT, "whole scenario", fut).await;
}

struct Slot<T> {
    value: Option<T>,
    finished: bool,
    waker: Option<Waker>,
}

/// The result of a task started with [`spawn`]; panics when awaited if
/// the task panicked.
pub(crate) struct JoinHandle<T>(Arc<Mutex<Slot<T>>>);

struct Completer<T>(Arc<Mutex<Slot<T>>>);

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.finished = true;
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = slot.value.take() {
            return Poll::Ready(v);
        }
        if slot.finished {
            panic!("spawned task panicked (see its message above)");
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Spawns `future` on the runtime and returns a handle to its output.
pub(crate) fn spawn<R, T, F>(rt: &R, future: F) -> JoinHandle<T>
where
    R: Runtime,
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        finished: false,
        waker: None,
    }));
    let completer = Completer(slot.clone());
    rt.spawn(Box::pin(async move {
        let value = future.await;
        completer.0.lock().unwrap().value = Some(value);
        drop(completer);
    }));
    JoinHandle(slot)
}

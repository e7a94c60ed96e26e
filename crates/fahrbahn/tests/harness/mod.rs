//! The runtime-generic test harness shared by the WebSocket
//! (`common/`) and router (`router_common/`) scenario suites: timers as
//! futures, timeouts, a watchdog, `spawn` with a join handle, and the
//! event primitives the scenarios synchronise with ([`Counter`],
//! [`OnDrop`], [`poll_until`]).
//!
//! The scenarios never sleep to let something happen: they wait for an
//! event. Timers appear only as failure bounds ([`timeout`],
//! [`SCENARIO_TIMEOUT`]), which end a wait that never ends, and never
//! decide whether a test passes.
#![allow(dead_code)] // each test crate uses a subset

use std::collections::hash_map::RandomState;
use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
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

/// Gives the executor one turn: returns `Pending` once (waking itself at
/// once), so other tasks run before this one continues.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Waits until `cond` holds, checking it again each time the executor
/// comes back to this task (no fixed sleep between checks).
///
/// Only for state that is observable solely by polling, such as the
/// router's connection count: everything else waits on an event.
/// `limit` is a failure bound, not a synchronisation: the wait ends as
/// soon as `cond` holds, however long that takes below the bound, and
/// only a condition that never comes true runs into it (and fails).
pub(crate) async fn poll_until<R: Runtime>(
    rt: &R,
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    timeout(rt, limit, what, async {
        while !cond() {
            yield_now().await;
        }
    })
    .await
}

/// A counter tasks can wait on; clones share it. [`add`](Self::add)
/// bumps it and wakes every waiter, [`reached`](Self::reached) waits until
/// it is at least `n`. The scenarios build their synchronisation from it:
///
/// - "it happened" (the invocation reached the callee): the handler
///   calls `add`, the test awaits `reached(1)`;
/// - a gate the test opens: handlers await `reached(1)`, the test calls
///   `add` (or never does, for a handler that must not finish);
/// - a barrier of `n`: each party calls `add`, then awaits `reached(n)`
///   (parties that ran one at a time would never get there);
/// - "it was dropped": an [`OnDrop`] guard calls `add`.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<Mutex<CounterState>>);

#[derive(Default)]
struct CounterState {
    value: usize,
    waiters: Vec<Waker>,
}

impl Counter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds one and wakes the waiters; returns the new value.
    pub(crate) fn add(&self) -> usize {
        let (value, waiters) = {
            let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
            s.value += 1;
            (s.value, std::mem::take(&mut s.waiters))
        };
        for w in waiters {
            w.wake();
        }
        value
    }

    /// The current value.
    pub(crate) fn get(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).value
    }

    /// Resolves once the value is at least `n`.
    pub(crate) async fn reached(&self, n: usize) {
        poll_fn(|cx| {
            let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if s.value >= n {
                return Poll::Ready(());
            }
            if !s.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                s.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// Adds one to its [`Counter`] when dropped, unless [`defuse`](Self::defuse)d:
/// put into a handler's future, it signals that the future was dropped
/// before it finished (e.g. interrupted by a canceled call).
pub(crate) struct OnDrop(Option<Counter>);

impl OnDrop {
    pub(crate) fn new(counter: &Counter) -> Self {
        Self(Some(counter.clone()))
    }

    /// The future finished: no signal.
    pub(crate) fn defuse(mut self) {
        self.0 = None;
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.add();
        }
    }
}

/// A fresh directory under the system temp dir, owned by one test alone,
/// removed on drop. Its name is random, not derived from the PID, and it
/// is created atomically (a name that exists is skipped), so neither
/// concurrent test processes nor leftovers of earlier runs can collide
/// with it.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> Self {
        loop {
            let random = RandomState::new().build_hasher().finish();
            let path = std::env::temp_dir().join(format!("{prefix}-{random:016x}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return Self(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

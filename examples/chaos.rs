//! The chaos test of the reconnecting component (run by `cargo xtask
//! chaos`): on 127.0.0.1, components on every runtime (tokio, smol,
//! async-std) act as callee, caller, publisher and subscriber against a
//! `fahrbahn router` process, reached through a small TCP proxy of this
//! program. Part 1 kills the router (SIGKILL) and starts it again,
//! `--restarts N` times, each after a seeded random number of completed
//! operations; part 2 has the proxy cut the connections (drop them, or
//! stall them until the keepalive notices).
//!
//! Each round asserts, and counts: every component rejoined within the
//! back-off schedule; every registration and subscription is back (a call
//! to each callee answers, each subscription has a router id); every call
//! in flight across the cut returned a result or a typed error; no
//! publication acknowledged while publisher and subscriber were joined is
//! lost; the proxy's connection count is back to one per component (no
//! leaked connection); per runtime, the tasks the components spawned
//! alive are back within the count of the first round (no leaked task);
//! the bytes this process has allocated are within the first round's
//! figure plus [`ROUND_ALLOWANCE`] (no leaked memory). After every
//! component stopped, each runtime's task count is back to zero and the
//! allocated bytes within the figure before the components started plus
//! [`STOP_ALLOWANCE`]. The last line is `N passed, M failed`.
//!
//! `chaos --router PATH [--restarts N] [--cuts N] [--seed S]`

#![allow(
    clippy::print_stdout,
    reason = "the tally line is the program's output"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fahrbahn::Error;
use fahrbahn::core::Rng;
use fahrbahn::runtime::{AnyListener, AsyncTimer, BoxFuture, BoxTransport, Executor, Runtime};
use fahrbahn::wamp::component::{
    Component, ComponentBuilder, RetryPolicy, SubscriptionItem, WhenDisconnected,
};
use fahrbahn::wamp::{CallResult, Dict, SessionOptions, kwargs};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, watch};

const REALM: &str = "realm1";
/// A watchdog on every wait of this program: a component or call that
/// takes longer is a failure, not a hang.
const WATCHDOG: Duration = Duration::from_secs(60);
/// The latest a stalled connection is noticed: a ping within 1 s,
/// unanswered for 1 s, then the close handshake's 1 s.
const STALL_NOTICED: Duration = Duration::from_secs(3);

/// How far the allocated bytes after a round may exceed the first
/// round's: buffers and queues that grew to a new high water mark, the
/// subscriber's record of sequence numbers. A leak of a connection's or a
/// session's state per round exceeds it within the 20 restarts.
const ROUND_ALLOWANCE: usize = 4 << 20;
/// How far the allocated bytes after every component stopped may exceed
/// those before they started: what this program keeps (the stopped
/// components' handles, the record of publications).
const STOP_ALLOWANCE: usize = 1 << 20;

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

/// Bytes allocated and not yet freed by this process.
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments;
// the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (the caller upholds `alloc`'s contract).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tasks alive on one runtime: spawned through [`Counted`] and not yet
/// dropped (completed or cancelled).
#[derive(Debug, Default)]
struct Tasks {
    live: AtomicUsize,
    /// Signalled when a task ends.
    ended: Notify,
}

impl Tasks {
    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Waits (bounded by the watchdog) until at most `most` tasks are
    /// alive; whether they are.
    async fn settle(&self, most: usize) -> bool {
        tokio::time::timeout(WATCHDOG, async {
            loop {
                let ended = self.ended.notified();
                if self.live() <= most {
                    return;
                }
                ended.await;
            }
        })
        .await
        .is_ok()
    }
}

/// Decrements the count when the task's future is dropped.
struct Alive(Arc<Tasks>);

impl Alive {
    fn new(tasks: Arc<Tasks>) -> Self {
        tasks.live.fetch_add(1, Ordering::SeqCst);
        Self(tasks)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

/// A runtime that counts the tasks spawned on it: what the components are
/// started on.
#[derive(Debug, Clone)]
struct Counted<R> {
    inner: R,
    tasks: Arc<Tasks>,
}

impl<R: Runtime> Executor for Counted<R> {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.inner.new_timer(deadline)
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        let alive = Alive::new(self.tasks.clone());
        self.inner.spawn(Box::pin(async move {
            let _alive = alive;
            future.await;
        }));
    }

    fn yield_now(&self, cx: &mut std::task::Context<'_>) {
        self.inner.yield_now(cx);
    }
}

impl<R: Runtime> Runtime for Counted<R> {
    type TcpStream = R::TcpStream;
    type TcpListener = R::TcpListener;

    fn connect_tcp(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<R::TcpStream>> {
        self.inner.connect_tcp(host, port)
    }

    fn bind_tcp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<R::TcpListener>> {
        self.inner.bind_tcp(addr)
    }

    fn bind_unix(&self, path: &str) -> BoxFuture<'static, io::Result<Box<dyn AnyListener>>> {
        self.inner.bind_unix(path)
    }

    fn connect_unix(&self, path: &str) -> BoxFuture<'static, io::Result<BoxTransport>> {
        self.inner.connect_unix(path)
    }
}

/// Starts `builder` on the runtime `name`, counting its tasks in `tasks`.
fn start(name: &str, builder: ComponentBuilder, tasks: &Arc<Tasks>) -> Component {
    let tasks = tasks.clone();
    match name {
        "tokio" => builder.start(&Counted {
            inner: fahrbahn::tokio::TokioRuntime,
            tasks,
        }),
        "smol" => builder.start(&Counted {
            inner: fahrbahn::smol::SmolRuntime,
            tasks,
        }),
        _ => builder.start(&Counted {
            inner: fahrbahn::async_std::AsyncStdRuntime,
            tasks,
        }),
    }
}

/// Runs, on the runtime `name`, a task that arms a timer and connects to
/// `port`: the runtime's threads, reactor and timer wheel exist before
/// the memory baseline is taken.
async fn warm_up(name: &str, port: u16) {
    async fn on<R: Runtime>(rt: R, port: u16) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = rt.clone();
        rt.spawn(Box::pin(async move {
            let mut timer = inner.new_timer(inner.now());
            std::future::poll_fn(|cx| timer.as_mut().poll(cx)).await;
            let _ = inner.connect_tcp("127.0.0.1", port).await;
            let _ = tx.send(());
        }));
        let _ = tokio::time::timeout(WATCHDOG, rx).await;
    }
    match name {
        "tokio" => on(fahrbahn::tokio::TokioRuntime, port).await,
        "smol" => on(fahrbahn::smol::SmolRuntime, port).await,
        _ => on(fahrbahn::async_std::AsyncStdRuntime, port).await,
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            eprintln!("FAIL: {what}");
        }
    }
}

/// What the proxy does with the connections it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Swallow the bytes both ways (the connection looks alive), but pass
    /// on a close.
    Stall,
}

/// A TCP proxy in front of the router: counts its live connections, and
/// can drop all of them or stall them.
struct Proxy {
    port: u16,
    live: Arc<AtomicUsize>,
    /// Signalled when a connection ends.
    closed: Arc<Notify>,
    /// Bumped to drop every connection held.
    drop_all: watch::Sender<u64>,
    /// The mode of the connections held now (new ones forward).
    stall: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let live = Arc::new(AtomicUsize::new(0));
        let (drop_all, drop_rx) = watch::channel(0u64);
        let (stall, stall_rx) = watch::channel(0u64);
        let counter = live.clone();
        let closed = Arc::new(Notify::new());
        let signal = closed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue; // the router is down: the client sees a close
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (drop_rx, stall_rx) = (drop_rx.clone(), stall_rx.clone());
                let counter = counter.clone();
                let signal = signal.clone();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    pipe(client, server, drop_rx, stall_rx).await;
                    counter.fetch_sub(1, Ordering::SeqCst);
                    signal.notify_one();
                });
            }
        });
        Ok(Self {
            port,
            live,
            closed,
            drop_all,
            stall,
        })
    }
}

/// Moves bytes both ways until either side closes or the proxy drops the
/// connection; after a stall order, swallows them instead.
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    mut drop_rx: watch::Receiver<u64>,
    mut stall_rx: watch::Receiver<u64>,
) {
    drop_rx.borrow_and_update();
    stall_rx.borrow_and_update();
    let mode = Arc::new(Mutex::new(Mode::Forward));
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let m1 = mode.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *m1.lock().unwrap() == Mode::Forward
                        && sw.write_all(&buf[..n]).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let m2 = mode.clone();
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *m2.lock().unwrap() == Mode::Forward
                        && cw.write_all(&buf[..n]).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let stall = async move {
        while stall_rx.changed().await.is_ok() {
            *mode.lock().unwrap() = Mode::Stall;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = drop_rx.changed() => {}
        _ = stall => {}
    }
}

/// The router process.
struct RouterProcess {
    child: Child,
}

impl RouterProcess {
    /// Starts `fahrbahn router` on `port` and waits for its "listening on"
    /// line.
    async fn start(program: &str, port: u16) -> Result<Self, String> {
        let mut child = Command::new(program)
            .args([
                "router",
                "--ws",
                &format!("127.0.0.1:{port}"),
                "--realm",
                REALM,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(WATCHDOG, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("listening on") {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            return Err("the router did not start listening".into());
        }
        // Keep reading its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child })
    }

    /// SIGKILL, and wait until it is gone.
    async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The four components of one runtime.
struct Team {
    name: &'static str,
    callee: Component,
    caller: Component,
    publisher: Component,
    subscriber: Component,
    /// Sequence numbers the subscriber received.
    received: Arc<Mutex<BTreeSet<u64>>>,
    /// Signalled on each event received.
    delivered: Arc<Notify>,
    procedure: String,
    topic: String,
    /// The tasks alive on this team's runtime.
    tasks: Arc<Tasks>,
}

impl Team {
    fn all(&self) -> [(&'static str, &Component); 4] {
        [
            ("callee", &self.callee),
            ("caller", &self.caller),
            ("publisher", &self.publisher),
            ("subscriber", &self.subscriber),
        ]
    }
}

fn builder(url: &str, seed: u64) -> ComponentBuilder {
    let mut options = SessionOptions::new(REALM);
    // A stalled connection is noticed within three seconds.
    options.websocket.timeouts.ping_interval = Some(Duration::from_secs(1));
    options.websocket.timeouts.pong_timeout = Duration::from_secs(1);
    options.websocket.timeouts.close = Duration::from_secs(1);
    Component::builder(REALM)
        .transport(url)
        .options(options)
        .seed(seed)
        .call_timeout(Some(Duration::from_secs(10)))
        .when_disconnected(WhenDisconnected::Wait(Duration::from_secs(20)))
}

fn team(name: &'static str, url: &str, seed: u64) -> Team {
    let procedure = format!("chaos.{name}.echo");
    let topic = format!("chaos.{name}.topic");
    let received = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = received.clone();
    let delivered = Arc::new(Notify::new());
    let signal = delivered.clone();
    let tasks = Arc::new(Tasks::default());
    let start = |b| start(name, b, &tasks);
    let callee = start(builder(url, seed).register(&procedure, |inv| async move {
        Ok(CallResult::args(inv.args))
    }));
    let subscriber = start(builder(url, seed + 1).subscribe(&topic, move |item| {
        if let SubscriptionItem::Event(e) = item {
            if let Some(n) = e.args.first().and_then(|v| v.as_u64()) {
                sink.lock().unwrap().insert(n);
                signal.notify_one();
            }
        }
    }));
    Team {
        name,
        callee,
        caller: start(builder(url, seed + 2)),
        publisher: start(builder(url, seed + 3)),
        subscriber,
        received,
        delivered,
        procedure,
        topic,
        tasks,
    }
}

/// The latest time by which a component that lost its session at `lost`
/// must have rejoined a router that was ready at `ready`: the retries
/// before `ready` at their shortest, the first one after at its longest,
/// plus `slack` for connecting and restoring.
fn rejoin_bound(lost: Instant, ready: Instant, slack: Duration) -> Instant {
    let policy = RetryPolicy::default();
    let mut earliest = lost;
    let mut latest = lost;
    for retry in 0.. {
        let (lo, hi) = policy.delay_bounds(retry);
        earliest += lo;
        latest += hi;
        if earliest >= ready {
            break;
        }
    }
    latest.max(ready) + slack
}

struct Run {
    teams: Vec<Team>,
    proxy: Proxy,
    tally: Tally,
    rng: Rng,
    seq: u64,
    /// Publications acknowledged while publisher and subscriber were both
    /// joined, per team.
    acked: Vec<BTreeSet<u64>>,
    /// Per team, the tasks alive after the first round settled.
    first_tasks: Option<Vec<usize>>,
    /// The bytes allocated after the first round settled.
    first_allocated: Option<usize>,
}

impl Run {
    /// One operation per team: a call and an acknowledged publication.
    async fn operate(&mut self) {
        for (i, team) in self.teams.iter().enumerate() {
            self.seq += 1;
            let n = self.seq;
            let call = tokio::time::timeout(
                WATCHDOG,
                team.caller
                    .call(&team.procedure, vec![n.into()], Dict::new()),
            )
            .await;
            let ok =
                matches!(&call, Ok(Ok(r)) if r.args.first().and_then(|v| v.as_u64()) == Some(n));
            self.tally
                .check(ok, &format!("{}: call {n}: {call:?}", team.name));
            let both_joined =
                team.publisher.session().is_some() && team.subscriber.session().is_some();
            let published = tokio::time::timeout(
                WATCHDOG,
                team.publisher.publish_with(
                    &team.topic,
                    vec![n.into()],
                    Dict::new(),
                    kwargs([("acknowledge", true.into()), ("exclude_me", true.into())]),
                ),
            )
            .await;
            if let Ok(Ok(())) = published {
                if both_joined && team.subscriber.session().is_some() {
                    self.acked[i].insert(n);
                }
            } else {
                self.tally
                    .check(false, &format!("{}: publish {n}: {published:?}", team.name));
            }
        }
    }

    /// Every acknowledged publication reached its subscriber (waiting on
    /// deliveries, bounded by the watchdog).
    async fn check_delivery(&mut self, round: &str) {
        for (i, team) in self.teams.iter().enumerate() {
            let expected = self.acked[i].clone();
            let received = team.received.clone();
            let delivered = team.delivered.clone();
            let all = tokio::time::timeout(WATCHDOG, async {
                // Waits for deliveries (the subscriber's handler runs on
                // its own runtime and signals each).
                while !expected.is_subset(&received.lock().unwrap()) {
                    delivered.notified().await;
                }
            })
            .await;
            let missing: Vec<_> = expected
                .difference(&team.received.lock().unwrap())
                .copied()
                .collect();
            self.tally.check(
                all.is_ok() && missing.is_empty(),
                &format!(
                    "{round}: {}: acknowledged publications lost: {missing:?}",
                    team.name
                ),
            );
        }
    }

    /// No task and no memory leaked: per runtime, the tasks alive are back
    /// within the first round's count (waiting on tasks ending, bounded by
    /// the watchdog), and the bytes allocated within the first round's
    /// plus [`ROUND_ALLOWANCE`]. The first round sets the marks.
    async fn check_leaks(&mut self, round: &str) {
        let first = match &self.first_tasks {
            Some(first) => first.clone(),
            None => {
                // Measured once the round settled (every call answered,
                // one connection per component): the long-lived tasks of
                // each component. A task of the round still ending only
                // loosens the later marks by one; a leak per round still
                // shows, and the check after stop is exact.
                let first: Vec<_> = self.teams.iter().map(|t| t.tasks.live()).collect();
                eprintln!("{round}: tasks alive per runtime: {first:?}");
                self.first_tasks = Some(first.clone());
                first
            }
        };
        for (team, most) in self.teams.iter().zip(first) {
            let settled = team.tasks.settle(most).await;
            self.tally.check(
                settled,
                &format!(
                    "{round}: {}: {} tasks alive, at most {most} expected",
                    team.name,
                    team.tasks.live()
                ),
            );
        }
        let allocated = ALLOCATED.load(Ordering::SeqCst);
        let first = *self.first_allocated.get_or_insert(allocated);
        eprintln!("{round}: {allocated} bytes allocated (first round {first})");
        self.tally.check(
            allocated <= first + ROUND_ALLOWANCE,
            &format!(
                "{round}: {allocated} bytes allocated, more than the first round's {first} + {ROUND_ALLOWANCE}"
            ),
        );
    }

    /// The current join counts of every component.
    fn joins(&self) -> Vec<u64> {
        self.teams
            .iter()
            .flat_map(|t| t.all().map(|(_, c)| c.join_count()))
            .collect()
    }

    /// Cuts (by `cut`, which returns when the components lose their
    /// sessions at the latest, and when the router is reachable again),
    /// then asserts the round.
    async fn round<F, Fut>(&mut self, round: &str, cut: F)
    where
        F: FnOnce(&mut Self) -> Fut,
        Fut: std::future::Future<Output = Option<(Instant, Instant)>>,
    {
        let ops = 1 + self.rng.next_u64() % 8;
        for _ in 0..ops {
            self.operate().await;
        }
        self.check_delivery(round).await;
        let before = self.joins();
        // A call per team in flight across the cut.
        let in_flight: Vec<_> = self
            .teams
            .iter()
            .map(|t| {
                let caller = t.caller.clone();
                let procedure = t.procedure.clone();
                tokio::spawn(async move {
                    tokio::time::timeout(
                        WATCHDOG,
                        caller.call(&procedure, vec![0.into()], Dict::new()),
                    )
                    .await
                })
            })
            .collect();
        let start = Instant::now();
        let Some((lost, ready)) = cut(self).await else {
            self.tally
                .check(false, &format!("{round}: the router did not restart"));
            return;
        };
        let bound = rejoin_bound(lost, ready, Duration::from_secs(3));
        let mut k = 0;
        for team in &self.teams {
            for (role, component) in team.all() {
                let rejoined = tokio::time::timeout(WATCHDOG, component.rejoined(before[k])).await;
                k += 1;
                let at = Instant::now();
                self.tally.check(
                    matches!(rejoined, Ok(Ok(_))) && at <= bound,
                    &format!(
                        "{round}: {} {role} rejoined after {:?} (bound {:?}): {:?}",
                        team.name,
                        at - start,
                        bound - start,
                        rejoined.map(|r| r.map(|s| s.id()))
                    ),
                );
            }
        }
        for (team, call) in self.teams.iter().zip(in_flight) {
            let returned = call.await;
            // A result or a typed error; the watchdog firing is a hang.
            self.tally.check(
                matches!(returned, Ok(Ok(_))),
                &format!("{round}: {}: the call in flight hung", team.name),
            );
        }
        // Every registration and subscription is back.
        for team in &self.teams {
            let echo = team
                .caller
                .call(&team.procedure, vec![7.into()], Dict::new())
                .await;
            self.tally.check(
                matches!(&echo, Ok(r) if r.args == vec![7.into()]),
                &format!("{round}: {}: registration not back: {echo:?}", team.name),
            );
        }
        for _ in 0..ops {
            self.operate().await;
        }
        self.check_delivery(round).await;
        // One proxied connection per component: none leaked. Closing ones
        // are awaited (the watchdog bounds the wait).
        let expected = self.teams.len() * 4;
        let live = self.proxy.live.clone();
        let closed = self.proxy.closed.clone();
        let settled = tokio::time::timeout(WATCHDOG, async {
            while live.load(Ordering::SeqCst) != expected {
                closed.notified().await;
            }
        })
        .await;
        self.tally.check(
            settled.is_ok(),
            &format!(
                "{round}: {} connections at the proxy, expected {expected}",
                live.load(Ordering::SeqCst)
            ),
        );
        self.check_leaks(round).await;
        eprintln!(
            "{round}: {} passed, {} failed so far",
            self.tally.passed, self.tally.failed
        );
    }
}

struct Args {
    router: String,
    restarts: u64,
    cuts: u64,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        router: String::new(),
        restarts: 20,
        cuts: 10,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--router" => args.router = value()?,
            "--restarts" => args.restarts = value()?.parse().map_err(|e| format!("{e}"))?,
            "--cuts" => args.cuts = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("{e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.router.is_empty() {
        return Err("--router PATH is needed".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chaos: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let (passed, failed) = match chaos(&args).await {
        Ok(t) => (t.passed, t.failed),
        Err(e) => {
            eprintln!("chaos: {e}");
            (0, 1)
        }
    };
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

async fn chaos(args: &Args) -> Result<Tally, Error> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let router = RouterProcess::start(&args.router, port)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
    let proxy = Proxy::start(port).await?;
    let url = format!("ws://127.0.0.1:{}/ws", proxy.port);
    let runtimes = ["tokio", "smol", "async-std"];
    for name in runtimes {
        warm_up(name, port).await;
    }
    // The memory baseline: before any component exists.
    let baseline = ALLOCATED.load(Ordering::SeqCst);
    let teams: Vec<Team> = runtimes
        .iter()
        .zip(0u64..)
        .map(|(name, i)| team(name, &url, args.seed * 100 + i * 10))
        .collect();
    let mut run = Run {
        acked: vec![BTreeSet::new(); teams.len()],
        teams,
        proxy,
        tally: Tally::default(),
        rng: Rng::from_seed(args.seed),
        seq: 0,
        first_tasks: None,
        first_allocated: None,
    };
    for team in &run.teams {
        for (role, c) in team.all() {
            let joined = tokio::time::timeout(WATCHDOG, c.joined()).await;
            run.tally.check(
                matches!(joined, Ok(Ok(_))),
                &format!("{} {role} joined: {joined:?}", team.name),
            );
        }
    }
    let router = Arc::new(Mutex::new(Some(router)));
    let program = args.router.clone();
    for i in 1..=args.restarts {
        let slot = router.clone();
        let program = program.clone();
        run.round(
            &format!("restart {i}/{}", args.restarts),
            move |_| async move {
                let old = slot.lock().unwrap().take();
                let lost = Instant::now();
                if let Some(old) = old {
                    old.kill().await;
                }
                let new = RouterProcess::start(&program, port).await.ok()?;
                let ready = Instant::now();
                *slot.lock().unwrap() = Some(new);
                Some((lost, ready))
            },
        )
        .await;
    }
    for i in 1..=args.cuts {
        let stall = i % 2 == 0;
        let what = if stall { "stall" } else { "drop" };
        run.round(&format!("cut {i}/{} ({what})", args.cuts), move |run| {
            let now = Instant::now();
            let lost = if stall {
                run.proxy.stall.send_modify(|n| *n += 1);
                now + STALL_NOTICED
            } else {
                run.proxy.drop_all.send_modify(|n| *n += 1);
                now
            };
            // The router itself stays up.
            std::future::ready(Some((lost, lost)))
        })
        .await;
    }
    // Stop everything: no connection left at the proxy.
    for team in &run.teams {
        for (_, c) in team.all() {
            c.stop().await;
        }
    }
    let live = run.proxy.live.clone();
    let closed = run.proxy.closed.clone();
    let drained = tokio::time::timeout(WATCHDOG, async {
        while live.load(Ordering::SeqCst) != 0 {
            closed.notified().await;
        }
    })
    .await;
    run.tally.check(
        drained.is_ok(),
        &format!(
            "after stop: {} connections left at the proxy",
            live.load(Ordering::SeqCst)
        ),
    );
    // No task left on any runtime (waiting on tasks ending), and the
    // memory back near the baseline.
    for team in &run.teams {
        let settled = team.tasks.settle(0).await;
        run.tally.check(
            settled,
            &format!(
                "after stop: {}: {} tasks left",
                team.name,
                team.tasks.live()
            ),
        );
    }
    let allocated = ALLOCATED.load(Ordering::SeqCst);
    eprintln!("after stop: {allocated} bytes allocated (before the start {baseline})");
    run.tally.check(
        allocated <= baseline + STOP_ALLOWANCE,
        &format!(
            "after stop: {allocated} bytes allocated, more than the {baseline} before the start + {STOP_ALLOWANCE}"
        ),
    );
    if let Some(r) = router.lock().unwrap().take() {
        drop(r); // killed on drop
    }
    Ok(run.tally)
}

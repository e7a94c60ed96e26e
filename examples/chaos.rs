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
//! leaked connection). The last line is `N passed, M failed`.
//!
//! `chaos --router PATH [--restarts N] [--cuts N] [--seed S]`

#![allow(
    clippy::print_stdout,
    reason = "the tally line is the program's output"
)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fahrbahn::Error;
use fahrbahn::core::Rng;
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
    let start: fn(ComponentBuilder) -> Component = match name {
        "tokio" => fahrbahn::tokio::component,
        "smol" => fahrbahn::smol::component,
        _ => fahrbahn::async_std::component,
    };
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
    let teams: Vec<Team> = ["tokio", "smol", "async-std"]
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
    if let Some(r) = router.lock().unwrap().take() {
        drop(r); // killed on drop
    }
    Ok(run.tally)
}

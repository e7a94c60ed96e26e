//! `wamp_bench`: the Fahrbahn WAMP client benchmark of `cargo xtask bench`.
//!
//! ```text
//! wamp_bench --url ws://127.0.0.1:8080/ws|rs://127.0.0.1:8081 \
//!            --serializer json|msgpack --test seq|pipe|pubsub \
//!            [--subscribers 1] [--inflight 100] [--window 1000] \
//!            [--realm realm1] [--warmup 1] [--duration 10]
//! ```
//!
//! Every session has its own connection; all of them run on tokio's
//! current-thread runtime (one OS thread, so pinning the process to one core
//! bounds its share of the machine).
//!
//! * `seq`: a callee session registers an echo procedure, a caller session
//!   calls it with one integer and awaits each result before the next call:
//!   calls per second, p50 and p99 latency (µs) of the calls of the window.
//! * `pipe`: the same with `--inflight` calls kept in flight (as many loops
//!   each awaiting its own call): calls per second.
//! * `pubsub`: one publisher session and `--subscribers` subscriber
//!   sessions; events (one integer) are published without acknowledge in a
//!   closed loop: the publisher pauses once it is `--window` events ahead of
//!   the slowest subscriber and resumes when that gap is down to half the
//!   window. Rate: events delivered per second, summed over the subscribers
//!   (`per_subscriber` is the rate of one subscriber, i.e. the publication
//!   rate). Every subscriber checks that it gets every event, in order.
//!
//! URIs are unique per process (`bench.<pid>.<nanos>.*`). After the warm-up
//! it prints `window start`, measures for `--duration`, prints `window end`
//! (xtask samples the router's CPU time at these lines, like for `loadgen`)
//! and then one line
//! `result rate=R count=N secs=S [p50_us=P p99_us=Q p90_us=.. p999_us=.. max_us=..]
//! [per_subscriber=R published=N]` (latencies for `seq` only).
//! Any error (a failed call, a lost or reordered event, a stalled
//! subscriber, a session that ends early) exits with status 1.

#![allow(clippy::print_stdout, reason = "a command line tool")]

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::Write as _;
use std::process::ExitCode;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fahrbahn::wamp::{CallResult, Dict, Serializer, Session, SessionOptions, Value};

type BoxError = Box<dyn std::error::Error>;

const USAGE: &str = "usage: wamp_bench --url URL [--serializer json|msgpack|cbor] \
                     --test seq|pipe|pubsub [--subscribers N] [--inflight N] [--window N] \
                     [--realm REALM] [--warmup SECS] [--duration SECS]";

/// How long a subscriber may stay silent while the publisher waits for it.
const STALL: Duration = Duration::from_secs(10);
/// How long the workers may take to finish their last calls, and a session
/// to leave.
const FINISH: Duration = Duration::from_secs(10);
/// Events published between two yields to the runtime.
const BURST: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    Seq,
    Pipe,
    PubSub,
}

struct Options {
    url: String,
    realm: String,
    serializer: Serializer,
    test: Test,
    subscribers: usize,
    inflight: usize,
    window: u64,
    warmup: Duration,
    duration: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut url = None;
    let mut test = None;
    let mut options = Options {
        url: String::new(),
        realm: "realm1".to_owned(),
        serializer: Serializer::Json,
        test: Test::Seq,
        subscribers: 1,
        inflight: 100,
        window: 1000,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(10),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let secs = |v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("bad number of seconds `{v}`"))
        };
        let count = |v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: bad count `{v}`"))
        };
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--realm" => options.realm = value()?,
            "--serializer" => {
                options.serializer = match value()?.as_str() {
                    "json" => Serializer::Json,
                    "msgpack" => Serializer::MsgPack,
                    "cbor" => Serializer::Cbor,
                    other => return Err(format!("--serializer: unknown serializer `{other}`")),
                };
            }
            "--test" => {
                test = Some(match value()?.as_str() {
                    "seq" => Test::Seq,
                    "pipe" => Test::Pipe,
                    "pubsub" => Test::PubSub,
                    other => return Err(format!("--test: unknown test `{other}`")),
                });
            }
            "--subscribers" => options.subscribers = count(value()?)?,
            "--inflight" => options.inflight = count(value()?)?,
            "--window" => options.window = count(value()?)? as u64,
            "--warmup" => options.warmup = secs(value()?)?,
            "--duration" => options.duration = secs(value()?)?,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    options.url = url.ok_or("--url is required")?;
    options.test = test.ok_or("--test is required")?;
    if options.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    bench::run_local(async move { run(options).await.map(|()| ExitCode::SUCCESS) })
}

/// Prints a line to stdout at once (xtask times the window by these lines).
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

async fn run(options: Options) -> Result<(), BoxError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("bench.{}.{nanos}", std::process::id());
    match options.test {
        Test::Seq | Test::Pipe => rpc(&options, &prefix).await,
        Test::PubSub => pubsub(&options, &prefix).await,
    }
}

async fn connect(options: &Options, role: &str) -> Result<Session, BoxError> {
    let session_options = SessionOptions::new(&options.realm).serializer(options.serializer);
    fahrbahn::tokio::session_with(&options.url, session_options)
        .await
        .map_err(|e| {
            format!(
                "{role}: cannot join {} at {}: {e}",
                options.realm, options.url
            )
            .into()
        })
}

async fn leave(session: &Session, role: &str) -> Result<(), BoxError> {
    match tokio::time::timeout(FINISH, session.leave()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{role}: leaving failed: {e}").into()),
        Err(_) => Err(format!("{role}: no GOODBYE within {FINISH:?}").into()),
    }
}

/// State shared by the tasks of one run (one thread: plain cells).
#[derive(Default)]
struct Shared {
    /// Counting (calls or deliveries) is on.
    measuring: Cell<bool>,
    /// The workers are to stop.
    stop: Cell<bool>,
    /// Calls completed while measuring.
    calls: Cell<u64>,
    /// Latencies (ns) of the sequential calls completed while measuring.
    latencies: RefCell<Vec<u64>>,
    /// The first error of any task.
    error: RefCell<Option<String>>,
}

impl Shared {
    fn fail(&self, error: String) {
        self.stop.set(true);
        self.error.borrow_mut().get_or_insert(error);
    }

    fn check(&self) -> Result<(), BoxError> {
        match self.error.borrow().clone() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// Sequential (`seq`) or pipelined (`pipe`) calls of an echo procedure.
async fn rpc(options: &Options, prefix: &str) -> Result<(), BoxError> {
    let procedure = format!("{prefix}.echo");
    let callee = connect(options, "callee").await?;
    callee
        .register(&procedure, |invocation| async move {
            Ok(CallResult::args(invocation.args))
        })
        .await
        .map_err(|e| format!("registering {procedure}: {e}"))?;
    let caller = connect(options, "caller").await?;

    let shared = Rc::new(Shared::default());
    let sequential = options.test == Test::Seq;
    let workers = if sequential { 1 } else { options.inflight };
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (caller, procedure, shared) = (caller.clone(), procedure.clone(), shared.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut n = worker as i64 * 1_000_000_000;
            while !shared.stop.get() {
                let start = Instant::now();
                let result = caller
                    .call(&procedure, vec![Value::Int(n)], Dict::new())
                    .await;
                let elapsed = start.elapsed();
                match result {
                    Ok(result) if result.args == [Value::Int(n)] => {}
                    Ok(result) => {
                        shared.fail(format!("call {n} returned {:?}", result.args));
                        break;
                    }
                    Err(e) => {
                        shared.fail(format!("call {n} failed: {e}"));
                        break;
                    }
                }
                if shared.measuring.get() {
                    shared.calls.set(shared.calls.get() + 1);
                    if sequential {
                        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                        shared.latencies.borrow_mut().push(ns);
                    }
                }
                n += 1;
            }
        }));
    }
    if sequential {
        // room for the calls of the window (about 50k/s), no reallocation
        let expected = (options.duration.as_secs_f64() * 60_000.0) as usize;
        shared.latencies.borrow_mut().reserve(expected);
    }

    tokio::time::sleep(options.warmup).await;
    shared.check()?;
    say("window start");
    let start = Instant::now();
    shared.measuring.set(true);
    tokio::time::sleep(options.duration).await;
    shared.measuring.set(false);
    let secs = start.elapsed().as_secs_f64();
    say("window end");
    let count = shared.calls.get();

    shared.stop.set(true);
    for task in tasks {
        if tokio::time::timeout(FINISH, task).await.is_err() {
            return Err(format!("the last calls did not finish within {FINISH:?}").into());
        }
    }
    shared.check()?;
    leave(&caller, "caller").await?;
    leave(&callee, "callee").await?;
    if count == 0 {
        return Err("no call completed in the window".into());
    }

    let mut line = format!(
        "result rate={:.1} count={count} secs={secs:.3}",
        count as f64 / secs
    );
    if sequential {
        let mut latencies = shared.latencies.take();
        latencies.sort_unstable();
        let us = |p: f64| percentile(&latencies, p) as f64 / 1e3;
        line.push_str(&format!(
            " p50_us={:.1} p99_us={:.1} p90_us={:.1} p999_us={:.1} max_us={:.1}",
            us(0.50),
            us(0.99),
            us(0.90),
            us(0.999),
            us(1.0)
        ));
    }
    say(&line);
    Ok(())
}

/// The nearest-rank percentile `p` (0..=1) of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The publisher's side of the flow control of `pubsub`.
struct Flow {
    /// Events published so far.
    published: Cell<u64>,
    /// Events received so far, per subscriber.
    received: Vec<Cell<u64>>,
    /// The publisher waits until the slowest subscriber is at most this
    /// many events behind.
    low: u64,
    /// The waiting publisher.
    waker: RefCell<Option<Waker>>,
}

impl Flow {
    fn slowest(&self) -> u64 {
        self.received.iter().map(Cell::get).min().unwrap_or(0)
    }

    fn delivered(&self) -> u64 {
        self.received.iter().map(Cell::get).sum()
    }

    fn gap(&self) -> u64 {
        self.published.get() - self.slowest()
    }
}

/// One publisher, `--subscribers` subscribers, publish without acknowledge.
async fn pubsub(options: &Options, prefix: &str) -> Result<(), BoxError> {
    let topic = format!("{prefix}.topic");
    let publisher = connect(options, "publisher").await?;
    let shared = Rc::new(Shared::default());
    let flow = Rc::new(Flow {
        published: Cell::new(0),
        received: (0..options.subscribers).map(|_| Cell::new(0)).collect(),
        low: options.window / 2,
        waker: RefCell::new(None),
    });
    let mut subscribers = Vec::with_capacity(options.subscribers);
    let mut tasks = Vec::with_capacity(options.subscribers);
    for i in 0..options.subscribers {
        let role = format!("subscriber {i}");
        let session = connect(options, &role).await?;
        let mut subscription = session
            .subscribe(&topic)
            .await
            .map_err(|e| format!("{role}: subscribing to {topic}: {e}"))?;
        subscribers.push(session);
        let (shared, flow) = (shared.clone(), flow.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let received = &flow.received[i];
            loop {
                let Some(event) = subscription.next().await else {
                    if !shared.stop.get() {
                        shared.fail(format!("{role}: the subscription ended"));
                    }
                    break;
                };
                let n = received.get();
                if event.args != [Value::Int(n as i64)] {
                    shared.fail(format!(
                        "{role}: event {n} lost or out of order (got {:?})",
                        event.args
                    ));
                    break;
                }
                received.set(n + 1);
                if flow.gap() <= flow.low
                    && let Some(waker) = flow.waker.borrow_mut().take()
                {
                    waker.wake();
                }
            }
        }));
    }

    let warm_end = Instant::now() + options.warmup;
    let mut window: Option<(Instant, u64, u64)> = None; // start, delivered, published
    let end = loop {
        shared.check()?;
        let now = Instant::now();
        match window {
            None if now >= warm_end => {
                say("window start");
                window = Some((now, flow.delivered(), flow.published.get()));
            }
            Some((start, delivered, published)) if now - start >= options.duration => {
                let secs = start.elapsed().as_secs_f64();
                say("window end");
                break (
                    secs,
                    flow.delivered() - delivered,
                    flow.published.get() - published,
                );
            }
            _ => {}
        }
        if flow.gap() >= options.window {
            let resumed = tokio::time::timeout(
                STALL,
                poll_fn(|cx| {
                    if flow.gap() <= flow.low || shared.stop.get() {
                        Poll::Ready(())
                    } else {
                        *flow.waker.borrow_mut() = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }),
            )
            .await;
            if resumed.is_err() {
                return Err(format!(
                    "a subscriber stalled: published {}, slowest received {}",
                    flow.published.get(),
                    flow.slowest()
                )
                .into());
            }
            continue;
        }
        let burst = BURST.min(options.window - flow.gap());
        for _ in 0..burst {
            let n = flow.published.get();
            publisher
                .publish(&topic, vec![Value::Int(n as i64)], Dict::new())
                .await
                .map_err(|e| format!("publishing event {n}: {e}"))?;
            flow.published.set(n + 1);
        }
        tokio::task::yield_now().await;
    };
    let (secs, delivered, published) = end;
    shared.stop.set(true);
    shared.check()?;
    leave(&publisher, "publisher").await?;
    for (i, session) in subscribers.iter().enumerate() {
        leave(session, &format!("subscriber {i}")).await?;
    }
    for task in tasks {
        task.abort();
    }
    if delivered == 0 {
        return Err("no event delivered in the window".into());
    }
    let rate = delivered as f64 / secs;
    say(&format!(
        "result rate={rate:.1} count={delivered} secs={secs:.3} per_subscriber={:.1} published={published}",
        rate / options.subscribers as f64
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}

//! The WAMP benchmarks of `cargo xtask bench`: RPC calls and pub/sub
//! events per second through a router, for Fahrbahn's client and router
//! and for the reference implementations, AutobahnPython and Crossbar.io.
//!
//! The matrix: routers {`fahrbahn router`, Crossbar.io} × clients
//! {`wamp_bench` of the `bench` crate, `interop/peers/bench_peer.py` on
//! AutobahnPython asyncio} × transports {WebSocket, RawSocket} × serializers
//! {json, msgpack} × tests {sequential RPC, 100 calls in flight, pub/sub to
//! 1 and to 10 subscribers}, plus sequential RPC with the client on the
//! router's CPU for Fahrbahn ↔ Fahrbahn and for the baseline,
//! AutobahnPython ↔ Crossbar.io. Both clients have the same command line and
//! output (see `bench/src/bin/wamp_bench.rs`). Each router is started once,
//! on free ports, pinned to CPU 0 (`taskset`, when it exists; Crossbar's
//! worker processes inherit the pinning), and serves every case of its part;
//! each client run is pinned to CPU 1 (CPU 0 in the one-CPU case). The
//! router's CPU time over the measuring window is the user + system time of
//! its whole process tree, from `/proc`, sampled when the client prints
//! `window start` and `window end`; the client's likewise.
//!
//! Full mode: [`FULL_RUNS`] runs per case, the median by rate is reported.
//! Quick mode: one short run per case on WebSocket json and RawSocket
//! msgpack only. Every case counts as one passed or failed item. Logs go to
//! `target/bench/wamp/<router>/`.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use xtask_support::crossbar::{self, Venv};
use xtask_support::process::{describe, with_log};
use xtask_support::router::{self, Ports, REALM, free_ports};
use xtask_support::service::Service;
use xtask_support::{Result, Tally, cargo};

use crate::cpu::{clock_ticks, has_taskset, pinned, tree_ticks};
use crate::report::ratio;
use crate::{Tools, result_field};

/// The Python client, relative to the workspace root.
const PEER: &str = "interop/peers/bench_peer.py";

/// Runs per case in full mode (the median by rate is reported).
const FULL_RUNS: usize = 3;
/// Calls in flight in the pipelined test.
const INFLIGHT: usize = 100;
/// Events the publisher may be ahead of the slowest subscriber.
const WINDOW: usize = 1000;

/// How long a router may take to listen (crossbar: about 3 s).
const ROUTER_TIMEOUT: Duration = Duration::from_secs(60);
/// A client run's time limit beyond its warm-up and window (starting
/// Python, joining eleven sessions, leaving).
const RUN_SLACK: Duration = Duration::from_secs(60);

/// A WAMP router of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RouterKind {
    /// `fahrbahn router` (crate `fahrbahn-cli`).
    Fahrbahn,
    /// Crossbar.io.
    Crossbar,
}

impl RouterKind {
    fn slug(self) -> &'static str {
        match self {
            RouterKind::Fahrbahn => "fahrbahn",
            RouterKind::Crossbar => "crossbar",
        }
    }

    fn title(self) -> &'static str {
        match self {
            RouterKind::Fahrbahn => "fahrbahn router",
            RouterKind::Crossbar => "Crossbar.io",
        }
    }
}

/// A WAMP client of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ClientKind {
    /// `wamp_bench` (Fahrbahn on tokio's current-thread runtime).
    Fahrbahn,
    /// `bench_peer.py` (AutobahnPython on asyncio).
    Python,
}

impl ClientKind {
    fn slug(self) -> &'static str {
        match self {
            ClientKind::Fahrbahn => "fahrbahn",
            ClientKind::Python => "autobahn",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ClientKind::Fahrbahn => "fahrbahn",
            ClientKind::Python => "AutobahnPython",
        }
    }
}

/// The client ↔ router pairs, in report order: ours, the baseline, and the
/// two mixed pairs.
const PAIRS: [(ClientKind, RouterKind); 4] = [
    (ClientKind::Fahrbahn, RouterKind::Fahrbahn),
    (ClientKind::Python, RouterKind::Crossbar),
    (ClientKind::Fahrbahn, RouterKind::Crossbar),
    (ClientKind::Python, RouterKind::Fahrbahn),
];

/// WebSocket or RawSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Transport {
    WebSocket,
    RawSocket,
}

/// A transport and a serializer: a column of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cell {
    transport: Transport,
    serializer: &'static str,
}

const fn cell(transport: Transport, serializer: &'static str) -> Cell {
    Cell {
        transport,
        serializer,
    }
}

/// Every transport and serializer, in report order.
const CELLS: [Cell; 4] = [
    cell(Transport::WebSocket, "json"),
    cell(Transport::WebSocket, "msgpack"),
    cell(Transport::RawSocket, "json"),
    cell(Transport::RawSocket, "msgpack"),
];

/// The cells of quick mode.
const QUICK_CELLS: [Cell; 2] = [
    cell(Transport::WebSocket, "json"),
    cell(Transport::RawSocket, "msgpack"),
];

impl Cell {
    fn url(self, ports: Ports) -> String {
        match self.transport {
            Transport::WebSocket => format!("ws://127.0.0.1:{}/ws", ports.websocket),
            Transport::RawSocket => format!("rs://127.0.0.1:{}", ports.rawsocket),
        }
    }

    /// E.g. `WebSocket json`.
    fn title(self) -> String {
        let transport = match self.transport {
            Transport::WebSocket => "WebSocket",
            Transport::RawSocket => "RawSocket",
        };
        format!("{transport} {}", self.serializer)
    }

    /// E.g. `ws-json`.
    fn slug(self) -> String {
        let transport = match self.transport {
            Transport::WebSocket => "ws",
            Transport::RawSocket => "rs",
        };
        format!("{transport}-{}", self.serializer)
    }
}

/// A test: a table of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Test {
    /// Sequential RPC.
    Seq,
    /// Sequential RPC with the client on the router's CPU (ours and the
    /// baseline only): without the wake-ups of an idle CPU.
    SeqOneCpu,
    /// [`INFLIGHT`] calls in flight.
    Pipe,
    /// Pub/sub to one subscriber.
    PubSub1,
    /// Pub/sub to ten subscribers.
    PubSub10,
}

const TESTS: [Test; 5] = [
    Test::Seq,
    Test::SeqOneCpu,
    Test::Pipe,
    Test::PubSub1,
    Test::PubSub10,
];

impl Test {
    fn slug(self) -> &'static str {
        match self {
            Test::Seq => "seq",
            Test::SeqOneCpu => "seq-one-cpu",
            Test::Pipe => "pipe",
            Test::PubSub1 => "pubsub1",
            Test::PubSub10 => "pubsub10",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Test::Seq => "sequential RPC",
            Test::SeqOneCpu => "sequential RPC, one CPU",
            Test::Pipe => "RPC ×100 in flight",
            Test::PubSub1 => "pub/sub 1 sub",
            Test::PubSub10 => "pub/sub 10 subs",
        }
    }

    fn title(self) -> String {
        match self {
            Test::Seq => "Sequential RPC (calls/s)".to_owned(),
            Test::SeqOneCpu => {
                "Sequential RPC, client and router both on CPU 0 (calls/s)".to_owned()
            }
            Test::Pipe => format!("RPC, {INFLIGHT} calls in flight (calls/s)"),
            Test::PubSub1 => "Pub/sub, 1 subscriber (events delivered/s)".to_owned(),
            Test::PubSub10 => {
                "Pub/sub, 10 subscribers (events delivered/s, summed over the subscribers)"
                    .to_owned()
            }
        }
    }

    /// The client options of the test.
    fn args(self) -> Vec<String> {
        let (test, more): (&str, &[&str]) = match self {
            Test::Seq | Test::SeqOneCpu => ("seq", &[]),
            Test::Pipe => ("pipe", &[]),
            Test::PubSub1 => ("pubsub", &["--subscribers", "1"]),
            Test::PubSub10 => ("pubsub", &["--subscribers", "10"]),
        };
        let mut args = vec!["--test".to_owned(), test.to_owned()];
        args.extend(more.iter().map(|s| (*s).to_owned()));
        if self == Test::Pipe {
            args.extend(["--inflight".to_owned(), INFLIGHT.to_string()]);
        }
        if matches!(self, Test::PubSub1 | Test::PubSub10) {
            args.extend(["--window".to_owned(), WINDOW.to_string()]);
        }
        args
    }

    fn sequential(self) -> bool {
        matches!(self, Test::Seq | Test::SeqOneCpu)
    }

    /// The CPU the client is pinned to.
    fn client_cpu(self) -> &'static str {
        if self == Test::SeqOneCpu { "0" } else { "1" }
    }

    /// The client ↔ router pairs of the test.
    fn pairs(self) -> &'static [(ClientKind, RouterKind)] {
        if self == Test::SeqOneCpu {
            &PAIRS[..2]
        } else {
            &PAIRS
        }
    }
}

/// One case of the matrix.
type Key = (ClientKind, RouterKind, Cell, Test);

/// One client run (or the median of a case's runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WampRun {
    /// Calls or events delivered per second.
    rate: f64,
    /// The router's CPU time over the window, as a share of one CPU.
    router_cpu: Option<f64>,
    /// The client's likewise.
    client_cpu: Option<f64>,
    /// Sequential RPC only: latency percentiles, µs.
    p50_us: Option<f64>,
    p99_us: Option<f64>,
}

/// Runs per case, warm-up and window of each run, and the cells.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    quick: bool,
    runs: usize,
    warmup: Duration,
    duration: Duration,
    cells: Vec<Cell>,
}

impl Plan {
    /// Full mode: 72 cases of 3 runs of about 3.5 s (~13 min); quick mode:
    /// 36 cases of one run of about 2.5 s (~1.5 min).
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                runs: 1,
                warmup: Duration::from_millis(500),
                duration: Duration::from_millis(1500),
                cells: QUICK_CELLS.to_vec(),
            }
        } else {
            Self {
                quick,
                runs: FULL_RUNS,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(2),
                cells: CELLS.to_vec(),
            }
        }
    }

    fn keys(&self, router: RouterKind) -> Vec<Key> {
        let mut keys = Vec::new();
        for &cell in &self.cells {
            for test in TESTS {
                for &(client, r) in test.pairs() {
                    if r == router {
                        keys.push((client, router, cell, test));
                    }
                }
            }
        }
        keys
    }
}

/// The results of the WAMP part: the median run per case; `None` for a
/// case that failed.
#[derive(Debug, Default)]
pub(crate) struct WampResults {
    plan: Option<Plan>,
    cases: BTreeMap<Key, Option<WampRun>>,
    /// Wall-clock time of the whole part.
    elapsed: Duration,
}

/// Runs the WAMP matrix; `target` is the cargo target directory.
pub(crate) fn run(quick: bool, tools: &dyn Tools, target: &Path, tally: &mut Tally) -> WampResults {
    let started = Instant::now();
    let plan = Plan::new(quick);
    let mut results = WampResults {
        plan: Some(plan.clone()),
        ..WampResults::default()
    };
    eprintln!(
        "\n==> WAMP benchmarks ({} runs of {}s per case after {}s warm-up)",
        plan.runs,
        plan.duration.as_secs_f64(),
        plan.warmup.as_secs_f64()
    );
    let setup = match Setup::prepare(tools, target) {
        Ok(setup) => setup,
        Err(e) => {
            tally.broke(e);
            return results;
        }
    };
    for router in [RouterKind::Fahrbahn, RouterKind::Crossbar] {
        let keys = plan.keys(router);
        if let Err(e) = router_part(&setup, &plan, router, &keys, &mut results, tally) {
            // every case not done yet fails
            for key in keys {
                if let Entry::Vacant(slot) = results.cases.entry(key) {
                    tally.broke(format!("{}: {e}", name(key)));
                    slot.insert(None);
                }
            }
        }
    }
    results.elapsed = started.elapsed();
    eprintln!(
        "==> WAMP benchmarks done in {:.0}s",
        results.elapsed.as_secs_f64()
    );
    results
}

/// E.g. `fahrbahn ↔ Crossbar.io, WebSocket json, sequential RPC`.
fn name((client, router, cell, test): Key) -> String {
    format!(
        "{} ↔ {}, {}, {}",
        client.title(),
        router.title(),
        cell.title(),
        test.short()
    )
}

/// What every part needs.
struct Setup {
    /// `target/bench/wamp/`.
    dir: PathBuf,
    /// `wamp_bench`.
    client: PathBuf,
    /// `fahrbahn`, unless it failed to build.
    router: Result<PathBuf>,
    /// The venv of Crossbar.io and AutobahnPython, unless it failed to
    /// install.
    venv: Result<Venv>,
    taskset: bool,
}

impl Setup {
    fn prepare(tools: &dyn Tools, target: &Path) -> Result<Self> {
        let dir = target.join("bench").join("wamp");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let client = tools.wamp_client()?;
        let router = tools.fahrbahn_router();
        let venv = tools.crossbar();
        let taskset = has_taskset();
        if !taskset {
            eprintln!("note: taskset is missing, the processes are not pinned to CPUs");
        }
        Ok(Self {
            dir,
            client,
            router,
            venv,
            taskset,
        })
    }
}

/// A running router, stopped when dropped.
struct Router {
    service: Service,
    ports: Ports,
    log: PathBuf,
}

impl Router {
    fn start(setup: &Setup, kind: RouterKind, dir: &Path) -> Result<Self> {
        let ports = free_ports()?;
        let log = dir.join("router.log");
        let cpu = setup.taskset.then_some("0");
        let mut service = match kind {
            RouterKind::Crossbar => {
                let venv = setup.venv.as_ref().map_err(Clone::clone)?;
                crossbar::spawn_pinned(venv, dir, ports, &log, cpu)?
            }
            RouterKind::Fahrbahn => {
                let program = setup.router.as_ref().map_err(Clone::clone)?;
                router::spawn_fahrbahn(pinned(setup.taskset, "0", program), dir, ports, &log)?
            }
        };
        eprintln!(
            "==> starting {} on ports {} and {} (log: {})",
            kind.title(),
            ports.websocket,
            ports.rawsocket,
            log.display()
        );
        for port in [ports.websocket, ports.rawsocket] {
            service
                .wait_for_port(port, ROUTER_TIMEOUT)
                .map_err(|e| with_log(&log, e))?;
        }
        Ok(Self {
            service,
            ports,
            log,
        })
    }
}

/// Starts `router` and runs its cases.
fn router_part(
    setup: &Setup,
    plan: &Plan,
    kind: RouterKind,
    keys: &[Key],
    results: &mut WampResults,
    tally: &mut Tally,
) -> Result<()> {
    let dir = setup.dir.join(kind.slug());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut router = Router::start(setup, kind, &dir)?;
    for (i, &key) in keys.iter().enumerate() {
        eprintln!("==> [{}/{}] {}", i + 1, keys.len(), name(key));
        let outcome = match router.service.exited() {
            Some(status) => Err(with_log(
                &router.log,
                format!("{} exited ({status})", kind.title()),
            )),
            None => run_case(setup, plan, &router, &dir, key),
        };
        match outcome {
            Ok(run) => {
                eprintln!("    {}", describe_run(&run));
                tally.pass();
                results.cases.insert(key, Some(run));
            }
            Err(e) => {
                tally.broke(format!("{}: {e}", name(key)));
                results.cases.insert(key, None);
            }
        }
    }
    eprintln!("==> stopping {}", kind.title());
    router.service.stop();
    Ok(())
}

fn describe_run(run: &WampRun) -> String {
    let mut text = format!(
        "{:.0}/s, router CPU {}, client CPU {}",
        run.rate,
        percent(run.router_cpu),
        percent(run.client_cpu)
    );
    if let (Some(p50), Some(p99)) = (run.p50_us, run.p99_us) {
        let _ = write!(text, ", p50 {p50:.0} µs, p99 {p99:.0} µs");
    }
    text
}

/// Runs a case `plan.runs` times; the median run by rate.
fn run_case(setup: &Setup, plan: &Plan, router: &Router, dir: &Path, key: Key) -> Result<WampRun> {
    let (client, _, cell, test) = key;
    let log = dir.join(format!(
        "{}-{}-{}.log",
        client.slug(),
        cell.slug(),
        test.slug()
    ));
    let mut runs = Vec::with_capacity(plan.runs);
    for _ in 0..plan.runs {
        let mut cmd = match client {
            ClientKind::Fahrbahn => pinned(setup.taskset, test.client_cpu(), &setup.client),
            ClientKind::Python => {
                let venv = setup.venv.as_ref().map_err(Clone::clone)?;
                let python = venv.python();
                let program = Path::new(python.get_program());
                let mut cmd = pinned(setup.taskset, test.client_cpu(), program);
                cmd.env("PYTHONSAFEPATH", "1")
                    .arg("-u")
                    .arg(cargo::workspace_root().join(PEER));
                cmd
            }
        };
        cmd.args(["--url", &cell.url(router.ports)])
            .args(["--serializer", cell.serializer, "--realm", REALM])
            .args(test.args())
            .args(["--warmup", &plan.warmup.as_secs_f64().to_string()])
            .args(["--duration", &plan.duration.as_secs_f64().to_string()])
            .current_dir(dir);
        let expected = plan.warmup + plan.duration;
        let run = client_run(&mut cmd, router.service.id(), expected, &log)
            .map_err(|e| with_log(&log, e))?;
        runs.push(run);
    }
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    Ok(runs[runs.len() / 2])
}

/// A client process, killed when dropped.
struct ClientProcess(Child);

impl Drop for ClientProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs a client once with its stderr appended to `log`, sampling the CPU
/// time of the router's process tree (rooted at `router_pid`) and of the
/// client when it announces the start and the end of its window.
fn client_run(
    cmd: &mut Command,
    router_pid: u32,
    expected: Duration,
    log: &Path,
) -> Result<WampRun> {
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", describe(cmd)))?;
    let mut child = ClientProcess(child);
    let client_pid = child.0.id();
    let stdout = child.0.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let sample = || {
            let ticks = tree_ticks(&[router_pid, client_pid]);
            (ticks.sum(router_pid), ticks.sum(client_pid))
        };
        let (mut start, mut end, mut result) = (None, None, None);
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            match line.trim() {
                "window start" => start = Some(sample()),
                "window end" => end = Some(sample()),
                r if r.starts_with("result ") => result = Some(r.to_owned()),
                _ => {}
            }
        }
        (start, end, result)
    });
    let limit = expected + RUN_SLACK;
    let began = Instant::now();
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if began.elapsed() < limit => sleep(Duration::from_millis(20)),
            Ok(None) => {
                drop(child);
                let _ = reader.join();
                return Err(format!(
                    "the client did not finish within {}s and was killed",
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for the client: {e}")),
        }
    };
    let (start, end, result) = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("the client failed ({status})"));
    }
    let result = result.ok_or("the client printed no result line")?;
    parse_result(&result, start.zip(end), clock_ticks())
}

/// CPU samples (router, client) in clock ticks at the start and the end of
/// the window.
type Samples = ((Option<u64>, Option<u64>), (Option<u64>, Option<u64>));

/// A [`WampRun`] from a `result ...` line and the CPU samples, taken in
/// clock ticks of `ticks_per_sec`.
fn parse_result(result: &str, samples: Option<Samples>, ticks_per_sec: f64) -> Result<WampRun> {
    let field = |name: &str| result_field(result, name);
    let rate = field("rate").ok_or_else(|| format!("bad result line `{result}`"))?;
    let secs = field("secs").filter(|s| *s > 0.0);
    let share = |start: Option<u64>, end: Option<u64>| {
        let (start, end, secs) = (start?, end?, secs?);
        Some(end.saturating_sub(start) as f64 / ticks_per_sec / secs)
    };
    let (router_cpu, client_cpu) = match samples {
        Some(((router0, client0), (router1, client1))) => {
            (share(router0, router1), share(client0, client1))
        }
        None => (None, None),
    };
    Ok(WampRun {
        rate,
        router_cpu,
        client_cpu,
        p50_us: field("p50_us"),
        p99_us: field("p99_us"),
    })
}

// ----- the report -------------------------------------------------------

/// `12.3k`, `494k`, `850`.
fn rate_text(rate: f64) -> String {
    if rate >= 99_950.0 {
        format!("{:.0}k", rate / 1e3)
    } else if rate >= 999.5 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "?".to_owned(), |c| format!("{:.0}%", c * 100.0))
}

/// The pair's title, e.g. `fahrbahn ↔ Crossbar.io`.
fn pair_title((client, router): (ClientKind, RouterKind)) -> String {
    format!("{} ↔ {}", client.title(), router.title())
}

/// Appends the `## WAMP` section.
pub(crate) fn markdown(md: &mut String, results: &WampResults) {
    md.push_str("\n## WAMP\n\n");
    let Some(plan) = &results.plan else {
        md.push_str("Not run.\n");
        return;
    };
    let _ = writeln!(
        md,
        "Calls and events per second through a WAMP router on 127.0.0.1, for \
         every pair of client (Fahrbahn's `wamp_bench`, `bench/src/bin/wamp_bench.rs`, \
         on tokio's current-thread runtime; AutobahnPython on asyncio, \
         `interop/peers/bench_peer.py`) and router (`fahrbahn router`; Crossbar.io; \
         both as pinned in `interop/requirements.txt`), anonymous sessions in realm \
         `{REALM}`, each session on its own connection, all sessions of a run in \
         one client process, no permessage-deflate. The router is pinned to CPU 0, \
         the client to CPU 1 (when `taskset` exists). *Sequential RPC*: a callee session registers an echo \
         procedure, a caller session calls it with one integer and awaits each \
         result before the next call; p50/p99 are the latencies of those calls. \
         *{INFLIGHT} in flight*: the same with {INFLIGHT} calls outstanding at all \
         times. *Pub/sub*: one publisher publishes one integer per event without \
         acknowledge to 1 or 10 subscriber sessions, in a closed loop (it pauses \
         once {WINDOW} events ahead of the slowest subscriber and resumes at half \
         that); every subscriber checks it gets every event in order; the rate is \
         events delivered per second summed over the subscribers (the publication \
         rate times the subscribers). {} The figures in parentheses are the \
         router's and the client's CPU time over the window (user + system of the \
         whole process tree, from `/proc`) as a share of one CPU. {}",
        if plan.runs == 1 {
            format!(
                "One run of {}s after a {}s warm-up per case.",
                plan.duration.as_secs_f64(),
                plan.warmup.as_secs_f64()
            )
        } else {
            format!(
                "Median by rate of {} runs of {}s, each after a {}s warm-up.",
                plan.runs,
                plan.duration.as_secs_f64(),
                plan.warmup.as_secs_f64()
            )
        },
        if plan.quick {
            "Quick mode: WebSocket json and RawSocket msgpack only."
        } else {
            ""
        },
    );
    let _ = writeln!(
        md,
        "\nA sequential call crosses between the two CPUs four times (CALL, \
         INVOCATION, YIELD, RESULT), each time waking a process on a CPU that \
         went idle: its rate is bound by the machine's wake-up latency more than \
         by CPU time (in a VM, waking an idle vCPU can cost tens of µs, and that \
         time partly shows as CPU time of the woken process). The *one CPU* \
         variant runs the client on the router's CPU 0, for Fahrbahn and the \
         baseline only: no CPU idles in between, the processes take turns. \
         The WAMP part took {:.0}s.",
        results.elapsed.as_secs_f64()
    );

    for test in TESTS {
        let _ = write!(md, "\n### {}\n\n| client ↔ router |", test.title());
        table_head(md, &plan.cells);
        for &pair in test.pairs() {
            let _ = write!(md, "| {} |", pair_title(pair));
            for &cell in &plan.cells {
                let text = match results.cases.get(&(pair.0, pair.1, cell, test)) {
                    None => "–".to_owned(),
                    Some(None) => "failed".to_owned(),
                    Some(Some(run)) => format!(
                        "{} (router {}, client {})",
                        rate_text(run.rate),
                        percent(run.router_cpu),
                        percent(run.client_cpu)
                    ),
                };
                let _ = write!(md, " {text} |");
            }
            md.push('\n');
        }
        if test.sequential() {
            md.push_str(
                "\nLatency of the sequential calls, p50 / p99 (µs):\n\n| client ↔ router |",
            );
            table_head(md, &plan.cells);
            for &pair in test.pairs() {
                let _ = write!(md, "| {} |", pair_title(pair));
                for &cell in &plan.cells {
                    let text = match results.cases.get(&(pair.0, pair.1, cell, test)) {
                        Some(Some(WampRun {
                            p50_us: Some(p50),
                            p99_us: Some(p99),
                            ..
                        })) => format!("{p50:.0} / {p99:.0}"),
                        Some(_) => "failed".to_owned(),
                        None => "–".to_owned(),
                    };
                    let _ = write!(md, " {text} |");
                }
                md.push('\n');
            }
        }
    }

    let (ours, baseline) = (PAIRS[0], PAIRS[1]);
    let _ = write!(
        md,
        "\n### Targets: {} / {}\n\n\
         Target: at least 10× the rate of the baseline in every case, and a p99 \
         latency under 1 ms for sequential calls.\n\n\
         | case | {} | {} | ratio | 10× | p99 < 1 ms |\n|---|--:|--:|--:|---|---|\n",
        pair_title(ours),
        pair_title(baseline),
        pair_title(ours),
        pair_title(baseline),
    );
    for test in TESTS {
        for &cell in &plan.cells {
            let get = |(client, router): (ClientKind, RouterKind)| {
                results
                    .cases
                    .get(&(client, router, cell, test))
                    .copied()
                    .flatten()
            };
            let (mine, theirs) = (get(ours), get(baseline));
            let text = |run: Option<WampRun>| {
                run.map_or_else(|| "failed".to_owned(), |r| rate_text(r.rate))
            };
            let target = match (mine, theirs) {
                (Some(a), Some(b)) if b.rate > 0.0 => {
                    if a.rate >= 10.0 * b.rate {
                        "met"
                    } else {
                        "**missed**"
                    }
                }
                _ => "?",
            };
            let latency = match mine {
                _ if !test.sequential() => String::new(),
                Some(WampRun {
                    p99_us: Some(p99), ..
                }) => {
                    let verdict = if p99 < 1000.0 { "met" } else { "**missed**" };
                    format!("{verdict} ({p99:.0} µs)")
                }
                _ => "?".to_owned(),
            };
            let _ = writeln!(
                md,
                "| {} {} | {} | {} | {} | {target} | {latency} |",
                test.short(),
                cell.title(),
                text(mine),
                text(theirs),
                ratio(mine.map(|r| r.rate), theirs.map(|r| r.rate)),
            );
        }
    }
}

fn table_head(md: &mut String, cells: &[Cell]) {
    for cell in cells {
        let _ = write!(md, " {} |", cell.title());
    }
    md.push_str("\n|---|");
    md.push_str(&"--:|".repeat(cells.len()));
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let full = Plan::new(false);
        let quick = Plan::new(true);
        let count = |plan: &Plan| {
            plan.keys(RouterKind::Fahrbahn).len() + plan.keys(RouterKind::Crossbar).len()
        };
        assert_eq!(count(&full), 72);
        assert_eq!(count(&quick), 36);
        // every pair appears in quick mode
        for pair in PAIRS {
            let keys = quick.keys(pair.1);
            assert!(keys.iter().any(|k| (k.0, k.1) == pair));
        }
        assert_eq!(
            Test::PubSub10.args().join(" "),
            "--test pubsub --subscribers 10 --window 1000"
        );
        assert_eq!(Test::Pipe.args().join(" "), "--test pipe --inflight 100");
        let ports = Ports {
            websocket: 1,
            rawsocket: 2,
        };
        assert_eq!(CELLS[0].url(ports), "ws://127.0.0.1:1/ws");
        assert_eq!(CELLS[3].url(ports), "rs://127.0.0.1:2");
        assert_eq!(CELLS[3].slug(), "rs-msgpack");
        let root = cargo::workspace_root();
        assert!(root.join(PEER).is_file());
    }

    #[test]
    fn results_and_cpu() {
        let run = parse_result(
            "result rate=3064.9 count=6133 secs=2 p50_us=319.2 p99_us=685.2",
            Some(((Some(100), Some(10)), (Some(200), Some(10)))),
            100.0,
        )
        .unwrap();
        assert_eq!(run.rate, 3064.9);
        assert_eq!(run.p99_us, Some(685.2));
        assert_eq!(run.router_cpu, Some(0.5));
        assert_eq!(run.client_cpu, Some(0.0));
        let run = parse_result(
            "result rate=5 count=10 secs=2 per_subscriber=5",
            None,
            100.0,
        )
        .unwrap();
        assert_eq!((run.p50_us, run.router_cpu), (None, None));
        assert!(parse_result("result count=1", None, 100.0).is_err());
    }

    #[test]
    fn report() {
        let mut md = String::new();
        markdown(&mut md, &WampResults::default());
        assert!(md.contains("## WAMP") && md.contains("Not run."));

        let plan = Plan::new(true);
        let mut results = WampResults {
            plan: Some(plan.clone()),
            ..WampResults::default()
        };
        let run = |rate: f64, p99_us: Option<f64>| WampRun {
            rate,
            router_cpu: Some(0.85),
            client_cpu: Some(0.5),
            p50_us: p99_us.map(|p| p / 2.0),
            p99_us,
        };
        let ws = QUICK_CELLS[0];
        let ours = (ClientKind::Fahrbahn, RouterKind::Fahrbahn, ws, Test::Seq);
        let base = (ClientKind::Python, RouterKind::Crossbar, ws, Test::Seq);
        results.cases.insert(ours, Some(run(20_000.0, Some(400.0))));
        results.cases.insert(base, Some(run(1_720.0, Some(800.0))));
        let pipe = (ClientKind::Fahrbahn, RouterKind::Fahrbahn, ws, Test::Pipe);
        results.cases.insert(pipe, None);
        let mut md = String::new();
        markdown(&mut md, &results);
        assert!(md.contains("| fahrbahn ↔ fahrbahn router | 20.0k (router 85%, client 50%) |"));
        assert!(md.contains("| 200 / 400 |"), "{md}");
        assert!(
            md.contains(
                "| sequential RPC WebSocket json | 20.0k | 1.7k | 11.63× | met | met (400 µs) |"
            ),
            "{md}"
        );
        assert!(md.contains("| failed |"));
        assert_eq!(rate_text(494_322.2), "494k");
        assert_eq!(rate_text(3064.9), "3.1k");
        assert_eq!(rate_text(850.2), "850");
    }
}

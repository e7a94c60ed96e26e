//! `cargo xtask attack [--quick] [--only NAME]`: the attacks A–L of issue
//! 10, run as an attacker would, by address only, against the real
//! `fahrbahn router` (default settings) and the `echo_server_tokio`
//! example, each started fresh (release build) as a child process on
//! 127.0.0.1 for each attack.
//!
//! While an attack runs, a normal client (the *probe*: a WAMP caller of a
//! normal callee on the router, a WebSocket echo client on the echo
//! server) measures its round trips, and the target's peak resident
//! memory is read from `/proc/<pid>/status` (`VmHWM`, reset through
//! `/proc/<pid>/clear_refs` once the baseline is taken). Each attack is one
//! item of the tally: it passes when the peak stays within the baseline
//! plus the bound that the documented limits give for that attack plus a
//! fixed overhead ([`FIXED_OVERHEAD`]), when the attack's own checks hold
//! (e.g. the slow subscriber was cut off, every pending call got its
//! ERROR), and, in the full form only, when the probe's p99 round trip is
//! under [`LATENCY_BOUND`] with no stalled round trip. `--quick` uses
//! smaller counts and shorter attacks, and reports the latency without
//! counting it (CI machines are shared).
//!
//! The attacker is [`wire`]: hand-written framing on blocking std sockets.

mod cases;
mod wire;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{self, Args};
use crate::process::{describe, log_to, with_log};
use crate::router::{self, Ports, REALM};
use crate::service::Service;
use crate::{Result, Tally, cargo, interop, process};

use wire::{Conn, Dial, Serializer, Transport};

/// What the target may use on top of its baseline and the attack's bound:
/// allocator arenas and fragmentation, runtime threads, code pages touched
/// for the first time.
const FIXED_OVERHEAD: u64 = 32 << 20;

/// What one idle connection may cost the target (its task, state and
/// buffers; `cargo xtask bench` measures about 3 KiB for a plain one).
const PER_CONNECTION: u64 = 16 << 10;

/// The probe's round trip must stay under this (p99), full form only.
const LATENCY_BOUND: Duration = Duration::from_millis(10);

/// A probe round trip that takes this long counts as stalled.
const STALL: Duration = Duration::from_secs(5);

/// The router's documented defaults (`docs/limits.md`) that the bounds
/// are computed from.
mod limits {
    /// `max_message_size`.
    pub(super) const MAX_MESSAGE: u64 = 16 << 20;
    /// `outbound_queue_bytes`.
    pub(super) const OUTBOUND_QUEUE: u64 = 16 << 20;
    /// `read_high_water` (router and `WebSocket`).
    pub(super) const READ_HIGH_WATER: u64 = 1 << 20;
    /// `max_subscriptions_per_session`, `max_registrations_per_session`,
    /// `max_pending_calls_per_session`.
    pub(super) const PER_SESSION: usize = 1000;
    /// `max_uri_bytes_per_session`.
    pub(super) const URI_BYTES: u64 = 1 << 20;
    /// `Limits::max_handshake_size`.
    pub(super) const HANDSHAKE: u64 = 16 << 10;
    /// `hello_timeout_secs`.
    pub(super) const HELLO_TIMEOUT_SECS: u64 = 10;
    /// `Timeouts::close` (the close handshake before the TCP close).
    pub(super) const CLOSE_SECS: u64 = 5;
    /// `ping_interval_secs` + `ping_timeout_secs`.
    pub(super) const PING_DEAD_SECS: u64 = 45;
    /// The driver's read buffer (bytes in flight per read).
    pub(super) const READ_BUF: u64 = 64 << 10;
}

/// Options of `cargo xtask attack`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// The short form.
    pub(crate) quick: bool,
    /// Only the attacks whose name starts with one of these (`A`, `D`,
    /// `B-router`), case-insensitive.
    pub(crate) only: Vec<String>,
}

impl Options {
    pub(crate) fn parse(args: &mut Args) -> Result<Self> {
        let mut options = Self::default();
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--quick" => options.quick = true,
                "--only" => options.only.extend(
                    args.value(&flag)?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_ascii_lowercase),
                ),
                _ => return Err(cli::unknown(&flag)),
            }
        }
        Ok(options)
    }

    fn selects(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.only.is_empty() || self.only.iter().any(|only| name.starts_with(only.as_str()))
    }
}

/// The program under attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    /// `fahrbahn router` with default settings.
    Router,
    /// The `echo_server_tokio` example.
    Echo,
}

impl TargetKind {
    fn name(self) -> &'static str {
        match self {
            Self::Router => "router",
            Self::Echo => "echo",
        }
    }
}

/// The built programs.
struct Programs {
    router: PathBuf,
    echo: PathBuf,
}

impl Programs {
    fn build(kinds: &[TargetKind]) -> Result<Self> {
        let router = if kinds.contains(&TargetKind::Router) {
            interop::router_program()?
        } else {
            PathBuf::new()
        };
        let mut echo = PathBuf::new();
        if kinds.contains(&TargetKind::Echo) {
            let mut cmd = cargo::command(["build", "--release", "--package", "fahrbahn"]);
            cmd.args(["--example", "echo_server_tokio"]);
            eprintln!("==> {}", describe(&cmd));
            if !process::run(&mut cmd)? {
                return Err("building the echo_server_tokio example failed".to_owned());
            }
            echo = cargo::target_dir()?.join("release/examples/echo_server_tokio");
        }
        Ok(Self { router, echo })
    }
}

/// A running target.
pub(crate) struct Target {
    kind: TargetKind,
    service: Service,
    log: PathBuf,
    /// Router: WebSocket and RawSocket; echo: `websocket` only.
    pub(crate) ports: Ports,
}

impl Target {
    fn start(kind: TargetKind, programs: &Programs, dir: &Path) -> Result<Self> {
        let log = dir.join(format!("{}.log", kind.name()));
        let ports = router::free_ports()?;
        let mut service = match kind {
            TargetKind::Router => {
                router::spawn_fahrbahn(Command::new(&programs.router), dir, ports, &log)?
            }
            TargetKind::Echo => {
                let (out, err) = log_to(&log)?;
                let mut cmd = Command::new(&programs.echo);
                cmd.arg(format!("127.0.0.1:{}", ports.websocket))
                    .stdout(out)
                    .stderr(err);
                Service::spawn_group("echo_server_tokio", &mut cmd, Duration::from_secs(5))?
            }
        };
        let listening = [ports.websocket, ports.rawsocket];
        let listening = match kind {
            TargetKind::Router => &listening[..],
            TargetKind::Echo => &listening[..1],
        };
        for port in listening {
            service
                .wait_for_port(*port, Duration::from_secs(30))
                .map_err(|e| with_log(&log, e))?;
        }
        Ok(Self {
            kind,
            service,
            log,
            ports,
        })
    }

    /// A status field of `/proc/<pid>/status`, in bytes.
    fn status_bytes(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.service.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib << 10)
    }

    /// The resident set size now.
    pub(crate) fn rss(&self) -> u64 {
        self.status_bytes("VmRSS:").unwrap_or(0)
    }

    /// The peak resident set size since the last [`Target::reset_peak`].
    fn peak(&self) -> u64 {
        self.status_bytes("VmHWM:").unwrap_or(0).max(self.rss())
    }

    /// Nanoseconds its threads have run and waited for a CPU (summed over
    /// `/proc/<pid>/task/*/schedstat`, of the threads alive now).
    fn schedstat(&self) -> (u64, u64) {
        let dir = format!("/proc/{}/task", self.service.id());
        let mut total = (0, 0);
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path().join("schedstat")).unwrap_or_default();
            let mut fields = text
                .split_whitespace()
                .map(|f| f.parse::<u64>().unwrap_or(0));
            total.0 += fields.next().unwrap_or(0);
            total.1 += fields.next().unwrap_or(0);
        }
        total
    }

    /// Resets the peak to the current resident set size.
    fn reset_peak(&self) -> Result<()> {
        let path = format!("/proc/{}/clear_refs", self.service.id());
        std::fs::write(&path, "5").map_err(|e| format!("{path}: {e}"))
    }

    /// `None` while running, else why not.
    fn check(&mut self) -> Option<String> {
        let status = self.service.exited()?;
        Some(with_log(
            &self.log,
            format!("{} exited ({status})", self.kind.name()),
        ))
    }

    /// A WAMP JSON dial over `transport` (router).
    pub(crate) fn wamp(&self, transport: Transport) -> Dial {
        self.wamp_with(transport, Serializer::Json)
    }

    /// A WAMP dial over `transport` with `serializer` (router).
    pub(crate) fn wamp_with(&self, transport: Transport, serializer: Serializer) -> Dial {
        let port = match transport {
            Transport::WebSocket => self.ports.websocket,
            Transport::RawSocket => self.ports.rawsocket,
        };
        Dial::wamp(port, transport, serializer)
    }

    /// The plain WebSocket dial of this target: the echo server's, or a
    /// WAMP JSON one on the router.
    pub(crate) fn websocket(&self) -> Dial {
        match self.kind {
            TargetKind::Router => self.wamp(Transport::WebSocket),
            TargetKind::Echo => Dial::echo(self.ports.websocket),
        }
    }

    pub(crate) fn kind(&self) -> TargetKind {
        self.kind
    }
}

/// The probe procedure on the router.
const PROBE_PROCEDURE: &str = "attack.probe";

/// How the probe connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeMode {
    /// One connection (and session) for all round trips.
    Persistent,
    /// A new connection (handshake, HELLO) for every round trip: what a
    /// new client sees.
    Reconnect,
}

/// The normal client measuring round trips while an attack runs.
struct Probe {
    stop: Arc<AtomicBool>,
    recording: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Duration>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Probe {
    /// Starts the probe and waits for its first round trips.
    fn start(target: &Target, mode: ProbeMode) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if target.kind == TargetKind::Router {
            let callee =
                cases::Callee::start(target.wamp(Transport::WebSocket), PROBE_PROCEDURE, |args| {
                    args
                })
                .map_err(|e| format!("probe callee: {e}"))?;
            let stop_callee = stop.clone();
            threads.push(thread::spawn(move || {
                while !stop_callee.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(50));
                }
                drop(callee);
            }));
        }
        let probe = Self {
            stop,
            recording: Arc::new(AtomicBool::new(false)),
            samples: Arc::new(Mutex::new(Vec::new())),
            threads,
        };
        let dial = target.websocket();
        let kind = target.kind;
        let (stop, recording, samples) = (
            probe.stop.clone(),
            probe.recording.clone(),
            probe.samples.clone(),
        );
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut probe = probe;
        probe.threads.push(thread::spawn(move || {
            let mut conn = None;
            let mut warmup = 0;
            let mut request = 0u64;
            while !stop.load(Ordering::Relaxed) {
                request += 1;
                let start = Instant::now();
                let ok = round_trip(kind, &dial, mode, &mut conn, request).is_ok();
                let took = if ok { start.elapsed() } else { STALL };
                if !ok {
                    conn = None;
                }
                if recording.load(Ordering::Relaxed) {
                    samples.lock().unwrap_or_else(|e| e.into_inner()).push(took);
                } else if ok {
                    warmup += 1;
                    if warmup == 20 {
                        let _ = ready_tx.send(());
                    }
                }
                // pacing of a normal client, not synchronisation
                thread::sleep(Duration::from_millis(10));
            }
        }));
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "the probe got no round trips through before the attack".to_owned())?;
        Ok(probe)
    }

    /// The round trips recorded so far, taken.
    fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Stops and returns the round trips recorded.
    fn finish(mut self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One probe round trip; `conn` is kept between persistent ones.
fn round_trip(
    kind: TargetKind,
    dial: &Dial,
    mode: ProbeMode,
    conn: &mut Option<Conn>,
    request: u64,
) -> std::io::Result<()> {
    let deadline = Instant::now() + STALL;
    if conn.is_none() || mode == ProbeMode::Reconnect {
        *conn = Some(match kind {
            TargetKind::Router => Conn::join(dial, REALM)?,
            TargetKind::Echo => Conn::open(dial)?,
        });
    }
    let Some(conn) = conn.as_mut() else {
        return Err(std::io::ErrorKind::NotConnected.into());
    };
    match kind {
        TargetKind::Echo => {
            conn.send_bytes(b"probe")?;
            let reply = conn.recv_raw(deadline)?;
            if reply != b"probe" {
                return Err(std::io::Error::other("wrong echo"));
            }
        }
        TargetKind::Router => {
            conn.send(&wire::call(request, PROBE_PROCEDURE, json!([request])))?;
            loop {
                let message = conn.recv(deadline)?;
                match wire::kind(&message) {
                    (wire::RESULT, r) if r == request => break,
                    (wire::ERROR, r) if r == request => {
                        return Err(std::io::Error::other(format!("probe call: {message}")));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// What an attack reports.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Bytes above the baseline that the documented limits allow for this
    /// attack (without [`FIXED_OVERHEAD`]).
    pub(crate) bound: u64,
    /// How the bound is made up.
    pub(crate) bound_why: String,
    /// What the attack did and saw.
    pub(crate) notes: Vec<String>,
    /// Checks of the attack that failed.
    pub(crate) failures: Vec<String>,
}

impl Outcome {
    pub(crate) fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }
}

/// What an attack may use while it runs.
pub(crate) struct Ctx<'a> {
    pub(crate) target: &'a Target,
    pub(crate) quick: bool,
    /// How long a flood runs.
    pub(crate) duration: Duration,
}

impl Ctx<'_> {
    /// `quick` or `full` by form.
    pub(crate) fn scale<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// An attack on one target.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) target: TargetKind,
    pub(crate) probe: ProbeMode,
    pub(crate) run: fn(&Ctx<'_>) -> Result<Outcome>,
}

/// One row of the report.
struct Row {
    name: &'static str,
    what: &'static str,
    baseline: u64,
    peak: u64,
    limit: u64,
    bound_why: String,
    /// The target's threads during the attack: time on a CPU and time
    /// waiting for one, in CPUs (1.0: one CPU all the time).
    cpu: (f64, f64),
    /// The probe's round trips before the attack.
    idle: Vec<Duration>,
    latencies: Vec<Duration>,
    notes: Vec<String>,
    failures: Vec<String>,
    memory_ok: bool,
    latency_ok: bool,
    passed: bool,
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1 << 20))
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// p50, p99, max and the number of stalled round trips.
fn percentiles(samples: &[Duration]) -> Option<(Duration, Duration, Duration, usize)> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let stalled = sorted.iter().filter(|d| **d >= STALL).count();
    (!sorted.is_empty()).then(|| (at(0.5), at(0.99), at(1.0), stalled))
}

/// Runs the attacks.
pub(crate) fn task(options: Options) -> Tally {
    let mut tally = Tally::default();
    let cases: Vec<Case> = cases::all()
        .into_iter()
        .filter(|case| options.selects(case.name))
        .collect();
    if cases.is_empty() {
        tally.broke(format!("no attack matches {:?}", options.only));
        return tally;
    }
    let kinds: Vec<TargetKind> = cases.iter().map(|case| case.target).collect();
    let programs = match Programs::build(&kinds) {
        Ok(programs) => programs,
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };
    let dir = match cargo::target_dir().map(|t| t.join("attack")) {
        Ok(dir) => dir,
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tally.broke(format!("{}: {e}", dir.display()));
        return tally;
    }
    let form = if options.quick { "quick" } else { "full" };
    eprintln!(
        "==> attacks ({form} form): {} (logs: {})",
        cases.len(),
        dir.display()
    );
    let started = Instant::now();
    let load_before = load_average();
    let mut rows = Vec::new();
    for case in &cases {
        eprintln!(
            "\n==> {}: {} ({})",
            case.name,
            case.what,
            case.target.name()
        );
        match run_case(case, &programs, &dir, options.quick) {
            Ok(row) => {
                print_row(&row, options.quick);
                tally.record(row.passed);
                rows.push(row);
            }
            Err(e) => tally.broke(format!("{}: {e}", case.name)),
        }
    }
    let machine = format!(
        "{}; load average (1 min) {} before, {} after",
        machine(),
        load_before,
        load_average()
    );
    let table = report(&rows, options.quick, started.elapsed(), &machine);
    println!("\n{table}");
    let path = dir.join(format!("report-{form}.md"));
    match std::fs::write(&path, &table) {
        Ok(()) => eprintln!("==> report: {}", path.display()),
        Err(e) => tally.broke(format!("{}: {e}", path.display())),
    }
    eprintln!(
        "==> note: L (a callee handler that panics) is client-side: covered by \
         simulated_time.rs `a_handler_that_panics_answers_runtime_error_and_the_session_goes_on`"
    );
    tally
}

fn run_case(case: &Case, programs: &Programs, dir: &Path, quick: bool) -> Result<Row> {
    let mut target = Target::start(case.target, programs, dir)?;
    let probe = Probe::start(&target, case.probe)?;
    // The probe alone first: what the machine gives without the attack.
    probe.recording.store(true, Ordering::Relaxed);
    thread::sleep(Duration::from_secs(if quick { 1 } else { 2 })); // measuring, not synchronising
    let idle = probe.take();
    let baseline = target.rss();
    target.reset_peak()?;
    let (ran, waited) = target.schedstat();
    let attack_started = Instant::now();
    let ctx = Ctx {
        target: &target,
        quick,
        duration: Duration::from_secs(if quick { 3 } else { 10 }),
    };
    let outcome = (case.run)(&ctx);
    let peak = target.peak();
    let (ran_after, waited_after) = target.schedstat();
    let wall = attack_started.elapsed().as_nanos().max(1) as f64;
    let cpu = (
        ran_after.saturating_sub(ran) as f64 / wall,
        waited_after.saturating_sub(waited) as f64 / wall,
    );
    let latencies = probe.finish();
    if let Some(e) = target.check() {
        return Err(e);
    }
    let mut outcome = outcome?;
    let limit = baseline + outcome.bound + FIXED_OVERHEAD;
    let memory_ok = peak <= limit;
    let latency_ok = percentiles(&latencies)
        .is_some_and(|(_, p99, _, stalled)| p99 < LATENCY_BOUND && stalled == 0);
    if latencies.is_empty() {
        outcome
            .failures
            .push("the probe recorded no round trip".to_owned());
    }
    let passed = memory_ok && outcome.failures.is_empty() && (quick || latency_ok);
    Ok(Row {
        name: case.name,
        what: case.what,
        baseline,
        peak,
        limit,
        bound_why: outcome.bound_why,
        cpu,
        idle,
        latencies,
        notes: outcome.notes,
        failures: outcome.failures,
        memory_ok,
        latency_ok,
        passed,
    })
}

fn latency_cell(samples: &[Duration]) -> String {
    match percentiles(samples) {
        Some((p50, p99, max, stalled)) => {
            let mut cell = format!("{} / {} / {}", ms(p50), ms(p99), ms(max));
            if stalled > 0 {
                let _ = write!(cell, " ({stalled} stalled)");
            }
            cell
        }
        None => "none".to_owned(),
    }
}

fn cpu_cell(row: &Row) -> String {
    format!("{:.2} / {:.2}", row.cpu.0, row.cpu.1)
}

fn verdict(row: &Row, quick: bool) -> String {
    let mut parts = Vec::new();
    if !row.memory_ok {
        parts.push("memory over bound");
    }
    if !row.failures.is_empty() {
        parts.push("check failed");
    }
    if !row.latency_ok {
        parts.push(if quick { "slow (not counted)" } else { "slow" });
    }
    let head = if row.passed { "pass" } else { "FAIL" };
    if parts.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {}", parts.join(", "))
    }
}

fn print_row(row: &Row, quick: bool) {
    eprintln!(
        "    RSS {} -> peak {} MiB (limit {} MiB = baseline + {} + fixed {}); probe ms p50/p99/max {} ({} round trips; before the attack {})",
        mib(row.baseline),
        mib(row.peak),
        mib(row.limit),
        row.bound_why,
        mib(FIXED_OVERHEAD),
        latency_cell(&row.latencies),
        row.latencies.len(),
        latency_cell(&row.idle)
    );
    eprintln!("    target threads: {}", cpu_cell(row));
    for note in &row.notes {
        eprintln!("    {note}");
    }
    for failure in &row.failures {
        eprintln!("    check failed: {failure}");
    }
    eprintln!("    {}: {}", row.name, verdict(row, quick));
}

/// The first field of `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The CPU model and the number of CPUs.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cpus} CPUs")
}

fn report(rows: &[Row], quick: bool, took: Duration, machine: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| attack | baseline RSS MiB | peak RSS MiB | limit MiB (baseline + bound + {} fixed) | bound | probe round trip ms p50 / p99 / max | the same before the attack | target's CPUs running / waiting for a CPU | verdict |",
        mib(FIXED_OVERHEAD)
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            row.what,
            mib(row.baseline),
            mib(row.peak),
            mib(row.limit),
            row.bound_why,
            latency_cell(&row.latencies),
            latency_cell(&row.idle),
            cpu_cell(row),
            verdict(row, quick)
        );
    }
    out.push('\n');
    for row in rows {
        if row.notes.is_empty() && row.failures.is_empty() {
            continue;
        }
        let _ = write!(out, "- {}: {}", row.name, row.notes.join("; "));
        for failure in &row.failures {
            let _ = write!(out, "; **check failed: {failure}**");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\n{} attacks in {:.0} s ({} form) on {machine}, {}",
        rows.len(),
        took.as_secs_f64(),
        if quick { "quick" } else { "full" },
        xtask_support::now_utc()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let args: Vec<String> = ["--quick", "--only", "A,d-json", "--only=K"]
            .map(str::to_owned)
            .into();
        let options = cli::parse(Options::parse, &args).unwrap();
        assert!(options.quick);
        assert!(
            options.selects("A-ws-echo") && options.selects("D-json") && options.selects("K-echo")
        );
        assert!(!options.selects("D-cbor") && !options.selects("B-router"));
        assert!(cli::parse(Options::parse, &["--fast".to_owned()]).is_err());
    }

    #[test]
    fn every_attack_has_a_unique_name() {
        let mut names: Vec<_> = cases::all().iter().map(|case| case.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn percentiles_count_stalls() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        samples.push(STALL);
        let (p50, p99, max, stalled) = percentiles(&samples).unwrap();
        assert_eq!(
            (p50, p99, max, stalled),
            (
                Duration::from_millis(51),
                Duration::from_millis(100),
                STALL,
                1
            )
        );
        assert!(percentiles(&[]).is_none());
    }
}

//! `cargo xtask bench [--quick]`: the core micro-benchmarks (criterion) and
//! the echo benchmarks of Fahrbahn against other Rust WebSocket servers,
//! summarised in `docs/benchmarks.md`.
//!
//! The echo benchmarks run each server of the `bench` crate in turn, pinned
//! to CPU 0 (`taskset -c 0`, when taskset exists), with the closed-loop load
//! generator pinned to CPU 1; every case (binary and text, 20 B, 1 KiB,
//! 16 KiB) runs `runs` times and reports the median rate. The server's CPU
//! time over the measuring window comes from `/proc/<pid>/stat`.
//! Every micro-benchmark result and every echo case counts as one passed or
//! failed item; a benchmark that fails to run counts as failed.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::bench_instructions::{self, InstructionResults};
use crate::bench_memory::{self, MemoryResults};
use crate::bench_wamp::{self, WampResults};
use crate::cli::{self, Args};
use crate::process::{Running, describe, free_port, log_to, with_log};
use crate::report::now_utc;
use crate::{Result, Tally, cargo};

/// How long a benchmark server may take to listen.
pub(crate) const SERVER_START: Duration = Duration::from_secs(20);

/// The generated file, relative to the workspace root.
pub(crate) const BENCHMARKS: &str = "docs/benchmarks.md";

/// The report of `--quick`, relative to the target directory.
const QUICK_REPORT: &str = "bench/benchmarks-quick.md";

/// The echo servers of the `bench` crate, in report order (the first is the
/// one the ratios are for).
pub(crate) const SERVERS: [&str; 7] = [
    "fahrbahn-tokio",
    "fahrbahn-smol",
    "fahrbahn-async-std",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "ceiling",
];

/// The servers Fahrbahn is compared with in the ratio table.
const PEERS: [&str; 4] = [
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "ceiling",
];

pub(crate) const KINDS: [&str; 2] = ["binary", "text"];

/// The kind of the permessage-deflate case: compressed JSON text.
const DEFLATE: &str = "deflate";

/// The permessage-deflate servers of the `bench` crate (see its
/// `DEFLATE_SERVERS`) and their one case.
const DEFLATE_SERVERS: [&str; 2] = ["fahrbahn-tokio-deflate", "fahrbahn-smol-deflate"];
const DEFLATE_LOAD: (usize, usize) = (100, 1 << 10);
/// One load of the echo matrix: `connections`, each keeping one message of
/// `size` bytes in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Load {
    pub(crate) connections: usize,
    pub(crate) size: usize,
}

impl Load {
    const fn new(connections: usize, size: usize) -> Self {
        Self { connections, size }
    }

    /// `100 × 20 B`.
    pub(crate) fn name(self) -> String {
        format!("{} × {}", self.connections, size_name(self.size))
    }
}

/// The echo matrix of the issue: small messages over many connections, a
/// few connections with 1 KiB, and 16 KiB over 200 and 500 connections.
pub(crate) const LOADS: [Load; 4] = [
    Load::new(100, 20),
    Load::new(10, 1 << 10),
    Load::new(200, 16 << 10),
    Load::new(500, 16 << 10),
];

/// The criterion benchmark groups of fahrbahn-core, in report order.
const MICRO_GROUPS: [&str; 6] = [
    "parse_unmask",
    "build_mask",
    "utf8",
    "deflate_round_trip",
    "wamp_encode",
    "wamp_decode",
];

/// Options of `cargo xtask bench`.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// Short runs: criterion for about a second per benchmark, one echo run
    /// of 2 s per case.
    quick: bool,
    /// Skip the micro-benchmarks.
    no_micro: bool,
    /// Skip the echo benchmarks (rates, idle memory, instructions).
    no_echo: bool,
    /// Skip the instruction counts under callgrind.
    no_instructions: bool,
    /// Skip the WAMP benchmarks.
    no_wamp: bool,
    /// A note for the report, e.g. about the machine's load.
    note: Option<String>,
}

impl Options {
    /// Parses the options of `cargo xtask bench`.
    pub(crate) fn parse(args: &mut Args) -> Result<Self> {
        let mut options = Self::default();
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--quick" => options.quick = true,
                "--no-micro" => options.no_micro = true,
                "--no-echo" => options.no_echo = true,
                "--no-instructions" => options.no_instructions = true,
                "--no-wamp" => options.no_wamp = true,
                "--note" => options.note = Some(args.value(&flag)?),
                _ => return Err(cli::unknown(&flag)),
            }
        }
        Ok(options)
    }

    /// Runs per echo case, their length and the warm-up before each.
    fn echo_plan(&self) -> (usize, Duration, Duration) {
        if self.quick {
            (1, Duration::from_millis(1500), Duration::from_millis(500))
        } else {
            (3, Duration::from_secs(3), Duration::from_secs(1))
        }
    }
}

/// Runs the benchmarks and writes the report.
pub(crate) fn task(options: Options) -> Tally {
    let mut tally = Tally::default();
    let root = cargo::workspace_root();
    let target = match cargo::target_dir() {
        Ok(target) => target,
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };

    let micro = if options.no_micro {
        Vec::new()
    } else {
        run_micro(&options, &target, &mut tally)
    };
    let echo = if options.no_echo {
        EchoReport::default()
    } else {
        run_echo(&options, &target, &mut tally)
    };

    let wamp = if options.no_wamp {
        WampResults::default()
    } else {
        bench_wamp::run(options.quick, &target, &mut tally)
    };

    let header = Header {
        generated: now_utc(),
        machine: machine_info(),
    };
    let mut md = markdown(&options, &header, &micro, &echo);
    bench_wamp::markdown(&mut md, &wamp);
    md.push_str(include_str!("bench_notes.md"));
    // A quick run never replaces the full report in docs/.
    let out = if options.quick {
        target.join(QUICK_REPORT)
    } else {
        root.join(BENCHMARKS)
    };
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&out, md) {
        Ok(()) => {
            eprintln!("==> wrote {}", out.display());
            tally.pass();
        }
        Err(e) => tally.broke(format!("{}: {e}", out.display())),
    }
    tally
}

// ----- micro-benchmarks -------------------------------------------------

/// One criterion result.
#[derive(Debug, Clone)]
struct Micro {
    group: String,
    function: String,
    value: String,
    /// Median time per iteration, ns.
    median_ns: f64,
    /// Bytes or elements per iteration.
    throughput: Throughput,
}

#[derive(Debug, Clone, Copy)]
enum Throughput {
    Bytes(f64),
    Elements(f64),
}

impl Micro {
    /// Bytes/s or elements/s.
    fn per_second(&self) -> f64 {
        let n = match self.throughput {
            Throughput::Bytes(n) | Throughput::Elements(n) => n,
        };
        n / self.median_ns * 1e9
    }

    fn formatted(&self) -> String {
        let rate = self.per_second();
        match self.throughput {
            Throughput::Bytes(_) => format!("{:.2} GiB/s", rate / f64::from(1u32 << 30)),
            Throughput::Elements(_) => format!("{:.2} M/s", rate / 1e6),
        }
    }
}

fn run_micro(options: &Options, target: &Path, tally: &mut Tally) -> Vec<Micro> {
    let criterion_dir = target.join("criterion");
    // Stale results of earlier runs must not show up as this run's.
    for group in MICRO_GROUPS {
        let _ = std::fs::remove_dir_all(criterion_dir.join(group));
    }
    let mut cmd = cargo::command([
        "bench",
        "--package",
        "fahrbahn-core",
        "--bench",
        "ws",
        "--bench",
        "wamp",
        "--",
        "--noplot",
    ]);
    if options.quick {
        cmd.args(["--warm-up-time", "0.5", "--measurement-time", "1"]);
    }
    eprintln!("\n==> {}", describe(&cmd));
    match crate::process::run(&mut cmd) {
        Ok(true) => {}
        Ok(false) => tally.broke("the micro-benchmarks failed"),
        Err(e) => tally.broke(e),
    }
    let results = match read_criterion(&criterion_dir) {
        Ok(results) => results,
        Err(e) => {
            tally.broke(e);
            return Vec::new();
        }
    };
    for group in MICRO_GROUPS {
        let count = results.iter().filter(|m| m.group == group).count();
        if count == 0 {
            tally.broke(format!("no criterion results for the group {group}"));
        }
        for _ in 0..count {
            tally.pass();
        }
    }
    results
}

/// Every `*/new/benchmark.json` (with its `estimates.json`) below `dir`.
fn read_criterion(dir: &Path) -> Result<Vec<Micro>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    if let Some(micro) = read_result(&path) {
                        found.push(micro);
                    }
                } else {
                    stack.push(path);
                }
            }
        }
    }
    found.retain(|m| MICRO_GROUPS.contains(&m.group.as_str()));
    found.sort_by_key(|m| {
        let group = MICRO_GROUPS.iter().position(|g| *g == m.group);
        (group, value_rank(&m.value), m.function.clone())
    });
    Ok(found)
}

fn read_result(dir: &Path) -> Option<Micro> {
    let read = |name: &str| -> Option<Value> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        serde_json::from_str(&text).ok()
    };
    let benchmark = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let throughput = &benchmark["throughput"];
    let throughput = if let Some(n) = throughput["Bytes"].as_f64() {
        Throughput::Bytes(n)
    } else {
        Throughput::Elements(throughput["Elements"].as_f64()?)
    };
    Some(Micro {
        group: benchmark["group_id"].as_str()?.to_owned(),
        function: benchmark["function_id"].as_str()?.to_owned(),
        value: benchmark["value_str"].as_str()?.to_owned(),
        median_ns: estimates["median"]["point_estimate"].as_f64()?,
        throughput,
    })
}

/// Sort key of criterion parameter strings: sizes, then serializers.
fn value_rank(value: &str) -> (usize, String) {
    const ORDER: [&str; 7] = [
        "20B",
        "1KiB",
        "16KiB",
        "1MiB",
        "JSON",
        "MessagePack",
        "CBOR",
    ];
    let rank = ORDER
        .iter()
        .position(|v| *v == value)
        .unwrap_or(ORDER.len());
    (rank, value.to_owned())
}

// ----- echo benchmarks --------------------------------------------------

/// One echo case: implementation, kind, size.
type Case = (String, &'static str, Load);

/// One run of the load generator.
#[derive(Debug, Clone, Copy)]
struct EchoRun {
    /// Echoes per second.
    rate: f64,
    /// The server's CPU time over the window, as a share of one CPU.
    server_cpu: Option<f64>,
}

/// The median of each case's runs.
type EchoResults = BTreeMap<Case, EchoRun>;

/// What the echo servers gave: rates, idle memory and instruction counts.
#[derive(Debug, Default)]
struct EchoReport {
    rates: EchoResults,
    memory: MemoryResults,
    instructions: InstructionResults,
}

/// Builds the `bench` crate, then runs the echo rates, the idle memory and
/// the instruction counts.
fn run_echo(options: &Options, target: &Path, tally: &mut Tally) -> EchoReport {
    let mut report = EchoReport::default();
    let mut cmd = cargo::command(["build", "--release", "--package", "bench", "--bins"]);
    eprintln!("\n==> {}", describe(&cmd));
    match crate::process::run(&mut cmd) {
        Ok(true) => {}
        Ok(false) => {
            tally.broke("building the bench crate failed");
            return report;
        }
        Err(e) => {
            tally.broke(e);
            return report;
        }
    }
    let bin = target.join("release");
    let server_bin = bin.join("echo_server");
    let loadgen_bin = bin.join("loadgen");
    let log_dir = target.join("bench");
    if let Err(e) = std::fs::create_dir_all(&log_dir) {
        tally.broke(format!("{}: {e}", log_dir.display()));
        return report;
    }
    let taskset = has_taskset();
    if !taskset {
        eprintln!("note: taskset is missing, the processes are not pinned to CPUs");
    }
    report.rates = echo_rates(options, &server_bin, &loadgen_bin, &log_dir, taskset, tally);
    report.memory = bench_memory::run(&server_bin, &loadgen_bin, &log_dir, taskset, tally);
    if !options.no_instructions {
        report.instructions = bench_instructions::run(
            &server_bin,
            &loadgen_bin,
            &log_dir,
            taskset,
            options.quick,
            tally,
        );
    }
    report
}

/// The echo rates of every server and case.
fn echo_rates(
    options: &Options,
    server_bin: &Path,
    loadgen_bin: &Path,
    log_dir: &Path,
    taskset: bool,
    tally: &mut Tally,
) -> EchoResults {
    let mut results = EchoResults::new();
    let matrix: Vec<(&'static str, Load)> = KINDS
        .iter()
        .flat_map(|&kind| LOADS.map(|load| (kind, load)))
        .collect();
    let deflate_case = [(DEFLATE, Load::new(DEFLATE_LOAD.0, DEFLATE_LOAD.1))];
    let plan = SERVERS.iter().map(|&server| (server, &matrix[..])).chain(
        DEFLATE_SERVERS
            .iter()
            .map(|&server| (server, &deflate_case[..])),
    );
    for (server, cases) in plan {
        eprintln!("\n==> echo server {server}");
        let log = log_dir.join(format!("{server}.log"));
        let port = match free_port() {
            Ok(port) => port,
            Err(e) => {
                tally.broke(e);
                continue;
            }
        };
        let mut cmd = pinned(taskset, "0", server_bin);
        cmd.args([server, &format!("127.0.0.1:{port}")]);
        let started = log_to(&log).and_then(|(out, err)| {
            cmd.stdout(out).stderr(err);
            Running::spawn(server, &mut cmd)
        });
        let mut guard =
            match started.and_then(|mut g| g.wait_for_port(port, SERVER_START).map(|()| g)) {
                Ok(guard) => guard,
                Err(e) => {
                    for _ in 0..cases.len() {
                        tally.broke(with_log(&log, format!("{server}: {e}")));
                    }
                    continue;
                }
            };
        for &(kind, load) in cases {
            {
                let case = (server.to_owned(), kind, load);
                match echo_case(options, taskset, loadgen_bin, &mut guard, port, kind, load) {
                    Ok(run) => {
                        eprintln!(
                            "    {server} {kind} {}: {:.0} msg/s, server CPU {}",
                            load.name(),
                            run.rate,
                            cpu_text(run.server_cpu)
                        );
                        results.insert(case, run);
                        tally.pass();
                    }
                    Err(e) => tally.broke(with_log(
                        &log,
                        format!("{server} {kind} {}: {e}", load.name()),
                    )),
                }
            }
        }
        guard.kill();
    }
    results
}

/// Runs one case `runs` times; the median run by rate.
fn echo_case(
    options: &Options,
    taskset: bool,
    loadgen: &Path,
    server: &mut Running,
    port: u16,
    kind: &str,
    load: Load,
) -> Result<EchoRun> {
    let (runs, duration, warmup) = options.echo_plan();
    let mut done = Vec::with_capacity(runs);
    for _ in 0..runs {
        if let Some(status) = server.exited()? {
            return Err(format!("the server exited ({status})"));
        }
        let mut cmd = pinned(taskset, "1", loadgen);
        cmd.args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--connections", &load.connections.to_string()])
            .args(["--size", &load.size.to_string()])
            .args(["--warmup", &warmup.as_secs_f64().to_string()])
            .args(["--duration", &duration.as_secs_f64().to_string()]);
        if kind == DEFLATE {
            cmd.arg("--deflate");
        } else {
            cmd.args(["--kind", kind]);
        }
        done.push(load_run(&mut cmd, server.pid(), warmup + duration)?);
    }
    done.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    Ok(done[done.len() / 2])
}

/// Runs the load generator once, sampling the server's CPU time when it
/// announces the start and the end of its window.
fn load_run(cmd: &mut Command, server_pid: u32, expected: Duration) -> Result<EchoRun> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut guard = Running::spawn("loadgen", cmd)?;
    let stdout = guard.child.stdout.take().expect("stdout is piped");
    let stderr = guard.child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // CPU seconds of the server at the start and the end of the window,
    // and the result line.
    let reader = std::thread::spawn(move || {
        let (mut start, mut end, mut result) = (None, None, None);
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            match line.trim() {
                "window start" => start = cpu_seconds(server_pid),
                "window end" => end = cpu_seconds(server_pid),
                r if r.starts_with("result ") => result = Some(r.to_owned()),
                _ => {}
            }
        }
        (start, end, result)
    });
    let status = guard.wait(expected + Duration::from_secs(30), String::new);
    let (start, end, result) = reader.join().unwrap_or_default();
    let stderr = errors.join().unwrap_or_default();
    let status = status?;
    let result = result.ok_or_else(|| format!("loadgen printed no result ({status})"))?;
    if !status.success() {
        return Err(format!(
            "loadgen failed ({status}): {result}\n{}",
            stderr.trim()
        ));
    }
    let field = |name: &str| -> Option<f64> {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    };
    let rate = field("rate").ok_or_else(|| format!("bad loadgen result `{result}`"))?;
    let secs = field("secs").unwrap_or(expected.as_secs_f64());
    let server_cpu = start.zip(end).map(|(start, end)| (end - start) / secs);
    Ok(EchoRun { rate, server_cpu })
}

/// User plus system CPU time of a process so far, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat(&stat)?.1 as f64 / clock_ticks())
}

/// Parent pid and utime + stime (clock ticks) from `/proc/<pid>/stat`.
pub(crate) fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    // After the command name (in parentheses, may contain spaces): state,
    // ppid, ..., utime (14th field of the line), stime (15th).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux when that fails).
pub(crate) fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

pub(crate) fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `program`, pinned to `cpu` with taskset when it is there (taskset execs
/// the program: the pid stays the program's).
pub(crate) fn pinned(taskset: bool, cpu: &str, program: &Path) -> Command {
    if taskset {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", cpu]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

// ----- the report -------------------------------------------------------

pub(crate) fn size_name(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// The server's CPU time per echo, µs.
fn cpu_per_echo(run: &EchoRun) -> String {
    match run.server_cpu {
        Some(cpu) if run.rate > 0.0 => format!("{:.1} µs", cpu / run.rate * 1e6),
        _ => "?".to_owned(),
    }
}

fn cpu_text(cpu: Option<f64>) -> String {
    cpu.map_or_else(|| "?".to_owned(), |c| format!("{:.0}%", c * 100.0))
}

/// A command's trimmed stdout, if it ran.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// CPU model, cores, kernel and toolchain.
fn machine_info() -> Vec<(&'static str, String)> {
    let lscpu = output("lscpu", &[]).unwrap_or_default();
    let lscpu_field = |name: &str| {
        lscpu.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = lscpu_field("Model name")
        .or_else(|| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "?".to_owned());
    let cpus = lscpu_field("CPU(s)").unwrap_or_else(|| {
        std::thread::available_parallelism().map_or_else(|_| "?".to_owned(), |n| n.to_string())
    });
    let mut info = vec![("CPU", model), ("CPUs", cpus)];
    if let Some(threads) = lscpu_field("Thread(s) per core") {
        info.push(("Threads per core", threads));
    }
    if let Some(hv) = lscpu_field("Hypervisor vendor") {
        info.push(("Hypervisor", hv));
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .or_else(|_| output("uname", &["-r"]).ok_or(()))
        .unwrap_or_else(|_| "?".to_owned());
    info.push(("Kernel", kernel));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    info.push((
        "rustc",
        output(&rustc, &["-V"]).unwrap_or_else(|| "?".to_owned()),
    ));
    info
}

/// What the report says about when and where it was made.
struct Header {
    /// The date and time, e.g. `2025-03-01 14:05 UTC`.
    generated: String,
    /// The rows of the `## Machine` table.
    machine: Vec<(&'static str, String)>,
}

fn markdown(options: &Options, header: &Header, micro: &[Micro], echo: &EchoReport) -> String {
    let (runs, duration, warmup) = options.echo_plan();
    let mode = if options.quick { "quick" } else { "full" };
    let mut md = String::from(
        "# Benchmarks\n\n\
         <!-- Generated by `cargo xtask bench`; do not edit. -->\n\n",
    );
    md.push_str(&format!(
        "Generated {} by `cargo xtask bench{}` ({mode} mode). Figures depend on \
         the machine and its load; compare ratios within one report, not \
         absolute numbers across reports.\n\n",
        header.generated,
        if options.quick { " --quick" } else { "" },
    ));
    if let Some(note) = &options.note {
        md.push_str(&format!("**Note:** {note}\n\n"));
    }
    md.push_str("## Machine\n\n| | |\n|---|---|\n");
    for (key, value) in &header.machine {
        md.push_str(&format!("| {key} | {value} |\n"));
    }

    md.push_str(
        "\n## Core micro-benchmarks\n\n\
         criterion, `cargo bench -p fahrbahn-core --bench ws --bench wamp`; \
         median of the samples. Sources: `crates/fahrbahn-core/benches/`.\n",
    );
    if micro.is_empty() {
        md.push_str("\nNot run.\n");
    } else {
        micro_tables(&mut md, micro);
    }

    md.push_str(&format!(
        "\n## Echo throughput\n\n\
         Closed loop: N connections, each with one masked message in flight \
         (send, read the whole echo, check it, send again); echoes per second \
         over {}s after a {}s warm-up, median of {runs} run{}. Each server runs \
         on a single-threaded runtime without permessage-deflate, pinned to \
         CPU 0; the load generator (`bench/src/bin/loadgen.rs`, one thread) \
         is pinned to CPU 1. *CPU* is the server's user + system time over \
         the window as a share of one CPU; *µs/echo* is the server's CPU time \
         (user + system) per echoed message. `ceiling` is a hand-written server (raw TCP on \
         tokio's current-thread runtime, unfragmented frames only, no UTF-8 \
         check, no WebSocket library): the ceiling of the harness. \
         Servers: `bench/src/bin/echo_server.rs`.\n",
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        if runs == 1 { "" } else { "s" },
    ));
    if echo.rates.is_empty() {
        md.push_str("\nNot run.\n");
    } else {
        echo_tables(&mut md, &echo.rates);
        deflate_table(&mut md, &echo.rates);
    }
    bench_instructions::markdown(&mut md, &echo.instructions, options.quick);
    bench_memory::markdown(&mut md, &echo.memory);
    md
}

fn micro_tables(md: &mut String, micro: &[Micro]) {
    let tables: [(&str, &[&str]); 4] = [
        (
            "Frames (parse + unmask on the server, build + mask on the client)",
            &["parse_unmask", "build_mask"],
        ),
        (
            "UTF-8 validation (a text message through the server connection; the validators alone on the same bytes)",
            &["utf8"],
        ),
        (
            "permessage-deflate round trip (client compress + mask, server unmask + inflate + validate)",
            &["deflate_round_trip"],
        ),
        (
            "WAMP CALL encode / decode (messages per second)",
            &["wamp_encode", "wamp_decode"],
        ),
    ];
    for (title, groups) in tables {
        let rows: Vec<&Micro> = micro
            .iter()
            .filter(|m| groups.contains(&m.group.as_str()))
            .collect();
        if rows.is_empty() {
            continue;
        }
        // Columns: (group, function) in order of appearance.
        let mut columns: Vec<(&str, &str)> = Vec::new();
        let mut values: Vec<&str> = Vec::new();
        for m in &rows {
            if !columns.contains(&(m.group.as_str(), m.function.as_str())) {
                columns.push((m.group.as_str(), m.function.as_str()));
            }
            if !values.contains(&m.value.as_str()) {
                values.push(m.value.as_str());
            }
        }
        columns.sort_by_key(|(g, _)| groups.iter().position(|x| x == g));
        let label = |(g, f): (&str, &str)| {
            if groups.len() == 1 {
                f.to_owned()
            } else {
                g.to_owned()
            }
        };
        let utf8 = groups == ["utf8"];
        md.push_str(&format!("\n### {title}\n\n| |"));
        for &column in &columns {
            md.push_str(&format!(" {} |", label(column)));
        }
        if utf8 {
            md.push_str(" fahrbahn / simdutf8 | fahrbahn / std |");
        }
        md.push_str("\n|---|");
        md.push_str(&"--:|".repeat(columns.len() + if utf8 { 2 } else { 0 }));
        md.push('\n');
        for value in values {
            let find = |(g, f): (&str, &str)| {
                rows.iter()
                    .find(|m| m.group == g && m.function == f && m.value == value)
            };
            md.push_str(&format!("| {value} |"));
            for &column in &columns {
                let cell = find(column).map_or_else(|| "–".to_owned(), |m| m.formatted());
                md.push_str(&format!(" {cell} |"));
            }
            if utf8 {
                let rate = |f| find(("utf8", f)).map(|m| m.per_second());
                let ours = rate("fahrbahn_text_message");
                for peer in ["simdutf8_basic", "std_from_utf8"] {
                    md.push_str(&format!(" {} |", ratio(ours, rate(peer))));
                }
            }
            md.push('\n');
        }
    }
}

pub(crate) fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".to_owned(),
    }
}

fn echo_tables(md: &mut String, echo: &EchoResults) {
    let get =
        |server: &str, kind: &'static str, load: Load| echo.get(&(server.to_owned(), kind, load));
    for kind in KINDS {
        md.push_str(&format!(
            "\n### {kind} messages: thousand echoes/s (server CPU, server CPU µs/echo)\n\n| server |"
        ));
        for load in LOADS {
            md.push_str(&format!(" {} |", load.name()));
        }
        md.push_str("\n|---|");
        md.push_str(&"--:|".repeat(LOADS.len()));
        md.push('\n');
        for server in SERVERS {
            md.push_str(&format!("| {server} |"));
            for load in LOADS {
                let cell = get(server, kind, load).map_or_else(
                    || "failed".to_owned(),
                    |run| {
                        format!(
                            "{:.1}k ({}, {})",
                            run.rate / 1e3,
                            cpu_text(run.server_cpu),
                            cpu_per_echo(run)
                        )
                    },
                );
                md.push_str(&format!(" {cell} |"));
            }
            md.push('\n');
        }
    }
    let ours = SERVERS[0];
    md.push_str(&format!(
        "\n### Ratios: {ours} / peer (echoes per second; in parentheses the peer's server CPU time per echo over ours: above 1 means we use less)\n\n| case |"
    ));
    for peer in PEERS {
        md.push_str(&format!(" vs {peer} |"));
    }
    md.push_str(" target |\n|---|");
    md.push_str(&"--:|".repeat(PEERS.len()));
    md.push_str("---|\n");
    for kind in KINDS {
        for load in LOADS {
            md.push_str(&format!("| {kind} {} |", load.name()));
            let mine = get(ours, kind, load);
            for peer in PEERS {
                let theirs = get(peer, kind, load);
                let rate = ratio(mine.map(|r| r.rate), theirs.map(|r| r.rate));
                let per_cpu = |r: &EchoRun| r.server_cpu.filter(|c| *c > 0.0).map(|c| r.rate / c);
                let efficiency = ratio(mine.and_then(per_cpu), theirs.and_then(per_cpu));
                md.push_str(&format!(" {rate} ({efficiency}) |"));
            }
            md.push_str(&format!(" {} |\n", rate_verdict(echo, kind, load)));
        }
    }
}

/// The echo-rate targets of a case: at least the fastest peer library, and
/// at 16 KiB at least 1.10× fastwebsockets.
fn rate_verdict(echo: &EchoResults, kind: &'static str, load: Load) -> String {
    let get =
        |server: &str, kind: &'static str, load: Load| echo.get(&(server.to_owned(), kind, load));
    let Some(mine) = get(SERVERS[0], kind, load).map(|r| r.rate) else {
        return String::new();
    };
    let libraries = ["tokio-tungstenite", "fastwebsockets", "tokio-websockets"];
    let fastest = libraries
        .iter()
        .filter_map(|p| get(p, kind, load).map(|r| (r.rate, *p)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut verdict = match fastest {
        Some((rate, peer)) if mine >= rate => format!("≥ fastest ({peer}): met"),
        Some((rate, peer)) => format!("≥ fastest ({peer}): **missed** ({:.2}×)", mine / rate),
        None => String::new(),
    };
    if load.size >= 16 << 10 {
        if let Some(fast) = get("fastwebsockets", kind, load).map(|r| r.rate) {
            let met = if mine >= 1.10 * fast {
                "met"
            } else {
                "**missed**"
            };
            verdict.push_str(&format!("; ≥ 1.10× fastwebsockets: {met}"));
        }
    }
    verdict
}

/// The permessage-deflate case.
fn deflate_table(md: &mut String, echo: &EchoResults) {
    let load = Load::new(DEFLATE_LOAD.0, DEFLATE_LOAD.1);
    md.push_str(&format!(
        "\n### permessage-deflate: {} of JSON text\n\n\
         The load generator offers `permessage-deflate; client_no_context_takeover; \
         server_no_context_takeover`, sends JSON records compressed once up front and \
         inflates and checks every echo; the servers compress at level 1. No peer \
         crate of this report is in the table: tokio-tungstenite 0.30, fastwebsockets \
         0.10 and tokio-websockets 0.13 do not implement permessage-deflate, and \
         soketto 0.8 (tried) fails to inflate every message when the workspace's \
         `flate2` uses the zlib-rs backend (`incomplete deflate stream`).\n\n\
         | server | thousand echoes/s | server CPU | server CPU µs/echo |\n|---|--:|--:|--:|\n",
        load.name()
    ));
    for server in DEFLATE_SERVERS {
        match echo.get(&(server.to_owned(), DEFLATE, load)) {
            Some(run) => {
                md.push_str(&format!(
                    "| {server} | {:.1}k | {} | {} |\n",
                    run.rate / 1e3,
                    cpu_text(run.server_cpu),
                    cpu_per_echo(run)
                ));
            }
            None => md.push_str(&format!("| {server} | failed | | |\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ratios() {
        assert_eq!(size_name(20), "20 B");
        assert_eq!(size_name(1024), "1 KiB");
        assert_eq!(size_name(16 << 10), "16 KiB");
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), None), "–");
    }

    #[test]
    fn proc_stat_fields() {
        let stat = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 250 30 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some((7, 280)));
        assert_eq!(parse_stat("42 (a) S 7"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn rate_targets() {
        let load = LOADS[2];
        let run = |rate| EchoRun {
            rate,
            server_cpu: Some(0.5),
        };
        let mut echo = EchoResults::new();
        echo.insert((SERVERS[0].to_owned(), "binary", load), run(120.0));
        echo.insert(("fastwebsockets".to_owned(), "binary", load), run(100.0));
        echo.insert(("tokio-websockets".to_owned(), "binary", load), run(80.0));
        let verdict = rate_verdict(&echo, "binary", load);
        assert_eq!(
            verdict,
            "≥ fastest (fastwebsockets): met; ≥ 1.10× fastwebsockets: met"
        );
        echo.insert(("tokio-websockets".to_owned(), "binary", load), run(130.0));
        assert!(rate_verdict(&echo, "binary", load).contains("**missed** (0.92×)"));
        assert_eq!(cpu_per_echo(&run(100.0)), "5000.0 µs");
    }

    #[test]
    fn report_without_results() {
        let header = Header {
            generated: "2025-03-01 14:05 UTC".to_owned(),
            machine: vec![("CPUs", "2".to_owned())],
        };
        let md = markdown(&Options::default(), &header, &[], &EchoReport::default());
        assert!(md.contains("Generated 2025-03-01 14:05 UTC by `cargo xtask bench`"));
        assert!(md.contains("## Machine") && md.contains("| CPUs | 2 |"));
        assert!(md.contains("Not run."));
    }
}

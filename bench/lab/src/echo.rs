//! The echo benchmarks: each server of the `bench` crate in turn, pinned
//! to CPU 0 (`taskset -c 0`, when taskset exists), with the closed-loop
//! load generator pinned to CPU 1; every case (binary and text, 20 B,
//! 1 KiB, 16 KiB) runs `runs` times and reports the median rate. The
//! server's CPU time over the measuring window comes from
//! `/proc/<pid>/stat`. Then the idle memory ([`crate::memory`]) and the
//! instruction counts ([`crate::instructions`]) of the same servers.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use xtask_support::process::{Running, free_port, log_to, with_log};
use xtask_support::{Result, Tally};

use crate::cpu::{cpu_seconds, has_taskset, pinned};
use crate::instructions::{self, InstructionResults};
use crate::matrix::{
    DEFLATE, DEFLATE_LOAD, DEFLATE_SERVERS, KINDS, LOADS, Load, PEERS, SERVER_START, SERVERS,
};
use crate::memory::{self, MemoryResults};
use crate::report::ratio;
use crate::{Options, Tools, result_field};

/// One echo case: implementation, kind, size.
type Case = (String, &'static str, Load);

/// One run of the load generator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EchoRun {
    /// Echoes per second.
    rate: f64,
    /// The server's CPU time over the window, as a share of one CPU.
    server_cpu: Option<f64>,
}

/// The median of each case's runs.
pub(crate) type EchoResults = BTreeMap<Case, EchoRun>;

/// What the echo servers gave: rates, idle memory and instruction counts.
#[derive(Debug, Default)]
pub(crate) struct EchoReport {
    pub(crate) rates: EchoResults,
    pub(crate) memory: MemoryResults,
    pub(crate) instructions: InstructionResults,
}

/// Builds the `bench` crate (through `tools`), then runs the echo rates,
/// the idle memory and the instruction counts.
pub(crate) fn run(
    options: &Options,
    tools: &dyn Tools,
    target: &Path,
    tally: &mut Tally,
) -> EchoReport {
    let mut report = EchoReport::default();
    let programs = match tools.echo_programs() {
        Ok(programs) => programs,
        Err(e) => {
            tally.broke(e);
            return report;
        }
    };
    let server_bin = programs.server;
    let loadgen_bin = programs.loadgen;
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
    report.memory = memory::run(&server_bin, &loadgen_bin, &log_dir, taskset, tally);
    if !options.no_instructions {
        report.instructions = instructions::run(
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
    parse_result(&result, start.zip(end), expected)
}

/// An [`EchoRun`] from the load generator's `result ...` line and the
/// server's CPU seconds at the start and the end of the window; the window
/// lasts `secs=` of the line, else `expected`.
fn parse_result(result: &str, cpu: Option<(f64, f64)>, expected: Duration) -> Result<EchoRun> {
    let field = |name: &str| result_field(result, name);
    let rate = field("rate").ok_or_else(|| format!("bad loadgen result `{result}`"))?;
    let secs = field("secs").unwrap_or(expected.as_secs_f64());
    let server_cpu = cpu.map(|(start, end)| (end - start) / secs);
    Ok(EchoRun { rate, server_cpu })
}

/// The server's CPU time per echo, µs.
fn cpu_per_echo(run: &EchoRun) -> String {
    match run.server_cpu {
        Some(cpu) if run.rate > 0.0 => format!("{:.1} µs", cpu / run.rate * 1e6),
        _ => "?".to_owned(),
    }
}

pub(crate) fn cpu_text(cpu: Option<f64>) -> String {
    cpu.map_or_else(|| "?".to_owned(), |c| format!("{:.0}%", c * 100.0))
}

pub(crate) fn tables(md: &mut String, echo: &EchoResults) {
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
pub(crate) fn deflate_table(md: &mut String, echo: &EchoResults) {
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
    fn loadgen_results() {
        let expected = Duration::from_secs(4);
        let run = parse_result("result rate=1500.5 secs=2", Some((1.0, 2.0)), expected).unwrap();
        assert_eq!((run.rate, run.server_cpu), (1500.5, Some(0.5)));
        let run = parse_result("result rate=10", Some((1.0, 3.0)), expected).unwrap();
        assert_eq!(run.server_cpu, Some(0.5));
        let run = parse_result("result rate=10 secs=2", None, expected).unwrap();
        assert_eq!(run.server_cpu, None);
        assert!(parse_result("result secs=2", None, expected).is_err());
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
}

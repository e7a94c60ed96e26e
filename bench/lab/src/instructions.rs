//! User-space instructions per echoed message, counted by callgrind: each
//! echo server of the `bench` crate runs under `valgrind --tool=callgrind`
//! twice per case, once echoing `m1` and once `m2` messages per connection
//! (the load generator's `--messages` mode), and exits when its last
//! connection ends. The difference of the two totals divided by the
//! difference of the echoes is the cost of one echo: start-up, handshakes
//! and shutdown cancel out. Counts are deterministic, so unlike the echo
//! rates they do not depend on the machine's load.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use xtask_support::process::{Running, free_port, with_log};
use xtask_support::{Result, Tally};

use crate::cpu::pinned;
use crate::matrix::{KINDS, LOADS, Load, SERVERS};
use crate::report::ratio;

/// The target of the issue: at most this share of fastwebsockets'
/// instructions per echo.
const TARGET_VS_FASTWEBSOCKETS: f64 = 0.7;

/// One case: server, kind, load.
type Case = (String, &'static str, Load);

/// Instructions per echoed message, by case.
pub(crate) type InstructionResults = BTreeMap<Case, f64>;

/// Whether valgrind is there.
pub(crate) fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Messages per connection of the two runs of a case: enough echoes that
/// the difference dwarfs any noise, few enough for callgrind's pace.
fn plan(load: Load, quick: bool) -> (u64, u64) {
    let per_connection = |total: u64| (total / load.connections as u64).max(1);
    let total = match (load.size, quick) {
        (s, false) if s <= 1 << 10 => 4000,
        (_, false) => 2000,
        (s, true) if s <= 1 << 10 => 1000,
        (_, true) => 500,
    };
    let extra = per_connection(total);
    (2, 2 + extra)
}

/// Counts every case; each counts as one passed or failed item. Without
/// valgrind the whole part counts as failed.
pub(crate) fn run(
    server_bin: &Path,
    loadgen_bin: &Path,
    log_dir: &Path,
    taskset: bool,
    quick: bool,
    tally: &mut Tally,
) -> InstructionResults {
    let mut results = InstructionResults::new();
    if !available() {
        tally.broke("valgrind is not installed: no instruction counts (apt install valgrind)");
        return results;
    }
    eprintln!("\n==> instructions per echo (callgrind)");
    for server in SERVERS {
        for kind in KINDS {
            for load in LOADS {
                let name = format!("{server}-{kind}-{}x{}", load.connections, load.size);
                let log = log_dir.join(format!("callgrind-{name}.log"));
                match count_case(
                    server,
                    kind,
                    load,
                    quick,
                    server_bin,
                    loadgen_bin,
                    log_dir,
                    taskset,
                ) {
                    Ok(per_echo) => {
                        eprintln!(
                            "    {server} {kind} {}: {per_echo:.0} instructions per echo",
                            load.name()
                        );
                        results.insert((server.to_owned(), kind, load), per_echo);
                        tally.pass();
                    }
                    Err(e) => tally.broke(with_log(
                        &log,
                        format!("{server} {kind} {} under callgrind: {e}", load.name()),
                    )),
                }
            }
        }
    }
    results
}

#[allow(clippy::too_many_arguments, reason = "one call site, all plain inputs")]
fn count_case(
    server: &str,
    kind: &str,
    load: Load,
    quick: bool,
    server_bin: &Path,
    loadgen_bin: &Path,
    log_dir: &Path,
    taskset: bool,
) -> Result<f64> {
    let (m1, m2) = plan(load, quick);
    let name = format!("{server}-{kind}-{}x{}", load.connections, load.size);
    let echoes = ((m2 - m1) * load.connections as u64) as f64;
    // A runtime's idle work (timers, wake-ups) varies a little between
    // runs; on a loaded machine it can outweigh the short form's extra
    // echoes. The pair is measured again once before giving up.
    let mut attempt = 0;
    let (t1, t2) = loop {
        let mut totals = Vec::with_capacity(2);
        for messages in [m1, m2] {
            let out = log_dir.join(format!("callgrind-{name}-{messages}.out"));
            let log = log_dir.join(format!("callgrind-{name}.log"));
            totals.push(count_once(
                server,
                kind,
                load,
                messages,
                server_bin,
                loadgen_bin,
                &out,
                &log,
                taskset,
            )?);
        }
        let (t1, t2) = (totals[0], totals[1]);
        attempt += 1;
        if t2 > t1 {
            break (t1, t2);
        }
        if attempt == 2 {
            return Err(format!(
                "the longer run counted fewer instructions ({t2} <= {t1}), twice"
            ));
        }
        eprintln!(
            "    {name}: the longer run counted fewer instructions ({t2} <= {t1}); measuring again"
        );
    };
    Ok((t2 - t1) as f64 / echoes)
}

/// One run under callgrind: the server's total instructions.
#[allow(clippy::too_many_arguments, reason = "one call site, all plain inputs")]
fn count_once(
    server: &str,
    kind: &str,
    load: Load,
    messages: u64,
    server_bin: &Path,
    loadgen_bin: &Path,
    out: &Path,
    log: &Path,
    taskset: bool,
) -> Result<u64> {
    let _ = std::fs::remove_file(out);
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = pinned(taskset, "0", Path::new("valgrind"));
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(format!("--log-file={}", log.display()))
        .arg(server_bin)
        .args([server, &addr, "--exit-after", &load.connections.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut guard = Running::spawn(server, &mut cmd)?;
    // Wait for the server's "listening" line: a probe connection would
    // count as one of the connections it exits after.
    let stderr = guard.child.stderr.take().expect("stderr is piped");
    let (listening, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if line.contains("listening") {
                let _ = listening.send(());
            }
        }
    });
    if ready.recv_timeout(Duration::from_secs(60)).is_err() {
        return Err("the server did not start listening under valgrind".into());
    }
    let mut load_cmd = pinned(taskset, "1", loadgen_bin);
    load_cmd
        .args(["--addr", &addr])
        .args(["--connections", &load.connections.to_string()])
        .args(["--size", &load.size.to_string(), "--kind", kind])
        .args(["--messages", &messages.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut loadgen = Running::spawn("loadgen", &mut load_cmd)?;
    let status = loadgen.wait(Duration::from_secs(600), String::new)?;
    if !status.success() {
        return Err(format!("the load generator failed ({status})"));
    }
    let status = guard.wait(Duration::from_secs(60), String::new)?;
    if !status.success() {
        return Err(format!("the server did not exit cleanly ({status})"));
    }
    read_total(out)
}

/// The `summary:` (or `totals:`) line of a callgrind output file.
fn read_total(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    total_of(&text)
        .ok_or_else(|| format!("{}: no instruction total", PathBuf::from(path).display()))
}

fn total_of(callgrind_out: &str) -> Option<u64> {
    callgrind_out.lines().find_map(|l| {
        let rest = l
            .strip_prefix("summary:")
            .or_else(|| l.strip_prefix("totals:"))?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The `## Instructions per echo` section.
pub(crate) fn markdown(md: &mut String, results: &InstructionResults, quick: bool) {
    md.push_str(
        "\n## Instructions per echo\n\n\
         User-space instructions per echoed message under `valgrind \
         --tool=callgrind` (`perf stat -e instructions` is not supported on \
         this VM): each server runs the same echo workload twice with a \
         fixed number of messages per connection (the load generator's \
         `--messages` mode) and exits after its last connection; the \
         difference of the two totals over the difference of the echoes is \
         the cost of one echo, without start-up and handshakes. Counts are \
         deterministic, so they do not depend on the machine's load. \
         Targets: at most 0.7× fastwebsockets' on every case, text within \
         5% of binary.",
    );
    if quick {
        md.push_str(" Quick mode: fewer messages per run.");
    }
    md.push('\n');
    if results.is_empty() {
        md.push_str("\nNot run.\n");
        return;
    }
    let get = |server: &str, kind: &'static str, load: Load| {
        results.get(&(server.to_owned(), kind, load)).copied()
    };
    md.push_str("\n| server |");
    for kind in KINDS {
        for load in LOADS {
            md.push_str(&format!(" {kind} {} |", load.name()));
        }
    }
    md.push_str("\n|---|");
    md.push_str(&"--:|".repeat(KINDS.len() * LOADS.len()));
    md.push('\n');
    for server in SERVERS {
        md.push_str(&format!("| {server} |"));
        for kind in KINDS {
            for load in LOADS {
                let cell = get(server, kind, load).map_or_else(|| "failed".to_owned(), count_text);
                md.push_str(&format!(" {cell} |"));
            }
        }
        md.push('\n');
    }

    let ours = SERVERS[0];
    md.push_str(&format!(
        "\n### Ratios of {ours}\n\n\
         | case | / fastwebsockets (target ≤ {TARGET_VS_FASTWEBSOCKETS}) | / tokio-websockets | \
         / tokio-tungstenite | / ceiling | text / binary (target ≤ 1.05) |\n\
         |---|--:|--:|--:|--:|--:|\n"
    ));
    for kind in KINDS {
        for load in LOADS {
            let mine = get(ours, kind, load);
            let fast = get("fastwebsockets", kind, load);
            let verdict = match (mine, fast) {
                (Some(a), Some(b)) if a <= b * TARGET_VS_FASTWEBSOCKETS => " met",
                (Some(_), Some(_)) => " missed",
                _ => "",
            };
            let text_binary = if kind == "text" {
                let binary = get(ours, "binary", load);
                let verdict = match (mine, binary) {
                    (Some(t), Some(b)) if t <= b * 1.05 => " met",
                    (Some(_), Some(_)) => " missed",
                    _ => "",
                };
                format!("{}{verdict}", ratio(mine, binary))
            } else {
                String::new()
            };
            md.push_str(&format!(
                "| {kind} {} | {}{verdict} | {} | {} | {} | {text_binary} |\n",
                load.name(),
                ratio(mine, fast),
                ratio(mine, get("tokio-websockets", kind, load)),
                ratio(mine, get("tokio-tungstenite", kind, load)),
                ratio(mine, get("ceiling", kind, load)),
            ));
        }
    }
}

fn count_text(n: f64) -> String {
    if n >= 10_000.0 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_line() {
        let out = "version: 1\ncmd: x\nevents: Ir\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(total_of(out), Some(123_456));
        assert_eq!(total_of("events: Ir\n"), None);
    }

    #[test]
    fn plans_grow() {
        for load in LOADS {
            for quick in [false, true] {
                let (m1, m2) = plan(load, quick);
                assert!(m2 > m1 && m1 > 0);
            }
        }
    }
}

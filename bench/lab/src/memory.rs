//! Resident memory per idle connection: each echo server of the `bench`
//! crate holds [`IDLE_CONNECTIONS`] upgraded, silent connections while its
//! resident set size (`VmRSS` in `/proc/<pid>/status`) is read; the growth
//! over the freshly started server, divided by the connections, is the
//! figure.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread::sleep;
use std::time::Duration;

use xtask_support::process::{Running, free_port, log_to, with_log};
use xtask_support::{Result, Tally};

use crate::cpu::pinned;
use crate::matrix::{SERVER_START, SERVERS};
use crate::report::ratio;

/// Connections held open, at most (fewer when the open-files limit is
/// lower: the load generator needs one descriptor per connection).
pub(crate) const IDLE_CONNECTIONS: usize = 10_000;

/// The target of the issue, bytes per idle connection.
const TARGET: f64 = 4096.0;

/// One server's measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleMemory {
    pub(crate) connections: usize,
    /// Resident set of the server before the connections, KiB.
    pub(crate) before_kib: u64,
    /// Resident set with every connection open, KiB.
    pub(crate) after_kib: u64,
}

impl IdleMemory {
    /// Resident bytes per idle connection.
    pub(crate) fn per_connection(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 * 1024.0 / self.connections as f64
    }
}

/// The measurements by server.
pub(crate) type MemoryResults = BTreeMap<String, IdleMemory>;

/// Measures every server; each one counts as one passed or failed item.
pub(crate) fn run(
    server_bin: &Path,
    loadgen_bin: &Path,
    log_dir: &Path,
    taskset: bool,
    tally: &mut Tally,
) -> MemoryResults {
    let connections = IDLE_CONNECTIONS.min(open_files_limit().saturating_sub(64));
    eprintln!("\n==> idle memory: {connections} idle connections per server");
    let mut results = MemoryResults::new();
    for server in SERVERS {
        let log = log_dir.join(format!("{server}-idle.log"));
        match measure(server, server_bin, loadgen_bin, &log, taskset, connections) {
            Ok(m) => {
                eprintln!(
                    "    {server}: {} KiB -> {} KiB, {:.0} B per idle connection",
                    m.before_kib,
                    m.after_kib,
                    m.per_connection()
                );
                results.insert(server.to_owned(), m);
                tally.pass();
            }
            Err(e) => tally.broke(with_log(&log, format!("{server} idle memory: {e}"))),
        }
    }
    results
}

fn measure(
    server: &str,
    server_bin: &Path,
    loadgen_bin: &Path,
    log: &Path,
    taskset: bool,
    connections: usize,
) -> Result<IdleMemory> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = pinned(taskset, "0", server_bin);
    cmd.args([server, &addr]);
    let (out, err) = log_to(log)?;
    cmd.stdout(out).stderr(err);
    let mut guard = Running::spawn(server, &mut cmd)?;
    guard.wait_for_port(port, SERVER_START)?;
    sleep(Duration::from_millis(300));
    let before_kib = resident_kib(guard.pid())?;

    let mut load = pinned(taskset, "1", loadgen_bin);
    load.args(["--addr", &addr, "--idle"])
        .args(["--connections", &connections.to_string()])
        .args(["--duration", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut loadgen = Running::spawn("loadgen", &mut load)?;
    let stdout = loadgen.child.stdout.take().expect("stdout is piped");
    let stderr = loadgen.child.stderr.take().expect("stderr is piped");
    let (opened, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if line.starts_with("idle open") {
                let _ = opened.send(());
            }
        }
    });
    if ready.recv_timeout(Duration::from_secs(90)).is_err() {
        loadgen.kill();
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()).take(5) {
            text.push_str(&line);
            text.push('\n');
        }
        return Err(format!(
            "the load generator did not open its connections: {}",
            text.trim()
        ));
    }
    // Let the server finish reading every handshake.
    sleep(Duration::from_secs(1));
    let after_kib = resident_kib(guard.pid())?;
    if let Some(status) = guard.exited()? {
        return Err(format!("the server exited ({status})"));
    }
    loadgen.kill();
    guard.kill();
    Ok(IdleMemory {
        connections,
        before_kib,
        after_kib,
    })
}

/// `VmRSS` of a process, KiB.
fn resident_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    vm_rss_kib(&status).ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// `VmRSS` from the text of `/proc/<pid>/status`, KiB.
fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The soft limit of open files of this process (children inherit it).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| soft_open_files_limit(&limits))
        .unwrap_or(1024)
}

/// The soft limit of open files from the text of `/proc/<pid>/limits`.
fn soft_open_files_limit(limits: &str) -> Option<usize> {
    limits.lines().find_map(|l| {
        let rest = l.strip_prefix("Max open files")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The `## Idle connections` section.
pub(crate) fn markdown(md: &mut String, results: &MemoryResults) {
    let connections = results.values().map(|m| m.connections).max();
    md.push_str(&format!(
        "\n## Idle connections\n\n\
         Resident memory per idle connection: each server (as in the echo \
         benchmarks) holds {} upgraded connections that send nothing; the \
         growth of its resident set (`VmRSS`) over the freshly started \
         server, divided by the connections. Target: at most 4 KiB per \
         connection.\n",
        connections.map_or_else(|| "N".to_owned(), |n| n.to_string()),
    ));
    if results.is_empty() {
        md.push_str("\nNot run.\n");
        return;
    }
    md.push_str(
        "\n| server | RSS before | RSS with the connections | per idle connection | \
         fahrbahn-tokio / server |\n|---|--:|--:|--:|--:|\n",
    );
    let ours = results.get(SERVERS[0]).map(IdleMemory::per_connection);
    for server in SERVERS {
        let Some(m) = results.get(server) else {
            md.push_str(&format!("| {server} | failed | | | |\n"));
            continue;
        };
        let per = m.per_connection();
        let mark = if server.starts_with("fahrbahn") {
            if per <= TARGET {
                " (target met)"
            } else {
                " (target missed)"
            }
        } else {
            ""
        };
        md.push_str(&format!(
            "| {server} | {:.1} MiB | {:.1} MiB | {:.2} KiB{mark} | {} |\n",
            m.before_kib as f64 / 1024.0,
            m.after_kib as f64 / 1024.0,
            per / 1024.0,
            ratio(ours, Some(per)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_set_and_limits() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t1\n";
        assert_eq!(vm_rss_kib(status), Some(1234));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63408                63408                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_open_files_limit(limits), Some(1024));
        assert_eq!(soft_open_files_limit("Max processes 5 5\n"), None);
    }

    #[test]
    fn per_connection_bytes() {
        let m = IdleMemory {
            connections: 1000,
            before_kib: 2000,
            after_kib: 4000,
        };
        assert!((m.per_connection() - 2048.0).abs() < 1e-9);
    }
}

//! `cargo xtask interop`: Fahrbahn's WAMP client against Crossbar.io and
//! AutobahnPython.
//!
//! Starts a Crossbar.io router (installed into a venv on first use, see
//! [`crossbar::Venv`]) on free ports, one AutobahnPython peer
//! (`interop/peers/peer.py`) per run, and then runs the `wamp_interop` example
//! of the `fahrbahn` crate once per cell of the matrix (runtime, serializer,
//! transport):
//!
//! ```text
//! wamp_interop --runtime R --url ws://127.0.0.1:P/ws|rs://127.0.0.1:P
//!              --serializer json|msgpack|cbor [--batched] --prefix PREFIX --realm realm1
//! ```
//!
//! It prints one line per scenario, `PASS <name>` or `FAIL <name>: <reason>`,
//! and exits non-zero if any failed; each line is one passed or failed item,
//! and a run that breaks (crashes, times out, prints nothing, exits non-zero
//! without a `FAIL` line) counts as one more failure. The router, the peers
//! and every run log to `target/interop/run/`, which is emptied first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::autobahn::RUNTIMES;
use crate::cli::{self, Args};
use crate::crossbar::{Crossbar, Ports, Venv};
use crate::process::{Running, free_port, log_to, with_log};
use crate::service::Service;
use crate::{Result, Tally, cargo};

const PROGRAM_PACKAGE: &str = "fahrbahn";
const PROGRAM_EXAMPLE: &str = "wamp_interop";
const PROGRAM_FEATURES: &str = "tokio,smol,async-std";
/// Environment variable naming a prebuilt program to use instead of building
/// the example (any program with the same command line works).
const PROGRAM_VAR: &str = "FAHRBAHN_INTEROP_BIN";

/// The peer script, relative to the workspace root.
const PEER: &str = "interop/peers/peer.py";
const REALM: &str = "realm1";

/// How long a peer may take to join and register (they start together).
const PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a peer may take to leave after SIGTERM.
const PEER_GRACE: Duration = Duration::from_secs(5);
/// Time limit for one run of the program.
const RUN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Options of `cargo xtask interop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    runtimes: Vec<&'static str>,
}

impl Default for Options {
    /// Every runtime.
    fn default() -> Self {
        Self {
            runtimes: RUNTIMES.to_vec(),
        }
    }
}

impl Options {
    /// Parses the options of `cargo xtask interop`.
    pub(crate) fn parse(args: &mut Args) -> Result<Self> {
        let mut options = Self::default();
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--runtime" => {
                    let value = args.value(&flag)?;
                    options.runtimes = match RUNTIMES.iter().find(|r| **r == value) {
                        Some(runtime) => vec![*runtime],
                        None if value == "all" => RUNTIMES.to_vec(),
                        None => {
                            return Err(format!(
                                "--runtime must be one of {} or all, not `{value}`",
                                RUNTIMES.join(", ")
                            ));
                        }
                    }
                }
                _ => return Err(cli::unknown(&flag)),
            }
        }
        Ok(options)
    }
}

/// The step of `cargo xtask test`: the default matrix, as (name, run).
pub(crate) fn steps_for_test() -> Vec<(String, Box<dyn FnOnce() -> Tally>)> {
    let step: Box<dyn FnOnce() -> Tally> = Box::new(|| task(Options::default()));
    vec![("interop (crossbar, default matrix)".to_owned(), step)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    WebSocket,
    RawSocket,
}

use Transport::{RawSocket, WebSocket};

impl Transport {
    fn short(self) -> &'static str {
        match self {
            WebSocket => "ws",
            RawSocket => "rs",
        }
    }

    fn url(self, ports: Ports) -> String {
        match self {
            WebSocket => format!("ws://127.0.0.1:{}/ws", ports.websocket),
            RawSocket => format!("rs://127.0.0.1:{}", ports.rawsocket),
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    runtime: &'static str,
    serializer: &'static str,
    batched: bool,
    transport: Transport,
}

/// The runs for `runtime`: every serializer and transport on tokio, a
/// sample on the others (the WAMP code above the runtime is shared).
fn matrix(runtime: &'static str) -> Vec<Run> {
    let cells: &[(&'static str, bool, Transport)] = match runtime {
        "tokio" => &[
            ("json", false, WebSocket),
            ("json", false, RawSocket),
            ("msgpack", false, WebSocket),
            ("msgpack", false, RawSocket),
            ("cbor", false, WebSocket),
            ("cbor", false, RawSocket),
            ("json", true, WebSocket),
        ],
        "smol" => &[("msgpack", false, RawSocket), ("json", false, WebSocket)],
        _ => &[("cbor", false, WebSocket)],
    };
    cells
        .iter()
        .map(|&(serializer, batched, transport)| Run {
            runtime,
            serializer,
            batched,
            transport,
        })
        .collect()
}

impl Run {
    fn serialization(&self) -> String {
        let batched = if self.batched { ".batched" } else { "" };
        format!("{}{batched}", self.serializer)
    }

    /// E.g. `tokio json.batched ws`.
    fn name(&self) -> String {
        let (runtime, transport) = (self.runtime, self.transport.short());
        format!("{runtime} {} {transport}", self.serialization())
    }

    /// For file names, e.g. `tokio-json.batched-ws`.
    fn slug(&self) -> String {
        self.name().replace(' ', "-")
    }

    /// The URI prefix of the run's peer, e.g. `interop.py.tokio.json_batched.ws`.
    fn prefix(&self) -> String {
        let runtime = self.runtime.replace('-', "_");
        let serialization = self.serialization().replace('.', "_");
        format!(
            "interop.py.{runtime}.{serialization}.{}",
            self.transport.short()
        )
    }

    /// The options the peer and the program share.
    fn args(&self, ports: Ports) -> Vec<String> {
        let mut args = vec!["--url".to_owned(), self.transport.url(ports)];
        args.extend(["--serializer".to_owned(), self.serializer.to_owned()]);
        if self.batched {
            args.push("--batched".to_owned());
        }
        args.extend(["--prefix".to_owned(), self.prefix()]);
        args.extend(["--realm".to_owned(), REALM.to_owned()]);
        args
    }
}

/// Runs the matrix for the selected runtimes.
pub(crate) fn task(options: Options) -> Tally {
    let mut tally = Tally::default();
    let runs: Vec<Run> = options.runtimes.iter().flat_map(|r| matrix(r)).collect();
    let mut results = Vec::new();
    let dir = match execute(&runs, &mut results) {
        Ok(dir) => Some(dir),
        Err(e) => {
            tally.broke(e);
            None
        }
    };
    if let Some(dir) = dir {
        println!("interop results (logs in {}):", dir.display());
    } else if !results.is_empty() {
        println!("interop results:");
    }
    for (name, run_tally) in &results {
        println!("    {name:<24} {run_tally}");
        tally.add(*run_tally);
    }
    tally
}

/// Prepares everything, starts the router and the peers, and does the
/// runs; returns the run directory. Everything started is stopped on
/// return, also on errors.
fn execute(runs: &[Run], results: &mut Vec<(String, Tally)>) -> Result<PathBuf> {
    let dir = cargo::target_dir()?.join("interop").join("run");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let program = match std::env::var_os(PROGRAM_VAR) {
        Some(path) => {
            eprintln!(
                "==> program: {} (from {PROGRAM_VAR})",
                path.to_string_lossy()
            );
            PathBuf::from(path)
        }
        None => cargo::build_example(PROGRAM_PACKAGE, PROGRAM_EXAMPLE, PROGRAM_FEATURES)?,
    };
    let venv = Venv::find_or_install()?;

    let websocket = free_port()?;
    let rawsocket = (0..10)
        .map(|_| free_port())
        .find(|port| port.as_ref() != Ok(&websocket))
        .unwrap_or_else(|| Err("no second free port".to_owned()))?;
    let ports = Ports {
        websocket,
        rawsocket,
    };
    eprintln!(
        "==> starting crossbar: {} and {} (log: {})",
        WebSocket.url(ports),
        RawSocket.url(ports),
        dir.join("crossbar.log").display()
    );
    let start = Instant::now();
    let mut router = Crossbar::start(&venv, &dir, ports)?;
    eprintln!("    listening after {:.1}s", start.elapsed().as_secs_f32());

    let start = Instant::now();
    let mut peers = Vec::new();
    for run in runs {
        peers.push(start_peer(&venv, &dir, run, ports));
    }
    let mut ready = 0;
    for (run, slot) in runs.iter().zip(&mut peers) {
        let Ok(peer) = slot else { continue };
        match peer.service.wait_for_line(&peer.log, "READY", PEER_TIMEOUT) {
            Ok(_) => ready += 1,
            Err(e) => {
                // stopped here: a peer that never got ready is of no use
                *slot = Err(with_log(&peer.log, format!("{}: {e}", run.name())));
            }
        }
    }
    eprintln!(
        "==> {ready} of {} peers ready after {:.1}s",
        runs.len(),
        start.elapsed().as_secs_f32()
    );

    for (i, (run, peer)) in runs.iter().zip(&mut peers).enumerate() {
        let name = run.name();
        eprintln!("==> [{}/{}] {name}", i + 1, runs.len());
        let mut tally = Tally::default();
        if let Some(e) = router.check() {
            tally.broke(e);
        } else {
            match peer {
                Err(e) => tally.broke(format!("no peer: {e}")),
                Ok(peer) => {
                    tally = run_program(&program, run, ports, &dir);
                    if let Some(status) = peer.service.exited() {
                        let e = format!("{name}: the peer exited during the run ({status})");
                        tally.broke(with_log(&peer.log, e));
                    }
                }
            }
        }
        eprintln!("    {tally}");
        results.push((name, tally));
    }

    eprintln!("==> stopping the peers and crossbar");
    drop(peers);
    router.stop();
    Ok(dir)
}

/// A running peer and its log file.
struct Peer {
    service: Service,
    log: PathBuf,
}

fn start_peer(venv: &Venv, dir: &Path, run: &Run, ports: Ports) -> Result<Peer> {
    let log = dir.join(format!("peer-{}.log", run.slug()));
    let (out, err) = log_to(&log)?;
    let mut cmd = venv.python();
    cmd.arg("-u")
        .arg(cargo::workspace_root().join(PEER))
        .args(run.args(ports))
        .current_dir(dir)
        .stdout(out)
        .stderr(err);
    let service = Service::spawn(
        &format!("the peer for {}", run.name()),
        &mut cmd,
        PEER_GRACE,
    )?;
    Ok(Peer { service, log })
}

/// Runs the program for `run` and counts its `PASS` and `FAIL` lines.
fn run_program(program: &Path, run: &Run, ports: Ports, dir: &Path) -> Tally {
    let log = dir.join(format!("{}.log", run.slug()));
    let result = (|| {
        let (out, err) = log_to(&log)?;
        let mut cmd = Command::new(program);
        cmd.args(["--runtime", run.runtime])
            .args(run.args(ports))
            .current_dir(dir)
            .stdout(out)
            .stderr(err);
        Running::spawn(PROGRAM_EXAMPLE, &mut cmd)?.wait(RUN_TIMEOUT, || {
            let (tally, _) = count(&std::fs::read_to_string(&log).unwrap_or_default());
            format!("({tally} so far)")
        })
    })();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let (mut tally, failures) = count(&text);
    for failure in failures {
        eprintln!("    {failure}");
    }
    let name = run.name();
    match result {
        Err(e) => tally.broke(with_log(&log, format!("{name}: {e}"))),
        Ok(status) => {
            if let Some(problem) = verdict(status, tally) {
                tally.broke(with_log(
                    &log,
                    format!("{name}: {PROGRAM_EXAMPLE} {problem}"),
                ));
            }
        }
    }
    tally
}

/// The tally of the `PASS`/`FAIL` lines in `output`, and the `FAIL` lines.
fn count(output: &str) -> (Tally, Vec<&str>) {
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for line in output.lines() {
        if line.starts_with("PASS ") {
            tally.pass();
        } else if line.starts_with("FAIL ") {
            tally.fail();
            failures.push(line);
        }
    }
    (tally, failures)
}

/// What is wrong with a finished run beyond its `FAIL` lines, if anything.
fn verdict(status: ExitStatus, tally: Tally) -> Option<String> {
    if tally == Tally::default() {
        Some(format!("printed no PASS or FAIL lines ({status})"))
    } else if !status.success() && tally.is_success() {
        Some(format!("failed ({status}) without a FAIL line"))
    } else if status.success() && !tally.is_success() {
        Some("printed FAIL lines but exited with 0".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        cli::parse(Options::parse, &args)
    }

    #[test]
    fn options() {
        assert_eq!(parse(&[]).unwrap().runtimes, RUNTIMES);
        assert_eq!(parse(&["--runtime=all"]).unwrap().runtimes, RUNTIMES);
        assert_eq!(parse(&["--runtime", "smol"]).unwrap().runtimes, ["smol"]);
        assert!(parse(&["--runtime", "glommio"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn default_matrix() {
        let runs: Vec<String> = RUNTIMES
            .iter()
            .flat_map(|r| matrix(r))
            .map(|r| r.name())
            .collect();
        assert_eq!(runs.len(), 10);
        assert_eq!(runs[6], "tokio json.batched ws");
        assert_eq!(runs[9], "async-std cbor ws");
        let run = matrix("tokio")[6];
        assert_eq!(run.prefix(), "interop.py.tokio.json_batched.ws");
        assert_eq!(
            matrix("async-std")[0].prefix(),
            "interop.py.async_std.cbor.ws"
        );
        let ports = Ports {
            websocket: 1,
            rawsocket: 2,
        };
        assert_eq!(
            run.args(ports).join(" "),
            "--url ws://127.0.0.1:1/ws --serializer json --batched \
             --prefix interop.py.tokio.json_batched.ws --realm realm1"
        );
        assert_eq!(matrix("smol")[0].args(ports)[1], "rs://127.0.0.1:2");
        assert_eq!(steps_for_test().len(), 1);
    }

    #[test]
    fn counting() {
        let output = "log line\nPASS add2\nFAIL echo: kwargs lost\nPASS  x\nFAILED\n";
        let (tally, failures) = count(output);
        assert_eq!((tally.passed, tally.failed), (2, 1));
        assert_eq!(failures, ["FAIL echo: kwargs lost"]);
        let ok = ExitStatus::from_raw(0);
        let failed = ExitStatus::from_raw(1 << 8);
        assert!(verdict(ok, tally).is_some());
        assert!(verdict(failed, tally).is_none());
        assert!(verdict(ok, Tally::default()).is_some());
        assert!(
            verdict(
                failed,
                Tally {
                    passed: 1,
                    failed: 0
                }
            )
            .is_some()
        );
        assert!(
            verdict(
                ok,
                Tally {
                    passed: 1,
                    failed: 0
                }
            )
            .is_none()
        );
    }
}

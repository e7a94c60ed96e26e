//! The benchmark lab behind `cargo xtask bench [--quick]`: the core
//! micro-benchmarks (criterion) and the echo and WAMP benchmarks of
//! Fahrbahn against other implementations, summarised in
//! `docs/benchmarks.md`.
//!
//! xtask parses the options into [`Options`], provides the programs the
//! lab runs through [`Tools`] (it builds them, installs Crossbar.io) and
//! calls [`run`]; the lab runs the cases, measures and writes the report.
//! Every micro-benchmark result, echo case, idle-memory server,
//! instruction count and WAMP case counts as one passed or failed item of
//! the returned [`Tally`] (a benchmark that fails to run counts as failed),
//! and so does writing the report.
//!
//! Modules: [`matrix`] (the echo cases), `micro` (criterion), `echo`
//! (echo rates), `cpu` (CPU time from `/proc`, pinning),
//! `instructions` (callgrind), `memory` (idle connections), `wamp`
//! (RPC and pub/sub through routers), `report` (the markdown, with the
//! hand-written notes of `notes.md`).

pub(crate) mod cpu;
pub(crate) mod echo;
pub(crate) mod instructions;
pub mod matrix;
pub(crate) mod memory;
pub(crate) mod micro;
pub(crate) mod report;
pub(crate) mod wamp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use xtask_support::crossbar::Venv;
use xtask_support::{Result, Tally, now_utc};

/// The generated file, relative to the workspace root.
pub const BENCHMARKS: &str = "docs/benchmarks.md";

/// The report of `--quick`, relative to the target directory.
pub const QUICK_REPORT: &str = "bench/benchmarks-quick.md";

/// Options of `cargo xtask bench`.
#[derive(Debug, Default)]
pub struct Options {
    /// Short runs: criterion for about a second per benchmark, one echo run
    /// of 2 s per case.
    pub quick: bool,
    /// Skip the micro-benchmarks.
    pub no_micro: bool,
    /// Skip the echo benchmarks (rates, idle memory, instructions).
    pub no_echo: bool,
    /// Skip the instruction counts under callgrind.
    pub no_instructions: bool,
    /// Skip the WAMP benchmarks.
    pub no_wamp: bool,
    /// A note for the report, e.g. about the machine's load.
    pub note: Option<String>,
}

impl Options {
    /// Runs per echo case, their length and the warm-up before each.
    pub(crate) fn echo_plan(&self) -> (usize, Duration, Duration) {
        if self.quick {
            (1, Duration::from_millis(1500), Duration::from_millis(500))
        } else {
            (3, Duration::from_secs(3), Duration::from_secs(1))
        }
    }
}

/// The programs of the echo benchmarks (binaries of the `bench` crate).
#[derive(Debug, Clone)]
pub struct EchoPrograms {
    /// `echo_server`.
    pub server: PathBuf,
    /// `loadgen`.
    pub loadgen: PathBuf,
}

/// What the lab runs but does not build or install itself; each is asked
/// for when its part starts, and an error fails that part (or, for a
/// router, its cases).
pub trait Tools {
    /// Builds the echo servers and the load generator.
    fn echo_programs(&self) -> Result<EchoPrograms>;
    /// Builds `wamp_bench`, the Rust WAMP client.
    fn wamp_client(&self) -> Result<PathBuf>;
    /// The `fahrbahn` binary (its `router` command).
    fn fahrbahn_router(&self) -> Result<PathBuf>;
    /// The venv with Crossbar.io and AutobahnPython.
    fn crossbar(&self) -> Result<Venv>;
}

/// Runs the benchmarks that `options` select and writes the report:
/// `docs/benchmarks.md` below `root`, or for `--quick`
/// [`QUICK_REPORT`] below the cargo target directory `target`.
pub fn run(options: &Options, tools: &dyn Tools, root: &Path, target: &Path) -> Tally {
    let mut tally = Tally::default();
    let micro = if options.no_micro {
        Vec::new()
    } else {
        micro::run(options.quick, target, &mut tally)
    };
    let echo = if options.no_echo {
        echo::EchoReport::default()
    } else {
        echo::run(options, tools, target, &mut tally)
    };
    let wamp = if options.no_wamp {
        wamp::WampResults::default()
    } else {
        wamp::run(options.quick, tools, target, &mut tally)
    };

    let header = report::Header {
        generated: now_utc(),
        machine: report::machine_info(),
    };
    let md = report::markdown(options, &header, &micro, &echo, &wamp);
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

/// The number `name=` holds in a `result ...` line of the load generator
/// or a WAMP client, e.g. `rate` in `result rate=3064.9 secs=2`.
pub(crate) fn result_field(result: &str, name: &str) -> Option<f64> {
    result
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

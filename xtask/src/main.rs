//! Fahrbahn's project automation, run as `cargo xtask <task>`.
//!
//! Tasks:
//! * `attack`: the attacks A–L of issue 10 against the router and the
//!   echo example, measuring memory and a normal client's round trip, see
//!   [`attack`](mod@attack),
//! * `autobahn`: the Autobahn|Testsuite (`wstest`) conformance runs, see
//!   [`autobahn`],
//! * `fuzz`: the coverage-guided fuzz targets of `fuzz/` under AFL++ on
//!   the stable toolchain, see [`fuzz`](mod@fuzz),
//! * `bench`: the micro-benchmarks, the echo and the WAMP benchmarks,
//!   written to `docs/benchmarks.md`, see [`bench`](mod@bench) (the lab
//!   itself is the `bench-lab` crate),
//! * `chaos`: reconnecting components on every runtime against a router
//!   killed and restarted, and connections cut by a proxy, see [`chaos`],
//! * `interop`: the WAMP client and router against Crossbar.io and
//!   AutobahnPython, see [`interop`],
//! * `test`: everything CI checks (format, lints, the docs, the facade's
//!   feature sets, the MSRV, tests, a fuzz smoke run, doc tests, interop,
//!   autobahn), see
//!   [`test`](mod@test) and [`gate`],
//! * `help`: usage.
//!
//! Every task ends with a line `N passed, M failed` and exits with 1 if
//! anything failed; usage errors exit with 2.

#![allow(clippy::print_stdout, reason = "xtask is a command line tool")]

mod attack;
mod autobahn;
mod bench;
mod chaos;
mod cli;
mod docs;
mod fuzz;
mod gate;
mod interop;
mod report;
mod test;
mod wstest;

use std::process::ExitCode;

use xtask_support::{Result, Tally, cargo, crossbar, process, router, service};

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  attack [options]     the attacks A-L of issue 10 against `fahrbahn router`
                       (defaults) and the echo_server_tokio example (release
                       builds, started fresh per attack), measuring the target's
                       peak RSS against the documented bounds and a normal
                       client's round trip; report in target/attack/
      --quick          smaller counts, shorter attacks (~2 min); the latency
                       (p99 < 10 ms) is reported, not counted
      --only NAMES     comma-separated attack name prefixes, e.g. A,D-json
  autobahn [options]   run the Autobahn|Testsuite (wstest) against the testee
      --runtime R      tokio, smol, async-std or all (default: all)
      --role R         server, client or all (default: all)
      --all            all cases on every runtime (default: all cases on tokio,
                       sections 1-10 and 12.1 on smol and async-std)
      --cases LIST     comma-separated case patterns, e.g. '1.*,7.1.*,12.1.1'
      --update-docs    regenerate docs/conformance.md from every report in
                       target/autobahn/*/
      --no-run         do not run wstest, only summarise the existing reports
  bench [options]      core micro-benchmarks (criterion) and echo benchmarks
                       against other servers; writes docs/benchmarks.md
      --quick          short runs (criterion ~1s each, one 1.5s echo run per
                       case, fewer messages under callgrind, one short WAMP
                       run per case), written to target/bench/benchmarks-quick.md
                       instead of docs/benchmarks.md; then `attack --quick`
                       (one item of the tally)
      --no-micro       skip the micro-benchmarks
      --no-echo        skip the echo benchmarks (rates, idle memory,
                       instruction counts)
      --no-instructions  skip the instruction counts under callgrind
      --no-wamp        skip the WAMP benchmarks (RPC and pub/sub through the
                       fahrbahn router and Crossbar.io, with Fahrbahn's client
                       and AutobahnPython)
      --note TEXT      a note for the report (e.g. about the machine's load)
      --no-attack      with --quick: skip its last step, `attack --quick`
  chaos [options]      components on every runtime (callee, caller, publisher,
                       subscriber) against `fahrbahn router`, killed and
                       restarted at seeded random moments, then connections
                       dropped or stalled by a TCP proxy; each assertion of
                       each round is one item
      --restarts N     router restarts (default: 20)
      --cuts N         proxy cuts, alternately drop and stall (default: 10)
      --seed S         seed of the moments and the back-off (default: 1)
      --quick          4 restarts and 2 cuts (the form run by `test`)
  fuzz [options]       build the fuzz targets of fuzz/ with AFL++ (cargo-afl,
                       installed on first use) and run each; a crash or hang
                       is copied into fuzz/regressions/<target>/ and fails it
      --target T       one target (repeat or comma-separate for several;
                       default: every target): ws_handshake, ws_frames,
                       rawsocket, wamp_decode, router
      --time S         seconds per target (default: 60)
  interop [options]    the WAMP client and router against Crossbar.io and
                       AutobahnPython
      --runtime R      tokio, smol, async-std or all (default: all)
      --router R       crossbar, fahrbahn or all (default: all): the router
                       of the runs; fahrbahn also runs router_check.py
  test [--quick]       everything CI checks, in order, each step one item of the
                       tally (the tests: one each; autobahn: one per case):
                       cargo fmt --check; cargo clippy -D warnings;
                       docs: cargo doc --workspace --no-deps without warnings
                       (RUSTDOCFLAGS=-D warnings, e.g. broken intra-doc links);
                       features: cargo check of the fahrbahn crate with each
                       runtime alone, with deflate, with tls, and with none;
                       msrv: clippy::incompatible_msrv against rust-version
                       and no dependency needing a newer rust-version;
                       the tests (nextest, else cargo test); a fuzz smoke
                       run (every target 10 s); the doc tests;
                       the interop suite; chaos --quick; the default
                       autobahn matrix
                       (--quick: without autobahn)
  help                 this text

fuzz installs cargo-afl (which builds AFL++) into ~/.cache/fahrbahn/afl
(override with FAHRBAHN_AFL_DIR), builds into target/fuzz/ and writes AFL++'s
output to target/fuzz/out/<target>/ (see docs/fuzzing.md).

Reports go to target/autobahn/<runtime>-<role>/. wstest is taken from PATH or
installed by xtask/scripts/install-wstest.sh into ~/.cache/fahrbahn/wstest
(override with FAHRBAHN_WSTEST_DIR). The testee is the autobahn_testee example
of the fahrbahn crate, built in release mode; FAHRBAHN_TESTEE=PATH uses another
program with the same command line instead.

interop installs Crossbar.io and AutobahnPython (pinned in interop/) into
~/.cache/fahrbahn/crossbar-venv (override with FAHRBAHN_CROSSBAR_VENV) and runs
the wamp_interop example against Crossbar.io and then against `fahrbahn router`
(the fahrbahn-cli crate, built in release mode); FAHRBAHN_INTEROP_BIN=PATH uses
another program with the same command line instead, FAHRBAHN_ROUTER_BIN=PATH
another fahrbahn binary. Logs go to target/interop/run/<router>/.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("attack") => cli::parse(attack::Options::parse, &rest).map(attack::task),
        Some("autobahn") => cli::parse(autobahn::Options::parse, &rest).map(autobahn::task),
        Some("chaos") => cli::parse(chaos::Options::parse, &rest).map(chaos::task),
        Some("bench") => cli::parse(bench::parse, &rest).map(bench::task),
        Some("fuzz") => cli::parse(fuzz::Options::parse, &rest).map(fuzz::task),
        Some("interop") => cli::parse(interop::Options::parse, &rest).map(interop::task),
        Some("test") => cli::parse(test::Options::parse, &rest).map(test::task),
        Some(other) => Err(format!("unknown task `{other}`")),
    };
    match result {
        Ok(tally) => {
            println!("{tally}");
            if tally.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(usage_error) => {
            eprintln!("error: {usage_error}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

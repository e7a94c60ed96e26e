//! `cargo xtask test`: everything CI checks, in order, continuing after
//! failures so that every result shows.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Instant;

use crate::cli::{self, Args};
use crate::{Tally, autobahn, cargo, fuzz, gate, process};

/// Options of `cargo xtask test`.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// Skip the autobahn conformance runs.
    quick: bool,
}

impl Options {
    /// Parses the options of `cargo xtask test`.
    pub(crate) fn parse(args: &mut Args) -> crate::Result<Self> {
        let mut options = Self::default();
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--quick" => options.quick = true,
                _ => return Err(cli::unknown(&flag)),
            }
        }
        Ok(options)
    }
}

/// One step of the test task.
struct Step {
    name: String,
    run: Box<dyn FnOnce() -> Tally>,
}

impl Step {
    /// A cargo command; one passed or failed item.
    fn cargo(args: &[&str]) -> Self {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        Self {
            name: format!("cargo {}", args.join(" ")),
            run: Box::new(move || {
                let mut tally = Tally::default();
                match process::run(&mut cargo::command(&args)) {
                    Ok(ok) => tally.record(ok),
                    Err(e) => tally.broke(e),
                }
                tally
            }),
        }
    }

    /// One of the quick gates of [`gate`].
    fn gate(name: impl Into<String>, run: fn() -> Tally) -> Self {
        Self {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// Where the simulation test (`fahrbahn-core/tests/simulation.rs`) writes
/// how many scenarios it ran: `$CARGO_TARGET_TMPDIR`, i.e. `target/tmp`.
fn simulation_count_file() -> Option<PathBuf> {
    cargo::target_dir()
        .ok()
        .map(|dir| dir.join("tmp").join("simulation-scenarios.txt"))
}

/// The scenarios the simulation ran in this `cargo xtask test`.
static SIMULATION_SCENARIOS: OnceLock<u64> = OnceLock::new();

/// Reads the simulation's scenario count (removed before the run, so a
/// count is this run's); a missing count fails the step: the simulation
/// is part of the suite.
fn record_simulation(file: Option<&PathBuf>, tally: &mut Tally) {
    let count = file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| text.trim().parse::<u64>().ok());
    match count {
        Some(n) => {
            eprintln!("==> simulation: {n} scenarios");
            let _ = SIMULATION_SCENARIOS.set(n);
        }
        None => tally.broke("the deterministic simulation did not run (no scenario count)"),
    }
}

/// The test suites under nextest, where every test counts as one item:
/// its output is passed through and its summary line
/// (`N tests run: P passed, F failed, …`) read.
fn nextest_step() -> Step {
    let args = [
        "nextest",
        "run",
        "--workspace",
        "--all-features",
        "--no-tests=warn",
        "--no-fail-fast",
    ];
    Step {
        name: format!("cargo {}", args.join(" ")),
        run: Box::new(move || {
            let mut tally = Tally::default();
            let count_file = simulation_count_file();
            if let Some(f) = &count_file {
                let _ = std::fs::remove_file(f);
            }
            let mut cmd = cargo::command(args);
            cmd.stderr(Stdio::piped());
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    tally.broke(format!("cannot run cargo nextest: {e}"));
                    return tally;
                }
            };
            let mut summary = None;
            if let Some(stderr) = child.stderr.take() {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    if let Some(counts) = nextest_summary(&line) {
                        summary = Some(counts);
                    }
                }
            }
            let ok = child.wait().is_ok_and(|status| status.success());
            match summary {
                Some((passed, failed)) => {
                    tally.passed += passed;
                    tally.failed += failed;
                    if !ok && failed == 0 {
                        tally.broke("cargo nextest failed");
                    }
                }
                None => tally.record(ok),
            }
            record_simulation(count_file.as_ref(), &mut tally);
            tally
        }),
    }
}

/// Parses nextest's `Summary [ 1.2s] 231 tests run: 230 passed, 1 failed, …`.
fn nextest_summary(line: &str) -> Option<(usize, usize)> {
    let rest = line.split("tests run:").nth(1)?;
    let mut passed = None;
    let mut failed = 0;
    for part in rest.split(',') {
        let mut words = part.split_whitespace();
        let n: usize = words.next()?.parse().ok()?;
        match words.next() {
            Some("passed") => passed = Some(n),
            Some("failed") | Some("timed") => failed += n,
            _ => {}
        }
    }
    Some((passed?, failed))
}

/// The steps, in order.
fn steps(options: &Options) -> Vec<Step> {
    let tests = if has_nextest() {
        nextest_step()
    } else {
        eprintln!("note: cargo-nextest is not installed, using cargo test");
        Step::cargo(&["test", "--workspace", "--all-features"])
    };
    let mut steps = vec![
        Step::cargo(&["fmt", "--all", "--check"]),
        Step::cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
        Step::gate(
            "docs: cargo doc --workspace --all-features --no-deps, RUSTDOCFLAGS=-D warnings",
            gate::docs,
        ),
        Step::gate(
            format!(
                "features: cargo check --package fahrbahn --lib --no-default-features, {} feature sets; {} packages on their own",
                gate::FEATURE_SETS.len(),
                gate::ALONE.len()
            ),
            gate::features,
        ),
        Step::gate(
            "msrv: clippy::incompatible_msrv and the dependencies' rust-version",
            gate::msrv,
        ),
        tests,
        Step {
            name: format!(
                "fuzz smoke: every target of fuzz/ {} s under AFL++ (cargo xtask fuzz --time {})",
                fuzz::SMOKE_SECONDS,
                fuzz::SMOKE_SECONDS
            ),
            run: Box::new(|| fuzz::task(fuzz::Options::smoke())),
        },
        Step::cargo(&["test", "--workspace", "--all-features", "--doc"]),
    ];
    steps.extend(interop_steps());
    steps.push(Step {
        name: "chaos --quick (components against a restarted router and a cutting proxy)"
            .to_owned(),
        run: Box::new(|| crate::chaos::task(crate::chaos::Options::quick())),
    });
    if !options.quick {
        steps.push(Step {
            name: "autobahn (default matrix)".to_owned(),
            run: Box::new(|| autobahn::task(autobahn::Options::default())),
        });
    }
    steps
}

/// The WAMP interop checks against Crossbar.io, the Fahrbahn router and
/// AutobahnPython (before the long autobahn runs).
fn interop_steps() -> Vec<Step> {
    crate::interop::steps_for_test()
        .into_iter()
        .map(|(name, run)| Step { name, run })
        .collect()
}

fn has_nextest() -> bool {
    cargo::command(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs every step and prints a summary; each step is one item, except
/// autobahn, where each case is one.
pub(crate) fn task(options: Options) -> Tally {
    let steps = steps(&options);
    let count = steps.len();
    let mut results = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        eprintln!("\n==> [{}/{count}] {}", i + 1, step.name);
        let start = Instant::now();
        let tally = (step.run)();
        let secs = start.elapsed().as_secs();
        let verdict = if tally.is_success() { "ok" } else { "FAILED" };
        eprintln!("==> [{}/{count}] {}: {verdict} ({secs}s)", i + 1, step.name);
        results.push((step.name, tally, secs));
    }

    let mut total = Tally::default();
    println!("\ntest summary:");
    for (name, tally, secs) in results {
        let verdict = if tally.is_success() { "PASS" } else { "FAIL" };
        let detail = if tally.passed + tally.failed > 1 {
            format!(": {tally}")
        } else {
            String::new()
        };
        println!("    {verdict}  {name}{detail} ({secs}s)");
        if name.starts_with("cargo nextest") {
            if let Some(n) = SIMULATION_SCENARIOS.get() {
                println!("          including the deterministic simulation: {n} scenarios");
            }
        }
        total.add(tally);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::nextest_summary;

    #[test]
    fn reads_nextest_summaries() {
        assert_eq!(
            nextest_summary("     Summary [  24.845s] 231 tests run: 231 passed, 0 skipped"),
            Some((231, 0))
        );
        assert_eq!(
            nextest_summary("     Summary [   5.1s] 10 tests run: 8 passed, 2 failed, 1 skipped"),
            Some((8, 2))
        );
        assert_eq!(nextest_summary("   Compiling foo"), None);
    }
}

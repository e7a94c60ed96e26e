//! `cargo xtask test`: everything CI checks, in order, continuing after
//! failures so that every result shows.

use std::process::Stdio;
use std::time::Instant;

use crate::cli::{self, Args};
use crate::{Tally, autobahn, cargo, process};

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
}

/// The steps, in order.
fn steps(options: &Options) -> Vec<Step> {
    let tests = if has_nextest() {
        Step::cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-tests=warn",
        ])
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
        tests,
        Step::cargo(&["test", "--workspace", "--all-features", "--doc"]),
    ];
    steps.extend(interop_steps());
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
        total.add(tally);
    }
    total
}

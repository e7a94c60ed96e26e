//! `cargo xtask chaos`: the reconnecting component under chaos. Builds
//! `fahrbahn` (the router) and the `chaos` example of the `fahrbahn` crate
//! (both release, as interop does) and runs it: components on every
//! runtime against a router process killed and restarted `--restarts`
//! times at seeded random moments, then connections cut by the example's
//! TCP proxy. Each assertion of each round is one item of the tally, read
//! from the example's last line (`N passed, M failed`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::cli::{self, Args};
use crate::{Tally, cargo};

/// Router restarts of the full run (the 20).
const RESTARTS: u64 = 20;
/// Proxy cuts of the full run.
const CUTS: u64 = 10;
/// The short form inside `cargo xtask test` (about a minute).
const QUICK_RESTARTS: u64 = 4;
/// Proxy cuts of the short form.
const QUICK_CUTS: u64 = 2;

/// Options of `cargo xtask chaos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    restarts: u64,
    cuts: u64,
    seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            restarts: RESTARTS,
            cuts: CUTS,
            seed: 1,
        }
    }
}

impl Options {
    /// The short form run by `cargo xtask test`.
    pub(crate) fn quick() -> Self {
        Self {
            restarts: QUICK_RESTARTS,
            cuts: QUICK_CUTS,
            ..Self::default()
        }
    }

    /// Parses `[--restarts N] [--cuts N] [--seed S] [--quick]`.
    pub(crate) fn parse(args: &mut Args) -> crate::Result<Self> {
        let mut options = Self::default();
        let mut restarts = None;
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--quick" => {
                    let quick = Self::quick();
                    options.cuts = quick.cuts;
                    restarts.get_or_insert(quick.restarts);
                }
                "--restarts" => restarts = Some(number(args, &flag)?),
                "--cuts" => options.cuts = number(args, &flag)?,
                "--seed" => options.seed = number(args, &flag)?,
                _ => return Err(cli::unknown(&flag)),
            }
        }
        if let Some(n) = restarts {
            options.restarts = n;
        }
        Ok(options)
    }
}

fn number(args: &mut Args, flag: &str) -> crate::Result<u64> {
    let value = args.value(flag)?;
    value
        .parse()
        .map_err(|_| format!("{flag} needs a number, not `{value}`"))
}

/// Builds and runs the chaos example; its tally.
pub(crate) fn task(options: Options) -> Tally {
    let mut tally = Tally::default();
    let router = match crate::interop::router_program() {
        Ok(path) => path,
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };
    let program = match cargo::build_example("fahrbahn", "chaos", "tokio,smol,async-std") {
        Ok(path) => path,
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };
    let mut cmd = Command::new(program);
    cmd.arg("--router")
        .arg(router)
        .args(["--restarts", &options.restarts.to_string()])
        .args(["--cuts", &options.cuts.to_string()])
        .args(["--seed", &options.seed.to_string()])
        .stdout(Stdio::piped());
    eprintln!("==> {}", crate::process::describe(&cmd));
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            tally.broke(format!("cannot run the chaos example: {e}"));
            return tally;
        }
    };
    let mut last = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(counts) = summary(&line) {
                last = Some(counts);
            }
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    match last {
        Some((passed, failed)) => {
            tally.passed += passed;
            tally.failed += failed;
            if !ok && failed == 0 {
                tally.broke("the chaos example failed");
            }
        }
        None => tally.broke("the chaos example printed no `N passed, M failed` line"),
    }
    tally
}

/// Parses `N passed, M failed`.
fn summary(line: &str) -> Option<(usize, usize)> {
    let (passed, failed) = line.trim().split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let parse = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            cli::parse(Options::parse, &args)
        };
        assert_eq!(parse(&[]).unwrap(), Options::default());
        assert_eq!(parse(&["--quick"]).unwrap(), Options::quick());
        let o = parse(&["--restarts", "3", "--quick"]).unwrap();
        assert_eq!((o.restarts, o.cuts), (3, QUICK_CUTS));
        assert!(parse(&["--restarts", "x"]).is_err());
    }

    #[test]
    fn reads_the_summary() {
        assert_eq!(summary("12 passed, 3 failed"), Some((12, 3)));
        assert_eq!(summary("restart 1/4: 3 passed, 0 failed so far"), None);
    }
}

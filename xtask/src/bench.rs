//! `cargo xtask bench [--quick]`: the options, the programs the benchmark
//! lab runs (built here, with Crossbar.io installed by [`Venv`]) and the
//! call into the lab, the `bench-lab` crate (`bench/lab/`), which runs the
//! micro-benchmarks, the echo and the WAMP benchmarks and writes
//! `docs/benchmarks.md` (see [`bench_lab`]).

use std::path::PathBuf;

use bench_lab::{EchoPrograms, Options, Tools};

use crate::cli::{self, Args};
use crate::crossbar::Venv;
use crate::process::describe;
use crate::{Result, Tally, cargo, interop, process};

/// The Rust WAMP client, a binary of the `bench` crate.
const WAMP_CLIENT: &str = "wamp_bench";

/// Parses the options of `cargo xtask bench`.
pub(crate) fn parse(args: &mut Args) -> Result<Options> {
    let mut options = Options::default();
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

/// Runs the benchmark lab.
pub(crate) fn task(options: Options) -> Tally {
    let target = match cargo::target_dir() {
        Ok(target) => target,
        Err(e) => {
            let mut tally = Tally::default();
            tally.broke(e);
            return tally;
        }
    };
    let tools = Builder {
        release: target.join("release"),
    };
    bench_lab::run(&options, &tools, &cargo::workspace_root(), &target)
}

/// Builds (release) and installs what the lab asks for.
struct Builder {
    /// `target/release/`.
    release: PathBuf,
}

impl Tools for Builder {
    fn echo_programs(&self) -> Result<EchoPrograms> {
        let mut cmd = cargo::command(["build", "--release", "--package", "bench", "--bins"]);
        eprintln!("\n==> {}", describe(&cmd));
        if !process::run(&mut cmd)? {
            return Err("building the bench crate failed".to_owned());
        }
        Ok(EchoPrograms {
            server: self.release.join("echo_server"),
            loadgen: self.release.join("loadgen"),
        })
    }

    fn wamp_client(&self) -> Result<PathBuf> {
        let mut cmd = cargo::command(["build", "--release", "--package", "bench"]);
        cmd.args(["--bin", WAMP_CLIENT]);
        eprintln!("==> {}", describe(&cmd));
        if !process::run(&mut cmd)? {
            return Err(format!("building {WAMP_CLIENT} failed"));
        }
        Ok(self.release.join(WAMP_CLIENT))
    }

    fn fahrbahn_router(&self) -> Result<PathBuf> {
        interop::router_program()
    }

    fn crossbar(&self) -> Result<Venv> {
        Venv::find_or_install()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let args: Vec<String> = ["--quick", "--no-wamp", "--note=busy"]
            .map(str::to_owned)
            .into();
        let options = cli::parse(parse, &args).unwrap();
        assert!(options.quick && options.no_wamp && !options.no_echo);
        assert_eq!(options.note.as_deref(), Some("busy"));
        assert!(cli::parse(parse, &["--fast".to_owned()]).is_err());
        assert!(cli::parse(parse, &["--note".to_owned()]).is_err());
    }
}

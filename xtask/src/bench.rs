//! `cargo xtask bench [--quick]`: the options, the programs the benchmark
//! lab runs (built here, with Crossbar.io installed by [`Venv`]) and the
//! call into the lab, the `bench-lab` crate (`bench/lab/`), which runs the
//! micro-benchmarks, the echo and the WAMP benchmarks and writes
//! `docs/benchmarks.md` (see [`bench_lab`]). `--quick` also runs
//! `cargo xtask attack --quick` as its last step (one item of the tally;
//! `--no-attack` skips it).

use std::path::PathBuf;

use bench_lab::{EchoPrograms, Options, Tools};

use crate::cli::{self, Args};
use crate::crossbar::Venv;
use crate::process::describe;
use crate::{Result, Tally, attack, cargo, interop, process};

/// The Rust WAMP client, a binary of the `bench` crate.
const WAMP_CLIENT: &str = "wamp_bench";

/// The options of `cargo xtask bench`: the lab's, and whether `--quick`
/// skips the attacks.
#[derive(Debug, Default)]
pub(crate) struct BenchOptions {
    pub(crate) lab: Options,
    pub(crate) no_attack: bool,
}

/// Parses the options of `cargo xtask bench`.
pub(crate) fn parse(args: &mut Args) -> Result<BenchOptions> {
    let mut bench = BenchOptions::default();
    let options = &mut bench.lab;
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "--no-attack" => bench.no_attack = true,
            "--quick" => options.quick = true,
            "--no-micro" => options.no_micro = true,
            "--no-echo" => options.no_echo = true,
            "--no-instructions" => options.no_instructions = true,
            "--no-wamp" => options.no_wamp = true,
            "--note" => options.note = Some(args.value(&flag)?),
            _ => return Err(cli::unknown(&flag)),
        }
    }
    Ok(bench)
}

/// Runs the benchmark lab, and with `--quick` the quick form of the
/// attacks.
pub(crate) fn task(options: BenchOptions) -> Tally {
    let mut tally = lab(&options.lab);
    if options.lab.quick && !options.no_attack {
        eprintln!("\n==> cargo xtask attack --quick");
        let attacks = attack::task(attack::Options {
            quick: true,
            only: Vec::new(),
        });
        eprintln!("==> attacks: {attacks}");
        tally.record(attacks.is_success());
    }
    tally
}

/// Runs the benchmark lab.
fn lab(options: &Options) -> Tally {
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
    bench_lab::run(options, &tools, &cargo::workspace_root(), &target)
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
        assert!(!options.no_attack);
        let options = options.lab;
        assert!(options.quick && options.no_wamp && !options.no_echo);
        assert_eq!(options.note.as_deref(), Some("busy"));
        let args = ["--quick".to_owned(), "--no-attack".to_owned()];
        assert!(cli::parse(parse, &args).unwrap().no_attack);
        assert!(cli::parse(parse, &["--fast".to_owned()]).is_err());
        assert!(cli::parse(parse, &["--note".to_owned()]).is_err());
    }
}

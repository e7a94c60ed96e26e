//! `fahrbahn`: the Fahrbahn WAMP command line — run the embedded router,
//! and call, publish, subscribe and register procedures from the shell
//! (like AutobahnPython's `wamp` tool and Crossbar's CLI).
//!
//! See `docs/cli.md` or `fahrbahn --help`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod commands;
mod json;

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;

use args::Command;

fn main() -> ExitCode {
    // Usage errors exit 2, `--help` and `--version` print and exit 0.
    let command = args::parse(std::env::args_os().skip(1)).unwrap_or_else(|e| e.exit());
    match command {
        Command::Version => {
            println!("fahrbahn {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Completions(a) => {
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut args::Cli::command(), "fahrbahn", &mut script);
            match std::io::stdout().lock().write_all(&script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot print: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        command => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(commands::run(command));
            // Invocations still running (register) must not delay the exit.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

//! `fahrbahn`: the Fahrbahn WAMP command line — run the embedded router,
//! and call, publish, subscribe and register procedures from the shell
//! (like AutobahnPython's `wamp` tool and Crossbar's CLI).
//!
//! See `docs/cli.md` or `fahrbahn --help`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod commands;
mod json;

use std::process::ExitCode;

use args::Command;

fn main() -> ExitCode {
    let mut argv = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => argv.push(a),
            Err(bad) => {
                eprintln!("error: argument {bad:?} is not valid UTF-8");
                return ExitCode::from(2);
            }
        }
    }
    let command = match args::parse(argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help(topic) => {
            print!("{}", topic.help());
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("fahrbahn {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
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

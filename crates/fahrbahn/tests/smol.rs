//! Loopback integration tests on smol; the scenarios live in
//! `common/mod.rs`.
#![cfg(feature = "smol")]

#[macro_use]
mod common;

use std::future::Future;

use fahrbahn::smol::SmolRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(SmolRuntime) -> F) {
    let _watchdog = common::Watchdog::start(std::thread::current().name().unwrap_or("?"));
    smol::block_on(common::guarded(SmolRuntime, scenario));
}

scenario_tests!(run, smol);

//! Loopback integration tests on smol; the scenarios live in
//! `common/mod.rs`.
#![cfg(feature = "smol")]

#[macro_use]
mod common;
mod harness;

use std::future::Future;

use fahrbahn::smol::SmolRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(SmolRuntime) -> F) {
    let _watchdog = harness::Watchdog::start();
    smol::block_on(harness::guarded(SmolRuntime, scenario));
}

scenario_tests!(run, smol);

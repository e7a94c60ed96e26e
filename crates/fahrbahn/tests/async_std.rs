//! Loopback integration tests on async-std; the scenarios live in
//! `common/mod.rs`.
#![cfg(feature = "async-std")]

#[macro_use]
mod common;
mod harness;

use std::future::Future;

use fahrbahn::async_std::AsyncStdRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(AsyncStdRuntime) -> F) {
    let _watchdog = harness::Watchdog::start();
    async_std::task::block_on(harness::guarded(AsyncStdRuntime, scenario));
}

scenario_tests!(run, async_std);

//! Loopback integration tests on async-std; the scenarios live in
//! `common/mod.rs`.
#![cfg(feature = "async-std")]

#[macro_use]
mod common;

use std::future::Future;

use fahrbahn::async_std::AsyncStdRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(AsyncStdRuntime) -> F) {
    let _watchdog = common::Watchdog::start(std::thread::current().name().unwrap_or("?"));
    async_std::task::block_on(common::guarded(AsyncStdRuntime, scenario));
}

scenario_tests!(run, async_std);

//! Loopback integration tests on tokio (multi-threaded runtime); the
//! scenarios live in `common/mod.rs`.
#![cfg(feature = "tokio")]

#[macro_use]
mod common;
mod harness;

use std::future::Future;

use fahrbahn::tokio::TokioRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(TokioRuntime) -> F) {
    let _watchdog = harness::Watchdog::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(harness::guarded(TokioRuntime, scenario));
}

scenario_tests!(run, tokio);

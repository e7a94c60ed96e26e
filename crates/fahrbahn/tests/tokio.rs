//! Loopback integration tests on tokio (multi-threaded runtime); the
//! scenarios live in `common/mod.rs`.
#![cfg(feature = "tokio")]

#[macro_use]
mod common;

use std::future::Future;

use fahrbahn::tokio::TokioRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(TokioRuntime) -> F) {
    let _watchdog = common::Watchdog::start(std::thread::current().name().unwrap_or("?"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(common::guarded(TokioRuntime, scenario));
}

scenario_tests!(run, tokio);

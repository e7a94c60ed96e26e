//! Embedded-router integration tests on tokio (multi-threaded runtime);
//! the scenarios live in `router_common/mod.rs`.
#![cfg(feature = "tokio")]

#[macro_use]
mod router_common;
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

router_tests!(run;
    ws_json => crate::router_common::Transport::WsJson,
    ws_msgpack_batched => crate::router_common::Transport::WsMsgPackBatched,
    rs_cbor => crate::router_common::Transport::RsCbor,
    unix_json => crate::router_common::Transport::UnixJson,
);

//! Embedded-router integration tests on async-std; the scenarios live in
//! `router_common/mod.rs`.
#![cfg(feature = "async-std")]

#[macro_use]
mod router_common;
mod harness;

use std::future::Future;

use fahrbahn::async_std::AsyncStdRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(AsyncStdRuntime) -> F) {
    let _watchdog = harness::Watchdog::start();
    async_std::task::block_on(harness::guarded(AsyncStdRuntime, scenario));
}

router_tests!(run;
    ws_json => crate::router_common::Transport::WsJson,
    rs_msgpack => crate::router_common::Transport::RsMsgPack,
    unix_cbor => crate::router_common::Transport::UnixCbor,
);

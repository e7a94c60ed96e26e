//! Embedded-router integration tests on smol; the scenarios live in
//! `router_common/mod.rs`.
#![cfg(feature = "smol")]

#[macro_use]
mod router_common;
mod harness;

use std::future::Future;

use fahrbahn::smol::SmolRuntime;

fn run<F: Future<Output = ()>>(scenario: impl FnOnce(SmolRuntime) -> F) {
    let _watchdog = harness::Watchdog::start();
    smol::block_on(harness::guarded(SmolRuntime, scenario));
}

router_tests!(run;
    ws_json => crate::router_common::Transport::WsJson,
    rs_msgpack => crate::router_common::Transport::RsMsgPack,
    unix_cbor => crate::router_common::Transport::UnixCbor,
);

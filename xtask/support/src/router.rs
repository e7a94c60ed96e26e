//! The WAMP routers of the interop runs and the WAMP benchmarks: their
//! ports and realm, and starting `fahrbahn router` (Crossbar.io: see
//! [`crate::crossbar`]).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Result;
use crate::process::{free_port, log_to};
use crate::service::Service;

/// The realm of every router and client (the one of the Crossbar.io node
/// config).
pub const REALM: &str = "realm1";

/// The Fahrbahn router's configuration (realms and roles, as the
/// Crossbar.io node's), relative to the workspace root.
pub const CONFIG: &str = "interop/router.toml";

/// The `Origin`s the routers' WebSocket listeners accept (the Crossbar.io
/// node config says the same); requests without `Origin` are accepted.
pub const ALLOWED_ORIGIN: &str = "http://127.0.0.1:*";

/// How long the Fahrbahn router may take to stop after SIGTERM.
const FAHRBAHN_GRACE: Duration = Duration::from_secs(10);

/// The router's listening ports on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// WAMP over WebSocket at `ws://127.0.0.1:PORT/ws`.
    pub websocket: u16,
    /// WAMP over RawSocket at `rs://127.0.0.1:PORT`.
    pub rawsocket: u16,
}

/// Two different free ports.
pub fn free_ports() -> Result<Ports> {
    let websocket = free_port()?;
    let rawsocket = (0..10)
        .map(|_| free_port())
        .find(|port| port.as_ref() != Ok(&websocket))
        .unwrap_or_else(|| Err("no second free port".to_owned()))?;
    Ok(Ports {
        websocket,
        rawsocket,
    })
}

/// Starts `fahrbahn router` (`cmd` runs the `fahrbahn` binary, possibly
/// through taskset) with [`CONFIG`] in realm [`REALM`] on `ports` (anonymous
/// sessions only: `--auth anonymous`), in `dir`, with its output to `log`,
/// as a [`Service`] leading its own process group.
pub fn spawn_fahrbahn(mut cmd: Command, dir: &Path, ports: Ports, log: &Path) -> Result<Service> {
    let (out, err) = log_to(log)?;
    cmd.arg("router")
        .arg("--config")
        .arg(crate::cargo::workspace_root().join(CONFIG))
        .args(["--ws", &format!("127.0.0.1:{}", ports.websocket)])
        .args(["--rs", &format!("127.0.0.1:{}", ports.rawsocket)])
        .args(["--realm", REALM])
        .args(["--allowed-origin", ALLOWED_ORIGIN])
        .args(["--auth", "anonymous"])
        .current_dir(dir)
        .stdout(out)
        .stderr(err);
    Service::spawn_group("fahrbahn router", &mut cmd, FAHRBAHN_GRACE)
}

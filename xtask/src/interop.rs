//! `cargo xtask interop`: Fahrbahn's WAMP client and router against
//! Crossbar.io and AutobahnPython.
//!
//! For each selected router (`--router`): starts it on free ports (Crossbar.io,
//! installed into a venv on first use, see [`crossbar::Venv`]; or the
//! `fahrbahn router` command of the `fahrbahn-cli` crate, built in release
//! mode), then
//!
//! * against the Fahrbahn router only: runs `interop/peers/router_check.py`
//!   (AutobahnPython clients checking the router) once per serializer and
//!   transport ([`CHECKS`]), and with one client on another serializer
//!   ([`MIXED_CHECKS`]),
//! * against both: runs `interop/peers/authz_check.py` (static
//!   authorization: the same refusals from both routers, configured alike by
//!   `interop/crossbar/config.json` and `interop/router.toml`) twice
//!   ([`AUTHZ_CHECKS`]), and `interop/peers/auth_check.py` (AutobahnPython
//!   clients authenticating with every method, positive and negative, the
//!   same expectations from both) twice ([`AUTH_CHECKS`]), then
//! * against both: records the differential suite
//!   (`interop/differential/run.py record`: scenarios of AutobahnPython
//!   sessions and of the program in its `--differential-peer` mode, in
//!   realm `differential`, what each session received normalised for ids
//!   and timing) into `<router>/differential.json`, then
//! * against both: starts one AutobahnPython peer (`interop/peers/peer.py`)
//!   per run and runs the `wamp_interop` example of the `fahrbahn` crate once
//!   per cell of the matrix (runtime, serializer, transport):
//!
//! ```text
//! wamp_interop --runtime R --url ws://127.0.0.1:P/ws|rs://127.0.0.1:P
//!              --serializer json|msgpack|cbor [--batched] --prefix PREFIX --realm realm1
//! ```
//!
//! Against both it also runs the `fahrbahn` command line's authentication
//! and the authentication scenarios of the program ([`AUTH_CELLS`]: every
//! method, positive and negative, over WebSocket and RawSocket) against the
//! auth endpoints: Crossbar.io's path `/auth` of its WebSocket transport and
//! its RawSocket transport (which also accepts anonymous sessions); the
//! Fahrbahn router's own authenticating WebSocket listener (on a third port)
//! and its RawSocket listener (see [`fahrbahn_listeners`]):
//!
//! ```text
//! wamp_interop --auth --runtime tokio --url ws://127.0.0.1:P/auth|rs://127.0.0.1:P --serializer S
//! ```
//!
//! Once both routers ran, `run.py compare` compares the two recordings,
//! scenario by scenario, leaving out the deliberate differences listed with
//! their reasons in `interop/differential/differences.json`, and prints
//! `PASS`/`FAIL` per scenario (counted like the others, as
//! `differential vs crossbar`).
//!
//! Both programs print one line per scenario, `PASS <name>` or
//! `FAIL <name>: <reason>`, and exit non-zero if any failed; each line is one
//! passed or failed item, and a run that breaks (crashes, times out, prints
//! nothing, exits non-zero without a `FAIL` line) counts as one more failure.
//! The routers, the peers and every run log to `target/interop/run/<router>/`;
//! `target/interop/run/` is emptied first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::autobahn::RUNTIMES;
use crate::cli::{self, Args};
use crate::crossbar::{self, Venv};
use crate::process::{self, Running, describe, log_to, with_log};
use crate::router::{self, Ports, REALM, free_ports};
use crate::service::Service;
use crate::{Result, Tally, cargo};

const PROGRAM_PACKAGE: &str = "fahrbahn";
const PROGRAM_EXAMPLE: &str = "wamp_interop";
const PROGRAM_FEATURES: &str = "tokio,smol,async-std";
/// Environment variable naming a prebuilt program to use instead of building
/// the example (any program with the same command line works).
const PROGRAM_VAR: &str = "FAHRBAHN_INTEROP_BIN";

/// The package and binary of the Fahrbahn router (`fahrbahn router`).
const ROUTER_PACKAGE: &str = "fahrbahn-cli";
const ROUTER_BIN: &str = "fahrbahn";
/// Environment variable naming a prebuilt `fahrbahn` binary to use instead
/// of building it.
const ROUTER_VAR: &str = "FAHRBAHN_ROUTER_BIN";

/// The scripts, relative to the workspace root.
const PEER: &str = "interop/peers/peer.py";
const CHECK: &str = "interop/peers/router_check.py";
/// The authorization checks, run against both routers.
const AUTHZ_CHECK: &str = "interop/peers/authz_check.py";
/// Their realm (a role limited like Crossbar.io's `restricted`).
const AUTHZ_REALM: &str = "restricted";
/// The differential suite (`record`, then `compare`), its transcript file
/// in each router's run directory, and its realm (no roles, nothing
/// disclosed, in both routers' configs).
const DIFFERENTIAL: &str = "interop/differential/run.py";
const DIFFERENTIAL_TRANSCRIPT: &str = "differential.json";
const DIFFERENTIAL_REALM: &str = "differential";
/// The deliberate differences the comparison leaves out.
const DIFFERENCES: &str = "interop/differential/differences.json";

/// How long a router may take to listen on its ports (crossbar: about 3 s).
const ROUTER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a peer may take to join and register (they start together).
const PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a peer may take to leave after SIGTERM.
const PEER_GRACE: Duration = Duration::from_secs(5);
/// Time limit for one run of the program or of the router check.
const RUN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A WAMP router to test against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouterKind {
    /// Crossbar.io, the reference router.
    Crossbar,
    /// Ours: `fahrbahn router`.
    Fahrbahn,
}

/// Every router, in the order of the runs.
const ROUTERS: [RouterKind; 2] = [RouterKind::Crossbar, RouterKind::Fahrbahn];

impl RouterKind {
    fn name(self) -> &'static str {
        match self {
            RouterKind::Crossbar => "crossbar",
            RouterKind::Fahrbahn => "fahrbahn",
        }
    }
}

/// Options of `cargo xtask interop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    runtimes: Vec<&'static str>,
    routers: Vec<RouterKind>,
}

impl Default for Options {
    /// Every runtime and router.
    fn default() -> Self {
        Self {
            runtimes: RUNTIMES.to_vec(),
            routers: ROUTERS.to_vec(),
        }
    }
}

impl Options {
    /// Parses the options of `cargo xtask interop`.
    pub(crate) fn parse(args: &mut Args) -> Result<Self> {
        let mut options = Self::default();
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--runtime" => {
                    let value = args.value(&flag)?;
                    options.runtimes = choose(&RUNTIMES, |r| r, &value, &flag)?;
                }
                "--router" => {
                    let value = args.value(&flag)?;
                    options.routers = choose(&ROUTERS, RouterKind::name, &value, &flag)?;
                }
                _ => return Err(cli::unknown(&flag)),
            }
        }
        Ok(options)
    }
}

/// The choice named `value`, or all of them for `all`.
fn choose<T: Copy>(
    choices: &[T],
    name: impl Fn(T) -> &'static str,
    value: &str,
    flag: &str,
) -> Result<Vec<T>> {
    if value == "all" {
        return Ok(choices.to_vec());
    }
    match choices.iter().find(|c| name(**c) == value) {
        Some(choice) => Ok(vec![*choice]),
        None => {
            let names: Vec<&str> = choices.iter().map(|c| name(*c)).collect();
            Err(format!(
                "{flag} must be one of {} or all, not `{value}`",
                names.join(", ")
            ))
        }
    }
}

/// The step of `cargo xtask test`: the default matrix, as (name, run).
pub(crate) fn steps_for_test() -> Vec<(String, Box<dyn FnOnce() -> Tally>)> {
    let step: Box<dyn FnOnce() -> Tally> = Box::new(|| task(Options::default()));
    vec![(
        "interop (crossbar and fahrbahn router, default matrix)".to_owned(),
        step,
    )]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    WebSocket,
    RawSocket,
}

use Transport::{RawSocket, WebSocket};

impl Transport {
    fn short(self) -> &'static str {
        match self {
            WebSocket => "ws",
            RawSocket => "rs",
        }
    }

    fn url(self, ports: Ports) -> String {
        match self {
            WebSocket => format!("ws://127.0.0.1:{}/ws", ports.websocket),
            RawSocket => format!("rs://127.0.0.1:{}", ports.rawsocket),
        }
    }

    /// The URL of the router's authenticating endpoint: path `/auth` of
    /// the WebSocket port `auth_ws` (Crossbar.io: its WebSocket port;
    /// Fahrbahn: a listener of its own), and the RawSocket transport
    /// (which accepts anonymous sessions too).
    fn auth_url(self, ports: Ports, auth_ws: u16) -> String {
        match self {
            WebSocket => format!("ws://127.0.0.1:{auth_ws}/auth"),
            RawSocket => self.url(ports),
        }
    }
}

/// The runs of the authentication scenarios of our client, against both
/// routers.
const AUTH_CELLS: [Cell; 2] = [
    cell("json", false, WebSocket),
    cell("cbor", false, RawSocket),
];

/// The authentication checks of AutobahnPython clients, against both
/// routers.
const AUTH_CHECK: &str = "interop/peers/auth_check.py";

/// The runs of `auth_check.py`.
const AUTH_CHECKS: [Cell; 2] = [
    cell("json", false, WebSocket),
    cell("cbor", false, RawSocket),
];

/// The options of `auth_check.py` for `cell`.
fn auth_check_args(cell: Cell, ports: Ports, auth_ws: u16) -> Vec<String> {
    vec![
        "--url".to_owned(),
        cell.transport.auth_url(ports, auth_ws),
        "--serializer".to_owned(),
        cell.serializer.to_owned(),
    ]
}

/// The program's options for an authentication run.
fn auth_args(cell: Cell, ports: Ports, auth_ws: u16) -> Vec<String> {
    vec![
        "--auth".to_owned(),
        "--runtime".to_owned(),
        "tokio".to_owned(),
        "--url".to_owned(),
        cell.transport.auth_url(ports, auth_ws),
        "--serializer".to_owned(),
        cell.serializer.to_owned(),
        "--realm".to_owned(),
        REALM.to_owned(),
    ]
}

/// A serialization and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    serializer: &'static str,
    batched: bool,
    transport: Transport,
}

const fn cell(serializer: &'static str, batched: bool, transport: Transport) -> Cell {
    Cell {
        serializer,
        batched,
        transport,
    }
}

/// The runs of `router_check.py` against the Fahrbahn router: every
/// serializer on both transports, and json batched on WebSocket.
const CHECKS: [Cell; 7] = [
    cell("json", false, WebSocket),
    cell("msgpack", false, WebSocket),
    cell("cbor", false, WebSocket),
    cell("json", true, WebSocket),
    cell("json", false, RawSocket),
    cell("msgpack", false, RawSocket),
    cell("cbor", false, RawSocket),
];

/// The runs of `authz_check.py`, against both routers.
const AUTHZ_CHECKS: [Cell; 2] = [
    cell("json", false, WebSocket),
    cell("msgpack", false, RawSocket),
];

/// The options of `authz_check.py` for `cell`.
fn authz_args(cell: Cell, ports: Ports) -> Vec<String> {
    let mut args = vec!["--url".to_owned(), cell.transport.url(ports)];
    args.extend(["--serializer".to_owned(), cell.serializer.to_owned()]);
    args.extend(["--realm".to_owned(), AUTHZ_REALM.to_owned()]);
    args
}

/// Runs of `router_check.py` with B (callee, subscriber) on another
/// serializer than A and C: the router transcodes every payload between
/// them (the others forward the received bytes).
const MIXED_CHECKS: [(Cell, &str); 2] = [
    (cell("json", false, WebSocket), "msgpack"),
    (cell("cbor", false, RawSocket), "json"),
];

impl Cell {
    fn serialization(&self) -> String {
        let batched = if self.batched { ".batched" } else { "" };
        format!("{}{batched}", self.serializer)
    }

    /// E.g. `json.batched ws`.
    fn name(&self) -> String {
        format!("{} {}", self.serialization(), self.transport.short())
    }

    /// For URI prefixes, e.g. `json_batched.ws`.
    fn uri_part(&self) -> String {
        let serialization = self.serialization().replace('.', "_");
        format!("{serialization}.{}", self.transport.short())
    }

    /// The options the scripts and the program share.
    fn args(&self, ports: Ports, prefix: String) -> Vec<String> {
        let mut args = vec!["--url".to_owned(), self.transport.url(ports)];
        args.extend(["--serializer".to_owned(), self.serializer.to_owned()]);
        if self.batched {
            args.push("--batched".to_owned());
        }
        args.extend(["--prefix".to_owned(), prefix]);
        args.extend(["--realm".to_owned(), REALM.to_owned()]);
        args
    }
}

/// One cell of the matrix of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    runtime: &'static str,
    cell: Cell,
}

/// The runs for `runtime`: every serializer and transport on tokio, a
/// sample on the others (the WAMP code above the runtime is shared).
fn matrix(runtime: &'static str) -> Vec<Run> {
    let cells: &[Cell] = match runtime {
        "tokio" => &[
            cell("json", false, WebSocket),
            cell("json", false, RawSocket),
            cell("msgpack", false, WebSocket),
            cell("msgpack", false, RawSocket),
            cell("cbor", false, WebSocket),
            cell("cbor", false, RawSocket),
            cell("json", true, WebSocket),
        ],
        "smol" => &[
            cell("msgpack", false, RawSocket),
            cell("json", false, WebSocket),
        ],
        _ => &[cell("cbor", false, WebSocket)],
    };
    cells.iter().map(|&cell| Run { runtime, cell }).collect()
}

impl Run {
    /// E.g. `tokio json.batched ws`.
    fn name(&self) -> String {
        format!("{} {}", self.runtime, self.cell.name())
    }

    /// The URI prefix of the run's peer, e.g. `interop.py.tokio.json_batched.ws`.
    fn prefix(&self) -> String {
        let runtime = self.runtime.replace('-', "_");
        format!("interop.py.{runtime}.{}", self.cell.uri_part())
    }

    /// The options the peer and the program share.
    fn args(&self, ports: Ports) -> Vec<String> {
        self.cell.args(ports, self.prefix())
    }
}

/// For file names, e.g. `tokio-json.batched-ws`.
fn slug(name: &str) -> String {
    name.replace(' ', "-")
}

/// A line of the summary: the router, the run and its tally.
type Summary = (RouterKind, String, Tally);

/// Runs the matrix for the selected runtimes against the selected routers.
pub(crate) fn task(options: Options) -> Tally {
    let mut tally = Tally::default();
    let runs: Vec<Run> = options.runtimes.iter().flat_map(|r| matrix(r)).collect();
    let mut results = Vec::new();
    let dir = match prepare() {
        Ok(setup) => {
            for &router in &options.routers {
                if let Err(e) = execute(router, &setup, &runs, &mut results) {
                    tally.broke(format!("{}: {e}", router.name()));
                }
            }
            if ROUTERS.iter().all(|r| options.routers.contains(r)) {
                let name = "differential vs crossbar".to_owned();
                eprintln!("==> {name}");
                let run_tally = differential_compare(&setup);
                eprintln!("    {run_tally}");
                results.push((RouterKind::Fahrbahn, name, run_tally));
            }
            Some(setup.dir)
        }
        Err(e) => {
            tally.broke(e);
            None
        }
    };
    if let Some(dir) = dir {
        println!("interop results (logs in {}):", dir.display());
    } else if !results.is_empty() {
        println!("interop results:");
    }
    for (router, name, run_tally) in &results {
        println!("    {:<10}{name:<30} {run_tally}", router.name());
        tally.add(*run_tally);
    }
    tally
}

/// What every router's part needs.
struct Setup {
    /// `target/interop/run/`.
    dir: PathBuf,
    /// The `wamp_interop` program.
    program: PathBuf,
    venv: Venv,
}

/// Empties the run directory, builds the program and installs the venv.
fn prepare() -> Result<Setup> {
    let dir = cargo::target_dir()?.join("interop").join("run");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let program = prebuilt(PROGRAM_VAR, "program").map_or_else(
        || cargo::build_example(PROGRAM_PACKAGE, PROGRAM_EXAMPLE, PROGRAM_FEATURES),
        Ok,
    )?;
    let venv = Venv::find_or_install()?;
    Ok(Setup { dir, program, venv })
}

/// The path in the environment variable `var`, if set.
fn prebuilt(var: &str, what: &str) -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os(var)?);
    eprintln!("==> {what}: {} (from {var})", path.display());
    Some(path)
}

/// The `fahrbahn` binary: the one named by [`ROUTER_VAR`], else built.
pub(crate) fn router_program() -> Result<PathBuf> {
    prebuilt(ROUTER_VAR, "router").map_or_else(build_router, Ok)
}

/// Builds `fahrbahn` (release) and returns its path.
fn build_router() -> Result<PathBuf> {
    let mut cmd = cargo::command(["build", "--release", "--package", ROUTER_PACKAGE]);
    cmd.args(["--bin", ROUTER_BIN]);
    eprintln!("==> {}", describe(&cmd));
    if !process::run(&mut cmd)? {
        return Err(format!("building {ROUTER_PACKAGE} failed"));
    }
    let path = cargo::target_dir()?.join("release").join(ROUTER_BIN);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} missing after the build", path.display()))
    }
}

/// The listeners `cargo xtask interop` adds to `interop/router.toml`: the
/// anonymous WebSocket one (`/ws` of Crossbar.io), the RawSocket one
/// (anonymous and every method, as Crossbar.io's RawSocket transport) and
/// the authenticating WebSocket one (`/auth` of Crossbar.io).
fn fahrbahn_listeners(ports: Ports, auth_ws: u16) -> String {
    let origin = router::ALLOWED_ORIGIN;
    format!(
        r#"
# Added by `cargo xtask interop`.
[[listener]]
transport = "websocket"
address = "127.0.0.1:{ws}"
auth = ["anonymous"]
allowed_origins = ["{origin}"]

[[listener]]
transport = "rawsocket"
address = "127.0.0.1:{rs}"
auth = ["anonymous", "ticket", "wampcra", "cryptosign", "scram"]

[[listener]]
transport = "websocket"
address = "127.0.0.1:{auth_ws}"
auth = ["ticket", "wampcra", "cryptosign", "scram"]
allowed_origins = ["{origin}"]
"#,
        ws = ports.websocket,
        rs = ports.rawsocket,
    )
}

/// Starts `fahrbahn router` with `interop/router.toml` and the listeners of
/// [`fahrbahn_listeners`] (written to `dir/router.toml`).
fn spawn_fahrbahn(dir: &Path, ports: Ports, auth_ws: u16, log: &Path) -> Result<Service> {
    let base = cargo::workspace_root().join(router::CONFIG);
    let text = std::fs::read_to_string(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let config = dir.join("router.toml");
    std::fs::write(&config, text + &fahrbahn_listeners(ports, auth_ws))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let (out, err) = log_to(log)?;
    let mut cmd = Command::new(router_program()?);
    cmd.arg("router")
        .arg("--config")
        .arg(&config)
        .current_dir(dir)
        .stdout(out)
        .stderr(err);
    Service::spawn_group("fahrbahn router", &mut cmd, Duration::from_secs(10))
}

/// A running router, stopped when dropped.
struct Router {
    kind: RouterKind,
    service: Service,
    log: PathBuf,
}

impl Router {
    /// Starts `kind` on `ports` with its files in `dir` (log: `router.log`)
    /// and waits until it listens.
    fn start(
        kind: RouterKind,
        venv: &Venv,
        dir: &Path,
        ports: Ports,
        auth_ws: u16,
    ) -> Result<Self> {
        let log = dir.join("router.log");
        let mut service = match kind {
            RouterKind::Crossbar => crossbar::spawn(venv, dir, ports, &log)?,
            RouterKind::Fahrbahn => spawn_fahrbahn(dir, ports, auth_ws, &log)?,
        };
        eprintln!(
            "==> starting {}: {} and {} (log: {})",
            kind.name(),
            WebSocket.url(ports),
            RawSocket.url(ports),
            log.display()
        );
        let start = Instant::now();
        for port in [ports.websocket, ports.rawsocket, auth_ws] {
            service
                .wait_for_port(port, ROUTER_TIMEOUT)
                .map_err(|e| with_log(&log, e))?;
        }
        eprintln!("    listening after {:.1}s", start.elapsed().as_secs_f32());
        Ok(Self { kind, service, log })
    }

    /// `None` while running, else why it is not.
    fn check(&mut self) -> Option<String> {
        let status = self.service.exited()?;
        let e = format!("{} exited ({status})", self.kind.name());
        Some(with_log(&self.log, e))
    }

    /// Stops the router (SIGTERM, then SIGKILL to its process group).
    fn stop(&mut self) {
        eprintln!("==> stopping {}", self.kind.name());
        self.service.stop();
    }
}

/// The part of one router: starts it, runs the router checks (Fahrbahn
/// only), starts the peers and does the runs. Everything started is stopped
/// on return, also on errors.
fn execute(
    kind: RouterKind,
    setup: &Setup,
    runs: &[Run],
    results: &mut Vec<Summary>,
) -> Result<()> {
    let dir = setup.dir.join(kind.name());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ports = free_ports()?;
    // Crossbar.io authenticates on a path of its WebSocket port, Fahrbahn
    // on a listener of its own.
    let auth_ws = match kind {
        RouterKind::Crossbar => ports.websocket,
        RouterKind::Fahrbahn => (0..10)
            .map(|_| process::free_port())
            .find(|p| {
                p.as_ref()
                    .is_ok_and(|p| ![ports.websocket, ports.rawsocket].contains(p))
            })
            .unwrap_or_else(|| Err("no third free port".to_owned()))?,
    };
    let mut router = Router::start(kind, &setup.venv, &dir, ports, auth_ws)?;
    let mut record = |router: &mut Router, name: String, run: &mut dyn FnMut() -> Tally| {
        let tally = match router.check() {
            Some(e) => {
                let mut tally = Tally::default();
                tally.broke(e);
                tally
            }
            None => run(),
        };
        eprintln!("    {tally}");
        results.push((kind, name, tally));
    };

    if kind == RouterKind::Fahrbahn {
        let checks: Vec<(Cell, Option<&str>)> = CHECKS
            .iter()
            .map(|c| (*c, None))
            .chain(MIXED_CHECKS.iter().map(|(c, b)| (*c, Some(*b))))
            .collect();
        for (i, (cell, serializer_b)) in checks.iter().enumerate() {
            let (name, prefix) = match serializer_b {
                None => (
                    format!("router_check {}", cell.name()),
                    format!("interop.check.{}", cell.uri_part()),
                ),
                Some(b) => (
                    format!("router_check {} B {b}", cell.name()),
                    format!("interop.check.{}.b_{b}", cell.uri_part()),
                ),
            };
            eprintln!("==> [{}/{}] {} {name}", i + 1, checks.len(), kind.name());
            record(&mut router, name.clone(), &mut || {
                let mut cmd = setup.venv.python();
                cmd.arg("-u")
                    .arg(cargo::workspace_root().join(CHECK))
                    .args(cell.args(ports, prefix.clone()));
                if let Some(b) = serializer_b {
                    cmd.args(["--serializer-b", b]);
                }
                run_counted(&mut cmd, "router_check.py", &name, &dir)
            });
        }
    }

    // Static authorization, the same roles on both routers: the same
    // refusals are expected from each.
    for cell in AUTHZ_CHECKS {
        let name = format!("authz_check {}", cell.name());
        eprintln!("==> {} {name}", kind.name());
        record(&mut router, name.clone(), &mut || {
            let mut cmd = setup.venv.python();
            cmd.arg("-u")
                .arg(cargo::workspace_root().join(AUTHZ_CHECK))
                .args(authz_args(cell, ports));
            run_counted(&mut cmd, "authz_check.py", &name, &dir)
        });
    }

    // Authentication with every method, the same expectations from both
    // routers.
    for cell in AUTH_CHECKS {
        let name = format!("auth_check {}", cell.name());
        eprintln!("==> {} {name}", kind.name());
        record(&mut router, name.clone(), &mut || {
            let mut cmd = setup.venv.python();
            cmd.arg("-u")
                .arg(cargo::workspace_root().join(AUTH_CHECK))
                .args(auth_check_args(cell, ports, auth_ws));
            run_counted(&mut cmd, "auth_check.py", &name, &dir)
        });
    }

    // The differential suite: recorded here, compared once both routers
    // ran (`differential_compare`).
    eprintln!("==> {} differential record", kind.name());
    if let Some(e) = router.check() {
        return Err(e);
    }
    differential_record(setup, &dir, ports)?;

    let start = Instant::now();
    let mut peers = Vec::new();
    for run in runs {
        peers.push(start_peer(&setup.venv, &dir, run, ports));
    }
    let mut ready = 0;
    for (run, slot) in runs.iter().zip(&mut peers) {
        let Ok(peer) = slot else { continue };
        match peer.service.wait_for_line(&peer.log, "READY", PEER_TIMEOUT) {
            Ok(_) => ready += 1,
            Err(e) => {
                // stopped here: a peer that never got ready is of no use
                *slot = Err(with_log(&peer.log, format!("{}: {e}", run.name())));
            }
        }
    }
    eprintln!(
        "==> {ready} of {} peers ready after {:.1}s",
        runs.len(),
        start.elapsed().as_secs_f32()
    );

    for (i, (run, peer)) in runs.iter().zip(&mut peers).enumerate() {
        let name = run.name();
        eprintln!("==> [{}/{}] {} {name}", i + 1, runs.len(), kind.name());
        record(&mut router, name.clone(), &mut || match peer {
            Err(e) => {
                let mut tally = Tally::default();
                tally.broke(format!("no peer: {e}"));
                tally
            }
            Ok(peer) => {
                let mut cmd = Command::new(&setup.program);
                cmd.args(["--runtime", run.runtime]).args(run.args(ports));
                let mut tally = run_counted(&mut cmd, PROGRAM_EXAMPLE, &name, &dir);
                if let Some(status) = peer.service.exited() {
                    let e = format!("{name}: the peer exited during the run ({status})");
                    tally.broke(with_log(&peer.log, e));
                }
                tally
            }
        });
    }

    eprintln!("==> stopping the peers");
    drop(peers);

    {
        let name = "cli auth ws".to_owned();
        eprintln!("==> {} {name}", kind.name());
        record(&mut router, name, &mut || match router_program() {
            Ok(cli) => cli_auth(&cli, WebSocket.auth_url(ports, auth_ws), &dir),
            Err(e) => {
                let mut tally = Tally::default();
                tally.broke(format!("no fahrbahn binary: {e}"));
                tally
            }
        });
        for (i, cell) in AUTH_CELLS.iter().enumerate() {
            let name = format!("auth {}", cell.name());
            eprintln!(
                "==> [{}/{}] {} {name}",
                i + 1,
                AUTH_CELLS.len(),
                kind.name()
            );
            record(&mut router, name.clone(), &mut || {
                let mut cmd = Command::new(&setup.program);
                cmd.args(auth_args(*cell, ports, auth_ws));
                run_counted(&mut cmd, PROGRAM_EXAMPLE, &name, &dir)
            });
        }
    }
    router.stop();
    Ok(())
}

/// Records the differential suite against the router on `ports` into
/// `dir/differential.json` (log: `dir/differential-record.log`).
fn differential_record(setup: &Setup, dir: &Path, ports: Ports) -> Result<()> {
    let log = dir.join("differential-record.log");
    let (out, err) = log_to(&log)?;
    let mut cmd = setup.venv.python();
    cmd.arg("-u")
        .arg(cargo::workspace_root().join(DIFFERENTIAL))
        .arg("record")
        .args(["--url", &WebSocket.url(ports)])
        .args(["--realm", DIFFERENTIAL_REALM])
        .arg("--out")
        .arg(dir.join(DIFFERENTIAL_TRANSCRIPT))
        // Our client's part (the `rust_client` scenario).
        .env("FAHRBAHN_DIFF_RUST_CLIENT", &setup.program)
        .current_dir(dir)
        .stdout(out)
        .stderr(err);
    let status = Running::spawn("differential record", &mut cmd)?
        .wait(RUN_TIMEOUT, String::new)
        .map_err(|e| with_log(&log, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(with_log(
            &log,
            format!("differential record failed ({status})"),
        ))
    }
}

/// Compares the two routers' recordings of the differential suite: one
/// `PASS`/`FAIL` per scenario.
fn differential_compare(setup: &Setup) -> Tally {
    let [reference, candidate] =
        ROUTERS.map(|r| setup.dir.join(r.name()).join(DIFFERENTIAL_TRANSCRIPT));
    let missing: Vec<String> = [&reference, &candidate]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        let mut tally = Tally::default();
        tally.broke(format!("differential: no recording {}", missing.join(", ")));
        return tally;
    }
    let mut cmd = setup.venv.python();
    cmd.arg("-u")
        .arg(cargo::workspace_root().join(DIFFERENTIAL))
        .arg("compare")
        .arg(&reference)
        .arg(&candidate);
    let tally = run_counted(&mut cmd, "run.py compare", "differential", &setup.dir);
    eprintln!(
        "    deliberate differences: {DIFFERENCES} (each with its reason; listed in {})",
        setup.dir.join("differential.log").display()
    );
    tally
}

/// The seed of the `cs-user` principal of `interop/crossbar/config.json`.
const CS_SEED: &str = "c997d2deeccd7445918409bd47a68b11b0a5203c633b5aa8646539fbda14ddc7";

/// The `fahrbahn` command line against the router's auth endpoint: `call`
/// of a procedure nobody registered with each method (credentials from a
/// file, the environment and the command line), which must fail with
/// `wamp.error.no_such_procedure` (the session joined: the router
/// answered), and a wrong ticket, which must fail with
/// `wamp.error.not_authorized`. Each case prints `PASS`/`FAIL` to the
/// log `dir/cli-auth.log`.
fn cli_auth(cli: &Path, url: String, dir: &Path) -> Tally {
    let mut tally = Tally::default();
    let key = dir.join("cs-user.key");
    let password = dir.join("scram-password");
    if let Err(e) = std::fs::write(&key, format!("{CS_SEED}\n"))
        .and_then(|()| std::fs::write(&password, "scram-secret\n"))
    {
        tally.broke(format!("cannot write the credentials: {e}"));
        return tally;
    }
    let key = key.display().to_string();
    let password = format!("file:{}", password.display());
    let cases: [(&str, Vec<&str>, bool); 5] = [
        (
            "cryptosign",
            vec!["--authmethod", "cryptosign", "--private-key", &key],
            true,
        ),
        (
            "wampcra_salted",
            vec![
                "--authmethod",
                "wampcra",
                "--authid",
                "cra-salted",
                "--secret",
                "env:XTASK_CRA_SECRET",
            ],
            true,
        ),
        (
            "scram",
            vec!["--authid", "scram-user", "--password", &password],
            true,
        ),
        (
            "ticket",
            vec!["--authid", "ticket-user", "--ticket", "ticket-secret"],
            true,
        ),
        (
            "ticket_wrong",
            vec!["--authid", "ticket-user", "--ticket", "wrong"],
            false,
        ),
    ];
    let mut log = String::new();
    for (name, args, ok) in cases {
        let output = Command::new(cli)
            .args(["call", "com.fahrbahn.interop.nobody", "--url", &url])
            .args(&args)
            .env("XTASK_CRA_SECRET", "cra-salted-secret")
            .env_remove("WAMP_PRIVATE_KEY")
            .current_dir(dir)
            .output();
        let verdict = match output {
            Err(e) => Err(format!("cannot run {}: {e}", cli.display())),
            Ok(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                let joined = stderr.contains("wamp.error.no_such_procedure");
                match (ok, out.status.success()) {
                    (true, false) if joined => Ok(()),
                    (false, false) if stderr.contains("wamp.error.not_authorized") => Ok(()),
                    _ => Err(format!(
                        "{} stdout {stdout:?} stderr {stderr:?}",
                        out.status
                    )),
                }
            }
        };
        tally.record(verdict.is_ok());
        match verdict {
            Ok(()) => log.push_str(&format!("PASS cli_{name}\n")),
            Err(why) => {
                eprintln!("    FAIL cli_{name}: {why}");
                log.push_str(&format!("FAIL cli_{name}: {why}\n"));
            }
        }
    }
    let _ = std::fs::write(dir.join("cli-auth.log"), log);
    tally
}

/// A running peer and its log file.
struct Peer {
    service: Service,
    log: PathBuf,
}

fn start_peer(venv: &Venv, dir: &Path, run: &Run, ports: Ports) -> Result<Peer> {
    let log = dir.join(format!("peer-{}.log", slug(&run.name())));
    let (out, err) = log_to(&log)?;
    let mut cmd = venv.python();
    cmd.arg("-u")
        .arg(cargo::workspace_root().join(PEER))
        .args(run.args(ports))
        .current_dir(dir)
        .stdout(out)
        .stderr(err);
    let service = Service::spawn(
        &format!("the peer for {}", run.name()),
        &mut cmd,
        PEER_GRACE,
    )?;
    Ok(Peer { service, log })
}

/// Runs `cmd` (`what`: the program's name) for the run `name` in `dir`, with
/// its output in `dir/<name>.log`, and counts its `PASS` and `FAIL` lines.
fn run_counted(cmd: &mut Command, what: &str, name: &str, dir: &Path) -> Tally {
    let log = dir.join(format!("{}.log", slug(name)));
    let result = (|| {
        let (out, err) = log_to(&log)?;
        cmd.current_dir(dir).stdout(out).stderr(err);
        Running::spawn(what, cmd)?.wait(RUN_TIMEOUT, || {
            let (tally, _) = count(&std::fs::read_to_string(&log).unwrap_or_default());
            format!("({tally} so far)")
        })
    })();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let (mut tally, failures) = count(&text);
    for failure in failures {
        eprintln!("    {failure}");
    }
    match result {
        Err(e) => tally.broke(with_log(&log, format!("{name}: {e}"))),
        Ok(status) => {
            if let Some(problem) = verdict(status, tally) {
                tally.broke(with_log(&log, format!("{name}: {what} {problem}")));
            }
        }
    }
    tally
}

/// The tally of the `PASS`/`FAIL` lines in `output`, and the `FAIL` lines.
fn count(output: &str) -> (Tally, Vec<&str>) {
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for line in output.lines() {
        if line.starts_with("PASS ") {
            tally.pass();
        } else if line.starts_with("FAIL ") {
            tally.fail();
            failures.push(line);
        }
    }
    (tally, failures)
}

/// What is wrong with a finished run beyond its `FAIL` lines, if anything.
fn verdict(status: ExitStatus, tally: Tally) -> Option<String> {
    if tally == Tally::default() {
        Some(format!("printed no PASS or FAIL lines ({status})"))
    } else if !status.success() && tally.is_success() {
        Some(format!("failed ({status}) without a FAIL line"))
    } else if status.success() && !tally.is_success() {
        Some("printed FAIL lines but exited with 0".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        cli::parse(Options::parse, &args)
    }

    #[test]
    fn options() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        assert_eq!(parse(&[]).unwrap().runtimes, RUNTIMES);
        assert_eq!(parse(&[]).unwrap().routers, ROUTERS);
        assert_eq!(parse(&["--runtime=all"]).unwrap().runtimes, RUNTIMES);
        assert_eq!(parse(&["--runtime", "smol"]).unwrap().runtimes, ["smol"]);
        assert!(parse(&["--runtime", "glommio"]).is_err());
        let fahrbahn = parse(&["--router", "fahrbahn", "--runtime", "tokio"]).unwrap();
        assert_eq!(fahrbahn.routers, [RouterKind::Fahrbahn]);
        assert_eq!(fahrbahn.runtimes, ["tokio"]);
        assert_eq!(
            parse(&["--router=crossbar"]).unwrap().routers,
            [RouterKind::Crossbar]
        );
        assert_eq!(parse(&["--router", "all"]).unwrap().routers, ROUTERS);
        let e = parse(&["--router", "wampy"]).unwrap_err();
        assert!(e.contains("crossbar, fahrbahn or all"), "{e}");
        assert!(parse(&["--router"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn default_matrix() {
        let runs: Vec<String> = RUNTIMES
            .iter()
            .flat_map(|r| matrix(r))
            .map(|r| r.name())
            .collect();
        assert_eq!(runs.len(), 10);
        assert_eq!(runs[6], "tokio json.batched ws");
        assert_eq!(runs[9], "async-std cbor ws");
        assert_eq!(slug(&runs[6]), "tokio-json.batched-ws");
        let run = matrix("tokio")[6];
        assert_eq!(run.prefix(), "interop.py.tokio.json_batched.ws");
        assert_eq!(
            matrix("async-std")[0].prefix(),
            "interop.py.async_std.cbor.ws"
        );
        let ports = Ports {
            websocket: 1,
            rawsocket: 2,
        };
        assert_eq!(
            run.args(ports).join(" "),
            "--url ws://127.0.0.1:1/ws --serializer json --batched \
             --prefix interop.py.tokio.json_batched.ws --realm realm1"
        );
        assert_eq!(matrix("smol")[0].args(ports)[1], "rs://127.0.0.1:2");
        assert_eq!(steps_for_test().len(), 1);
    }

    #[test]
    fn router_checks() {
        let names: Vec<String> = CHECKS.iter().map(Cell::name).collect();
        assert_eq!(
            names,
            [
                "json ws",
                "msgpack ws",
                "cbor ws",
                "json.batched ws",
                "json rs",
                "msgpack rs",
                "cbor rs"
            ]
        );
        // batched only on WebSocket (RawSocket has no batched mode)
        assert!(
            CHECKS
                .iter()
                .all(|c| !c.batched || c.transport == WebSocket)
        );
        assert_eq!(CHECKS[3].uri_part(), "json_batched.ws");
        // The mixed runs put B on another serializer than A and C.
        assert!(MIXED_CHECKS.iter().all(|(c, b)| c.serializer != *b));
        let ports = Ports {
            websocket: 1,
            rawsocket: 2,
        };
        assert_eq!(
            CHECKS[6].args(ports, "p".to_owned()).join(" "),
            "--url rs://127.0.0.1:2 --serializer cbor --prefix p --realm realm1"
        );
        let root = cargo::workspace_root();
        assert!(root.join(CHECK).is_file() && root.join(PEER).is_file());
        assert!(root.join(AUTHZ_CHECK).is_file());
        assert_eq!(
            authz_args(AUTHZ_CHECKS[1], ports).join(" "),
            "--url rs://127.0.0.1:2 --serializer msgpack --realm restricted"
        );
    }

    #[test]
    fn auth_runs() {
        let ports = Ports {
            websocket: 1,
            rawsocket: 2,
        };
        assert_eq!(
            auth_args(AUTH_CELLS[0], ports, 3).join(" "),
            "--auth --runtime tokio --url ws://127.0.0.1:3/auth --serializer json --realm realm1"
        );
        assert_eq!(auth_args(AUTH_CELLS[1], ports, 3)[4], "rs://127.0.0.1:2");
        assert_eq!(
            auth_check_args(AUTH_CHECKS[0], ports, 3).join(" "),
            "--url ws://127.0.0.1:3/auth --serializer json"
        );
    }

    /// The listeners added to the Fahrbahn router's configuration: the
    /// three ports and what each accepts (the router checks the rest when
    /// it starts).
    #[test]
    fn fahrbahn_listeners() {
        let ports = Ports {
            websocket: 1,
            rawsocket: 2,
        };
        let text = super::fahrbahn_listeners(ports, 3);
        assert_eq!(text.matches("[[listener]]").count(), 3);
        for expected in [
            "address = \"127.0.0.1:1\"\nauth = [\"anonymous\"]",
            "address = \"127.0.0.1:2\"\nauth = [\"anonymous\", \"ticket\"",
            "address = \"127.0.0.1:3\"\nauth = [\"ticket\"",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
    }

    #[test]
    fn counting() {
        let output = "log line\nPASS add2\nFAIL echo: kwargs lost\nPASS  x\nFAILED\n";
        let (tally, failures) = count(output);
        assert_eq!((tally.passed, tally.failed), (2, 1));
        assert_eq!(failures, ["FAIL echo: kwargs lost"]);
        let ok = ExitStatus::from_raw(0);
        let failed = ExitStatus::from_raw(1 << 8);
        assert!(verdict(ok, tally).is_some());
        assert!(verdict(failed, tally).is_none());
        assert!(verdict(ok, Tally::default()).is_some());
        let passed = Tally {
            passed: 1,
            failed: 0,
        };
        assert!(verdict(failed, passed).is_some());
        assert!(verdict(ok, passed).is_none());
    }
}

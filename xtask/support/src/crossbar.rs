//! Crossbar.io, the reference WAMP router of the interop runs and the WAMP
//! benchmarks: installing it (and AutobahnPython) into a Python venv,
//! writing its node config and running it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::Result;
use crate::cargo::workspace_root;
use crate::process::{describe, log_to};
use crate::router::Ports;
use crate::service::Service;

/// Python requirements, relative to the workspace root (they include the
/// constraints file next to them).
const REQUIREMENTS: &str = "interop/requirements.txt";
/// Exact versions of everything, relative to the workspace root.
const CONSTRAINTS: &str = "interop/constraints.txt";
/// The node config, relative to the workspace root; [`config`] puts the
/// ports in.
const CONFIG: &str = "interop/crossbar/config.json";

/// Environment variable naming the venv (default
/// `${XDG_CACHE_HOME:-~/.cache}/fahrbahn/crossbar-venv`).
const VENV_VAR: &str = "FAHRBAHN_CROSSBAR_VENV";
/// Environment variable naming the Python that creates the venv (default
/// `python3`).
const PYTHON_VAR: &str = "FAHRBAHN_PYTHON";
/// Records what is installed; the install is skipped when it matches.
const STAMP_FILE: &str = ".fahrbahn-stamp";
/// Marks a directory this installer created (others are never cleared).
const MARKER_FILE: &str = ".fahrbahn-crossbar-venv";
/// Bump to force a reinstall when the install steps change.
const STAMP_VERSION: &str = "fahrbahn crossbar venv 1";

/// How long crossbar may take to stop after SIGTERM (about 2 s usually).
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A Python venv with crossbar and AutobahnPython installed.
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// The venv, installed first if it is missing or out of date.
    pub fn find_or_install() -> Result<Self> {
        let dir = match env::var_os(VENV_VAR) {
            Some(dir) => PathBuf::from(dir),
            None => default_cache()?.join("fahrbahn").join("crossbar-venv"),
        };
        let venv = Self { dir };
        let want = venv.wanted_stamp()?;
        let have = std::fs::read_to_string(venv.dir.join(STAMP_FILE)).unwrap_or_default();
        if have != want || !venv.bin("crossbar").exists() {
            venv.install(&want)?;
        }
        Ok(venv)
    }

    /// An executable of the venv.
    fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// The venv's Python, with `PYTHONSAFEPATH=1`: stray `*.py` files in the
    /// working directory or next to a script must not shadow the stdlib.
    pub fn python(&self) -> Command {
        safe(Command::new(self.bin("python")))
    }

    /// The venv's `crossbar`.
    pub fn crossbar(&self) -> Command {
        safe(Command::new(self.bin("crossbar")))
    }

    /// What the stamp file must say: the requirements and the Python used.
    fn wanted_stamp(&self) -> Result<String> {
        let root = workspace_root();
        let read = |file: &str| {
            std::fs::read_to_string(root.join(file)).map_err(|e| format!("{file}: {e}"))
        };
        let mut cmd = base_python();
        cmd.args(["-c", "import sys; print(sys.version)"]);
        let output = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", describe(&cmd)))?;
        if !output.status.success() {
            return Err(format!("{} failed: {}", describe(&cmd), output.status));
        }
        Ok(format!(
            "{STAMP_VERSION}\npython {}\n{}{}",
            String::from_utf8_lossy(&output.stdout).trim(),
            read(REQUIREMENTS)?,
            read(CONSTRAINTS)?,
        ))
    }

    fn install(&self, stamp: &str) -> Result<()> {
        let dir = &self.dir;
        let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if occupied && !dir.join(MARKER_FILE).exists() {
            return Err(format!(
                "{} exists and was not created by xtask; remove it or set {VENV_VAR}",
                dir.display()
            ));
        }
        eprintln!(
            "==> installing crossbar into {} (about a minute, ~375 MB; needs PyPI)",
            dir.display()
        );
        let start = std::time::Instant::now();
        let mut venv = base_python();
        venv.args(["-m", "venv", "--clear"]).arg(dir);
        run(&mut venv)?;
        let marker = dir.join(MARKER_FILE);
        std::fs::write(&marker, "").map_err(|e| format!("{}: {e}", marker.display()))?;

        let mut pip = self.python();
        pip.args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .arg("-r")
            .arg(workspace_root().join(REQUIREMENTS));
        run(&mut pip)?;
        self.fix_bjdata();

        let mut version = self.crossbar();
        version.arg("version").stdout(Stdio::null());
        run(&mut version).map_err(|e| format!("crossbar does not run after the install: {e}"))?;
        let stamp_file = dir.join(STAMP_FILE);
        std::fs::write(&stamp_file, stamp).map_err(|e| format!("{}: {e}", stamp_file.display()))?;
        eprintln!("==> installed crossbar in {}s", start.elapsed().as_secs());
        Ok(())
    }

    /// bjdata (the UBJSON codec autobahn loads) is built from source against
    /// NumPy 1 and then cannot load its C extension under NumPy 2; it falls
    /// back to pure Python, but prints a traceback into the router log.
    /// Rebuilds it against the installed NumPy; failing is harmless.
    fn fix_bjdata(&self) {
        let mut check = self.python();
        check.args(["-c", "import bjdata"]);
        let broken = check
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stderr).contains("_ARRAY_API"));
        if !broken {
            return;
        }
        eprintln!("==> rebuilding bjdata against the installed NumPy");
        let mut version = self.python();
        version.args([
            "-c",
            "import importlib.metadata as m; print(m.version('bjdata'))",
        ]);
        let version = match version.output() {
            Ok(out) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
            _ => return,
        };
        let mut pip = self.python();
        pip.args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(["--no-build-isolation", "--no-binary", "bjdata"])
            .args(["--force-reinstall", "--no-deps", "--no-cache-dir"])
            .arg(format!("bjdata=={version}"));
        if !matches!(pip.status(), Ok(status) if status.success()) {
            eprintln!("note: rebuilding bjdata failed; UBJSON falls back to pure Python");
        }
    }
}

/// `$XDG_CACHE_HOME` or `~/.cache`.
fn default_cache() -> Result<PathBuf> {
    if let Some(dir) = env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache"))
        .ok_or_else(|| format!("HOME is not set; set {VENV_VAR}"))
}

/// The Python that creates the venv.
fn base_python() -> Command {
    safe(Command::new(
        env::var_os(PYTHON_VAR).unwrap_or_else(|| "python3".into()),
    ))
}

fn safe(mut cmd: Command) -> Command {
    cmd.env("PYTHONSAFEPATH", "1");
    cmd
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {status}", describe(cmd)))
    }
}

/// The node config (`interop/crossbar/config.json`) with `ports`: the transports with the ids
/// `websocket` and `rawsocket` get them.
pub fn config(ports: Ports) -> Result<String> {
    let path = workspace_root().join(CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut set = (false, false);
    let workers = config["workers"].as_array_mut().into_iter().flatten();
    for transport in workers.flat_map(|w| w["transports"].as_array_mut().into_iter().flatten()) {
        let port = match transport["id"].as_str() {
            Some("websocket") => {
                set.0 = true;
                ports.websocket
            }
            Some("rawsocket") => {
                set.1 = true;
                ports.rawsocket
            }
            id => return Err(format!("{CONFIG}: unexpected transport id {id:?}")),
        };
        transport["endpoint"]["port"] = port.into();
    }
    if set != (true, true) {
        return Err(format!(
            "{CONFIG} needs transports with the ids `websocket` and `rawsocket`"
        ));
    }
    Ok(serde_json::to_string_pretty(&config).expect("JSON values serialize"))
}

/// Writes the config with `ports` into `dir/node/` (the node directory) and
/// starts Crossbar.io with its output to `log`, as a [`Service`] that stops
/// the node (SIGTERM, then SIGKILL to its process group) when dropped. The
/// node listens a few seconds later.
pub fn spawn(venv: &Venv, dir: &Path, ports: Ports, log: &Path) -> Result<Service> {
    spawn_pinned(venv, dir, ports, log, None)
}

/// Like [`spawn`], with the node (and so its worker processes) pinned to
/// the CPUs `cpus` (a `taskset -c` list) when given.
pub fn spawn_pinned(
    venv: &Venv,
    dir: &Path,
    ports: Ports,
    log: &Path,
    cpus: Option<&str>,
) -> Result<Service> {
    let cbdir = dir.join("node");
    std::fs::create_dir_all(&cbdir).map_err(|e| format!("{}: {e}", cbdir.display()))?;
    let config_file = cbdir.join("config.json");
    std::fs::write(&config_file, config(ports)?)
        .map_err(|e| format!("{}: {e}", config_file.display()))?;
    let (out, err) = log_to(log)?;
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut cmd = safe(Command::new("taskset"));
            cmd.args(["-c", cpus]).arg(venv.bin("crossbar"));
            cmd
        }
        None => venv.crossbar(),
    };
    cmd.arg("start")
        .arg("--cbdir")
        .arg(&cbdir)
        .args(["--loglevel", "info"])
        .current_dir(dir)
        .stdout(out)
        .stderr(err);
    Service::spawn_group("crossbar", &mut cmd, STOP_GRACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gets_the_ports() {
        let ports = Ports {
            websocket: 40001,
            rawsocket: 40002,
        };
        let config: Value = serde_json::from_str(&config(ports).unwrap()).unwrap();
        let transports = config["workers"][0]["transports"].as_array().unwrap();
        let port = |id: &str| {
            let transport = transports.iter().find(|t| t["id"] == id).unwrap();
            transport["endpoint"]["port"].as_u64().unwrap()
        };
        assert_eq!((port("websocket"), port("rawsocket")), (40001, 40002));
        assert_eq!(config["workers"][0]["realms"][0]["name"], "realm1");
    }
}

//! The Autobahn|Testsuite `wstest` tool: finding or installing it, and its
//! fuzzing spec files.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::Result;
use crate::cargo::workspace_root;

/// The installer, relative to the workspace root.
const INSTALLER: &str = "xtask/scripts/install-wstest.sh";

/// Environment variable naming the install directory (the installer's
/// default is `~/.cache/fahrbahn/wstest`).
const INSTALL_DIR_VAR: &str = "FAHRBAHN_WSTEST_DIR";

/// A usable `wstest` executable.
pub(crate) struct Wstest {
    path: PathBuf,
    /// Output of `wstest -a`, e.g. `Autobahn 0.10.9, AutobahnTestSuite 25.10.1`.
    pub(crate) version: String,
}

impl Wstest {
    /// Uses `wstest` from PATH, or installs it with [`INSTALLER`].
    pub(crate) fn find_or_install() -> Result<Self> {
        let path = match find_on_path("wstest") {
            Some(path) => path,
            None => install()?,
        };
        let output = Command::new(&path)
            .arg("-a")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!("`{} -a` failed: {text}", path.display()));
        }
        let version = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let version = version.collect::<Vec<_>>().join(", ");
        eprintln!("==> wstest: {} ({version})", path.display());
        Ok(Self { path, version })
    }

    /// `wstest -m fuzzingclient` (tests a server), run in `dir` with `spec`.
    pub(crate) fn fuzzing_client(&self, dir: &Path, spec: &Path) -> Command {
        self.command(dir, ["-m", "fuzzingclient", "-s"], spec)
    }

    /// `wstest -m fuzzingserver` (tests a client) without its web server.
    pub(crate) fn fuzzing_server(&self, dir: &Path, spec: &Path) -> Command {
        let mut cmd = self.command(dir, ["-m", "fuzzingserver", "-s"], spec);
        cmd.args(["-u", "0"]);
        cmd
    }

    fn command(&self, dir: &Path, args: [&str; 3], spec: &Path) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(args).arg(spec).current_dir(dir);
        cmd
    }
}

/// Spec for `wstest -m fuzzingclient`: test the server at `url`; the
/// reports go to the directory wstest runs in.
pub(crate) fn fuzzing_client_spec(agent: &str, url: &str, cases: &[String]) -> String {
    let spec = json!({
        "outdir": ".",
        "servers": [{ "agent": agent, "url": url }],
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    });
    serde_json::to_string_pretty(&spec).expect("JSON values serialize")
}

/// Spec for `wstest -m fuzzingserver`: listen on `url`; the reports go to
/// the directory wstest runs in.
pub(crate) fn fuzzing_server_spec(url: &str, cases: &[String]) -> String {
    let spec = json!({
        "url": url,
        "outdir": ".",
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    });
    serde_json::to_string_pretty(&spec).expect("JSON values serialize")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| {
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs the installer (a no-op when already installed); returns the wstest path.
fn install() -> Result<PathBuf> {
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_root().join(INSTALLER));
    if let Some(dir) = env::var_os(INSTALL_DIR_VAR) {
        cmd.arg(dir);
    }
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {INSTALLER}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last() {
        Some(path) if output.status.success() => Ok(PathBuf::from(path.trim())),
        _ => Err(format!("{INSTALLER} failed ({})", output.status)),
    }
}

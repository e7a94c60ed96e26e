//! Running cargo: the workspace layout and building binaries.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::Result;
use crate::process::describe;

/// The workspace root: the nearest directory at or above the crate that
/// runs (`CARGO_MANIFEST_DIR` as `cargo run` and `cargo test` set it, else
/// this crate's as it was at build time) whose `Cargo.toml` has a
/// `[workspace]` table.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .ancestors()
        .find(|dir| is_workspace_root(dir))
        .map_or_else(|| manifest_dir.clone(), Path::to_owned)
}

fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
}

/// A `cargo` command (the cargo that runs xtask) in the workspace root.
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(workspace_root());
    cmd
}

/// The target directory, honouring `CARGO_TARGET_DIR` and cargo config.
pub fn target_dir() -> Result<PathBuf> {
    let mut cmd = command(["metadata", "--format-version", "1", "--no-deps"]);
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", describe(&cmd)))?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", describe(&cmd), output.status));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata output: {e}"))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata has no target_directory".to_owned())
}

/// Builds an example in release mode and returns the path of the executable.
pub fn build_example(package: &str, example: &str, features: &str) -> Result<PathBuf> {
    let mut cmd = command(["build", "--release", "--package", package]);
    cmd.args(["--example", example, "--features", features]);
    eprintln!("==> {}", describe(&cmd));
    cmd.arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cargo build: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executable = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("cargo build output: {e}"))?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" && message["target"]["name"] == example {
            if let Some(path) = message["executable"].as_str() {
                executable = Some(PathBuf::from(path));
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building example {example} failed: {status}"));
    }
    executable.ok_or_else(|| format!("cargo build did not report an executable for {example}"))
}

//! The quick gates of `cargo xtask test` beyond fmt, clippy and the tests:
//! the docs build without warnings, the facade crate builds with the
//! feature sets users pick, and nothing needs a newer Rust than the
//! declared `rust-version`. Each gate is one passed or failed item.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::process::describe;
use crate::{Result, Tally, cargo};

/// The facade crate, whose features pick the runtime.
const FACADE: &str = "fahrbahn";

/// The feature sets of [`FACADE`] that [`features`] checks, each with
/// `--no-default-features`: none, each runtime alone, each runtime with
/// permessage-deflate and with TLS, the default set
/// (`tokio,deflate,msgpack,cbor`), each binary serializer alone, and
/// deflate and TLS without a runtime. `--all-features` is clippy's.
pub(crate) const FEATURE_SETS: [&str; 15] = [
    "",
    "tokio",
    "smol",
    "async-std",
    "tokio,deflate,msgpack,cbor",
    "tokio,msgpack",
    "smol,cbor",
    "tokio,deflate",
    "smol,deflate",
    "async-std,deflate",
    "tokio,tls",
    "smol,tls",
    "async-std,tls",
    "deflate",
    "deflate,tls",
];

/// `cargo doc --workspace --all-features --no-deps` with rustdoc's
/// warnings (broken intra-doc links, ...) denied; cargo's own warnings
/// (e.g. two targets documented to the same path) fail it too.
pub(crate) fn docs() -> Tally {
    let mut cmd = cargo::command(["doc", "--workspace", "--all-features", "--no-deps"]);
    let mut flags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    flags.push_str(" -D warnings");
    cmd.env("RUSTDOCFLAGS", flags.trim());
    let mut tally = Tally::default();
    match run_without_warnings(&mut cmd) {
        Ok(ok) => tally.record(ok),
        Err(e) => tally.broke(e),
    }
    tally
}

/// Packages that must build on their own, with only the features they ask
/// for (feature unification in a workspace build hides a package that
/// forgot one): `cargo check` arguments after the package name.
pub(crate) const ALONE: [(&str, &[&str]); 4] = [
    ("fahrbahn-core", &["--lib", "--no-default-features"]),
    ("fahrbahn-rt", &["--lib"]),
    ("fahrbahn-cli", &["--bins"]),
    ("bench", &["--bins"]),
];

/// `cargo check --lib` of the facade crate with each of [`FEATURE_SETS`],
/// and of each package of [`ALONE`] on its own, without warnings; one
/// item, failed if any check fails.
pub(crate) fn features() -> Tally {
    let mut failed = Vec::new();
    let total = FEATURE_SETS.len() + ALONE.len();
    let checks = FEATURE_SETS
        .iter()
        .map(|features| (feature_args(features), feature_name(features)))
        .chain(ALONE.iter().map(|(package, args)| {
            let mut all = vec![
                "check".to_owned(),
                "--package".to_owned(),
                (*package).to_owned(),
            ];
            all.extend(args.iter().map(|a| (*a).to_owned()));
            (all, format!("{package} alone"))
        }));
    for (i, (args, name)) in checks.enumerate() {
        let mut cmd = cargo::command(args);
        eprintln!("--> [{}/{total}] {}", i + 1, describe(&cmd));
        match run_without_warnings(&mut cmd) {
            Ok(true) => {}
            Ok(false) => failed.push(name),
            Err(e) => {
                eprintln!("error: {e}");
                failed.push(name);
            }
        }
    }
    let mut tally = Tally::default();
    if failed.is_empty() {
        tally.pass();
    } else {
        tally.broke(format!(
            "{FACADE} does not build cleanly with: {}",
            failed.join("; ")
        ));
    }
    tally
}

/// The cargo arguments checking [`FACADE`] with `features` only.
fn feature_args(features: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "check",
        "--package",
        FACADE,
        "--lib",
        "--no-default-features",
    ]
    .map(str::to_owned)
    .into();
    if !features.is_empty() {
        args.extend(["--features".to_owned(), features.to_owned()]);
    }
    args
}

fn feature_name(features: &str) -> String {
    if features.is_empty() {
        "no features".to_owned()
    } else {
        features.to_owned()
    }
}

/// The minimum supported Rust version: clippy's `incompatible_msrv` lint,
/// which flags std APIs stabilized after each crate's `rust-version` (the
/// code is not built with that toolchain), and the `rust-version` of every
/// dependency, which must not exceed that of the workspace crate using it.
pub(crate) fn msrv() -> Tally {
    let mut tally = Tally::default();
    let mut cmd = cargo::command([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "clippy::incompatible_msrv",
    ]);
    eprintln!("--> {}", describe(&cmd));
    let lint = crate::process::run(&mut cmd);
    let mut cmd = cargo::command(["metadata", "--format-version", "1", "--all-features"]);
    eprintln!(
        "--> {} (the rust-version of the dependencies)",
        describe(&cmd)
    );
    let deps = metadata(&mut cmd).and_then(|m| newer_dependencies(&m));
    match (lint, deps) {
        (Ok(true), Ok(newer)) if newer.is_empty() => tally.pass(),
        (lint, deps) => {
            match lint {
                Ok(true) => {}
                Ok(false) => eprintln!("error: clippy::incompatible_msrv failed"),
                Err(e) => eprintln!("error: {e}"),
            }
            match deps {
                Ok(newer) => {
                    for line in newer {
                        eprintln!("error: {line}");
                    }
                }
                Err(e) => eprintln!("error: {e}"),
            }
            tally.fail();
        }
    }
    tally
}

fn metadata(cmd: &mut Command) -> Result<Value> {
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", describe(cmd), output.status));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

/// A `rust-version` as numbers, `1.85` as `[1, 85, 0]`.
fn version(text: &str) -> Option<[u64; 3]> {
    let mut parts = text.split('.').map(|p| p.parse().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some([major, minor, patch])
}

/// From `cargo metadata` output: for each workspace crate with a
/// `rust-version`, the crates in its dependency graph (every kind and
/// platform) that declare a newer one, e.g. `bench (rust-version 1.85)
/// depends on x 1.0.0 (rust-version 1.89)`.
fn newer_dependencies(metadata: &Value) -> Result<Vec<String>> {
    let bad = || "unexpected cargo metadata output".to_owned();
    let mut packages = BTreeMap::new();
    for package in metadata["packages"].as_array().ok_or_else(bad)? {
        let id = package["id"].as_str().ok_or_else(bad)?;
        let name = package["name"].as_str().unwrap_or("?");
        let version = package["version"].as_str().unwrap_or("?");
        let rust = package["rust_version"].as_str();
        packages.insert(id, (name, version, rust));
    }
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().ok_or_else(bad)? {
        let id = node["id"].as_str().ok_or_else(bad)?;
        let deps = node["deps"].as_array().ok_or_else(bad)?;
        let deps = deps.iter().filter_map(|d| d["pkg"].as_str()).collect();
        graph.insert(id, deps);
    }
    let mut out = Vec::new();
    for member in metadata["workspace_members"].as_array().ok_or_else(bad)? {
        let member = member.as_str().ok_or_else(bad)?;
        let Some(&(name, _, Some(rust))) = packages.get(member) else {
            continue;
        };
        let ours = version(rust).ok_or_else(|| format!("{name}: bad rust-version {rust}"))?;
        let mut seen = BTreeSet::from([member]);
        let mut todo = vec![member];
        while let Some(id) = todo.pop() {
            for &dep in graph.get(id).into_iter().flatten() {
                if !seen.insert(dep) {
                    continue;
                }
                todo.push(dep);
                if let Some(&(dep_name, dep_version, Some(theirs))) = packages.get(dep) {
                    if version(theirs).is_some_and(|v| v > ours) {
                        out.push(format!(
                            "{name} (rust-version {rust}) depends on {dep_name} {dep_version} \
                             (rust-version {theirs})"
                        ));
                    }
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `cmd` passing its stderr through; `false` if it failed or cargo
/// or rustc printed a warning (other than a network retry's).
fn run_without_warnings(cmd: &mut Command) -> Result<bool> {
    cmd.stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    let mut warned = false;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            eprintln!("{line}");
            warned |= is_warning(&line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {}: {e}", describe(cmd)))?;
    if warned {
        eprintln!("error: {} printed warnings", describe(cmd));
    }
    Ok(status.success() && !warned)
}

fn is_warning(line: &str) -> bool {
    line.starts_with("warning") && !line.contains("spurious network error")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn feature_sets() {
        assert_eq!(
            feature_args("").join(" "),
            "check --package fahrbahn --lib --no-default-features"
        );
        assert_eq!(
            feature_args("smol,tls").join(" "),
            "check --package fahrbahn --lib --no-default-features --features smol,tls"
        );
        let sets: BTreeSet<&str> = FEATURE_SETS.into_iter().collect();
        assert_eq!(sets.len(), FEATURE_SETS.len());
        for runtime in ["tokio", "smol", "async-std"] {
            assert!(sets.contains(runtime));
        }
        assert_eq!(feature_name(""), "no features");
    }

    #[test]
    fn warnings() {
        assert!(is_warning("warning: output filename collision at x"));
        assert!(is_warning("warning[E0001]: x"));
        assert!(is_warning("warning: `x` (lib) generated 1 warning"));
        assert!(!is_warning(
            "warning: spurious network error (2 tries remaining)"
        ));
        assert!(!is_warning("    Checking x v0.1.0"));
        assert!(!is_warning("   = note: `#[warn(dead_code)]` on by default"));
    }

    #[test]
    fn versions() {
        assert_eq!(version("1.85"), Some([1, 85, 0]));
        assert_eq!(version("1.85.1"), Some([1, 85, 1]));
        assert!(version("1.89") > version("1.85.1"));
        assert_eq!(version("1.x"), None);
        assert_eq!(version("1.2.3.4"), None);
    }

    #[test]
    fn dependency_rust_versions() {
        let package = |id: &str, rust: Option<&str>| json!({ "id": id, "name": id, "version": "1.0.0", "rust_version": rust });
        let node = |id: &str, deps: &[&str]| {
            let deps: Vec<Value> = deps.iter().map(|d| json!({ "pkg": d })).collect();
            json!({ "id": id, "deps": deps })
        };
        let metadata = json!({
            "packages": [
                package("lib", Some("1.85")),
                package("tool", Some("1.85")),
                package("new", Some("1.89")),
                package("old", Some("1.70.0")),
                package("none", None),
                package("deep", Some("1.86.0")),
            ],
            "workspace_members": ["lib", "tool"],
            "resolve": { "nodes": [
                node("lib", &["old", "none"]),
                node("tool", &["lib", "new", "old"]),
                node("old", &["deep"]),
                node("new", &[]),
                node("none", &[]),
                node("deep", &[]),
            ]},
        });
        assert_eq!(
            newer_dependencies(&metadata).unwrap(),
            [
                "lib (rust-version 1.85) depends on deep 1.0.0 (rust-version 1.86.0)",
                "tool (rust-version 1.85) depends on deep 1.0.0 (rust-version 1.86.0)",
                "tool (rust-version 1.85) depends on new 1.0.0 (rust-version 1.89)",
            ]
        );
        assert!(newer_dependencies(&json!({})).is_err());
    }
}

//! Fuzz targets of `fahrbahn-core`, shared by the AFL++ binaries
//! (`src/bin/<target>.rs`, built with `cargo afl build`, run by
//! `cargo xtask fuzz`) and by this crate's tests, which replay every seed
//! of `fuzz/corpus/<target>/` and every crash kept in
//! `fuzz/regressions/<target>/` (see `docs/fuzzing.md`).
//!
//! Each target takes arbitrary bytes and panics when an invariant breaks:
//! - [`ws_handshake`]: the opening handshake of a client or server
//!   [`ws::Connection`](fahrbahn_core::ws::Connection);
//! - [`ws_frames`]: frames and messages (with and without
//!   permessage-deflate) into an open connection of either role;
//! - [`rawsocket`]: RawSocket handshake and framing, either role;
//! - [`wamp_decode`]: WAMP message decoding, each serializer, batched or not;
//! - [`router`]: the router core fed a sequence of client operations from
//!   several connections (structure-aware, via [`arbitrary`]).
//!
//! A binary built without `--cfg fuzzing` (a plain `cargo build`) runs its
//! target once over each file named on its command line (or over stdin),
//! which reproduces a crash outside AFL++:
//! `cargo run -p fahrbahn-fuzz --bin ws_frames -- fuzz/regressions/ws_frames/crash-…`.

#![forbid(unsafe_code)]

mod rawsocket_target;
mod router_target;
mod seeds;
mod util;
mod wamp_target;
mod ws_target;

use std::path::{Path, PathBuf};

pub use rawsocket_target::rawsocket;
pub use router_target::router;
pub use seeds::seeds;
pub use wamp_target::wamp_decode;
pub use ws_target::{ws_frames, ws_handshake};

/// A fuzz target: its name (of its binary and of its corpus and
/// regression folders) and its function.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The name, e.g. `ws_frames`.
    pub name: &'static str,
    /// Runs the target over one input; panics when an invariant breaks.
    pub run: fn(&[u8]),
}

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: [Target; 5] = [
    Target {
        name: "ws_handshake",
        run: ws_handshake,
    },
    Target {
        name: "ws_frames",
        run: ws_frames,
    },
    Target {
        name: "rawsocket",
        run: rawsocket,
    },
    Target {
        name: "wamp_decode",
        run: wamp_decode,
    },
    Target {
        name: "router",
        run: router,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// The `fuzz/` folder of the repository.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// The committed seed inputs of a target: `fuzz/corpus/<target>/`.
pub fn corpus_dir(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}

/// The crashes found so far of a target: `fuzz/regressions/<target>/`.
pub fn regressions_dir(target: &str) -> PathBuf {
    fuzz_dir().join("regressions").join(target)
}

/// The files of `dir` (none when it does not exist), sorted, without
/// hidden files such as `.gitkeep`.
pub fn inputs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type()?.is_file() && !hidden {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The entry point of a target's binary. Under `cargo afl build`
/// (`--cfg fuzzing`): AFL++'s persistent loop over `run`. Otherwise: `run`
/// once over each file named on the command line, or over stdin.
pub fn main(run: fn(&[u8])) {
    #[cfg(fuzzing)]
    {
        afl::fuzz!(|data: &[u8]| run(data));
    }
    #[cfg(not(fuzzing))]
    replay_args(run);
}

#[cfg(not(fuzzing))]
#[allow(clippy::print_stdout, reason = "the reproducer reports what it ran")]
fn replay_args(run: fn(&[u8])) {
    use std::io::Read as _;
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        let mut data = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut data) {
            eprintln!("cannot read stdin: {e}");
            std::process::exit(2);
        }
        run(&data);
        return;
    }
    for file in files {
        match std::fs::read(&file) {
            Ok(data) => {
                println!("{file}: {} bytes", data.len());
                run(&data);
            }
            Err(e) => {
                eprintln!("{file}: {e}");
                std::process::exit(2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `target` over every file of `dir`; returns how many ran.
    fn replay(target: Target, dir: &Path) -> usize {
        let files = inputs(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for file in &files {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let result = std::panic::catch_unwind(|| (target.run)(&data));
            assert!(
                result.is_ok(),
                "{} fails on {} (reproduce: cargo run -p fahrbahn-fuzz --bin {} -- {})",
                target.name,
                file.display(),
                target.name,
                file.display()
            );
        }
        files.len()
    }

    #[test]
    fn corpora_replay() {
        for target in TARGETS {
            let n = replay(target, &corpus_dir(target.name));
            assert!(n > 0, "no seeds in fuzz/corpus/{}", target.name);
        }
    }

    #[test]
    fn regressions_replay() {
        for target in TARGETS {
            replay(target, &regressions_dir(target.name));
        }
    }

    #[test]
    fn generated_seeds_run_and_are_committed() {
        for (name, file, data) in seeds() {
            let target = target(name).expect("seeds name known targets");
            (target.run)(&data);
            let path = corpus_dir(name).join(&file);
            let committed = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run the write_seeds test)", path.display()));
            assert_eq!(
                committed,
                data,
                "{} is stale (run the write_seeds test)",
                path.display()
            );
        }
    }

    /// Writes the seeds of [`seeds`] into `fuzz/corpus/`:
    /// `cargo test -p fahrbahn-fuzz -- --ignored write_seeds`.
    #[test]
    #[ignore = "writes files; run by hand after changing the seeds"]
    fn write_seeds() {
        for (name, file, data) in seeds() {
            let dir = corpus_dir(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(file), data).unwrap();
        }
    }
}

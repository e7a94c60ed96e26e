//! `cargo xtask fuzz`: the coverage-guided fuzz targets of the
//! `fahrbahn-fuzz` crate (`fuzz/`) under AFL++, through `cargo-afl` on
//! the stable toolchain (see `docs/fuzzing.md`).
//!
//! `cargo-afl` (which builds AFL++ and its runtime when it is installed)
//! is installed on first use into `~/.cache/fahrbahn/afl` (override with
//! `FAHRBAHN_AFL_DIR`), with AFL++'s files under its `share/` (as
//! `XDG_DATA_HOME`). The targets are built into `<target>/fuzz/`, each
//! runs from its seeds in `fuzz/corpus/<target>/` for the given time, and
//! every crash or hang found is copied into `fuzz/regressions/<target>/`,
//! where the crate's tests replay it from then on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cargo::{self, workspace_root};
use crate::cli::{self, Args};
use crate::process::{self, describe};
use crate::{Result, Tally};

/// The `cargo-afl` release installed (it brings AFL++ with it).
const CARGO_AFL_VERSION: &str = "0.18.2";

/// Environment variable naming the install directory.
const INSTALL_DIR_VAR: &str = "FAHRBAHN_AFL_DIR";

/// Default seconds per target of `cargo xtask fuzz`.
const DEFAULT_SECONDS: u64 = 60;

/// Seconds per target of the smoke step of `cargo xtask test`.
pub(crate) const SMOKE_SECONDS: u64 = 10;

/// An execution slower than this counts as a hang (generous: the machine
/// is shared and a debug assertion path may be slow, but a real hang is
/// an endless loop).
const HANG_MS: u64 = 5000;

/// Options of `cargo xtask fuzz`.
#[derive(Debug)]
pub(crate) struct Options {
    /// The targets to run; empty for all.
    targets: Vec<String>,
    /// Seconds per target.
    seconds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            seconds: DEFAULT_SECONDS,
        }
    }
}

impl Options {
    /// Parses the options of `cargo xtask fuzz`.
    pub(crate) fn parse(args: &mut Args) -> Result<Self> {
        let mut options = Self::default();
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--target" => {
                    let value = args.value(&flag)?;
                    options
                        .targets
                        .extend(value.split(',').map(str::trim).map(str::to_owned));
                }
                "--time" => {
                    let value = args.value(&flag)?;
                    options.seconds = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("--time needs a number of seconds, not `{value}`")
                    })?;
                }
                _ => return Err(cli::unknown(&flag)),
            }
        }
        Ok(options)
    }

    /// The smoke run of `cargo xtask test`: every target briefly.
    pub(crate) fn smoke() -> Self {
        Self {
            targets: Vec::new(),
            seconds: SMOKE_SECONDS,
        }
    }
}

/// The fuzz crate's folder.
fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

/// The targets: the binaries of `fuzz/src/bin/`, sorted.
fn all_targets() -> Result<Vec<String>> {
    let dir = fuzz_dir().join("src").join("bin");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            if let Some(stem) = path.file_stem() {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// `cargo-afl`, installed into its directory.
struct Afl {
    dir: PathBuf,
}

impl Afl {
    fn install_dir() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os(INSTALL_DIR_VAR) {
            return Ok(PathBuf::from(dir));
        }
        let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
        Ok(Path::new(&home).join(".cache/fahrbahn/afl"))
    }

    fn binary(&self) -> PathBuf {
        self.dir.join("bin").join("cargo-afl")
    }

    /// AFL++'s data directory (`XDG_DATA_HOME` of `cargo-afl`).
    fn data_home(&self) -> PathBuf {
        self.dir.join("share")
    }

    /// Finds `cargo-afl` or installs it (`cargo install`, which also builds
    /// AFL++), and makes sure AFL++'s runtime is built for this rustc.
    fn find_or_install() -> Result<Self> {
        let afl = Self {
            dir: Self::install_dir()?,
        };
        if !afl.binary().is_file() {
            eprintln!(
                "==> installing cargo-afl {CARGO_AFL_VERSION} (with AFL++) into {}",
                afl.dir.display()
            );
            let root = afl.dir.to_string_lossy().into_owned();
            let version = format!("={CARGO_AFL_VERSION}");
            // A debug build: cargo-afl only wraps cargo and AFL++ (which
            // its build script compiles with make either way), and this
            // halves the install.
            let mut cmd =
                cargo::command(["install", "cargo-afl", "--locked", "--debug", "--version"]);
            cmd.args([version.as_str(), "--root", root.as_str()])
                .env("XDG_DATA_HOME", afl.data_home())
                .env_remove("CARGO_TARGET_DIR");
            if !process::run(&mut cmd)? {
                return Err(format!("{} failed", describe(&cmd)));
            }
        }
        if !afl.runtime_built()? {
            eprintln!("==> building AFL++ and its runtime (cargo afl config --build)");
            let mut cmd = afl.command(["config", "--build", "--force"]);
            if !process::run(&mut cmd)? {
                return Err(format!("{} failed", describe(&cmd)));
            }
        }
        Ok(afl)
    }

    /// Whether AFL++'s runtime object exists for this rustc (cargo-afl
    /// keeps one per rustc version and commit).
    fn runtime_built(&self) -> Result<bool> {
        let release = rustc_field("release")?;
        let prefix = format!("rustc-{release}-");
        let dir = self.data_home().join("afl.rs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(false);
        };
        Ok(entries.flatten().any(|entry| {
            entry.file_name().to_string_lossy().starts_with(&prefix)
                && entry
                    .path()
                    .join(format!("afl.rs-{CARGO_AFL_VERSION}"))
                    .join("afl-llvm")
                    .join("afl-compiler-rt.o")
                    .is_file()
        }))
    }

    /// `cargo afl <args>` in the workspace root.
    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(self.binary());
        cmd.arg("afl")
            .args(args)
            .current_dir(workspace_root())
            .env("XDG_DATA_HOME", self.data_home())
            .env(
                "CARGO",
                std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            );
        cmd
    }
}

/// A field of `rustc -vV` (`release`, `host`).
fn rustc_field(name: &str) -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
        .ok_or_else(|| format!("rustc -vV has no {name}"))
}

/// Builds every target with AFL++'s instrumentation; returns the folder
/// of the binaries. `--target` keeps the instrumentation flags off build
/// scripts and proc macros (faster, and they need none); no debug info.
fn build(afl: &Afl, target_dir: &Path) -> Result<PathBuf> {
    let host = rustc_field("host")?;
    let mut cmd = afl.command([
        "build",
        "--release",
        "--package",
        "fahrbahn-fuzz",
        "--bins",
        "--target",
        host.as_str(),
        "--config",
        "profile.release.debug=0",
    ]);
    cmd.env("CARGO_TARGET_DIR", target_dir);
    eprintln!("==> {}", describe(&cmd));
    if !process::run(&mut cmd)? {
        return Err("building the fuzz targets failed".to_owned());
    }
    Ok(target_dir.join(host).join("release"))
}

/// `key : value` lines of AFL++'s `fuzzer_stats`.
fn read_stats(out: &Path) -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(out.join("default").join("fuzzer_stats")).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn stat<'a>(stats: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    stats.get(key).map_or("?", String::as_str)
}

/// The progress AFL++ last logged (`AFL_NO_UI`'s lines `[*] Fuzzing test
/// case #3 (315 total, 0 crashes saved, …`): `315 in the queue, 0 crashes`.
fn progress(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("Fuzzing test case"))?;
    let plain = strip_ansi(line);
    let inner = plain.split_once('(')?.1;
    let mut parts = inner.split(", ");
    let total = parts.next()?.strip_suffix(" total")?;
    let crashes = parts.next()?.split_whitespace().next()?;
    Some(format!("{total} inputs in the queue, {crashes} crashes"))
}

/// `text` without terminal escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A short, stable name for an input: FNV-1a of its bytes.
fn digest(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Copies AFL++'s crashes and hangs of one run into
/// `fuzz/regressions/<target>/`; returns the files written.
fn keep_findings(target: &str, out: &Path) -> Result<Vec<PathBuf>> {
    let dest = fuzz_dir().join("regressions").join(target);
    let mut kept = Vec::new();
    for (kind, folder) in [("crash", "crashes"), ("hang", "hangs")] {
        let dir = out.join("default").join(folder);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("id:"))
            })
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            let path = dest.join(format!("{kind}-{}", digest(&data)));
            std::fs::write(&path, &data).map_err(|e| format!("{}: {e}", path.display()))?;
            kept.push(path);
        }
    }
    Ok(kept)
}

/// Runs one target for `seconds`; true when AFL++ found nothing.
fn run_target(
    afl: &Afl,
    bin_dir: &Path,
    target_dir: &Path,
    target: &str,
    seconds: u64,
) -> Result<bool> {
    let out = target_dir.join("out").join(target);
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let log = target_dir.join("out").join(format!("{target}.log"));
    let corpus = fuzz_dir().join("corpus").join(target);
    let seconds_arg = seconds.to_string();
    let hang_arg = HANG_MS.to_string();
    let mut cmd = afl.command(["fuzz".as_ref(), "-i".as_ref(), corpus.as_os_str()]);
    cmd.args(["-o".as_ref(), out.as_os_str()])
        .args(["-V", &seconds_arg, "-t", &hang_arg, "--"])
        .arg(bin_dir.join(target))
        .env("AFL_NO_UI", "1")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_NO_AFFINITY", "1")
        .env("AFL_FAST_CAL", "1")
        .env("AFL_NO_CRASH_README", "1")
        .stdin(Stdio::null());
    let (stdout, stderr) = process::log_to(&log)?;
    cmd.stdout(stdout).stderr(stderr);
    eprintln!("==> {target}: {seconds} s (log: {})", log.display());
    let mut running = process::Running::spawn(&format!("afl-fuzz {target}"), &mut cmd)?;
    let start = Instant::now();
    // Startup (calibrating the seeds) comes on top of the fuzzing time.
    let deadline = Duration::from_secs(seconds + 120);
    let mut last_report = Instant::now();
    let status = loop {
        if let Some(status) = running
            .child
            .try_wait()
            .map_err(|e| format!("afl-fuzz {target}: {e}"))?
        {
            break status;
        }
        if start.elapsed() > deadline {
            return Err(process::with_log(
                &log,
                format!("afl-fuzz {target} did not stop"),
            ));
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let progress = progress(&log).unwrap_or_else(|| "starting".to_owned());
            eprintln!("    {target}: {}s, {progress}", start.elapsed().as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stats = read_stats(&out);
    if !status.success() || stats.is_empty() {
        return Err(process::with_log(
            &log,
            format!("afl-fuzz {target} failed ({status})"),
        ));
    }
    eprintln!(
        "    {target}: {} execs ({}/s), corpus {}, coverage {}, {} crashes, {} hangs",
        stat(&stats, "execs_done"),
        stat(&stats, "execs_per_sec"),
        stat(&stats, "corpus_count"),
        stat(&stats, "bitmap_cvg"),
        stat(&stats, "saved_crashes"),
        stat(&stats, "saved_hangs"),
    );
    let kept = keep_findings(target, &out)?;
    for path in &kept {
        let relative = path.strip_prefix(workspace_root()).unwrap_or(path);
        eprintln!(
            "error: {target} found {} (reproduce: cargo run -p fahrbahn-fuzz --bin {target} -- {})",
            relative.display(),
            relative.display()
        );
    }
    Ok(kept.is_empty())
}

/// Builds the targets and runs each; one item per target, passed when
/// AFL++ found no crash and no hang.
pub(crate) fn task(options: Options) -> Tally {
    let mut tally = Tally::default();
    let all = match all_targets() {
        Ok(all) => all,
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };
    let targets = if options.targets.is_empty() {
        all.clone()
    } else {
        options.targets.clone()
    };
    if let Some(unknown) = targets.iter().find(|t| !all.contains(t)) {
        tally.broke(format!(
            "unknown fuzz target `{unknown}` (targets: {})",
            all.join(", ")
        ));
        return tally;
    }
    let prepared = Afl::find_or_install().and_then(|afl| {
        let target_dir = cargo::target_dir()?.join("fuzz");
        let bin_dir = build(&afl, &target_dir)?;
        Ok((afl, target_dir, bin_dir))
    });
    let (afl, target_dir, bin_dir) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };
    for target in &targets {
        match run_target(&afl, &bin_dir, &target_dir, target, options.seconds) {
            Ok(ok) => tally.record(ok),
            Err(e) => tally.broke(e),
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        cli::parse(Options::parse, &args)
    }

    #[test]
    fn options() {
        let o = parse(&[]).unwrap();
        assert!(o.targets.is_empty());
        assert_eq!(o.seconds, DEFAULT_SECONDS);
        let o = parse(&[
            "--target",
            "router,ws_frames",
            "--target=rawsocket",
            "--time",
            "5",
        ])
        .unwrap();
        assert_eq!(o.targets, ["router", "ws_frames", "rawsocket"]);
        assert_eq!(o.seconds, 5);
        assert!(parse(&["--time", "0"]).is_err());
        assert!(parse(&["--time", "x"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn targets_are_the_fuzz_binaries() {
        let all = all_targets().unwrap();
        assert!(all.contains(&"ws_frames".to_owned()), "{all:?}");
        for target in &all {
            assert!(
                fuzz_dir().join("corpus").join(target).is_dir(),
                "no corpus for {target}"
            );
        }
    }

    #[test]
    fn reads_progress_from_the_log() {
        let dir = std::env::temp_dir().join(format!("xtask-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("t.log");
        let line = "\u{1b}[1;94m[*] \u{1b}[0mFuzzing test case #3 (315 total, 0 crashes saved\u{1b}[0m, state: started :-), mode=explore)";
        std::fs::write(&log, format!("[+] All set\n{line}\n[*] other\n")).unwrap();
        assert_eq!(
            progress(&log).as_deref(),
            Some("315 inputs in the queue, 0 crashes")
        );
        std::fs::write(&log, "nothing yet\n").unwrap();
        assert_eq!(progress(&log), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn digests_are_stable() {
        assert_eq!(digest(b""), "cbf29ce484222325");
        assert_eq!(digest(b"a"), "af63dc4c8601ec8c");
    }
}

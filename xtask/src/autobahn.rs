//! `cargo xtask autobahn`: Autobahn|Testsuite conformance runs.
//!
//! For every selected runtime and role, the `autobahn_testee` example of the
//! `fahrbahn` crate runs against `wstest`:
//! * role `server`: the testee echo server against `wstest -m fuzzingclient`,
//! * role `client`: the testee client against `wstest -m fuzzingserver`.
//!
//! Everything of a run (spec, logs, wstest reports, `summary.md`, `run.json`)
//! goes to `target/autobahn/<runtime>-<role>/`, which is emptied first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::{self, Args};
use crate::process::{Running, free_port, log_to, tail};
use crate::report::{Report, RunInfo, now_utc};
use crate::wstest::{self, Wstest};
use crate::{Result, Tally, cargo, docs};

/// The async runtimes the testee supports.
pub(crate) const RUNTIMES: [&str; 3] = ["tokio", "smol", "async-std"];

/// What the testee is: `server` is tested by wstest's fuzzing client,
/// `client` by wstest's fuzzing server.
pub(crate) const ROLES: [&str; 2] = ["server", "client"];

/// The runtime that runs all cases by default.
const FULL_RUNTIME: &str = "tokio";

/// Cases the other runtimes run by default: everything but most of the slow
/// compression sections.
const QUICK_CASES: [&str; 11] = [
    "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "8.*", "9.*", "10.*", "12.1.*",
];

const TESTEE_PACKAGE: &str = "fahrbahn";
const TESTEE_EXAMPLE: &str = "autobahn_testee";
const TESTEE_FEATURES: &str = "tokio,smol,async-std,deflate";

/// How long a server may take to listen.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit for runs of [`QUICK_CASES`] (they take about 15 s).
const QUICK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Time limit for runs with the compression sections (about 10 min).
const FULL_TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// How long wstest may take to write its reports after the client finished.
const REPORT_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `cargo xtask autobahn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    runtimes: Vec<&'static str>,
    roles: Vec<&'static str>,
    all_cases: bool,
    cases: Option<Vec<String>>,
    update_docs: bool,
    no_run: bool,
}

impl Default for Options {
    /// The default matrix: every runtime and role, all cases on tokio only.
    fn default() -> Self {
        Self {
            runtimes: RUNTIMES.to_vec(),
            roles: ROLES.to_vec(),
            all_cases: false,
            cases: None,
            update_docs: false,
            no_run: false,
        }
    }
}

impl Options {
    /// Parses the options of `cargo xtask autobahn`.
    pub(crate) fn parse(args: &mut Args) -> Result<Self> {
        let mut options = Self::default();
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--runtime" => options.runtimes = choose(&RUNTIMES, &args.value(&flag)?, &flag)?,
                "--role" => options.roles = choose(&ROLES, &args.value(&flag)?, &flag)?,
                "--all" => options.all_cases = true,
                "--cases" => {
                    let list = args.value(&flag)?;
                    let patterns: Vec<String> = list
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if patterns.is_empty() {
                        return Err("--cases needs at least one pattern".to_owned());
                    }
                    options.cases = Some(patterns);
                }
                "--update-docs" => options.update_docs = true,
                "--no-run" => options.no_run = true,
                _ => return Err(cli::unknown(&flag)),
            }
        }
        Ok(options)
    }

    /// The case patterns for `runtime`.
    fn cases(&self, runtime: &str) -> Vec<String> {
        match &self.cases {
            Some(cases) => cases.clone(),
            None if self.all_cases || runtime == FULL_RUNTIME => vec!["*".to_owned()],
            None => QUICK_CASES.map(str::to_owned).to_vec(),
        }
    }
}

/// `value` if it is one of `choices`, or all of them for `all`.
fn choose(choices: &[&'static str], value: &str, flag: &str) -> Result<Vec<&'static str>> {
    if value == "all" {
        return Ok(choices.to_vec());
    }
    match choices.iter().find(|c| **c == value) {
        Some(choice) => Ok(vec![*choice]),
        None => Err(format!(
            "{flag} must be one of {} or all, not `{value}`",
            choices.join(", ")
        )),
    }
}

/// Whether the patterns select only fast cases (no compression beyond 12.1).
fn is_quick(cases: &[String]) -> bool {
    cases.iter().all(|pattern| {
        let section = pattern.split('.').next().unwrap_or_default();
        match section.parse::<u32>() {
            Ok(1..=11) => pattern.contains('.'),
            Ok(12) => pattern.starts_with("12.1."),
            _ => false,
        }
    })
}

/// What a run needs: wstest and the testee binary.
struct Tools {
    wstest: Wstest,
    testee: PathBuf,
}

impl Tools {
    fn prepare() -> Result<Self> {
        let wstest = Wstest::find_or_install()?;
        let testee = cargo::build_example(TESTEE_PACKAGE, TESTEE_EXAMPLE, TESTEE_FEATURES)?;
        Ok(Self { wstest, testee })
    }
}

/// Runs the selected matrix; each case is one passed or failed item, and so
/// is every run that broke.
pub(crate) fn task(options: Options) -> Tally {
    let mut tally = Tally::default();
    let reports = match cargo::target_dir() {
        Ok(target) => target.join("autobahn"),
        Err(e) => {
            tally.broke(e);
            return tally;
        }
    };
    let tools = if options.no_run {
        None
    } else {
        match Tools::prepare() {
            Ok(tools) => Some(tools),
            Err(e) => {
                tally.broke(e);
                return tally;
            }
        }
    };

    let mut results = Vec::new();
    for &runtime in &options.runtimes {
        for &role in &options.roles {
            let run = Run {
                runtime,
                role,
                cases: options.cases(runtime),
                dir: reports.join(format!("{runtime}-{role}")),
            };
            let run_tally = run.report(tools.as_ref());
            tally.add(run_tally);
            results.push((run.name(), run_tally));
        }
    }

    println!("autobahn results (reports in {}):", reports.display());
    for (name, run_tally) in &results {
        println!("    {name:<18} {run_tally}");
    }
    if options.update_docs {
        let out = cargo::workspace_root().join(docs::CONFORMANCE);
        match docs::update(&reports, &out) {
            Ok(count) => eprintln!("==> wrote {} ({count} reports)", out.display()),
            Err(e) => tally.broke(format!("updating {}: {e}", docs::CONFORMANCE)),
        }
    }
    tally
}

/// One cell of the matrix: a runtime in a role.
struct Run {
    runtime: &'static str,
    role: &'static str,
    cases: Vec<String>,
    dir: PathBuf,
}

impl Run {
    fn name(&self) -> String {
        format!("{}-{}", self.runtime, self.role)
    }

    /// Runs the cases (if there are `tools`; otherwise uses the existing
    /// report), prints the report and writes its `summary.md`.
    fn report(&self, tools: Option<&Tools>) -> Tally {
        let name = self.name();
        let mut tally = Tally::default();
        if let Some(tools) = tools {
            if let Err(e) = self.execute(tools) {
                tally.broke(format!("{name}: {e}"));
                if !self.dir.join("index.json").exists() {
                    return tally;
                }
            }
        }
        let report = match Report::load(&self.dir) {
            Ok(report) => report,
            Err(e) => {
                tally.broke(format!("{name}: {e}"));
                return tally;
            }
        };
        report.print(&name);
        tally.add(report.tally());
        let summary = report.markdown(&name, RunInfo::load(&self.dir).as_ref(), true);
        let path = self.dir.join("summary.md");
        if let Err(e) = std::fs::write(&path, summary) {
            tally.broke(format!("{}: {e}", path.display()));
        }
        tally
    }

    /// Runs wstest and the testee; everything goes to the emptied `dir`.
    fn execute(&self, tools: &Tools) -> Result<()> {
    let Self { runtime, role, cases, dir } = self;
    eprintln!("==> autobahn {}: cases {}", self.name(), cases.join(","));
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_port()?;
    let url = format!("ws://127.0.0.1:{port}");
    let agent = format!("fahrbahn-{runtime}");
    let timeout = if is_quick(cases) { QUICK_TIMEOUT } else { FULL_TIMEOUT };
    let date = now_utc();
    let start = Instant::now();
    let write = |file: &str, text: String| {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok::<_, String>(path)
    };
    let testee_log = dir.join("testee.log");
    let wstest_log = dir.join("wstest.log");
    let progress = || last_line(&wstest_log);
    let mut testee = Command::new(&tools.testee);
    let (out, err) = log_to(&testee_log)?;
    testee.args([role, "--runtime", runtime]).stdout(out).stderr(err);

    let mode = if role == "server" {
        let spec = write("fuzzingclient.json", wstest::fuzzing_client_spec(&agent, &url, cases))?;
        testee.args(["--port", &port.to_string()]);
        let mut server = Running::spawn("testee server", &mut testee)?;
        server.wait_for_port(port, STARTUP_TIMEOUT)?;
        let mut fuzzer = tools.wstest.fuzzing_client(dir, &spec);
        let (out, err) = log_to(&wstest_log)?;
        let status = Running::spawn("wstest", fuzzer.stdout(out).stderr(err))?
            .wait(timeout, progress)?;
        if !status.success() {
            return Err(format!("wstest failed ({status}); {}", tail(&wstest_log, 20)));
        }
        if let Some(status) = server.exited()? {
            let log = tail(&testee_log, 20);
            return Err(format!("the testee server exited during the run ({status}); {log}"));
        }
        format!("wstest fuzzingclient against the {runtime} server")
    } else {
        let spec = write("fuzzingserver.json", wstest::fuzzing_server_spec(&url, cases))?;
        let mut fuzzer = tools.wstest.fuzzing_server(dir, &spec);
        let (out, err) = log_to(&wstest_log)?;
        let mut server = Running::spawn("wstest", fuzzer.stdout(out).stderr(err))?;
        server.wait_for_port(port, STARTUP_TIMEOUT)?;
        testee.args(["--url", &url, "--agent", &agent]);
        let status = Running::spawn("testee client", &mut testee)?.wait(timeout, progress)?;
        if !status.success() {
            let log = tail(&testee_log, 20);
            return Err(format!("the testee client failed ({status}); {log}"));
        }
        let index = dir.join("index.json");
        let waited = Instant::now();
        while !index.exists() {
            if waited.elapsed() > REPORT_TIMEOUT || server.exited()?.is_some() {
                return Err(format!(
                    "wstest wrote no index.json (did the client call /updateReports?agent={agent}?)"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        format!("{runtime} client against wstest fuzzingserver")
    };
    let info = RunInfo {
        mode,
        cases: cases.to_vec(),
        wstest_version: tools.wstest.version.clone(),
        date,
        duration_secs: start.elapsed().as_secs(),
    };
    eprintln!("    finished in {}s", info.duration_secs);
    info.save(dir)
    }
}

/// The last line of a log file (for progress output).
fn last_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        cli::parse(Options::parse, &args)
    }

    #[test]
    fn default_matrix() {
        let options = parse(&[]).unwrap();
        assert_eq!(options, Options::default());
        assert_eq!(options.runtimes, RUNTIMES);
        assert_eq!(options.roles, ROLES);
        assert_eq!(options.cases("tokio"), ["*"]);
        assert_eq!(options.cases("smol"), QUICK_CASES);
        assert_eq!(options.cases("async-std"), QUICK_CASES);
    }

    #[test]
    fn narrowing_and_cases() {
        let options = parse(&["--runtime", "smol", "--role=client", "--all"]).unwrap();
        assert_eq!((options.runtimes, options.roles), (vec!["smol"], vec!["client"]));
        assert_eq!(parse(&["--all"]).unwrap().cases("smol"), ["*"]);
        let options = parse(&["--all", "--cases", "1.*, 12.1.1,", "--role", "all"]).unwrap();
        assert_eq!(options.cases("tokio"), ["1.*", "12.1.1"]);
        assert_eq!(options.roles, ROLES);
        assert!(parse(&["--runtime", "glommio"]).is_err());
        assert!(parse(&["--cases", ","]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--update-docs", "--no-run"]).unwrap().no_run);
    }

    #[test]
    fn quick_detection() {
        let quick = |cases: &[&str]| is_quick(&cases.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(quick(&QUICK_CASES));
        assert!(quick(&["7.1.6"]));
        assert!(!quick(&["*"]));
        assert!(!quick(&["12.*"]));
        assert!(!quick(&["13.1.1"]));
        assert!(!quick(&["1*"]));
    }
}

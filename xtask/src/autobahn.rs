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
use crate::process::{Running, free_port, log_to, with_log};
use crate::report::{Report, RunInfo};
use crate::wstest::{self, Wstest};
use crate::{Result, Tally, cargo, docs};
use xtask_support::now_utc;

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
/// Environment variable naming a prebuilt testee to use instead of building
/// the example (any program with the same command line works).
const TESTEE_VAR: &str = "FAHRBAHN_TESTEE";

/// How long a server may take to listen.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit for runs of [`QUICK_CASES`] (they take about 15 s).
const QUICK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Time limit for runs with the compression sections (about 10 min).
const FULL_TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// Output of the testee, in the run's directory.
const TESTEE_LOG: &str = "testee.log";
/// Output of wstest, in the run's directory.
const WSTEST_LOG: &str = "wstest.log";
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
        let testee = match std::env::var_os(TESTEE_VAR) {
            Some(path) => {
                eprintln!("==> testee: {} (from {TESTEE_VAR})", path.to_string_lossy());
                PathBuf::from(path)
            }
            None => cargo::build_example(TESTEE_PACKAGE, TESTEE_EXAMPLE, TESTEE_FEATURES)?,
        };
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
    /// report, if any), prints the report and writes its `summary.md`.
    fn report(&self, tools: Option<&Tools>) -> Tally {
        let name = self.name();
        let mut tally = Tally::default();
        let have_report = || self.dir.join("index.json").exists();
        match tools.map(|tools| self.execute(tools)) {
            Some(Err(e)) => {
                tally.broke(format!("{name}: {e}"));
                if !have_report() {
                    return tally;
                }
            }
            None if !have_report() => {
                eprintln!("note: {name}: no report in {}", self.dir.display());
                return tally;
            }
            _ => {}
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
        eprintln!(
            "==> autobahn {}: cases {}",
            self.name(),
            self.cases.join(",")
        );
        let dir = &self.dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let date = now_utc();
        let start = Instant::now();
        let port = free_port()?;
        let mut testee = Command::new(&tools.testee);
        testee.args([self.role, "--runtime", self.runtime]);
        let (out, err) = log_to(&dir.join(TESTEE_LOG))?;
        testee.stdout(out).stderr(err);
        let (mode, result) = if self.role == "server" {
            let mode = format!("wstest fuzzingclient against the {} server", self.runtime);
            (mode, self.test_server(tools, testee, port))
        } else {
            let mode = format!("{} client against wstest fuzzingserver", self.runtime);
            (mode, self.test_client(tools, testee, port))
        };
        let info = RunInfo {
            mode,
            cases: self.cases.clone(),
            wstest_version: tools.wstest.version.clone(),
            date,
            duration_secs: start.elapsed().as_secs(),
        };
        eprintln!("    finished in {}s", info.duration_secs);
        info.save(dir)?;
        result
    }

    /// `wstest -m fuzzingclient` against the testee server on `port`.
    fn test_server(&self, tools: &Tools, mut testee: Command, port: u16) -> Result<()> {
        let (testee_log, wstest_log) = (self.dir.join(TESTEE_LOG), self.dir.join(WSTEST_LOG));
        let spec = self.write_spec(
            "fuzzingclient.json",
            wstest::fuzzing_client_spec(&self.agent(), &url(port), &self.cases),
        )?;
        testee.args(["--port", &port.to_string()]);
        let mut server = Running::spawn("the testee server", &mut testee)?;
        server
            .wait_for_port(port, STARTUP_TIMEOUT)
            .map_err(|e| with_log(&testee_log, e))?;
        let mut fuzzer = tools.wstest.fuzzing_client(&self.dir, &spec);
        let (out, err) = log_to(&wstest_log)?;
        let status = Running::spawn("wstest", fuzzer.stdout(out).stderr(err))?
            .wait(self.timeout(), || current_case(&wstest_log))
            .map_err(|e| with_log(&wstest_log, e))?;
        if !status.success() {
            return Err(with_log(&wstest_log, format!("wstest failed ({status})")));
        }
        if let Some(status) = server.exited()? {
            let error = format!("the testee server exited during the run ({status})");
            return Err(with_log(&testee_log, error));
        }
        Ok(())
    }

    /// The testee client against `wstest -m fuzzingserver` on `port`.
    fn test_client(&self, tools: &Tools, mut testee: Command, port: u16) -> Result<()> {
        let (testee_log, wstest_log) = (self.dir.join(TESTEE_LOG), self.dir.join(WSTEST_LOG));
        let spec = self.write_spec(
            "fuzzingserver.json",
            wstest::fuzzing_server_spec(&url(port), &self.cases),
        )?;
        let mut fuzzer = tools.wstest.fuzzing_server(&self.dir, &spec);
        let (out, err) = log_to(&wstest_log)?;
        let mut server = Running::spawn("wstest", fuzzer.stdout(out).stderr(err))?;
        server
            .wait_for_port(port, STARTUP_TIMEOUT)
            .map_err(|e| with_log(&wstest_log, e))?;
        testee.args(["--url", &url(port), "--agent", &self.agent()]);
        let status = Running::spawn("the testee client", &mut testee)?
            .wait(self.timeout(), || current_case(&wstest_log))
            .map_err(|e| with_log(&testee_log, e))?;
        if !status.success() {
            let error = format!("the testee client failed ({status})");
            return Err(with_log(&testee_log, error));
        }
        let index = self.dir.join("index.json");
        let waited = Instant::now();
        while !index.exists() {
            if waited.elapsed() > REPORT_TIMEOUT || server.exited()?.is_some() {
                let error = format!(
                    "wstest wrote no index.json; did the client open /updateReports?agent={}?",
                    self.agent()
                );
                return Err(with_log(&wstest_log, error));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// The agent name in the reports.
    fn agent(&self) -> String {
        format!("fahrbahn-{}", self.runtime)
    }

    fn timeout(&self) -> Duration {
        if is_quick(&self.cases) {
            QUICK_TIMEOUT
        } else {
            FULL_TIMEOUT
        }
    }

    fn write_spec(&self, file: &str, spec: String) -> Result<PathBuf> {
        let path = self.dir.join(file);
        std::fs::write(&path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

/// Progress from wstest's log: the case it is running.
fn current_case(wstest_log: &Path) -> String {
    let text = std::fs::read_to_string(wstest_log).unwrap_or_default();
    let case = text.lines().rev().find_map(|line| {
        let (_, rest) = line.split_once("test case ID ")?;
        rest.split_whitespace().next()
    });
    case.map(|id| format!("at case {id}")).unwrap_or_default()
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
        assert_eq!(
            (options.runtimes, options.roles),
            (vec!["smol"], vec!["client"])
        );
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
        let quick =
            |cases: &[&str]| is_quick(&cases.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(quick(&QUICK_CASES));
        assert!(quick(&["7.1.6"]));
        assert!(!quick(&["*"]));
        assert!(!quick(&["12.*"]));
        assert!(!quick(&["13.1.1"]));
        assert!(!quick(&["1*"]));
    }
}

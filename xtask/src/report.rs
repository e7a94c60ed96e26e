//! wstest reports: reading `index.json`, counting results per section, and
//! rendering them for the console and as markdown.
//!
//! A case passes strictly when both its `behavior` and its `behaviorClose`
//! are `OK` or `INFORMATIONAL`; anything else (NON-STRICT, UNIMPLEMENTED,
//! FAILED, ...) is a failure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::{Result, Tally};

/// The report sections of the Autobahn|Testsuite.
const SECTIONS: [&str; 13] = [
    "Framing",
    "Pings/Pongs",
    "Reserved Bits",
    "Opcodes",
    "Fragmentation",
    "UTF-8 Handling",
    "Close Handling",
    "Misc",
    "Limits/Performance",
    "Auto-Fragmentation",
    "Misc",
    "Compression (payloads)",
    "Compression (parameters)",
];

/// File with the [`RunInfo`] of a run, next to `index.json`.
const RUN_INFO: &str = "run.json";

/// The result columns; wstest behaviors not listed here count as `FAILED`.
const BEHAVIORS: [&str; 5] = [
    "OK",
    "INFORMATIONAL",
    "NON-STRICT",
    "UNIMPLEMENTED",
    "FAILED",
];

fn behavior_column(behavior: &str) -> usize {
    BEHAVIORS
        .iter()
        .position(|b| *b == behavior)
        .unwrap_or(BEHAVIORS.len() - 1)
}

fn strict_ok(behavior: &str) -> bool {
    matches!(behavior, "OK" | "INFORMATIONAL")
}

/// The result of one test case.
#[derive(Debug)]
pub(crate) struct Case {
    id: String,
    /// `id` as numbers, for sorting (`9.10.1` after `9.2.1`).
    key: Vec<u32>,
    behavior: String,
    behavior_close: String,
    /// The `result` text from the per-case report (failed cases only).
    result: String,
}

impl Case {
    fn section(&self) -> u32 {
        self.key.first().copied().unwrap_or(0)
    }

    fn passed(&self) -> bool {
        strict_ok(&self.behavior) && strict_ok(&self.behavior_close)
    }
}

/// Case counts of a section (or of a whole report).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    cases: usize,
    passed: usize,
    by_behavior: [usize; BEHAVIORS.len()],
}

impl Counts {
    fn add(&mut self, case: &Case) {
        self.cases += 1;
        self.passed += usize::from(case.passed());
        self.by_behavior[behavior_column(&case.behavior)] += 1;
    }
}

/// The results of one wstest run.
#[derive(Debug)]
pub(crate) struct Report {
    agents: Vec<String>,
    cases: Vec<Case>,
}

impl Report {
    /// Reads `dir/index.json` (and the per-case reports of failed cases).
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("index.json");
        let index = read_json(&path)?;
        Self::from_index(&path, &index, |entry| case_result(dir, entry))
    }

    /// The report of an `index.json` read from `path` (named in errors);
    /// `detail` gives the result sentence of a failed case's entry.
    fn from_index(path: &Path, index: &Value, detail: impl Fn(&Value) -> String) -> Result<Self> {
        let agents = index
            .as_object()
            .ok_or_else(|| format!("{}: not a JSON object", path.display()))?;
        let mut cases = Vec::new();
        for results in agents.values() {
            let results = results
                .as_object()
                .ok_or_else(|| format!("{}: unexpected format", path.display()))?;
            for (id, result) in results {
                let text = |key: &str| result[key].as_str().unwrap_or("MISSING").to_owned();
                let mut case = Case {
                    id: id.clone(),
                    key: id
                        .split('.')
                        .map(|n| n.parse().unwrap_or(u32::MAX))
                        .collect(),
                    behavior: text("behavior"),
                    behavior_close: text("behaviorClose"),
                    result: String::new(),
                };
                if !case.passed() {
                    case.result = detail(result);
                }
                cases.push(case);
            }
        }
        if cases.is_empty() {
            return Err(format!("{}: no test results", path.display()));
        }
        cases.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            agents: agents.keys().cloned().collect(),
            cases,
        })
    }

    /// Strictly passed and failed cases.
    pub(crate) fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for case in &self.cases {
            tally.record(case.passed());
        }
        tally
    }

    fn sections(&self) -> BTreeMap<u32, Counts> {
        let mut sections = BTreeMap::<u32, Counts>::new();
        for case in &self.cases {
            sections.entry(case.section()).or_default().add(case);
        }
        sections
    }

    fn total(&self) -> Counts {
        let mut total = Counts::default();
        self.cases.iter().for_each(|case| total.add(case));
        total
    }

    fn failures(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(|case| !case.passed())
    }

    /// Prints the per-section table and every failed case.
    pub(crate) fn print(&self, title: &str) {
        let total = self.total();
        println!(
            "{title}: {} of {} cases passed strictly (agent {})",
            total.passed,
            total.cases,
            self.agents.join(", ")
        );
        let header = [
            "Cases",
            "Strict",
            "OK",
            "INFO",
            "NON-STRICT",
            "UNIMPL",
            "FAILED",
        ];
        let mut line = format!("    {:<28}", "Section");
        header.iter().for_each(|h| write!(line, " {h:>6}").unwrap());
        println!("{line}");
        let row = |label: &str, counts: &Counts| {
            let mut line = format!("    {label:<28}");
            let numbers = [counts.cases, counts.passed].into_iter();
            for (n, h) in numbers.chain(counts.by_behavior).zip(header) {
                let cell = if n == 0 {
                    ".".to_owned()
                } else {
                    n.to_string()
                };
                write!(line, " {cell:>width$}", width = h.len().max(6)).unwrap();
            }
            println!("{line}");
        };
        for (section, counts) in self.sections() {
            row(&section_label(section), &counts);
        }
        row("All", &total);
        let failures: Vec<&Case> = self.failures().collect();
        if !failures.is_empty() {
            println!("    not passed strictly:");
        }
        for case in failures {
            let mut line = format!(
                "      {:<10} behavior={:<14} close={:<14}",
                case.id, case.behavior, case.behavior_close
            );
            if !case.result.is_empty() {
                line.push(' ');
                line.push_str(&shorten(&case.result, 100));
            }
            println!("{}", line.trim_end());
        }
    }

    /// Markdown: a heading, the run details, the per-section table and, when
    /// `list_failures`, every failed case.
    pub(crate) fn markdown(
        &self,
        title: &str,
        info: Option<&RunInfo>,
        list_failures: bool,
    ) -> String {
        let total = self.total();
        let mut md = format!("## {title}\n\n");
        writeln!(
            md,
            "Strictly passed: **{} / {}** (agent `{}`)",
            total.passed,
            total.cases,
            self.agents.join("`, `")
        )
        .unwrap();
        if let Some(info) = info {
            let patterns = info.cases.join("`, `");
            writeln!(md, "- {}", info.mode).unwrap();
            writeln!(md, "- cases: `{patterns}`").unwrap();
            writeln!(md, "- wstest: {}", info.wstest_version).unwrap();
            writeln!(md, "- date: {} ({}s)", info.date, info.duration_secs).unwrap();
        }
        md.push_str("\n| Section | Cases | Strict pass |");
        BEHAVIORS.iter().for_each(|b| write!(md, " {b} |").unwrap());
        md.push_str("\n|---|--:|--:|");
        md.push_str(&"--:|".repeat(BEHAVIORS.len()));
        md.push('\n');
        let row = |md: &mut String, label: &str, counts: &Counts| {
            write!(md, "| {label} | {} | {} |", counts.cases, counts.passed).unwrap();
            counts
                .by_behavior
                .iter()
                .for_each(|n| write!(md, " {n} |").unwrap());
            md.push('\n');
        };
        for (section, counts) in self.sections() {
            row(&mut md, &section_label(section), &counts);
        }
        row(&mut md, "**Total**", &total);
        if list_failures && total.passed < total.cases {
            md.push_str("\nNot passed strictly:\n\n");
            for case in self.failures() {
                write!(
                    md,
                    "- `{}`: {} / close {}",
                    case.id, case.behavior, case.behavior_close
                )
                .unwrap();
                if !case.result.is_empty() {
                    write!(md, ": {}", shorten(&case.result, 200)).unwrap();
                }
                md.push('\n');
            }
        }
        md
    }
}

/// How a report was produced; stored as `run.json` next to `index.json`.
#[derive(Debug)]
pub(crate) struct RunInfo {
    /// What ran against what, e.g. `wstest fuzzingclient against the tokio server`.
    pub(crate) mode: String,
    /// The case patterns.
    pub(crate) cases: Vec<String>,
    /// `wstest -a`.
    pub(crate) wstest_version: String,
    /// UTC date and time of the run.
    pub(crate) date: String,
    /// Wall time of the run.
    pub(crate) duration_secs: u64,
}

impl RunInfo {
    /// Writes `dir/run.json`.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let value = json!({
            "mode": self.mode,
            "cases": self.cases,
            "wstest_version": self.wstest_version,
            "date": self.date,
            "duration_secs": self.duration_secs,
        });
        let path = dir.join(RUN_INFO);
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads `dir/run.json`, if there is a readable one.
    pub(crate) fn load(dir: &Path) -> Option<Self> {
        let value = read_json(&dir.join(RUN_INFO)).ok()?;
        let text = |key: &str| value[key].as_str().map(str::to_owned);
        Some(Self {
            mode: text("mode")?,
            cases: value["cases"]
                .as_array()?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            wstest_version: text("wstest_version")?,
            date: text("date")?,
            duration_secs: value["duration_secs"].as_u64()?,
        })
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `result` sentence of a case's own report file, if there is one.
fn case_result(dir: &Path, entry: &Value) -> String {
    let Some(file) = entry["reportfile"].as_str() else {
        return String::new();
    };
    let Ok(detail) = read_json(&dir.join(file)) else {
        return String::new();
    };
    let mut text = detail["result"].as_str().unwrap_or_default().to_owned();
    if !strict_ok(entry["behaviorClose"].as_str().unwrap_or_default()) {
        if let Some(close) = detail["resultClose"].as_str() {
            text = format!("{text} (close: {close})");
        }
    }
    text.trim().to_owned()
}

fn section_label(section: u32) -> String {
    let name = (section as usize)
        .checked_sub(1)
        .and_then(|i| SECTIONS.get(i))
        .unwrap_or(&"");
    format!("{section} {name}")
}

fn shorten(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_counts() {
        let index = json!({ "agent": {
            "1.1.1": { "behavior": "OK", "behaviorClose": "OK" },
            "7.1.6": { "behavior": "INFORMATIONAL", "behaviorClose": "INFORMATIONAL" },
            "9.10.1": { "behavior": "OK", "behaviorClose": "FAILED" },
            "9.2.1": { "behavior": "NON-STRICT", "behaviorClose": "OK" },
            "12.1.1": { "behavior": "UNIMPLEMENTED", "behaviorClose": "UNIMPLEMENTED" },
            "13.1.1": { "behavior": "WRONG CODE", "behaviorClose": "OK" },
        }});
        let detail = |entry: &Value| format!("{} detail", entry["behavior"].as_str().unwrap());
        let report = Report::from_index(Path::new("index.json"), &index, detail).unwrap();

        let ids: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["1.1.1", "7.1.6", "9.2.1", "9.10.1", "12.1.1", "13.1.1"]
        );
        assert_eq!(
            report.tally(),
            Tally {
                passed: 2,
                failed: 4
            }
        );
        let nine = report.sections()[&9];
        assert_eq!((nine.cases, nine.passed), (2, 0));
        assert_eq!(nine.by_behavior, [1, 0, 1, 0, 0]);
        assert_eq!(report.sections()[&13].by_behavior, [0, 0, 0, 0, 1]);
        let md = report.markdown("t", None, true);
        assert!(
            md.contains("| **Total** | 6 | 2 | 2 | 1 | 1 | 1 | 1 |"),
            "{md}"
        );
        assert!(
            md.contains("- `13.1.1`: WRONG CODE / close OK: WRONG CODE detail"),
            "{md}"
        );
        assert!(Report::from_index(Path::new("i"), &json!({ "agent": {} }), detail).is_err());
    }
}

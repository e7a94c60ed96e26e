//! The core micro-benchmarks: criterion's `ws` and `wamp` benches of
//! fahrbahn-core, read back from criterion's JSON files.

use std::path::Path;

use serde_json::Value;
use xtask_support::process::{self, describe};
use xtask_support::{Result, Tally, cargo};

use crate::report::ratio;

/// The criterion benchmark groups of fahrbahn-core, in report order.
const MICRO_GROUPS: [&str; 6] = [
    "parse_unmask",
    "build_mask",
    "utf8",
    "deflate_round_trip",
    "wamp_encode",
    "wamp_decode",
];

/// One criterion result.
#[derive(Debug, Clone)]
pub(crate) struct Micro {
    group: String,
    function: String,
    value: String,
    /// Median time per iteration, ns.
    median_ns: f64,
    /// Bytes or elements per iteration.
    throughput: Throughput,
}

#[derive(Debug, Clone, Copy)]
enum Throughput {
    Bytes(f64),
    Elements(f64),
}

impl Micro {
    /// Bytes/s or elements/s.
    fn per_second(&self) -> f64 {
        let n = match self.throughput {
            Throughput::Bytes(n) | Throughput::Elements(n) => n,
        };
        n / self.median_ns * 1e9
    }

    fn formatted(&self) -> String {
        let rate = self.per_second();
        match self.throughput {
            Throughput::Bytes(_) => format!("{:.2} GiB/s", rate / f64::from(1u32 << 30)),
            Throughput::Elements(_) => format!("{:.2} M/s", rate / 1e6),
        }
    }
}

pub(crate) fn run(quick: bool, target: &Path, tally: &mut Tally) -> Vec<Micro> {
    let criterion_dir = target.join("criterion");
    // Stale results of earlier runs must not show up as this run's.
    for group in MICRO_GROUPS {
        let _ = std::fs::remove_dir_all(criterion_dir.join(group));
    }
    let mut cmd = cargo::command([
        "bench",
        "--package",
        "fahrbahn-core",
        "--bench",
        "ws",
        "--bench",
        "wamp",
        "--",
        "--noplot",
    ]);
    if quick {
        cmd.args(["--warm-up-time", "0.5", "--measurement-time", "1"]);
    }
    eprintln!("\n==> {}", describe(&cmd));
    match process::run(&mut cmd) {
        Ok(true) => {}
        Ok(false) => tally.broke("the micro-benchmarks failed"),
        Err(e) => tally.broke(e),
    }
    let results = match read_criterion(&criterion_dir) {
        Ok(results) => results,
        Err(e) => {
            tally.broke(e);
            return Vec::new();
        }
    };
    for group in MICRO_GROUPS {
        let count = results.iter().filter(|m| m.group == group).count();
        if count == 0 {
            tally.broke(format!("no criterion results for the group {group}"));
        }
        for _ in 0..count {
            tally.pass();
        }
    }
    results
}

/// Every `*/new/benchmark.json` (with its `estimates.json`) below `dir`.
fn read_criterion(dir: &Path) -> Result<Vec<Micro>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    if let Some(micro) = read_result(&path) {
                        found.push(micro);
                    }
                } else {
                    stack.push(path);
                }
            }
        }
    }
    found.retain(|m| MICRO_GROUPS.contains(&m.group.as_str()));
    found.sort_by_key(|m| {
        let group = MICRO_GROUPS.iter().position(|g| *g == m.group);
        (group, value_rank(&m.value), m.function.clone())
    });
    Ok(found)
}

fn read_result(dir: &Path) -> Option<Micro> {
    let read = |name: &str| -> Option<Value> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        serde_json::from_str(&text).ok()
    };
    let benchmark = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let throughput = &benchmark["throughput"];
    let throughput = if let Some(n) = throughput["Bytes"].as_f64() {
        Throughput::Bytes(n)
    } else {
        Throughput::Elements(throughput["Elements"].as_f64()?)
    };
    Some(Micro {
        group: benchmark["group_id"].as_str()?.to_owned(),
        function: benchmark["function_id"].as_str()?.to_owned(),
        value: benchmark["value_str"].as_str()?.to_owned(),
        median_ns: estimates["median"]["point_estimate"].as_f64()?,
        throughput,
    })
}

/// Sort key of criterion parameter strings: sizes, then serializers.
fn value_rank(value: &str) -> (usize, String) {
    const ORDER: [&str; 7] = [
        "20B",
        "1KiB",
        "16KiB",
        "1MiB",
        "JSON",
        "MessagePack",
        "CBOR",
    ];
    let rank = ORDER
        .iter()
        .position(|v| *v == value)
        .unwrap_or(ORDER.len());
    (rank, value.to_owned())
}

pub(crate) fn tables(md: &mut String, micro: &[Micro]) {
    let tables: [(&str, &[&str]); 4] = [
        (
            "Frames (parse + unmask on the server, build + mask on the client)",
            &["parse_unmask", "build_mask"],
        ),
        (
            "UTF-8 validation (a text message through the server connection; the validators alone on the same bytes)",
            &["utf8"],
        ),
        (
            "permessage-deflate round trip (client compress + mask, server unmask + inflate + validate)",
            &["deflate_round_trip"],
        ),
        (
            "WAMP CALL encode / decode (messages per second)",
            &["wamp_encode", "wamp_decode"],
        ),
    ];
    for (title, groups) in tables {
        let rows: Vec<&Micro> = micro
            .iter()
            .filter(|m| groups.contains(&m.group.as_str()))
            .collect();
        if rows.is_empty() {
            continue;
        }
        // Columns: (group, function) in order of appearance.
        let mut columns: Vec<(&str, &str)> = Vec::new();
        let mut values: Vec<&str> = Vec::new();
        for m in &rows {
            if !columns.contains(&(m.group.as_str(), m.function.as_str())) {
                columns.push((m.group.as_str(), m.function.as_str()));
            }
            if !values.contains(&m.value.as_str()) {
                values.push(m.value.as_str());
            }
        }
        columns.sort_by_key(|(g, _)| groups.iter().position(|x| x == g));
        let label = |(g, f): (&str, &str)| {
            if groups.len() == 1 {
                f.to_owned()
            } else {
                g.to_owned()
            }
        };
        let utf8 = groups == ["utf8"];
        md.push_str(&format!("\n### {title}\n\n| |"));
        for &column in &columns {
            md.push_str(&format!(" {} |", label(column)));
        }
        if utf8 {
            md.push_str(" fahrbahn / simdutf8 | fahrbahn / std |");
        }
        md.push_str("\n|---|");
        md.push_str(&"--:|".repeat(columns.len() + if utf8 { 2 } else { 0 }));
        md.push('\n');
        for value in values {
            let find = |(g, f): (&str, &str)| {
                rows.iter()
                    .find(|m| m.group == g && m.function == f && m.value == value)
            };
            md.push_str(&format!("| {value} |"));
            for &column in &columns {
                let cell = find(column).map_or_else(|| "–".to_owned(), |m| m.formatted());
                md.push_str(&format!(" {cell} |"));
            }
            if utf8 {
                let rate = |f| find(("utf8", f)).map(|m| m.per_second());
                let ours = rate("fahrbahn_text_message");
                for peer in ["simdutf8_basic", "std_from_utf8"] {
                    md.push_str(&format!(" {} |", ratio(ours, rate(peer))));
                }
            }
            md.push('\n');
        }
    }
}

//! CPU time from `/proc` (of a process, or of a process tree) and pinning
//! processes to CPUs with taskset.

use std::path::Path;
use std::process::{Command, Stdio};

/// User plus system CPU time of a process so far, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat(&stat)?.1 as f64 / clock_ticks())
}

/// Parent pid and utime + stime (clock ticks) from `/proc/<pid>/stat`.
pub(crate) fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    // After the command name (in parentheses, may contain spaces): state,
    // ppid, ..., utime (14th field of the line), stime (15th).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux when that fails).
pub(crate) fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

pub(crate) fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `program`, pinned to `cpu` with taskset when it is there (taskset execs
/// the program: the pid stays the program's).
pub(crate) fn pinned(taskset: bool, cpu: &str, program: &Path) -> Command {
    if taskset {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", cpu]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Per process: pid, parent and user + system time, in clock ticks.
pub(crate) struct TreeTicks(Vec<(u32, u32, u64)>);

/// A snapshot of every process's parent and CPU time from `/proc`; each of
/// `roots` that the listing missed (it started after the directory was
/// read) is read once more on its own.
pub(crate) fn tree_ticks(roots: &[u32]) -> TreeTicks {
    let proc = Path::new("/proc");
    let pids = std::fs::read_dir(proc)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok());
    let read = |pid: u32| std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok();
    TreeTicks::read(pids, roots, read)
}

impl TreeTicks {
    /// The table of the processes `pids` and `roots`, with `read` giving
    /// the text of a process's `stat` file (`None` when it is gone).
    fn read(
        pids: impl IntoIterator<Item = u32>,
        roots: &[u32],
        read: impl Fn(u32) -> Option<String>,
    ) -> Self {
        let mut procs: Vec<(u32, u32, u64)> = Vec::new();
        let mut add = |pid: u32| {
            if let Some((ppid, ticks)) = read(pid).as_deref().and_then(parse_stat) {
                procs.push((pid, ppid, ticks));
            }
        };
        let mut seen = Vec::new();
        for pid in pids {
            seen.push(pid);
            add(pid);
        }
        for &root in roots {
            if !seen.contains(&root) {
                add(root);
            }
        }
        TreeTicks(procs)
    }

    /// The CPU ticks of `root` and all its descendants in the table;
    /// `None` if `root` is not in it.
    pub(crate) fn sum(&self, root: u32) -> Option<u64> {
        let &(_, _, mut total) = self.0.iter().find(|p| p.0 == root)?;
        let mut frontier = vec![root];
        while let Some(parent) = frontier.pop() {
            for &(pid, ppid, ticks) in &self.0 {
                if ppid == parent && pid != root {
                    total += ticks;
                    frontier.push(pid);
                }
            }
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields() {
        let stat = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 250 30 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some((7, 280)));
        assert_eq!(parse_stat("42 (a) S 7"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn process_trees() {
        let tree = TreeTicks(vec![
            (1, 0, 5),
            (7, 1, 1),
            (8, 7, 2),
            (9, 8, 4),
            (10, 1, 100),
        ]);
        assert_eq!(tree.sum(7), Some(7));
        assert_eq!(tree.sum(1), Some(112));
        assert_eq!(tree.sum(11), None);

        // the listing's processes and a root it missed; a gone one is left out
        let stat = |ppid: u32, utime: u64| {
            format!("x (cmd) S {ppid} 0 0 0 -1 0 0 0 0 0 {utime} 1 0 0 20 0 1 0")
        };
        let read = |pid: u32| match pid {
            1 => Some(stat(0, 9)),
            2 => Some(stat(1, 19)),
            3 => Some(stat(2, 29)),
            _ => None,
        };
        let tree = TreeTicks::read([1, 2, 4], &[3, 5], read);
        assert_eq!(tree.0, [(1, 0, 10), (2, 1, 20), (3, 2, 30)]);
        assert_eq!(tree.sum(2), Some(50));
        assert_eq!((tree.sum(4), tree.sum(5)), (None, None));
    }
}

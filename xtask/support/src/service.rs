//! Long-running helper processes (a router, test peers) that are stopped
//! politely: SIGTERM first, SIGKILL only after a grace period.
//!
//! [`crate::process::Running`] kills its child outright, which is right for
//! the program under test but leaves the worker processes of a Crossbar.io
//! node behind. A [`Service`] started with [`Service::spawn_group`] leads its
//! own process group, which is killed as a whole if it does not stop in time,
//! and a small guardian shell stops that group when xtask dies or is
//! interrupted (Ctrl-C only reaches the terminal's foreground process group).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::Result;
use crate::process::describe;

const POLL: Duration = Duration::from_millis(100);

/// Stops the process group `$1` once the process `$2` (xtask, the guardian's
/// parent) is gone or the guardian is interrupted or terminated: SIGTERM to the group leader, then
/// SIGKILL to the group after 10 s.
const GUARDIAN: &str = r#"
group=$1 owner=$2 sleeper=
cleanup() {
    if [ -n "$sleeper" ]; then
        kill "$sleeper" 2>/dev/null
        wait "$sleeper" 2>/dev/null
    fi
    if kill -0 -- "-$group" 2>/dev/null; then
        kill -s TERM "$group" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 -- "-$group" 2>/dev/null || exit 0
            sleep 0.1
        done
        kill -s KILL -- "-$group" 2>/dev/null
    fi
    exit 0
}
trap cleanup INT TERM HUP
# xtask is gone once this shell has another parent (a zombie still answers kill -0)
parent() { read -r _ _ _ ppid _ < /proc/$$/stat; echo "$ppid"; }
while [ "$(parent)" = "$owner" ]; do
    sleep 1 &
    sleeper=$!
    wait "$sleeper"
done
cleanup
"#;

/// A helper process that is stopped (see [`Service::stop`]) when dropped.
pub struct Service {
    name: String,
    child: Child,
    /// Whether the child leads its own process group.
    group: bool,
    /// How long the child may take to exit after SIGTERM.
    grace: Duration,
    /// Stops the group if xtask goes away without stopping it.
    guardian: Option<Child>,
    stopped: bool,
}

impl Service {
    /// Spawns `cmd` in xtask's own process group, so that Ctrl-C reaches it.
    pub fn spawn(name: &str, cmd: &mut Command, grace: Duration) -> Result<Self> {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", describe(cmd)))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            group: false,
            grace,
            guardian: None,
            stopped: false,
        })
    }

    /// Spawns `cmd` as the leader of a new process group, together with a
    /// guardian that stops the group if xtask exits or is interrupted
    /// without stopping it.
    pub fn spawn_group(name: &str, cmd: &mut Command, grace: Duration) -> Result<Self> {
        cmd.process_group(0);
        let mut service = Self::spawn(name, cmd, grace)?;
        service.group = true;
        let guardian = Command::new("bash")
            .args(["-c", GUARDIAN, "guardian"])
            .arg(service.child.id().to_string())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match guardian {
            Ok(guardian) => service.guardian = Some(guardian),
            // still usable; only an interrupted xtask would leave it running
            Err(e) => eprintln!("warning: cannot start a guardian for {name}: {e}"),
        }
        Ok(service)
    }

    /// The child's process id (the group id too, for
    /// [`Service::spawn_group`]).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until something accepts connections on `127.0.0.1:port`.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        self.wait_until(timeout, &format!("listening on {addr}"), || {
            TcpStream::connect_timeout(&addr, POLL).is_ok()
        })
    }

    /// Waits until the file `log` has a line starting with `prefix` and
    /// returns that line.
    pub fn wait_for_line(&mut self, log: &Path, prefix: &str, timeout: Duration) -> Result<String> {
        let find = || {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            text.lines()
                .find(|line| line.starts_with(prefix))
                .map(str::to_owned)
        };
        self.wait_until(timeout, &format!("printing `{prefix}`"), || {
            find().is_some()
        })?;
        Ok(find().unwrap_or_default())
    }

    fn wait_until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!("{} exited ({status}) before {what}", self.name));
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "{} was not {what} within {}s",
                    self.name,
                    timeout.as_secs()
                ));
            }
            sleep(POLL);
        }
    }

    /// Stops the child: SIGTERM, then after the grace period SIGKILL (to
    /// the whole group for [`Service::spawn_group`], whose leftovers are
    /// killed too). Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.child.id().to_string();
        let group = format!("-{pid}");
        if self.exited().is_none() {
            signal("TERM", &pid);
            if !self.exits_within(self.grace) {
                eprintln!(
                    "warning: {} did not stop within {}s after SIGTERM, killing it",
                    self.name,
                    self.grace.as_secs()
                );
                if self.group {
                    signal("KILL", &group);
                }
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if self.group && is_alive(&group) {
            // helpers of the leader that did not exit with it
            let start = Instant::now();
            while is_alive(&group) && start.elapsed() < Duration::from_secs(2) {
                sleep(POLL);
            }
            if is_alive(&group) {
                eprintln!("warning: killing leftover processes of {}", self.name);
                signal("KILL", &group);
            }
        }
        if let Some(mut guardian) = self.guardian.take() {
            // it finds nothing left to stop and exits
            signal("TERM", &guardian.id().to_string());
            let start = Instant::now();
            while guardian.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(3) {
                    let _ = guardian.kill();
                    break;
                }
                sleep(POLL);
            }
            let _ = guardian.wait();
        }
    }

    fn exits_within(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.exited().is_none() {
            if start.elapsed() >= timeout {
                return false;
            }
            sleep(POLL);
        }
        true
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends SIGname to `target` (a PID, or `-PGID` for a process group) with
/// kill(1); reports whether that worked.
fn signal(name: &str, target: &str) -> bool {
    Command::new("kill")
        .args(["-s", name, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether a process (or, for `-PGID`, any process of the group) exists.
fn is_alive(target: &str) -> bool {
    signal("0", target)
}

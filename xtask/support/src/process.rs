//! Child processes: describing, running with a timeout, and always cleaning up.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::Result;

const POLL: Duration = Duration::from_millis(100);

/// How often [`Running::wait`] reports that a child is still running.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// The command line of `cmd`, for progress output.
pub fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let program = program.file_name().unwrap_or(program.as_os_str());
    std::iter::once(program)
        .chain(cmd.get_args())
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A file to send a child's stdout and stderr to.
pub fn log_to(path: &Path) -> Result<(Stdio, Stdio)> {
    let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let copy = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((file.into(), copy.into()))
}

/// `error`, followed by the last lines of the log file `log`.
pub fn with_log(log: &Path, error: impl std::fmt::Display) -> String {
    const LINES: usize = 20;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = format!("{error}\n    --- last lines of {} ---", log.display());
    for line in &lines[lines.len().saturating_sub(LINES)..] {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

/// Runs `cmd` to completion with inherited stdio and reports whether it succeeded.
pub fn run(cmd: &mut Command) -> Result<bool> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    Ok(status.success())
}

/// A spawned child process that is killed when dropped.
pub struct Running {
    name: String,
    /// The child (for its pipes).
    pub child: Child,
}

impl Running {
    /// Spawns `cmd`; `name` identifies it in messages.
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Self> {
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", describe(cmd)))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// Waits up to `timeout` for the child to exit, printing a line every
    /// 30 s with `progress()`; kills the child on timeout.
    pub fn wait(
        &mut self,
        timeout: Duration,
        mut progress: impl FnMut() -> String,
    ) -> Result<ExitStatus> {
        let start = Instant::now();
        let mut next_heartbeat = HEARTBEAT;
        loop {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                self.kill();
                return Err(format!(
                    "{} did not finish within {}s and was killed",
                    self.name,
                    timeout.as_secs()
                ));
            }
            if elapsed >= next_heartbeat {
                let secs = elapsed.as_secs();
                eprintln!(
                    "    ... {} still running after {secs}s {}",
                    self.name,
                    progress()
                );
                next_heartbeat += HEARTBEAT;
            }
            sleep(POLL);
        }
    }

    /// Waits until something accepts connections on `127.0.0.1:port`.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited()? {
                return Err(format!(
                    "{} exited ({status}) before listening on {addr}",
                    self.name
                ));
            }
            if TcpStream::connect_timeout(&addr, POLL).is_ok() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "{} did not listen on {addr} within {}s",
                    self.name,
                    timeout.as_secs()
                ));
            }
            sleep(POLL);
        }
    }

    /// Kills the child (if still running) and reaps it.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP port on 127.0.0.1 that is free right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

//! Helpers shared by `cargo xtask` (the tests, conformance and interop
//! runs) and the benchmark lab (the `bench-lab` crate): child processes
//! ([`process`]), helper processes stopped politely ([`service`]), cargo
//! ([`cargo`]), the WAMP routers ([`router`], [`crossbar`]), the date
//! ([`now_utc`]) and the `N passed, M failed` [`Tally`].

pub mod cargo;
pub mod crossbar;
pub mod process;
pub mod router;
pub mod service;
mod time;

use std::fmt;

pub use time::now_utc;

/// Result type of the tasks; errors are messages for the user.
pub type Result<T, E = String> = std::result::Result<T, E>;

/// Count of passed and failed items (steps or conformance cases).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Items that passed.
    pub passed: usize,
    /// Items that failed.
    pub failed: usize,
}

impl Tally {
    /// Counts one passed item.
    pub fn pass(&mut self) {
        self.passed += 1;
    }

    /// Counts one failed item.
    pub fn fail(&mut self) {
        self.failed += 1;
    }

    /// Reports something that broke and counts it as a failure.
    pub fn broke(&mut self, message: impl fmt::Display) {
        eprintln!("error: {message}");
        self.fail();
    }

    /// Counts one passed (`ok`) or failed item.
    pub fn record(&mut self, ok: bool) {
        if ok { self.pass() } else { self.fail() }
    }

    /// Adds the counts of `other`.
    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
    }

    /// Whether nothing failed.
    pub fn is_success(self) -> bool {
        self.failed == 0
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

//! A child process that logs to files: [`LoggedChild`], shared by the guards that run a
//! long-lived program under test in the background (`lbctl daemon` in
//! [`crate::daemon_lab`], Debian's ldirectord in [`crate::ldirectord`]).

use std::{
    path::PathBuf,
    process::{Child, ExitStatus},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::lb::wait_for;

/// A running child whose log lives in files; killed and reaped on drop if still running.
pub struct LoggedChild {
    child: Child,
    /// What it is, for messages ("the daemon", "ldirectord").
    what: &'static str,
    /// Its log files, read in this order.
    logs: Vec<PathBuf>,
}

impl LoggedChild {
    /// `child`, called `what` in messages, logging to `logs`.
    pub fn new(child: Child, what: &'static str, logs: Vec<PathBuf>) -> LoggedChild {
        LoggedChild { child, what, logs }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log files, one after the other (a missing file reads as empty).
    pub fn log(&self) -> String {
        self.logs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    /// Fails if it has exited.
    pub fn running(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            bail!("{} exited ({st}); log:\n{}", self.what, self.log());
        }
        Ok(())
    }

    /// Waits for a log line containing `needle` while it runs.
    pub fn wait_log(&mut self, needle: &str, limit: Duration) -> Result<()> {
        wait_for(&format!("{} log line {needle:?}", self.what), limit, || {
            self.running()?;
            Ok(self.log().contains(needle).then_some(()))
        })
        .with_context(|| format!("log:\n{}", self.log()))
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        kill(Pid::from_raw(self.child.id() as i32), signal)?;
        Ok(())
    }

    /// SIGTERM, and its exit.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        wait_for(
            &format!("{}'s exit after SIGTERM", self.what),
            Duration::from_secs(30),
            || Ok(self.child.try_wait()?),
        )
        .with_context(|| format!("log:\n{}", self.log()))
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

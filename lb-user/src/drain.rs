//! `lbctl drain`: quiesce a real server (weight 0, as `-e -w 0` with
//! everything else kept) and wait until its connections are gone, reading
//! ActiveConn (and with `--inactive` InActConn) where `-L` reads them
//! ([`Table::views`]), then optionally remove it (`-d`).
//!
//! The pin directory's lock is held only while the tables are read or
//! changed, never across the wait, so other `lbctl` commands and the daemon
//! keep working while a drain runs. If someone else gives the real a weight
//! again or removes it meanwhile, the drain stops with an error.

use std::{
    io::Write,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use crate::{
    error::Error,
    model::{RealId, RealView, ServiceId},
    table::Table,
};

/// What to drain and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainSpec {
    pub service: ServiceId,
    /// The real server's address; its port is the service's when not given
    /// (direct routing keeps the service's port).
    pub addr: Ipv4Addr,
    pub port: Option<u16>,
    /// Give up after this long (`None`: wait as long as it takes).
    pub timeout: Option<Duration>,
    /// Delete the real server once drained.
    pub remove: bool,
    /// Wait for InActConn to reach 0 too (connections closing or in
    /// TIME_WAIT, UDP flows), not only ActiveConn.
    pub inactive: bool,
}

impl DrainSpec {
    pub fn real(&self) -> RealId {
        RealId {
            addr: self.addr,
            port: self.port.unwrap_or(self.service.port),
        }
    }
}

/// Why a drain did not end with the real drained.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(
        "timed out after {secs} s: {real} still has {left}; it stays at weight 0",
        real = label(.real)
    )]
    TimedOut {
        secs: u64,
        real: RealId,
        left: String,
    },
    #[error(
        "the weight of {real} was set to {weight} while it was draining (by the daemon or \
         another lbctl); the drain stops",
        real = label(.real)
    )]
    WeightChanged { real: RealId, weight: u32 },
    #[error("{real} was removed while it was draining", real = label(.real))]
    Removed { real: RealId },
    #[error(transparent)]
    Table(#[from] Error),
    #[error("writing the progress failed")]
    Output(#[source] std::io::Error),
}

impl DrainError {
    /// lbctl's exit status: 3 for a timeout (the real is still draining),
    /// 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            DrainError::TimedOut { .. } => 3,
            _ => 1,
        }
    }
}

fn label(r: &RealId) -> String {
    format!("{}:{}", r.addr, r.port)
}

/// The counts a drain waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Left {
    pub active: u64,
    pub inactive: u64,
}

impl Left {
    fn of(r: &RealView) -> Left {
        Left {
            active: r.active_conns,
            inactive: r.inactive_conns,
        }
    }

    /// Connections still to go: ActiveConn, plus InActConn with
    /// `--inactive`.
    pub fn remaining(self, inactive: bool) -> u64 {
        self.active + if inactive { self.inactive } else { 0 }
    }

    /// "3 active connections" or "3 active and 2 inactive connections".
    pub fn describe(self, inactive: bool) -> String {
        let conns = |n: u64| if n == 1 { "connection" } else { "connections" };
        if inactive {
            format!(
                "{} active and {} inactive {}",
                self.active,
                self.inactive,
                conns(self.inactive)
            )
        } else {
            format!("{} active {}", self.active, conns(self.active))
        }
    }
}

/// The progress line: `draining REAL: LEFT left, ELAPSED s`.
pub fn progress(real: &RealId, left: Left, inactive: bool, elapsed: Duration) -> String {
    format!(
        "draining {}: {} left, {} s",
        label(real),
        left.describe(inactive),
        elapsed.as_secs()
    )
}

/// The real server `spec` names, as `-L` shows it, or ipvsadm's errors.
fn find(t: &Table, spec: &DrainSpec) -> Result<RealView, Error> {
    let views = t.views(None)?;
    let svc = views
        .into_iter()
        .find(|v| v.spec.id == spec.service)
        .ok_or(Error::NoService(spec.service))?;
    let real = spec.real();
    svc.reals
        .into_iter()
        .find(|r| r.spec.id == real)
        .ok_or(Error::NoReal(spec.service, real))
}

/// How often the counts are read.
const POLL: Duration = Duration::from_millis(500);

/// Drains `spec`, opening the tables with `open` for each look (and
/// closing them in between), writing progress to `out`: on a terminal
/// (`tty`) one line rewritten in place, else a line whenever the counts
/// change. Returns how long it took.
pub fn drain(
    spec: &DrainSpec,
    open: impl Fn() -> Result<Table, Error>,
    out: &mut impl Write,
    tty: bool,
) -> Result<Duration, DrainError> {
    let real = spec.real();
    // Quiesce: -e -w 0, keeping the forwarding method and thresholds.
    {
        let mut t = open()?;
        let view = find(&t, spec)?;
        if view.spec.weight != 0 {
            let mut quiet = view.spec;
            quiet.weight = 0;
            t.edit_real(&spec.service, &quiet)?;
        }
    }
    let start = Instant::now();
    let mut shown: Option<Left> = None;
    let write = |out: &mut dyn Write, text: &str| out.write_all(text.as_bytes());
    loop {
        let left = {
            let t = open()?;
            let view = match find(&t, spec) {
                Ok(v) => v,
                Err(Error::NoReal(..)) => return Err(DrainError::Removed { real }),
                Err(e) => return Err(e.into()),
            };
            if view.spec.weight != 0 {
                return Err(DrainError::WeightChanged {
                    real,
                    weight: view.spec.weight,
                });
            }
            Left::of(&view)
        };
        let elapsed = start.elapsed();
        let line = progress(&real, left, spec.inactive, elapsed);
        if tty {
            write(out, &format!("\r\x1b[K{line}")).map_err(DrainError::Output)?;
        } else if shown != Some(left) {
            write(out, &format!("{line}\n")).map_err(DrainError::Output)?;
        }
        out.flush().map_err(DrainError::Output)?;
        shown = Some(left);
        if left.remaining(spec.inactive) == 0 {
            break;
        }
        if spec.timeout.is_some_and(|limit| elapsed >= limit) {
            if tty {
                write(out, "\n").map_err(DrainError::Output)?;
            }
            return Err(DrainError::TimedOut {
                secs: elapsed.as_secs(),
                real,
                left: left.describe(spec.inactive),
            });
        }
        let pause = match spec.timeout {
            Some(limit) => POLL.min(limit.saturating_sub(elapsed)),
            None => POLL,
        };
        std::thread::sleep(pause.max(Duration::from_millis(10)));
    }
    let took = start.elapsed();
    let mut done = format!("drained {} in {} s", label(&real), took.as_secs());
    if spec.remove {
        open()?.delete_real(&spec.service, &real)?;
        done.push_str("; removed");
    }
    let sep = if tty { "\n" } else { "" };
    write(out, &format!("{sep}{done}\n")).map_err(DrainError::Output)?;
    out.flush().map_err(DrainError::Output)?;
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_what_is_left() {
        let r = RealId {
            addr: Ipv4Addr::new(198, 51, 100, 11),
            port: 80,
        };
        let left = Left {
            active: 3,
            inactive: 1,
        };
        assert_eq!(
            progress(&r, left, false, Duration::from_millis(12_700)),
            "draining 198.51.100.11:80: 3 active connections left, 12 s"
        );
        assert_eq!(
            progress(&r, left, true, Duration::ZERO),
            "draining 198.51.100.11:80: 3 active and 1 inactive connection left, 0 s"
        );
        assert_eq!(left.remaining(false), 3);
        assert_eq!(left.remaining(true), 4);
        let one = Left {
            active: 1,
            inactive: 0,
        };
        assert_eq!(one.describe(false), "1 active connection");
    }
}

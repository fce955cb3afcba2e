//! `lbctl drain`: quiesce a real server (weight 0, as `-e -w 0` with
//! everything else kept) and wait until its connections are gone, reading
//! ActiveConn (and with `--inactive` InActConn) where `-L` reads them
//! ([`Table::views`]), then optionally remove it (`-d`).
//!
//! The pin directory's lock is held only while the tables are read or
//! changed ([`Pinned`]), never across the wait, so other `lbctl` commands and the daemon
//! keep working while a drain runs. If someone else gives the real a weight
//! again or removes it meanwhile, the drain stops with an error.

use std::{
    io::Write,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::{
    error::Error,
    model::{RealId, RealSpec, RealView, ServiceId},
    table::Table,
};

/// What to drain and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainSpec {
    pub service: ServiceId,
    /// The real server's address; its port is the service's when not given
    /// (as `-r` without a port; a `-m` real with another port needs it).
    pub addr: IpAddr,
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
    crate::addr::addr_port(r.addr, r.port)
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

/// What a drain reads and changes: the pinned tables for `lbctl` ([`Pinned`]),
/// a script in the tests.
pub trait Tables {
    /// The real server `spec` names, as `-L` shows it.
    fn look(&mut self, spec: &DrainSpec) -> Result<RealView, Error>;
    /// `-e` with `real` (the real as it is, at weight 0).
    fn quiesce(&mut self, spec: &DrainSpec, real: &RealSpec) -> Result<(), Error>;
    /// `-d`.
    fn remove(&mut self, spec: &DrainSpec) -> Result<(), Error>;
}

/// The pinned tables, opened by `.0` for each look or change and closed
/// right after, so the pin directory's lock is never held across a wait.
pub struct Pinned<F>(pub F);

impl<F: Fn() -> Result<Table, Error>> Tables for Pinned<F> {
    fn look(&mut self, spec: &DrainSpec) -> Result<RealView, Error> {
        find(&(self.0)()?, spec)
    }
    fn quiesce(&mut self, spec: &DrainSpec, real: &RealSpec) -> Result<(), Error> {
        (self.0)()?.edit_real(&spec.service, real)
    }
    fn remove(&mut self, spec: &DrainSpec) -> Result<(), Error> {
        (self.0)()?.delete_real(&spec.service, &spec.real())
    }
}

/// How often `lbctl drain` reads the counts.
pub const POLL: Duration = Duration::from_millis(500);

/// Drains `spec`, reading the counts every `poll`, writing progress to
/// `out`: on a terminal (`tty`) one line rewritten in place, else a line
/// whenever the counts change. Returns how long it took.
pub fn drain(
    spec: &DrainSpec,
    tables: &mut impl Tables,
    out: &mut impl Write,
    tty: bool,
    poll: Duration,
) -> Result<Duration, DrainError> {
    let real = spec.real();
    // Quiesce: -e -w 0, keeping the forwarding method and thresholds.
    let view = tables.look(spec)?;
    if view.spec.weight != 0 {
        let mut quiet = view.spec;
        quiet.weight = 0;
        tables.quiesce(spec, &quiet)?;
    }
    let start = Instant::now();
    let mut shown: Option<Left> = None;
    let mut write = |text: &str| -> Result<(), DrainError> {
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(DrainError::Output)
    };
    loop {
        let view = match tables.look(spec) {
            Ok(v) => v,
            Err(Error::NoReal(..)) => return Err(DrainError::Removed { real }),
            Err(e) => return Err(e.into()),
        };
        if view.spec.weight != 0 {
            if tty {
                write("\n")?;
            }
            return Err(DrainError::WeightChanged {
                real,
                weight: view.spec.weight,
            });
        }
        let left = Left::of(&view);
        let elapsed = start.elapsed();
        let line = progress(&real, left, spec.inactive, elapsed);
        if tty {
            write(&format!("\r\x1b[K{line}"))?;
        } else if shown != Some(left) {
            write(&format!("{line}\n"))?;
        }
        shown = Some(left);
        if left.remaining(spec.inactive) == 0 {
            break;
        }
        if spec.timeout.is_some_and(|limit| elapsed >= limit) {
            if tty {
                write("\n")?;
            }
            return Err(DrainError::TimedOut {
                secs: elapsed.as_secs(),
                real,
                left: left.describe(spec.inactive),
            });
        }
        let pause = match spec.timeout {
            Some(limit) => poll.min(limit.saturating_sub(elapsed)),
            None => poll,
        };
        std::thread::sleep(pause.max(Duration::from_millis(10)));
    }
    let took = start.elapsed();
    let mut done = format!("drained {} in {} s", label(&real), took.as_secs());
    if spec.remove {
        tables.remove(spec)?;
        done.push_str("; removed");
    }
    let sep = if tty { "\n" } else { "" };
    write(&format!("{sep}{done}\n"))?;
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fwd, Proto, Rates, Stats, Thresholds};
    use std::collections::VecDeque;
    use std::net::Ipv4Addr;

    fn spec(timeout: Option<Duration>, remove: bool, inactive: bool) -> DrainSpec {
        DrainSpec {
            service: ServiceId {
                proto: Proto::Tcp,
                addr: Ipv4Addr::new(203, 0, 113, 10).into(),
                port: 80,
            },
            addr: Ipv4Addr::new(198, 51, 100, 11).into(),
            port: None,
            timeout,
            remove,
            inactive,
        }
    }

    /// What each look sees: (weight, active, inactive), or the real gone.
    struct Script {
        looks: VecDeque<Option<(u32, u64, u64)>>,
        calls: Vec<String>,
    }

    impl Script {
        fn new(looks: &[Option<(u32, u64, u64)>]) -> Script {
            Script {
                looks: looks.iter().copied().collect(),
                calls: Vec::new(),
            }
        }
    }

    impl Tables for Script {
        fn look(&mut self, spec: &DrainSpec) -> Result<RealView, Error> {
            let Some((weight, active, inactive)) = self.looks.pop_front().expect("a look too many")
            else {
                return Err(Error::NoReal(spec.service, spec.real()));
            };
            Ok(RealView {
                spec: RealSpec {
                    id: spec.real(),
                    fwd: Fwd::Route,
                    weight,
                    thresholds: Thresholds {
                        upper: 100,
                        lower: 10,
                    },
                },
                active_conns: active,
                inactive_conns: inactive,
                persist_conns: 0,
                stats: Stats::default(),
                rates: Rates::default(),
            })
        }
        fn quiesce(&mut self, _: &DrainSpec, real: &RealSpec) -> Result<(), Error> {
            self.calls.push(format!(
                "-e -w {} -x {} -y {}",
                real.weight, real.thresholds.upper, real.thresholds.lower
            ));
            Ok(())
        }
        fn remove(&mut self, _: &DrainSpec) -> Result<(), Error> {
            self.calls.push("-d".into());
            Ok(())
        }
    }

    fn run(
        spec: &DrainSpec,
        looks: &[Option<(u32, u64, u64)>],
        tty: bool,
    ) -> (Result<Duration, DrainError>, String, Vec<String>) {
        let mut script = Script::new(looks);
        let mut out = Vec::new();
        let r = drain(spec, &mut script, &mut out, tty, Duration::ZERO);
        assert!(script.looks.is_empty(), "looks left: {:?}", script.looks);
        (r, String::from_utf8(out).unwrap(), script.calls)
    }

    #[test]
    fn plain_lines_when_the_counts_change_then_removed() {
        let (r, out, calls) = run(
            &spec(None, true, false),
            &[
                Some((3, 2, 0)),
                Some((0, 2, 0)),
                Some((0, 2, 5)),
                Some((0, 1, 5)),
                Some((0, 0, 5)),
            ],
            false,
        );
        assert!(r.is_ok(), "{r:?}");
        // Quiesced keeping the thresholds, removed once drained.
        assert_eq!(calls, ["-e -w 0 -x 100 -y 10", "-d"]);
        // 2 active, then 2 active with 5 inactive (not shown without
        // --inactive but a change of the counts), 1, 0.
        assert_eq!(
            out,
            "draining 198.51.100.11:80: 2 active connections left, 0 s\n\
             draining 198.51.100.11:80: 2 active connections left, 0 s\n\
             draining 198.51.100.11:80: 1 active connection left, 0 s\n\
             draining 198.51.100.11:80: 0 active connections left, 0 s\n\
             drained 198.51.100.11:80 in 0 s; removed\n"
        );
    }

    #[test]
    fn one_line_rewritten_on_a_terminal() {
        let (r, out, calls) = run(
            &spec(None, false, true),
            &[
                Some((0, 1, 1)),
                Some((0, 1, 1)),
                Some((0, 0, 1)),
                Some((0, 0, 0)),
            ],
            true,
        );
        assert!(r.is_ok(), "{r:?}");
        // Already at weight 0: nothing to change. (The first look is the
        // one before quiescing.)
        assert!(calls.is_empty(), "{calls:?}");
        let line = |a, i| {
            format!(
                "\r\x1b[Kdraining 198.51.100.11:80: {a} active and {i} inactive connection{} left, 0 s",
                if i == 1 { "" } else { "s" }
            )
        };
        assert_eq!(
            out,
            format!(
                "{}{}{}\ndrained 198.51.100.11:80 in 0 s\n",
                line(1, 1),
                line(0, 1),
                line(0, 0)
            )
        );
    }

    #[test]
    fn timeout_weight_set_again_and_removal_end_the_drain() {
        let (r, out, _) = run(
            &spec(Some(Duration::ZERO), false, false),
            &[Some((1, 4, 0)), Some((0, 4, 0))],
            true,
        );
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.to_string(),
            "timed out after 0 s: 198.51.100.11:80 still has 4 active connections; it stays at weight 0"
        );
        assert!(out.ends_with(" 0 s\n"), "{out:?}");
        let (r, _, _) = run(
            &spec(None, true, false),
            &[Some((0, 4, 0)), Some((0, 4, 0)), Some((2, 4, 0))],
            false,
        );
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            matches!(e, DrainError::WeightChanged { weight: 2, .. }),
            "{e}"
        );
        let (r, _, calls) = run(
            &spec(None, true, false),
            &[Some((0, 4, 0)), Some((0, 4, 0)), None],
            false,
        );
        assert!(matches!(r, Err(DrainError::Removed { .. })), "{r:?}");
        assert!(calls.is_empty(), "{calls:?}");
        // No such real at the start: ipvsadm's error, nothing done.
        let (r, out, calls) = run(&spec(None, true, false), &[None], false);
        assert!(
            matches!(r, Err(DrainError::Table(Error::NoReal(..)))),
            "{r:?}"
        );
        assert!(out.is_empty() && calls.is_empty());
    }

    #[test]
    fn progress_says_what_is_left() {
        let r = RealId {
            addr: Ipv4Addr::new(198, 51, 100, 11).into(),
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
